"""Loss and metric layers.  LossLayer subclasses weigh top 0 by 1 unless told otherwise, and Caffe creates
their top if the prototxt leaves it out.  [loss_layer.hpp]"""
from __future__ import annotations

from . import LayerRule, register


class Loss(LayerRule):
    bottoms = (2, 2)
    loss = True
    auto_top = True
    in_place_note = "a loss reduces its inputs to a scalar"


@register
class SoftmaxWithLoss(Loss):
    type = "SoftmaxWithLoss"
    params = ("loss_param", "softmax_param")
    tops = (1, 2)


@register
class SigmoidCrossEntropyLoss(Loss):
    type = "SigmoidCrossEntropyLoss"
    params = ("loss_param",)


@register
class EuclideanLoss(Loss):
    type = "EuclideanLoss"
    params = ("loss_param",)


@register
class HingeLoss(Loss):
    type = "HingeLoss"
    params = ("loss_param", "hinge_loss_param")


@register
class InfogainLoss(Loss):
    type = "InfogainLoss"
    params = ("loss_param", "infogain_loss_param")
    bottoms = (2, 3)  # the infogain matrix may come as a third bottom instead of a file
    tops = (1, 2)


@register
class MultinomialLogisticLoss(Loss):
    type = "MultinomialLogisticLoss"
    params = ("loss_param",)


@register
class ContrastiveLoss(Loss):
    type = "ContrastiveLoss"
    params = ("loss_param", "contrastive_loss_param")
    bottoms = (3, 3)


@register
class Accuracy(LayerRule):
    type = "Accuracy"
    params = ("accuracy_param",)
    bottoms = (2, 2)
    tops = (1, 2)  # the second top is the per-class accuracy
    in_place_note = "accuracy reduces its inputs to a scalar"
