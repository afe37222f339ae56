"""Parity with the real Caffe: run a generated module on Caffe's inputs and weights and compare every blob.

    check_parity(net, weights, inputs, expected, ...) -> ParityResult   (`netc parity` prints its render())

The arrays follow the conventions of Caffe's own dumps (pycaffe `net.blobs`, the golden vectors): blob
name -> array after the forward pass (in-place layers leave the value written last), "<layer>.<i>" -> that
layer's blob i (BatchNorm statistics after a TRAIN forward), and with `backward`, "<blob>.diff" and
"<layer>.<i>.diff" -> gradients given the top diffs in `topdiff`.  A mismatch names the first diverging
array in net order, the layer that wrote it and its worst element with both values.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from .analysis import analyze
from .errors import UsageError
from .emit import fed_blobs
from .graph import Net, load_net

__all__ = ["Tolerance", "ParityResult", "check_parity", "FORWARD_TOLERANCE", "BACKWARD_TOLERANCE"]


@dataclass(frozen=True)
class Tolerance:
    """Per array: |netc - caffe| <= atol_abs + atol_rel_to_max·max|caffe| + rtol·|caffe| (np.allclose)."""

    rtol: float
    atol_abs: float = 0.0
    atol_rel_to_max: float = 0.0

    @classmethod
    def of(cls, spec) -> "Tolerance":
        if isinstance(spec, Tolerance):
            return spec
        return cls(float(spec.get("rtol", 0.0)), float(spec.get("atol_abs", 0.0)),
                   float(spec.get("atol_rel_to_max", 0.0)))

    def atol(self, expected: np.ndarray) -> float:
        scale = float(np.abs(expected).max()) if expected.size else 0.0
        return self.atol_abs + self.atol_rel_to_max * scale

    def text(self) -> str:
        return f"rtol {self.rtol:g}, atol {self.atol_abs:g} + {self.atol_rel_to_max:g} x max|Caffe|"


# The golden README's tolerances for whole nets (float32 reimplementation).
FORWARD_TOLERANCE = Tolerance(1e-4, 1e-7, 1e-5)
BACKWARD_TOLERANCE = Tolerance(1e-3, 1e-7, 2e-5)


@dataclass
class Comparison:
    key: str              # the array's name in the expected file
    writer: str           # the layer that wrote it last ("" for an input or a parameter)
    shape: tuple
    bad: int              # values outside the tolerance
    worst_index: tuple | None
    netc_value: float
    caffe_value: float
    error: float          # worst |netc - caffe|
    allowed: float        # the tolerance at the worst element
    tolerance: Tolerance
    note: str = ""        # a shape mismatch or a missing array

    @property
    def ok(self) -> bool:
        return not self.note and self.bad == 0


@dataclass
class ParityResult:
    forward: list[Comparison] = field(default_factory=list)
    backward: list[Comparison] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)   # expected arrays netc has nothing to compare with (and
                                                       # the diffs of an explicit Split's tops, one tensor here)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.forward + self.backward)

    @property
    def first_failure(self) -> Comparison | None:
        return next((c for c in self.forward + self.backward if not c.ok), None)

    def render(self) -> str:
        lines = []
        for what, items in (("forward", self.forward), ("backward", self.backward)):
            if not items:
                continue
            good = sum(c.ok for c in items)
            worst = max((c.error / c.allowed if c.allowed else (0.0 if c.error == 0 else math.inf))
                        for c in items if not c.note) if any(not c.note for c in items) else 0.0
            lines.append(f"{what}: {good} of {len(items)} arrays match Caffe within {items[0].tolerance.text()} "
                         f"(worst error {worst:.2g} of its tolerance)")
        failure = self.first_failure
        if failure is not None:
            where = f' (written by layer "{failure.writer}")' if failure.writer else ""
            lines.append(f'error: first divergence: "{failure.key}"{where}')
            if failure.note:
                lines.append(f"  {failure.note}")
            else:
                size = math.prod(failure.shape)
                lines.append(f"  {failure.bad} of {size} values differ by more than the tolerance")
                lines.append(f"  worst at {failure.worst_index}: netc {failure.netc_value:.9g}, Caffe "
                             f"{failure.caffe_value:.9g} (|difference| {failure.error:.3g}, allowed "
                             f"{failure.allowed:.3g})")
            others = [c.key for c in self.forward + self.backward if not c.ok and c is not failure]
            if others:
                lines.append(f"  {len(others)} more arrays differ: {', '.join(others[:8])}"
                             + (" ..." if len(others) > 8 else ""))
        if self.skipped:
            lines.append(f"note: not compared ({len(self.skipped)}): {', '.join(self.skipped[:8])}"
                         + (" ..." if len(self.skipped) > 8 else ""))
        return "\n".join(lines)


def compare(key: str, writer: str, actual: np.ndarray, expected: np.ndarray, tol: Tolerance) -> Comparison:
    """One array against Caffe's (compared by value: Caffe stores a 0-axis scalar as (1,))."""
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if actual.size != expected.size:
        return Comparison(key, writer, expected.shape, expected.size, None, math.nan, math.nan, math.inf, 0.0, tol,
                          f"netc has shape {tuple(actual.shape)}, Caffe {tuple(expected.shape)}")
    actual = actual.reshape(expected.shape)
    atol = tol.atol(expected)
    allowed = atol + tol.rtol * np.abs(expected)
    diff = np.abs(actual - expected)
    both_nan = np.isnan(actual) & np.isnan(expected)
    diff = np.where(both_nan, 0.0, diff)
    over = ~(diff <= allowed)  # NaN on one side only counts as a difference
    margin = np.where(np.isnan(diff), np.inf, diff - allowed)
    if expected.size == 0:
        return Comparison(key, writer, expected.shape, 0, None, 0.0, 0.0, 0.0, atol, tol)
    flat = int(np.argmax(margin))
    index = tuple(int(i) for i in np.unravel_index(flat, expected.shape))
    return Comparison(key, writer, expected.shape, int(over.sum()), index, float(actual[index]),
                      float(expected[index]), float(diff.reshape(-1)[flat]) if not np.isnan(diff.reshape(-1)[flat])
                      else math.inf, float(allowed[index]), tol)


