"""Layers that route, reshape or combine blobs, and the normalisation and affine layers.

Each `infer` reproduces the Reshape (and the shape checks of LayerSetUp) of the Caffe file it names; where
Caffe CHECK-fails, netc reports a located error instead.

Cost conventions (see analysis.py):
- macs: InnerProduct M*K*N.  MACs count convolutions and fully connected layers only, as the published
  tables do; everything else goes to other_ops.
- other_ops: a bias add is one op per output element (InnerProduct, Embed with bias_term; the Bias layer);
  Scale one per element (the multiply; with bias_term the add folds into it);
  Eltwise count*(bottoms-1); Softmax 3 per element (exp, sum, divide; the max subtracted for stability is
  not counted); MVN 2 per element (sum, subtract), 5 with normalize_variance (+ square, sum, divide);
  BatchNorm 2 per element (subtract the mean, divide by the std: the inference form); Reduction and ArgMax
  one per bottom element.  Layers that only move data (Concat, Slice, Split, Flatten, Reshape, Crop, Tile,
  BatchReindex, Filter, Silence, Parameter) and Embed's lookup count nothing.
"""
from __future__ import annotations

from . import Inferred, LayerRule, Window, count, fmt_shape, register

_SHAPE_CHANGES = "it changes the blob's shape, so the top cannot reuse the bottom's memory"



def _axis(ctx, axis: int, shape, sub: str | None, field: str = "axis", bottom: int = 0) -> int:
    """Blob::CanonicalAxisIndex: -ndim <= axis < ndim, a negative axis counts from the end."""
    ndim = len(shape)
    if -ndim <= axis < ndim:
        return axis + ndim if axis < 0 else axis
    name = ctx.layer.bottoms[bottom]
    if ndim == 0:
        hint = f'"{name}" is a 0-axis scalar: it has no axis to choose'
    elif ndim == 1:
        hint = "a 1-axis blob has only axis 0 (or -1)"
    else:
        hint = f"a {ndim}-axis blob has axes 0 to {ndim - 1}, or -{ndim} to -1 counted from the end"
    raise ctx.fail(f'{field} {axis} is out of range for "{name}" {fmt_shape(shape)}', **_at(ctx, sub, field), hint=hint)


def _at(ctx, sub: str | None, field: str, index: int = 0) -> dict:
    """ctx.fail's location of a field that may be left out (its default applies): the field if written,
    else its *_param block, else the layer's name."""
    loc = ctx.layer.loc
    if sub is None:
        return {"field": field, "index": index} if loc.has_field_text(field) else {}
    if not loc.has_field_text(sub):
        return {}
    if loc.child(sub).has_field_text(field):
        return {"field": field, "index": index, "sub": sub}
    return {"field": sub}


def _axes(n: int) -> str:
    return f"{n} axis" if n == 1 else f"{n} axes"


def _legacy_axis(ctx, value: int, shape, sub: str, field: str) -> int:
    """A legacy unsigned axis (concat_dim, slice_dim): 0 <= value < ndim, no negative indexing."""
    if value < len(shape):
        return value
    raise ctx.fail(f'{field} {value} is out of range for "{ctx.layer.bottoms[0]}" {fmt_shape(shape)}', field, sub=sub,
                   hint=f"{field} counts axes from 0 and must be below {len(shape)}; axis also counts from the end")


@register
class InnerProduct(LayerRule):
    type = "InnerProduct"
    params = ("inner_product_param",)
    in_place_note = _SHAPE_CHANGES

    def infer(self, ctx, bottoms):
        """a = axis (negative from the end), K = count(a:), M = count(:a); top = shape[:a] + [N].
        Blobs W (N, K), or (K, N) with transpose, and b (N) iff bias_term.  [inner_product_layer.cpp]"""
        p = ctx.param.inner_product_param
        shape = bottoms[0]
        if not p.num_output:
            where = _at(ctx, "inner_product_param", "num_output")
            raise ctx.fail("num_output is required and must be positive", **where,
                           hint="inner_product_param { num_output: N } sets the number of outputs")
        a = _axis(ctx, p.axis, shape, "inner_product_param")
        n, k, m = p.num_output, count(shape, a), count(shape, 0, a)
        blobs = [(k, n) if p.transpose else (n, k)]
        if p.bias_term:
            blobs.append((n,))
        return Inferred(tops=[tuple(shape[:a]) + (n,)], blobs=blobs, macs=m * k * n,
                        other_ops=m * n if p.bias_term else 0)


