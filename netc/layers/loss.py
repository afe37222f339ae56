"""Loss and metric layers.  LossLayer subclasses weigh top 0 by 1 unless told otherwise, and Caffe creates
their top if the prototxt leaves it out.  [loss_layer.hpp]

Every loss top is a 0-axis scalar `()`.  Costs (other_ops; none of these layers has MACs or blobs), with
n = count(bottom 0) and m = the number of labels or samples:

    SoftmaxWithLoss          3n (max, exp-and-sum, divide) + 2m (log and sum at the label)
    InfogainLoss             3n (softmax) + 2n (log, and H[label]·log p summed over the classes)
    SigmoidCrossEntropyLoss  4n (the stable logistic loss: compare, exp, log, add)
    EuclideanLoss            2n (subtract, square-and-sum)
    HingeLoss                2n (add 1 with the sign flip, max with 0); 3n with norm L2 (the square)
    MultinomialLogisticLoss  2m (log and sum at the label)
    ContrastiveLoss          2n (subtract, square-and-sum per pair) + 4m (sqrt, margin, max, square)
    Accuracy                 n  (one compare per score)
"""
from __future__ import annotations

from pathlib import Path

from ..caffe_pb2 import HingeLossParameter
from . import Inferred, LayerRule, canonical_axis, count, fmt_shape, read_blob_dims, register



def _and(words: list) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


class Loss(LayerRule):
    bottoms = (2, 2)
    loss = True
    auto_top = True
    in_place_note = "a loss reduces its inputs to a scalar"

    def infer(self, ctx, bottoms):
        self.check(ctx, bottoms)
        return Inferred(tops=self.tops_for(ctx, bottoms), other_ops=self.ops(ctx, bottoms))

    def check(self, ctx, bottoms) -> None:
        """Caffe's LossLayer::Reshape: the data and the label have the same first dimension."""
        check_first_axis(ctx, bottoms, 0, 1)

    def tops_for(self, ctx, bottoms) -> list:
        return [()] * len(ctx.layer.tops)

    def ops(self, ctx, bottoms) -> int:
        return 0


def check_first_axis(ctx, bottoms, i: int, j: int) -> None:
    """bottom i and bottom j have the same first dimension.  [loss_layer.cpp Reshape]"""
    names = ctx.layer.bottoms
    for k in (i, j):
        if not bottoms[k]:
            raise ctx.fail(f'bottom "{names[k]}" is a 0-axis scalar: a loss needs a first (batch) axis',
                           "bottom", k)
    if bottoms[i][0] != bottoms[j][0]:
        raise ctx.fail(f'bottoms "{names[i]}" {fmt_shape(bottoms[i])} and "{names[j]}" {fmt_shape(bottoms[j])} differ in '
                       f"their first axis ({bottoms[i][0]} vs {bottoms[j][0]})", "bottom", j,
                       hint="Caffe checks that the data and the label have the same first dimension "
                            "(one label per sample)")


def check_legacy_ones(ctx, bottoms, i: int, axes: tuple, what: str) -> None:
    """Caffe's legacy accessors channels()/height()/width() (axes 1, 2, 3) are 1 for bottom i: they need at most
    4 axes and read a missing axis as 1.  [blob.hpp LegacyShape]"""
    shape = bottoms[i]
    name = ctx.layer.bottoms[i]
    if len(shape) > 4:
        raise ctx.fail(f'bottom "{name}" {fmt_shape(shape)} has {len(shape)} axes; {what} is read with Caffe\'s '
                       "4-axis accessors", "bottom", i)
    bad = [a for a in axes if a < len(shape) and shape[a] != 1]
    if bad:
        names = {1: "channels", 2: "height", 3: "width"}
        listed = ", ".join(f"{names[a]} {shape[a]}" for a in bad)
        raise ctx.fail(f'bottom "{name}" {fmt_shape(shape)} must have {_and([names[a] for a in axes])} 1 '
                       f"({what}); it has {listed}", "bottom", i)


def check_label_count(ctx, bottoms, axis: int, field: str, sub: str, what: str) -> tuple[int, int]:
    """outer·inner around `axis` of bottom 0 equals the label count; returns (axis, outer·inner).
    [softmax_loss_layer.cpp, infogain_loss_layer.cpp, accuracy_layer.cpp Reshape]"""
    score, label = bottoms[0], bottoms[1]
    a = canonical_axis(ctx, axis, len(score), field, sub=sub)
    needed = count(score, 0, a) * count(score, a + 1)
    if needed != count(label):
        names = ctx.layer.bottoms
        dims = [str(d) for k, d in enumerate(score) if k != a]
        formula = "·".join(dims) if dims else "1"
        raise ctx.fail(f'the label "{names[1]}" {fmt_shape(label)} holds {count(label)} values but "{names[0]}" '
                       f"{fmt_shape(score)} with {what} axis {a} needs {formula} = {needed}", "bottom", 1,
                       hint=f"one label per position outside the class axis: with {what} axis 1 and scores "
                            "(N, C, H, W), the label holds N·H·W values, e.g. (N, 1, H, W) or (N, H, W)")
    return a, needed


