"""PyTorch source from the analysed Net IR: one readable, standalone nn.Module per net and phase.

    emit_torch(analysis, class_name=None) -> str     the file `netc compile` writes
    build_module(net_or_path, phase=...)      -> nn.Module, the same source exec'd (one code path)

Translation from Caffe's vocabulary to PyTorch's happens here and only here: one small function per layer
type writes the module that holds the layer's blobs (`__init__`), its fillers (`reset_parameters`) and one
statement in `forward`.  The emitted code uses torch's own modules and functions wherever they compute what
Caffe computes (nn.Conv2d with groups=, F.relu in place, nn.MaxPool2d(ceil_mode=True) where its windows are
Caffe's) and `netc.runtime` where Caffe's arithmetic differs (pooling windows past the input, LRN's
backward, the losses' normalizers, BatchNorm's moving average).

Names: every Caffe name goes through one namespace per kind (module attributes for layers, local variables
for blobs): valid, unique, not a keyword, not a builtin, not an nn.Module member; the Caffe name stays in a
comment and in the two tables of the class (`CAFFE_LAYERS`, `CAFFE_BLOBS`), which hold it as a `repr()`
string literal.  Nothing from the prototxt is pasted into code.
"""
from __future__ import annotations

import builtins
import keyword
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__, caffe_pb2
from .analysis import Analysis, LayerInfo, analyze
from .errors import Diagnostic, NetcError, ShapeError
from .fillers import msra_std, xavier_bound
from .graph import AUTOMATIC, Layer, Net, load_net
from .layers import fmt_shape

__all__ = ["EmitError", "emit_torch", "build_module", "class_name_for", "EMITTERS", "DECLINED"]


class EmitError(NetcError):
    """The net is valid Caffe but cannot be compiled to PyTorch (a layer type with no forward here)."""


# nn.Module's public members (torch 2.x): a layer attribute must not shadow one.
_MODULE_MEMBERS = frozenset("""
T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda double dump_patches
eval extra_repr float forward get_buffer get_extra_state get_parameter get_submodule half ipu load_state_dict
modules mtia named_buffers named_children named_modules named_parameters parameters register_backward_hook
register_buffer register_forward_hook register_forward_pre_hook register_full_backward_hook
register_full_backward_pre_hook register_load_state_dict_post_hook register_load_state_dict_pre_hook
register_module register_parameter register_state_dict_post_hook register_state_dict_pre_hook requires_grad_
set_extra_state set_submodule share_memory state_dict to to_empty train type xpu zero_grad training
reset_parameters forward_all CAFFE_LAYERS CAFFE_BLOBS PHASE
""".split())
# Names the generated forward uses itself.
_FORWARD_NAMES = frozenset({"self", "torch", "nn", "F", "rt", "Tensor", "inputs", "annotations"})
_RESERVED = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins))


class Namespace:
    """Caffe names -> Python identifiers: ASCII, valid, unique, none of `reserved`; the same name always
    gets the same identifier."""

    def __init__(self, reserved: frozenset = frozenset(), fallback: str = "x") -> None:
        self.reserved = reserved
        self.fallback = fallback
        self.taken: set[str] = set()
        self.names: dict[str, str] = {}

    def __call__(self, name: str, key=None) -> str:
        """The identifier of `name`; `key` (default: the name) tells apart things that share a name."""
        key = name if key is None else key
        if key in self.names:
            return self.names[key]
        base = re.sub(r"[^0-9A-Za-z_]+", "_", name).strip("_") or self.fallback
        if base[0].isdigit():
            base = f"{self.fallback}{base}" if self.fallback else f"_{base}"
        if base in _RESERVED or base in self.reserved or base.startswith("__"):
            base = base.strip("_") + "_" if base.strip("_") else self.fallback
            if base in _RESERVED or base in self.reserved:
                base = base + "_"
        ident, n = base, 1
        while ident in self.taken or ident in _RESERVED or ident in self.reserved:
            n += 1
            ident = f"{base}_{n}"
        self.taken.add(ident)
        self.names[key] = ident
        return ident


def class_name_for(net_name: str) -> str:
    """A CamelCase class name from the net's `name:` ("bvlc_googlenet" -> "BvlcGooglenet")."""
    words = re.findall(r"[A-Za-z0-9]+", net_name)
    name = "".join(w[:1].upper() + w[1:] for w in words) or "Net"
    if name[0].isdigit():
        name = "Net" + name
    clash = name in _RESERVED or keyword.iskeyword(name) or name in _FORWARD_NAMES
    return name + "Net" if clash else name


# ----------------------------------------------------------------------------------------------------------
# Literals

def num(value) -> str:
    """A float field as its shortest float32 literal (0.01, not 0.009999999776482582)."""
    v = np.float32(value)
    if not np.isfinite(v):
        return f"float({str(v)!r})"
    text = repr(float(v)) if float(v).is_integer() else str(v)
    return text


def tup(values) -> str:
    values = [int(v) for v in values]
    return f"({values[0]},)" if len(values) == 1 else "(" + ", ".join(map(str, values)) + ")"


def pair(values) -> str:
    """One int when every spatial axis has the same value (kernel_size=3), else a tuple."""
    values = [int(v) for v in values]
    return str(values[0]) if len(set(values)) == 1 else tup(values)


def enum_name(msg, field_name: str) -> str:
    """The enum value name of msg.field (protobuf's own table)."""
    return msg.DESCRIPTOR.fields_by_name[field_name].enum_type.values_by_number[getattr(msg, field_name)].name


# ----------------------------------------------------------------------------------------------------------
# What one layer contributes

@dataclass
class BlobSpec:
    """One of Caffe's layer blobs as the module holds it."""

    key: str                    # attribute path under self: "conv1.weight"
    shape: tuple                # Caffe's blob shape
    filler: object = None       # caffe_pb2.FillerParameter, or a callable(target) -> [lines], or None: zeros
    state: bool = False         # a buffer (BatchNorm statistics), not a parameter