@register
class Concat(LayerRule):
    type = "Concat"
    params = ("concat_param",)
    bottoms = (1, None)
    in_place_note = _SHAPE_CHANGES

    def infer(self, ctx, bottoms):
        """top = bottom 0 with top[a] = sum of every bottom's dim a; all other dims must agree.
        a = axis (negative from the end) or the legacy concat_dim, not both.  [concat_layer.cpp]"""
        p = ctx.param.concat_param
        names = ctx.layer.bottoms
        first = bottoms[0]
        if p.HasField("axis") and p.HasField("concat_dim"):
            raise ctx.fail("sets both axis and concat_dim", "concat_dim", sub="concat_param",
                           hint="concat_dim is the legacy name of axis: keep axis only")
        if p.HasField("concat_dim"):
            a = _legacy_axis(ctx, p.concat_dim, first, "concat_param", "concat_dim")
        else:
            a = _axis(ctx, p.axis, first, "concat_param")
        total = first[a]
        for i in range(1, len(bottoms)):
            b = bottoms[i]
            if len(b) != len(first):
                raise ctx.fail(f'bottoms need the same number of axes: "{names[0]}" is {fmt_shape(first)} but '
                               f'"{names[i]}" is {fmt_shape(b)}', "bottom", i,
                               hint="Concat does not broadcast; Reshape or Flatten one input first")
            for d in range(len(first)):
                if d != a and b[d] != first[d]:
                    raise ctx.fail(f'bottoms need equal shapes except on axis {a}: "{names[0]}" is {fmt_shape(first)} '
                                   f'but "{names[i]}" is {fmt_shape(b)}', "bottom", i,
                                   hint=f"axis {d} differs ({first[d]} vs {b[d]}); only axis {a} may differ "
                                        "(set concat_param { axis } to the axis to join on)")
            total += b[a]
        top = tuple(first[:a]) + (total,) + tuple(first[a + 1:])
        return Inferred(tops=[top], rf="merge")


