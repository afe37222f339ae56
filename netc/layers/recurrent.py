"""Recurrent layers.  Bottoms are x (T, N, ...) and cont (T, N), an optional static input, and with
`expose_hidden` the initial states; tops are the output and, with `expose_hidden`, the final states.
[recurrent_layer.hpp Min/MaxBottomBlobs, ExactNumTopBlobs]"""
from __future__ import annotations

from . import LayerRule, register


class Recurrent(LayerRule):
    params = ("recurrent_param",)
    states: int  # hidden state blobs: LSTM has c and h, RNN has h
    in_place_note = "it changes the blob's shape, so the top cannot reuse the bottom's memory"

    def blob_counts(self, layer):
        extra = self.states if layer.recurrent_param.expose_hidden else 0
        return (2 + extra, 3 + extra), (1 + extra, 1 + extra)


@register
class LSTM(Recurrent):
    type = "LSTM"
    states = 2


@register
class RNN(Recurrent):
    type = "RNN"
    states = 1


@register
class LSTMUnit(LayerRule):
    """One LSTM step: bottoms c_prev, x (the 4H gate inputs), cont; tops c, h."""

    type = "LSTMUnit"
    bottoms = (3, 3)
    tops = (2, 2)
