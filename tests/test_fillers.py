"""Caffe's fillers: the distributions by their statistics over large draws, the exact ones (constant,
bilinear) by value, and the conventions (fan_in, Xavier's bound, the bilinear kernel) against blobs the real
Caffe filled (../shared/golden).

Statistical tolerances are 5 standard errors of the statistic for the sample size, so a correct filler fails
with probability below 1e-6 per check (and the seeds are fixed, so a run is repeatable); a wrong constant
(fan_out for fan_in, sqrt(6/n) for sqrt(3/n), std for variance) moves the statistic by far more.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from golden import GOLDEN, needs_golden
from netc import caffe_pb2
from netc.errors import ShapeError
from netc.fillers import FILLERS, fan_in_out, fill, msra_std, xavier_bound

N = 1_000_000
SHAPE = (40, 25, 25, 40)  # 1e6 values; fan_in 25000, fan_out 40000: odd, distinct sizes


def param(**fields) -> caffe_pb2.FillerParameter:
    return caffe_pb2.FillerParameter(**fields)


def rng(seed: int = 1701) -> np.random.Generator:
    return np.random.default_rng(seed)


def close_mean(x: np.ndarray, mean: float, std: float) -> None:
    se = std / math.sqrt(x.size)
    assert abs(float(x.mean(dtype=np.float64)) - mean) < 5 * se


def close_std(x: np.ndarray, std: float, kurtosis: float = 3.0) -> None:
    """The sample variance's standard error is sigma^2 sqrt((kurtosis - 1) / n) (3 for a normal, 1.8 for a
    uniform distribution)."""
    var = float(x.var(dtype=np.float64))
    se = std**2 * math.sqrt((kurtosis - 1) / x.size)
    assert abs(var - std**2) < 5 * se, (var, std**2, se)


@pytest.mark.parametrize("name", sorted(FILLERS))
def test_every_filler_gives_float32_of_the_shape(name):
    shape = (6, 4, 3, 3)
    out = fill(param(type=name), shape, rng())
    assert out.dtype == np.float32 and out.shape == shape and out.flags.c_contiguous and out.flags.writeable
    assert np.isfinite(out).all()


def test_default_type_is_constant_zero():
    p = param()
    assert p.type == "constant"
    out = fill(p, (2, 3), rng())
    assert out.dtype == np.float32 and out.shape == (2, 3) and not out.any()


def test_constant_value():
    out = fill(param(type="constant", value=-2.5), (3, 5, 7), rng())
    assert (out == np.float32(-2.5)).all()


def test_uniform_bounds_and_moments():
    lo, hi = -0.3, 0.7
    x = fill(param(type="uniform", min=lo, max=hi), SHAPE, rng())
    assert x.min() >= np.float32(lo) and x.max() <= np.float32(hi)
    # Reaching within 1e-4 of the range of both ends fails with probability (1 - 1e-4)^1e6 = e^-100.
    assert x.min() < lo + 1e-4 and x.max() > hi - 1e-4
    std = (hi - lo) / math.sqrt(12)
    close_mean(x, (lo + hi) / 2, std)
    close_std(x, std, kurtosis=1.8)


def test_uniform_default_range_is_0_1():
    x = fill(param(type="uniform"), (1000,), rng())
    assert 0 <= x.min() and x.max() <= 1 and x.max() > 0.99


def test_gaussian_moments():
    x = fill(param(type="gaussian", mean=1.5, std=0.1), SHAPE, rng())
    close_mean(x, 1.5, 0.1)
    close_std(x, 0.1)
    assert (x != 0).all()


@pytest.mark.parametrize("sparse", [0, 1, 7, 40])
def test_gaussian_sparse_keeps_sparse_over_outputs(sparse):
    x = fill(param(type="gaussian", std=2.0, sparse=sparse), SHAPE, rng())
    keep = sparse / SHAPE[0]
    kept = np.count_nonzero(x) / x.size
    assert abs(kept - keep) <= 5 * math.sqrt(keep * (1 - keep) / x.size)
    if sparse:
        close_std(x[x != 0], 2.0)


def test_gaussian_sparse_more_than_outputs_is_refused():
    with pytest.raises(ShapeError) as e:
        fill(param(type="gaussian", sparse=41), SHAPE, rng())
    assert str(e.value) == 'filler "gaussian": sparse 41 is more than the 40 outputs (shape[0]) of blob ' \
                           '(40, 25, 25, 40)'


def test_fan_in_out():
    assert fan_in_out((64, 32, 3, 3)) == (288, 576)
    assert fan_in_out((10, 500)) == (500, 10)
    assert fan_in_out((7,)) == (1, 7)  # a 1-axis blob: fan_out = count
    assert fan_in_out((6, 4, 5)) == (20, 30)


@pytest.mark.parametrize("norm, n", [("FAN_IN", 25 * 25 * 40), ("FAN_OUT", 40 * 25 * 40),
                                     ("AVERAGE", (25 * 25 * 40 + 40 * 25 * 40) / 2)])
def test_xavier_is_uniform_sqrt_3_over_n(norm, n):
    p = param(type="xavier", variance_norm=caffe_pb2.FillerParameter.VarianceNorm.Value(norm))
    bound = math.sqrt(3 / n)
    assert xavier_bound(p, SHAPE) == pytest.approx(bound, rel=1e-7)
    x = fill(p, SHAPE, rng())
    assert np.abs(x).max() <= np.float32(bound) and np.abs(x).max() > bound * (1 - 1e-4)
    close_mean(x, 0.0, bound / math.sqrt(3))
    close_std(x, bound / math.sqrt(3), kurtosis=1.8)


@pytest.mark.parametrize("norm, n", [("FAN_IN", 25 * 25 * 40), ("FAN_OUT", 40 * 25 * 40),
                                     ("AVERAGE", (25 * 25 * 40 + 40 * 25 * 40) / 2)])
def test_msra_is_gaussian_sqrt_2_over_n(norm, n):
    p = param(type="msra", variance_norm=caffe_pb2.FillerParameter.VarianceNorm.Value(norm))
    std = math.sqrt(2 / n)
    assert msra_std(p, SHAPE) == pytest.approx(std, rel=1e-7)
    x = fill(p, SHAPE, rng())
    close_mean(x, 0.0, std)
    close_std(x, std)


def test_positive_unitball_rows_sum_to_one():
    shape = (37, 3, 5, 7)
    x = fill(param(type="positive_unitball"), shape, rng())
    assert (x >= 0).all()
    # Each row of 105 float32 values, divided by their float32 sum: off by a few float32 roundings.
    np.testing.assert_allclose(x.reshape(37, -1).sum(axis=1, dtype=np.float64), 1.0, rtol=0, atol=1e-6)


def bilinear_reference(k: int) -> np.ndarray:
    """Bilinear interpolation weights written the usual way (distance from the kernel's centre (k-1)/2,
    scaled by the factor f = ceil(k/2)), in double precision: the same numbers as Caffe's
    (1 - |x/f - c|)(1 - |y/f - c|) with c = (k-1)/(2f)."""
    f = math.ceil(k / 2)
    centre = (k - 1) / 2
    return np.array([[(1 - abs(y - centre) / f) * (1 - abs(x - centre) / f) for x in range(k)]
                     for y in range(k)])


@pytest.mark.parametrize("k", range(1, 12))
def test_bilinear_matches_the_formula(k):
    out = fill(param(type="bilinear"), (3, 2, k, k), rng())
    ref = bilinear_reference(k)
    for o in range(3):
        for i in range(2):
            # float32 steps against exact arithmetic: within 2 float32 roundings of values <= 1.
            np.testing.assert_allclose(out[o, i], ref, rtol=0, atol=2 * 2**-24)


@needs_golden
@pytest.mark.parametrize("case, key", [("layers/deconv_bilinear_fcn", "upscore.0"), ("nets/mini_fcn", "upscore.0")])
def test_bilinear_equals_caffe_bit_for_bit(case, key):
    golden = np.load(GOLDEN / case / "params.npz")[key]
    out = fill(param(type="bilinear"), golden.shape, rng())
    assert out.shape == golden.shape and out.tobytes() == golden.tobytes()


@needs_golden
@pytest.mark.parametrize("case, key, value", [("layers/conv_msra_group3_stride2", "conv.1", 0.2),
                                              ("layers/prelu_shared", "prelu.0", 0.3)])
def test_constant_equals_caffe(case, key, value):
    golden = np.load(GOLDEN / case / "params.npz")[key]
    assert fill(param(type="constant", value=value), golden.shape, rng()).tobytes() == golden.tobytes()


@needs_golden
@pytest.mark.parametrize("key", ["conv1.0", "conv2.0", "ip1.0", "ip2.0"])
def test_xavier_bound_contains_caffes_draws(key):
    """LeNet's weights were drawn by Caffe's xavier filler (default FAN_IN): they lie within our bound and
    come close to it, which FAN_OUT (ip1: 0.173 instead of 0.0612) or Glorot's sqrt(6/(in+out)) would not."""
    w = np.load(GOLDEN / "nets/lenet/params.npz")[key]
    bound = xavier_bound(param(type="xavier"), w.shape)
    top = np.abs(w).max()
    assert top <= bound
    # The largest of n U(-b, b) draws falls short of b by more than b*20/n with probability e^-20.
    assert top > bound * (1 - 20 / w.size)
    close_std(w, float(bound) / math.sqrt(3), kurtosis=1.8)