@register
class SoftmaxWithLoss(Loss):
    type = "SoftmaxWithLoss"
    params = ("loss_param", "softmax_param")
    tops = (1, 2)

    def check(self, ctx, bottoms):
        """Labels = outer·inner of the scores around softmax_param.axis (default 1).
        [softmax_loss_layer.cpp Reshape]"""
        super().check(ctx, bottoms)
        check_label_count(ctx, bottoms, ctx.param.softmax_param.axis, "axis", "softmax_param", "softmax")

    def tops_for(self, ctx, bottoms):
        # An optional second top is the softmax probability, shaped like the scores.
        return [(), bottoms[0]][: len(ctx.layer.tops)]

    def ops(self, ctx, bottoms):
        return 3 * count(bottoms[0]) + 2 * count(bottoms[1])


@register
class SigmoidCrossEntropyLoss(Loss):
    type = "SigmoidCrossEntropyLoss"
    params = ("loss_param",)

    def check(self, ctx, bottoms):
        """Scores and targets have the same count.  [sigmoid_cross_entropy_loss_layer.cpp Reshape]"""
        super().check(ctx, bottoms)
        a, b = bottoms
        if count(a) != count(b):
            names = ctx.layer.bottoms
            raise ctx.fail(f'the scores "{names[0]}" {fmt_shape(a)} and the targets "{names[1]}" {fmt_shape(b)} differ in '
                           f"count ({count(a)} vs {count(b)})", "bottom", 1,
                           hint="SigmoidCrossEntropyLoss takes one target per score")

    def ops(self, ctx, bottoms):
        return 4 * count(bottoms[0])


@register
class EuclideanLoss(Loss):
    type = "EuclideanLoss"
    params = ("loss_param",)

    def check(self, ctx, bottoms):
        """Both inputs have the same count per sample (count from axis 1).  [euclidean_loss_layer.cpp Reshape]"""
        super().check(ctx, bottoms)
        a, b = bottoms
        if count(a, 1) != count(b, 1):
            names = ctx.layer.bottoms
            raise ctx.fail(f'"{names[0]}" {fmt_shape(a)} and "{names[1]}" {fmt_shape(b)} differ in their count per sample '
                           f"({count(a, 1)} vs {count(b, 1)})", "bottom", 1,
                           hint="EuclideanLoss compares the two inputs element by element")

    def ops(self, ctx, bottoms):
        return 2 * count(bottoms[0])


@register
class HingeLoss(Loss):
    type = "HingeLoss"
    params = ("loss_param", "hinge_loss_param")

    # Caffe checks nothing more than the first axis; the label is read as one class index per sample.
    def ops(self, ctx, bottoms):
        per = 3 if ctx.param.hinge_loss_param.norm == HingeLossParameter.L2 else 2
        return per * count(bottoms[0])


