"""NetStateRule filtering and the Net IR: layers, blobs, bottoms and tops, checked as Caffe's Net::Init does.

    load_net(path, phase, stages, level)   parse -> bind -> upgrade -> filter -> graph

Filtering happens once, here, before the graph is built (Caffe's FilterNet): train_val files define their
data layers twice, once per phase.  The graph then follows Caffe's wiring rules: a bottom must name a blob
produced earlier; top j is in place iff it equals bottom j; any other reuse of a blob name is a second
producer; an in-place layer must come before any other reader of the blob it rewrites (Caffe's split
insertion would otherwise break it); blob counts per layer type; loss weights; net outputs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from . import caffe_pb2
from .bind import Located
from .errors import Diagnostic, Diagnostics, GraphError, Source, Span, UsageError, did_you_mean
from .frontend import NetSource, load_net_param
from .layers import LayerRule, Opaque, known_types, nearest_types, rule_for
from .perf import gc_paused

TRAIN, TEST = caffe_pb2.TRAIN, caffe_pb2.TEST
PHASES = {"TRAIN": TRAIN, "TEST": TEST}
PHASE_NAMES = {TRAIN: "TRAIN", TEST: "TEST"}
AUTOMATIC = "(automatic)"  # the name Caffe gives a loss top that the prototxt leaves out


@dataclass
class Layer:
    index: int                 # position in the filtered net
    name: str
    type: str
    bottoms: list[str]
    tops: list[str]
    param: caffe_pb2.LayerParameter
    loc: Located
    rule: LayerRule | None
    phase: int                 # the layer's own phase (its `phase` field, else the net's)
    loss_weights: list[float]  # one per top, Caffe's defaults applied
    in_place: list[bool]       # per top: top j == bottom j
    origin: int                # index in the upgraded, unfiltered net

    @property
    def label(self) -> str:
        return _label(self.param, self.index)

    def span(self) -> Span | None:
        return self.loc.value_span("name") if self.loc.has_field_text("name") else self.loc.span()


@dataclass
class Blob:
    name: str
    producers: list[int] = field(default_factory=list)  # the producer, then each in-place writer
    consumers: list[int] = field(default_factory=list)  # every layer that reads it

    @property
    def producer(self) -> int:
        return self.producers[0]


@dataclass
class Net:
    name: str
    phase: int
    stages: tuple[str, ...]
    level: int
    layers: list[Layer]
    blobs: dict[str, Blob]
    inputs: list[str]            # tops of Input layers (the blobs fed from outside)
    outputs: list[str]           # blobs produced and never read (Caffe's net outputs)
    losses: dict[str, float]     # blob -> loss weight, for tops with a non-zero weight ("(automatic) of
                                 # <layer>" for a top Caffe created)
    param: caffe_pb2.NetParameter  # the filtered, upgraded net
    source: Source
    diagnostics: list[Diagnostic]  # warnings from every stage

    @property
    def phase_name(self) -> str:
        return PHASE_NAMES[self.phase]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def summary(self) -> str:
        state = self.phase_name + "".join(f" +{s}" for s in self.stages) + (f" level {self.level}" if self.level else "")
        outs = ", ".join(self.outputs) if self.outputs else "none"
        return (f"{self.source.name} ({state}): ok, {_plural(len(self.layers), 'layer')}, "
                f"{_plural(len(self.blobs), 'blob')}, inputs: {', '.join(self.inputs) or 'none'}; outputs: {outs}")


# --------------------------------------------------------------------------------------------------------
# NetStateRule filtering  [net.cpp FilterNet, StateMeetsRule]

def state_meets_rule(rule: caffe_pb2.NetStateRule, phase: int, level: int, stages: Iterable[str]) -> bool:
    """A rule is met iff every constraint it gives holds."""
    stages = set(stages)
    if rule.HasField("phase") and rule.phase != phase:
        return False
    if rule.HasField("min_level") and level < rule.min_level:
        return False
    if rule.HasField("max_level") and level > rule.max_level:
        return False
    if any(s not in stages for s in rule.stage):
        return False
    if any(s in stages for s in rule.not_stage):
        return False
    return True


def layer_included(layer: caffe_pb2.LayerParameter, phase: int, level: int, stages: Iterable[str]) -> bool:
    """No include rules: included unless an exclude rule is met; else included iff an include rule is met."""
    stages = tuple(stages)
    if layer.include:
        return any(state_meets_rule(r, phase, level, stages) for r in layer.include)
    return not any(state_meets_rule(r, phase, level, stages) for r in layer.exclude)


def net_states(param: caffe_pb2.NetParameter) -> list[tuple[int, tuple[str, ...]]]:
    """The (phase, stages) instances a file's rules distinguish: TRAIN and TEST if any rule names a phase
    (else only TEST, Caffe's default); per phase, one instance per stage that its include rules require,
    and the plain instance without stages too unless every stage-naming rule of that phase is an include
    rule (then, as in train_val files with test stages, the net only exists with one of those stages)."""
    layers = list(param.layer)
    phases = [TRAIN, TEST] if any(r.HasField("phase") for l in layers for r in (*l.include, *l.exclude)) \
        else [TEST]
    out = []
    for p in phases:
        def applies(r) -> bool:
            return not r.HasField("phase") or r.phase == p
        required = list(dict.fromkeys(s for l in layers for r in l.include if applies(r) for s in r.stage))
        other = any(applies(r) and (r.stage or r.not_stage) for l in layers for r in l.exclude) or \
            any(applies(r) and r.not_stage for l in layers for r in l.include)
        if not required or other:
            out.append((p, ()))
        out.extend((p, (s,)) for s in required)
    return out


# --------------------------------------------------------------------------------------------------------
# The graph

def load_net(path, phase: str | int = "TEST", stages: Sequence[str] = (), level: int | None = None, *,
             strict: bool = False, shaped: Iterable[str] = ()) -> Net:
    """Parse, upgrade, filter and check a net. Raises a NetcError subclass listing every error found.

    `shaped`: blobs whose shapes the user gives (--input); a layer of an unknown type (a Caffe fork's) whose
    tops are all among them is kept as an opaque layer instead of being an error."""
    with gc_paused():
        diags = Diagnostics()
        ns = load_net_param(path, strict=strict, diags=diags)
        return build_net(ns, phase, stages, level, diags, shaped=shaped)


def parse_phase(phase: str | int) -> int:
    if isinstance(phase, int) and phase in PHASE_NAMES:
        return phase
    if isinstance(phase, str) and phase.upper() in PHASES:
        return PHASES[phase.upper()]
    raise UsageError(f'phase must be "TRAIN" or "TEST", not {phase!r}')


def build_net(ns: NetSource, phase: str | int = "TEST", stages: Sequence[str] = (), level: int | None = None,
              diags: Diagnostics | None = None, shaped: Iterable[str] = ()) -> Net:
    diags = diags if diags is not None else Diagnostics()
    ph = parse_phase(phase)
    param = ns.param
    stages = tuple(dict.fromkeys((*param.state.stage, *stages)))
    lvl = level if level is not None else param.state.level
    kept: list[int] = []
    for i, lp in enumerate(param.layer):
        if lp.include and lp.exclude:
            diags.error(f'{_label(lp, i)}: has both include and exclude rules',
                        ns.layers[i].field_span("exclude"), "Caffe accepts either include rules or exclude rules")
            continue
        if layer_included(lp, ph, lvl, stages):
            kept.append(i)
    builder = _GraphBuilder(ns, ph, stages, lvl, diags, frozenset(shaped))
    net = builder.build(kept)
    if diags.errors:
        raise GraphError(diags.items)
    return net


def _label(lp: caffe_pb2.LayerParameter, index: int) -> str:
    kind = f" ({lp.type})" if lp.type else ""
    return f'layer "{lp.name}"{kind}' if lp.name else f"layer #{index}{kind}"


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


class _GraphBuilder:
    def __init__(self, ns: NetSource, phase: int, stages: tuple[str, ...], level: int, diags: Diagnostics,
                 shaped: frozenset = frozenset()):
        self.ns = ns
        self.shaped = shaped
        self.phase = phase
        self.stages = stages
        self.level = level
        self.diags = diags
        self.blobs: dict[str, Blob] = {}
        self.layers: list[Layer] = []
        # For each blob, the readers of its current value (since its last write): Caffe splits a blob read
        # more than once, which breaks a later in-place writer.
        self.readers: dict[str, list[int]] = {}

    def build(self, kept: list[int]) -> Net:
        ns = self.ns
        filtered = caffe_pb2.NetParameter()
        filtered.CopyFrom(ns.param)
        del filtered.layer[:]
        names: dict[str, int] = {}
        for i in kept:
            lp = ns.param.layer[i]
            filtered.layer.add().CopyFrom(lp)
            layer = self.add_layer(lp, ns.layers[i], i)
            if layer is None:
                continue
            if layer.name:
                if layer.name in names:
                    first = self.layers[names[layer.name]]
                    self.diags.warning(
                        f'{layer.label}: a second layer is named "{layer.name}"', layer.span(),
                        f"the first is on line {first.span().line if first.span() else '?'}; weights load by layer name")
                else:
                    names[layer.name] = layer.index
        outputs = [b.name for b in self.blobs.values() if not self.readers.get(b.name)]
        losses = {}
        for layer in self.layers:
            for top, w in zip(layer.tops, layer.loss_weights):
                if w:
                    # Anonymous tops of different layers must not overwrite each other.
                    losses[f"{AUTOMATIC} of {layer.name}" if top == AUTOMATIC else top] = w
        inputs = [t for layer in self.layers if layer.type == "Input" for t in layer.tops]
        return Net(ns.param.name, self.phase, self.stages, self.level, self.layers, self.blobs, inputs, outputs,
                   losses, filtered, ns.source, [d for d in self.diags.items if d.severity != "error"])

    def add_layer(self, lp: caffe_pb2.LayerParameter, loc: Located, origin: int) -> Layer | None:
        index = len(self.layers)
        label = _label(lp, index)
        err = self.diags.error
        if not lp.type:
            err(f"{label}: has no type", loc.field_span("name") if loc.has_field_text("name") else loc.span(),
                'every layer needs a type, e.g. type: "Convolution"')
            return None
        rule = rule_for(lp.type)
        if rule is None and lp.top and all(t in self.shaped for t in lp.top):
            self.diags.warning(f'{label}: unknown layer type "{lp.type}", kept as an opaque layer: the shapes of '
                               "its tops come from --input", loc.value_span("type"))
            rule = Opaque()
        elif rule is None:
            near = nearest_types(lp.type)
            fork = ("a type from a Caffe fork needs a shape rule (@netc.layers.register) or its tops' shapes: "
                    f"--input {lp.top[0] if lp.top else 'BLOB'}=NxCxHxW")
            if near and near[0].lower() == lp.type.lower():
                hint = f'did you mean "{near[0]}"? (layer types are case-sensitive)'
            elif near:
                hint = f"did you mean {' or '.join(repr(n).replace(chr(39), chr(34)) for n in near)}? Otherwise, {fork}"
            else:
                hint = f"netc knows the {len(known_types())} layer types of BVLC Caffe and registered plugins; {fork}"
            err(f'{label}: unknown layer type "{lp.type}"', loc.value_span("type"), hint)
            rule = None
        bottoms = list(lp.bottom)
        tops = list(lp.top)
        if rule is not None:
            tops = self.check_counts(lp, loc, rule, label, bottoms, tops)
        layer = Layer(index, lp.name, lp.type, bottoms, tops, lp, loc, rule,
                      lp.phase if lp.HasField("phase") else self.phase, [], [], origin)
        self.layers.append(layer)
        self.wire(layer)
        layer.loss_weights = self.loss_weights(layer)
        if len(lp.propagate_down) not in (0, len(bottoms)):
            err(f"{label}: propagate_down is given {_times(len(lp.propagate_down))} for {_plural(len(bottoms), 'bottom')}",
                loc.field_span("propagate_down"), "give it once per bottom, or not at all")
        return layer

    def check_counts(self, lp, loc: Located, rule: LayerRule, label: str, bottoms: list[str], tops: list[str]):
        (bmin, bmax), (tmin, tmax) = rule.blob_counts(lp)
        err = self.diags.error
        nb, nt = len(bottoms), len(tops)
        if nb < bmin or (bmax is not None and nb > bmax):
            span = loc.value_span("bottom", bmax) if bmax is not None and nb > bmax else loc.field_span("type")
            err(f"{label}: takes {_count(bmin, bmax, 'bottom')}, got {nb}", span)
        if rule.auto_top and nt < tmin:
            tops = tops + [AUTOMATIC] * (tmin - nt)  # Caffe creates an anonymous top for a loss
            nt = len(tops)
        if nt < tmin or (tmax is not None and nt > tmax):
            span = loc.value_span("top", tmax) if tmax is not None and nt > tmax else loc.field_span("type")
            hint = None
            if lp.type == "Pooling" and nt == 2:
                hint = "only MAX pooling has a second top (the argmax mask)"
            err(f"{label}: takes {_count(tmin, tmax, 'top')}, got {nt}", span, hint)
        if rule.equal_bottoms_tops and nb != nt:
            err(f"{label}: needs one top per bottom ({nb} bottoms, {nt} tops)", loc.field_span("top"))
        if lp.type == "Filter" and nt != nb - 1:
            err(f"{label}: needs one top per bottom except the selector ({nb} bottoms, {nt} tops)",
                loc.field_span("top"))
        return tops

    def wire(self, layer: Layer) -> None:
        loc, err = layer.loc, self.diags.error
        for i, b in enumerate(layer.bottoms):
            blob = self.blobs.get(b)
            if blob is None:
                err(f'{layer.label}: unknown bottom "{b}"', loc.value_span("bottom", i), self.unknown_bottom_hint(layer, b))
                continue
            blob.consumers.append(layer.index)
            self.readers.setdefault(b, []).append(layer.index)
        seen_tops: set[str] = set()
        for j, t in enumerate(layer.tops):
            in_place = j < len(layer.bottoms) and layer.bottoms[j] == t
            layer.in_place.append(in_place)
            if t == AUTOMATIC:
                continue
            span = loc.value_span("top", j)
            if t in seen_tops:
                err(f'{layer.label}: top "{t}" is listed twice', span)
                continue
            seen_tops.add(t)
            if in_place:
                self.check_in_place(layer, t, span)
                blob = self.blobs.get(t)
                if blob is not None:
                    blob.producers.append(layer.index)
                    self.readers[t] = []
                continue
            blob = self.blobs.get(t)
            if blob is not None:
                prod = self.layers[blob.producers[-1]]
                where = prod.span()
                line = f" (line {where.line})" if where else ""
                hint = f'a blob has one producer; name this top differently, e.g. "{layer.name or t}"'
                if t in layer.bottoms:
                    k = layer.bottoms.index(t)
                    hint = f"a layer works in place only when top {j} equals bottom {j}; here it is bottom {k}"
                err(f'{layer.label}: top "{t}" is already produced by {prod.label}{line}', span, hint)
                continue
            self.blobs[t] = Blob(t, [layer.index])
            self.readers[t] = []

    def check_in_place(self, layer: Layer, blob: str, span: Span | None) -> None:
        rule = layer.rule
        readers = [r for r in self.readers.get(blob, []) if r != layer.index]
        if readers:
            other = self.layers[readers[0]]
            self.diags.error(
                f'{layer.label}: works in place on "{blob}", which {other.label} already reads',
                span, f'Caffe splits "{blob}" for its readers and then refuses this layer ("Top blob \'{blob}\' '
                f'produced by multiple sources"); move it before {other.label} or give it its own top')
            return
        if rule is None or rule.in_place == "ok":
            return
        if rule.in_place == "refused":
            self.diags.error(f"{layer.label}: cannot work in place (top \"{blob}\" is its bottom)", span,
                             rule.in_place_note + "; give the top its own name")
        else:
            self.diags.warning(f"{layer.label}: works in place on \"{blob}\", which Caffe does not support for "
                               f"{layer.type}", span, rule.in_place_note)

    def unknown_bottom_hint(self, layer: Layer, name: str) -> str | None:
        excluded = []
        for i, lp in enumerate(self.ns.param.layer):
            if name not in lp.top:
                continue
            if not layer_included(lp, self.phase, self.level, self.stages):
                excluded.append((i, lp))
            elif i > layer.origin:
                return f'"{name}" is produced later, by {_label(lp, i)}: layers run in file order'
        if excluded:
            # Prefer a producer meant for this phase that only lacks a stage (train_val files with stages).
            staged = [(i, lp, [s for r in lp.include if not r.HasField("phase") or r.phase == self.phase
                               for s in r.stage]) for i, lp in excluded]
            i, lp, _ = max(staged, key=lambda t: bool(t[2]))
            wanted = [s for _, _, w in staged for s in w]
            state = PHASE_NAMES[self.phase] + "".join(f", stage {s}" for s in self.stages)
            hint = f'"{name}" is produced by {_label(lp, i)}, which the include/exclude rules leave out in {state}'
            if wanted:
                hint += "; it needs " + " or ".join(f"--stage {s}" for s in dict.fromkeys(wanted))
            return hint
        near = did_you_mean(name, self.blobs)
        if near:
            return f'did you mean "{near[0]}"?'
        if self.blobs:
            return "blobs defined so far: " + ", ".join(f'"{b}"' for b in list(self.blobs)[-5:])
        return "no blob is defined before this layer: the net needs an Input or data layer first"

    def loss_weights(self, layer: Layer) -> list[float]:
        lp, rule = layer.param, layer.rule
        n = len(layer.tops)
        given = list(lp.loss_weight)
        err = self.diags.error
        if layer.type == "SoftmaxWithLoss" and n == 2:
            # Its internal Softmax copies the layer's loss weights (InfogainLoss resets them to one, so it
            # builds with two explicit weights).  [softmax_loss_layer.cpp, infogain_loss_layer.cpp LayerSetUp]
            err(f"{layer.label}: Caffe cannot build this loss with a second top", layer.loc.value_span("top", 1),
                "its internal Softmax copies the layer's loss weights but has one top (Check failed: "
                "top.size() == num_loss_weights); add a separate Softmax layer for the probabilities")
            return [1.0] + [0.0] * (n - 1)
        if not given:
            if rule is not None and rule.loss:
                if n != 1:
                    err(f"{layer.label}: a loss with {n} tops needs one loss_weight per top", layer.loc.field_span("top"))
                return [1.0] + [0.0] * (n - 1)
            return [0.0] * n
        if len(given) != n:
            err(f"{layer.label}: loss_weight is given {_times(len(given))} for {_plural(n, 'top')}",
                layer.loc.value_span("loss_weight", 0), "give loss_weight once per top, or not at all")
            return (given + [0.0] * n)[:n]
        return given


def _count(lo: int, hi: int | None, what: str) -> str:
    def plural(k: int) -> str:
        return f"{k} {what}" + ("" if k == 1 else "s")
    if hi == lo:
        return f"exactly {plural(lo)}"
    if hi is None:
        return f"at least {plural(lo)}"
    if lo == 0:
        return f"at most {plural(hi)}"
    return f"{lo} to {hi} {what}s"
