"""Spatial layers: convolution, deconvolution, pooling, LRN, im2col, SPP.

The geometry of a layer (kernel, stride, pad, dilation per spatial axis) is read from the proto in one place
per parameter message: `conv_spec` (convolution_param: Convolution, Deconvolution, Im2col) and `pool_spec`
(pooling_param).  The rules only see the resolved specs.  The output sizes are the pure integer functions
`conv_out`, `deconv_out` and `pool_out`, each reproducing one Caffe source file.

netc is stricter than Caffe in one place: a kernel larger than the padded input is an error here, for
convolution and pooling alike (Caffe does not check it: its rounding gives an output of 1, 0 or less, and
windows that read mostly padding).  Where Caffe is lenient on purpose, netc is too: pad_h without pad_w in
convolution_param (pad_w stays 0), dilation 0 (a warning).

Receptive fields: Convolution, Im2col and Pooling are windows (global pooling: the kernel is H x W) when the
blob is (N, C, H, W) with the channel axis 1; LRN keeps its bottom's field; Deconvolution and SPP end it.

Cost conventions (one forward pass, all bottoms of a multi-bottom Convolution counted; N is the product of
the axes before the channel axis):
- Convolution: macs = N·Cout·(Cin/group)·Πkernel·Πout; the bias adds N·Cout·Πout to other_ops.
- Deconvolution: macs = N·Cin·(Cout/group)·Πkernel·Πin (every input pixel scatters a kernel); the bias adds
  N·Cout·Πout to other_ops.
- Im2col: 0 (it copies).
- Pooling: other_ops = N·C·Πout·Πkernel, one compare (MAX) or add (AVE) per window element, the padded
  cells and the ceil-mode overhang included (a count of the window, not of the pixels read).  SPP: the sum
  over its pyramid levels.
- LRN: other_ops = count·(local_size + 3) for ACROSS_CHANNELS (a square-and-add per window channel, then
  scale, power and product), count·(local_size² + 3) for WITHIN_CHANNEL (its window is local_size²).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .. import caffe_pb2
from . import Inferred, LayerRule, ShapeFailure, Window, canonical_axis, count, fmt_shape, register

_SHAPE_CHANGES = "it changes the blob's shape, so the top cannot reuse the bottom's memory"

_CONV = "convolution_param"
_POOL = "pooling_param"
_Pool = caffe_pb2.PoolingParameter
_LRN = caffe_pb2.LRNParameter

# Caffe's defaults for the repeated convolution fields, which the schema cannot state.
# [base_conv_layer.cpp LayerSetUp: kDefaultStride, kDefaultPad, kDefaultDilation]
_CONV_DEFAULTS = {"stride": 1, "pad": 0, "dilation": 1}


# ----------------------------------------------------------------------------------------------------------
# Output sizes

def c_div(a: int, b: int) -> int:
    """a / b as C++ computes it for ints (b > 0): the quotient truncated toward zero, so -3 / 4 == 0 where
    Python's -3 // 4 == -1."""
    q = abs(a) // b
    return q if a >= 0 else -q


def extent(k: int, d: int = 1) -> int:
    """d·(k - 1) + 1: the input span of a kernel of k taps with dilation d.  [base_conv_layer.cpp]"""
    return d * (k - 1) + 1


