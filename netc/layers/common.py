"""Layers that route, reshape or combine blobs, and the normalisation and affine layers."""
from __future__ import annotations

from . import LayerRule, register

_SHAPE_CHANGES = "it changes the blob's shape, so the top cannot reuse the bottom's memory"


@register
class InnerProduct(LayerRule):
    type = "InnerProduct"
    params = ("inner_product_param",)
    in_place_note = _SHAPE_CHANGES


@register
class Concat(LayerRule):
    type = "Concat"
    params = ("concat_param",)
    bottoms = (1, None)
    in_place_note = _SHAPE_CHANGES


@register
class Slice(LayerRule):
    type = "Slice"
    params = ("slice_param",)
    tops = (1, None)
    in_place_note = _SHAPE_CHANGES


@register
class Split(LayerRule):
    type = "Split"
    tops = (1, None)
    in_place = "refused"
    in_place_note = "Caffe's Split layer checks that no top is its bottom"


@register
class Eltwise(LayerRule):
    type = "Eltwise"
    params = ("eltwise_param",)
    bottoms = (2, None)
    in_place_note = "Caffe's Eltwise zeroes its top before adding the bottoms, destroying bottom 0"


@register
class Flatten(LayerRule):
    type = "Flatten"
    params = ("flatten_param",)
    in_place = "refused"
    in_place_note = "Caffe's Flatten layer checks that its top is not its bottom"


@register
class Reshape(LayerRule):
    type = "Reshape"
    params = ("reshape_param",)
    in_place = "refused"
    in_place_note = "Caffe's Reshape layer checks that its top is not its bottom"


@register
class Crop(LayerRule):
    type = "Crop"
    params = ("crop_param",)
    bottoms = (2, 2)
    in_place_note = _SHAPE_CHANGES


@register
class Tile(LayerRule):
    type = "Tile"
    params = ("tile_param",)
    in_place_note = _SHAPE_CHANGES


@register
class Reduction(LayerRule):
    type = "Reduction"
    params = ("reduction_param",)
    in_place_note = _SHAPE_CHANGES


@register
class ArgMax(LayerRule):
    type = "ArgMax"
    params = ("argmax_param",)
    in_place_note = _SHAPE_CHANGES


@register
class Softmax(LayerRule):
    type = "Softmax"
    params = ("softmax_param",)
    in_place = "ok"  # its backward reads only the top


@register
class MVN(LayerRule):
    type = "MVN"
    params = ("mvn_param",)


@register
class BatchNorm(LayerRule):
    type = "BatchNorm"
    params = ("batch_norm_param",)
    in_place = "ok"  # keeps a copy of its input for backward


@register
class Scale(LayerRule):
    type = "Scale"
    params = ("scale_param",)
    bottoms = (1, 2)
    in_place = "ok"


@register
class Bias(LayerRule):
    type = "Bias"
    params = ("bias_param",)
    bottoms = (1, 2)
    in_place = "ok"


@register
class Embed(LayerRule):
    type = "Embed"
    params = ("embed_param",)
    in_place_note = _SHAPE_CHANGES


@register
class BatchReindex(LayerRule):
    type = "BatchReindex"
    bottoms = (2, 2)
    in_place_note = _SHAPE_CHANGES


@register
class Filter(LayerRule):
    type = "Filter"
    bottoms = (2, None)
    tops = (1, None)
    in_place_note = _SHAPE_CHANGES


@register
class Silence(LayerRule):
    type = "Silence"
    bottoms = (1, None)
    tops = (0, 0)


@register
class Parameter(LayerRule):
    type = "Parameter"
    params = ("parameter_param",)
    bottoms = (0, 0)
