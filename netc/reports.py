"""Reports over an analysed net: a table (text, Markdown, CSV), stable JSON, a per-module summary, and a
side-by-side comparison with published per-layer numbers.

    rep = netc.report(net, batch=1)
    print(rep.to_table())
    json.dumps(rep.to_json())

JSON (stable; documented in the README):
    {"net", "phase", "batch",
     "layers": [{"name", "type", "bottoms", "tops", "top_shapes": {blob: [dims]}, "param_shapes": [[dims], ...],
                 "params", "state", "macs", "other_ops", "activations",
                 "rf": {blob: {"size": [h, w], "jump": [h, w], "start": [h, w]}}}],
     "totals": {"params", "state", "macs", "other_ops", "activations",
                "memory_bytes": {"params", "inference", "training"}}}
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from typing import Sequence

from .analysis import Analysis, LayerInfo, analyze
from .errors import Diagnostic, InputError
from .graph import Net
from .perf import gc_paused


def shape_text(shape) -> str:
    return "x".join(map(str, shape)) if shape else "scalar"


def _num(n: int | float) -> str:
    return f"{n:,}" if isinstance(n, int) else f"{n:,.1f}"


def _rf_text(info: LayerInfo) -> str:
    if not info.rf:
        return ""
    rf = next(iter(info.rf.values()))
    size = rf.size[0] if rf.size[0] == rf.size[-1] else "x".join(map(str, rf.size))
    jump = rf.jump[0] if rf.jump[0] == rf.jump[-1] else "x".join(map(str, rf.jump))
    return f"{size}/{jump}"


@dataclass
class Report:
    analysis: Analysis
    dtype: str = "float32"
    solver_type: str = "SGD"
    flops: bool = False

    @property
    def net(self) -> Net:
        return self.analysis.net

    def memory(self) -> dict:
        return self.analysis.memory(self.dtype, self.solver_type)

    # -- rows ---------------------------------------------------------------------------------------------
    def rows(self, group_by_prefix: bool = False) -> list[dict]:
        rows = []
        for info in self.analysis.layers:
            layer = info.layer
            rows.append({
                "name": layer.name, "type": layer.type,
                "top": ", ".join(shape_text(s) for s in info.top_shapes),
                "params": info.params, "state": info.state, "macs": info.macs, "other_ops": info.other_ops,
                "activations": info.activations, "rf": _rf_text(info), "members": [layer.index],
            })
        if group_by_prefix:
            rows = _group(rows)
        return rows

    def _columns(self) -> list[tuple[str, str]]:
        work = ("flops", "FLOPs") if self.flops else ("macs", "MACs")
        return [("name", "layer"), ("type", "type"), ("top", "top shape"), ("params", "params"), work,
                ("activations", "activations"), ("rf", "RF size/jump")]

    def _cell(self, row: dict, key: str) -> str:
        if key == "flops":
            return _num(2 * row["macs"])
        v = row[key]
        return _num(v) if isinstance(v, int) else str(v)

    def totals(self) -> dict:
        a = self.analysis
        return {"params": a.params, "state": a.state, "macs": a.macs, "other_ops": a.other_ops,
                "activations": a.activations, "memory_bytes": self.memory()}

    # -- formats --------------------------------------------------------------------------------------------
    def to_table(self, group_by_prefix: bool = False) -> str:
        cols = self._columns()
        rows = self.rows(group_by_prefix)
        body = [[self._cell(r, k) for k, _ in cols] for r in rows]
        t = self.totals()
        total = ["TOTAL", "", "", _num(t["params"]), _num(2 * t["macs"] if self.flops else t["macs"]),
                 _num(t["activations"]), ""]
        head = [h for _, h in cols]
        widths = [max(len(x) for x in col) for col in zip(head, *body, total)]
        numeric = {3, 4, 5}

        def line(cells):
            return "  ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        rule = "-" * len(line(head))
        out = [self._title(), rule, line(head), rule, *map(line, body), rule, line(total), rule]
        out.extend(self._footer())
        return "\n".join(out) + "\n"

    def _title(self) -> str:
        net = self.net
        batch = f", batch {self.analysis.batch}" if self.analysis.batch else ""
        return f"{net.name or net.source.name} ({net.phase_name}{batch})"

    def _footer(self) -> list[str]:
        t = self.totals()
        m = t["memory_bytes"]
        mb = lambda b: f"{b / 2**20:,.2f} MB"  # noqa: E731
        work = f"Total FLOPs: {_num(2 * t['macs'])}" if self.flops else f"Total MACs: {_num(t['macs'])}"
        return [
            f"Learnable params: {_num(t['params'])}" + (f"  (+ {_num(t['state'])} BatchNorm statistics)" if t["state"] else ""),
            work + f"  (other ops: {_num(t['other_ops'])})",
            f"Activations: {_num(t['activations'])} elements",
            f"Params size ({self.dtype}): {mb(m['params'])}",
            f"Inference memory (peak, {self.dtype}): {mb(m['inference'])}",
            f"Training memory ({self.solver_type}, {self.dtype}): {mb(m['training'])}",
        ]

    def to_markdown(self, group_by_prefix: bool = False) -> str:
        cols = self._columns()
        rows = self.rows(group_by_prefix)
        right = {"params", "macs", "flops", "activations"}
        out = [f"**{self._title()}**", "",
               "| " + " | ".join(h for _, h in cols) + " |",
               "|" + "|".join("---:" if k in right else "---" for k, _ in cols) + "|"]
        for r in rows:
            out.append("| " + " | ".join(self._cell(r, k).replace("|", "\\|") for k, _ in cols) + " |")
        t = self.totals()
        out.append(f"| **TOTAL** | | | **{_num(t['params'])}** | **{_num(2 * t['macs'] if self.flops else t['macs'])}** "
                   f"| **{_num(t['activations'])}** | |")
        out.append("")
        out.extend(f"- {l}" for l in self._footer())
        return "\n".join(out) + "\n"

    def to_csv(self, group_by_prefix: bool = False) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        keys = ["name", "type", "top", "params", "state", "macs", "other_ops", "activations", "rf"]
        w.writerow(keys)
        for r in self.rows(group_by_prefix):
            w.writerow([r[k] for k in keys])
        t = self.totals()
        w.writerow(["TOTAL", "", "", t["params"], t["state"], t["macs"], t["other_ops"], t["activations"], ""])
        return buf.getvalue()

    def to_json(self) -> dict:
        with gc_paused():
            return self._json()

    def _json(self) -> dict:
        layers = []
        for info in self.analysis.layers:
            layer = info.layer
            layers.append({
                "name": layer.name, "type": layer.type, "bottoms": list(layer.bottoms), "tops": list(layer.tops),
                "top_shapes": {t: list(s) for t, s in zip(layer.tops, info.top_shapes)},
                "param_shapes": [list(b) for b in info.blob_shapes],
                "params": info.params, "state": info.state, "macs": info.macs, "other_ops": info.other_ops,
                "activations": info.activations,
                "rf": {t: rf.to_json() for t, rf in info.rf.items()},
            })
        return {"net": self.net.name, "phase": self.net.phase_name, "batch": self.analysis.batch,
                "layers": layers, "totals": self.totals()}

    def to_json_text(self) -> str:
        return json.dumps(self.to_json(), indent=1) + "\n"


def module_names(names: Sequence[str]) -> list[str | None]:
    """The module of each layer name, None for none: the text before the first "/" (inception_3a/1x1 ->
    inception_3a), else before "_branch" (res2a_branch2a -> res2a); a name equal to such a module or
    continuing it with "_" joins it (res2a, res2a_relu).  The table (--group-by-prefix) and the diagram
    (--collapse-modules) fold by this one rule."""
    def explicit(name: str) -> str | None:
        for sep in ("/", "_branch"):
            head, found, _ = name.partition(sep)
            if found and head:
                return head
        return None

    first = [explicit(n) for n in names]
    known = {m for m in first if m}
    out: list[str | None] = []
    for name, mod in zip(names, first):
        if mod is None:
            # The longest module that the name equals or continues with "_" (each of its "_" cuts, once).
            cuts = [i for i, c in enumerate(name) if c == "_"]
            mod = name if name in known else next((name[:i] for i in reversed(cuts) if name[:i] in known), None)
        out.append(mod)
    return out



def _group(rows: list[dict]) -> list[dict]:
    """Fold the layers of a module (module_names) into one row, at the module's first layer; a module of one
    layer keeps that layer's own row."""
    out: list[dict] = []
    index: dict[str, dict] = {}
    firsts: dict[str, dict] = {}
    for r, prefix in zip(rows, module_names([r["name"] for r in rows])):
        if prefix is None:
            out.append(r)
            continue
        g = index.get(prefix)
        if g is None:
            g = index[prefix] = {"name": prefix + "/*", "type": "module", "top": r["top"], "params": 0, "state": 0,
                                 "macs": 0, "other_ops": 0, "activations": 0, "rf": "", "layers": 0,
                                 "members": []}
            firsts[prefix] = r
            out.append(g)
        g["members"].extend(r["members"])
        g["layers"] += 1
        g["type"] = f"{g['layers']} layers"
        g["top"] = r["top"]  # the module's last layer
        for k in ("params", "state", "macs", "other_ops", "activations"):
            g[k] += r[k]
        g["rf"] = r["rf"] or g["rf"]
    groups = {id(g): p for p, g in index.items()}
    return [firsts[groups[id(r)]] if id(r) in groups and r["layers"] == 1 else r for r in out]