def conv_out(n: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    """(n + 2p - ext) / s + 1 with ext = d·(k - 1) + 1 and C++ integer division, which truncates toward zero:
    an input short of the extent by less than s still gives 1 (floor would give 0).
    [conv_layer.cpp compute_output_shape; im2col_layer.cpp Reshape]"""
    return c_div(n + 2 * p - extent(k, d), s) + 1


def deconv_out(n: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    """s·(n - 1) + ext - 2p with ext = d·(k - 1) + 1 (no output padding).  [deconv_layer.cpp
    compute_output_shape]"""
    return s * (n - 1) + extent(k, d) - 2 * p


def pool_out(n: int, k: int, s: int, p: int, ceil: bool = True, clip: bool | None = None) -> int:
    """ceil((n + 2p - k) / s) + 1 (round_mode CEIL, the default) or floor(...) + 1 (FLOOR); then, when the
    layer has any pad (`clip`, default p > 0), drop the last window if it starts at or past n + p:
    (out - 1)·s >= n + p.  Caffe decides the clip per layer (pad_h or pad_w non-zero), so an axis without pad
    is clipped too when the other axis has some.  Caffe divides in float32; the integer arithmetic here equals
    it while |n + 2p - k| <= 2^24.  [pooling_layer.cpp Reshape]"""
    num = n + 2 * p - k
    out = (-(-num // s) if ceil else num // s) + 1
    if clip is None:
        clip = p > 0
    if clip and (out - 1) * s >= n + p:
        out -= 1
    return out


# ----------------------------------------------------------------------------------------------------------
# Geometry from the proto

@dataclass(frozen=True)
class ConvSpec:
    """convolution_param resolved for one bottom shape (Caffe's BaseConvolutionLayer::LayerSetUp)."""

    axis: int            # the channel axis; the axes after it are spatial
    kernel: tuple
    stride: tuple
    pad: tuple
    dilation: tuple
    num_output: int
    group: int
    bias_term: bool
    where: dict          # (quantity, spatial index) -> (field, value index) it was read from; absent: default

    def extent(self, i: int) -> int:
        return extent(self.kernel[i], self.dilation[i])

    def windows(self, ndim: int) -> list | None:
        """Windows for the receptive field: only for an (N, C, H, W) blob with the channel axis 1."""
        if self.axis != 1 or ndim != 4:
            return None
        return [Window(self.kernel[i], self.stride[i], self.pad[i], self.dilation[i]) for i in range(2)]


def _axis_names(n: int) -> list[str]:
    if n == 2:
        return ["H", "W"]
    if n == 3:
        return ["D", "H", "W"]
    return [f"spatial axis {i}" for i in range(n)]


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


class _Errors:
    """Report every independent problem of a layer, then fail once."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.first: ShapeFailure | None = None

    def add(self, message: str, field: str | None = None, index: int = 0, hint: str | None = None,
            sub: str | None = None) -> None:
        failure = self.ctx.fail(message, field, index, hint, sub)
        self.first = self.first or failure

    def check(self) -> None:
        if self.first is not None:
            raise self.first


def _conv_quantity(p, name: str, h: str | None, w: str | None, n: int, errs: _Errors, where: dict,
                   quantity: str) -> tuple:
    """One of kernel/stride/pad/dilation: `h`/`w` (2-D only, not with `name`), else `name` given 0 times
    (Caffe's default), once (every axis) or once per spatial axis.  Returns the values, or () after an error."""
    has_h = h is not None and p.HasField(h)
    has_w = w is not None and p.HasField(w)
    values = list(getattr(p, name))
    if has_h or has_w:
        given = h if has_h else w
        if n != 2:
            errs.add(f"{h}/{w} can only be used for a 2-D convolution; this one has {n} spatial "
                     f"ax{'is' if n == 1 else 'es'}", given, sub=_CONV,
                     hint=f"give {name} once, or once per spatial axis")
            return ()
        if values:
            errs.add(f"{name} and {h}/{w} are both given", given, sub=_CONV,
                     hint=f"use either {name} or {h} and {w}")
            return ()
        if quantity != "pad" and not (has_h and has_w):
            # Caffe would read the missing one as 0 and fail its "must be nonzero" check; pad_h alone is
            # accepted (pad_w keeps its default 0).
            missing = w if has_h else h
            errs.add(f"{given} is given without {missing}", given, sub=_CONV,
                     hint=f"a rectangular {quantity} needs both {h} and {w} (or {name} for a square one)")
            return ()
        where[(quantity, 0)] = (h, 0)
        where[(quantity, 1)] = (w, 0)
        return (getattr(p, h), getattr(p, w))
    if not values:
        if quantity != "kernel" or n == 0:
            return (_CONV_DEFAULTS.get(quantity, 0),) * n
        errs.add(f"{name} is missing", name, sub=_CONV,
                 hint=f"give {name}: K (or kernel_h and kernel_w for a 2-D convolution)")
        return ()
    if len(values) not in (1, n):
        hint = (f"give it once (the same for every axis) or {_times(n)} (one per axis: "
                f"{', '.join(_axis_names(n))})" if n > 1 else "give it once")
        errs.add(f"{name} is given {_times(len(values))} for {n} spatial ax{'is' if n == 1 else 'es'}",
                 name, index=min(len(values) - 1, n), sub=_CONV, hint=hint)
        return ()
    for i in range(n):
        where[(quantity, i)] = (name, 0 if len(values) == 1 else i)
    return tuple(values[0] if len(values) == 1 else values[i] for i in range(n))


def conv_spec(ctx, bottom: tuple, needs_output: bool = True) -> ConvSpec:
    """Resolve convolution_param against the first bottom's shape, reporting every error found (Caffe's
    BaseConvolutionLayer / Im2colLayer LayerSetUp checks).  Im2col passes needs_output=False."""
    p = ctx.param.convolution_param
    errs = _Errors(ctx)
    axis = canonical_axis(ctx, p.axis, len(bottom), sub=_CONV)
    n = len(bottom) - axis - 1
    where: dict = {}
    kernel = _conv_quantity(p, "kernel_size", "kernel_h", "kernel_w", n, errs, where, "kernel")
    stride = _conv_quantity(p, "stride", "stride_h", "stride_w", n, errs, where, "stride")
    pad = _conv_quantity(p, "pad", "pad_h", "pad_w", n, errs, where, "pad")
    dilation = _conv_quantity(p, "dilation", None, None, n, errs, where, "dilation")
    zero = {where[(q, i)] for q, values in (("kernel", kernel), ("stride", stride))
            for i, v in enumerate(values) if v == 0}
    for field, index in sorted(zero, key=lambda f: (f[0] != "kernel_size", f)):
        errs.add(f"{field} must be positive, got 0", field, index, sub=_CONV,
                 hint=f"Caffe requires a non-zero {'stride' if 'stride' in field else 'kernel'} on every axis")
    for field, index in sorted({where[("dilation", i)] for i, v in enumerate(dilation) if v == 0}):
        ctx.warn("dilation 0 makes every kernel tap read the same input pixel", field, index, sub=_CONV,
                 hint="Caffe accepts it; dilation 1 is the ordinary convolution")
    num_output = p.num_output
    if needs_output:
        if not p.HasField("num_output"):
            errs.add("num_output is missing", "num_output", sub=_CONV,
                     hint="set convolution_param { num_output: N }, the number of output channels")
        elif num_output == 0:
            errs.add("num_output must be positive, got 0", "num_output", sub=_CONV,
                     hint="num_output is the number of output channels")
    group = p.group
    channels = bottom[axis]
    if group == 0:
        errs.add("group must be positive, got 0", "group", sub=_CONV, hint="group 1 is the ordinary convolution")
    elif needs_output:
        why = ("Caffe splits the input and the output channels into `group` equal parts: both the input "
               "channels and num_output must be multiples of group")
        if channels % group:
            errs.add(f"the {channels} input channels are not divisible by group {group}", "group", sub=_CONV,
                     hint=why)
        if num_output and num_output % group:
            errs.add(f"num_output {num_output} is not divisible by group {group}", "group", sub=_CONV, hint=why)
    errs.check()
    return ConvSpec(axis, tuple(kernel), tuple(stride), tuple(pad), tuple(dilation), num_output, group,
                    p.bias_term, where)


@dataclass(frozen=True)
class PoolSpec:
    """pooling_param resolved for one (N, C, H, W) bottom (Caffe's PoolingLayer::LayerSetUp)."""

    method: int          # PoolingParameter.MAX / AVE / STOCHASTIC
    kernel: tuple        # (kh, kw); (H, W) for global pooling
    stride: tuple
    pad: tuple
    global_pooling: bool
    ceil: bool           # round_mode CEIL (the default) or FLOOR
    where: dict          # (quantity, 0 for H / 1 for W) -> field it was read from

    def windows(self) -> list:
        return [Window(self.kernel[i], self.stride[i], self.pad[i]) for i in range(2)]


def _pool_pair(p, name: str, h: str, w: str, errs: _Errors, where: dict, quantity: str, default: int | None):
    """`name` (one value for both axes) XOR `h` AND `w`.  Returns (vh, vw), None when absent, () on error."""
    has, has_h, has_w = p.HasField(name), p.HasField(h), p.HasField(w)
    if has and (has_h or has_w):
        errs.add(f"{name} and {h if has_h else w} are both given", h if has_h else w, sub=_POOL,
                 hint=f"use either {name} or {h} and {w}")
        return ()
    if has_h != has_w:
        given, missing = (h, w) if has_h else (w, h)
        errs.add(f"{given} is given without {missing}", given, sub=_POOL,
                 hint=f"Caffe's Pooling needs both {h} and {w} (or {name} for both axes)")
        return ()
    if has_h:
        where[(quantity, 0)], where[(quantity, 1)] = h, w
        return (getattr(p, h), getattr(p, w))
    if has or default is None:
        if not has:
            return None
        where[(quantity, 0)] = where[(quantity, 1)] = name
        return (getattr(p, name),) * 2
    return (default, default)


def pool_spec(ctx, bottom: tuple) -> PoolSpec:
    """Resolve pooling_param for a 4-D bottom, reporting every error found (Caffe's PoolingLayer checks)."""
    p = ctx.param.pooling_param
    errs = _Errors(ctx)
    where: dict = {}
    # The schema's defaults: pad 0, stride 1.
    pad = _pool_pair(p, "pad", "pad_h", "pad_w", errs, where, "pad", p.pad)
    stride = _pool_pair(p, "stride", "stride_h", "stride_w", errs, where, "stride", p.stride)
    if p.global_pooling:
        given = [f for f in ("kernel_size", "kernel_h", "kernel_w") if p.HasField(f)]
        if given:
            errs.add(f"global_pooling takes the whole H x W as its kernel, but {given[0]} is given", given[0],
                     sub=_POOL, hint=f"remove {' and '.join(given)}, or global_pooling")
        kernel = tuple(bottom[2:4])
        padded = [i for i in range(2) if pad and pad[i]]
        if padded:
            field = where[("pad", padded[0])]
            errs.add(f"global_pooling takes no pad, but {field} is {pad[padded[0]]}", field, sub=_POOL,
                     hint="a global window covers the whole input: remove the pad")
        moved = [i for i in range(2) if stride and stride[i] != 1]
        if moved:
            field = where[("stride", moved[0])]
            errs.add(f"global_pooling takes no stride, but {field} is {stride[moved[0]]}", field, sub=_POOL,
                     hint="a global window has one position: remove the stride")
    else:
        kernel = _pool_pair(p, "kernel_size", "kernel_h", "kernel_w", errs, where, "kernel", None)
        if kernel is None:
            errs.add("kernel_size is missing", "kernel_size", sub=_POOL,
                     hint="give kernel_size: K, kernel_h and kernel_w, or global_pooling: true")
            kernel = ()
        for i, k in enumerate(kernel):
            if k == 0:
                errs.add(f"{where[('kernel', i)]} must be positive, got 0", where[("kernel", i)], sub=_POOL,
                         hint="Caffe requires a non-zero kernel on both axes")
                kernel = ()
                break
    for i, s in enumerate(stride or ()):
        if s == 0:
            errs.add(f"{where[('stride', i)]} must be positive, got 0", where[("stride", i)], sub=_POOL,
                     hint="the windows advance by the stride")
            break
    if pad and any(pad):
        if p.pool not in (_Pool.MAX, _Pool.AVE):
            field = where[("pad", 0 if pad[0] else 1)]
            errs.add(f"{_Pool.PoolMethod.Name(p.pool)} pooling takes no pad", field, sub=_POOL,
                     hint="Caffe implements padding only for MAX and AVE pooling")
        if kernel and not p.global_pooling:
            for i in range(2):
                if pad[i] >= kernel[i]:
                    field, kfield = where[("pad", i)], where[("kernel", i)]
                    errs.add(f"{field} {pad[i]} must be smaller than {kfield} {kernel[i]}", field, sub=_POOL,
                             hint="Caffe checks pad < kernel: a window must not lie wholly in the padding")
                    if (field, kfield) == ("pad", "kernel_size"):
                        break
    errs.check()
    return PoolSpec(p.pool, tuple(kernel), tuple(stride), tuple(pad), p.global_pooling,
                    p.round_mode == _Pool.CEIL, where)


# ----------------------------------------------------------------------------------------------------------
# Shared checks


def _require_4d(ctx, bottom: tuple) -> None:
    if len(bottom) != 4:
        raise ctx.fail(f"{ctx.layer.type} needs a 4-axis (N, C, H, W) bottom, got {len(bottom)} axes "
                       f"{fmt_shape(bottom)}", "bottom",
                       hint=f"Caffe's {ctx.layer.type} layer only takes (num, channels, height, width) blobs")


def _same_bottoms(ctx, bottoms: list) -> None:
    errs = _Errors(ctx)
    for i, b in enumerate(bottoms[1:], 1):
        if tuple(b) != tuple(bottoms[0]):
            errs.add(f"bottom {i} has shape {fmt_shape(b)}, but bottom 0 has {fmt_shape(bottoms[0])}", "bottom", i,
                     hint=f"every bottom of a {ctx.layer.type} layer goes through the same weights, so all "
                          "must have the same shape")
    errs.check()


def _kernels_fit(ctx, axes: list, sub: str) -> None:
    """Report each axis whose kernel extent is larger than its padded input n + 2p.  `axes`: per spatial axis
    (name, n, k, p, d, (field, index), Caffe's output size); axes with the same numbers give one error."""
    errs = _Errors(ctx)
    bad: dict = {}
    for name, n, k, p, d, where, caffe_gives in axes:
        if extent(k, d) > n + 2 * p:
            bad.setdefault((n, k, p, d, where, caffe_gives), []).append(name)
    for (n, k, p, d, (field, index), caffe_gives), names in bad.items():
        ext = extent(k, d)
        what = f"kernel {k}" if d == 1 else f"kernel extent {ext} (kernel {k}, dilation {d})"
        errs.add(f"{what} is larger than the padded input {n + 2 * p} ({' and '.join(names)} {n} + 2*{p})",
                 field, index, sub=sub,
                 hint=f"Caffe does not check this and computes an output size of {caffe_gives}; use a smaller "
                      "kernel, more padding or a larger input")
    errs.check()


def _fraction(num: int, den: int) -> str:
    """num/den in decimals, at most 4 places, trailing zeros dropped."""
    return f"{num / den:.4f}".rstrip("0").rstrip(".")


def _warn_inexact(ctx, spec: ConvSpec, spatial: tuple) -> None:
    """Warn where (in + 2p - ext) / s is not an integer: the last rows/columns of the input are never read."""
    n = len(spatial)
    names = _axis_names(n)
    found = []
    for i, size in enumerate(spatial):
        ext, s, p = spec.extent(i), spec.stride[i], spec.pad[i]
        num = size + 2 * p - ext
        if num < 0 or num % s == 0:
            continue
        out = num // s + 1
        text = (f"({size} - {ext} + 2*{p})/{s} + 1 = {_fraction(num + s, s)}, floored to {out} "
                f"(an input of {size + s - num % s} gives exactly {out + 1})")
        found.append((i, text, num % s))
    if not found:
        return
    uniform = n > 1 and len(found) == n and len({(spatial[i], spec.extent(i), spec.stride[i], spec.pad[i])
                                                   for i in range(n)}) == 1
    for i, text, unread in (found[:1] if uniform else found):
        prefix = f"{names[i]}: " if n > 1 and not uniform else ""
        field, index = spec.where.get(("stride", i), ("stride", 0))
        axis = " and ".join(names) if uniform else names[i] if n > 1 else "the spatial axis"
        ctx.warn(prefix + text, field, index, sub=_CONV,
                 hint=f"the last {unread} of the {spatial[i] + 2 * spec.pad[i]} positions of the padded input "
                      f"along {axis} never fall in a window")


def _conv_geometry_checks(ctx, spec: ConvSpec, spatial: tuple) -> None:
    _kernels_fit(ctx, [(name, n, spec.kernel[i], spec.pad[i], spec.dilation[i],
                        spec.where.get(("kernel", i), ("kernel_size", 0)),
                        conv_out(n, spec.kernel[i], spec.stride[i], spec.pad[i], spec.dilation[i]))
                       for i, (name, n) in enumerate(zip(_axis_names(len(spatial)), spatial))], _CONV)


# ----------------------------------------------------------------------------------------------------------
# Rules

@register
class Convolution(LayerRule):
    type = "Convolution"
    params = ("convolution_param",)
    # Several bottoms are allowed: each gives its own top with the same weights.
    bottoms = (1, None)
    tops = (1, None)
    equal_bottoms_tops = True
    in_place_note = _SHAPE_CHANGES

    def infer(self, ctx, bottoms):
        """top = bottom[:axis] + (num_output,) + conv_out per spatial axis; W (Cout, Cin/g, k...), b (Cout).
        [base_conv_layer.cpp LayerSetUp/Reshape, conv_layer.cpp compute_output_shape]"""
        bottom = tuple(bottoms[0])
        spec = conv_spec(ctx, bottom)
        _same_bottoms(ctx, bottoms)
        spatial = bottom[spec.axis + 1:]
        _conv_geometry_checks(ctx, spec, spatial)
        _warn_inexact(ctx, spec, spatial)
        out = tuple(conv_out(n, spec.kernel[i], spec.stride[i], spec.pad[i], spec.dilation[i])
                    for i, n in enumerate(spatial))
        top = bottom[:spec.axis] + (spec.num_output,) + out
        cin, cout, g = bottom[spec.axis], spec.num_output, spec.group
        blobs = [(cout, cin // g) + spec.kernel] + ([(cout,)] if spec.bias_term else [])
        num = count(bottom, 0, spec.axis) * len(bottoms)
        macs = num * cout * (cin // g) * math.prod(spec.kernel) * math.prod(out)
        bias = num * cout * math.prod(out) if spec.bias_term else 0
        windows = spec.windows(len(bottom))
        return Inferred(tops=[top] * len(bottoms), blobs=blobs, macs=macs, other_ops=bias,
                        rf="window" if windows else "none", windows=windows)


@register
class Deconvolution(Convolution):
    type = "Deconvolution"

    def infer(self, ctx, bottoms):
        """top = bottom[:axis] + (num_output,) + deconv_out per spatial axis; W (Cin, Cout/g, k...), b (Cout).
        [deconv_layer.cpp compute_output_shape; base_conv_layer.cpp with reverse_dimensions()]"""
        bottom = tuple(bottoms[0])
        spec = conv_spec(ctx, bottom)
        _same_bottoms(ctx, bottoms)
        spatial = bottom[spec.axis + 1:]
        out = tuple(deconv_out(n, spec.kernel[i], spec.stride[i], spec.pad[i], spec.dilation[i])
                    for i, n in enumerate(spatial))
        errs = _Errors(ctx)
        bad: dict = {}
        for i, (name, o) in enumerate(zip(_axis_names(len(spatial)), out)):
            if o <= 0:
                arithmetic = f"{spec.stride[i]}*({spatial[i]} - 1) + {spec.extent(i)} - 2*{spec.pad[i]}"
                bad.setdefault((o, arithmetic, spec.where.get(("pad", i), ("pad", 0))), []).append(name)
        for (o, arithmetic, (field, index)), names in bad.items():
            errs.add(f"the output size {o} on {' and '.join(names)} is not positive: {arithmetic}", field, index,
                     sub=_CONV, hint="the pad removes more than the deconvolution adds; use a smaller pad")
        errs.check()
        top = bottom[:spec.axis] + (spec.num_output,) + out
        cin, cout, g = bottom[spec.axis], spec.num_output, spec.group
        blobs = [(cin, cout // g) + spec.kernel] + ([(cout,)] if spec.bias_term else [])
        num = count(bottom, 0, spec.axis) * len(bottoms)
        macs = num * cin * (cout // g) * math.prod(spec.kernel) * math.prod(spatial)
        bias = num * cout * math.prod(out) if spec.bias_term else 0
        return Inferred(tops=[top] * len(bottoms), blobs=blobs, macs=macs, other_ops=bias, rf="none")


@register
class Im2col(LayerRule):
    type = "Im2col"
    params = ("convolution_param",)
    in_place_note = _SHAPE_CHANGES

    def infer(self, ctx, bottoms):
        """top = bottom[:axis] + (C·Πk,) + conv_out per spatial axis.  [im2col_layer.cpp Reshape]"""
        bottom = tuple(bottoms[0])
        spec = conv_spec(ctx, bottom, needs_output=False)
        spatial = bottom[spec.axis + 1:]
        _conv_geometry_checks(ctx, spec, spatial)
        _warn_inexact(ctx, spec, spatial)
        out = tuple(conv_out(n, spec.kernel[i], spec.stride[i], spec.pad[i], spec.dilation[i])
                    for i, n in enumerate(spatial))
        top = bottom[:spec.axis] + (bottom[spec.axis] * math.prod(spec.kernel),) + out
        windows = spec.windows(len(bottom))
        return Inferred(tops=[top], rf="window" if windows else "none", windows=windows)


def _pool_checks(ctx, spec: PoolSpec, hw: tuple) -> tuple:
    """Output (ph, pw), after checking that the kernel fits the padded input."""
    clip = any(spec.pad)
    out = tuple(pool_out(hw[i], spec.kernel[i], spec.stride[i], spec.pad[i], spec.ceil, clip) for i in range(2))
    if not spec.global_pooling:
        _kernels_fit(ctx, [("HW"[i], hw[i], spec.kernel[i], spec.pad[i], 1, (spec.where[("kernel", i)], 0), out[i])
                           for i in range(2)], _POOL)
    return out


@register
class Pooling(LayerRule):
    type = "Pooling"
    params = ("pooling_param",)
    tops = (1, 2)
    in_place_note = _SHAPE_CHANGES

    def blob_counts(self, layer):
        # Only MAX pooling has the optional second top (the argmax mask).  [pooling_layer.hpp MaxTopBlobs]
        max_tops = 2 if layer.pooling_param.pool == _Pool.MAX else 1
        return self.bottoms, (1, max_tops)

    def infer(self, ctx, bottoms):
        """top = (N, C, pool_out(H), pool_out(W)); a second top (MAX's argmax mask) has the same shape.
        [pooling_layer.cpp LayerSetUp/Reshape]"""
        bottom = tuple(bottoms[0])
        _require_4d(ctx, bottom)
        spec = pool_spec(ctx, bottom)
        out = _pool_checks(ctx, spec, bottom[2:])
        top = bottom[:2] + out
        ops = count(top) * math.prod(spec.kernel)
        return Inferred(tops=[top] * len(ctx.layer.tops), other_ops=ops, rf="window", windows=spec.windows())


def spp_levels(h: int, w: int, height: int) -> list:
    """Per pyramid level l < height: bins = 2^l, kernel = ceil(size / bins), pad = (kernel·bins - size + 1) / 2,
    stride = kernel, as ((kh, kw), (sh, sw), (ph, pw)).  [spp_layer.cpp GetPoolingParam]"""
    levels = []
    for level in range(height):
        bins = 2 ** level
        kernel = tuple(-(-n // bins) for n in (h, w))
        pad = tuple((k * bins - n + 1) // 2 for k, n in zip(kernel, (h, w)))
        levels.append((kernel, kernel, pad))
    return levels


@register
class SPP(LayerRule):
    type = "SPP"
    params = ("spp_param",)
    in_place_note = _SHAPE_CHANGES

    def infer(self, ctx, bottoms):
        """pyramid_height 1: one pooling, top (N, C, 1, 1).  Otherwise every level's pooling is flattened and
        the levels concatenated: top (N, C·Σ ph·pw), which is C·Σ_l 4^l for inputs of ordinary size.
        [spp_layer.cpp LayerSetUp/Reshape]"""
        bottom = tuple(bottoms[0])
        _require_4d(ctx, bottom)
        p = ctx.param.spp_param
        if p.pyramid_height == 0:
            raise ctx.fail("pyramid_height is missing" if not p.HasField("pyramid_height") else
                           "pyramid_height must be positive, got 0", "pyramid_height", sub="spp_param",
                           hint="set spp_param { pyramid_height: L }: L levels of 1, 2x2, 4x4 ... bins")
        n, c, h, w = bottom
        errs = _Errors(ctx)
        sizes, ops = [], 0
        for level, (kernel, stride, pad) in enumerate(spp_levels(h, w, p.pyramid_height)):
            bins = 2 ** level
            if any(pad) and p.pool not in (_Pool.MAX, _Pool.AVE):
                errs.add(f"level {level} ({bins}x{bins} bins) needs pad {max(pad)}, which "
                         f"{_Pool.PoolMethod.Name(p.pool)} pooling does not take", "pyramid_height",
                         sub="spp_param", hint="use MAX or AVE, or fewer levels")
            if any(pd >= k for pd, k in zip(pad, kernel)):
                errs.add(f"level {level} ({bins}x{bins} bins) on a {h}x{w} input needs pad {fmt_shape(pad)} not "
                         f"smaller than its kernel {fmt_shape(kernel)}", "pyramid_height", sub="spp_param",
                         hint="Caffe's pooling requires pad < kernel: use fewer levels or a larger input")
            out = tuple(pool_out(x, kernel[i], stride[i], pad[i], True, any(pad)) for i, x in enumerate((h, w)))
            sizes.append(out)
            ops += n * c * math.prod(out) * math.prod(kernel)
        errs.check()
        if p.pyramid_height == 1:
            top = (n, c) + sizes[0]
        else:
            top = (n, c * sum(math.prod(s) for s in sizes))
        return Inferred(tops=[top], other_ops=ops, rf="none")


@register
class LRN(LayerRule):
    type = "LRN"
    params = ("lrn_param",)
    in_place_note = "LRN's backward reads its input, which an in-place top has overwritten"

    def infer(self, ctx, bottoms):
        """top = bottom's shape (4-D only; local_size odd).  [lrn_layer.cpp LayerSetUp/Reshape]"""
        bottom = tuple(bottoms[0])
        p = ctx.param.lrn_param
        errs = _Errors(ctx)
        if len(bottom) != 4:
            errs.add(f"LRN needs a 4-axis (N, C, H, W) bottom, got {len(bottom)} axes {fmt_shape(bottom)}", "bottom",
                     hint="Caffe's LRN layer only takes (num, channels, height, width) blobs")
        size = p.local_size
        if size % 2 == 0:
            errs.add(f"local_size {size} must be odd", "local_size", sub="lrn_param",
                     hint=f"the window is centred on each element: use {size - 1} or {size + 1}" if size else
                     "the window is centred on each element: use an odd size (the default is 5)")
        errs.check()
        per = size + 3 if p.norm_region == _LRN.ACROSS_CHANNELS else size * size + 3
        return Inferred(tops=[bottom], other_ops=count(bottom) * per, rf="same")
