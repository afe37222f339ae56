"""`netc report --format html`: one self-contained page with the per-layer table and the diagram.

    html = render_html(rep, svg, group_by_prefix=False)

The page makes no network request: CSS, script and the SVG are inline, so it works from file:// and offline.
Rows are rendered here, server-side, with every prototxt string HTML-escaped; the script only reorders, hides
and highlights existing elements and never builds markup from data.

The diagram contract (netc/draw.py): a layer's node is `<g id="L<layer index>">`; a collapsed module node is
`<g id="M<k>" class="node-module L3 L4 L5">`, its class listing the layers it stands for (a layer node's class
lists the in-place layers folded into it the same way).  A row carries the indices of the layers it shows
(`data-layers`), which is all the script needs to go from one to the other.
"""
from __future__ import annotations

import math
import re
from html import escape

from . import __version__
from .draw import INSTALL_HINT
from .errors import InternalError
from .reports import Report, _num

GRAPHVIZ_NOTE = ("The diagram needs Graphviz's <code>dot</code> program, which was not found when this report "
                 f"was written. To see it, {escape(INSTALL_HINT)}; then run the report again.")


def render_html(rep: Report, svg: str | None, group_by_prefix: bool = False) -> str:
    rows = rep.rows(group_by_prefix)
    members = _row_layers(rep, group_by_prefix)
    if len(members) != len(rows):
        raise InternalError(f"html: {len(rows)} report rows but {len(members)} layer groups; "
                            "reports._group and html._row_layers no longer fold layers alike")
    cols = _columns(rep)
    head = "".join(
        f'<th scope="col" class="{"num" if numeric else "text"}" data-first="{first}" aria-sort="none">'
        f'<button type="button">{escape(label)}</button></th>'
        for _, label, numeric, first in cols)
    body = "\n".join(_row(rep, i, r, m, cols) for i, (r, m) in enumerate(zip(rows, members)))
    total = _total_row(rep, cols)
    footer = "\n".join(_summary_item(line) for line in rep._footer())
    title = escape(rep._title())
    diagram = (f'<div id="diagram" class="pane diagram">{_inline_svg(svg)}</div>' if svg else
               f'<div id="diagram" class="pane diagram missing"><p class="note">{GRAPHVIZ_NOTE}</p></div>')
    unit = "modules and layers" if group_by_prefix else "layers"
    return _PAGE.format(
        title=title, subtitle=escape(_subtitle(rep)), head=head, body=body, total=total, footer=footer,
        diagram=diagram, count=len(rows), unit=unit, version=escape(__version__),
        fit_disabled="" if svg else " disabled", css=_CSS, js=_JS)


# -- table ----------------------------------------------------------------------------------------------------

def _columns(rep: Report) -> list[tuple[str, str, bool, str]]:
    """(key, header, numeric, first sort direction); numbers sort largest first, text A to Z."""
    out = [("index", "#", True, "asc")]
    for key, label in rep._columns():
        numeric = key in ("top", "params", "macs", "flops", "activations", "rf")
        out.append((key, label, numeric, "desc" if numeric else "asc"))
    return out


def _row(rep: Report, i: int, row: dict, layers: list[int], cols) -> str:
    cells = []
    for key, _, numeric, _ in cols:
        if key == "index":
            first = layers[0] if layers else i
            cells.append(f'<td class="num idx" data-v="{first}">{first}</td>')
        elif key == "name":
            cells.append(f'<th scope="row" class="name">{escape(row["name"])}</th>')
        elif numeric:
            v = _sort_value(row, key)
            cells.append(f'<td class="num" data-v="{v}">{escape(rep._cell(row, key))}</td>')
        else:
            cells.append(f"<td>{escape(rep._cell(row, key))}</td>")
    ids = " ".join(map(str, layers))
    return f'<tr data-order="{i}" data-layers="{ids}" tabindex="0">{"".join(cells)}</tr>'


def _total_row(rep: Report, cols) -> str:
    t = rep.totals()
    values = {"params": t["params"], "macs": t["macs"], "flops": 2 * t["macs"], "activations": t["activations"]}
    cells = []
    for key, _, _, _ in cols:
        if key == "name":
            cells.append('<th scope="row">TOTAL</th>')
        elif key in values:
            cells.append(f'<td class="num">{_num(values[key])}</td>')
        else:
            cells.append("<td></td>")
    return f'<tr class="total">{"".join(cells)}</tr>'


