"""Architecture diagrams: the analysed Net IR -> Graphviz DOT -> SVG, PNG or PDF.

    to_dot(analysis, rankdir="TB", detail="shapes", collapse=None) -> DOT text (deterministic)
    to_svg(dot_text)                     -> SVG text, or None when Graphviz's `dot` is not installed
    draw_to_file(dot_text, path) -> exit code (.dot, .svg, .png, .pdf)

What is drawn (the backend reads only the IR: the phase's layers are already filtered, so TRAIN shows its
data and loss layers, TEST its accuracy):

- One node per layer, filled by kind (data, conv, pool, norm, activation, fc, concat/eltwise, loss, other;
  see `layer_kind`), with a legend of the kinds present in a cluster of its own (node ids `legend_*`).
- One edge per blob read, from the node that last wrote the blob to the reader, labelled with the blob's
  shape at that point (N×C×H×W) and, where it differs from its producer's name, the blob's name.
- Folding: a layer whose tops are all in place (top j == bottom j), and which reads nothing else, is not a
  node of its own: it becomes a "+ name (type)" line of the node that wrote its bottoms (ReLU after a
  convolution, BatchNorm + Scale + ReLU after a convolution, Dropout after an InnerProduct ...), as
  Netscope draws them.  Its parameters and MACs are added to that node's.
- `detail`: "names" (name and type), "params" (+ hyper-parameters and learnable parameter count),
  "shapes" (+ blob shapes on the edges; the default), "full" (+ MACs and the receptive field size/jump).
- Modules (`module_names`): a layer named `inception_3a/1x1` is in module `inception_3a` (the text before
  the first "/"); `res2a_branch2a` is in module `res2a` (the text before "_branch"); a layer named exactly
  like a module found so, or like one followed by "_" (`res2a`, `res2a_relu`), joins it.  Only drawn nodes
  are named this way: folded layers (`bn2a_branch2a`, `scale2a_branch2a`) go with the node they modify.
  With collapse=None a module of two nodes or more is a cluster (`subgraph cluster_M<k>`); with
  collapse="modules" it is one node; collapse=[prefixes] folds the nodes whose names start with a prefix
  (the longest that matches) into one node per prefix.  A group of a single node stays a layer node.

Node ids are synthetic (STYLE.md): `L<layer index>` for a layer, `M<k>` for a collapsed module (k counts
modules in net order), and the DOT `id` attribute repeats them so the SVG `<g>` of a node carries that id.
Every node also has a `class`: "node-layer" or "node-module", then the ids of the layers it stands for
(`class="node-module L3 L4 L5"`; a layer node lists the layers folded into it after its own), so a page can
find the node of any layer.  Real names only appear in HTML-like labels, escaped (`_esc`): & < > " ' become
entities and invisible or control characters a visible \\uXXXX, so a name is always text, never markup.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from .files import write_atomic
from .reports import module_names  # the one module rule, shared with the table
from .errors import Diagnostics, NetcError, UsageError

RANKDIRS = ("TB", "LR", "BT", "RL")
DETAILS = ("names", "params", "shapes", "full")
DOT_TIMEOUT_S = 60
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf"}
INSTALL_HINT = ("install Graphviz: apt-get install graphviz (Debian/Ubuntu), brew install graphviz (macOS), "
                "or conda install -c conda-forge graphviz")

# (kind, legend text, fill colour), in legend order.
KINDS = (
    ("data", "data", "#e3e3e3"),
    ("conv", "conv", "#c6dbf5"),
    ("pool", "pool", "#d4ebcd"),
    ("norm", "norm", "#fff0c2"),
    ("activation", "activation", "#fbdcc0"),
    ("fc", "fc", "#dcd3ee"),
    ("concat", "concat/eltwise", "#cde6e8"),
    ("loss", "loss/accuracy", "#f5c9c9"),
    ("other", "other", "#ffffff"),
)
_COLOUR = {k: c for k, _, c in KINDS}
_ORDER = {k: i for i, (k, _, _) in enumerate(KINDS)}
_TYPE_KIND = {
    "Convolution": "conv", "Deconvolution": "conv", "Im2col": "conv",
    "Pooling": "pool", "SPP": "pool",
    "LRN": "norm", "BatchNorm": "norm", "MVN": "norm", "Scale": "norm", "Bias": "norm",
    "InnerProduct": "fc", "Embed": "fc",
    "Concat": "concat", "Eltwise": "concat", "Slice": "concat", "Split": "concat",
    "Softmax": "activation",
    "Accuracy": "loss",
}
_FONT = "Helvetica,Arial,sans-serif"


def layer_kind(layer) -> str:
    """The colour class of a layer: by type where the type says it, else by what its rule declares (a loss, a
    NeuronLayer), else a layer without bottoms is a data source; anything else is "other"."""
    kind = _TYPE_KIND.get(layer.type)
    if kind:
        return kind
    rule = layer.rule
    if rule is not None and rule.loss:
        return "loss"
    from .layers.neuron import Neuron
    if isinstance(rule, Neuron):
        return "activation"
    if not layer.bottoms:
        return "data"
    return "other"


# --------------------------------------------------------------------------------------------------------
# Escaping: everything that came from the prototxt goes through _esc into an HTML-like label.

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}


def _esc(text: str) -> str:
    """Text for an HTML-like label: markup characters as entities; control, format (bidi overrides,
    zero-width), private-use, unassigned and line/paragraph-separator characters as a visible \\uXXXX."""
    out = []
    for ch in text:
        if ch in _ENTITIES:
            out.append(_ENTITIES[ch])
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return "".join(out)


def shape_text(shape) -> str:
    return "×".join(map(str, shape)) if len(shape) else "scalar"


def _int(n: int) -> str:
    return f"{n:,}"


def _si(n: int) -> str:
    for div, unit in ((10**9, "G"), (10**6, "M"), (10**3, "K")):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


def _num(x: float) -> str:
    return f"{x:g}"


def _dims(values: tuple) -> str:
    """11 when every spatial axis agrees, else 3×5."""
    return str(values[0]) if len(set(values)) == 1 else "×".join(map(str, values))


# --------------------------------------------------------------------------------------------------------
# Hyper-parameters shown in a node (detail "params" and up)

def _hyper(layer, info) -> str:
    from .layers import ShapeFailure
    t = layer.type
    p = layer.param
    try:
        if t in ("Convolution", "Deconvolution") and info is not None:
            s = _spec("conv", layer, info)
            text = f"{s.num_output} out, k{_dims(s.kernel)} s{_dims(s.stride)} p{_dims(s.pad)}"
            if s.group != 1:
                text += f" g{s.group}"
            if any(d != 1 for d in s.dilation):
                text += f" d{_dims(s.dilation)}"
            return text
        if t == "Pooling" and info is not None:
            from .caffe_pb2 import PoolingParameter
            s = _spec("pool", layer, info)
            method = PoolingParameter.PoolMethod.Name(s.method)
            if s.global_pooling:
                return f"{method} global"
            return f"{method} k{_dims(s.kernel)} s{_dims(s.stride)} p{_dims(s.pad)}" + ("" if s.ceil else " floor")
    except ShapeFailure:  # reported through diagnostics; a net that analysed has none
        return ""
    if t == "InnerProduct":
        return f"{p.inner_product_param.num_output} out"
    if t == "LRN":
        from .caffe_pb2 import LRNParameter
        q = p.lrn_param
        region = "" if q.norm_region == LRNParameter.ACROSS_CHANNELS else ", within channel"
        return f"size {q.local_size}, α {_num(q.alpha)}, β {_num(q.beta)}{region}"
    if t == "Eltwise":
        from .caffe_pb2 import EltwiseParameter
        return EltwiseParameter.EltwiseOp.Name(p.eltwise_param.operation)
    if t == "Concat" and (p.concat_param.axis != 1 or p.concat_param.HasField("concat_dim")):
        q = p.concat_param
        return f"axis {q.concat_dim if q.HasField('concat_dim') else q.axis}"
    if t == "Dropout":
        return f"ratio {_num(p.dropout_param.dropout_ratio)}"
    if t == "Softmax" and p.softmax_param.axis != 1:
        return f"axis {p.softmax_param.axis}"
    return ""


def _spec(which: str, layer, info):
    """The resolved convolution/pooling geometry, from the same helpers the shape rules use."""
    from .layers import RuleContext
    from .layers.vision import conv_spec, pool_spec
    ctx = RuleContext(layer, Diagnostics())
    bottom = tuple(info.bottom_shapes[0])
    return conv_spec(ctx, bottom) if which == "conv" else pool_spec(ctx, bottom)


def _rf_text(info) -> str:
    if info is None or not info.rf:
        return ""
    rf = info.rf[next(t for t in info.layer.tops if t in info.rf)]
    return f"RF {_dims(tuple(rf.size))}/{_dims(tuple(rf.jump))}"


# --------------------------------------------------------------------------------------------------------
# The graph to draw

@dataclass
class _Node:
    id: str
    layers: list          # drawn (host) layers, in net order
    folded: dict          # host index -> layers folded into it
    module: str | None = None   # set for a collapsed module
    kind: str = "other"

    def members(self) -> list:
        return [m for h in self.layers for m in [h, *self.folded.get(h.index, [])]]


@dataclass
class _Edge:
    src: str
    dst: str
    blob: str
    shape: tuple | None
    producer: str         # the name of the layer that produced the blob


@dataclass
class _Drawing:
    nodes: list = field(default_factory=list)
    clusters: list = field(default_factory=list)   # (cluster id, module name, [node]) for collapse=None
    edges: list = field(default_factory=list)


def _fold(net, infos: dict):
    """In-place folding: (hosts in order, host index -> folded layers, reads), where a read is
    (writer host index, reader index, blob, shape) for every bottom of every host."""
    from .graph import AUTOMATIC
    writer: dict[str, int] = {}   # blob -> host index of its last writer
    shape_now: dict[str, tuple] = {}
    hosts: list = []
    folded: dict[int, list] = {}
    reads: list = []
    for layer in net.layers:
        info = infos.get(layer.index)
        b = layer.bottoms
        if (layer.tops and all(layer.in_place) and len(b) == len(layer.tops) and AUTOMATIC not in layer.tops
                and all(x in writer for x in b) and len({writer[x] for x in b}) == 1):
            folded.setdefault(writer[b[0]], []).append(layer)
        else:
            hosts.append(layer)
            for x in b:
                if x in writer:
                    reads.append((writer[x], layer.index, x, shape_now.get(x)))
            for t in layer.tops:
                if t != AUTOMATIC:
                    writer[t] = layer.index
        if info is not None:
            for t, s in zip(layer.tops, info.top_shapes):
                if t != AUTOMATIC:
                    shape_now[t] = tuple(s)
    return hosts, folded, reads


def _groups(hosts: list, collapse) -> list[str | None]:
    names = [h.name for h in hosts]
    if collapse is None or collapse == "modules":
        return module_names(names)
    prefixes = sorted(set(collapse), key=lambda p: (-len(p), p))
    return [next((p for p in prefixes if n.startswith(p)), None) for n in names]


def _check_collapse(collapse):
    if collapse is None or collapse == "modules":
        return collapse
    if isinstance(collapse, str) or not all(isinstance(p, str) for p in collapse):
        raise UsageError(f'collapse must be None, "modules" or a list of layer-name prefixes, not {collapse!r}')
    prefixes = list(collapse)
    if any(not p for p in prefixes):
        raise UsageError("an empty --collapse prefix would fold every layer: give the start of some layer names")
    return prefixes or None


def _build(analysis, collapse) -> _Drawing:
    net = analysis.net
    infos = {i.layer.index: i for i in analysis.layers}
    hosts, folded, reads = _fold(net, infos)
    groups = _groups(hosts, collapse)
    members: dict[str, list] = {}
    for h, g in zip(hosts, groups):
        if g is not None:
            members.setdefault(g, []).append(h)
    big = [g for g in members if len(members[g]) >= 2]  # in order of first member
    drawing = _Drawing()
    node_of: dict[int, _Node] = {}
    if collapse is not None:
        module_node = {}
        for k, g in enumerate(big):
            node = _Node(f"M{k}", members[g], folded, g)
            module_node[g] = node
        for h, g in zip(hosts, groups):
            node = module_node.get(g)
            if node is None:
                node = _Node(f"L{h.index}", [h], folded)
                drawing.nodes.append(node)
            elif node.layers[0] is h:
                drawing.nodes.append(node)
            node_of[h.index] = node
    else:
        cluster_nodes: dict[str, list] = {g: [] for g in big}
        for h, g in zip(hosts, groups):
            node = _Node(f"L{h.index}", [h], folded)
            node_of[h.index] = node
            drawing.nodes.append(node)
            if g in cluster_nodes:
                cluster_nodes[g].append(node)
        drawing.clusters = [(f"cluster_M{k}", g, cluster_nodes[g]) for k, g in enumerate(big)]
    for node in drawing.nodes:
        kinds = [layer_kind(h) for h in node.layers]
        node.kind = max(sorted(set(kinds), key=_ORDER.get), key=kinds.count)
    seen = set()
    for src, dst, blob, shape in reads:
        a, b = node_of[src].id, node_of[dst].id
        if a == b:
            continue
        if collapse is not None:
            if (a, b, blob) in seen:
                continue
            seen.add((a, b, blob))
        producer = net.layers[net.blobs[blob].producer].name if blob in net.blobs else ""
        drawing.edges.append(_Edge(a, b, blob, shape, producer))
    return drawing


# --------------------------------------------------------------------------------------------------------
# DOT text

def _small(text: str, colour: str | None = None) -> str:
    c = f' COLOR="{colour}"' if colour else ""
    return f'<FONT POINT-SIZE="9"{c}>{text}</FONT>'


def _layer_label(node: _Node, infos: dict, level: int) -> str:
    host = node.layers[0]
    info = infos.get(host.index)
    lines = [f"<B>{_esc(host.name or f'(unnamed #{host.index})')}</B>", _small(_esc(host.type))]
    if level >= 1:
        hyper = _hyper(host, info)
        if hyper:
            lines.append(_small(_esc(hyper)))
    for f in node.folded.get(host.index, []):
        extra = _hyper(f, infos.get(f.index)) if level >= 1 else ""
        text = f"+ {f.name or f'(unnamed #{f.index})'} ({f.type}{', ' + extra if extra else ''})"
        lines.append(_small(_esc(text), "#404040"))
    lines += _numbers(node, infos, level, info)
    return "<" + "<BR/>".join(lines) + ">"


def _numbers(node: _Node, infos: dict, level: int, rf_info) -> list[str]:
    out = []
    members = [infos[m.index] for m in node.members() if m.index in infos]
    if level >= 1:
        params = sum(i.params for i in members)
        if params:
            out.append(_small(f"params {_int(params)}"))
    if level >= 3:
        macs = sum(i.macs for i in members)
        if macs:
            out.append(_small(f"MACs {_si(macs)}"))
        rf = _rf_text(rf_info)
        if rf:
            out.append(_small(rf))
    return out


def _module_label(node: _Node, infos: dict, level: int) -> str:
    members = node.members()
    lines = [f"<B>{_esc(node.module)}</B>", _small(f"module, {len(members)} layers")]
    if level >= 1:
        counts: dict[str, int] = {}
        for m in members:
            counts[m.type] = counts.get(m.type, 0) + 1
        summary = ", ".join(t if n == 1 else f"{t} ×{n}" for t, n in counts.items())
        lines.append(_small(_esc(summary)))
    last_rf = next((infos[h.index] for h in reversed(node.layers) if h.index in infos and infos[h.index].rf), None)
    lines += _numbers(node, infos, level, last_rf)
    return "<" + "<BR/>".join(lines) + ">"


def _node_line(node: _Node, infos: dict, level: int, indent: str) -> str:
    ids = " ".join(f"L{m.index}" for m in node.members())
    if node.module is not None:
        label = _module_label(node, infos, level)
        extra = f', class="node-module {ids}", peripheries=2'
    else:
        label = _layer_label(node, infos, level)
        extra = f', class="node-layer {ids}"'
    return f'{indent}{node.id} [id="{node.id}"{extra}, fillcolor="{_COLOUR[node.kind]}", label={label}];'


def _edge_line(e: _Edge, level: int) -> str:
    lines = []
    if e.blob != e.producer:
        lines.append(_esc(e.blob))
    if level >= 2 and e.shape is not None:
        lines.append(shape_text(e.shape))
    label = f", label=<{'<BR/>'.join(lines)}>" if lines else ""
    return f"  {e.src} -> {e.dst} [class=\"blob\"{label}];"


def _legend(kinds: set, modules: bool, rankdir: str) -> list[str]:
    cells = [(text, colour, "") for k, text, colour in KINDS if k in kinds]
    if modules:
        cells.append(("module (double border)", "#ffffff", ""))
    vertical = rankdir in ("TB", "BT")
    if vertical:
        rows = "".join(f'<TR><TD BGCOLOR="{c}">{t}</TD></TR>' for t, c, _ in cells)
    else:
        rows = "<TR>" + "".join(f'<TD BGCOLOR="{c}">{t}</TD>' for t, c, _ in cells) + "</TR>"
    table = f'<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="2" CELLPADDING="3">{rows}</TABLE>>'
    return [
        "  subgraph cluster_legend {",
        '    graph [id="legend", label=<<B>legend</B>>, fontsize=10, style="rounded", color="#b0b0b0"];',
        f'    legend_kinds [id="legend_kinds", shape=plain, style="", fontsize=9, label={table}];',
        "  }",
    ]


def _title(analysis) -> str:
    net = analysis.net
    name = net.name or Path(net.source.name).stem or "net"
    state = net.phase_name + "".join(f" +{s}" for s in net.stages) + (f" level {net.level}" if net.level else "")
    lines = [f"<B>{_esc(name)}</B> ({_esc(state)})"]
    return "<" + "<BR/>".join(lines) + ">"


def to_dot(analysis, *, rankdir: str = "TB", detail: str = "shapes", collapse=None) -> str:
    """The DOT text of an analysed net (see the module docstring for what is drawn).  Deterministic: the same
    analysis gives byte-identical text."""
    if rankdir not in RANKDIRS:
        raise UsageError(f"rankdir must be one of {', '.join(RANKDIRS)}, not {rankdir!r}")
    if detail not in DETAILS:
        raise UsageError(f"detail must be one of {', '.join(DETAILS)}, not {detail!r}")
    collapse = _check_collapse(collapse)
    level = DETAILS.index(detail)
    infos = {i.layer.index: i for i in analysis.layers}
    d = _build(analysis, collapse)
    out = [
        "digraph netc {",
        f'  graph [rankdir={rankdir}, label={_title(analysis)}, labelloc=t, fontname="{_FONT}", fontsize=14, '
        'nodesep=0.25, ranksep=0.3];',
        f'  node [shape=box, style="rounded,filled", fontname="{_FONT}", fontsize=11, margin="0.12,0.04", '
        'penwidth=0.8];',
        f'  edge [fontname="{_FONT}", fontsize=8, color="#606060", arrowsize=0.6];',
    ]
    out += _legend({n.kind for n in d.nodes}, any(n.module for n in d.nodes), rankdir)
    in_cluster = {id(n): c for c in d.clusters for n in c[2]}
    done = set()
    for node in d.nodes:
        c = in_cluster.get(id(node))
        if c is None:
            out.append(_node_line(node, infos, level, "  "))
        elif c[0] not in done:
            done.add(c[0])
            out.append(f"  subgraph {c[0]} {{")
            out.append(f'    graph [label=<<B>{_esc(c[1])}</B>>, fontsize=10, style="rounded,dashed", '
                       'color="#909090", labeljust=l];')
            out += [_node_line(n, infos, level, "    ") for n in c[2]]
            out.append("  }")
    out += [_edge_line(e, level) for e in d.edges]
    out.append("}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------------------
# Rendering with Graphviz

def _render(exe: str, dot_text: str, fmt: str) -> bytes:
    try:
        done = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode("utf-8"), capture_output=True,
                              timeout=DOT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise NetcError(f"Graphviz's dot did not finish within {DOT_TIMEOUT_S} s",
                        hint="draw fewer nodes (--collapse-modules, --collapse PREFIX) or write a .dot file "
                             "and render it yourself") from None
    except OSError as e:
        raise NetcError(f"cannot run Graphviz's dot ({exe}): {e.strerror or e}") from None
    if done.returncode != 0:
        msg = done.stderr.decode("utf-8", "replace").strip()
        raise NetcError(f"Graphviz's dot failed (exit {done.returncode}): {msg or 'no message'}",
                        hint="write a .dot file to see the text it was given")
    return done.stdout


def to_svg(dot_text: str) -> str | None:
    """The SVG of a DOT text rendered by Graphviz's `dot`, or None where `dot` is not installed."""
    exe = shutil.which("dot")
    if exe is None:
        return None
    return _render(exe, dot_text, "svg").decode("utf-8")


def draw_to_file(dot_text: str, path: str | os.PathLike) -> int:
    """Write the diagram in the format the extension names (.dot, .svg, .png, .pdf); exit code.  Without
    Graphviz, the DOT text goes beside `path` (suffix .dot) and the exit code is 1."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".dot", ".gv"):
        write_atomic(path, dot_text)
        return 0
    fmt = FORMATS.get(suffix)
    if fmt is None:
        raise UsageError(f"draw: cannot tell the format of {str(path)!r} from its extension; "
                         "use .svg, .png, .pdf or .dot")
    exe = shutil.which("dot")
    if exe is None:
        beside = p.with_suffix(".dot")
        write_atomic(beside, dot_text)
        print(f"netc draw: Graphviz's `dot` program was not found, so {path} was not rendered; the DOT text is "
              f"in {beside}.\n  hint: {INSTALL_HINT}; then run: dot -T{fmt} {beside} -o {path}", file=sys.stderr)
        return 1
    data = _render(exe, dot_text, fmt)
    if fmt == "svg":
        write_atomic(path, data.decode("utf-8"))
    else:
        write_atomic(path, data)
    return 0