def report(net: Net | str, batch: int | None = None, inputs: dict | None = None, phase: str = "TEST",
           stages: Sequence[str] = (), level: int | None = None, strict: bool = False, dtype: str = "float32",
           solver_type: str = "SGD", flops: bool = False) -> Report:
    """Analyse a net (a Net, or a path loaded in `phase`/`stages`/`level`) and return its Report.  `inputs`
    gives the shapes of data or input tops (like --input; a layer type from a Caffe fork whose tops are all
    given is kept as an opaque layer).  This is what `netc report` runs."""
    with gc_paused():
        if not isinstance(net, Net):
            from .graph import load_net
            net = load_net(net, phase, stages, level, strict=strict, shaped=inputs or ())
        return Report(analyze(net, inputs, batch), dtype, solver_type, flops)


# --------------------------------------------------------------------------------------------------------
# Published numbers side by side

def compare_published(analysis: Analysis, text: str, name: str = "<csv>") -> tuple[str, int]:
    """Compare a CSV of published per-layer numbers with the analysis (batch 1 gives per-image numbers).

    Columns: `layer`, then any `params*` columns (learnable parameters) and `feature_map*` columns (elements
    of the layer's output); empty cells are skipped.  A row named `input` is the net's input blob, a row named
    `SUM` (or TOTAL) is checked against its column.  Each disagreement is explained with the arithmetic
    behind both numbers.  Returns (text, number of disagreements)."""
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or "layer" not in rows[0]:
        raise InputError([Diagnostic("error", "the published CSV needs a 'layer' column (then params* and "
                                     "feature_map* columns)", source_name=name)])
    cols = [c for c in rows[0] if c != "layer" and (c.startswith("params") or c.startswith("feature_map"))]
    by_name = {i.layer.name: i for i in analysis.layers}
    lines: list[str] = []
    problems = 0
    table: list[tuple[str, str, str, str, str]] = []
    for col in cols:
        is_params = col.startswith("params")
        seen_rows: list[tuple[str, int, int | None]] = []  # (layer, published, computed)
        for r in rows:
            cell = (r.get(col) or "").replace(",", "").strip()
            if not cell:
                continue
            try:
                published = int(float(cell))
            except ValueError:
                raise InputError([Diagnostic("error", f"line {rows.index(r) + 2}, column {col}: {cell!r} is not a "
                                             "number", source_name=name, hint="leave a cell empty when there is "
                                             "no published number")]) from None
            name = r["layer"].strip()
            if name.upper() in ("SUM", "TOTAL"):
                verdict, note = _explain_sum(analysis, is_params, published, seen_rows)
                problems += verdict != "ok"
                table.append((name, col, _num(published), "", note))
                continue
            computed, arithmetic, info = _computed(analysis, by_name, name, is_params)
            seen_rows.append((name, published, computed))
            if computed is None:
                table.append((name, col, _num(published), "?", f"no layer named {name!r} in the net"))
                problems += 1
                continue
            if computed == published:
                table.append((name, col, _num(published), _num(computed), "ok"))
                continue
            problems += 1
            table.append((name, col, _num(published), _num(computed),
                          _explain(analysis, info, name, is_params, published, computed, arithmetic)))
    widths = [max(len(t[i]) for t in table + [("layer", "column", "published", "netc", "")]) for i in range(4)]
    head = ("layer", "column", "published", "netc", "")
    for t in [head] + table:
        lines.append(f"{t[0]:<{widths[0]}}  {t[1]:<{widths[1]}}  {t[2]:>{widths[2]}}  {t[3]:>{widths[3]}}  {t[4]}".rstrip())
    lines.append(f"{problems} disagreement{'s' if problems != 1 else ''}, each explained above")
    return "\n".join(lines) + "\n", problems