class E:
    """The emit context of one layer: its Caffe view (layer, shapes) and the emitter's (identifiers, lines)."""

    def __init__(self, gen: "_Emitter", layer: Layer, info: LayerInfo, bottoms: list[str], tops: list[str],
                 attrs: Namespace) -> None:
        self.gen = gen
        self.layer = layer
        self.info = info
        self.p = layer.param
        self.bottoms = bottoms
        self.tops = tops
        self._attrs = attrs
        self.init: list[str] = []
        self.blobs: list[BlobSpec] = []
        self.statement: str | None = None
        self.notes: list[str] = []

    @property
    def attr(self) -> str:
        """The layer's module attribute (allocated on first use: only layers with a module have one)."""
        return self._attrs(self.layer.name, self.layer.index)

    def axis(self, axis: int) -> int:
        """A layer's axis against bottom 0, a negative one counted from the end (validated by the analysis)."""
        return axis + len(self.bshape) if axis < 0 else axis

    @property
    def b(self) -> str:
        return self.bottoms[0]

    @property
    def bshape(self) -> tuple:
        return self.info.bottom_shapes[0]

    def rt(self, name: str) -> str:
        self.gen.uses_runtime = True
        return f"rt.{name}"

    def module(self, expr: str, blobs: list[BlobSpec] = ()) -> str:
        """self.<attr> = expr in __init__; returns self.<attr>."""
        self.init.append(f"self.{self.attr} = {expr}")
        self.blobs.extend(blobs)
        return f"self.{self.attr}"

    def set(self, expr: str) -> None:
        """The forward statement: the tops (a tuple for several) = expr."""
        lhs = ", ".join(self.tops) if self.tops else "_"
        self.statement = f"{lhs} = {expr}"

    def fail(self, message: str, hint: str | None = None) -> EmitError:
        return EmitError([Diagnostic("error", f"{self.layer.label}: {message}", self.layer.span(), hint)])

    def in_place_ok(self) -> bool:
        """Whether top 0 may overwrite bottom 0's tensor: Caffe runs the layer in place, and autograd does not
        need the overwritten value (its writer's backward reads its inputs, not its output)."""
        return bool(self.layer.in_place and self.layer.in_place[0]) and \
            self.gen.writer_keeps_output(self.layer.bottoms[0])

    def training(self) -> str:
        """Caffe decides by the layer's phase; the module by its mode, which the phase sets at construction."""
        if self.layer.phase != self.gen.net.phase:
            return "True" if self.layer.phase == caffe_pb2.TRAIN else "False"
        return "self.training"


Emitter = Callable[[E], None]
EMITTERS: dict[str, Emitter] = {}

# Layer types netc does not compile, and why.  Data layers proper are not here: their tops become the
# module's inputs (the data pipeline feeds them).
DECLINED = {
    "Python": "its forward is user code that netc does not see",
    "WindowData": "it is a data loader for R-CNN windows, not a computation; feed its tops from your own loader",
    "HDF5Output": "it writes files during the forward pass, not a computation",
    "LSTMUnit": "it is the single-step cell of Caffe's unrolled LSTM; netc compiles the LSTM layer itself",
    "(opaque)": "its type is not a BVLC Caffe layer, so netc does not know its forward",
}


def emits(*types: str):
    def add(fn: Emitter) -> Emitter:
        for t in types:
            if t in EMITTERS:
                raise ValueError(f"emitter for {t!r} registered twice")
            EMITTERS[t] = fn
        return fn
    return add


# ----------------------------------------------------------------------------------------------------------
# Fillers -> reset_parameters lines

def _default_filler(**fields) -> caffe_pb2.FillerParameter:
    return caffe_pb2.FillerParameter(**fields)


def filler_lines(target: str, fp: caffe_pb2.FillerParameter, shape: tuple) -> list[str]:
    """Statements that fill `target` (a tensor expression) as Caffe's filler `fp` fills a blob of `shape`."""
    t = fp.type
    if t == "constant":
        return [f"nn.init.zeros_({target})" if fp.value == 0 else f"nn.init.constant_({target}, {num(fp.value)})"]
    if t == "uniform":
        return [f"nn.init.uniform_({target}, {num(fp.min)}, {num(fp.max)})"]
    if t == "gaussian":
        lines = [f"nn.init.normal_({target}, {num(fp.mean)}, {num(fp.std)})"]
        if fp.sparse >= 0:
            keep = np.float32(fp.sparse) / np.float32(shape[0])
            lines.append(f"{target}.mul_(torch.rand_like({target}) < {num(keep)})  "
                         f"# sparse {fp.sparse}: keep {fp.sparse} of {shape[0]} outputs")
        return lines
    n_text = {caffe_pb2.FillerParameter.FAN_IN: "fan_in", caffe_pb2.FillerParameter.FAN_OUT: "fan_out",
              caffe_pb2.FillerParameter.AVERAGE: "(fan_in + fan_out) / 2"}[fp.variance_norm]
    if t == "xavier":
        bound = num(xavier_bound(fp, shape))
        return [f"nn.init.uniform_({target}, -{bound}, {bound})  # xavier: sqrt(3 / {n_text})"]
    if t == "msra":
        return [f"nn.init.normal_({target}, 0.0, {num(msra_std(fp, shape))})  # msra: sqrt(2 / {n_text})"]
    if t == "bilinear":
        k = shape[-1]
        f = math.ceil(k / 2)
        c = np.float32((k - 1) / (2.0 * f))
        w = np.float32(1) - np.abs(np.arange(k, dtype=np.float32) / np.float32(f) - c)
        values = ", ".join(num(v) for v in w)
        return [f"k = torch.tensor([{values}])  # bilinear upsampling by {f}",
                f"{target}.copy_(torch.outer(k, k).expand_as({target}))"]
    if t == "positive_unitball":
        return [f"nn.init.uniform_({target}, 0.0, 1.0)",
                f"{target}.div_({target}.reshape({shape[0] if shape else 1}, -1).sum(1)"
                f".reshape({tup((shape[0] if shape else 1,) + (1,) * max(len(shape) - 1, 0))}))  "
                "# positive_unitball: each row sums to 1"]
    raise ShapeError(f'unknown filler type "{t}"')


# ----------------------------------------------------------------------------------------------------------
# The emitter

@dataclass
class _Line:
    code: str
    comment: str = ""