def _load_npz(path_or_dict) -> dict:
    if path_or_dict is None:
        return {}
    if isinstance(path_or_dict, dict):
        return path_or_dict
    try:
        with np.load(path_or_dict, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise UsageError(f"{os.fspath(path_or_dict)}: cannot read it as a .npz of arrays ({e})") from None


def _writer(net: Net, blob: str) -> str:
    b = net.blobs.get(blob)
    return net.layers[b.producers[-1]].name if b and b.producers else ""


def check_parity(net, weights, inputs, expected, *, phase: str = "TEST", stages=(), backward=None,
                 topdiff=None, forward_tolerance=FORWARD_TOLERANCE, backward_tolerance=BACKWARD_TOLERANCE,
                 device: str = "cpu") -> ParityResult:
    """Run the net (a path or a Net) with Caffe's weights (a .caffemodel path) on `inputs` and compare with
    `expected` (and `backward` given `topdiff`).  The npz arguments are paths or {name: array} dicts."""
    import torch

    from .emit import build_module
    from .runtime import forward_all
    from .weights import load_caffemodel
    inputs, expected = _load_npz(inputs), _load_npz(expected)
    backward, topdiff = _load_npz(backward), _load_npz(topdiff)
    if not isinstance(net, Net):
        net = load_net(net, phase, stages)
    fed = fed_blobs(net)
    analysis = analyze(net, {k: tuple(v.shape) for k, v in inputs.items() if k in fed})
    module = build_module(analysis).to(device)
    load_caffemodel(module, weights)
    cls = type(module)
    grads = {k[:-len(".diff")] for k in backward}
    feeds = {}
    for name in fed:
        if name not in inputs:
            raise UsageError(f'the inputs have no array for "{name}"', hint=f"the net reads {', '.join(fed)}")
        feeds[name] = torch.tensor(inputs[name], dtype=torch.float32, device=device,
                                   requires_grad=bool(backward) and name in grads)
    blob_grads: dict = {}
    blobs = forward_all(module, feeds, blob_grads if backward else None)
    state = module.state_dict(keep_vars=True)
    blob_keys = {f"{layer}.{i}": key for layer, (_, specs) in cls.CAFFE_LAYERS.items()
                 for i, (key, _) in enumerate(specs)}
    result = ParityResult()
    tol = Tolerance.of(forward_tolerance)
    order = {blob: i for i, blob in enumerate(cls.CAFFE_BLOBS)}  # net order
    for key in sorted(expected, key=lambda k: (order.get(k, len(order)), k)):
        if key in blobs:
            actual = blobs[key].detach().to("cpu", torch.float64).numpy()
            result.forward.append(compare(key, _writer(net, key), actual, expected[key], tol))
        elif key in blob_keys:
            actual = state[blob_keys[key]].detach().to("cpu", torch.float64).numpy()
            result.forward.append(compare(key, key.rsplit(".", 1)[0], actual, expected[key], tol))
        else:
            result.skipped.append(key)
    if not backward:
        return result
    seeds = [(blobs[k], torch.tensor(v, dtype=torch.float32, device=device).reshape(blobs[k].shape))
             for k, v in topdiff.items() if k in blobs and blobs[k].requires_grad]
    if seeds:
        torch.autograd.backward([t for t, _ in seeds], [g for _, g in seeds])
    tol = Tolerance.of(backward_tolerance)
    first_of: dict = {}   # tensor -> the first blob (in net order) that holds it
    for name in order:
        if name in blobs:
            first_of.setdefault(id(blobs[name]), name)
    aliases = {name for name in order if name in blobs and first_of[id(blobs[name])] != name}

    def backward_order(key: str) -> tuple:
        # Caffe's backward runs from the last layer to the first: the first divergence is the latest blob.
        name = key[:-len(".diff")]
        if name in order:
            return (0, -order[name])
        return (1, key)

    for key in sorted(backward, key=backward_order):
        name = key[:-len(".diff")]
        if name in feeds:
            tensor = feeds[name]
            grad = tensor.grad if tensor.grad is not None else torch.zeros_like(tensor)
        elif name in blob_keys:
            tensor = state[blob_keys[name]]
            grad = tensor.grad if tensor.grad is not None else torch.zeros_like(tensor)
        elif name in aliases:
            # An explicit Split's tops are one tensor in the module, so autograd has one gradient for them
            # all, where Caffe keeps a diff per top.
            result.skipped.append(key)
            continue
        elif name in blob_grads:
            grad = blob_grads[name]
        elif name in blobs:  # a blob no output depends on (Caffe's diff stays zero)
            grad = torch.zeros_like(blobs[name])
        else:
            result.skipped.append(key)
            continue
        writer = "" if name in feeds or name in blob_keys else net.layers[net.blobs[name].producers[0]].name
        result.backward.append(compare(key, writer, grad.detach().to("cpu", torch.float64).numpy(),
                                       backward[key], tol))
    return result
