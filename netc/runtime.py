"""Caffe's layer arithmetic as plain PyTorch functions: the small runtime that netc's generated modules import.

Standalone on purpose: this file imports torch and nothing from netc, so a generated model runs with just
`netc/runtime.py` beside it.  Every function is a pure function of tensors and Python numbers (layer
parameters and shapes), so it runs on CPU and CUDA, in any floating dtype, under autograd and torch.compile:
the branches depend on parameters and shapes only, never on tensor values, and nothing calls `.item()`.

Conventions, as in Caffe:
* blobs are (N, C, H, W, ...) with channels on axis 1; labels and indices arrive as floating tensors and are
  cast to integers by truncation toward zero (C++ `static_cast<int>`); index outputs (ArgMax, the pooling
  mask) are returned in the input's floating dtype;
* axes may be negative and count from the end (`Blob::CanonicalAxisIndex`);
* loss functions return Caffe's loss top, a 0-d tensor, before any `loss_weight` (the caller multiplies);
* gradients are Caffe's Backward: where autograd of the forward formula would differ (clamped logarithms,
  ContrastiveLoss' `dist + 1e-4`), the function says so and reproduces Caffe's gradient.

Each docstring states the Caffe formula and the Caffe source file (src/caffe/layers/) it reproduces.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "FLT_MAX", "FLT_MIN", "LOG_THRESHOLD",
    "pool_output_size", "pool2d", "spp", "lrn", "im2col",
    "softmax_with_loss", "sigmoid_cross_entropy_loss", "euclidean_loss", "hinge_loss",
    "multinomial_logistic_loss", "infogain_loss", "contrastive_loss", "accuracy", "argmax",
    "mvn", "batch_norm_global", "batch_norm_train", "scale", "bias", "inner_product", "embed",
    "eltwise", "reduction", "tile", "crop", "slice", "flatten", "reshape", "batch_reindex",
    "power", "exp", "log", "bnll", "threshold", "elu", "swish", "clip", "prelu", "dropout",
    "stochastic_pool2d", "filter",
    "InnerProduct", "BatchNorm", "Scale", "Bias", "Embed", "LSTM", "RNN", "forward_all",
]

FLT_MAX = 3.4028234663852886e38     # <cfloat> FLT_MAX: MAX pooling's start value
FLT_MIN = 1.1754943508222875e-38    # <cfloat> FLT_MIN: SoftmaxWithLoss clamps probabilities to it
LOG_THRESHOLD = 1e-20               # kLOG_THRESHOLD (loss_layer.hpp): MultinomialLogistic/Infogain clamp

IntPair = Union[int, Sequence[int]]


# ----------------------------------------------------------------------------------------------------------
# Small helpers

def _pair(v: IntPair) -> tuple:
    if isinstance(v, int):
        return (v, v)
    a, b = v
    return (int(a), int(b))


def _axis(axis: int, ndim: int) -> int:
    """Blob::CanonicalAxisIndex: -ndim <= axis < ndim, negative counts from the end."""
    if not -ndim <= axis < ndim:
        raise IndexError(f"axis {axis} out of range for a {ndim}-axis blob")
    return axis + ndim if axis < 0 else axis


def _choice(value: str, table: dict, what: str) -> str:
    key = str(value).upper()
    if key not in table:
        raise ValueError(f"unknown {what} {value!r}; expected one of {sorted(set(table))}")
    return table[key]


def _prod(dims) -> int:
    out = 1                  # a plain loop: dynamo cannot trace math.prod over a generator
    for d in dims:
        out *= int(d)
    return out


def _int_labels(label: Tensor) -> Tensor:
    # static_cast<int>(float): truncation toward zero, which is what .to(int64) does.
    return label.detach().to(torch.int64)


def _clamped_log_grad_through(logp: Tensor, floor: float) -> Tensor:
    """max(logp, floor) in value, with the gradient of logp everywhere.  Caffe's losses clamp the
    probability inside the log in Forward but their Backward uses the unclamped formula (p - 1 for
    SoftmaxWithLoss, p·ΣH - H for Infogain, -1/max(p, t) for MultinomialLogistic)."""
    return logp + (logp.clamp(min=floor) - logp).detach()


_NORMALIZATION = {"FULL": "FULL", "VALID": "VALID", "BATCH_SIZE": "BATCH_SIZE", "NONE": "NONE"}


def _normalizer(mode: str, full: int, batch: int, valid: Optional[Tensor]) -> Union[float, Tensor]:
    """LossLayer::GetNormalizer / SoftmaxWithLossLayer::get_normalizer: FULL = outer·inner, VALID = the
    non-ignored count (FULL when there is no ignore_label), BATCH_SIZE = outer, NONE = 1; then max(1, n)."""
    mode = _choice(mode, _NORMALIZATION, "normalization")
    if mode == "VALID" and valid is not None:
        return valid.clamp(min=1)
    n = {"FULL": full, "VALID": full, "BATCH_SIZE": batch, "NONE": 1}[mode]
    return float(max(1, n))


# ----------------------------------------------------------------------------------------------------------
# Pooling

_POOL = {"MAX": "max", "AVE": "ave"}
_ROUND = {"CEIL": True, "FLOOR": False}


def pool_output_size(n: int, kernel: int, stride: int, pad: int, round_mode: str = "ceil",
                     clip: Optional[bool] = None) -> int:
    """ceil((n + 2p - k) / s) + 1 (round_mode CEIL, the default) or floor(...) + 1 (FLOOR); then, if the
    layer has any padding (`clip`, default p > 0; Caffe decides it per layer: pad_h or pad_w non-zero), drop
    the last window when it starts at or past n + p: (out - 1)·s >= n + p.  Without padding a ceil window may
    start past the input and is empty.  Python's // floors like C's floor() (negative numerators included).
    [pooling_layer.cpp Reshape]"""
    ceil = _choice(round_mode, _ROUND, "round_mode")
    num = n + 2 * pad - kernel
    out = (-(-num // stride) if ceil else num // stride) + 1
    if clip is None:
        clip = pad > 0
    if clip and (out - 1) * stride >= n + pad:
        out -= 1
    return out


def _ave_divisor(n: int, k: int, s: int, p: int, out: int, device) -> Tensor:
    """Per-axis AVE pool_size factor: hend = min(hstart + k, n + p) - hstart, before clipping to the input
    (padding counts, the ceil overhang past n + p does not; <= 0 for an empty window)."""
    start = torch.arange(out, device=device) * s - p
    return torch.clamp(start + k, max=n + p) - start


def pool2d(x: Tensor, kernel: Optional[IntPair] = None, stride: IntPair = 1, pad: IntPair = 0,
           method: str = "max", round_mode: str = "ceil", global_pooling: bool = False,
           return_mask: bool = False):
    """Caffe Pooling over the last two axes.  [pooling_layer.cpp Reshape, Forward_cpu, Backward_cpu]

    Output size per axis: pool_output_size(), with the clip rule on both axes when any pad is non-zero.
    Window (ph, pw): hstart = ph·s - pad.
      MAX: max over the window clipped to the input; padded cells are ignored; ties keep the first index in
      row-major order; `return_mask=True` also returns the argmax as a flat index h·W + w into the input
      plane (as x's dtype; Caffe's second top).
      AVE: sum over the clipped window / pool_size, pool_size = (hend - hstart)·(wend - wstart) with
      hend = min(hstart + k, H + pad) taken before clipping: padding cells count, the ceil overhang past
      H + pad does not (torch's count_include_pad=True divisor).
    global_pooling: kernel = (H, W), stride 1, pad 0, output 1x1.

    Caffe's ceil mode without padding can make a last window that starts past the input (stride > kernel,
    e.g. H=6, k=1, s=3 gives 3 outputs where torch's ceil_mode gives 2).  Such a window is empty and this
    reproduces Caffe's arithmetic: MAX gives -FLT_MAX (the dtype's lowest finite value) and mask -1; AVE
    gives 0 / pool_size, which is NaN when pool_size is 0 and -0.0 when it is negative.  No golden case has
    one.  Non-finite inputs follow torch (NaN propagates; Caffe's `>` skips NaN and reports -FLT_MAX for a
    window holding only -inf).

    Fast path: torch's own pooling (F.max_pool2d / F.avg_pool2d, implicit padding) whenever its output size
    and windows equal Caffe's, i.e. no empty ceil window and pad <= kernel // 2; otherwise the input is padded
    explicitly to exactly (out - 1)·s + k per axis and pooled without padding (AVE: sum pooling divided by
    Caffe's divisor map).
    """
    method = _choice(method, _POOL, "pooling method")
    ceil = _choice(round_mode, _ROUND, "round_mode")
    if return_mask and method != "max":
        raise ValueError("only MAX pooling has the argmax mask top")
    H, W = int(x.shape[-2]), int(x.shape[-1])
    if global_pooling:
        (kh, kw), (sh, sw), (ph, pw) = (H, W), (1, 1), (0, 0)
        if method == "ave":
            return x.mean(dim=(-2, -1), keepdim=True)
    else:
        if kernel is None:
            raise ValueError("pool2d needs a kernel unless global_pooling")
        (kh, kw), (sh, sw), (ph, pw) = _pair(kernel), _pair(stride), _pair(pad)
    clip = ph > 0 or pw > 0
    oh = pool_output_size(H, kh, sh, ph, round_mode, clip)
    ow = pool_output_size(W, kw, sw, pw, round_mode, clip)

    # torch's pooling clips the last window in ceil mode whatever the padding and needs pad <= k // 2.
    torch_same = all(p <= k // 2 and n + 2 * p >= k and
                     pool_output_size(n, k, s, p, round_mode, clip=ceil) == o
                     for n, k, s, p, o in ((H, kh, sh, ph, oh), (W, kw, sw, pw, ow)))
    if torch_same:
        if method == "ave":
            return F.avg_pool2d(x, (kh, kw), (sh, sw), (ph, pw), ceil_mode=ceil, count_include_pad=True)
        if not return_mask:
            return F.max_pool2d(x, (kh, kw), (sh, sw), (ph, pw), ceil_mode=ceil)
        out, idx = F.max_pool2d(x, (kh, kw), (sh, sw), (ph, pw), ceil_mode=ceil, return_indices=True)
        return out, idx.to(x.dtype)

    # Explicit padding: left/top = pad, right/bottom = whatever makes the last window end exactly there
    # (negative = crop input cells no window reads).
    bottom = (oh - 1) * sh + kh - H - ph
    right = (ow - 1) * sw + kw - W - pw
    if method == "ave":
        padded = F.pad(x, (pw, right, ph, bottom))
        total = F.avg_pool2d(padded, (kh, kw), (sh, sw), divisor_override=1)
        div_h = _ave_divisor(H, kh, sh, ph, oh, x.device)
        div_w = _ave_divisor(W, kw, sw, pw, ow, x.device)
        return total / (div_h[:, None] * div_w[None, :]).to(x.dtype)
    lowest = torch.finfo(x.dtype).min
    padded = F.pad(x, (pw, right, ph, bottom), value=lowest)
    if not return_mask:
        return F.max_pool2d(padded, (kh, kw), (sh, sw))
    out, idx = F.max_pool2d(padded, (kh, kw), (sh, sw), return_indices=True)
    wp = W + pw + right
    r, c = idx // wp - ph, idx % wp - pw
    inside = (r >= 0) & (r < H) & (c >= 0) & (c < W)
    mask = torch.where(inside, r * W + c, torch.full_like(idx, -1))
    return out, mask.to(x.dtype)


def spp(x: Tensor, pyramid_height: int, method: str = "max") -> Tensor:
    """Caffe SPP: level l < pyramid_height pools with bins = 2^l, kernel = ceil(H / bins), pad =
    (kernel·bins - H + 1) / 2, stride = kernel (per axis, Caffe's pooling and its ceil/clip rules); each level
    is flattened to (N, C·ph·pw) and the levels are concatenated.  pyramid_height 1 is the single pooling,
    (N, C, 1, 1), not flattened.  [spp_layer.cpp GetPoolingParam, LayerSetUp, Forward_cpu]"""
    H, W = int(x.shape[-2]), int(x.shape[-1])
    levels = []
    for level in range(pyramid_height):
        bins = 2 ** level
        kernel = (-(-H // bins), -(-W // bins))
        pad = ((kernel[0] * bins - H + 1) // 2, (kernel[1] * bins - W + 1) // 2)
        pooled = pool2d(x, kernel, kernel, pad, method)
        if pyramid_height == 1:
            return pooled
        levels.append(pooled.flatten(1))
    return torch.cat(levels, dim=1)


def im2col(x: Tensor, kernel: IntPair, stride: IntPair = 1, pad: IntPair = 0, dilation: IntPair = 1) -> Tensor:
    """Caffe Im2col: (N, C, H, W) -> (N, C·kh·kw, oh, ow), channel index c·kh·kw + i·kw + j, oh = (H + 2p -
    ext) / s + 1 with ext = d·(k - 1) + 1.  [im2col_layer.cpp, util/im2col.cpp]  (C++ truncation differs
    from floor only when H + 2p < ext, where F.unfold refuses.)"""
    k, s, p, d = _pair(kernel), _pair(stride), _pair(pad), _pair(dilation)
    cols = F.unfold(x, k, dilation=d, padding=p, stride=s)
    oh, ow = ((int(x.shape[2 + i]) + 2 * p[i] - (d[i] * (k[i] - 1) + 1)) // s[i] + 1 for i in range(2))
    return cols.reshape(x.shape[0], cols.shape[1], oh, ow)


# ----------------------------------------------------------------------------------------------------------
# LRN

def _channel_window_sum(t: Tensor, size: int) -> Tensor:
    """Σ over channels c' in [c - (size-1)/2, c + (size-1)/2] (axis 1, zeros outside), as shifted in-place
    adds on a copy: `size` memory passes, about twice as fast as a pooling over channels on CPU."""
    s = t.clone()
    for d in range(1, (size - 1) // 2 + 1):
        s[:, d:] += t[:, :-d]
        s[:, :-d] += t[:, d:]
    return s


class _CrossChannelLRN(torch.autograd.Function):
    """y = x·b^-β with b = k + α/n·Σ_window x²; Caffe's analytic backward
    dx = dy·b^-β - (2αβ/n)·x·Σ_window(dy·y/b).  [lrn_layer.cpp CrossChannelForward_cpu/Backward_cpu]"""

    @staticmethod
    def forward(ctx, x, size, alpha, beta, k):
        base = _channel_window_sum(x * x, size).mul_(alpha / size).add_(k)
        ctx.save_for_backward(x, base)
        ctx.lrn = (size, alpha, beta)
        return x * base.pow(-beta)

    @staticmethod
    def backward(ctx, dy):
        x, base = ctx.saved_tensors
        size, alpha, beta = ctx.lrn
        t = dy * base.pow(-beta)                          # dy·b^-β
        ratio = _channel_window_sum(t * x / base, size)   # Σ dy·y/b, y = x·b^-β
        return torch.addcmul(t, x, ratio, value=-2.0 * alpha * beta / size), None, None, None, None


_LRN_REGION = {"ACROSS": "across", "ACROSS_CHANNELS": "across", "WITHIN": "within", "WITHIN_CHANNEL": "within"}


def lrn(x: Tensor, local_size: int = 5, alpha: float = 1.0, beta: float = 0.75, k: float = 1.0,
        region: str = "across") -> Tensor:
    """Caffe LRN.  [lrn_layer.cpp]
      ACROSS_CHANNELS: y = x · (k + α/n · Σ_{c' in [c-(n-1)/2, c+(n-1)/2]} x_{c'}²)^-β, zero-padded channels
        (torch.nn.LocalResponseNorm's formula, computed as shifted adds over channels with Caffe's analytic
        backward: faster than torch's module on CPU).
      WITHIN_CHANNEL: y = x · (1 + α · avgpool_{n×n, pad (n-1)/2}(x²))^-β = x · (1 + α/n² · Σ_{n×n} x²)^-β:
        Caffe's internal Power → AVE Pooling → Power(shift 1, scale α, power -β) → Eltwise PROD; the pooling
        divisor is always n² (padding counts), and `k` is ignored.
    local_size must be odd (Caffe CHECKs it)."""
    region = _choice(region, _LRN_REGION, "norm_region")
    if local_size % 2 != 1:
        raise ValueError(f"LRN only supports odd values for local_size, got {local_size}")
    if region == "across":
        return _CrossChannelLRN.apply(x, int(local_size), float(alpha), float(beta), float(k))
    pad = (local_size - 1) // 2
    avg = F.avg_pool2d(x * x, local_size, 1, pad, count_include_pad=True)
    return x * (avg * alpha + 1.0).pow(-beta)


# ----------------------------------------------------------------------------------------------------------
# Losses and metrics

def _outer_inner(x: Tensor, axis: int) -> tuple:
    axis = _axis(axis, x.dim())
    return axis, _prod(x.shape[:axis]), int(x.shape[axis]), _prod(x.shape[axis + 1:])


def softmax_with_loss(logits: Tensor, label: Tensor, axis: int = 1, ignore_label: Optional[int] = None,
                      normalization: str = "VALID") -> Tensor:
    """Caffe SoftmaxWithLoss: p = softmax over `axis`; label = int(label) (truncated), label count =
    outer·inner; loss = -Σ_{label != ignore_label} log(max(p_label, FLT_MIN)) / max(1, normalizer), normalizer
    FULL = outer·inner, VALID = non-ignored count, BATCH_SIZE = outer, NONE = 1 (legacy `normalize: false`
    means BATCH_SIZE, `true` VALID: the caller resolves it).  Gradient (p - onehot)/normalizer at non-ignored
    positions, 0 elsewhere, also where the FLT_MIN clamp is active.  A label outside [0, C) that is not
    ignored is undefined in Caffe and an index error here.  [softmax_loss_layer.cpp]"""
    axis, outer, channels, inner = _outer_inner(logits, axis)
    logp = F.log_softmax(logits, dim=axis).reshape(outer, channels, inner)
    lab = _int_labels(label).reshape(outer, inner)
    valid = None if ignore_label is None else lab != ignore_label
    if valid is not None:
        lab = torch.where(valid, lab, torch.zeros_like(lab))
    picked = _clamped_log_grad_through(logp.gather(1, lab.unsqueeze(1)).squeeze(1), math.log(FLT_MIN))
    if valid is not None:
        picked = torch.where(valid, picked, torch.zeros_like(picked))
    count = None if valid is None else valid.sum().to(logits.dtype)
    return -picked.sum() / _normalizer(normalization, outer * inner, outer, count)


def sigmoid_cross_entropy_loss(logits: Tensor, target: Tensor, ignore_label: Optional[int] = None,
                               normalization: str = "BATCH_SIZE") -> Tensor:
    """Caffe SigmoidCrossEntropyLoss: loss = Σ_{int(t) != ignore_label} [max(x, 0) - x·t + log(1 + e^-|x|)]
    / max(1, normalizer), outer = shape(0), inner = count / outer.  ⚠ The default normalization is
    BATCH_SIZE (divide by N), not VALID.  Gradient (sigmoid(x) - t)/normalizer, 0 at ignored elements; no
    gradient to the target.  [sigmoid_cross_entropy_loss_layer.cpp]"""
    t = target.detach()
    elem = F.binary_cross_entropy_with_logits(logits, t.to(logits.dtype), reduction="none")
    count = None
    if ignore_label is not None:
        valid = _int_labels(t) != ignore_label
        elem = torch.where(valid, elem, torch.zeros_like(elem))
        count = valid.sum().to(logits.dtype)
    outer = int(logits.shape[0])
    return elem.sum() / _normalizer(normalization, logits.numel(), outer, count)


def euclidean_loss(a: Tensor, b: Tensor) -> Tensor:
    """Caffe EuclideanLoss: Σ(a - b)² / (2N), N = shape(0); both bottoms get gradients ±(a - b)/N.
    [euclidean_loss_layer.cpp]"""
    d = a - b
    return (d * d).sum() / int(a.shape[0]) / 2.0


_HINGE = {"L1": "L1", "L2": "L2"}


def hinge_loss(scores: Tensor, label: Tensor, norm: str = "L1") -> Tensor:
    """Caffe HingeLoss on (N, dim = count/N) scores: m_nj = max(0, 1 + s_nj·(j == label_n ? -1 : 1));
    L1: Σ m / N, L2: Σ m² / N.  [hinge_loss_layer.cpp]"""
    norm = _choice(norm, _HINGE, "hinge norm")
    n = int(scores.shape[0])
    s = scores.reshape(n, -1)
    truth = _int_labels(label).reshape(n, 1) == torch.arange(s.shape[1], device=s.device)
    margin = F.relu(1.0 + torch.where(truth, -s, s))
    return (margin.sum() if norm == "L1" else (margin * margin).sum()) / n


def multinomial_logistic_loss(prob: Tensor, label: Tensor) -> Tensor:
    """Caffe MultinomialLogisticLoss (the input is probabilities): -Σ_n log(max(p_{n,label_n}, 1e-20)) / N,
    N = shape(0), dim = count/N.  Gradient -1/(N·max(p, 1e-20)) at the label (Caffe's, also below the
    clamp).  [multinomial_logistic_loss_layer.cpp]"""
    n = int(prob.shape[0])
    p = prob.reshape(n, -1).gather(1, _int_labels(label).reshape(n, 1))
    p = p + (p.clamp(min=LOG_THRESHOLD) - p).detach()
    return -torch.log(p).sum() / n


def infogain_loss(logits: Tensor, label: Tensor, H: Tensor, axis: int = 1, ignore_label: Optional[int] = None,
                  normalization: str = "VALID") -> Tensor:
    """Caffe InfogainLoss (current BVLC: ⚠ a softmax is applied inside, the input is logits):
    loss = -Σ_{positions, label != ignore} Σ_l H[label, l]·log(max(p_l, 1e-20)) / max(1, normalizer),
    H has C·C values (a 3rd bottom or the `source` BlobProto), normalizer as in SoftmaxWithLoss.  Gradient
    (p·Σ_l H[label, l] - H[label, :])/normalizer (Caffe's, also below the clamp).  [infogain_loss_layer.cpp]"""
    axis, outer, channels, inner = _outer_inner(logits, axis)
    logp = F.log_softmax(logits, dim=axis).reshape(outer, channels, inner)
    logp = _clamped_log_grad_through(logp, math.log(LOG_THRESHOLD))
    lab = _int_labels(label).reshape(outer, inner)
    valid = None if ignore_label is None else lab != ignore_label
    if valid is not None:
        lab = torch.where(valid, lab, torch.zeros_like(lab))
    rows = H.detach().reshape(channels, channels).to(logits.dtype)[lab]      # (outer, inner, C)
    per = (rows.permute(0, 2, 1) * logp).sum(1)                              # (outer, inner)
    if valid is not None:
        per = torch.where(valid, per, torch.zeros_like(per))
    count = None if valid is None else valid.sum().to(logits.dtype)
    return -per.sum() / _normalizer(normalization, outer * inner, outer, count)


def contrastive_loss(a: Tensor, b: Tensor, sim: Tensor, margin: float = 1.0, legacy: bool = False) -> Tensor:
    """Caffe ContrastiveLoss: d² = ||a_n - b_n||²; similar pairs (int(sim) != 0) add d², dissimilar ones
    max(margin - d, 0)² (legacy_version: max(margin - d², 0)); sum / (2N).  ⚠ Caffe's gradient for a
    dissimilar pair divides by d + 1e-4, not d: -(margin - d)/(d + 1e-4)·(a - b)/N.  That gradient is
    reproduced (the loss value is exact; second derivatives are not Caffe's, which has none), which also keeps
    it finite at d = 0.  [contrastive_loss_layer.cpp]"""
    n = int(a.shape[0])
    diff = (a - b).reshape(n, -1)
    dist_sq = (diff * diff).sum(1)
    similar = _int_labels(sim).reshape(n) != 0
    if legacy:
        dissimilar = F.relu(margin - dist_sq)
    else:
        mdist = F.relu(margin - torch.sqrt(dist_sq.detach()))
        coeff = -mdist / (torch.sqrt(dist_sq.detach()) + 1e-4)
        dissimilar = mdist * mdist + coeff * (dist_sq - dist_sq.detach())
    return torch.where(similar, dist_sq, dissimilar).sum() / n / 2.0


def accuracy(scores: Tensor, label: Tensor, top_k: int = 1, axis: int = 1, ignore_label: Optional[int] = None,
             per_class: bool = False):
    """Caffe Accuracy (no gradient): a position counts as correct when the number of classes scoring >= the
    true class (the true class included) is <= top_k, so ⚠ ties count against the prediction; accuracy =
    correct / count over non-ignored positions (0 when none).  per_class=True also returns the second top:
    per class correct / count, 0 for a class with no sample.  [accuracy_layer.cpp]"""
    axis, outer, channels, inner = _outer_inner(scores, axis)
    s = scores.detach().reshape(outer, channels, inner)
    lab = _int_labels(label).reshape(outer, inner)
    valid = torch.ones_like(lab, dtype=torch.bool) if ignore_label is None else lab != ignore_label
    lab = torch.where(valid, lab, torch.zeros_like(lab))
    truth = s.gather(1, lab.unsqueeze(1))
    correct = ((s >= truth).sum(1) <= top_k) & valid
    count = valid.sum()
    acc = correct.sum().to(s.dtype) / count.clamp(min=1).to(s.dtype)
    if not per_class:
        return acc
    hit = (lab.unsqueeze(-1) == torch.arange(channels, device=s.device)) & valid.unsqueeze(-1)
    nums = hit.sum((0, 1))
    accs = (hit & correct.unsqueeze(-1)).sum((0, 1))
    return acc, accs.to(s.dtype) / nums.clamp(min=1).to(s.dtype)


def _caffe_top_k(x: Tensor, k: int, dim: int) -> tuple:
    """(values, indices) of the k largest along dim in Caffe's order: std::partial_sort with
    std::greater<pair<value, index>>, so among equal values the larger index comes first."""
    n = int(x.shape[dim])
    flipped = x.flip(dim)
    if k == 1:
        # argmax returns the first maximum: in flipped order that is the largest original index.
        order = flipped.argmax(dim, keepdim=True)
        values = flipped.gather(dim, order)
    else:
        values, order = torch.sort(flipped, dim=dim, descending=True, stable=True)
        values, order = values.narrow(dim, 0, k), order.narrow(dim, 0, k)
    return values, (n - 1) - order


def argmax(x: Tensor, top_k: int = 1, out_max_val: bool = False, axis: Optional[int] = None) -> Tensor:
    """Caffe ArgMax (no gradient), indices as x's dtype; ties: the larger index first.
      axis given: top = x.shape with [axis] = top_k, values if out_max_val else indices.
      no axis: each sample flattened; top (N, 2 if out_max_val else 1, top_k) = indices (then values), padded
      with trailing 1s to max(3, x.dim()) axes: (3, 10) -> (3, 1, 1); (2, 3, 2, 2) top 3 + values -> (2, 2, 3, 1).
    [argmax_layer.cpp]"""
    x = x.detach()
    if axis is not None:
        axis = _axis(axis, x.dim())
        values, index = _caffe_top_k(x, top_k, axis)
        return values if out_max_val else index.to(x.dtype)
    n = int(x.shape[0])
    values, index = _caffe_top_k(x.reshape(n, -1), top_k, 1)
    index = index.to(x.dtype)
    out = torch.stack((index, values), 1) if out_max_val else index.unsqueeze(1)
    return out.reshape(tuple(out.shape) + (1,) * (max(3, x.dim()) - 3))


# ----------------------------------------------------------------------------------------------------------
# Normalization and affine layers

def mvn(x: Tensor, normalize_variance: bool = True, across_channels: bool = False, eps: float = 1e-9) -> Tensor:
    """Caffe MVN: per (n, c) (per n if across_channels), y = x - mean; if normalize_variance,
    y /= sqrt(mean(y²)) + eps (⚠ eps is added to the standard deviation).  Gradient Caffe's
    (dy - mean(dy) - y·mean(dy·y)) / (std + eps), which differs from the exact one by eps/std and, unlike
    autograd through sqrt, stays finite for a constant plane (std 0).  [mvn_layer.cpp]"""
    groups = int(x.shape[0]) if across_channels else int(x.shape[0]) * int(x.shape[1])
    flat = x.reshape(groups, -1)
    centred = flat - flat.mean(1, keepdim=True)
    if normalize_variance:
        var = (centred * centred).mean(1, keepdim=True)
        std = torch.sqrt(var.detach())
        # value sqrt(var); d/dvar = 1 / (2(std + eps)) instead of 1 / (2 std): Caffe's Backward.
        std = std + (var - var.detach()) / (2.0 * (std + eps))
        centred = centred / (std + eps)
    return centred.reshape(x.shape)


def _bn_channels_first(x: Tensor) -> Tensor:
    # BatchNorm's channel count is shape(1), or 1 for a 1-axis blob.
    return x.unsqueeze(1) if x.dim() == 1 else x


def batch_norm_global(x: Tensor, mean: Tensor, var: Tensor, scale_factor: Tensor, eps: float = 1e-5,
                      weight: Optional[Tensor] = None, bias: Optional[Tensor] = None) -> Tensor:
    """Caffe BatchNorm with use_global_stats (TEST default): f = (s == 0 ? 0 : 1/s) with s = blobs[2][0];
    y = (x - f·blobs[0]) / sqrt(f·blobs[1] + eps); gradient dy / sqrt(var + eps).  The blobs get no
    gradient.  `weight`/`bias` (C) apply the Scale layer that follows in the same kernel: y·γ + β.
    [batch_norm_layer.cpp Forward_cpu/Backward_cpu]"""
    s = scale_factor.detach().reshape(())
    factor = torch.where(s == 0, torch.zeros_like(s), 1.0 / s)
    xc = _bn_channels_first(x)
    y = F.batch_norm(xc, mean.detach().reshape(-1) * factor, var.detach().reshape(-1) * factor, weight, bias,
                     training=False, eps=eps)
    return y.reshape(x.shape)


def batch_norm_train(x: Tensor, mean: Tensor, var: Tensor, scale_factor: Tensor, eps: float = 1e-5,
                     moving_average_fraction: float = 0.999, weight: Optional[Tensor] = None,
                     bias: Optional[Tensor] = None) -> tuple:
    """Caffe BatchNorm without use_global_stats (TRAIN default): y = (x - μ)/sqrt(σ² + eps) with the batch
    mean μ and the biased batch variance σ² over every axis but 1; gradient (dy - mean(dy) - mean(dy·y)·y) /
    sqrt(σ² + eps).  Returns (y, new blobs[0], blobs[1], blobs[2]) after Caffe's moving-average update with
    λ = moving_average_fraction and m = count / C:
        s' = λ·s + 1,   M' = μ + λ·M,   V' = (m > 1 ? m/(m-1) : 1)·σ² + λ·V.
    The new blobs are detached; the caller stores them.  `weight`/`bias` (C) apply the Scale layer that follows
    in the same kernel.  [batch_norm_layer.cpp Forward_cpu/Backward_cpu]"""
    xc = _bn_channels_first(x)
    channels = int(xc.shape[1])
    m = xc.numel() // channels
    if m > 1:
        # momentum 1 makes F.batch_norm overwrite these buffers with the batch mean and the unbiased batch
        # variance m/(m-1)·σ², exactly Caffe's bias-corrected term; it normalizes with the biased σ².
        batch_mean = torch.zeros(channels, dtype=x.dtype, device=x.device)
        batch_var = torch.ones(channels, dtype=x.dtype, device=x.device)
        y = F.batch_norm(xc, batch_mean, batch_var, weight, bias, training=True, momentum=1.0, eps=eps)
    else:
        # One value per channel: σ² = 0 and y = 0 (torch's batch_norm refuses this case).
        batch_mean = xc.detach().reshape(channels)
        batch_var = torch.zeros_like(batch_mean)
        centred = xc - xc.mean(0, keepdim=True)
        y = centred / torch.sqrt((centred * centred).mean(0, keepdim=True) + eps)
        if weight is not None:
            y = y * weight + (bias if bias is not None else 0)
    lam = moving_average_fraction
    new_factor = scale_factor.detach() * lam + 1.0
    new_mean = batch_mean.reshape(mean.shape) + lam * mean.detach()
    new_var = batch_var.reshape(var.shape) + lam * var.detach()
    return y.reshape(x.shape), new_mean, new_var, new_factor


def _along(param: Tensor, x: Tensor, axis: int) -> Tensor:
    """param (shape x.shape[axis : axis + param.dim()]) viewed to broadcast against x; a 0-d param is a
    scalar."""
    if param.dim() == 0:
        return param
    axis = _axis(axis, x.dim())
    if tuple(param.shape) != tuple(x.shape[axis:axis + param.dim()]):
        raise ValueError(f"shape {tuple(param.shape)} does not match axes {axis}.. of {tuple(x.shape)}")
    return param.reshape(tuple(param.shape) + (1,) * (x.dim() - axis - param.dim()))


def scale(x: Tensor, gamma: Tensor, beta: Optional[Tensor] = None, axis: int = 1) -> Tensor:
    """Caffe Scale: y = x ⊙ γ (+ β), γ of shape x.shape[axis : axis + num_axes] (the learned blob, or
    bottom[1] in the two-bottom form; num_axes is implied by γ's shape; a 0-d γ is a scalar), broadcast over
    the other axes; β has γ's shape.  [scale_layer.cpp]"""
    g = _along(gamma, x, axis)
    if beta is None:
        return x * g
    return torch.addcmul(_along(beta, x, axis), x, g)


def bias(x: Tensor, b: Tensor, axis: int = 1) -> Tensor:
    """Caffe Bias: y = x + b, b of shape x.shape[axis : axis + num_axes] (learned, or bottom[1]) broadcast over
    the other axes.  [bias_layer.cpp]"""
    return x + _along(b, x, axis)


def inner_product(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, axis: int = 1,
                  transpose: bool = False) -> Tensor:
    """Caffe InnerProduct: the axes from `axis` on are flattened to K; y = x·Wᵀ + b with W (N_out, K), or
    x·W with `transpose: true` (W stored (K, N_out)); top = x.shape[:axis] + (N_out,).
    [inner_product_layer.cpp]"""
    axis = _axis(axis, x.dim())
    flat = x.reshape(tuple(x.shape[:axis]) + (-1,))
    return F.linear(flat, weight.t() if transpose else weight, bias)


def embed(index: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """Caffe Embed: top = index.shape + (num_output,), row int(index) of W (input_dim, num_output) (+ b).
    No gradient to the indices.  [embed_layer.cpp]"""
    y = F.embedding(_int_labels(index), weight)
    return y if bias is None else y + bias


# ----------------------------------------------------------------------------------------------------------
# Multi-blob and shape layers

_ELTWISE = {"SUM": "SUM", "PROD": "PROD", "MAX": "MAX"}


def eltwise(inputs: Sequence[Tensor], op: str = "SUM", coeffs: Optional[Sequence[float]] = None) -> Tensor:
    """Caffe Eltwise over >= 2 same-shape bottoms.  [eltwise_layer.cpp]
      SUM: Σ coeff_i·x_i (coeffs: none or one per bottom).
      PROD: Π x_i; the gradient is the product of the other bottoms (stable_prod_grad's form; Caffe's
        `stable_prod_grad: false` computes top/x_i, equal up to rounding except where x_i = 0).
      MAX: the first pair takes b unless a > b, later bottoms win only when strictly greater; the gradient goes
        to the winner only (never split on ties)."""
    op = _choice(op, _ELTWISE, "eltwise operation")
    if len(inputs) < 2:
        raise ValueError("Eltwise needs at least 2 bottoms")
    if coeffs and op != "SUM":
        raise ValueError("Eltwise coeff is only for SUM")
    if op == "SUM":
        coeffs = [1.0] * len(inputs) if not coeffs else list(coeffs)
        if len(coeffs) != len(inputs):
            raise ValueError("Eltwise SUM takes one coeff per bottom")
        out = inputs[0] if coeffs[0] == 1 else inputs[0] * coeffs[0]
        for x, c in zip(inputs[1:], coeffs[1:]):
            out = out + x if c == 1 else torch.add(out, x, alpha=c)
        return out
    if op == "PROD":
        out = inputs[0]
        for x in inputs[1:]:
            out = out * x
        return out
    out = torch.where(inputs[0] > inputs[1], inputs[0], inputs[1])
    for x in inputs[2:]:
        out = torch.where(x > out, x, out)
    return out


_REDUCTION = {"SUM": "SUM", "ASUM": "ASUM", "SUMSQ": "SUMSQ", "MEAN": "MEAN"}


def reduction(x: Tensor, op: str = "SUM", axis: int = 0, coeff: float = 1.0) -> Tensor:
    """Caffe Reduction: reduces every axis from `axis` to the end, top = x.shape[:axis] (axis 0: a 0-d
    scalar): SUM Σx, ASUM Σ|x|, SUMSQ Σx², MEAN Σx/dim; times coeff.  [reduction_layer.cpp]"""
    op = _choice(op, _REDUCTION, "reduction operation")
    axis = _axis(axis, x.dim())
    flat = x.reshape(tuple(x.shape[:axis]) + (-1,))
    if op == "ASUM":
        flat = flat.abs()
    elif op == "SUMSQ":
        flat = flat * flat
    out = flat.sum(-1)
    factor = coeff / flat.shape[-1] if op == "MEAN" else coeff
    return out if factor == 1 else out * factor


def tile(x: Tensor, axis: int = 1, tiles: int = 1) -> Tensor:
    """Caffe Tile: top.shape[axis] = tiles·x.shape[axis], the whole block from `axis` on repeated (torch
    `repeat`, not `repeat_interleave`).  [tile_layer.cpp]"""
    axis = _axis(axis, x.dim())
    return x.repeat(tuple(tiles if i == axis else 1 for i in range(x.dim())))


def crop(x: Tensor, ref: Tensor, axis: int = 2, offsets: Sequence[int] = ()) -> Tensor:
    """Caffe Crop: every axis i >= `axis` takes ref.shape[i] elements of x from offset (none given: 0; one:
    used for every cropped axis; else one per cropped axis); axes before `axis` are kept.
    [crop_layer.cpp]"""
    axis = _axis(axis, x.dim())
    offsets = list(offsets)
    if len(offsets) not in (0, 1, x.dim() - axis):
        raise ValueError(f"Crop takes 0, 1 or {x.dim() - axis} offsets, got {len(offsets)}")
    for i in range(axis, x.dim()):
        off = 0 if not offsets else offsets[0] if len(offsets) == 1 else offsets[i - axis]
        x = x.narrow(i, int(off), int(ref.shape[i]))
    return x


def slice(x: Tensor, axis: int = 1, points: Sequence[int] = (), tops: Optional[int] = None) -> tuple:
    """Caffe Slice: with slice_points p0 < p1 < ... the pieces are [0, p0), [p0, p1), ..., [p_last, D);
    without points D is split into `tops` equal pieces (D % tops == 0).  [slice_layer.cpp]"""
    axis = _axis(axis, x.dim())
    dim = int(x.shape[axis])
    if points:
        bounds = [0] + [int(p) for p in points] + [dim]
        sizes = [b - a for a, b in zip(bounds, bounds[1:])]
        if any(s <= 0 for s in sizes):
            raise ValueError(f"slice points {list(points)} must increase strictly inside (0, {dim})")
    else:
        if not tops or dim % tops:
            raise ValueError(f"cannot split {dim} into {tops} equal slices")
        sizes = [dim // tops] * tops
    return tuple(torch.split(x, sizes, dim=axis))


def flatten(x: Tensor, axis: int = 1, end_axis: int = -1) -> Tensor:
    """Caffe Flatten: top = shape[:a] + (count(a, e + 1),) + shape[e + 1:].  [flatten_layer.cpp]"""
    return x.flatten(_axis(axis, x.dim()), _axis(end_axis, x.dim()))


def reshape(x: Tensor, shape: Sequence[int], axis: int = 0, num_axes: int = -1) -> Tensor:
    """Caffe Reshape: the axes [a, a + num_axes) (num_axes -1: all remaining) are replaced by `shape`;
    a negative axis counts as ndim + axis + 1 (-1: after the last axis); dim 0 copies the bottom's dim at
    a + i (relative to `axis`); one -1 is inferred from the count.  [reshape_layer.cpp]"""
    ndim = x.dim()
    start = axis if axis >= 0 else ndim + axis + 1
    end = ndim if num_axes == -1 else start + num_axes
    if not 0 <= start <= end <= ndim:
        raise IndexError(f"reshape axes [{start}, {end}) out of range for a {ndim}-axis blob")
    dims = [int(x.shape[start + i]) if d == 0 else int(d) for i, d in enumerate(shape)]
    return x.reshape(tuple(x.shape[:start]) + tuple(dims) + tuple(x.shape[end:]))


def batch_reindex(x: Tensor, index: Tensor) -> Tensor:
    """Caffe BatchReindex: top[i] = x[int(index[i])]; the gradient is scattered (summed) back.
    [batch_reindex_layer.cpp]"""
    return x.index_select(0, _int_labels(index).reshape(-1))


# ----------------------------------------------------------------------------------------------------------
# Neuron layers

def power(x: Tensor, power: float = 1.0, scale: float = 1.0, shift: float = 0.0) -> Tensor:
    """Caffe Power: y = (shift + scale·x)^power; when power·scale == 0 the top is the constant
    (power == 0 ? 1 : shift^power) with no gradient.  [power_layer.cpp]"""
    if power * scale == 0:
        try:
            value = 1.0 if power == 0 else math.pow(shift, power)
        except (ValueError, OverflowError):   # C's pow gives NaN / inf where Python raises
            value = math.nan if shift < 0 else math.inf
        return torch.full_like(x, value)
    base = x if scale == 1 else x * scale
    if shift != 0:
        base = base + shift
    return base if power == 1 else torch.pow(base, power)


def exp(x: Tensor, base: float = -1.0, scale: float = 1.0, shift: float = 0.0) -> Tensor:
    """Caffe Exp: y = base^(shift + scale·x) (base -1 means e), computed as Caffe does:
    (shift == 0 ? 1 : base^shift) · e^(ln(base)·scale·x).  [exp_layer.cpp]"""
    log_base = 1.0 if base == -1 else math.log(base)
    outer = 1.0 if shift == 0 else (math.e if base == -1 else base) ** shift
    y = torch.exp(x * (log_base * scale))
    return y if outer == 1 else y * outer


def log(x: Tensor, base: float = -1.0, scale: float = 1.0, shift: float = 0.0) -> Tensor:
    """Caffe Log: y = log_base(shift + scale·x) (base -1 means e) = ln(shift + scale·x) / ln(base).
    [log_layer.cpp]"""
    inner = x if scale == 1 else x * scale
    if shift != 0:
        inner = inner + shift
    y = torch.log(inner)
    return y if base == -1 else y * (1.0 / math.log(base))


def bnll(x: Tensor) -> Tensor:
    """Caffe BNLL: y = x > 0 ? x + log(1 + e^-x) : log(1 + e^x) = softplus(x) (torch switches to y = x above
    20, within float32 rounding); gradient sigmoid(x).  [bnll_layer.cpp]"""
    return F.softplus(x)


def threshold(x: Tensor, threshold: float = 0.0) -> Tensor:
    """Caffe Threshold: y = x > threshold ? 1 : 0 (strict; no gradient).  [threshold_layer.cpp]"""
    return (x.detach() > threshold).to(x.dtype)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """Caffe ELU: y = max(x, 0) + alpha·(e^min(x, 0) - 1).  [elu_layer.cpp]"""
    return F.elu(x, alpha)


def swish(x: Tensor, beta: float = 1.0) -> Tensor:
    """Caffe Swish: y = x·sigmoid(beta·x).  [swish_layer.cpp]"""
    return x * torch.sigmoid(x if beta == 1 else x * beta)


def clip(x: Tensor, min: float, max: float) -> Tensor:  # noqa: A002 (Caffe's field names)
    """Caffe Clip: y = min(max(x, min), max); gradient passes where min <= x <= max.  [clip_layer.cpp]"""
    return torch.clamp(x, min, max)


def prelu(x: Tensor, slope: Tensor) -> Tensor:
    """Caffe PReLU: y = max(x, 0) + a_c·min(x, 0), one slope per channel (axis 1) or one shared slope
    (channel_shared: a 0-d or 1-element blob).  [prelu_layer.cpp]"""
    return F.prelu(x, slope.reshape(-1))


def dropout(x: Tensor, ratio: float = 0.5, train: bool = False) -> Tensor:
    """Caffe Dropout: TRAIN y = x·mask/(1 - ratio), mask ~ Bernoulli(1 - ratio) (inverted dropout, torch's
    RNG stream, not Caffe's); TEST identity.  The layer's phase decides.  [dropout_layer.cpp]"""
    return F.dropout(x, ratio, training=True) if train and ratio > 0 else x


def stochastic_pool2d(x: Tensor, kernel: IntPair, stride: IntPair = 1, train: bool = False) -> Tensor:
    """Caffe STOCHASTIC pooling (no padding; Caffe implements it on the GPU only).  Output size as MAX/AVE
    (ceil, no clip); window (ph, pw) covers [ph·s, min(ph·s + k, H)).  [pooling_layer.cu StoPoolForward*]
      TRAIN: one element per window drawn with probability x / Σ_window x (activations are expected to be
        non-negative): threshold u·Σ with u ~ U[0, 1), the first element in row-major order whose running
        sum reaches it; the gradient goes to that element.
      TEST: Σ x² / (FLT_MIN + Σ x), the probability-weighted average."""
    (kh, kw), (sh, sw) = _pair(kernel), _pair(stride)
    H, W = int(x.shape[-2]), int(x.shape[-1])
    oh, ow = pool_output_size(H, kh, sh, 0), pool_output_size(W, kw, sw, 0)
    # Zeros past the input: they add nothing to either sum and are never drawn.
    padded = F.pad(x, (0, (ow - 1) * sw + kw - W, 0, (oh - 1) * sh + kh - H))
    n, c = int(x.shape[0]), int(x.shape[1])
    cols = F.unfold(padded.reshape(n * c, 1, padded.shape[-2], padded.shape[-1]), (kh, kw), stride=(sh, sw))
    total = cols.sum(1, keepdim=True)                                   # (N·C, 1, L)
    if not train:
        out = (cols * cols).sum(1, keepdim=True) / (total + FLT_MIN)
    else:
        threshold = torch.rand_like(total) * total
        first = (cols.detach().cumsum(1) < threshold).sum(1, keepdim=True).clamp(max=kh * kw - 1)
        out = cols.gather(1, first)
    return out.reshape(n, c, oh, ow)


def filter(*bottoms: Tensor) -> tuple:  # noqa: A001 (Caffe's layer name)
    """Caffe Filter: the last bottom is the selector (N, 1, ...); each other bottom keeps the items n with
    selector[n] != 0, in order.  The output size depends on the values (not traceable with static shapes); no
    gradient to the selector.  [filter_layer.cpp]"""
    *data, selector = bottoms
    keep = torch.nonzero(selector.detach().reshape(selector.shape[0]) != 0).reshape(-1)
    return tuple(b.index_select(0, keep) for b in data)


# ----------------------------------------------------------------------------------------------------------
# Layers with blobs, as modules.  Each holds Caffe's blobs under the names and in the shapes of Caffe's
# `layer.blobs()`, so a .caffemodel copies in without reshaping.

def _empty(*shape: int) -> Tensor:
    return torch.empty(shape)


class InnerProduct(nn.Module):
    """InnerProduct with `transpose: true`: weight stored (K, N_out), y = x·W + b.  (Without transpose a
    generated module uses nn.Linear, whose weight is Caffe's (N_out, K).)  [inner_product_layer.cpp]"""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, axis: int = 1) -> None:
        super().__init__()
        self.axis = axis
        self.weight = nn.Parameter(_empty(in_features, out_features))
        self.bias = nn.Parameter(_empty(out_features)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return inner_product(x, self.weight, self.bias, self.axis, transpose=True)


class BatchNorm(nn.Module):
    """Caffe BatchNorm: no affine parameters (a Scale layer follows), three state buffers as Caffe stores
    them: `mean` and `variance` (each a running sum, C values) and `scale_factor` (1 value, their weight).
    use_global_stats None follows the module's mode as Caffe's follows the phase: training → batch
    statistics and the moving-average update, eval → the stored statistics.  [batch_norm_layer.cpp]"""

    def __init__(self, channels: int, eps: float = 1e-5, moving_average_fraction: float = 0.999,
                 use_global_stats: Optional[bool] = None) -> None:
        super().__init__()
        self.eps = eps
        self.moving_average_fraction = moving_average_fraction
        self.use_global_stats = use_global_stats
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("variance", torch.zeros(channels))
        self.register_buffer("scale_factor", torch.zeros(1))

    def forward(self, x: Tensor, affine: Optional["Scale"] = None) -> Tensor:
        """`affine`: the per-channel Scale layer that follows in place, applied in the same kernel."""
        weight, bias = (affine.weight, affine.bias) if affine is not None else (None, None)
        use_global = not self.training if self.use_global_stats is None else self.use_global_stats
        if use_global:
            return batch_norm_global(x, self.mean, self.variance, self.scale_factor, self.eps, weight, bias)
        y, mean, var, factor = batch_norm_train(x, self.mean, self.variance, self.scale_factor, self.eps,
                                                self.moving_average_fraction, weight, bias)
        with torch.no_grad():
            self.mean.copy_(mean)
            self.variance.copy_(var)
            self.scale_factor.copy_(factor)
        return y

    def extra_repr(self) -> str:
        return (f"{self.mean.shape[0]}, eps={self.eps}, moving_average_fraction={self.moving_average_fraction}, "
                f"use_global_stats={self.use_global_stats}")


class Scale(nn.Module):
    """Caffe Scale with a learned γ of `shape` (x.shape[axis : axis + num_axes]; () is a scalar) and, with
    bias_term, β of the same shape; `weight=False` is the two-bottom form, γ given to forward.
    [scale_layer.cpp]"""

    def __init__(self, shape: Sequence[int], bias: bool = False, axis: int = 1, weight: bool = True) -> None:
        super().__init__()
        self.axis = axis
        self.weight = nn.Parameter(_empty(*shape)) if weight else None
        self.bias = nn.Parameter(_empty(*shape)) if bias else None

    def forward(self, x: Tensor, gamma: Optional[Tensor] = None) -> Tensor:
        return scale(x, self.weight if gamma is None else gamma, self.bias, self.axis)


class Bias(nn.Module):
    """Caffe Bias with a learned b of `shape` (x.shape[axis : axis + num_axes]).  [bias_layer.cpp]"""

    def __init__(self, shape: Sequence[int], axis: int = 1) -> None:
        super().__init__()
        self.axis = axis
        self.bias = nn.Parameter(_empty(*shape))

    def forward(self, x: Tensor) -> Tensor:
        return bias(x, self.bias, self.axis)


class Embed(nn.Module):
    """Caffe Embed: weight (input_dim, num_output), bias (num_output); float indices truncated.
    [embed_layer.cpp]"""

    def __init__(self, input_dim: int, num_output: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(_empty(input_dim, num_output))
        self.bias = nn.Parameter(_empty(num_output)) if bias else None

    def forward(self, index: Tensor) -> Tensor:
        return embed(index, self.weight, self.bias)


class _Recurrent(nn.Module):
    """Shared by LSTM and RNN: x (T, N, ...) is flattened to (T, N, D); cont (T, N) is 0 where a sequence
    starts (the state entering that step is zeroed); an optional static input (N, ...) is projected once and
    added at every step.  With expose_hidden the initial states come in and the final states go out.
    [recurrent_layer.cpp]"""

    gates = 1

    def __init__(self, input_size: int, hidden: int, static_size: Optional[int] = None,
                 expose_hidden: bool = False) -> None:
        super().__init__()
        g = self.gates * hidden
        self.hidden = hidden
        self.expose_hidden = expose_hidden
        self.weight_x = nn.Parameter(_empty(g, input_size))
        self.bias_x = nn.Parameter(_empty(g))
        self.weight_static = nn.Parameter(_empty(g, static_size)) if static_size is not None else None

    def _inputs(self, x: Tensor, static: Optional[Tensor]) -> Tensor:
        t, n = int(x.shape[0]), int(x.shape[1])
        proj = F.linear(x.reshape(t, n, -1), self.weight_x, self.bias_x)
        if self.weight_static is not None:
            proj = proj + F.linear(static.reshape(n, -1), self.weight_static).unsqueeze(0)
        return proj


class LSTM(_Recurrent):
    """Caffe LSTM.  Blobs, in Caffe's order: W_xc (4H, D) `weight_x`, b_c (4H) `bias_x`, [W_xc_static
    (4H, D_s) `weight_static`], W_hc (4H, H) `weight_h`; gates [i, f, o, g] in that order.
    Per step t: a = W_xc·x_t + b_c (+ W_xc_static·x_static) + W_hc·(cont_t·h_{t-1});
    i, f, o = σ(a_i), σ(a_f), σ(a_o); g = tanh(a_g); c_t = cont_t·f·c_{t-1} + i·g; h_t = o·tanh(c_t).
    Top: h (T, N, H); with expose_hidden the bottoms add h_0, c_0 (1, N, H) and the tops h_T, c_T.
    [lstm_layer.cpp, lstm_unit_layer.cpp]"""

    gates = 4

    def __init__(self, input_size: int, hidden: int, static_size: Optional[int] = None,
                 expose_hidden: bool = False) -> None:
        super().__init__(input_size, hidden, static_size, expose_hidden)
        self.weight_h = nn.Parameter(_empty(4 * hidden, hidden))

    def forward(self, x: Tensor, cont: Tensor, static: Optional[Tensor] = None, h0: Optional[Tensor] = None,
                c0: Optional[Tensor] = None):
        proj = self._inputs(x, static)
        t, n, hsize = int(x.shape[0]), int(x.shape[1]), self.hidden
        h = proj.new_zeros(n, hsize) if h0 is None else h0.reshape(n, hsize)
        c = proj.new_zeros(n, hsize) if c0 is None else c0.reshape(n, hsize)
        mask = cont.reshape(t, n, 1).to(proj.dtype)
        outs = []
        for step in range(t):
            a = proj[step] + F.linear(mask[step] * h, self.weight_h)
            i, f, o, g = a.split(hsize, dim=1)
            c = mask[step] * torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        out = torch.stack(outs)
        if self.expose_hidden:
            return out, h.unsqueeze(0), c.unsqueeze(0)
        return out


class RNN(_Recurrent):
    """Caffe RNN.  Blobs, in Caffe's order: W_xh (H, D) `weight_x`, b_h (H) `bias_x`, [W_xh_static (H, D_s)
    `weight_static`], W_hh (H, H) `weight_h`, W_ho (H, H) `weight_o`, b_o (H) `bias_o`.  Per step:
    h_t = tanh(W_xh·x_t + b_h (+ W_xh_static·x_static) + W_hh·(cont_t·h_{t-1})), o_t = tanh(W_ho·h_t + b_o).
    Top: o (T, N, H); with expose_hidden the bottoms add h_0 (1, N, H) and the tops h_T.  [rnn_layer.cpp]"""

    def __init__(self, input_size: int, hidden: int, static_size: Optional[int] = None,
                 expose_hidden: bool = False) -> None:
        super().__init__(input_size, hidden, static_size, expose_hidden)
        self.weight_h = nn.Parameter(_empty(hidden, hidden))
        self.weight_o = nn.Parameter(_empty(hidden, hidden))
        self.bias_o = nn.Parameter(_empty(hidden))

    def forward(self, x: Tensor, cont: Tensor, static: Optional[Tensor] = None, h0: Optional[Tensor] = None):
        proj = self._inputs(x, static)
        t, n = int(x.shape[0]), int(x.shape[1])
        h = proj.new_zeros(n, self.hidden) if h0 is None else h0.reshape(n, self.hidden)
        mask = cont.reshape(t, n, 1).to(proj.dtype)
        hs = []
        for step in range(t):
            h = torch.tanh(proj[step] + F.linear(mask[step] * h, self.weight_h))
            hs.append(h)
        out = torch.tanh(F.linear(torch.stack(hs), self.weight_o, self.bias_o))
        if self.expose_hidden:
            return out, h.unsqueeze(0)
        return out


# ----------------------------------------------------------------------------------------------------------
# Parity debugging

def forward_all(module: nn.Module, inputs: dict, grads: Optional[dict] = None) -> dict:
    """Run `module(**inputs)` and return every Caffe blob as it stands after the forward pass (Caffe's
    `net.blobs`): the local variables of the generated forward when it returns, named back through the
    class's CAFFE_BLOBS table.  Eager mode only (it reads the frame of the generated forward).

    With a `grads` dict, each blob's gradient lands in grads[blob] during a later backward: the gradient with
    respect to the blob's first value, which is what Caffe's diff of an in-place blob holds after backward
    (ReLU in place on conv1 leaves conv1.diff = the gradient before the ReLU)."""
    import sys
    code = type(module).forward.__code__
    names = {var: blob for blob, var in type(module).CAFFE_BLOBS.items()}
    captured: dict = {}
    hooked: set = set()

    def watch(frame) -> None:
        for var, value in frame.f_locals.items():
            blob = names.get(var)
            if blob is not None and blob not in hooked and isinstance(value, Tensor) and value.requires_grad:
                hooked.add(blob)
                value.register_hook(lambda g, blob=blob: grads.__setitem__(blob, g))

    def local(frame, event, arg):
        watch(frame)  # at each line, the bindings the previous line made
        if event == "return":
            captured.update(frame.f_locals)
        return local

    def trace(frame, event, arg):
        return local if frame.f_code is code else None

    def profile(frame, event, arg):
        if event == "return" and frame.f_code is code:
            captured.update(frame.f_locals)

    if grads is None:
        previous = sys.getprofile()
        sys.setprofile(profile)
        try:
            module(**inputs)
        finally:
            sys.setprofile(previous)
    else:
        previous = sys.gettrace()
        sys.settrace(trace)
        try:
            module(**inputs)
        finally:
            sys.settrace(previous)
    if not captured:
        raise RuntimeError("forward_all needs the generated module itself (eager), not a compiled or wrapped one")
    return {blob: captured[var] for blob, var in type(module).CAFFE_BLOBS.items() if var in captured}
