"""Spatial layers: convolution, deconvolution, pooling, LRN, im2col, SPP."""
from __future__ import annotations

from . import LayerRule, register

_SHAPE_CHANGES = "it changes the blob's shape, so the top cannot reuse the bottom's memory"


@register
class Convolution(LayerRule):
    type = "Convolution"
    params = ("convolution_param",)
    # Several bottoms are allowed: each gives its own top with the same weights.
    bottoms = (1, None)
    tops = (1, None)
    equal_bottoms_tops = True
    in_place_note = _SHAPE_CHANGES


@register
class Deconvolution(Convolution):
    type = "Deconvolution"


@register
class Im2col(LayerRule):
    type = "Im2col"
    params = ("convolution_param",)
    in_place_note = _SHAPE_CHANGES


@register
class Pooling(LayerRule):
    type = "Pooling"
    params = ("pooling_param",)
    tops = (1, 2)
    in_place_note = _SHAPE_CHANGES

    def blob_counts(self, layer):
        # Only MAX pooling has the optional second top (the argmax mask).  [pooling_layer.hpp MaxTopBlobs]
        from ..caffe_pb2 import PoolingParameter
        max_tops = 2 if layer.pooling_param.pool == PoolingParameter.MAX else 1
        return self.bottoms, (1, max_tops)


@register
class SPP(LayerRule):
    type = "SPP"
    params = ("spp_param",)
    in_place_note = _SHAPE_CHANGES


@register
class LRN(LayerRule):
    type = "LRN"
    params = ("lrn_param",)
    in_place_note = "LRN's backward reads its input, which an in-place top has overwritten"
