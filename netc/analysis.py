"""Shapes, parameters, costs, receptive fields and memory over the Net IR: the analysis stage.

Layers are visited in net order; each layer's rule (netc/layers/) turns bottom shapes into top shapes,
Caffe's blob shapes and costs.  Shared parameters (`param { name }`) are owned by their first user and
counted once; a later user must have the same shape (STRICT) or count (PERMISSIVE), as Caffe checks.

Conventions (also in the README):
- params: learnable values (weights, biases, Scale's gamma/beta, PReLU slopes ...), shared ones once;
  state: non-learnable blobs (BatchNorm's mean, variance and scale factor: 2C+1).
- macs: multiply-accumulates of the forward pass of Convolution, Deconvolution and InnerProduct (and the
  matrix products inside LSTM/RNN), as the published tables count them; FLOPs = 2 x MACs.  other_ops: the
  remaining arithmetic (pooling windows, LRN, element-wise ops, softmax, Scale, bias adds), as each rule's
  docstring states.
- activations: elements of every top (an in-place top counts again: it is a new value of the blob).
- receptive field of a top relative to the net input: size, jump (effective stride) and start (centre of the
  first output's field, in input pixels, negative when padding reaches outside), per spatial axis (H, W).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from .errors import Diagnostics, ShapeError
from .graph import AUTOMATIC, Layer, Net
from .layers import Inferred, RuleContext, ShapeFailure, fmt_shape
from .perf import gc_paused

DTYPE_BYTES = {"float32": 4, "float": 4, "bfloat16": 2, "float16": 2, "half": 2, "float64": 8, "double": 8}
# History blobs per learnable parameter, by solver type (Caffe's SGDSolver and subclasses).
OPTIMIZER_SLOTS = {"SGD": 1, "Nesterov": 1, "AdaGrad": 1, "RMSProp": 1, "AdaDelta": 2, "Adam": 2}


@dataclass
class RF:
    """Receptive field along each spatial axis (H, W): size and jump in input pixels, start = centre of the
    first output's field."""

    size: tuple
    jump: tuple
    start: tuple

    def to_json(self) -> dict:
        return {"size": list(self.size), "jump": list(self.jump), "start": list(self.start)}


@dataclass
class LayerInfo:
    layer: Layer
    bottom_shapes: list
    top_shapes: list
    blob_shapes: list
    params: int            # learnable values this layer owns (shared ones on their first owner only)
    state: int             # non-learnable blob values (BatchNorm statistics)
    macs: int
    other_ops: int
    activations: int       # elements of all tops
    rf: dict = field(default_factory=dict)  # top -> RF (spatial tops only)
    shared: list = field(default_factory=list)  # per blob: "<owner layer>.<i>" when shared, else None


@dataclass
class Analysis:
    net: Net
    batch: int | None
    layers: list[LayerInfo]
    blob_shapes: dict  # blob -> shape after the whole forward (in-place layers keep the shape)
    diagnostics: list

    @property
    def params(self) -> int:
        return sum(l.params for l in self.layers)

    @property
    def state(self) -> int:
        return sum(l.state for l in self.layers)

    @property
    def macs(self) -> int:
        return sum(l.macs for l in self.layers)

    @property
    def other_ops(self) -> int:
        return sum(l.other_ops for l in self.layers)

    @property
    def activations(self) -> int:
        return sum(l.activations for l in self.layers)

    def info(self, name: str) -> LayerInfo:
        for l in self.layers:
            if l.layer.name == name:
                return l
        raise KeyError(name)

    def memory(self, dtype: str = "float32", solver_type: str = "SGD") -> dict:
        """Bytes for parameters, an inference forward and a training step (see the module docstring)."""
        size = DTYPE_BYTES[dtype]
        params = (self.params + self.state) * size
        inference = params + self._inference_peak() * size
        slots = OPTIMIZER_SLOTS.get(solver_type, 1)
        kept = self._distinct_blob_elements()
        # Training keeps every blob of the forward for the backward pass and a gradient of the same size
        # (Caffe's Blob has data and diff), plus a gradient and the solver's history per learnable value.
        training = params + 2 * kept * size + self.params * size * (1 + slots)
        return {"params": params, "inference": inference, "training": training}

    def _distinct_blob_elements(self) -> int:
        return sum(math.prod(s) for b, s in self.blob_shapes.items())

    def _inference_peak(self) -> int:
        """Peak live activation elements of a forward pass that frees each blob after its last reader."""
        last_use: dict[str, int] = {}
        for info in self.layers:
            for b in info.layer.bottoms:
                last_use[b] = info.layer.index
        outputs = set(self.net.outputs)
        live: dict[str, int] = {}
        peak = 0
        for info in self.layers:
            layer = info.layer
            for top, shape, in_place in zip(layer.tops, info.top_shapes, layer.in_place):
                if not in_place and top != AUTOMATIC:
                    live[top] = math.prod(shape)
                elif top == AUTOMATIC:
                    live[f"{AUTOMATIC}#{layer.index}"] = math.prod(shape)
            peak = max(peak, sum(live.values()))
            for b in set(layer.bottoms):
                if last_use.get(b) == layer.index and b not in outputs and b not in layer.tops:
                    live.pop(b, None)
        return peak


