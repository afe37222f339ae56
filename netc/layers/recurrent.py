"""Recurrent layers.  Bottoms are x (T, N, ...) and cont (T, N), an optional static input, and with
`expose_hidden` the initial states; tops are the output and, with `expose_hidden`, the final states.
[recurrent_layer.hpp Min/MaxBottomBlobs, ExactNumTopBlobs]

Bottom order (recurrent_layer.cpp): x, cont, [x_static], then the exposed initial states in the order of
RecurrentInputBlobNames: LSTM h_0, c_0; RNN h_0.  A static input is present when there are more bottoms than
2 + the exposed states.  Top order: the output (T, N, H), then the final states (1, N, H) in the same order.

Costs, with D = count(x, 2), D_s = count(x_static, 1), H = num_output, s = 1 with a static input:

    LSTM  macs  T·N·D·4H (W_xc) + N·D_s·4H (W_xc_static, once per forward) + T·N·H·4H (W_hc)
          other_ops  T·N·H·(4 bias + 4(1+s) gate sums + 1 cont scaling + 10 in LSTMUnit)
    RNN   macs  T·N·D·H (W_xh) + N·D_s·H (W_xh_static) + T·N·H·H (W_hh) + T·N·H·H (W_ho)
          other_ops  T·N·H·(1 bias b_h + (1+s) sums + 1 cont scaling + 2 tanh + 1 bias b_o)
    LSTMUnit  other_ops 10 per hidden unit: 3 sigmoids, 2 tanh, c = cont·f·c_prev + i·g, h = o·tanh(c)
"""
from __future__ import annotations

from . import Inferred, LayerRule, count, fmt_shape, register



class Recurrent(LayerRule):
    params = ("recurrent_param",)
    states: tuple[str, ...]  # hidden state blobs, in Caffe's RecurrentInputBlobNames order
    gates: int               # rows of the input weight per hidden unit (LSTM 4: i, f, o, g; RNN 1)
    in_place_note = "it changes the blob's shape, so the top cannot reuse the bottom's memory"

    def blob_counts(self, layer):
        extra = len(self.states) if layer.recurrent_param.expose_hidden else 0
        return (2 + extra, 3 + extra), (1 + extra, 1 + extra)

    def infer(self, ctx, bottoms):
        """top 0 = (T, N, num_output); exposed final states (1, N, num_output).
        [recurrent_layer.cpp LayerSetUp/Reshape, lstm_layer.cpp / rnn_layer.cpp FillUnrolledNet]"""
        p = ctx.param.recurrent_param
        names = ctx.layer.bottoms
        x, cont = bottoms[0], bottoms[1]
        if len(x) < 2:
            raise ctx.fail(f'the input "{names[0]}" {fmt_shape(x)} needs at least 2 axes: (T timesteps, N streams, '
                           "...)", "bottom", 0)
        t, n = x[0], x[1]
        if tuple(cont) != (t, n):
            raise ctx.fail(f'the sequence indicators "{names[1]}" {fmt_shape(cont)} must be (T, N) = ({t}, {n}), the '
                           f'first two axes of "{names[0]}" {fmt_shape(x)}', "bottom", 1)
        h = p.num_output
        if h <= 0:
            raise ctx.fail("recurrent_param.num_output must be positive (it is the hidden size H)",
                           "num_output", sub="recurrent_param")
        exposed = len(self.states) if p.expose_hidden else 0
        static = len(bottoms) > 2 + exposed
        d_static = 0
        if static:
            xs = bottoms[2]
            if not xs or xs[0] != n:
                raise ctx.fail(f'the static input "{names[2]}" {fmt_shape(xs)} must have N = {n} streams as its '
                               "first axis", "bottom", 2)
            d_static = count(xs, 1)
        state_shape = (1, n, h)
        for j in range(exposed):
            i = 2 + static + j
            if tuple(bottoms[i]) != state_shape:
                raise ctx.fail(f'the initial state {self.states[j]} "{names[i]}" {fmt_shape(bottoms[i])} must be '
                               f"(1, N, num_output) = {fmt_shape(state_shape)}", "bottom", i)
        d = count(x, 2)
        tops = [(t, n, h)] + [state_shape] * exposed
        return Inferred(tops=tops, blobs=self.blobs(h, d, d_static if static else None),
                        macs=self.macs(t, n, h, d, d_static), other_ops=self.ops(t, n, h, static))

    def blobs(self, h: int, d: int, d_static: int | None) -> list:
        raise NotImplementedError

    def macs(self, t: int, n: int, h: int, d: int, d_static: int) -> int:
        raise NotImplementedError

    def ops(self, t: int, n: int, h: int, static: bool) -> int:
        raise NotImplementedError


@register
class LSTM(Recurrent):
    type = "LSTM"
    states = ("h_0", "c_0")

    def blobs(self, h, d, d_static):
        """W_xc (4H, D), b_c (4H), [W_xc_static (4H, D_s)], W_hc (4H, H); gate order i, f, o, g."""
        static = [(4 * h, d_static)] if d_static is not None else []
        return [(4 * h, d), (4 * h,)] + static + [(4 * h, h)]

    def macs(self, t, n, h, d, d_static):
        return t * n * d * 4 * h + n * d_static * 4 * h + t * n * h * 4 * h

    def ops(self, t, n, h, static):
        return t * n * h * (4 + 4 * (1 + static) + 1 + 10)


@register
class RNN(Recurrent):
    type = "RNN"
    states = ("h_0",)

    def blobs(self, h, d, d_static):
        """W_xh (H, D), b_h (H), [W_xh_static (H, D_s)], W_hh (H, H), W_ho (H, H), b_o (H)."""
        static = [(h, d_static)] if d_static is not None else []
        return [(h, d), (h,)] + static + [(h, h), (h, h), (h,)]

    def macs(self, t, n, h, d, d_static):
        return t * n * d * h + n * d_static * h + 2 * t * n * h * h

    def ops(self, t, n, h, static):
        return t * n * h * (1 + (1 + static) + 1 + 2 + 1)


@register
class LSTMUnit(LayerRule):
    """One LSTM step: bottoms c_prev, x (the 4H gate inputs), cont; tops c, h."""

    type = "LSTMUnit"
    bottoms = (3, 3)
    tops = (2, 2)

    def infer(self, ctx, bottoms):
        """c_prev (1, N, H), x (1, N, 4H), cont (1, N) -> c, h (1, N, H).  [lstm_unit_layer.cpp Reshape]"""
        names = ctx.layer.bottoms
        c_prev, x, cont = bottoms
        if len(c_prev) != 3 or c_prev[0] != 1:
            raise ctx.fail(f'the previous cell state "{names[0]}" {fmt_shape(c_prev)} must be (1, N, H)', "bottom", 0)
        _, n, h = c_prev
        if tuple(x) != (1, n, 4 * h):
            raise ctx.fail(f'the gate inputs "{names[1]}" {fmt_shape(x)} must be (1, N, 4H) = (1, {n}, {4 * h}) for '
                           f'the cell state "{names[0]}" {fmt_shape(c_prev)}', "bottom", 1)
        if tuple(cont) != (1, n):
            raise ctx.fail(f'the sequence indicators "{names[2]}" {fmt_shape(cont)} must be (1, N) = (1, {n})',
                           "bottom", 2)
        return Inferred(tops=[tuple(c_prev), tuple(c_prev)], other_ops=10 * n * h)
