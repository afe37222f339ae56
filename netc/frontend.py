"""The front door of the pipeline: a file or a text -> bound (and upgraded) caffe_pb2 messages.

    read_source     path -> Source (one-line errors for missing, directory, binary, non-UTF-8, huge files)
    parse_prototxt  text or path -> NetParameter / SolverParameter exactly as written (no upgrade)
    load_net_param  path -> current-format NetParameter, upgraded, with the layers' tree nodes for spans
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from . import caffe_pb2
from .bind import Located, bind
from .errors import Diagnostic, Diagnostics, InputError, Source, Span, UpgradeError
from .files import read_error
from .syntax import Document, parse

# A prototxt this large is not a hand-written net (the largest zoo nets are ~200 KB); parsing it would take
# tens of seconds.  Binary weights belong in a .caffemodel.
MAX_BYTES = 32 * 1024 * 1024

KINDS = {"net": caffe_pb2.NetParameter, "solver": caffe_pb2.SolverParameter}


def read_source(path: str | os.PathLike) -> Source:
    """Read a prototxt file as UTF-8 text, with a one-line error for anything that is not one."""
    name = str(path)
    p = Path(path)

    def fail(msg: str, hint: str | None = None) -> InputError:
        return InputError([Diagnostic("error", msg, None, hint, source_name=name)])

    try:
        if p.is_dir():
            raise fail("is a directory, not a prototxt file")
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise fail(f"file is too large for a prototxt ({size / 2**20:.1f} MiB; netc reads at most "
                       f"{MAX_BYTES // 2**20} MiB)", "weights belong in a binary .caffemodel, not in the net text")
        data = p.read_bytes()
    except InputError:
        raise
    except OSError as e:
        raise fail(read_error(e)) from None
    return source_from_bytes(name, data)


def source_from_bytes(name: str, data: bytes) -> Source:
    def fail(msg: str, hint: str | None = None) -> InputError:
        return InputError([Diagnostic("error", msg, None, hint, source_name=name)])

    if len(data) > MAX_BYTES:
        raise fail(f"text is too large for a prototxt ({len(data) / 2**20:.1f} MiB)")
    nul = data.find(b"\0")
    if nul >= 0:
        hint = "a .caffemodel is binary: read it with netc.caffemodel.read_caffemodel"
        raise fail(f"binary data, not a text prototxt (NUL byte at offset {nul})", hint)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise fail(f"not UTF-8 text (invalid byte 0x{data[e.start]:02x} on line {line})",
                   "save the file as UTF-8") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return Source(name, text)


def _as_source(text_or_path, name: str | None = None) -> Source:
    if isinstance(text_or_path, Source):
        return text_or_path
    if isinstance(text_or_path, os.PathLike):
        return read_source(text_or_path)
    if isinstance(text_or_path, bytes):
        return source_from_bytes(name or "<bytes>", text_or_path)
    if isinstance(text_or_path, str):
        # One line without braces is a path if it names a file or ends like a prototxt's name (a missing
        # file then says "no such file", not a syntax error); anything else is prototxt text.
        one_line = "\n" not in text_or_path and "{" not in text_or_path
        if one_line and (os.path.isfile(text_or_path) or text_or_path.endswith((".prototxt", ".pbtxt"))):
            return read_source(text_or_path)
        return Source(name or "<text>", text_or_path)
    raise TypeError(f"expected prototxt text, bytes or a path, not {type(text_or_path).__name__}")


def parse_located(text_or_path, kind: str = "net", *, strict: bool = False, name: str | None = None,
                  diags: Diagnostics | None = None, doc: Document | None = None) -> Located:
    """Parse and bind, keeping the tree for spans (`doc`: a tree already parsed). Raises ParseError /
    SchemaError."""
    if kind not in KINDS:
        raise ValueError(f'kind must be "net" or "solver", not {kind!r}')
    if doc is None:
        doc = parse(_as_source(text_or_path, name))
    return bind(doc, KINDS[kind], diags, strict=strict)


def parse_prototxt(text_or_path, kind: str = "net", *, strict: bool = False):
    """Parse a prototxt (text, bytes or a path) into a `caffe_pb2.NetParameter` or `SolverParameter`.

    The message is exactly what the text says (legacy formats are not upgraded here; `load_net` does that).
    Raises `netc.errors.NetcError` (ParseError, SchemaError, InputError) with located diagnostics.
    With `strict=False` the fork field `pooling_param { ceil_mode }` is accepted and mapped, with a warning
    that is lost here; use `load_net` or the CLI to see it.
    """
    return parse_located(text_or_path, kind, strict=strict).message


@dataclass
class NetSource:
    """A net after parse, bind and upgrade: the message, each layer's Located, and what was said."""

    param: caffe_pb2.NetParameter
    layers: list[Located]
    source: Source
    diagnostics: list[Diagnostic] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)


class _UpgradeReport:
    """Turns the upgrade's reports into located diagnostics."""

    def __init__(self, root: Located, diags: Diagnostics) -> None:
        self.root = root
        self.diags = diags
        self.steps: list[str] = []
        msg = root.message
        self.key = "layers" if msg.DESCRIPTOR.name == "NetParameter" and len(msg.layers) else "layer"
        self._nodes: list | None = None

    def _span(self, layer: int | None, fld: str | None, step: str | None = None) -> Span | None:
        if layer is None:
            if fld:
                return self.root.field_span(fld)
            # A whole-file step points at the first field it concerns.
            for name in (("input", "input_dim", "input_shape") if step == "input fields" else ()) + \
                    (self.key, "solver_type"):
                if self.root.has_field_text(name):
                    return self.root.field_span(name)
            return None
        if self._nodes is None:
            self._nodes = [v for _, v in self.root._occurrences(self.key)]
        if layer >= len(self._nodes):
            return None
        loc = Located(None, self._nodes[layer], self.root.source)
        if fld:
            return loc.field_span(fld)
        return loc.field_span("name") if loc.has_field_text("name") else loc.span()

    def warn(self, step: str, message: str, layer: int | None = None) -> None:
        self.steps.append(step)
        self.diags.warning(f"upgrade ({step}): {message}", self._span(layer, None, step))

    def error(self, message: str, layer: int | None = None, field: str | None = None) -> None:
        self.diags.error(message, self._span(layer, field))


def load_net_param(text_or_path, *, strict: bool = False, diags: Diagnostics | None = None,
                   name: str | None = None, doc: Document | None = None) -> NetSource:
    """Parse, bind and upgrade a net (`doc`: a tree already parsed). Raises NetcError subclasses; warnings
    are in `.diagnostics`."""
    from .upgrade import upgrade_net

    diags = diags if diags is not None else Diagnostics()
    root = parse_located(text_or_path, "net", strict=strict, name=name, diags=diags, doc=doc)
    report = _UpgradeReport(root, diags)
    key = report.key
    origin = upgrade_net(root.message, report)
    if diags.errors:
        raise UpgradeError(diags.items)
    net = root.message
    nodes = [v for _, v in root._occurrences(key)]  # the source blocks, once (per-layer lookups were O(n^2))
    layers: list[Located] = []
    for i, o in enumerate(origin):
        if o is None:
            node_span = root.field_span("input") if root.has_field_text("input") else None
            layers.append(Located(net.layer[i], None, root.source, node_span))
        else:
            node = nodes[o] if o < len(nodes) else None
            src = Located(None, node, root.source)
            layers.append(Located(net.layer[i], node, root.source, src.span()))
    return NetSource(net, layers, root.source, list(diags.items), report.steps)