def analyze(net: Net, inputs: dict | None = None, batch: int | None = None, base_dir=None, *,
            lenient: bool = False) -> Analysis:
    """Infer every blob's shape and every layer's costs. Raises ShapeError listing every problem found.

    `lenient` (netc check): shapes that need what is not here (a data set, a Python layer's code) are a
    note, and the layers that depend on them are skipped instead of failing the analysis."""
    with gc_paused():
        return _analyze(net, inputs, batch, base_dir, lenient)


def _analyze(net: Net, inputs: dict | None, batch: int | None, base_dir, lenient: bool) -> Analysis:
    diags = Diagnostics()
    given = {k: tuple(v) for k, v in (inputs or {}).items()}
    shapes: dict[str, tuple] = {}
    infos: list[LayerInfo] = []
    rfs: dict[str, RF] = {}
    owners: dict[str, tuple[str, int, tuple, int]] = {}  # param name -> (layer, index, shape, share_mode)
    if base_dir is None and net.source.name and Path(net.source.name).exists():
        base_dir = Path(net.source.name).resolve().parent
    for layer in net.layers:
        if any(b not in shapes for b in layer.bottoms):
            continue  # an earlier layer failed: its error is reported already
        bottoms = [shapes[b] for b in layer.bottoms]
        ctx = RuleContext(layer, diags, given, batch, base_dir, lenient)
        rule = layer.rule
        try:
            if rule is None:
                raise ctx.fail("unknown layer type")  # graph reported it already
            inf = rule.infer(ctx, bottoms)
        except ShapeFailure:
            continue
        if len(inf.tops) != len(layer.tops):
            diags.error(f"{layer.label}: its shape rule ({type(rule).__module__}.{type(rule).__name__}) gave "
                        f"{len(inf.tops)} top shapes for {len(layer.tops)} tops", layer.span(),
                        "a shape rule returns one shape per top (a plugin rule registered with "
                        "@netc.layers.register included)")
            continue
        tops = [tuple(t) for t in inf.tops]
        for top, shape in zip(layer.tops, tops):
            if top != AUTOMATIC:
                shapes[top] = shape
        params, state, shared = _count_blobs(layer, inf, owners, diags)
        info = LayerInfo(layer, bottoms, tops, [tuple(b) for b in inf.blobs], params, state, inf.macs,
                         inf.other_ops, sum(math.prod(t) for t in tops), {}, shared)
        _receptive_fields(layer, inf, bottoms, tops, rfs, info)
        infos.append(info)
    if diags.errors:
        raise ShapeError(list(net.diagnostics) + diags.items)
    return Analysis(net, batch, infos, shapes, list(net.diagnostics) + diags.items)


