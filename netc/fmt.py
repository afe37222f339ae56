"""Printing prototxt: `netc fmt` (a syntax tree, comments kept in place) and `netc upgrade` (messages).

The canonical form: two-space indentation, `name: value` for scalars, `name {` for messages (never `:` or
`< >`), no `,`/`;` separators, strings in double quotes, numbers and enum names as written, at most one blank
line where the source had blank lines.  A message written on one line with only scalars stays on one line
(`param { lr_mult: 1 decay_mult: 1 }`); everything else is one field per line.  Every `#` comment is kept:
on its own line before the field it preceded, or at the end of the line it ended.
"""
from __future__ import annotations

import math
import struct

from google.protobuf.descriptor import FieldDescriptor

from .bind import _Bad, _string_bytes, is_repeated
from .errors import Diagnostic, InputError, Source, Span
from .syntax import FIELD_LIST, FIELD_MESSAGE, Document, Message, Strings, comments

INDENT = "  "
ONE_LINE_MAX = 100


def quote(data: bytes | str) -> str:
    """A double-quoted literal: printable UTF-8 kept, quotes, backslashes and control bytes escaped."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    out = []
    if text is not None:
        for ch in text:
            if ch == '"':
                out.append('\\"')
            elif ch == "\\":
                out.append("\\\\")
            elif ch == "\n":
                out.append("\\n")
            elif ch == "\t":
                out.append("\\t")
            elif ch == "\r":
                out.append("\\r")
            elif ord(ch) < 0x20 or ord(ch) == 0x7F:
                out.append(f"\\{ord(ch):03o}")
            else:
                out.append(ch)
    else:
        for b in data:
            if b == 0x22:
                out.append('\\"')
            elif b == 0x5C:
                out.append("\\\\")
            elif 0x20 <= b < 0x7F:
                out.append(chr(b))
            else:
                out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


class _Printer:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.text = source.text
        self.comments = comments(self.text)
        self.ci = 0  # next comment to print
        self.lines: list[str] = []
        self.last_pos = 0  # offset of the end of the last thing printed from the source

    # -- comments and blank lines -----------------------------------------------------------------------
    def _line(self, pos: int) -> int:
        return self.source.line_col(pos)[0]

    def flush_comments(self, before: int, depth: int) -> None:
        """Print the comments that start before `before`: trailing ones on the previous line."""
        while self.ci < len(self.comments) and self.comments[self.ci][0] < before:
            pos, text = self.comments[self.ci]
            self.ci += 1
            if self.lines and self.last_pos and self._line(pos) == self._line(self.last_pos - 1) \
                    and not self.lines[-1].lstrip().startswith("#"):
                self.lines[-1] += "  " + text.rstrip()
            else:
                self.blank_line_before(pos)
                self.lines.append(INDENT * depth + text.rstrip())
            self.last_pos = pos + len(text)

    def blank_line_before(self, pos: int) -> None:
        """Keep one blank line where the source had at least one before `pos`."""
        if not self.lines or self.lines[-1] == "":
            return
        gap = self.text[self.last_pos:pos]
        if gap.count("\n") >= 2 and not gap.strip(" \t\r\n,;"):
            self.lines.append("")

    # -- values -----------------------------------------------------------------------------------------
    def scalar(self, v) -> str:
        if isinstance(v, Strings) or v[0] == "STRING":
            if not isinstance(v, Strings) and v[1][0] == '"':
                return v[1]
            try:
                return quote(_string_bytes(v))
            except _Bad:  # an invalid escape: keep the literal(s) as written, for the binder to report
                return " ".join(t[1] for t in (v.tokens if isinstance(v, Strings) else [v]))
        return v[1]

    def one_line(self, msg: Message, nested_ok: bool = True) -> str | None:
        """The message on one line, if it was written on one line without comments inside.  Inside a
        top-level block, nested messages written on the same line stay there (input_param { shape { dim: 1 } });
        a top-level block (layer { ... }) stays on one line only with scalars in it."""
        if self._line(msg.open) != self._line(msg.close):
            return None
        if not nested_ok and any(f[2] == FIELD_MESSAGE or (f[2] == FIELD_LIST and any(
                isinstance(e, Message) for e in f[3].elements)) for f in msg.fields):
            return None
        if self.ci < len(self.comments) and self.comments[self.ci][0] < msg.close:
            return None
        parts = []
        for f in msg.fields:
            if f[2] == FIELD_MESSAGE:
                inner = self.one_line(f[3])
                if inner is None:
                    return None
                parts.append(f"{f[0]} {inner}")
            elif f[2] == FIELD_LIST and any(isinstance(e, Message) for e in f[3].elements):
                if not all(isinstance(e, Message) for e in f[3].elements):
                    return None
                for e in f[3].elements:
                    inner = self.one_line(e)
                    if inner is None:
                        return None
                    parts.append(f"{f[0]} {inner}")
            else:
                parts.append(self.field_text(f))
        return "{ " + " ".join(parts) + " }" if parts else "{ }"

    def inline(self, msg: Message) -> str:
        """A message on one line whatever its layout (for the rare list that mixes messages and scalars)."""
        parts = []
        for f in msg.fields:
            if f[2] == FIELD_MESSAGE:
                parts.append(f"{f[0]} {self.inline(f[3])}")
            elif f[2] == FIELD_LIST:
                items = ", ".join(self.inline(e) if isinstance(e, Message) else self.scalar(e) for e in f[3].elements)
                parts.append(f"{f[0]}{':' if f[4] else ''} [{items}]")
            else:
                parts.append(self.field_text(f))
        return "{ " + " ".join(parts) + " }" if parts else "{ }"

    def field_text(self, f) -> str:
        if f[2] == FIELD_LIST:
            return f"{f[0]}: [" + ", ".join(self.scalar(e) for e in f[3].elements) + "]"
        return f"{f[0]}: {self.scalar(f[3])}"

    # -- fields -----------------------------------------------------------------------------------------
    def fields(self, fields: list, depth: int) -> None:
        for f in fields:
            self.flush_comments(f[1], depth)
            self.blank_line_before(f[1])
            name, kind, value = f[0], f[2], f[3]
            pad = INDENT * depth
            if kind == FIELD_MESSAGE:
                self.message(name, value, depth)
            elif kind == FIELD_LIST and all(isinstance(e, Message) for e in value.elements) and value.elements:
                for e in value.elements:
                    self.message(name, e, depth)
            elif kind == FIELD_LIST and any(isinstance(e, Message) for e in value.elements):
                # Messages and scalars in one list never bind (the binder reports it): keep the list as
                # written, on one line, so the text still means the same.
                items = ", ".join(self.inline(e) if isinstance(e, Message) else self.scalar(e) for e in value.elements)
                self.lines.append(f"{pad}{name}{':' if f[4] else ''} [{items}]")
            else:
                self.lines.append(pad + self.field_text(f))
            self.last_pos = f[5]

    def message(self, name: str, msg: Message, depth: int) -> None:
        pad = INDENT * depth
        single = self.one_line(msg, nested_ok=depth > 0)
        if single is not None and len(pad) + len(name) + 1 + len(single) <= ONE_LINE_MAX:
            self.lines.append(f"{pad}{name} {single}")
            self.last_pos = msg.close + 1
            return
        self.lines.append(f"{pad}{name} {{")
        self.last_pos = msg.open + 1
        self.fields(msg.fields, depth + 1)
        self.flush_comments(msg.close, depth + 1)
        self.lines.append(pad + "}")
        self.last_pos = msg.close + 1


MAX_DEPTH = 200  # Caffe's schema nests at most 6 deep; the printer recurses once per level


def check_depth(doc: Document) -> None:
    """A located error for messages nested deeper than MAX_DEPTH (the printer would exhaust the stack)."""
    stack = [(doc.fields, 0)]
    while stack:
        fields, depth = stack.pop()
        for f in fields:
            subs = [f[3]] if f[2] == FIELD_MESSAGE else \
                [e for e in f[3].elements if isinstance(e, Message)] if f[2] == FIELD_LIST else []
            for m in subs:
                if depth + 1 > MAX_DEPTH:
                    raise InputError([Diagnostic(
                        "error", f"messages nested more than {MAX_DEPTH} levels deep: netc fmt stops here",
                        Span(doc.source, m.open, m.open + 1), "no Caffe message nests more than 6 levels")])
                stack.append((m.fields, depth + 1))


def format_document(doc: Document) -> str:
    """The canonical text of a parsed file, comments kept.  Raises InputError past MAX_DEPTH levels."""
    check_depth(doc)
    p = _Printer(doc.source)
    p.fields(doc.fields, 0)
    p.flush_comments(len(doc.source.text) + 1, 0)
    while p.lines and p.lines[-1] == "":
        p.lines.pop()
    return "\n".join(p.lines) + "\n" if p.lines else ""


# --------------------------------------------------------------------------------------------------------
# Messages (the output of an upgrade), with comments carried over from the source

def float32_text(v: float) -> str:
    """The shortest decimal that reads back as the same float32 (what a person wrote: 0.1, not 0.100000001)."""
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    packed = struct.pack("<f", v)
    for digits in range(1, 10):
        text = f"{v:.{digits}g}"
        if struct.pack("<f", float(text)) == packed:
            break
    return _tidy_float(text)


def _tidy_float(text: str) -> str:
    if "e" in text:
        mant, exp = text.split("e")
        return f"{mant}e{int(exp)}"
    return text


def double_text(v: float) -> str:
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return _tidy_float(repr(v).replace(".0e", "e")) if "e" in repr(v) else repr(v).removesuffix(".0")


def scalar_text(fd: FieldDescriptor, v) -> str:
    t = fd.type
    if t == FieldDescriptor.TYPE_FLOAT:
        return float32_text(v)
    if t == FieldDescriptor.TYPE_DOUBLE:
        return double_text(v)
    if t == FieldDescriptor.TYPE_BOOL:
        return "true" if v else "false"
    if t == FieldDescriptor.TYPE_ENUM:
        ev = fd.enum_type.values_by_number.get(v)
        return ev.name if ev is not None else str(v)
    if t in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
        return quote(v)
    return str(v)


def message_lines(msg, depth: int = 0) -> list[str]:
    """A message in the canonical form, fields in field-number order (as Caffe prints them)."""
    lines: list[str] = []
    pad = INDENT * depth
    cut = len(pad) + len(INDENT)  # the indentation of the inner lines
    for fd, value in msg.ListFields():
        values = value if is_repeated(fd) else [value]
        for v in values:
            if fd.type == FieldDescriptor.TYPE_MESSAGE:
                # Formatted once, at its own depth: a message with only scalars (no "{" line) is the same at
                # every depth less the indentation, so the one-line test reads the lines without it.
                inner = message_lines(v, depth + 1)
                if inner and len(inner) <= 4 and all(":" in l and "{" not in l for l in inner):
                    flat = " ".join(l[cut:] for l in inner)
                    if len(pad) + len(fd.name) + len(flat) + 5 <= ONE_LINE_MAX:
                        lines.append(f"{pad}{fd.name} {{ {flat} }}")
                        continue
                lines.append(f"{pad}{fd.name} {{")
                lines.extend(inner)
                lines.append(pad + "}")
            else:
                lines.append(f"{pad}{fd.name}: {scalar_text(fd, v)}")
    return lines


def format_upgraded(net, doc: Document, origin: list[int | None], key: str) -> str:
    """Print an upgraded NetParameter, carrying each surviving layer's comments (those before it and inside
    it in the source) and the file's other comments to the corresponding output."""
    text = doc.source.text
    cmts = comments(text)
    # Comments owned by each top-level field: those after the previous field's end, up to its own end.  Both
    # lists are in source order, so one pass with a moving index hands them out.
    owned: list[list[str]] = []
    ci = 0
    for f in doc.fields:
        start = ci
        while ci < len(cmts) and cmts[ci][0] < f[5]:
            ci += 1
        owned.append([c for _, c in cmts[start:ci]])
    tail = [c for _, c in cmts[ci:]]
    layer_fields = [i for i, f in enumerate(doc.fields) if f[0] == key]
    layer_set = set(layer_fields)
    other_fields = [i for i, f in enumerate(doc.fields) if f[0] not in ("layer", "layers")]
    lines: list[str] = []
    used: set[int] = set()
    for fd, value in net.ListFields():
        if fd.name == "layer":
            for i, layer in enumerate(value):
                o = origin[i] if i < len(origin) else None
                src_field = layer_fields[o] if o is not None and o < len(layer_fields) else None
                if src_field is None:
                    # A layer the upgrade created (Input): it takes the comments of the fields it replaced.
                    for k in other_fields:
                        if doc.fields[k][0] in ("input", "input_dim", "input_shape") and k not in used:
                            lines.extend(c.rstrip() for c in owned[k])
                            used.add(k)
                else:
                    lines.extend(c.rstrip() for c in owned[src_field])
                    used.add(src_field)
                lines.append("layer {")
                lines.extend(message_lines(layer, 1))
                lines.append("}")
            continue
        for k in other_fields:
            if doc.fields[k][0] == fd.name and k not in used:
                lines.extend(c.rstrip() for c in owned[k])
                used.add(k)
        values = value if is_repeated(fd) else [value]
        for v in values:
            tmp = type(net)()
            if is_repeated(fd):
                getattr(tmp, fd.name).append(v) if fd.type != FieldDescriptor.TYPE_MESSAGE else getattr(tmp, fd.name).add().CopyFrom(v)
            elif fd.type == FieldDescriptor.TYPE_MESSAGE:
                getattr(tmp, fd.name).CopyFrom(v)
            else:
                setattr(tmp, fd.name, v)
            lines.extend(message_lines(tmp, 0))
    # Comments of fields that did not survive, then the end of the file.
    for k in range(len(doc.fields)):
        if k not in used and owned[k] and k not in layer_set:
            lines.extend(c.rstrip() for c in owned[k])
    lines.extend(c.rstrip() for c in tail)
    return "\n".join(lines) + "\n"