@dataclass
class _Emitter:
    analysis: Analysis
    class_name: str
    source_name: str
    uses_runtime: bool = False
    needs_anchor: bool = False
    attrs: Namespace = None                      # layer name -> module attribute
    fused: dict = field(default_factory=dict)    # Scale layer index -> the BatchNorm attribute that applies it
    init: list = field(default_factory=list)
    fills: list = field(default_factory=list)
    forward: list = field(default_factory=list)
    tables: list = field(default_factory=list)   # (caffe layer name, type, [BlobSpec])
    writers: dict = field(default_factory=dict)  # blob -> type of the layer that wrote its current value

    @property
    def net(self) -> Net:
        return self.analysis.net

    def writer_keeps_output(self, blob: str) -> bool:
        return self.writers.get(blob) in _OUTPUT_NOT_SAVED

    def run(self) -> str:
        net = self.net
        attrs = self.attrs = Namespace(_MODULE_MEMBERS | _FORWARD_NAMES, fallback="layer")
        local = Namespace(_FORWARD_NAMES, fallback="blob")
        infos = {id(i.layer): i for i in self.analysis.layers}
        inputs: list[str] = []
        errors: list[Diagnostic] = []
        dummy: list = []
        fed = fed_layers(net)
        for layer in net.layers:
            rule = layer.rule
            if layer.index in fed:
                self.tables.append((layer.name, layer.type, []))
                inputs += [t for t in layer.tops if t not in inputs]
                for t in layer.tops:
                    local(t)
                    self.writers[t] = "Input"
                continue
            emitter = EMITTERS.get(layer.type)
            if emitter is None:
                why = DECLINED.get(layer.type if rule is None or rule.type != "(opaque)" else "(opaque)",
                                   "netc has no PyTorch translation for it")
                errors.append(Diagnostic("error", f"{layer.label}: netc cannot compile a {layer.type} layer to "
                                         "PyTorch", layer.span(), why))
                continue
            info = infos[id(layer)]
            bottoms = [local(b) for b in layer.bottoms]
            tops = [local("loss", ("auto", layer.index)) if t == AUTOMATIC else local(t) for t in layer.tops]
            e = E(self, layer, info, bottoms, tops, attrs)
            try:
                emitter(e)
                self._add(e)
            except EmitError as err:
                errors.extend(err.diagnostics)
                continue
            if layer.type == "DummyData":
                dummy.append(e)
        if "self" in inputs:
            layer = next(l for l in net.layers if "self" in l.tops)
            errors.append(Diagnostic("error", f'{layer.label}: an input blob named "self" cannot be passed to a '
                                     "PyTorch module by name", layer.span(),
                                     "nn.Module.__call__ takes self itself: rename the blob"))
        if errors:
            raise EmitError(errors)
        return self._source(inputs, local)

    def _add(self, e: E) -> None:
        layer, info = e.layer, e.info
        has_module = layer.index in e._attrs.names
        shown = e._attrs.names[layer.index] if has_module else (e.tops[0] if e.tops else "")
        label = "" if shown == layer.name else layer.name
        if e.init:
            self.init.append(_Line(e.init[0], label))
            self.init.extend(_Line(line) for line in e.init[1:])
        for i, spec in enumerate(e.blobs):
            owner = info.shared[i] if i < len(info.shared) else None
            if owner:
                owner_layer, owner_index = owner.rsplit(".", 1)
                owner_spec = next(s for n, _, specs in self.tables if n == owner_layer
                                  for j, s in enumerate(specs) if j == int(owner_index))
                owner_key = owner_spec.key
                name = layer.param.param[i].name
                if tuple(owner_spec.shape) != tuple(spec.shape):
                    raise e.fail(f"shares param {name!r} with layer {owner_layer!r} in another shape "
                                 f"({fmt_shape(spec.shape)} here, {fmt_shape(owner_spec.shape)} there)",
                                 hint="netc compiles shared params of equal shapes only (share_mode: PERMISSIVE "
                                      "with a different shape is not supported)")
                self.init.append(_Line(f"self.{spec.key} = self.{owner_key}", f'shared param {name!r}'))
                continue
            if spec.state:
                continue  # buffers are created by the module (BatchNorm: zeros, as Caffe's)
            target = f"self.{spec.key}"
            if callable(spec.filler):
                self.fills.extend(spec.filler(target))
            else:
                self.fills.extend(filler_lines(target, spec.filler or _default_filler(), spec.shape))
        self.tables.append((layer.name, layer.type, e.blobs))
        comment = fmt_shape(info.top_shapes[0]) if info.top_shapes else ""
        extras = [label] if label else []
        if any(layer.in_place):
            extras.append("in place")
        extras += [n for n in e.notes if n]
        if extras:
            comment = (comment + "  " if comment else "") + ", ".join(extras)
        if e.statement == "":  # nothing to compute: a comment says why
            self.forward.append(_Line("", f"{layer.name} ({layer.type}): {', '.join(n for n in e.notes if n)}"))
        elif e.statement is not None:
            self.forward.append(_Line(e.statement, comment))
        for top in layer.tops:
            if top != AUTOMATIC:
                self.writers[top] = layer.type if not (layer.type == "Concat" and len(layer.bottoms) < 2) else None

    def _source(self, inputs: list[str], local: Namespace) -> str:
        net, a = self.net, self.analysis
        phase = net.phase_name
        out: list[str] = []
        w = out.append
        w(comment_text(f"# Generated by netc {__version__} from {self.source_name} (phase {phase}"
                       + "".join(f", stage {s}" for s in net.stages) + "). Do not edit."))
        w(f'"""{_doc_text(net.name or self.class_name)}: {_thousands(a.params)} learnable parameters, '
          f'{_thousands(a.macs)} multiply-accumulates')
        w('per forward at the traced shapes."""')
        w("from __future__ import annotations")
        w("")
        w("import torch")
        w("import torch.nn.functional as F")
        w("from torch import Tensor, nn")
        if self.uses_runtime:
            w("")
            w("from netc import runtime as rt  # Caffe's arithmetic where torch's differs")
        w("")
        w("")
        w(f"class {self.class_name}(nn.Module):")
        in_shapes = ", ".join(f"{b} {fmt_shape(a.blob_shapes[b])}" for b in inputs if b in a.blob_shapes)
        w(f'    """Caffe net {_doc_text(repr(net.name))}, phase {phase}.')
        if in_shapes:
            w("")
            w(f"    Traced with inputs {_doc_text(in_shapes)}; the shape comments in forward are those shapes.")
        w('    """')
        w("")
        w(f"    PHASE = {phase!r}")
        w("    # Caffe layer -> (type, its blobs in Caffe's order as (state_dict key, Caffe shape)), in net order: what")
        w("    # netc.load_caffemodel and netc.save_caffemodel read and write.")
        w("    CAFFE_LAYERS = {")
        last = {name: i for i, (name, _, _) in enumerate(self.tables)}
        for i, (name, type_, specs) in enumerate(self.tables):
            if last[name] != i:
                # Caffe copies a model's blobs into the last layer of a name: so do load_caffemodel and this table.
                w(f"        # {comment_text(repr(name))} ({type_}) repeats below: weights go to the last one")
                continue
            blobs = [f"({s.key!r}, {tup(s.shape) if s.shape else '()'})" for s in specs]
            for part in wrap_call(f"{name!r}: ({type_!r}, [", blobs, "]),").split("\n"):
                w(f"        {part}")
        w("    }")
        w("    # Caffe blob -> its variable in forward (what forward_all returns).")
        w("    CAFFE_BLOBS = {")
        for blob, ident in local.names.items():
            if isinstance(blob, str):  # (automatic loss tops have no name: they are keyed by their layer)
                w(f"        {blob!r}: {ident!r},")
        w("    }")
        w("")
        w("    def __init__(self) -> None:")
        w("        super().__init__()")
        if self.needs_anchor:
            w('        self.register_buffer("_anchor", torch.zeros(()), persistent=False)  # where DummyData goes')
        for line in _aligned(self.init, 8):
            w(line)
        w("        self.reset_parameters()")
        training = net.phase == caffe_pb2.TRAIN
        w(f"        self.train({training})  # phase {phase}: "
          + ("Dropout drops, BatchNorm uses batch statistics" if training else
             "Dropout passes through, BatchNorm uses its stored statistics"))
        w("")
        w("    @torch.no_grad()")
        w("    def reset_parameters(self) -> None:")
        w('        """Caffe\'s fillers as the prototxt sets them (seed with torch.manual_seed)."""')
        for line in self.fills or ["pass"]:
            w(f"        {line}")
        w("")
        ident_inputs = [local.names[b] for b in inputs]
        plain = all(local.names[b] == b for b in inputs)
        if plain:
            params = "".join(f", {i}: Tensor" for i in ident_inputs)
            w(f"    def forward(self{params}) -> dict[str, Tensor]:")
        else:
            w("    def forward(self, **inputs: Tensor) -> dict[str, Tensor]:")
            for b, i in zip(inputs, ident_inputs):
                w(f"        {i} = inputs[{b!r}]")
        for line in _aligned(self.forward, 8):
            w(line)
        w("        return {")
        for key, ident, weight in self._outputs(local):
            value = ident if weight in (0.0, 1.0) else f"{ident} * {num(weight)}"
            note = f"  # loss_weight {num(weight)}" if weight not in (0.0, 1.0) else ""
            w(f"            {key!r}: {value},{note}")
        w("        }")
        w("")
        w("    def forward_all(self, **inputs: Tensor) -> dict[str, Tensor]:")
        w('        """Every blob after forward, as Caffe\'s net.blobs holds it (in-place layers overwrite their')
        w('        blob): for parity debugging; needs netc."""')
        w("        from netc.runtime import forward_all")
        w("        return forward_all(self, inputs)")
        return "\n".join(out) + "\n"

    def _outputs(self, local: Namespace) -> list[tuple]:
        """(key, variable, loss weight) for Caffe's net outputs and every top with a loss weight, in net order;
        a loss top the prototxt leaves out is "(automatic) of <layer>" (then " #2", ... if names repeat)."""
        net = self.net
        outs: dict = {}
        for layer in net.layers:
            for top, weight in zip(layer.tops, layer.loss_weights):
                if top == AUTOMATIC:
                    key, n = f"{AUTOMATIC} of {layer.name}", 1
                    while key in outs:
                        n += 1
                        key = f"{AUTOMATIC} of {layer.name} #{n}"
                    outs[key] = (local.names[("auto", layer.index)], weight)
                elif top in net.outputs or weight:
                    outs[top] = (local.names[top], weight)
        return [(key, ident, weight) for key, (ident, weight) in outs.items()]