@needs_golden
def test_msra_std_fits_caffes_draws():
    w = np.load(GOLDEN / "layers/conv_msra_group3_stride2/params.npz")["conv.0"]  # (6, 2, 5, 5): fan_in 50
    assert msra_std(param(type="msra"), w.shape) == np.float32(math.sqrt(2 / 50))
    close_std(w, math.sqrt(2 / 50))


def test_unknown_type_names_it():
    with pytest.raises(ShapeError) as e:
        fill(param(type="gausian"), (2, 3), rng())
    assert str(e.value) == 'unknown filler type "gausian"'
    assert e.value.diagnostics[0].hint == 'did you mean "gaussian"?'
    with pytest.raises(ShapeError) as e:
        fill(param(type="orthogonal"), (2, 3), rng())
    assert str(e.value) == 'unknown filler type "orthogonal"'
    assert e.value.diagnostics[0].hint == ("Caffe's fillers are constant, uniform, gaussian, xavier, msra, "
                                           "bilinear, positive_unitball")


@pytest.mark.parametrize("p, shape, message", [
    (param(type="xavier", sparse=3), (4, 5),
     'filler "xavier" does not support sparse (sparse: 3); only "gaussian" does'),
    (param(type="uniform", min=1, max=0), (4,), 'filler "uniform" needs min <= max (min: 1, max: 0)'),
    (param(type="gaussian", std=0), (4,), 'filler "gaussian" needs std > 0 (std: 0)'),
    (param(type="gaussian", sparse=-2), (4,), 'filler "gaussian": sparse must be -1 (dense) or at least 0, not -2'),
    (param(type="bilinear"), (3, 4, 4), 'filler "bilinear" needs a 4-D blob, not (3, 4, 4)'),
    (param(type="bilinear"), (3, 1, 4, 5), 'filler "bilinear" needs a square kernel, not 4x5'),
    (param(type="xavier"), (), 'filler "xavier" needs a blob with at least 1 axis and 1 value, not ()'),
    (param(type="msra"), (0, 3), 'filler "msra" needs a blob with at least 1 axis and 1 value, not (0, 3)'),
    (param(type="positive_unitball"), (2, 0), 'filler "positive_unitball" needs a blob with at least 1 value, '
                                              'not (2, 0)'),
], ids=lambda v: v if isinstance(v, str) and len(v) < 30 else None)
def test_what_caffe_refuses(p, shape, message):
    with pytest.raises(ShapeError) as e:
        fill(p, shape, rng())
    assert str(e.value) == message