def _sort_value(row: dict, key: str) -> str:
    """The number a numeric column sorts by; empty when the cell has none (sorted last either way)."""
    if key == "flops":
        return str(2 * row["macs"])
    if key == "top":  # elements of the first top: "50x96x55x55, 50" -> 14520000, "scalar" -> 1
        first = row["top"].split(",")[0].strip()
        if first == "scalar":
            return "1"
        dims = first.split("x")
        return str(math.prod(int(d) for d in dims)) if first and all(d.isdigit() for d in dims) else ""
    if key == "rf":  # "19/8" -> 19, "11x7/4" -> 77
        size = row["rf"].split("/")[0]
        dims = size.split("x")
        return str(math.prod(int(d) for d in dims)) if size and all(d.isdigit() for d in dims) else ""
    return str(row[key])


def _summary_item(line: str) -> str:
    """A footer line as a label and a value ("Params size (float32)", "232.56 MB"), to read at a glance."""
    label, sep, value = line.partition(": ")
    if not sep:
        return f"<li>{escape(line)}</li>"
    return f'<li><span class="k">{escape(label)}</span> <span class="v">{escape(value)}</span></li>'


def _row_layers(rep: Report, group_by_prefix: bool) -> list[list[int]]:
    """Layer indices behind each row of `rep.rows(group_by_prefix)`."""
    return [list(r["members"]) for r in rep.rows(group_by_prefix)]


def _subtitle(rep: Report) -> str:
    net = rep.net
    parts = [str(net.source.name)]
    batch = rep.analysis.batch
    if batch is None:  # the batch the inputs give: the common leading dim of the input layers' tops
        lead = {shape[0] for info in rep.analysis.layers if not info.layer.bottoms
                for shape in info.top_shapes if shape}
        batch = lead.pop() if len(lead) == 1 else None
    if batch is not None:
        parts.append(f"batch {batch}")
    parts.append(f"{len(rep.analysis.layers)} layers")
    parts.append(rep.dtype)
    return " \u00b7 ".join(parts)


# -- diagram ----------------------------------------------------------------------------------------------------

_SVG_START = re.compile(r"<svg\b", re.I)
# Graphviz never writes these; they are dropped so that an SVG from elsewhere cannot run code in the page.
_SVG_UNSAFE = re.compile(r"<(script|foreignObject)\b.*?</\1\s*>", re.I | re.S)
_SVG_UNSAFE_TAG = re.compile(r"<(?=/?(script|foreignObject)\b)", re.I)
_SVG_HANDLER = re.compile(r"\son[a-z]+\s*=\s*(\"[^\"]*\"|'[^']*')", re.I)


def _inline_svg(svg: str) -> str:
    """The <svg> element alone: the XML declaration, DOCTYPE and comments before it do not belong in HTML."""
    m = _SVG_START.search(svg)
    body = svg[m.start():] if m else ""
    body = _SVG_UNSAFE.sub("", body)
    body = _SVG_UNSAFE_TAG.sub("&lt;", body)
    body = _SVG_HANDLER.sub("", body)
    return body.strip()


# -- page -------------------------------------------------------------------------------------------------------