def _computed(analysis: Analysis, by_name: dict, name: str, is_params: bool):
    """(value, arithmetic, LayerInfo) for a published row."""
    if name.lower() in ("input", "data"):
        for info in analysis.layers:
            if info.layer.rule is not None and not info.layer.bottoms and info.top_shapes:
                shape = info.top_shapes[0]
                per_image = math.prod(shape[1:])
                return (None if is_params else per_image), "x".join(map(str, _chw(shape))), info
        return None, "", None
    info = by_name.get(name)
    if info is None:
        return None, "", None
    if is_params:
        parts = [("x".join(map(str, b)) if len(b) > 1 else str(b[0] if b else 1)) for b in info.blob_shapes]
        return info.params, " + ".join(parts), info
    shape = info.top_shapes[0]
    return math.prod(shape[1:]), "x".join(map(str, _chw(shape))), info


def _chw(shape) -> tuple:
    """C x H x W read as H x W x C, the way articles write feature maps."""
    if len(shape) == 4:
        return (shape[2], shape[3], shape[1])
    return tuple(shape[1:])


def _explain(analysis, info, name, is_params, published, computed, arithmetic) -> str:
    diff = published - computed
    if is_params:
        blobs = info.blob_shapes
        biases = blobs[1][0] if len(blobs) > 1 and len(blobs[1]) == 1 else None
        if biases and diff % biases == 0 and diff > 0:
            k = diff // biases
            return (f"published = {arithmetic} + {_num(diff)}: the {biases} biases counted {k + 1} times "
                    f"(once per tower), netc = {arithmetic} = {_num(computed)}")
        group = info.layer.param.convolution_param.group if info.layer.type == "Convolution" else 1
        if group > 1 and computed == published * group:
            return f"published counts one of the {group} towers: {_num(computed)} / {group}"
        return f"netc = {arithmetic} = {_num(computed)}"
    # feature maps
    chw = _chw(info.top_shapes[0])
    if len(chw) == 3:
        h, w, c = chw
        side = math.isqrt(published // c) if published % c == 0 else 0
        if side * side * c == published and h == w:
            return (f"published input {side}x{side}x{c} = {_num(published)}; the net's input is "
                    f"{h}x{w}x{c} = {_num(computed)}")
    g = _upstream_group(analysis, info)
    if g > 1 and computed == published * g:
        return f"published is one of {g} towers: {_num(computed)} / {g} = {_num(published)} (netc: {arithmetic})"
    return f"netc = {arithmetic} = {_num(computed)}"


def _upstream_group(analysis: Analysis, info: LayerInfo) -> int:
    """The group of the nearest grouped convolution feeding this layer (its towers)."""
    producers = {}
    for i in analysis.layers:
        for t in i.layer.tops:
            producers.setdefault(t, []).append(i)
    seen = set()
    frontier = [info]
    while frontier:
        cur = frontier.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        if cur.layer.type == "Convolution" and cur.layer.param.convolution_param.group > 1:
            return cur.layer.param.convolution_param.group
        for b in cur.layer.bottoms:
            for p in producers.get(b, []):
                if p.layer.index < cur.layer.index:
                    frontier.append(p)
    return 1


def _explain_sum(analysis, is_params, published, seen_rows) -> tuple[str, str]:
    column = sum(p for _, p, _ in seen_rows)
    mine = sum(c for _, _, c in seen_rows if c is not None)
    if is_params:
        total = analysis.params
        if published == column:
            return "ok", f"the sum of its column (the net's total is {_num(total)})"
        return "differs", (f"not the sum of its column, which is {_num(column)}"
                           + (" = the net's total" if column == total else f"; the net's total is {_num(total)}"))
    if published == column:
        off = [(n, p, c) for n, p, c in seen_rows if c is not None and c != p]
        if not off:
            return "ok", "the sum of its column, as the net gives it"
        detail = ", ".join(f"{n} {_num(p)} vs {_num(c)}" for n, p, c in off)
        return "differs", (f"the sum of its column as printed; the net's own sum is {_num(mine)}, "
                           f"{_num(mine - column)} more, exactly the rows that disagree ({detail})")
    return "differs", f"not the sum of its column ({_num(column)}); the net's rows sum to {_num(mine)}"