# The layers whose backward reads their inputs (or nothing), never their output: an in-place op may
# overwrite what they wrote.  (ReLU/Sigmoid/TanH/Dropout outputs are read by their own backward.)
_OUTPUT_NOT_SAVED = frozenset({"Convolution", "Deconvolution", "InnerProduct", "BatchNorm", "Scale", "Bias",
                               "Eltwise", "Concat", "Pooling", "LRN"})


def _thousands(n: int) -> str:
    return f"{n:,}"


def _doc_text(text: str) -> str:
    """Text safe inside a triple-quoted docstring: no backslashes, no quote runs, one line."""
    return repr(text)[1:-1].replace('"', "'")


def comment_text(text: str) -> str:
    """Text safe in a `#` comment: every character that is not printable (a newline above all, which would end
    the comment and make the rest code) is written as its escape."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _aligned(lines: list[_Line], indent: int, column: int = 60, width: int = 120) -> list[str]:
    """Statements with their comments aligned at `column`; a comment that would run past `width` goes on its
    own line above the statement."""
    pad = " " * indent
    out = []
    for line in lines:
        comment = comment_text(line.comment) if line.comment else ""
        if not line.code:
            out.append(f"{pad}# {comment}")
            continue
        code = [pad + part for part in line.code.split("\n")]
        if comment:
            first = code[0].ljust(column + indent)
            if len(code) == 1 and len(first) + 4 + len(comment) <= width:
                code[0] = f"{first}  # {comment}"
            else:
                out.append(f"{pad}# {comment}")
        out.extend(code)
    return out


def wrap_call(head: str, items: list[str], tail: str, indent: int = 8, width: int = 120) -> str:
    """`head` + items + `tail` on one line when it fits, else the items on continuation lines (relative
    indentation; `_aligned` adds the statement's own)."""
    one = head + ", ".join(items) + tail
    if len(one) + indent <= width:
        return one
    lines, current = [head], "    "
    for i, item in enumerate(items):
        piece = item + (tail if i == len(items) - 1 else ", ")
        if len(current.rstrip()) + 1 + len(piece) + indent > width and current.strip():
            lines.append(current.rstrip())
            current = "    "
        current += piece
    lines.append(current.rstrip())
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# Per-type translations

def _filler(p, name: str, **default):
    return getattr(p, name) if p.HasField(name) else _default_filler(**default)


_CONV = {1: "Conv1d", 2: "Conv2d", 3: "Conv3d"}
_DECONV = {1: "ConvTranspose1d", 2: "ConvTranspose2d", 3: "ConvTranspose3d"}


@emits("Convolution", "Deconvolution")
def _convolution(e: E) -> None:
    from .layers.vision import conv_spec
    p = e.p.convolution_param
    spec = _rule_spec(e, conv_spec)
    spatial = len(e.bshape) - spec.axis - 1
    table = _CONV if e.layer.type == "Convolution" else _DECONV
    if spec.axis != 1 or spatial not in table:
        raise e.fail(f"netc compiles {e.layer.type} over 1, 2 or 3 spatial axes after axis 1, not axis "
                     f"{spec.axis} of a {len(e.bshape)}-axis blob")
    cin = e.bshape[1]
    args = [str(cin), str(spec.num_output), f"kernel_size={pair(spec.kernel)}"]
    for name, values, default in (("stride", spec.stride, 1), ("padding", spec.pad, 0),
                                  ("dilation", spec.dilation, 1)):
        if any(v != default for v in values):
            args.append(f"{name}={pair(values)}")
    if spec.group != 1:
        args.append(f"groups={spec.group}")
    if not spec.bias_term:
        args.append("bias=False")
    blobs = [BlobSpec(f"{e.attr}.weight", e.info.blob_shapes[0], _filler(p, "weight_filler"))]
    if spec.bias_term:
        blobs.append(BlobSpec(f"{e.attr}.bias", e.info.blob_shapes[1], _filler(p, "bias_filler")))
    mod = e.module(f"nn.{table[spatial]}({', '.join(args)})", blobs)
    if len(e.bottoms) == 1:
        e.set(f"{mod}({e.b})")
    else:  # one top per bottom, the same weights
        e.set(", ".join(f"{mod}({b})" for b in e.bottoms))


def _rule_spec(e: E, resolve):
    """A rule's resolved spec (the analysis validated the layer already: this cannot fail)."""
    from .errors import Diagnostics
    from .layers import RuleContext
    return resolve(RuleContext(e.layer, Diagnostics()), e.bshape)


@emits("InnerProduct")
def _inner_product(e: E) -> None:
    p = e.p.inner_product_param
    axis = e.axis(p.axis)
    k = math.prod(e.bshape[axis:])
    blobs = [BlobSpec(f"{e.attr}.weight", e.info.blob_shapes[0], _filler(p, "weight_filler"))]
    if p.bias_term:
        blobs.append(BlobSpec(f"{e.attr}.bias", e.info.blob_shapes[1], _filler(p, "bias_filler")))
    bias = "" if p.bias_term else ", bias=False"
    if p.transpose:
        extra = f", axis={axis}" if axis != 1 else ""
        mod = e.module(f"{e.rt('InnerProduct')}({k}, {p.num_output}{bias}{extra})", blobs)
        e.set(f"{mod}({e.b})")
        return
    mod = e.module(f"nn.Linear({k}, {p.num_output}{bias})", blobs)
    x = e.b if len(e.bshape) == axis + 1 else f"{e.b}.flatten({axis})"
    e.set(f"{mod}({x})")


@emits("Pooling")
def _pooling(e: E) -> None:
    from .layers.vision import pool_spec
    spec = _rule_spec(e, pool_spec)
    method = caffe_pb2.PoolingParameter.PoolMethod.Name(spec.method)
    round_mode = "CEIL" if spec.ceil else "FLOOR"
    if method == "STOCHASTIC":
        if spec.global_pooling:
            raise e.fail("netc compiles STOCHASTIC pooling with a kernel, not global_pooling")
        e.set(f"{e.rt('stochastic_pool2d')}({e.b}, {pair(spec.kernel)}, {pair(spec.stride)}, "
              f"train={e.training()})")
        return
    if len(e.tops) == 2:  # MAX with the argmax mask top
        if spec.global_pooling:
            e.set(f"{e.rt('pool2d')}({e.b}, method='MAX', global_pooling=True, return_mask=True)")
        else:
            e.set(f"{e.rt('pool2d')}({e.b}, {pair(spec.kernel)}, {pair(spec.stride)}, {pair(spec.pad)}, "
                  f"{method!r}, {round_mode!r}, return_mask=True)")
        return
    if spec.global_pooling:
        e.set(f"F.adaptive_{'max' if method == 'MAX' else 'avg'}_pool2d({e.b}, 1)")
        return
    # torch's pooling has Caffe's windows and AVE divisor whenever no ceil window can start past the input
    # (stride <= kernel) and the padding is at most half the kernel; for any input size.
    if all(s <= k and p <= k // 2 for k, s, p in zip(spec.kernel, spec.stride, spec.pad)):
        args = [pair(spec.kernel), f"stride={pair(spec.stride)}"]
        if any(spec.pad):
            args.append(f"padding={pair(spec.pad)}")
        if spec.ceil:
            args.append("ceil_mode=True")
        cls = "MaxPool2d" if method == "MAX" else "AvgPool2d"
        mod = e.module(f"nn.{cls}({', '.join(args)})")
        e.set(f"{mod}({e.b})")
        return
    args = f"{pair(spec.kernel)}, {pair(spec.stride)}, {pair(spec.pad)}, {method!r}"
    if not spec.ceil:
        args += ", 'FLOOR'"
    e.set(f"{e.rt('pool2d')}({e.b}, {args})")


@emits("SPP")
def _spp(e: E) -> None:
    p = e.p.spp_param
    e.set(f"{e.rt('spp')}({e.b}, {p.pyramid_height}, {enum_name(p, 'pool')!r})")


@emits("LRN")
def _lrn(e: E) -> None:
    p = e.p.lrn_param
    region = "" if p.norm_region == caffe_pb2.LRNParameter.ACROSS_CHANNELS else ", region='WITHIN'"
    k = f", k={num(p.k)}" if p.k != 1 and not region else ""
    e.set(f"{e.rt('lrn')}({e.b}, {p.local_size}, alpha={num(p.alpha)}, beta={num(p.beta)}{k}{region})")


@emits("Im2col")
def _im2col(e: E) -> None:
    from .layers.vision import conv_spec
    spec = _rule_spec(e, lambda ctx, b: conv_spec(ctx, b, needs_output=False))
    e.set(f"{e.rt('im2col')}({e.b}, {pair(spec.kernel)}, {pair(spec.stride)}, {pair(spec.pad)}, "
          f"{pair(spec.dilation)})")


# Neurons -------------------------------------------------------------------------------------------------

@emits("ReLU")
def _relu(e: E) -> None:
    slope = e.p.relu_param.negative_slope
    inplace = ", inplace=True" if e.in_place_ok() else ""
    if slope:
        e.set(f"F.leaky_relu({e.b}, {num(slope)}{inplace})")
    else:
        e.set(f"F.relu({e.b}{inplace})")


@emits("Dropout")
def _dropout(e: E) -> None:
    ratio = e.p.dropout_param.dropout_ratio
    inplace = ", inplace=True" if e.in_place_ok() else ""
    e.set(f"F.dropout({e.b}, {num(ratio)}, {e.training()}{inplace})")


@emits("ELU")
def _elu(e: E) -> None:
    inplace = ", inplace=True" if e.in_place_ok() else ""
    e.set(f"F.elu({e.b}, {num(e.p.elu_param.alpha)}{inplace})")


def _simple(call: str):
    def emit(e: E) -> None:
        e.set(f"{call}({e.b})")
    return emit


emits("Sigmoid")(_simple("torch.sigmoid"))
emits("TanH")(_simple("torch.tanh"))
emits("AbsVal")(_simple("torch.abs"))
emits("BNLL")(_simple("F.softplus"))


@emits("PReLU")
def _prelu(e: E) -> None:
    p = e.p.prelu_param
    shape = e.info.blob_shapes[0]
    n = 1 if p.channel_shared else e.bshape[1]
    filler = _filler(p, "filler", type="constant", value=0.25)
    mod = e.module(f"nn.PReLU({n})" if n != 1 else "nn.PReLU()", [BlobSpec(f"{e.attr}.weight", shape, filler)])
    e.set(f"{mod}({e.b})")


@emits("Power")
def _power(e: E) -> None:
    p = e.p.power_param
    e.set(f"{e.rt('power')}({e.b}, power={num(p.power)}, scale={num(p.scale)}, shift={num(p.shift)})")


@emits("Exp", "Log")
def _exp_log(e: E) -> None:
    p = e.p.exp_param if e.layer.type == "Exp" else e.p.log_param
    e.set(f"{e.rt(e.layer.type.lower())}({e.b}, base={num(p.base)}, scale={num(p.scale)}, shift={num(p.shift)})")


@emits("Threshold")
def _threshold(e: E) -> None:
    e.set(f"{e.rt('threshold')}({e.b}, {num(e.p.threshold_param.threshold)})")


@emits("Clip")
def _clip(e: E) -> None:
    p = e.p.clip_param
    e.set(f"torch.clamp({e.b}, {num(p.min)}, {num(p.max)})")


@emits("Swish")
def _swish(e: E) -> None:
    beta = e.p.swish_param.beta
    e.set(f"F.silu({e.b})" if beta == 1 else f"{e.rt('swish')}({e.b}, {num(beta)})")


# Normalization and affine --------------------------------------------------------------------------------

@emits("BatchNorm")
def _batch_norm(e: E) -> None:
    p = e.p.batch_norm_param
    args = [str(e.bshape[1])]
    if p.eps != 1e-5 and np.float32(p.eps) != np.float32(1e-5):
        args.append(f"eps={num(p.eps)}")
    if np.float32(p.moving_average_fraction) != np.float32(0.999):
        args.append(f"moving_average_fraction={num(p.moving_average_fraction)}")
    if p.HasField("use_global_stats"):
        args.append(f"use_global_stats={p.use_global_stats}")
    names = ("mean", "variance", "scale_factor")
    blobs = [BlobSpec(f"{e.attr}.{n}", s, state=True) for n, s in zip(names, e.info.blob_shapes)]
    mod = e.module(f"{e.rt('BatchNorm')}({', '.join(args)})", blobs)
    scale = _fusable_scale(e)
    if scale is None:
        e.set(f"{mod}({e.b})")
        return
    # Caffe's BatchNorm + Scale pair, both in place: one batch_norm kernel with the Scale's γ and β.
    e.gen.fused[scale.index] = e.attr
    e.set(f"{mod}({e.b}, affine=self.{e.gen.attrs(scale.name, scale.index)})")


def _fusable_scale(e: E):
    """The Scale layer that rewrites this BatchNorm's top next, in place, with one γ (and β) per channel:
    the two run as one batch_norm.  None where anything else happens in between or the Scale differs."""
    net = e.gen.net
    top = e.layer.tops[0]
    if len(e.bshape) < 2 or e.layer.bottoms[0] != top:
        return None
    nxt = next((layer for layer in net.layers[e.layer.index + 1:] if top in layer.bottoms or top in layer.tops),
               None)
    if nxt is None or nxt.type != "Scale" or nxt.bottoms != [top] or nxt.tops != [top]:
        return None
    p = nxt.param.scale_param
    if p.axis not in (1, 1 - len(e.bshape)) or p.num_axes != 1:
        return None
    return nxt


@emits("Scale")
def _scale(e: E) -> None:
    p = e.p.scale_param
    axis = e.axis(p.axis)
    extra = f", axis={axis}" if axis != 1 else ""
    if len(e.bottoms) == 2 and not p.bias_term:
        e.set(f"{e.rt('scale')}({e.b}, {e.bottoms[1]}{extra})")
        return
    blobs = []
    if len(e.bottoms) == 1:
        shape = e.info.blob_shapes[0]
        blobs.append(BlobSpec(f"{e.attr}.weight", shape, _filler(p, "filler", type="constant", value=1.0)))
    else:
        shape = e.info.blob_shapes[0]
        extra += ", weight=False"
    if p.bias_term:
        blobs.append(BlobSpec(f"{e.attr}.bias", shape, _filler(p, "bias_filler")))
        extra = ", bias=True" + extra
    mod = e.module(f"{e.rt('Scale')}({tup(shape) if shape else '()'}{extra})", blobs)
    if e.layer.index in e.gen.fused:
        e.statement = ""
        e.notes.append(f"applied by self.{e.gen.fused[e.layer.index]}")
        return
    e.set(f"{mod}({', '.join(e.bottoms)})")


@emits("Bias")
def _bias(e: E) -> None:
    p = e.p.bias_param
    axis = e.axis(p.axis)
    extra = f", axis={axis}" if axis != 1 else ""
    if len(e.bottoms) == 2:
        e.set(f"{e.rt('bias')}({e.b}, {e.bottoms[1]}{extra})")
        return
    shape = e.info.blob_shapes[0]
    mod = e.module(f"{e.rt('Bias')}({tup(shape) if shape else '()'}{extra})",
                   [BlobSpec(f"{e.attr}.bias", shape, _filler(p, "filler"))])
    e.set(f"{mod}({e.b})")


@emits("MVN")
def _mvn(e: E) -> None:
    p = e.p.mvn_param
    args = []
    if not p.normalize_variance:
        args.append("normalize_variance=False")
    if p.across_channels:
        args.append("across_channels=True")
    args.append(f"eps={num(p.eps)}")
    e.set(f"{e.rt('mvn')}({e.b}, {', '.join(args)})")


@emits("Softmax")
def _softmax(e: E) -> None:
    axis = e.p.softmax_param.axis
    e.set(f"F.softmax({e.b}, dim={axis})")


@emits("Embed")
def _embed(e: E) -> None:
    p = e.p.embed_param
    blobs = [BlobSpec(f"{e.attr}.weight", e.info.blob_shapes[0], _filler(p, "weight_filler"))]
    if p.bias_term:
        blobs.append(BlobSpec(f"{e.attr}.bias", e.info.blob_shapes[1], _filler(p, "bias_filler")))
    bias = "" if p.bias_term else ", bias=False"
    mod = e.module(f"{e.rt('Embed')}({p.input_dim}, {p.num_output}{bias})", blobs)
    e.set(f"{mod}({e.b})")


@emits("LSTM", "RNN")
def _recurrent(e: E) -> None:
    p = e.p.recurrent_param
    lstm = e.layer.type == "LSTM"
    shapes = e.info.blob_shapes
    static = len(e.bottoms) > 2 and not (p.expose_hidden and len(e.bottoms) == (4 if lstm else 3))
    d = shapes[0][1]
    args = [str(d), str(p.num_output)]
    if static:
        args.append(f"static_size={shapes[2][1]}")
    if p.expose_hidden:
        args.append("expose_hidden=True")
    wf, bf = _filler(p, "weight_filler"), _filler(p, "bias_filler")
    names = ["weight_x", "bias_x"] + (["weight_static"] if static else []) + (
        ["weight_h"] if lstm else ["weight_h", "weight_o", "bias_o"])
    blobs = [BlobSpec(f"{e.attr}.{n}", s, bf if n.startswith("bias") else wf) for n, s in zip(names, shapes)]
    mod = e.module(f"{e.rt(e.layer.type)}({', '.join(args)})", blobs)
    bottoms = list(e.bottoms)
    if p.expose_hidden and not static:
        bottoms.insert(2, "None")
    e.set(f"{mod}({', '.join(bottoms)})")


# Losses and metrics --------------------------------------------------------------------------------------

def _normalization(e: E, default: str) -> str:
    """normalization if set; else legacy normalize (true VALID, false BATCH_SIZE); else the layer's default.
    [loss_layer.cpp LayerSetUp]"""
    p = e.p.loss_param
    if p.HasField("normalization"):
        return enum_name(p, "normalization")
    if p.HasField("normalize"):
        return "VALID" if p.normalize else "BATCH_SIZE"
    return default


def _ignore(e: E) -> str:
    return f", ignore_label={e.p.loss_param.ignore_label}" if e.p.loss_param.HasField("ignore_label") else ""


def _loss_top(e: E, expr: str) -> None:
    if len(e.tops) == 2:  # the optional second top: the probabilities
        axis = e.p.softmax_param.axis if e.layer.type == "SoftmaxWithLoss" else e.p.infogain_loss_param.axis
        e.set(f"{expr}, F.softmax({e.b}, dim={axis})")
    else:
        e.set(expr)


@emits("SoftmaxWithLoss")
def _softmax_loss(e: E) -> None:
    axis = e.p.softmax_param.axis
    args = (f", axis={axis}" if axis != 1 else "") + _ignore(e)
    norm = _normalization(e, "VALID")
    if norm != "VALID":
        args += f", normalization={norm!r}"
    _loss_top(e, f"{e.rt('softmax_with_loss')}({e.b}, {e.bottoms[1]}{args})")


@emits("SigmoidCrossEntropyLoss")
def _sce_loss(e: E) -> None:
    norm = _normalization(e, "BATCH_SIZE")
    args = _ignore(e) + (f", normalization={norm!r}" if norm != "BATCH_SIZE" else "")
    e.set(f"{e.rt('sigmoid_cross_entropy_loss')}({e.b}, {e.bottoms[1]}{args})")


@emits("EuclideanLoss")
def _euclidean(e: E) -> None:
    e.set(f"{e.rt('euclidean_loss')}({e.b}, {e.bottoms[1]})")


@emits("HingeLoss")
def _hinge(e: E) -> None:
    e.set(f"{e.rt('hinge_loss')}({e.b}, {e.bottoms[1]}, {enum_name(e.p.hinge_loss_param, 'norm')!r})")


@emits("MultinomialLogisticLoss")
def _mlr(e: E) -> None:
    e.set(f"{e.rt('multinomial_logistic_loss')}({e.b}, {e.bottoms[1]})")


@emits("InfogainLoss")
def _infogain(e: E) -> None:
    p = e.p.infogain_loss_param
    if len(e.bottoms) == 3:
        matrix = e.bottoms[2]
    else:
        raise e.fail("netc compiles InfogainLoss with H as its third bottom, not infogain_loss_param.source",
                     hint="feed H (C x C) as a third bottom, e.g. from an Input layer")
    args = (f", axis={p.axis}" if p.axis != 1 else "") + _ignore(e)
    norm = _normalization(e, "VALID")
    if norm != "VALID":
        args += f", normalization={norm!r}"
    _loss_top(e, f"{e.rt('infogain_loss')}({e.b}, {e.bottoms[1]}, {matrix}{args})")


@emits("ContrastiveLoss")
def _contrastive(e: E) -> None:
    p = e.p.contrastive_loss_param
    legacy = ", legacy=True" if p.legacy_version else ""
    e.set(f"{e.rt('contrastive_loss')}({', '.join(e.bottoms)}, margin={num(p.margin)}{legacy})")


@emits("Accuracy")
def _accuracy(e: E) -> None:
    p = e.p.accuracy_param
    args = (f", top_k={p.top_k}" if p.top_k != 1 else "") + (f", axis={p.axis}" if p.axis != 1 else "")
    if p.HasField("ignore_label"):
        args += f", ignore_label={p.ignore_label}"
    if len(e.tops) == 2:
        args += ", per_class=True"
    e.set(f"{e.rt('accuracy')}({e.b}, {e.bottoms[1]}{args})")


@emits("ArgMax")
def _argmax(e: E) -> None:
    p = e.p.argmax_param
    args = (f", top_k={p.top_k}" if p.top_k != 1 else "") + (", out_max_val=True" if p.out_max_val else "")
    if p.HasField("axis"):
        args += f", axis={p.axis}"
    e.set(f"{e.rt('argmax')}({e.b}{args})")


# Blob plumbing -------------------------------------------------------------------------------------------

@emits("Concat")
def _concat(e: E) -> None:
    p = e.p.concat_param
    axis = p.concat_dim if p.HasField("concat_dim") else p.axis
    if len(e.bottoms) == 1:
        e.set(f"{e.b}.clone()")  # Caffe copies a single bottom
        return
    lhs = f"{e.tops[0]} = "
    e.statement = lhs + wrap_call("torch.cat([", e.bottoms, f"], dim={axis})", indent=8 + len(lhs))


@emits("Eltwise")
def _eltwise(e: E) -> None:
    p = e.p.eltwise_param
    op = enum_name(p, "operation")
    if op == "MAX":
        e.set(f"{e.rt('eltwise')}([{', '.join(e.bottoms)}], 'MAX')")
        return
    if op == "PROD":
        e.set(" * ".join(e.bottoms))
        return
    coeffs = list(p.coeff) or [1.0] * len(e.bottoms)
    terms = []
    for i, (b, c) in enumerate(zip(e.bottoms, coeffs)):
        if c == 1:
            terms.append(("+", b))
        elif c == -1:
            terms.append(("-", b))
        else:
            terms.append(("+", f"{b} * {num(c)}"))
    first_sign, first = terms[0]
    expr = first if first_sign == "+" else f"-{first}"
    for sign, term in terms[1:]:
        expr += f" {sign} {term}"
    e.set(expr)


@emits("Split")
def _split(e: E) -> None:
    e.set(", ".join([e.b] * len(e.tops)))
    e.notes.append("the tops share the bottom's tensor")


@emits("Silence")
def _silence(e: E) -> None:
    e.statement = ""  # nothing to compute: a comment line
    e.notes.append(f"{', '.join(dict.fromkeys(e.bottoms))} not used further")


@emits("Slice")
def _slice(e: E) -> None:
    p = e.p.slice_param
    axis = p.slice_dim if p.HasField("slice_dim") else p.axis
    axis = e.axis(axis)
    dim = e.bshape[axis]
    if len(e.tops) == 1:  # one piece: the bottom itself (Caffe shares it)
        e.set(e.b)
        return
    if axis == 0:  # the batch axis: sizes follow the input
        points = list(p.slice_point)
        e.set(f"{e.rt('slice')}({e.b}, 0, {list(points)}, tops={len(e.tops)})")
        return
    if p.slice_point:
        bounds = [0] + list(p.slice_point) + [dim]
        sizes = [b - a for a, b in zip(bounds, bounds[1:])]
    else:
        sizes = [dim // len(e.tops)] * len(e.tops)
    e.set(f"torch.split({e.b}, {sizes}, dim={axis})")


@emits("Flatten")
def _flatten(e: E) -> None:
    p = e.p.flatten_param
    args = [str(p.axis)] + ([str(p.end_axis)] if p.end_axis != -1 else [])
    e.set(f"{e.b}.flatten({', '.join(args)})")


@emits("Reshape")
def _reshape(e: E) -> None:
    p = e.p.reshape_param
    x, ndim = e.b, len(e.bshape)
    start = p.axis if p.axis >= 0 else ndim + p.axis + 1
    end = ndim if p.num_axes == -1 else start + p.num_axes
    dims = [f"{x}.shape[{start + i}]" if d == 0 else str(d) for i, d in enumerate(p.shape.dim)]
    parts = ([f"*{x}.shape[:{start}]"] if start else []) + dims + ([f"*{x}.shape[{end}:]"] if end < ndim else [])
    e.set(f"{x}.reshape({', '.join(parts)})" if parts else f"{x}.reshape(())")


@emits("Crop")
def _crop(e: E) -> None:
    p = e.p.crop_param
    x, ref, ndim = e.b, e.bottoms[1], len(e.bshape)
    axis = e.axis(p.axis)
    offsets = list(p.offset)
    index = []
    for i in range(ndim):
        if i < axis:
            index.append(":")
            continue
        off = 0 if not offsets else offsets[0] if len(offsets) == 1 else offsets[i - axis]
        index.append(f"{off}:{off} + {ref}.shape[{i}]" if off else f":{ref}.shape[{i}]")
    while index and index[-1] == ":":
        index.pop()
    e.set(f"{x}[{', '.join(index)}]")


@emits("Tile")
def _tile(e: E) -> None:
    p = e.p.tile_param
    ndim = len(e.bshape)
    axis = e.axis(p.axis)
    reps = [p.tiles if i == axis else 1 for i in range(ndim)]
    e.set(f"{e.b}.repeat({', '.join(map(str, reps))})")


@emits("Reduction")
def _reduction(e: E) -> None:
    p = e.p.reduction_param
    args = f", {enum_name(p, 'operation')!r}, axis={p.axis}" + (f", coeff={num(p.coeff)}" if p.coeff != 1 else "")
    e.set(f"{e.rt('reduction')}({e.b}{args})")


@emits("BatchReindex")
def _batch_reindex(e: E) -> None:
    e.set(f"{e.rt('batch_reindex')}({e.b}, {e.bottoms[1]})")


@emits("Filter")
def _filter(e: E) -> None:
    e.set(f"{e.rt('filter')}({', '.join(e.bottoms)})" + ("[0]" if len(e.tops) == 1 else ""))
    e.notes.append("the size depends on the selector's values")


@emits("Parameter")
def _parameter(e: E) -> None:
    shape = e.info.blob_shapes[0]
    mod = e.module(f"nn.Parameter(torch.zeros({tup(shape) if shape else '()'}))",
                   [BlobSpec(e.attr, shape, lambda target: [])])  # Caffe leaves it as allocated: zeros
    e.set(mod)


@emits("DummyData")
def _dummy_data(e: E) -> None:
    p = e.p.dummy_data_param
    shapes = e.info.top_shapes
    fillers = list(p.data_filler)
    exprs = []
    for i, shape in enumerate(shapes):
        fp = fillers[0] if len(fillers) == 1 else fillers[i] if fillers else _default_filler()
        exprs.append(_dummy_expr(e, fp, shape))
    e.set(", ".join(exprs))


def _dummy_expr(e: E, fp, shape) -> str:
    where = "device=self._anchor.device"
    e.gen.needs_anchor = True
    size = tup(shape) if shape else "()"
    if fp.type == "constant":
        return f"torch.full({size}, {num(fp.value)}, {where})"
    if fp.type == "uniform":
        return f"torch.empty({size}, {where}).uniform_({num(fp.min)}, {num(fp.max)})"
    if fp.type == "gaussian" and fp.sparse < 0:
        return f"torch.empty({size}, {where}).normal_({num(fp.mean)}, {num(fp.std)})"
    raise e.fail(f"netc compiles DummyData with constant, uniform or gaussian fillers, not {fp.type!r}")


# ----------------------------------------------------------------------------------------------------------
# Entry points

def fed_layers(net: Net) -> set[int]:
    """The layers whose tops a generated module takes as forward arguments: Input layers, and the data
    layers proper (Data, ImageData, HDF5Data, MemoryData: the data pipeline feeds them)."""
    return {layer.index for layer in net.layers
            if layer.type == "Input" or (layer.rule is not None and layer.rule.data and layer.type != "DummyData"
                                         and layer.type not in DECLINED)}


def fed_blobs(net: Net) -> list[str]:
    fed = fed_layers(net)
    return list(dict.fromkeys(t for layer in net.layers if layer.index in fed for t in layer.tops))


def emit_torch(analysis: Analysis, class_name: str | None = None, source_name: str | None = None) -> str:
    """The source of a standalone module for an analysed net; `compile()`-checked."""
    net = analysis.net
    name = class_name or class_name_for(net.name or Path(net.source.name).stem)
    if not name.isidentifier() or keyword.iskeyword(name):
        raise EmitError(f"--class-name {name!r} is not a Python identifier")
    if name in _FORWARD_NAMES:
        raise EmitError(f"--class-name {name!r} would hide a name the generated file uses",
                        hint="the file uses " + ", ".join(sorted(_FORWARD_NAMES - {"self", "inputs", "annotations"})))
    source = source_name or net.source.name
    text = _Emitter(analysis, name, source).run()
    compile(text, f"<netc: {name}>", "exec")
    return text


def _analysis(net_or_path, phase, stages, inputs, batch) -> Analysis:
    if isinstance(net_or_path, Analysis):
        return net_or_path
    net = net_or_path if isinstance(net_or_path, Net) else load_net(net_or_path, phase, stages)
    return analyze(net, inputs, batch)


def build_module(net_or_path, phase: str = "TEST", stages=(), *, inputs: dict | None = None,
                 batch: int | None = None, class_name: str | None = None, device=None, seed: int | None = None):
    """The module `netc compile` would write, built in-process from the same source (exec'd, not a second
    translation).  `seed` seeds the fillers; `device` (e.g. "meta" to trace shapes without memory) is where
    the parameters are created."""
    import torch
    analysis = _analysis(net_or_path, phase, stages, inputs, batch)
    source = emit_torch(analysis, class_name)
    cls = load_module_class(source, f"netc_generated_{analysis.net.phase_name.lower()}")
    if seed is not None:
        torch.manual_seed(seed)
    if device is None:
        return cls()
    with torch.device(device):
        return cls()


def load_module_class(source: str, module_name: str):
    """Exec generated source as a module and return its nn.Module class (the file's only class)."""
    import sys
    import types
    mod = types.ModuleType(module_name)
    mod.__dict__["__netc_source__"] = source
    code = compile(source, f"<{module_name}>", "exec")
    sys.modules[module_name] = mod  # dataclasses, pickling and inspect look a class's module up here
    try:
        exec(code, mod.__dict__)
    finally:
        del sys.modules[module_name]
    classes = [v for v in mod.__dict__.values() if isinstance(v, type) and v.__module__ == module_name]
    return classes[0]