_CSS = """
:root { color-scheme: light; --ink: #1d232b; --muted: #5b6573; --line: #d9dee5; --head: #f3f5f8;
        --accent: #0b6bcb; --hl: #ffe3c7; --hl-ink: #e8590c; }
* { box-sizing: border-box; }
html, body { margin: 0; height: 100%; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); background: #fff; display: flex; flex-direction: column; }
header { padding: 12px 20px 10px; border-bottom: 1px solid var(--line); display: flex; flex-wrap: wrap;
         align-items: baseline; gap: 6px 18px; }
h1 { font-size: 20px; margin: 0; font-weight: 650; }
.subtitle { color: var(--muted); }
.tools { margin-left: auto; display: flex; gap: 10px; align-items: center; }
.tools input { font: inherit; padding: 5px 9px; border: 1px solid var(--line); border-radius: 6px; width: 18em; }
.tools input:focus { outline: 2px solid var(--accent); outline-offset: -1px; }
.count { color: var(--muted); font-size: 13px; white-space: nowrap; }
main { flex: 1; min-height: 0; display: grid; grid-template-columns: minmax(0, max-content) minmax(320px, 1fr); }
.pane { overflow: auto; min-height: 0; }
.tablepane { border-right: 1px solid var(--line); scroll-padding: 40px 0; }
table { border-collapse: separate; border-spacing: 0; width: 100%; font-variant-numeric: tabular-nums; }
thead th { position: sticky; top: 0; background: var(--head); z-index: 1; border-bottom: 1px solid var(--line);
           padding: 0; text-align: left; white-space: nowrap; }
thead th.num { text-align: right; }
thead button { all: unset; cursor: pointer; display: block; padding: 7px 10px; font-weight: 600; }
thead button:hover { color: var(--accent); }
thead button:focus-visible { outline: 2px solid var(--accent); outline-offset: -2px; }
thead th button::after { content: ""; display: inline-block; width: 1em; color: var(--accent); }
thead th[aria-sort="ascending"] button::after { content: " \\25B2"; }
thead th[aria-sort="descending"] button::after { content: " \\25BC"; }
td, tbody th, tfoot th { padding: 4px 10px; border-bottom: 1px solid #eef1f4; white-space: nowrap;
                         text-align: left; font-weight: normal; }
td.num { text-align: right; }
td.idx { color: var(--muted); }
tbody tr { cursor: pointer; }
tbody tr:hover { background: #f5f9ff; }
tbody tr:focus-visible { outline: 2px solid var(--accent); outline-offset: -2px; }
tbody tr.hl, tbody tr.hl:hover { background: var(--hl); }
tbody tr.hl th { font-weight: 650; }
tfoot td, tfoot th { font-weight: 650; background: var(--head); border-top: 1px solid var(--line);
                     position: sticky; bottom: 0; }
.empty { padding: 12px 10px; color: var(--muted); }
.memory { list-style: none; margin: 0; padding: 7px 20px; display: flex; flex-wrap: wrap; gap: 4px 26px;
          border-bottom: 1px solid var(--line); background: #fafbfc; font-size: 13px; }
.memory .k { color: var(--muted); }
.memory .v { font-weight: 600; font-variant-numeric: tabular-nums; }
.diagram { position: relative; background: #fcfcfd; }
.diagram svg { display: block; margin: 12px auto; }
.diagram.fit svg { width: 100%; height: calc(100% - 24px); margin: 12px 0; }
.diagram g.node[id^="L"], .diagram g.node-module { cursor: pointer; }
.diagram g.hl { filter: drop-shadow(0 0 5px rgba(232, 89, 12, .75)); }
.diagram g.hl polygon, .diagram g.hl ellipse, .diagram g.hl path, .diagram g.hl rect {
  stroke: var(--hl-ink); stroke-width: 3.5px; }
.note { margin: 24px; padding: 14px 16px; border: 1px solid #e8c36a; background: #fff8e1; border-radius: 6px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
button.fit { font: inherit; font-size: 13px; padding: 4px 10px; border: 1px solid var(--line);
             border-radius: 6px; background: #fff; cursor: pointer; }
button.fit:disabled { cursor: default; opacity: .5; }
footer { color: var(--muted); font-size: 12px; padding: 4px 20px 6px; border-top: 1px solid var(--line); }
@media (max-width: 900px) {
  body { height: auto; }
  main { display: block; }
  .pane { overflow: visible; }
  .tablepane { border-right: 0; }
  .diagram { overflow: auto; border-top: 1px solid var(--line); }
}
"""