def _count_blobs(layer: Layer, inf: Inferred, owners: dict, diags: Diagnostics):
    """Learnable and state counts of a layer's blobs, with Caffe's weight sharing by ParamSpec name."""
    from .caffe_pb2 import ParamSpec
    params = state = 0
    shared: list = []
    specs = layer.param.param
    if len(specs) > len(inf.blobs) and layer.type != "Python":
        diags.error(f"{layer.label}: {len(specs)} param {{ }} blocks for {len(inf.blobs)} blobs",
                    layer.loc.value_span("param", len(inf.blobs)),
                    f"{layer.type} has {len(inf.blobs)} blob{'s' if len(inf.blobs) != 1 else ''}"
                    + (f" ({', '.join('x'.join(map(str, b)) for b in inf.blobs)})" if inf.blobs else ""))
    for i, blob in enumerate(inf.blobs):
        n = math.prod(blob)
        name = specs[i].name if i < len(specs) else ""
        if name:
            if name in owners:
                owner_layer, owner_i, owner_shape, _ = owners[name]
                mode = specs[i].share_mode
                same = tuple(blob) == tuple(owner_shape) if mode == ParamSpec.STRICT else \
                    math.prod(blob) == math.prod(owner_shape)
                if not same:
                    what = "shape" if mode == ParamSpec.STRICT else "count"
                    diags.error(
                        f'{layer.label}: shared param "{name}" has {what} {fmt_shape(blob)} here but '
                        f'{fmt_shape(owner_shape)} in its owner layer "{owner_layer}"', layer.loc.value_span("param", i),
                        "layers sharing a param by name need the same blob shape (share_mode: PERMISSIVE "
                        "only needs the same count)")
                shared.append(f"{owner_layer}.{owner_i}")
                continue
            owners[name] = (layer.name, i, tuple(blob), specs[i].share_mode)
        shared.append(None)
        if inf.learnable:
            params += n
        else:
            state += n
    return params, state, shared


def _receptive_fields(layer: Layer, inf: Inferred, bottoms, tops, rfs: dict, info: LayerInfo) -> None:
    """Propagate receptive fields (see RF); net inputs start with size 1, jump 1, start 0."""
    def base(blob: str, shape) -> RF | None:
        if blob in rfs:
            return rfs[blob]
        return None

    if layer.type in ("Input", "Data", "ImageData", "WindowData", "MemoryData", "DummyData", "HDF5Data"):
        for top, shape in zip(layer.tops, tops):
            if len(shape) == 4:
                rfs[top] = RF((1, 1), (1, 1), (0.0, 0.0))
                info.rf[top] = rfs[top]
        return
    ins = [base(b, s) for b, s in zip(layer.bottoms, bottoms)]
    out: RF | None = None
    if inf.rf == "window" and ins and ins[0] is not None and inf.windows:
        r = ins[0]
        size, jump, start = [], [], []
        for d, w in enumerate(inf.windows[:2]):
            k = w.dilation * (w.kernel - 1) + 1
            size.append(r.size[d] + (k - 1) * r.jump[d])
            jump.append(r.jump[d] * w.stride)
            start.append(r.start[d] + ((k - 1) / 2 - w.pad) * r.jump[d])
        out = RF(tuple(size), tuple(jump), tuple(start))
    elif inf.rf == "same" and ins and ins[0] is not None:
        out = ins[0]
    elif inf.rf == "merge":
        known = [r for r in ins if r is not None]
        if known and len(known) == len(ins) and len({r.jump for r in known}) == 1:
            # The union of the bottoms' fields: from the lowest first pixel to the highest last one.
            dims = range(len(known[0].size))
            lo = [min(r.start[d] - (r.size[d] - 1) / 2 for r in known) for d in dims]
            hi = [max(r.start[d] + (r.size[d] - 1) / 2 for r in known) for d in dims]
            out = RF(tuple(int(hi[d] - lo[d]) + 1 for d in dims), known[0].jump,
                     tuple((lo[d] + hi[d]) / 2 for d in dims))
    if out is None:
        return
    for top, shape in zip(layer.tops, tops):
        if top != AUTOMATIC and len(shape) == 4:
            rfs[top] = out
            info.rf[top] = out
