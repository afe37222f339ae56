"""Element-wise layers (Caffe's NeuronLayer family): one bottom, one top of the same shape, in place allowed."""
from __future__ import annotations

from . import Inferred, LayerRule, register


class Neuron(LayerRule):
    in_place = "ok"
    # other_ops per output element (see analysis.py's conventions): one for every type, on purpose.  The
    # real instruction counts differ (Swish is an exp, a divide and a multiply; ReLU one compare), but one
    # op per element keeps the totals comparable and the convention easy to state.
    ops_per_element = 1

    def infer(self, ctx, bottoms):
        """top = bottom's shape.  [neuron_layer.cpp Reshape]"""
        shape = bottoms[0]
        n = 1
        for d in shape:
            n *= d
        return Inferred(tops=[shape], other_ops=self.ops_per_element * n, rf="same")


@register
class ReLU(Neuron):
    type = "ReLU"
    params = ("relu_param",)


@register
class PReLU(Neuron):
    type = "PReLU"
    params = ("prelu_param",)

    def infer(self, ctx, bottoms):
        """top = bottom's shape; one slope blob (C) with C = shape[1], or a 0-axis () if channel_shared.
        The bottom needs at least 2 axes (N, C, ...).  [prelu_layer.cpp LayerSetUp]"""
        shape = bottoms[0]
        if len(shape) < 2:
            raise ctx.fail(f'"{ctx.layer.bottoms[0]}" has shape ({", ".join(map(str, shape))}); PReLU needs at '
                           "least 2 axes (N, C, ...)", "bottom",
                           hint="PReLU learns one slope per channel of axis 1; Reshape the bottom first")
        inferred = super().infer(ctx, bottoms)
        inferred.blobs = [() if ctx.param.prelu_param.channel_shared else (shape[1],)]
        return inferred


@register
class ELU(Neuron):
    type = "ELU"
    params = ("elu_param",)


@register
class Sigmoid(Neuron):
    type = "Sigmoid"
    params = ("sigmoid_param",)


@register
class TanH(Neuron):
    type = "TanH"
    params = ("tanh_param",)


@register
class AbsVal(Neuron):
    type = "AbsVal"
    in_place = "refused"
    in_place_note = "Caffe's AbsVal layer checks that its top is not its bottom"


@register
class BNLL(Neuron):
    type = "BNLL"


@register
class Power(Neuron):
    type = "Power"
    params = ("power_param",)


@register
class Exp(Neuron):
    type = "Exp"
    params = ("exp_param",)


@register
class Log(Neuron):
    type = "Log"
    params = ("log_param",)


@register
class Threshold(Neuron):
    type = "Threshold"
    params = ("threshold_param",)


@register
class Clip(Neuron):
    type = "Clip"
    params = ("clip_param",)


@register
class Swish(Neuron):
    type = "Swish"
    params = ("swish_param",)


@register
class Dropout(Neuron):
    type = "Dropout"
    params = ("dropout_param",)