@register
class InfogainLoss(Loss):
    type = "InfogainLoss"
    params = ("loss_param", "infogain_loss_param")
    bottoms = (2, 3)  # the infogain matrix may come as a third bottom instead of a file
    tops = (1, 2)

    def check(self, ctx, bottoms):
        """Labels = outer·inner around infogain_loss_param.axis; H has C·C values (C = scores.shape[axis]),
        from a third bottom or the BlobProto file `source`.  [infogain_loss_layer.cpp LayerSetUp, Reshape]"""
        p = ctx.param
        if p.loss_param.HasField("normalize"):
            raise ctx.fail("InfogainLoss does not accept the deprecated loss_param.normalize", "normalize",
                           sub="loss_param", hint="use loss_param { normalization: VALID } (or FULL, BATCH_SIZE, "
                                                  "NONE)")
        if len(bottoms) < 3 and not p.infogain_loss_param.source:
            raise ctx.fail("the infogain matrix H is neither a third bottom nor a file", "infogain_loss_param",
                           hint='give infogain_loss_param { source: "H.binaryproto" } or H as a third bottom')
        super().check(ctx, bottoms)
        a, _ = check_label_count(ctx, bottoms, p.infogain_loss_param.axis, "axis", "infogain_loss_param",
                                 "infogain")
        c = bottoms[0][a]
        if len(bottoms) == 3:
            h = bottoms[2]
            if count(h) != c * c:
                raise ctx.fail(f'the infogain matrix "{ctx.layer.bottoms[2]}" {fmt_shape(h)} has {count(h)} values; '
                               f"{c} classes need {c}x{c} = {c * c}", "bottom", 2)
        else:
            self.check_source(ctx, c)

    def check_source(self, ctx, c: int) -> None:
        """H from the file: its count must be C·C.  A file that is not here is not an error (it may live on
        the machine that trains): netc says it could not check it."""
        source = ctx.param.infogain_loss_param.source
        candidates = [Path(source)]
        if ctx.base_dir is not None and not Path(source).is_absolute():
            candidates.append(Path(ctx.base_dir) / source)
        path = next((q for q in candidates if q.is_file()), None)
        if path is None:
            ctx.warn(f'the infogain matrix "{source}" is not found, so its size ({c}x{c}) is not checked',
                     "source", sub="infogain_loss_param")
            return
        dims = read_blob_dims(ctx, path, f'the infogain matrix "{source}"', "source", "infogain_loss_param")
        n = count(dims)
        if n != c * c:
            raise ctx.fail(f'the infogain matrix "{source}" {fmt_shape(dims)} has {n} values; {c} classes need '
                           f"{c}x{c} = {c * c}", "source", sub="infogain_loss_param")

    def tops_for(self, ctx, bottoms):
        return [(), bottoms[0]][: len(ctx.layer.tops)]

    def ops(self, ctx, bottoms):
        return 5 * count(bottoms[0])


@register
class MultinomialLogisticLoss(Loss):
    type = "MultinomialLogisticLoss"
    params = ("loss_param",)

    def check(self, ctx, bottoms):
        """The label has channels, height and width 1: (N), (N, 1) ... (N, 1, 1, 1).
        [multinomial_logistic_loss_layer.cpp Reshape]"""
        super().check(ctx, bottoms)
        check_legacy_ones(ctx, bottoms, 1, (1, 2, 3), "one class index per sample")

    def ops(self, ctx, bottoms):
        return 2 * bottoms[0][0]


@register
class ContrastiveLoss(Loss):
    type = "ContrastiveLoss"
    params = ("loss_param", "contrastive_loss_param")
    bottoms = (3, 3)

    def check(self, ctx, bottoms):
        """a and b are (N, C, 1, 1) with the same C, sim is (N, 1, 1, 1) (fewer axes read as 1).
        [contrastive_loss_layer.cpp LayerSetUp, then LossLayer::Reshape]"""
        a, b, _ = bottoms
        names = ctx.layer.bottoms
        for i in (0, 1):
            check_legacy_ones(ctx, bottoms, i, (2, 3), "a feature vector per sample")
        if (a[1] if len(a) > 1 else 1) != (b[1] if len(b) > 1 else 1):
            raise ctx.fail(f'"{names[0]}" {fmt_shape(a)} and "{names[1]}" {fmt_shape(b)} differ in their channels',
                           "bottom", 1, hint="the two feature vectors of a pair have the same length")
        check_legacy_ones(ctx, bottoms, 2, (1, 2, 3), "one similarity per pair")
        super().check(ctx, bottoms)

    def ops(self, ctx, bottoms):
        return 2 * count(bottoms[0]) + 4 * bottoms[0][0]


@register
class Accuracy(LayerRule):
    type = "Accuracy"
    params = ("accuracy_param",)
    bottoms = (2, 2)
    tops = (1, 2)  # the second top is the per-class accuracy
    in_place_note = "accuracy reduces its inputs to a scalar"

    def infer(self, ctx, bottoms):
        """top 0 = (); top 1 = (C,) with C = scores.shape[axis].  Labels = outer·inner around axis (no check
        of the first axis: Accuracy is not a LossLayer); top_k <= count(scores) / count(labels).
        [accuracy_layer.cpp Reshape]"""
        p = ctx.param.accuracy_param
        a, labels = check_label_count(ctx, bottoms, p.axis, "axis", "accuracy_param", "accuracy")
        classes = count(bottoms[0]) // labels if labels else 0
        if p.top_k > classes:
            raise ctx.fail(f"top_k {p.top_k} is more than the {classes} classes of "
                           f'"{ctx.layer.bottoms[0]}" {fmt_shape(bottoms[0])}', "top_k", sub="accuracy_param")
        tops = [(), (bottoms[0][a],)][: len(ctx.layer.tops)]
        return Inferred(tops=tops, other_ops=count(bottoms[0]))
