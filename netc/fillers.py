"""Caffe's weight fillers as pure functions of a FillerParameter, a blob shape and a numpy Generator.
[include/caffe/filler.hpp at 9b89154]

The distributions, bounds and checks are Caffe's; the random numbers are numpy's, so a filled blob is never
the one Caffe would draw (Caffe's fillers use its own global generator).  The values Caffe computes from the
shape (Xavier's bound, MSRA's std, the bilinear kernel) are computed in float32 as Caffe does; the bilinear
filler draws nothing and matches Caffe bit for bit.

fan_in = count / shape[0] and fan_out = count / shape[1] (count for a 1-axis blob), integer divisions.  For a
convolution weight (Cout, Cin/g, kh, kw) that is fan_in = Cin/g*kh*kw and fan_out = Cout*kh*kw; for a
Deconvolution weight, stored (Cin, Cout/g, kh, kw), the roles flip, as they do in Caffe.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from . import caffe_pb2
from .errors import ShapeError, did_you_mean

__all__ = ["fill", "FILLERS", "fan_in_out", "xavier_bound", "msra_std"]

Filler = Callable[[caffe_pb2.FillerParameter, tuple[int, ...], np.random.Generator], np.ndarray]

FILLERS: dict[str, Filler] = {}

_VarianceNorm = caffe_pb2.FillerParameter.VarianceNorm


def _filler(name: str):
    def add(fn: Filler) -> Filler:
        if name in FILLERS:
            raise ValueError(f"filler {name!r} registered twice")
        FILLERS[name] = fn
        return fn
    return add


def _shape_text(shape: Sequence[int]) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


def fan_in_out(shape: Sequence[int]) -> tuple[int, int]:
    """(count // shape[0], count // shape[1]), fan_out = count for a 1-axis blob.  [filler.hpp XavierFiller]"""
    count = math.prod(shape)
    return count // shape[0], (count // shape[1] if len(shape) > 1 else count)


def fill(p: caffe_pb2.FillerParameter, shape: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """A new float32 array of `shape` filled as Caffe's filler `p.type` would fill it (statistically: the
    draws come from `rng`).  Raises ShapeError for an unknown type and for the parameters and shapes that
    Caffe's fillers CHECK-fail on."""
    shape = tuple(int(d) for d in shape)
    fn = FILLERS.get(p.type)
    if fn is None:
        near = did_you_mean(p.type, FILLERS)
        hint = f'did you mean "{near[0]}"?' if near else "Caffe's fillers are " + ", ".join(FILLERS)
        raise ShapeError(f'unknown filler type "{p.type}"', hint=hint)
    if p.sparse != -1 and p.type != "gaussian":
        # Every filler but gaussian CHECKs sparse == -1 ("Sparsity not supported by this Filler.").
        raise ShapeError(f'filler "{p.type}" does not support sparse (sparse: {p.sparse}); only "gaussian" does')
    out = fn(p, shape, rng)
    assert out.dtype == np.float32 and out.shape == shape, (p.type, out.dtype, out.shape)
    return out


def _uniform(rng: np.random.Generator, shape: tuple[int, ...], low, high) -> np.ndarray:
    """U[low, high) in float32 (Caffe: boost uniform_real, caffe_rng_uniform CHECKs low <= high).  Drawn in
    float32, so a value may round up to `high` itself."""
    u = rng.random(shape, dtype=np.float32)
    return (np.float32(low) + u * (np.float32(high) - np.float32(low))).astype(np.float32, copy=False)


def _gaussian(rng: np.random.Generator, shape: tuple[int, ...], mean, std) -> np.ndarray:
    return (rng.standard_normal(shape, dtype=np.float32) * np.float32(std) + np.float32(mean)).astype(
        np.float32, copy=False)


@_filler("constant")
def _constant(p, shape, rng) -> np.ndarray:
    return np.full(shape, p.value, dtype=np.float32)


@_filler("uniform")
def _uniform_filler(p, shape, rng) -> np.ndarray:
    if not p.min <= p.max:
        raise ShapeError(f'filler "uniform" needs min <= max (min: {p.min:g}, max: {p.max:g})')
    return _uniform(rng, shape, p.min, p.max)


@_filler("gaussian")
def _gaussian_filler(p, shape, rng) -> np.ndarray:
    if not p.std > 0:  # caffe_rng_gaussian CHECK_GT(sigma, 0)
        raise ShapeError(f'filler "gaussian" needs std > 0 (std: {p.std:g})')
    if p.sparse < -1:
        raise ShapeError(f'filler "gaussian": sparse must be -1 (dense) or at least 0, not {p.sparse}')
    out = _gaussian(rng, shape, p.mean, p.std)
    if p.sparse >= 0:
        # Each value is kept with probability sparse / shape[0] (the number of outputs of an
        # InnerProduct weight), so each output keeps about `sparse` inputs.
        if not shape:
            raise ShapeError('filler "gaussian" with sparse needs a blob with at least 1 axis, not ()')
        keep = np.float32(p.sparse) / np.float32(shape[0]) if shape[0] else np.float32(math.inf)
        if keep > 1:  # caffe_rng_bernoulli CHECK_LE(p, 1)
            raise ShapeError(f'filler "gaussian": sparse {p.sparse} is more than the {shape[0]} outputs '
                             f"(shape[0]) of blob {_shape_text(shape)}")
        out *= rng.random(shape, dtype=np.float32) < keep
    return out


def _variance_n(p, shape: tuple[int, ...], who: str) -> np.float32:
    """The n of Xavier and MSRA: fan_in, fan_out or their mean, as a float32 like Caffe's Dtype."""
    if not shape or math.prod(shape) == 0:
        raise ShapeError(f'filler "{who}" needs a blob with at least 1 axis and 1 value, not {_shape_text(shape)}')
    fan_in, fan_out = fan_in_out(shape)
    if p.variance_norm == _VarianceNorm.FAN_OUT:
        return np.float32(fan_out)
    if p.variance_norm == _VarianceNorm.AVERAGE:
        return (np.float32(fan_in) + np.float32(fan_out)) / np.float32(2)
    return np.float32(fan_in)


def xavier_bound(p: caffe_pb2.FillerParameter, shape: Sequence[int]) -> np.float32:
    """sqrt(3 / n): the Xavier filler draws U[-bound, bound].  Not Glorot's sqrt(6 / (fan_in + fan_out))
    unless variance_norm is AVERAGE."""
    return np.sqrt(np.float32(3) / _variance_n(p, tuple(shape), "xavier"))


def msra_std(p: caffe_pb2.FillerParameter, shape: Sequence[int]) -> np.float32:
    """sqrt(2 / n): the MSRA filler draws N(0, std)."""
    return np.sqrt(np.float32(2) / _variance_n(p, tuple(shape), "msra"))


@_filler("xavier")
def _xavier(p, shape, rng) -> np.ndarray:
    bound = xavier_bound(p, shape)
    return _uniform(rng, shape, -bound, bound)


@_filler("msra")
def _msra(p, shape, rng) -> np.ndarray:
    return _gaussian(rng, shape, 0, msra_std(p, shape))


@_filler("bilinear")
def _bilinear(p, shape, rng) -> np.ndarray:
    """The kernel of bilinear upsampling by a factor f = ceil(K / 2), for a Deconvolution with kernel K and
    stride f: w(y, x) = (1 - |x / f - c|) (1 - |y / f - c|), c = (K - 1) / (2 f), in every (out, in) slice."""
    if len(shape) != 4:
        raise ShapeError(f'filler "bilinear" needs a 4-D blob, not {_shape_text(shape)}')
    kh, kw = shape[2], shape[3]
    if kh != kw:
        raise ShapeError(f'filler "bilinear" needs a square kernel, not {kh}x{kw}')
    f = math.ceil(kw / 2)
    c = np.float32((kw - 1) / (2.0 * f))  # computed in double, stored in a Dtype
    x = np.arange(kw, dtype=np.float32)
    # Caffe evaluates (1 - fabs(x / f - c)) in float for each element; the same float32 steps here.
    w = np.float32(1) - np.abs(x / np.float32(f) - c)
    kernel = w[:, None] * w[None, :]
    return np.ascontiguousarray(np.broadcast_to(kernel, shape), dtype=np.float32)


@_filler("positive_unitball")
def _positive_unitball(p, shape, rng) -> np.ndarray:
    """U[0, 1), then each of the shape[0] rows scaled to sum to 1."""
    if len(shape) > 4:  # Blob::num() is a legacy accessor, CHECKed to at most 4 axes
        raise ShapeError(f'filler "positive_unitball" needs a blob of at most 4 axes, not {_shape_text(shape)}')
    rows = shape[0] if shape else 1
    count = math.prod(shape)
    if rows == 0 or count // rows == 0:
        raise ShapeError(f'filler "positive_unitball" needs a blob with at least 1 value, not {_shape_text(shape)}')
    out = _uniform(rng, shape, 0, 1).reshape(rows, -1)
    out /= out.sum(axis=1, keepdims=True, dtype=np.float32)
    return out.reshape(shape)
