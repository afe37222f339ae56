"""netc.runtime against the real Caffe.

Every golden single-layer case (../shared/golden/layers) of a layer type the runtime covers runs through its
runtime function with the parameters of the case's own net.prototxt: each top, and every bottom and param
gradient where Caffe stored a backward, must match within the case's recommended_tolerance.  Caffe rules the
golden cases do not exercise (empty ceil-mode pooling windows, pad > kernel/2, ties, clamped logs) are
checked against a direct loop transcription of Caffe's arithmetic in this file, never against numbers the
runtime produced.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="netc.runtime needs torch (the code-generation extra)")

import netc  # noqa: E402
from netc import runtime as rt  # noqa: E402
from golden import GOLDEN_ARTEFACTS, LAYER_CASES, hinge_loss_reference, layer_cases, needs_golden  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded():
    """Every test draws the same numbers on every run (no flaky tolerance checks)."""
    torch.manual_seed(0)


DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device")])]

# Golden tolerance when a case gives none: rtol 1e-5, atol 1e-6 x max|golden|.
DEFAULT_TOLERANCE = {"rtol": 1e-5, "atol_abs": 0.0, "atol_rel_to_max": 1e-6}


# ----------------------------------------------------------------------------------------------------------
# proto -> runtime call, one adapter per layer type (what the emitter will write)

def _enum(msg, field: str) -> str:
    """The enum value name of msg.field (protobuf's own table, no retyped names)."""
    return msg.DESCRIPTOR.fields_by_name[field].enum_type.values_by_number[getattr(msg, field)].name


def _opt(msg, field: str):
    return getattr(msg, field) if msg.HasField(field) else None


def _normalization(layer, default: str) -> str:
    """normalization if set; else legacy normalize (true VALID, false BATCH_SIZE); else the layer's default.
    [loss_layer.cpp, softmax_loss_layer.cpp, sigmoid_cross_entropy_loss_layer.cpp LayerSetUp]"""
    p = layer.loss_param
    if p.HasField("normalization"):
        return _enum(p, "normalization")
    if p.HasField("normalize"):
        return "VALID" if p.normalize else "BATCH_SIZE"
    return default


def _pool_geometry(p):
    kernel = (p.kernel_size,) * 2 if p.HasField("kernel_size") else (p.kernel_h, p.kernel_w)
    stride = (p.stride_h, p.stride_w) if p.HasField("stride_h") else (p.stride,) * 2
    pad = (p.pad_h, p.pad_w) if p.HasField("pad_h") else (p.pad,) * 2
    return kernel, stride, pad


def _conv_geometry(p):
    def field(name, default):
        v = list(getattr(p, name))
        return (v * 2 if len(v) == 1 else v) if v else [default] * 2
    return field("kernel_size", 0), field("stride", 1), field("pad", 0), field("dilation", 1)


def pooling(layer, b, w, phase):
    p = layer.pooling_param
    kernel, stride, pad = _pool_geometry(p)
    out = rt.pool2d(b[0], kernel, stride, pad, _enum(p, "pool"), _enum(p, "round_mode"), p.global_pooling,
                    return_mask=len(layer.top) == 2)
    return list(out) if isinstance(out, tuple) else [out]


def batch_norm(layer, b, w, phase):
    p = layer.batch_norm_param
    global_stats = p.use_global_stats if p.HasField("use_global_stats") else phase == "TEST"
    if global_stats:
        return [rt.batch_norm_global(b[0], *w, eps=p.eps)]
    y, *blobs = rt.batch_norm_train(b[0], *w, eps=p.eps, moving_average_fraction=p.moving_average_fraction)
    return [y], {f"{layer.name}.{i}": t for i, t in enumerate(blobs)}


def scale(layer, b, w, phase):
    p = layer.scale_param
    gamma, rest = (b[1], w) if len(b) == 2 else (w[0], w[1:])
    return [rt.scale(b[0], gamma, rest[0] if p.bias_term else None, axis=p.axis)]


def slice_(layer, b, w, phase):
    p = layer.slice_param
    axis = p.slice_dim if p.HasField("slice_dim") else p.axis
    return list(rt.slice(b[0], axis, list(p.slice_point), tops=len(layer.top)))


def loss_ignore(layer):
    return _opt(layer.loss_param, "ignore_label")


ADAPTERS = {
    "Pooling": pooling,
    "SPP": lambda l, b, w, ph: [rt.spp(b[0], l.spp_param.pyramid_height, _enum(l.spp_param, "pool"))],
    "LRN": lambda l, b, w, ph: [rt.lrn(b[0], l.lrn_param.local_size, l.lrn_param.alpha, l.lrn_param.beta,
                                       l.lrn_param.k, _enum(l.lrn_param, "norm_region"))],
    "Im2col": lambda l, b, w, ph: [rt.im2col(b[0], *_conv_geometry(l.convolution_param))],
    "SoftmaxWithLoss": lambda l, b, w, ph: [rt.softmax_with_loss(
        b[0], b[1], l.softmax_param.axis, loss_ignore(l), _normalization(l, "VALID"))],
    "SigmoidCrossEntropyLoss": lambda l, b, w, ph: [rt.sigmoid_cross_entropy_loss(
        b[0], b[1], loss_ignore(l), _normalization(l, "BATCH_SIZE"))],
    "EuclideanLoss": lambda l, b, w, ph: [rt.euclidean_loss(b[0], b[1])],
    "HingeLoss": lambda l, b, w, ph: [rt.hinge_loss(b[0], b[1], _enum(l.hinge_loss_param, "norm"))],
    "MultinomialLogisticLoss": lambda l, b, w, ph: [rt.multinomial_logistic_loss(b[0], b[1])],
    "InfogainLoss": lambda l, b, w, ph: [rt.infogain_loss(
        b[0], b[1], b[2], l.infogain_loss_param.axis, loss_ignore(l), _normalization(l, "VALID"))],
    "ContrastiveLoss": lambda l, b, w, ph: [rt.contrastive_loss(
        b[0], b[1], b[2], l.contrastive_loss_param.margin, l.contrastive_loss_param.legacy_version)],
    "Accuracy": lambda l, b, w, ph: list(rt.accuracy(
        b[0], b[1], l.accuracy_param.top_k, l.accuracy_param.axis, _opt(l.accuracy_param, "ignore_label"),
        per_class=True))[:len(l.top)],
    "ArgMax": lambda l, b, w, ph: [rt.argmax(b[0], l.argmax_param.top_k, l.argmax_param.out_max_val,
                                             _opt(l.argmax_param, "axis"))],
    "MVN": lambda l, b, w, ph: [rt.mvn(b[0], l.mvn_param.normalize_variance, l.mvn_param.across_channels,
                                       l.mvn_param.eps)],
    "BatchNorm": batch_norm,
    "Scale": scale,
    "Bias": lambda l, b, w, ph: [rt.bias(b[0], b[1] if len(b) == 2 else w[0], l.bias_param.axis)],
    "InnerProduct": lambda l, b, w, ph: [rt.inner_product(
        b[0], w[0], w[1] if l.inner_product_param.bias_term else None, l.inner_product_param.axis,
        l.inner_product_param.transpose)],
    "Embed": lambda l, b, w, ph: [rt.embed(b[0], w[0], w[1] if l.embed_param.bias_term else None)],
    "Eltwise": lambda l, b, w, ph: [rt.eltwise(b, _enum(l.eltwise_param, "operation"), list(l.eltwise_param.coeff))],
    "Reduction": lambda l, b, w, ph: [rt.reduction(b[0], _enum(l.reduction_param, "operation"),
                                                   l.reduction_param.axis, l.reduction_param.coeff)],
    "Tile": lambda l, b, w, ph: [rt.tile(b[0], l.tile_param.axis, l.tile_param.tiles)],
    "Crop": lambda l, b, w, ph: [rt.crop(b[0], b[1], l.crop_param.axis, list(l.crop_param.offset))],
    "Slice": slice_,
    "Flatten": lambda l, b, w, ph: [rt.flatten(b[0], l.flatten_param.axis, l.flatten_param.end_axis)],
    "Reshape": lambda l, b, w, ph: [rt.reshape(b[0], list(l.reshape_param.shape.dim), l.reshape_param.axis,
                                               l.reshape_param.num_axes)],
    "BatchReindex": lambda l, b, w, ph: [rt.batch_reindex(b[0], b[1])],
    "Power": lambda l, b, w, ph: [rt.power(b[0], l.power_param.power, l.power_param.scale, l.power_param.shift)],
    "Exp": lambda l, b, w, ph: [rt.exp(b[0], l.exp_param.base, l.exp_param.scale, l.exp_param.shift)],
    "Log": lambda l, b, w, ph: [rt.log(b[0], l.log_param.base, l.log_param.scale, l.log_param.shift)],
    "BNLL": lambda l, b, w, ph: [rt.bnll(b[0])],
    "Threshold": lambda l, b, w, ph: [rt.threshold(b[0], l.threshold_param.threshold)],
    "ELU": lambda l, b, w, ph: [rt.elu(b[0], l.elu_param.alpha)],
    "Swish": lambda l, b, w, ph: [rt.swish(b[0], l.swish_param.beta)],
    "Clip": lambda l, b, w, ph: [rt.clip(b[0], l.clip_param.min, l.clip_param.max)],
    "PReLU": lambda l, b, w, ph: [rt.prelu(b[0], w[0])],
    "Dropout": lambda l, b, w, ph: [rt.dropout(b[0], l.dropout_param.dropout_ratio, train=ph == "TRAIN")],
}

# Golden layer types the runtime has no function for, and why.
DECLINED = {
    "AbsVal": "torch.abs in the emitted module",
    "Concat": "torch.cat in the emitted module",
    "Convolution": "nn.Conv2d / F.conv2d in the emitted module",
    "Deconvolution": "nn.ConvTranspose2d in the emitted module",
    "ReLU": "F.relu / F.leaky_relu in the emitted module",
    "Sigmoid": "torch.sigmoid in the emitted module",
    "TanH": "torch.tanh in the emitted module",
    "Softmax": "F.softmax in the emitted module",
    "Split": "the emitted module reuses the tensor",
    "Silence": "the emitted module drops the tensor",
    "Parameter": "an nn.Parameter of the emitted module",
    "Filter": "data-dependent output size: not in the runtime yet",
    "LSTM": "recurrent layers come later",
    "RNN": "recurrent layers come later",
}


# ----------------------------------------------------------------------------------------------------------
# The golden cases

def _compare(actual, golden: np.ndarray, tol: dict, what: str) -> None:
    actual = np.asarray(actual, dtype=np.float64).reshape(-1)
    golden = np.asarray(golden, dtype=np.float64).reshape(-1)
    assert actual.shape == golden.shape, f"{what}: {actual.size} values, Caffe has {golden.size}"
    scale_ = float(np.abs(golden).max()) if golden.size else 0.0
    atol = tol.get("atol_abs", 0.0) + tol.get("atol_rel_to_max", 0.0) * scale_
    np.testing.assert_allclose(actual, golden, rtol=tol.get("rtol", 0.0), atol=atol, err_msg=what)


def _numpy(t) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def test_every_golden_type_is_covered_or_declined():
    index = LAYER_CASES / "index.json"
    if not index.is_file():
        pytest.skip(f"Caffe's golden outputs not found at {LAYER_CASES}")
    types = {case["type"] for case in json.loads(index.read_text()).values()}
    assert not set(ADAPTERS) & set(DECLINED)
    assert sorted(types - set(ADAPTERS) - set(DECLINED)) == []


@needs_golden
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", layer_cases(*ADAPTERS))
def test_golden_layer(case: Path, device: str):
    meta = json.loads((case / "case.json").read_text())
    net = netc.parse_prototxt(case / "net.prototxt")
    layer = next(l for l in net.layer if l.name == meta["layer_name"])
    tolerance = meta.get("recommended_tolerance", {})
    fwd_tol = tolerance.get("forward", DEFAULT_TOLERANCE)
    bwd_tol = tolerance.get("backward", DEFAULT_TOLERANCE)
    inputs, forward = np.load(case / "inputs.npz"), np.load(case / "forward.npz")
    backward = np.load(case / "backward.npz") if (case / "backward.npz").is_file() else None
    wants_grad = {i["blob"]: i["needs_grad"] for i in meta["inputs"]}

    bottoms = [torch.tensor(inputs[name], device=device, requires_grad=backward is not None and wants_grad[name])
               for name in layer.bottom]
    params = np.load(case / "params.npz")
    blobs = [torch.tensor(params[f"{layer.name}.{i}"], device=device, requires_grad=backward is not None)
             for i in range(len(meta["params"]))]

    result = ADAPTERS[layer.type](layer, bottoms, blobs, meta["phase"])
    tops, state = result if isinstance(result, tuple) else (result, {})
    assert len(tops) == len(layer.top)
    for name, top in zip(layer.top, tops):
        assert tuple(top.shape) == tuple(meta["tops"][name]), f"top {name!r} shape"
        assert top.dtype == torch.float32 and top.device.type == device
        _compare(_numpy(top), forward[name], fwd_tol, f"{case.name}: top {name!r}")
    for key, value in state.items():     # BatchNorm TRAIN: the blobs after the moving-average update
        _compare(_numpy(value), forward[key], fwd_tol, f"{case.name}: blob {key!r} after forward")

    if backward is None:
        return
    topdiff = np.load(case / "topdiff.npz")
    seeded = [(t, torch.tensor(topdiff[n], device=device).reshape(t.shape))
              for n, t in zip(layer.top, tops) if t.requires_grad]
    torch.autograd.backward([t for t, _ in seeded], [g for _, g in seeded])
    by_name = dict(zip(layer.bottom, bottoms))
    by_name.update({f"{layer.name}.{i}": blob for i, blob in enumerate(blobs)})
    for key in backward.files:
        tensor = by_name[key[:-len(".diff")]]
        grad = torch.zeros_like(tensor) if tensor.grad is None else tensor.grad
        golden = backward[key]
        if (case.name, key) in GOLDEN_ARTEFACTS:
            assert not golden.any(), "the golden hinge gradient is no longer all zero: drop GOLDEN_ARTEFACTS"
            golden = hinge_loss_reference(inputs["score"], inputs["label"], _enum(layer.hinge_loss_param, "norm"),
                                          float(topdiff["loss"].reshape(())))
        _compare(_numpy(grad), golden, bwd_tol, f"{case.name}: gradient {key!r}")


# ----------------------------------------------------------------------------------------------------------
# Pooling rules the golden cases do not reach, against a loop transcription of Caffe's Forward/Backward_cpu

def caffe_pool_loops(x: np.ndarray, k, s, p, method: str, ceil: bool = True):
    """(top, mask, bottom_diff for an all-ones top diff) of one (H, W) plane, Caffe's loops spelled out."""
    H, W = x.shape
    clip = p[0] > 0 or p[1] > 0
    out = [rt.pool_output_size(n, k[i], s[i], p[i], "ceil" if ceil else "floor", clip)
           for i, n in enumerate((H, W))]
    top = np.zeros(out, np.float32)
    mask = np.full(out, -1.0, np.float32)
    grad = np.zeros_like(x)
    for ph in range(out[0]):
        for pw in range(out[1]):
            hs, ws = ph * s[0] - p[0], pw * s[1] - p[1]
            if method == "max":
                he, we = min(hs + k[0], H), min(ws + k[1], W)
                hs, ws = max(hs, 0), max(ws, 0)
                best, arg = -np.float32(3.4028235e38), -1
                for h in range(hs, he):
                    for w in range(ws, we):
                        if x[h, w] > best:
                            best, arg = x[h, w], h * W + w
                top[ph, pw], mask[ph, pw] = best, arg
                if arg >= 0:
                    grad[arg // W, arg % W] += 1
            else:
                he, we = min(hs + k[0], H + p[0]), min(ws + k[1], W + p[1])
                size = (he - hs) * (we - ws)
                hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, H), min(we, W)
                total = np.float32(x[hs:he, ws:we].sum()) if he > hs and we > ws else np.float32(0)
                with np.errstate(invalid="ignore", divide="ignore"):
                    top[ph, pw] = total / np.float32(size)
                if he > hs and we > ws:
                    grad[hs:he, ws:we] += np.float32(1) / np.float32(size)
    return top, mask, grad


@pytest.mark.parametrize("n,k,s,p,ceil,expected", [
    (112, 3, 2, 0, True, 56),    # GoogLeNet/ResNet pool: floor would give 55
    (112, 3, 2, 0, False, 55),
    (3, 2, 2, 1, True, 2),       # ceil gives 3, the last window would start in the padding: clipped
    (6, 1, 3, 0, True, 3),       # no pad, no clip: the third window starts past the input (torch: 2)
    (13, 3, 2, 0, True, 6),
    (2, 3, 2, 0, True, 1),       # n + 2p < k: ceil(-1/2) = 0
])
def test_pool_output_size(n, k, s, p, ceil, expected):
    assert rt.pool_output_size(n, k, s, p, "ceil" if ceil else "floor") == expected


def test_pool_output_size_agrees_with_the_shape_rule():
    from netc.layers.vision import pool_out
    for n in range(1, 12):
        for k in range(1, 5):
            for s in range(1, 5):
                for p in range(0, k):
                    for ceil in (True, False):
                        assert rt.pool_output_size(n, k, s, p, "ceil" if ceil else "floor") == \
                            pool_out(n, k, s, p, ceil), (n, k, s, p, ceil)


@pytest.mark.parametrize("H,W,k,s,p,ceil", [
    (7, 6, (3, 3), (2, 2), (0, 0), True),     # torch's fast path
    (6, 7, (1, 1), (3, 3), (0, 0), True),     # empty last window on both axes (stride > kernel, no pad)
    (6, 9, (1, 2), (4, 3), (0, 0), True),     # pool_size < 0 on H: 0 / -2
    (5, 6, (3, 3), (1, 2), (2, 1), True),     # pad 2 > kernel // 2: torch refuses, explicit padding
    (9, 8, (4, 3), (3, 2), (2, 0), True),     # pad on one axis clips both
    (8, 8, (3, 3), (2, 2), (2, 2), False),    # FLOOR with a large pad
    (4, 5, (5, 6), (1, 1), (1, 2), True),     # kernel larger than the input
])
@pytest.mark.parametrize("method", ["max", "ave"])
def test_pool2d_matches_caffe_loops(H, W, k, s, p, ceil, method):
    gen = np.random.default_rng(H * 100 + W)
    x = gen.normal(size=(2, 3, H, W)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    out = rt.pool2d(xt, k, s, p, method, "ceil" if ceil else "floor", return_mask=method == "max")
    top, mask = out if method == "max" else (out, None)
    top.backward(torch.ones_like(top))
    for n in range(2):
        for c in range(3):
            ref_top, ref_mask, ref_grad = caffe_pool_loops(x[n, c], k, s, p, method, ceil)
            np.testing.assert_allclose(top[n, c].detach().numpy(), ref_top, rtol=1e-6, atol=1e-6, equal_nan=True)
            np.testing.assert_array_equal(np.signbit(top[n, c].detach().numpy()), np.signbit(ref_top))
            if mask is not None:
                np.testing.assert_array_equal(mask[n, c].numpy(), ref_mask)
            np.testing.assert_allclose(xt.grad[n, c].numpy(), ref_grad, rtol=1e-6, atol=1e-6)


def test_empty_ceil_window_values():
    x = torch.arange(36, dtype=torch.float32).reshape(1, 1, 6, 6)
    top, mask = rt.pool2d(x, 1, 3, 0, "max", return_mask=True)
    assert top.shape == (1, 1, 3, 3)
    assert top[0, 0, 2].tolist() == [-rt.FLT_MAX] * 3 and mask[0, 0, 2].tolist() == [-1.0] * 3
    assert top[0, 0, 1, 1].item() == 21.0 and mask[0, 0, 1, 1].item() == 21.0
    assert torch.isnan(rt.pool2d(x, 1, 3, 0, "ave")[0, 0, 2]).all()


def test_global_pooling():
    x = torch.randn(2, 3, 5, 7)
    top, mask = rt.pool2d(x, None, method="MAX", global_pooling=True, return_mask=True)
    assert torch.equal(top.flatten(), x.flatten(2).max(2).values.flatten())
    assert torch.equal(mask.flatten().long(), x.flatten(2).argmax(2).flatten())
    torch.testing.assert_close(rt.pool2d(x, None, method="AVE", global_pooling=True), x.mean((2, 3), keepdim=True))


# ----------------------------------------------------------------------------------------------------------
# LRN: Caffe's analytic backward

def test_lrn_across_is_torch_local_response_norm():
    x = torch.randn(3, 9, 4, 5, requires_grad=True)
    ref_x = x.detach().clone().requires_grad_()
    y = rt.lrn(x, 5, 0.3, 0.75, 2.0)
    ref = torch.nn.LocalResponseNorm(5, 0.3, 0.75, 2.0)(ref_x)
    torch.testing.assert_close(y, ref)
    dy = torch.randn_like(y)
    y.backward(dy)
    ref.backward(dy)
    torch.testing.assert_close(x.grad, ref_x.grad)


@pytest.mark.parametrize("region", ["across", "within"])
def test_lrn_gradcheck(region):
    x = torch.randn(2, 4, 3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: rt.lrn(t, 3, 0.7, 0.6, 1.5, region), (x,))


def test_lrn_needs_odd_size():
    with pytest.raises(ValueError, match="odd"):
        rt.lrn(torch.ones(1, 4, 2, 2), 4)


# ----------------------------------------------------------------------------------------------------------
# Ties, clamps and other rules from Caffe's source that random golden inputs do not hit

def test_argmax_ties_take_the_larger_index():
    x = torch.tensor([[1.0, 3.0, 3.0, 0.0, 3.0]])
    assert rt.argmax(x).flatten().tolist() == [4.0]
    assert rt.argmax(x, top_k=3).flatten().tolist() == [4.0, 2.0, 1.0]
    assert rt.argmax(x, top_k=2, out_max_val=True, axis=1).tolist() == [[3.0, 3.0]]
    assert rt.argmax(torch.zeros(2, 3, 2, 2), 3, True).shape == (2, 2, 3, 1)


def test_accuracy_ties_count_against_the_prediction():
    scores = torch.tensor([[2.0, 2.0, 0.0], [1.0, 0.0, 5.0], [0.0, 0.0, 0.0]])
    label = torch.tensor([0.0, 2.0, 7.0])
    acc, per_class = rt.accuracy(scores, label, ignore_label=7, per_class=True)
    assert acc.item() == 0.5 and per_class.tolist() == [0.0, 0.0, 1.0]
    assert rt.accuracy(scores, label, top_k=2, ignore_label=7).item() == 1.0
    assert rt.accuracy(scores[2:], label[2:], ignore_label=7).item() == 0.0     # nothing counted: 0


def test_softmax_with_loss_clamps_value_not_gradient():
    logits = torch.tensor([[0.0, 200.0]], requires_grad=True)
    loss = rt.softmax_with_loss(logits, torch.tensor([0.0]))
    assert loss.item() == pytest.approx(-math.log(rt.FLT_MIN))
    loss.backward()
    assert logits.grad.tolist() == [[-1.0, 1.0]]      # p - onehot, as Caffe's Backward


def test_softmax_with_loss_all_ignored_is_zero():
    logits = torch.randn(2, 3, requires_grad=True)
    loss = rt.softmax_with_loss(logits, torch.tensor([4.0, 4.0]), ignore_label=4)
    loss.backward()
    assert loss.item() == 0.0 and not logits.grad.any()


def test_multinomial_logistic_gradient_below_the_clamp():
    prob = torch.tensor([[0.0, 1.0]], requires_grad=True)
    loss = rt.multinomial_logistic_loss(prob, torch.tensor([0.0]))
    loss.backward()
    assert loss.item() == pytest.approx(-math.log(1e-20))
    assert prob.grad[0, 0].item() == pytest.approx(-1e20, rel=1e-6)


def test_contrastive_loss_gradient_is_finite_at_zero_distance():
    a = torch.ones(2, 3, requires_grad=True)
    loss = rt.contrastive_loss(a, torch.ones(2, 3), torch.tensor([0.0, 0.0]), margin=1.0)
    loss.backward()
    assert loss.item() == pytest.approx(0.5) and torch.isfinite(a.grad).all()


def test_mvn_gradient_of_a_constant_plane_is_caffes():
    gen = torch.Generator().manual_seed(5)
    x = torch.cat([torch.full((1, 1, 3, 4), 2.0), torch.randn(1, 1, 3, 4, generator=gen)], 1).requires_grad_()
    dy = torch.randn(1, 2, 3, 4, generator=gen)
    rt.mvn(x).backward(dy)
    flat = dy[0, 0].flatten()
    expected = (flat - flat.mean()) / 1e-9   # y = 0, std = 0
    # Values near 1e9 after a cancellation: compare against the largest, as float32 can.
    torch.testing.assert_close(x.grad[0, 0].flatten(), expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())


def test_eltwise_max_gradient_goes_to_one_winner():
    a, b = torch.tensor([1.0, 2.0], requires_grad=True), torch.tensor([1.0, 1.0], requires_grad=True)
    rt.eltwise([a, b], "MAX").sum().backward()
    assert a.grad.tolist() == [0.0, 1.0] and b.grad.tolist() == [1.0, 0.0]   # a tie goes to bottom 1


def test_power_constant_cases():
    x = torch.randn(3)
    assert rt.power(x, 0.0, 2.0, 5.0).tolist() == [1.0] * 3
    assert rt.power(x, 2.0, 0.0, 3.0).tolist() == [9.0] * 3


def test_batch_norm_train_single_value_per_channel():
    x = torch.randn(1, 3, requires_grad=True)
    y, mean, var, factor = rt.batch_norm_train(x, torch.ones(3), torch.ones(3), torch.ones(1), 1e-5, 0.5)
    assert not y.any() and torch.equal(mean, x.detach()[0] + 0.5) and torch.equal(var, torch.full((3,), 0.5))
    assert factor.tolist() == [1.5]


def test_reshape_rules():
    x = torch.zeros(2, 3, 4, 5)
    assert rt.reshape(x, [0, -1, 4]).shape == (2, 15, 4)
    assert rt.reshape(x, [2, 2], axis=2, num_axes=1).shape == (2, 3, 2, 2, 5)
    assert rt.reshape(x, [1], axis=-1, num_axes=0).shape == (2, 3, 4, 5, 1)


# ----------------------------------------------------------------------------------------------------------
# torch.compile: one graph, no breaks (dynamo's tracing only; the eager backend needs no C compiler)

def test_traces_without_graph_breaks():
    torch._dynamo.reset()

    def net(x, label, mean, var, factor):
        p1 = rt.pool2d(x, 3, 2, 0, "max", return_mask=True)[0]
        p2 = rt.pool2d(x, 1, 3, 0, "ave")            # Caffe's empty ceil window: explicit padding path
        y = rt.lrn(p1, 3, 1e-2, 0.75, 1.0) + rt.lrn(p1, 3, 1e-2, 0.75, region="within")
        y, *_ = rt.batch_norm_train(y, mean, var, factor)
        loss = rt.softmax_with_loss(y.mean((2, 3)), label, ignore_label=2)
        acc, per = rt.accuracy(y.mean((2, 3)), label, ignore_label=2, per_class=True)
        return loss + acc + per.sum() + rt.argmax(y).sum() + p2.nan_to_num().sum()

    compiled = torch.compile(net, backend="aot_eager", fullgraph=True)
    x = torch.randn(4, 5, 9, 9, requires_grad=True)
    args = (torch.tensor([0.0, 1.0, 2.0, 4.0]), torch.zeros(5), torch.ones(5), torch.ones(1))
    torch.testing.assert_close(compiled(x, *args), net(x, *args))
    compiled(x, *args).backward()
    assert torch.isfinite(x.grad).all()


# ----------------------------------------------------------------------------------------------------------
# STOCHASTIC pooling (no golden case: Caffe implements it on the GPU only), against Caffe's loops

def caffe_stochastic_test(x: np.ndarray, k, s) -> np.ndarray:
    """StoPoolForwardTest of one (H, W) plane: Σx² / (FLT_MIN + Σx) over [ph·s, min(ph·s + k, H))."""
    H, W = x.shape
    oh, ow = (rt.pool_output_size(n, k[i], s[i], 0) for i, n in enumerate((H, W)))
    top = np.zeros((oh, ow), np.float64)
    for ph in range(oh):
        for pw in range(ow):
            win = x[ph * s[0]:min(ph * s[0] + k[0], H), pw * s[1]:min(pw * s[1] + k[1], W)].astype(np.float64)
            top[ph, pw] = (win * win).sum() / (rt.FLT_MIN + win.sum())
    return top


@pytest.mark.parametrize("H,W,k,s", [(7, 6, (3, 3), (2, 2)), (6, 9, (2, 3), (2, 3)), (5, 5, (2, 2), (1, 1))])
def test_stochastic_pooling_test_phase_is_caffes(H, W, k, s):
    x = torch.rand(2, 3, H, W)
    top = rt.stochastic_pool2d(x, k, s, train=False)
    for n in range(2):
        for c in range(3):
            np.testing.assert_allclose(top[n, c].numpy(), caffe_stochastic_test(x[n, c].numpy(), k, s), rtol=1e-5)


def test_stochastic_pooling_train_draws_in_proportion_to_the_values():
    # One 1x2 window holding (1, 3): Caffe picks the second element with probability 3/4.
    x = torch.tensor([[[[1.0, 3.0]]]]).expand(20000, 1, 1, 2).contiguous().requires_grad_()
    top = rt.stochastic_pool2d(x, (1, 2), (1, 2), train=True)
    assert set(top.flatten().tolist()) == {1.0, 3.0}
    assert abs((top == 3.0).float().mean().item() - 0.75) < 0.02
    top.sum().backward()
    # The gradient goes to the drawn element only.
    picked = (x.grad[:, 0, 0, 1] == 1) == (top.flatten() == 3.0)
    assert picked.all() and (x.grad.sum((1, 2, 3)) == 1).all()


def test_lstm_with_exposed_state_is_torchs_lstm_with_caffes_gate_order():
    """With cont = 1 throughout, Caffe's LSTM is torch's nn.LSTM; Caffe orders the gates [i, f, o, g], torch
    [i, f, g, o]; the bias b_c is torch's b_ih + b_hh."""
    T, N, D, H = 5, 3, 4, 6
    caffe = rt.LSTM(D, H, expose_hidden=True)
    for p in caffe.parameters():
        torch.nn.init.uniform_(p, -0.5, 0.5)
    ref = torch.nn.LSTM(D, H)
    order = torch.cat([torch.arange(0, 2 * H), torch.arange(3 * H, 4 * H), torch.arange(2 * H, 3 * H)])
    with torch.no_grad():
        ref.weight_ih_l0.copy_(caffe.weight_x[order])
        ref.weight_hh_l0.copy_(caffe.weight_h[order])
        ref.bias_ih_l0.copy_(caffe.bias_x[order])
        ref.bias_hh_l0.zero_()
    x, h0, c0 = torch.randn(T, N, D), torch.randn(1, N, H), torch.randn(1, N, H)
    out, hT, cT = caffe(x, torch.ones(T, N), None, h0, c0)
    ref_out, (ref_h, ref_c) = ref(x, (h0, c0))
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close((hT, cT), (ref_h, ref_c))
    # cont = 0 at a step starts a new sequence there: the state entering it is zero.
    cont = torch.ones(T, N)
    cont[2] = 0
    restarted, _, _ = caffe(x, cont, None, h0, c0)
    fresh, _, _ = caffe(x[2:], torch.ones(T - 2, N), None, torch.zeros(1, N, H), torch.zeros(1, N, H))
    torch.testing.assert_close(restarted[2:], fresh)
