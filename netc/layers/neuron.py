"""Element-wise layers (Caffe's NeuronLayer family): one bottom, one top of the same shape, in place allowed."""
from __future__ import annotations

from . import LayerRule, register


class Neuron(LayerRule):
    in_place = "ok"


@register
class ReLU(Neuron):
    type = "ReLU"
    params = ("relu_param",)


@register
class PReLU(Neuron):
    type = "PReLU"
    params = ("prelu_param",)


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