# Plain ES2017, no libraries.  Sorting is stable (ties keep the net's order); empty cells sort last.
_JS = r"""
(function () {
  "use strict";
  var table = document.getElementById("layers");
  var tbody = table.tBodies[0];
  var rows = Array.prototype.slice.call(tbody.rows);
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var filter = document.getElementById("filter");
  var count = document.getElementById("count");
  var empty = document.getElementById("empty");
  var pane = document.getElementById("diagram");
  var svg = pane.querySelector("svg");
  var sortCol = -1, sortDir = 1;

  function cellKey(row, col) {
    var cell = row.cells[col];
    return cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent.trim();
  }

  function sortBy(col) {
    var numeric = heads[col].classList.contains("num");
    if (sortCol === col) { sortDir = -sortDir; }
    else { sortCol = col; sortDir = heads[col].getAttribute("data-first") === "desc" ? -1 : 1; }
    var sorted = rows.slice().sort(function (a, b) {
      var x = cellKey(a, col), y = cellKey(b, col);
      if (x === "" || y === "") {
        if (x !== y) { return x === "" ? 1 : -1; }
      } else {
        var d = numeric ? Number(x) - Number(y)
                        : x.localeCompare(y, undefined, { numeric: true, sensitivity: "base" });
        if (d !== 0) { return d * sortDir; }
      }
      return Number(a.getAttribute("data-order")) - Number(b.getAttribute("data-order"));
    });
    sorted.forEach(function (r) { tbody.appendChild(r); });
    heads.forEach(function (th, i) {
      th.setAttribute("aria-sort", i !== col ? "none" : sortDir > 0 ? "ascending" : "descending");
    });
  }

  function applyFilter() {
    var q = filter.value.trim().toLowerCase(), shown = 0;
    rows.forEach(function (r) {
      var name = r.cells[1].textContent.toLowerCase(), type = r.cells[2].textContent.toLowerCase();
      var hit = q === "" || name.indexOf(q) >= 0 || type.indexOf(q) >= 0;
      r.hidden = !hit;
      if (hit) { shown += 1; }
    });
    count.textContent = q === "" ? rows.length + " " + count.getAttribute("data-unit")
                                 : shown + " of " + rows.length + " " + count.getAttribute("data-unit");
    empty.hidden = shown !== 0;
  }

  function layersOf(row) {
    var ids = row.getAttribute("data-layers");
    return ids ? ids.split(" ") : [];
  }

  function nodeFor(index) {
    if (!svg) { return null; }
    return svg.querySelector("g#L" + index) || svg.querySelector("g.L" + index);
  }

  function layersOfNode(g) {
    // Its own layer first, then the layers it stands for (folded in-place layers, a module's members).
    var ids = /^L\d+$/.test(g.id) ? [g.id] : [];
    Array.prototype.forEach.call(g.classList, function (c) {
      if (/^L\d+$/.test(c) && ids.indexOf(c) < 0) { ids.push(c); }
    });
    return ids.map(function (c) { return c.slice(1); });
  }

  function rowFor(ids) {
    for (var k = 0; k < ids.length; k++) {
      var row = rows.find(function (r) { return layersOf(r).indexOf(ids[k]) >= 0; });
      if (row) { return row; }
    }
    return null;
  }

  function clear() {
    document.querySelectorAll(".hl").forEach(function (el) { el.classList.remove("hl"); });
  }

  function reveal(el, container) {
    // Scroll only `container`, so that the page itself does not jump.
    var r = el.getBoundingClientRect(), c = container.getBoundingClientRect();
    container.scrollBy({
      top: r.top - c.top - (c.height - r.height) / 2,
      left: r.left - c.left - (c.width - r.width) / 2,
      behavior: "smooth"
    });
  }

  function selectRow(row, fromNode) {
    clear();
    row.classList.add("hl");
    var first = null;
    layersOf(row).forEach(function (i) {
      var g = nodeFor(i);
      if (g) { g.classList.add("hl"); first = first || g; }
    });
    if (fromNode) {
      if (row.hidden) { filter.value = ""; applyFilter(); }
      reveal(row, row.closest(".pane"));
      row.focus({ preventScroll: true });
    } else if (first) {
      reveal(first, pane);
    }
  }

  heads.forEach(function (th, i) {
    th.querySelector("button").addEventListener("click", function () { sortBy(i); });
  });
  filter.addEventListener("input", applyFilter);
  tbody.addEventListener("click", function (e) {
    var row = e.target.closest("tr");
    if (row) { selectRow(row, false); }
  });
  tbody.addEventListener("keydown", function (e) {
    var row = e.target.closest("tr");
    if (row && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); selectRow(row, false); }
  });
  if (svg) {
    svg.addEventListener("click", function (e) {
      var g = e.target.closest("g.node, g.node-module");
      if (!g) { return; }
      var row = rowFor(layersOfNode(g));
      if (row) { selectRow(row, true); }
    });
  }
  var fit = document.getElementById("fit");
  fit.addEventListener("click", function () {
    var on = pane.classList.toggle("fit");
    fit.textContent = on ? "Actual size" : "Fit diagram";
  });
  applyFilter();
  document.documentElement.setAttribute("data-ready", "1");
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="netc {version}">
<title>{title} \u2014 netc report</title>
<style>{css}</style>
</head>
<body>
<header>
<h1>{title}</h1>
<span class="subtitle">{subtitle}</span>
<div class="tools">
<input id="filter" type="search" placeholder="Filter by name or type" aria-label="Filter layers by name or type"
 autocomplete="off">
<span id="count" class="count" data-unit="{unit}">{count} {unit}</span>
<button id="fit" type="button" class="fit"{fit_disabled}>Fit diagram</button>
</div>
</header>
<ul class="memory" aria-label="Totals and memory">
{footer}
</ul>
<main>
<section class="pane tablepane" aria-label="Layers">
<table id="layers">
<thead><tr>{head}</tr></thead>
<tbody>
{body}
</tbody>
<tfoot>{total}</tfoot>
</table>
<p id="empty" class="empty" hidden>No layer matches the filter.</p>
</section>
{diagram}
</main>
<footer>Written by netc {version}. Click a column header to sort, a row to find its node, a node to find its row.</footer>
<script>{js}</script>
</body>
</html>
"""