@register
class Slice(LayerRule):
    type = "Slice"
    params = ("slice_param",)
    tops = (1, None)
    in_place_note = _SHAPE_CHANGES

    def infer(self, ctx, bottoms):
        """a = axis or the legacy slice_dim.  With slice_point p (one per top but the last, increasing):
        sizes [p0, p1-p0, ..., D-p_last]; without: D split evenly (D % tops == 0).  [slice_layer.cpp]"""
        p = ctx.param.slice_param
        shape = bottoms[0]
        ntops = len(ctx.layer.tops)
        if p.HasField("axis") and p.HasField("slice_dim"):
            raise ctx.fail("sets both axis and slice_dim", "slice_dim", sub="slice_param",
                           hint="slice_dim is the legacy name of axis: keep axis only")
        if p.HasField("slice_dim"):
            a = _legacy_axis(ctx, p.slice_dim, shape, "slice_param", "slice_dim")
        else:
            a = _axis(ctx, p.axis, shape, "slice_param")
        dim = shape[a]
        points = list(p.slice_point)
        if points:
            if len(points) != ntops - 1:
                raise ctx.fail(f"{len(points)} slice_point{'s' if len(points) != 1 else ''} for {ntops} tops",
                               "slice_point", min(len(points), ntops - 1), sub="slice_param",
                               hint=f"give one slice_point fewer than tops ({ntops - 1} here), or none to split "
                                    "evenly")
            if ntops > dim:
                raise ctx.fail(f"{ntops} tops but axis {a} of \"{ctx.layer.bottoms[0]}\" {fmt_shape(shape)} has only "
                               f"{dim} entries", "top", dim, hint="every top needs at least one entry")
            prev, sizes = 0, []
            for i, pt in enumerate(points):
                if pt <= prev:
                    raise ctx.fail(f"slice_point {pt} is not after the previous point {prev}", "slice_point", i,
                                   sub="slice_param", hint="slice points must strictly increase (and start above 0)")
                if pt > dim:
                    raise ctx.fail(f"slice_point {pt} is beyond axis {a} of \"{ctx.layer.bottoms[0]}\" "
                                   f"{fmt_shape(shape)}", "slice_point", i, sub="slice_param",
                                   hint=f"points must lie between 1 and {dim}")
                sizes.append(pt - prev)
                prev = pt
            sizes.append(dim - prev)
            if sizes[-1] == 0:
                ctx.warn(f'the last top "{ctx.layer.tops[-1]}" is empty: slice_point {prev} is the end of axis {a}',
                         "slice_point", len(points) - 1, sub="slice_param",
                         hint="Caffe accepts it and makes a top with no elements")
        else:
            if dim % ntops:
                raise ctx.fail(f"axis {a} of \"{ctx.layer.bottoms[0]}\" {fmt_shape(shape)} has {dim} entries, which "
                               f"{ntops} tops cannot share evenly", "slice_param",
                               hint="give slice_point values to choose uneven sizes")
            sizes = [dim // ntops] * ntops
        tops = [tuple(shape[:a]) + (s,) + tuple(shape[a + 1:]) for s in sizes]
        return Inferred(tops=tops, rf="same" if a < 2 else "none")


@register
class Split(LayerRule):
    type = "Split"
    tops = (1, None)
    in_place = "refused"
    in_place_note = "Caffe's Split layer checks that no top is its bottom"

    def infer(self, ctx, bottoms):
        """Every top is the bottom's shape (shared data).  [split_layer.cpp]"""
        return Inferred(tops=[bottoms[0]] * len(ctx.layer.tops), rf="same")


@register
class Eltwise(LayerRule):
    type = "Eltwise"
    params = ("eltwise_param",)
    bottoms = (2, None)
    in_place_note = "Caffe's Eltwise zeroes its top before adding the bottoms, destroying bottom 0"

    def infer(self, ctx, bottoms):
        """All bottoms have the same shape (no broadcasting), top = that shape.  coeff: none or one per
        bottom; PROD with coeff is fatal, MAX ignores them.  [eltwise_layer.cpp]"""
        from ..caffe_pb2 import EltwiseParameter

        p = ctx.param.eltwise_param
        names = ctx.layer.bottoms
        nc, nb = len(p.coeff), len(bottoms)
        if nc and nc != nb:
            raise ctx.fail(f"{nc} coeff value{'s' if nc != 1 else ''} for {nb} bottoms", "coeff", min(nc, nb),
                           sub="eltwise_param", hint="give one coeff per bottom, in bottom order, or none")
        if nc and p.operation == EltwiseParameter.PROD:
            raise ctx.fail("coeff is only for operation SUM", "coeff", sub="eltwise_param",
                           hint="PROD multiplies the bottoms as they are; remove coeff")
        if nc and p.operation == EltwiseParameter.MAX:
            ctx.warn("coeff is ignored by operation MAX", "coeff", sub="eltwise_param",
                     hint="Caffe accepts it but only SUM uses it; remove coeff")
        first = bottoms[0]
        for i in range(1, nb):
            if tuple(bottoms[i]) != tuple(first):
                raise ctx.fail(f'bottoms need the same shape: "{names[0]}" is {fmt_shape(first)} but "{names[i]}" is '
                               f'{fmt_shape(bottoms[i])}', "bottom", i,
                               hint="Eltwise does not broadcast; use Scale or Bias with a second bottom for that")
        return Inferred(tops=[first], other_ops=count(first) * (nb - 1), rf="merge")


@register
class Flatten(LayerRule):
    type = "Flatten"
    params = ("flatten_param",)
    in_place = "refused"
    in_place_note = "Caffe's Flatten layer checks that its top is not its bottom"

    def infer(self, ctx, bottoms):
        """top = shape[:a] + [count(a, e+1)] + shape[e+1:], a = axis, e = end_axis (negative from the end).
        e = a-1 inserts an axis of 1 (an empty product); e < a-1 is fatal.  [flatten_layer.cpp]"""
        p = ctx.param.flatten_param
        shape = bottoms[0]
        a = _axis(ctx, p.axis, shape, "flatten_param")
        e = _axis(ctx, p.end_axis, shape, "flatten_param", "end_axis")
        if e + 1 < a:
            raise ctx.fail(f"end_axis {p.end_axis} comes before axis {p.axis}", **_at(ctx, "flatten_param", "end_axis"),
                           hint="Flatten merges the axes from axis to end_axis: end_axis must not come first")
        top = tuple(shape[:a]) + (count(shape, a, e + 1),) + tuple(shape[e + 1:])
        return Inferred(tops=[top])


@register
class Reshape(LayerRule):
    type = "Reshape"
    params = ("reshape_param",)
    in_place = "refused"
    in_place_note = "Caffe's Reshape layer checks that its top is not its bottom"

    def infer(self, ctx, bottoms):
        """Axes [a, a+num_axes) of the bottom (all from a if num_axes is -1) are replaced by shape.dim.
        A negative axis counts as ndim+axis+1 (-1: after the last axis).  dim 0 copies the bottom's dim at
        a+i, one -1 is inferred from the count; the counts must match.  [reshape_layer.cpp]"""
        p = ctx.param.reshape_param
        shape = bottoms[0]
        name = ctx.layer.bottoms[0]
        ndim = len(shape)
        dims = list(p.shape.dim)
        sub = "reshape_param"
        inferred = [i for i, d in enumerate(dims) if d == -1]
        if len(inferred) > 1:
            raise ctx.fail(f"shape has {len(inferred)} dims of -1", "shape", sub=sub,
                           hint="only one dim can be inferred from the count; give the others (0 copies one)")
        bad = [d for d in dims if d < -1]
        if bad:
            raise ctx.fail(f"shape has the dim {bad[0]}", "shape", sub=sub,
                           hint="a dim is positive, 0 (copy the bottom's dim) or -1 (infer it)")
        a = p.axis if p.axis >= 0 else ndim + p.axis + 1
        if not 0 <= a <= ndim:
            raise ctx.fail(f'axis {p.axis} is out of range for "{name}" {fmt_shape(shape)}', "axis", sub=sub,
                           hint=f"axis runs from 0 to {ndim}, or from -{ndim + 1} to -1 counted from after the "
                                "last axis")
        if p.num_axes < -1:
            raise ctx.fail(f"num_axes {p.num_axes} is negative", "num_axes", sub=sub,
                           hint="num_axes is the number of bottom axes to replace, or -1 for all from axis")
        end = ndim if p.num_axes == -1 else a + p.num_axes
        if end > ndim:
            raise ctx.fail(f'axis {p.axis} + num_axes {p.num_axes} runs past the {_axes(ndim)} of "{name}" '
                           f'{fmt_shape(shape)}', **_at(ctx, sub, "num_axes"),
                           hint=f'"{name}" has {_axes(ndim - a)} from axis {a} on; num_axes -1 replaces all of them')
        new = list(dims)
        for i, d in enumerate(dims):
            if d == 0:
                if a + i >= ndim:
                    raise ctx.fail(f'shape dim {i} is 0 but "{name}" {fmt_shape(shape)} has no axis {a + i} to copy',
                                   "shape", sub=sub, hint="dim 0 copies the bottom's dim at the same position "
                                                          "(counted from axis); give the size instead")
                new[i] = shape[a + i]
        if inferred:
            known = count(shape, 0, a) * count(shape, end) * count([d for d in new if d != -1])
            total = count(shape)
            if known == 0 or total % known:
                raise ctx.fail(f'cannot infer the -1 dim: "{name}" {fmt_shape(shape)} has count {total}, not a '
                               f'multiple of {known} (the other dims)', "shape", sub=sub,
                               hint="the given dims must divide the bottom's count")
            new[inferred[0]] = total // known
        top = tuple(shape[:a]) + tuple(new) + tuple(shape[end:])
        if count(top) != count(shape):
            raise ctx.fail(f'the new shape {fmt_shape(top)} has count {count(top)} but "{name}" {fmt_shape(shape)} has '
                           f'count {count(shape)}', **_at(ctx, sub, "shape"),
                           hint="Reshape keeps every element: use 0 to copy a bottom dim and -1 to infer one")
        return Inferred(tops=[top])


@register
class Crop(LayerRule):
    type = "Crop"
    params = ("crop_param",)
    bottoms = (2, 2)
    in_place_note = _SHAPE_CHANGES

    def infer(self, ctx, bottoms):
        """Dims >= a (axis, default 2) take bottom 1's size, the others keep bottom 0's; offset is given
        0 times (all 0), once (every cropped dim) or once per cropped dim; bottom0 - offset >= bottom1 per
        cropped dim.  [crop_layer.cpp]"""
        p = ctx.param.crop_param
        data, ref = bottoms
        names = ctx.layer.bottoms
        sub = "crop_param"
        ndim = len(data)
        a = _axis(ctx, p.axis, data, sub)
        offsets = list(p.offset)
        if len(offsets) > 1 and a + len(offsets) != ndim:
            raise ctx.fail(f"{len(offsets)} offsets for the {_axes(ndim - a)} from axis {a}", "offset",
                           min(len(offsets), ndim - a), sub=sub,
                           hint=f"give one offset for every axis from {a} to {ndim - 1}, or a single one for all")
        if len(ref) < ndim:
            raise ctx.fail(f'the reference "{names[1]}" {fmt_shape(ref)} has fewer axes than "{names[0]}" '
                           f'{fmt_shape(data)}', "bottom", 1,
                           hint="bottom 1 gives the size of every axis from axis on, so it needs as many axes")
        top, offs = [], []
        for i in range(ndim):
            if i < a:
                top.append(data[i])
                offs.append(0)
                continue
            off = offsets[0] if len(offsets) == 1 else offsets[i - a] if offsets else 0
            if data[i] - off < ref[i]:
                if data[i] >= ref[i]:
                    hint = f"on axis {i} the offset can be at most {data[i] - ref[i]}"
                else:
                    hint = f'"{names[0]}" is smaller than "{names[1]}" on axis {i}: no offset fits'
                where = {"field": "offset", "index": 0 if len(offsets) == 1 else i - a, "sub": sub} \
                    if offsets else {"field": "bottom", "index": 1}
                raise ctx.fail(f'crop of axis {i} is out of bounds: "{names[0]}" has {data[i]}, offset {off} '
                               f'leaves {data[i] - off}, but "{names[1]}" needs {ref[i]}', **where, hint=hint)
            top.append(ref[i])
            offs.append(off)
        if ndim == 4:
            # A crop shifts the window by its offset: a 1-wide window with padding -offset says exactly that.
            return Inferred(tops=[tuple(top)], rf="window",
                            windows=[Window(1, 1, -offs[2]), Window(1, 1, -offs[3])])
        return Inferred(tops=[tuple(top)])


@register
class Tile(LayerRule):
    type = "Tile"
    params = ("tile_param",)
    in_place_note = _SHAPE_CHANGES

    def infer(self, ctx, bottoms):
        """top = bottom with top[axis] *= tiles (tiles required, > 0).  [tile_layer.cpp]"""
        p = ctx.param.tile_param
        shape = bottoms[0]
        a = _axis(ctx, p.axis, shape, "tile_param")
        if not p.HasField("tiles"):
            raise ctx.fail("tiles is required", **_at(ctx, "tile_param", "tiles"),
                           hint="tile_param { tiles: N } repeats the blob N times along axis")
        if p.tiles <= 0:
            raise ctx.fail(f"tiles {p.tiles} is not positive", "tiles", sub="tile_param",
                           hint="tiles is the number of copies along axis, at least 1")
        top = tuple(shape[:a]) + (shape[a] * p.tiles,) + tuple(shape[a + 1:])
        return Inferred(tops=[top], rf="same" if a < 2 else "none")


@register
class Reduction(LayerRule):
    type = "Reduction"
    params = ("reduction_param",)
    in_place_note = _SHAPE_CHANGES

    def infer(self, ctx, bottoms):
        """Reduces every axis from axis to the end: top = shape[:axis] (axis 0: a 0-axis scalar).
        [reduction_layer.cpp]"""
        shape = bottoms[0]
        a = _axis(ctx, ctx.param.reduction_param.axis, shape, "reduction_param")
        return Inferred(tops=[tuple(shape[:a])], other_ops=count(shape))


@register
class ArgMax(LayerRule):
    type = "ArgMax"
    params = ("argmax_param",)
    in_place_note = _SHAPE_CHANGES

    def infer(self, ctx, bottoms):
        """With axis: the bottom's shape with [axis] = top_k (top_k <= that dim).  Without: max(3, ndim) axes
        of 1 with [0] = N, [2] = top_k and [1] = 2 if out_max_val (top_k <= count(1:)).  [argmax_layer.cpp]"""
        p = ctx.param.argmax_param
        shape = bottoms[0]
        sub = "argmax_param"
        if p.top_k < 1:
            raise ctx.fail("top_k must be at least 1", "top_k", sub=sub, hint="top_k is how many maxima to keep")
        if p.HasField("axis"):
            a = _axis(ctx, p.axis, shape, sub)
            if p.top_k > shape[a]:
                raise ctx.fail(f'top_k {p.top_k} is more than the {shape[a]} entries of axis {a} of '
                               f'"{ctx.layer.bottoms[0]}" {fmt_shape(shape)}', "top_k", sub=sub,
                               hint=f"top_k can be at most {shape[a]} here")
            top = tuple(shape[:a]) + (p.top_k,) + tuple(shape[a + 1:])
        else:
            if not shape:
                raise ctx.fail(f'"{ctx.layer.bottoms[0]}" is a 0-axis scalar', "bottom",
                               hint="ArgMax without axis reads the bottom as (N, ...)")
            per = count(shape, 1)
            if p.top_k > per:
                raise ctx.fail(f'top_k {p.top_k} is more than the {per} values per item of "{ctx.layer.bottoms[0]}" '
                               f'{fmt_shape(shape)}', "top_k", sub=sub, hint=f"top_k can be at most {per} here")
            top = [1] * max(3, len(shape))
            top[0] = shape[0]
            top[2] = p.top_k
            if p.out_max_val:
                top[1] = 2
            top = tuple(top)
        return Inferred(tops=[top], other_ops=count(shape))


@register
class Softmax(LayerRule):
    type = "Softmax"
    params = ("softmax_param",)
    in_place = "ok"  # its backward reads only the top

    def infer(self, ctx, bottoms):
        """top = bottom's shape; axis (negative from the end) must exist.  [softmax_layer.cpp]"""
        shape = bottoms[0]
        _axis(ctx, ctx.param.softmax_param.axis, shape, "softmax_param")
        return Inferred(tops=[shape], other_ops=3 * count(shape), rf="same")


@register
class MVN(LayerRule):
    type = "MVN"
    params = ("mvn_param",)

    def infer(self, ctx, bottoms):
        """top = (num, channels, height, width): the bottom read through Caffe's legacy 4-D accessors, so a
        bottom of fewer axes gets trailing 1s ((N, C) -> (N, C, 1, 1)) and more than 4 axes is fatal.
        [mvn_layer.cpp Reshape]"""
        shape = bottoms[0]
        if len(shape) > 4:
            raise ctx.fail(f'"{ctx.layer.bottoms[0]}" {fmt_shape(shape)} has {len(shape)} axes; MVN takes at most 4',
                           "bottom", hint="MVN reads its bottom as (N, C, H, W); Reshape it to 4 axes first")
        top = tuple(shape) + (1,) * (4 - len(shape))
        per = 5 if ctx.param.mvn_param.normalize_variance else 2
        return Inferred(tops=[top], other_ops=per * count(shape), rf="same")


@register
class BatchNorm(LayerRule):
    type = "BatchNorm"
    params = ("batch_norm_param",)
    in_place = "ok"  # keeps a copy of its input for backward

    def infer(self, ctx, bottoms):
        """top = bottom's shape; blobs mean (C), variance (C), scale factor (1), C = shape[1], not learnable.
        [batch_norm_layer.cpp]"""
        shape = bottoms[0]
        name = ctx.layer.bottoms[0]
        if len(shape) < 2:
            # LayerSetUp takes C = 1 for a 1-axis bottom, but Reshape then reads shape(1), which such a blob
            # does not have: Caffe aborts.  [batch_norm_layer.cpp Reshape]
            raise ctx.fail(f'"{name}" {fmt_shape(shape)} has {_axes(len(shape))}; BatchNorm needs (N, C, ...)', "bottom",
                           hint="Caffe's BatchNorm reads the channel count from axis 1; Reshape the bottom to "
                                "(N, C) first")
        for i, spec in enumerate(ctx.param.param[:3]):
            if spec.lr_mult != 0:
                given = "" if spec.HasField("lr_mult") else " (the default)"
                raise ctx.fail(f"param {i} has lr_mult {spec.lr_mult:g}{given}; BatchNorm's statistics are not "
                               "trained", "param", i,
                               hint="use lr_mult: 0 (or leave the param blocks out: Caffe adds them); the trainable "
                                    "gamma/beta belong in a Scale layer")
        c = shape[1]
        # Caffe BatchNorm keeps 3 blobs (mean, variance, scale factor) = 2C+1 values, none learnable;
        # gamma/beta live in a separate Scale layer.
        return Inferred(tops=[shape], blobs=[(c,), (c,), (1,)], learnable=False, other_ops=2 * count(shape),
                        rf="same")


def _operand(ctx, bottoms, sub: str, p, kind: str) -> tuple:
    """The shape of Scale's gamma / Bias's b: a learned blob bottom0.shape[axis : axis+num_axes] (num_axes -1:
    every trailing axis, 0: a scalar), or bottom 1, which must equal bottom0.shape[axis : axis+ndim(b1)]
    (a 0-axis bottom 1 broadcasts over everything).  [scale_layer.cpp, bias_layer.cpp]"""
    shape = bottoms[0]
    names = ctx.layer.bottoms
    if len(bottoms) == 1:
        a = _axis(ctx, p.axis, shape, sub)
        if p.num_axes < -1:
            raise ctx.fail(f"num_axes {p.num_axes} is negative", "num_axes", sub=sub,
                           hint=f"num_axes is the number of axes the {kind} spans from axis; -1 means all of them")
        if p.num_axes >= 0 and a + p.num_axes > len(shape):
            raise ctx.fail(f'axis {p.axis} + num_axes {p.num_axes} runs past the {_axes(len(shape))} of '
                           f'"{names[0]}" {fmt_shape(shape)}', **_at(ctx, sub, "num_axes"),
                           hint=f'"{names[0]}" has {_axes(len(shape) - a)} from axis {a} on; num_axes -1 takes all '
                                'of them')
        return tuple(shape[a:]) if p.num_axes == -1 else tuple(shape[a:a + p.num_axes])
    other = tuple(bottoms[1])
    if not other:
        return other
    a = _axis(ctx, p.axis, shape, sub)
    if tuple(shape[a:a + len(other)]) != other:
        span = shape[a:a + len(other)]
        raise ctx.fail(f'"{names[1]}" {fmt_shape(other)} must match axes {a}..{a + len(other) - 1} of "{names[0]}" '
                       f'{fmt_shape(shape)}, which are {fmt_shape(span)}', "bottom", 1,
                       hint=f"the second bottom lines up with the first from {sub} {{ axis }} (here {a}) on")
    return other


@register
class Scale(LayerRule):
    type = "Scale"
    params = ("scale_param",)
    bottoms = (1, 2)
    in_place = "ok"

    def infer(self, ctx, bottoms):
        """top = bottom 0's shape.  Blobs: gamma (see _operand) unless it comes from bottom 1, then beta of the
        operand's shape iff bias_term.  One MAC per element.  [scale_layer.cpp]"""
        p = ctx.param.scale_param
        gamma = _operand(ctx, bottoms, "scale_param", p, "scale")
        blobs = [] if len(bottoms) == 2 else [gamma]
        if p.bias_term:
            if len(bottoms) == 2 and not gamma:
                # Caffe's inner Bias layer still resolves axis against bottom 0.
                _axis(ctx, p.axis, bottoms[0], "scale_param")
            blobs.append(gamma)
        return Inferred(tops=[bottoms[0]], blobs=blobs, other_ops=count(bottoms[0]), rf="same")


@register
class Bias(LayerRule):
    type = "Bias"
    params = ("bias_param",)
    bottoms = (1, 2)
    in_place = "ok"

    def infer(self, ctx, bottoms):
        """top = bottom 0's shape; blob b (see _operand) unless it comes from bottom 1.  [bias_layer.cpp]"""
        b = _operand(ctx, bottoms, "bias_param", ctx.param.bias_param, "bias")
        return Inferred(tops=[bottoms[0]], blobs=[] if len(bottoms) == 2 else [b], other_ops=count(bottoms[0]),
                        rf="same")


@register
class Embed(LayerRule):
    type = "Embed"
    params = ("embed_param",)
    in_place_note = _SHAPE_CHANGES

    def infer(self, ctx, bottoms):
        """top = bottom's shape + [num_output]; W (input_dim, num_output), b (num_output) iff bias_term;
        both sizes required and positive.  [embed_layer.cpp]"""
        p = ctx.param.embed_param
        for name, what in (("num_output", "the size of each embedding vector"),
                           ("input_dim", "the number of rows: indices run from 0 to input_dim-1")):
            if getattr(p, name) <= 0:
                raise ctx.fail(f"{name} is required and must be positive", **_at(ctx, "embed_param", name),
                               hint=f"embed_param {{ {name}: N }} sets {what}")
        shape = tuple(bottoms[0])
        blobs = [(p.input_dim, p.num_output)]
        if p.bias_term:
            blobs.append((p.num_output,))
        return Inferred(tops=[shape + (p.num_output,)], blobs=blobs,
                        other_ops=count(shape) * p.num_output if p.bias_term else 0)


@register
class BatchReindex(LayerRule):
    type = "BatchReindex"
    bottoms = (2, 2)
    in_place_note = _SHAPE_CHANGES

    def infer(self, ctx, bottoms):
        """top = (len(idx),) + data.shape[1:]; idx has exactly 1 axis.  [batch_reindex_layer.cpp]"""
        data, idx = bottoms
        if len(idx) != 1:
            raise ctx.fail(f'the index bottom "{ctx.layer.bottoms[1]}" {fmt_shape(idx)} must have 1 axis', "bottom", 1,
                           hint="bottom 1 lists the items of bottom 0 to pick, as a 1-axis blob")
        if not data:
            raise ctx.fail(f'"{ctx.layer.bottoms[0]}" is a 0-axis scalar', "bottom",
                           hint="BatchReindex picks items along axis 0 of bottom 0")
        return Inferred(tops=[(idx[0],) + tuple(data[1:])], rf="same")


@register
class Filter(LayerRule):
    type = "Filter"
    bottoms = (2, None)
    tops = (1, None)
    in_place_note = _SHAPE_CHANGES

    def infer(self, ctx, bottoms):
        """Top i = bottom i's shape.  The selector (the last bottom) is (N, 1, ...) and every other bottom
        has N items.  The real first dim is the number of non-zero selectors, known only from the data:
        like Caffe's first Reshape, netc uses N (an upper bound).  [filter_layer.cpp]"""
        selector = bottoms[-1]
        names = ctx.layer.bottoms
        last = len(bottoms) - 1
        if not selector:
            raise ctx.fail(f'the selector "{names[last]}" is a 0-axis scalar', "bottom", last,
                           hint="the selector holds one value per item: (N) or (N, 1, ...)")
        if any(d != 1 for d in selector[1:]):
            raise ctx.fail(f'the selector "{names[last]}" {fmt_shape(selector)} must be 1 on every axis after the first',
                           "bottom", last, hint="the selector holds one value per item: (N) or (N, 1, ...)")
        for i, b in enumerate(bottoms[:-1]):
            if not b or b[0] != selector[0]:
                raise ctx.fail(f'"{names[i]}" {fmt_shape(b)} must have as many items as the selector "{names[last]}" '
                               f'{fmt_shape(selector)}', "bottom", i, hint="axis 0 of every bottom is the item axis")
        return Inferred(tops=[tuple(b) for b in bottoms[:-1]], rf="same" if last == 1 else "none")


@register
class Silence(LayerRule):
    type = "Silence"
    bottoms = (1, None)
    tops = (0, 0)

    def infer(self, ctx, bottoms):
        """No tops: it only consumes its bottoms.  [silence_layer.cpp]"""
        return Inferred(tops=[])


@register
class Parameter(LayerRule):
    type = "Parameter"
    params = ("parameter_param",)
    bottoms = (0, 0)

    def infer(self, ctx, bottoms):
        """One learnable blob of parameter_param.shape, which is also top 0 (no shape: a 0-axis scalar).
        [parameter_layer.hpp]"""
        dims = tuple(ctx.param.parameter_param.shape.dim)
        if any(d < 0 for d in dims):
            raise ctx.fail(f"shape {fmt_shape(dims)} has a negative dim", "shape", sub="parameter_param",
                           hint="every dim of a Parameter blob is a size, at least 0")
        return Inferred(tops=[dims], blobs=[dims])
