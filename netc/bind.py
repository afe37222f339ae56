"""Syntax tree -> caffe_pb2 messages: the schema stage.

Each field of the tree is looked up in the message's descriptor (schema/caffe.proto is the only source of
field names, types and defaults) and its value converted as protobuf's text format does.  Problems are
reported in protobuf's own wording, which Caffe users know from Caffe's logs, plus the location and a
did-you-mean; every independent problem of a file is reported, then `SchemaError` is raised.

Where netc follows the C++ parser that Caffe uses rather than Python's laxer `text_format`: unknown string
escapes (`"\\q"`), `+` signs, Python-only number spellings (`1_000`, `0o17`, `0b1`) and missing required
fields are errors, and `"\\?"` is `?` (as in C).

`bind` also returns a `Located` view: the message together with its tree node, from which later stages
get the span of any field without the binder storing positions for every value.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Iterator

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from .errors import Diagnostics, SchemaError, Source, Span, did_you_mean, quote_list
from .syntax import FIELD_LIST, FIELD_MESSAGE, FIELD_SCALAR, Document, Message, Strings, token_end

_INT_RE = re.compile(r"-?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)\Z")
_FLOAT_RE = re.compile(r"-?(?:(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+|0|[1-9][0-9]*)[fF]?\Z")
_INF_RE = re.compile(r"-?inf(?:inity)?f?\Z", re.IGNORECASE)
_NAN_RE = re.compile(r"-?nanf?\Z", re.IGNORECASE)
_ESCAPE_RE = re.compile(r"\\(?:([abfnrtv\\'\"?])|([0-7]{1,3})|x([0-9a-fA-F]{1,2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|(.?))", re.DOTALL)
_SIMPLE_ESCAPES = {"a": b"\a", "b": b"\b", "f": b"\f", "n": b"\n", "r": b"\r", "t": b"\t", "v": b"\v",
                   "\\": b"\\", "'": b"'", '"': b'"', "?": b"?"}

_T = FieldDescriptor
_RANGES = {
    _T.TYPE_INT32: (-(2**31), 2**31 - 1), _T.TYPE_SINT32: (-(2**31), 2**31 - 1), _T.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    _T.TYPE_INT64: (-(2**63), 2**63 - 1), _T.TYPE_SINT64: (-(2**63), 2**63 - 1), _T.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    _T.TYPE_UINT32: (0, 2**32 - 1), _T.TYPE_FIXED32: (0, 2**32 - 1),
    _T.TYPE_UINT64: (0, 2**64 - 1), _T.TYPE_FIXED64: (0, 2**64 - 1),
}


class _Bad(Exception):
    """A value that does not convert; the message is protobuf's."""


def _parse_int(tok) -> int:
    text = tok[1]
    if tok[0] != "NUMBER" or not _INT_RE.match(text):
        raise _Bad(f"Couldn't parse integer: {text}")
    neg = text.startswith("-")
    body = text[1:] if neg else text
    if body[:2] in ("0x", "0X"):
        v = int(body[2:], 16)
    elif len(body) > 1 and body[0] == "0":
        v = int(body[1:], 8)
    else:
        v = int(body)
    return -v if neg else v


def _int_converter(ftype: int) -> Callable:
    lo, hi = _RANGES[ftype]

    def convert(tok, fd):
        if tok.__class__ is Strings:
            raise _Bad(f"Couldn't parse integer: {tok.tokens[0][1]}")
        v = _parse_int(tok)
        if v < lo or v > hi:
            raise _Bad(f"Value out of range: {v}")
        return v

    return convert


def _float(tok, fd) -> float:
    if tok.__class__ is Strings:
        raise _Bad(f"Couldn't parse float: {tok.tokens[0][1]}")
    kind, text = tok[0], tok[1]
    if kind == "NUMBER":
        body = text[1:] if text.startswith("-") else text
        if len(body) > 1 and body[0] == "0" and body[1].isdigit():
            raise _Bad(f"Invalid octal float: {text}")
        if _FLOAT_RE.match(text):
            return float(text.rstrip("fF"))
    elif kind in ("NAME", "NEG_NAME"):
        if _INF_RE.match(text):
            return -math.inf if text.startswith("-") else math.inf
        if _NAN_RE.match(text):
            return math.nan
    raise _Bad(f"Couldn't parse float: {text}")


def _bool(tok, fd) -> bool:
    text = tok[1] if tok.__class__ is not Strings else ""
    if text in ("true", "t", "1", "True"):
        return True
    if text in ("false", "f", "0", "False"):
        return False
    raise _Bad('Expected "true" or "false".')


def unescape(body: str) -> bytes:
    """The bytes of a string literal's body (C escapes, octal, hex, \\u and \\U)."""
    if "\\" not in body:
        return body.encode("utf-8")

    def sub(m: re.Match) -> str:
        simple, octal, hex_, u4, u8, other = m.groups()
        if simple is not None:
            return _SIMPLE_ESCAPES[simple].decode("latin-1")
        if octal is not None:
            v = int(octal, 8)
            if v > 255:
                raise _Bad(f"Invalid escape sequence \\{octal}: octal escapes stop at \\377")
            return chr(v)
        if hex_ is not None:
            return chr(int(hex_, 16))
        code = int(u4 or u8, 16)
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise _Bad(f"Invalid unicode escape \\{'u' + u4 if u4 else 'U' + u8}")
        return chr(code).encode("utf-8").decode("latin-1")

    # Work in latin-1 so each escaped byte is one character, after encoding the literal text as UTF-8.
    raw = body.encode("utf-8").decode("latin-1")
    for m in _ESCAPE_RE.finditer(raw):
        if m.group(6) is not None:
            shown = m.group(6) or "(end of string)"
            raise _Bad(f"Invalid escape sequence \\{shown} in string literal")
    return _ESCAPE_RE.sub(sub, raw).encode("latin-1")


def _string_bytes(value) -> bytes:
    toks = value.tokens if value.__class__ is Strings else (value,)
    out = []
    for t in toks:
        if t[0] != "STRING":
            raise _Bad(f"Expected string but found: {t[1]!r}")
        out.append(unescape(t[1][1:-1]))
    return b"".join(out)


def _string(value, fd) -> str:
    if value.__class__ is not Strings and value[0] == "STRING" and "\\" not in value[1]:
        return value[1][1:-1]
    try:
        return _string_bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        raise _Bad("String field contains invalid UTF-8 (use escapes only for valid UTF-8 text)") from None


def _bytes(value, fd) -> bytes:
    return _string_bytes(value)


def _enum(tok, fd) -> int:
    enum = fd.enum_type
    if tok.__class__ is Strings:
        raise _Bad(f'Enum type "{enum.full_name}" has no value named {tok.tokens[0][1]}.')
    kind, text = tok[0], tok[1]
    if kind == "NUMBER" and _INT_RE.match(text):
        number = _parse_int(tok)
        # Check the range first: upb's values_by_number wraps its int32 keys (2**32 "is" 0).
        if not -(2**31) <= number < 2**31 or number not in enum.values_by_number:
            raise _Bad(f'Enum type "{enum.full_name}" has no value with number {number}.')
        return number
    value = enum.values_by_name.get(text)
    if value is None:
        raise _Bad(f'Enum type "{enum.full_name}" has no value named {text}.')
    return value.number


_CONVERTERS: dict[int, Callable] = {
    _T.TYPE_FLOAT: _float, _T.TYPE_DOUBLE: _float, _T.TYPE_BOOL: _bool, _T.TYPE_STRING: _string,
    _T.TYPE_BYTES: _bytes, _T.TYPE_ENUM: _enum,
}
for _t in _RANGES:
    _CONVERTERS[_t] = _int_converter(_t)


def is_repeated(fd: FieldDescriptor) -> bool:
    """protobuf >= 6 has `is_repeated`; older runtimes only `label` (removed in 7)."""
    rep = getattr(fd, "is_repeated", None)
    return rep if rep is not None else fd.label == _T.LABEL_REPEATED


class _FieldInfo:
    __slots__ = ("fd", "name", "repeated", "message", "convert")

    def __init__(self, fd: FieldDescriptor) -> None:
        self.fd = fd
        self.name = fd.name
        self.repeated = is_repeated(fd)
        self.message = fd.type == _T.TYPE_MESSAGE
        self.convert = None if self.message else _CONVERTERS[fd.type]


_INFO: dict[str, dict[str, _FieldInfo]] = {}


def _fields_of(desc: Descriptor) -> dict[str, _FieldInfo]:
    info = _INFO.get(desc.full_name)
    if info is None:
        info = _INFO[desc.full_name] = {f.name: _FieldInfo(f) for f in desc.fields}
    return info


# Fork-only fields that netc accepts with a warning unless --strict: (message type, field) -> ForkField.
# A handler sets the BVLC equivalent on the message and returns the warning text.
ForkHandler = Callable[[object, object], str]


@dataclass(frozen=True)
class ForkField:
    handler: ForkHandler
    replaces: str  # the BVLC field the handler sets: giving both, in either order, is an error


FORK_FIELDS: dict[tuple[str, str], ForkField] = {}


def fork_field(message_type: str, name: str, *, replaces: str) -> Callable[[ForkHandler], ForkHandler]:
    def register(fn: ForkHandler) -> ForkHandler:
        FORK_FIELDS[(message_type, name)] = ForkField(fn, replaces)
        return fn
    return register


def _fork_fields() -> dict[tuple[str, str], ForkField]:
    """The handlers live with the other upgrades (netc/upgrade.py); registered on first use."""
    if not FORK_FIELDS:
        from .upgrade import register_fork_fields
        register_fork_fields(fork_field)
    return FORK_FIELDS


@dataclass
class Located:
    """A message with the tree node it was bound from: spans on demand."""

    message: object
    node: object  # Message, Document or None (a message created by an upgrade)
    source: Source | None
    span_hint: Span | None = None  # where to point when the node is gone (upgrades)

    def _fields(self) -> list:
        node = self.node
        return node.fields if node is not None else []

    def span(self) -> Span | None:
        """The span of the whole message (its opening bracket), or the hint."""
        if isinstance(self.node, Message):
            return Span(self.source, self.node.open, self.node.close + 1)
        return self.span_hint

    def _occurrences(self, name: str) -> Iterator[tuple]:
        """(field, value) for each value given for `name`, list elements expanded, in order."""
        for f in self._fields():
            if f[0] != name:
                continue
            if f[2] == FIELD_LIST:
                for e in f[3].elements:
                    yield f, e
            else:
                yield f, f[3]

    def value_span(self, name: str, index: int = 0) -> Span | None:
        """The span of the index-th value of a field (for a message value: its name), else the message's."""
        for i, (f, v) in enumerate(self._occurrences(name)):
            if i == index:
                if isinstance(v, Message):
                    return Span(self.source, f[1], f[1] + len(f[0]))
                start = v.pos if isinstance(v, Strings) else v[2]
                return Span(self.source, start, token_end(v))
        return self.field_span(name)

    def field_span(self, name: str, index: int = 0) -> Span | None:
        """The span of the index-th occurrence of a field name, else the message's."""
        for i, f in enumerate(f for f in self._fields() if f[0] == name):
            if i == index:
                return Span(self.source, f[1], f[1] + len(f[0]))
        return self.span()

    def child(self, name: str, index: int = 0) -> "Located":
        """The Located of a sub-message (repeated: the index-th)."""
        fd = self.message.DESCRIPTOR.fields_by_name[name]
        sub = getattr(self.message, name)[index] if is_repeated(fd) else getattr(self.message, name)
        for i, (f, v) in enumerate(self._occurrences(name)):
            if i == index and isinstance(v, Message):
                return Located(sub, v, self.source)
        return Located(sub, None, self.source, self.span())

    def has_field_text(self, name: str) -> bool:
        return any(f[0] == name for f in self._fields())


class _Binder:
    def __init__(self, source: Source, diags: Diagnostics, strict: bool) -> None:
        self.source = source
        self.diags = diags
        self.strict = strict

    def span(self, start: int, end: int) -> Span:
        return Span(self.source, start, end)

    def bind_fields(self, msg, fields: list) -> None:
        desc = msg.DESCRIPTOR
        info = _fields_of(desc)
        seen: dict[str, int] | None = None
        for f in fields:
            name, pos, kind, value = f[0], f[1], f[2], f[3]
            fi = info.get(name)
            fork = None
            if fi is None:
                fork = _fork_fields().get((desc.full_name, name))
                if fork is None or self.strict or kind != FIELD_SCALAR:
                    self.unknown_field(msg, f, fork)
                    continue
            # A fork field is non-repeated too: a second one is refused like a second value of a real field.
            if fork is not None or not fi.repeated:
                if seen is None:
                    seen = {}
                first = seen.get(name)
                if first is not None:
                    line = self.source.line_col(first)[0]
                    self.diags.error(
                        f'Message type "{desc.full_name}" should not have multiple "{name}" fields.',
                        self.span(pos, pos + len(name)), f"{name} was already given on line {line}; "
                        "Caffe's parser refuses a second value for a non-repeated field")
                    continue
                seen[name] = pos
            if fork is not None:
                self.bind_fork_field(msg, fork, f, fields)
                continue
            if kind == FIELD_SCALAR:
                if fi.message:
                    self.diags.error(f'Expected "{{" for message field "{name}" of "{desc.full_name}".',
                                     self.value_span(value), f"write {name} {{ ... }}")
                    continue
                self.set_scalar(msg, fi, value)
            elif kind == FIELD_MESSAGE:
                if not fi.message:
                    self.diags.error(f'Field "{name}" of "{desc.full_name}" is a {_type_name(fi.fd)}, not a message.',
                                     self.span(pos, pos + len(name)), f"write {name}: <value>")
                    continue
                if fi.repeated:
                    sub = getattr(msg, name).add()
                else:
                    sub = getattr(msg, name)
                    sub.SetInParent()
                self.bind_fields(sub, value.fields)
            else:  # FIELD_LIST
                self.bind_list(msg, fi, f)

    def bind_list(self, msg, fi: _FieldInfo, f) -> None:
        name, lst = f[0], f[3]
        desc = msg.DESCRIPTOR
        if not fi.repeated:
            self.diags.error(f'Field "{name}" of "{desc.full_name}" is not repeated: a list [...] is not allowed.',
                             self.span(lst.open, lst.close + 1))
            return
        if not fi.message and not f[4]:
            self.diags.error(f'Expected ":" after the name of field "{name}" before its list of values.',
                             self.span(f[1], f[1] + len(name)), f"write {name}: [...]")
            return
        for e in lst.elements:
            if fi.message:
                if not isinstance(e, Message):
                    self.diags.error(f'Expected "{{" for an element of message field "{name}".', self.value_span(e))
                    continue
                self.bind_fields(getattr(msg, name).add(), e.fields)
            else:
                if isinstance(e, Message):
                    self.diags.error(f'Field "{name}" of "{desc.full_name}" holds {_type_name(fi.fd)} values, not messages.',
                                     self.span(e.open, e.open + 1))
                    continue
                self.set_scalar(msg, fi, e)

    def value_span(self, value) -> Span:
        start = value.pos if isinstance(value, Strings) else value[2]
        return self.span(start, token_end(value))

    def set_scalar(self, msg, fi: _FieldInfo, value) -> None:
        try:
            v = fi.convert(value, fi.fd)
        except _Bad as e:
            hint = None
            if fi.fd.type == _T.TYPE_ENUM:
                text = value[1] if not isinstance(value, Strings) else value.tokens[0][1].strip("\"'")
                names = [v.name for v in fi.fd.enum_type.values]
                near = did_you_mean(text, names)
                hint = f"did you mean {near[0]}?" if near else f"one of {', '.join(names)}"
                if isinstance(value, Strings) or (not isinstance(value, Strings) and value[0] == "STRING"):
                    hint = f"enum values are written without quotes: {fi.name}: {near[0] if near else names[0]}"
            elif fi.fd.type == _T.TYPE_STRING and not isinstance(value, Strings) and value[0] != "STRING":
                hint = f'strings are quoted: {fi.name}: "{value[1]}"'
            elif fi.fd.type in _RANGES and "out of range" in str(e):
                lo, hi = _RANGES[fi.fd.type]
                hint = f"{fi.name} is a {_type_name(fi.fd)}: {lo} to {hi}"
            self.diags.error(f"{e}", self.value_span(value), hint)
            return
        if fi.repeated:
            getattr(msg, fi.name).append(v)
        else:
            setattr(msg, fi.name, v)

    def bind_fork_field(self, msg, fork: ForkField, f, fields: list) -> None:
        """A fork field given once, as a scalar, without --strict: mapped by its handler, with a warning."""
        name, pos, value = f[0], f[1], f[3]
        span = self.span(pos, pos + len(name))
        # Checked against the whole message, so that the order of the two fields does not matter.
        other = next((g for g in fields if g[0] == fork.replaces), None)
        if other is not None:
            line = self.source.line_col(other[1])[0]
            self.diags.error(f"{name} (a fork field) and {fork.replaces} (BVLC's) are both given: keep "
                             f"{fork.replaces}", span, f"{fork.replaces} is given on line {line}; remove {name}")
            return
        try:
            text = fork.handler(msg, value)
        except _Bad as e:
            self.diags.error(str(e), self.value_span(value))
            return
        self.diags.warning(text, span)

    def unknown_field(self, msg, f, fork: ForkField | None = None) -> None:
        """A field the schema does not have: a fork field under --strict or not written as `name: value`, or
        a plain mistake (with a did-you-mean)."""
        desc = msg.DESCRIPTOR
        name, pos = f[0], f[1]
        span = self.span(pos, pos + len(name))
        if fork is not None:
            hint = f'"{name}" exists only in Caffe forks; BVLC Caffe (and --strict) rejects it' if self.strict \
                else None
            self.diags.error(f'Message type "{desc.full_name}" has no field named "{name}".', span, hint)
            return
        near = did_you_mean(name, [fd.name for fd in desc.fields])
        if near:
            hint = f'did you mean "{near[0]}"?'
        else:
            owners = _owners_of(name, desc)
            hint = f'"{name}" is a field of {quote_list(owners)}' if owners else None
        self.diags.error(f'Message type "{desc.full_name}" has no field named "{name}".', span, hint)


def _type_name(fd: FieldDescriptor) -> str:
    if fd.type == _T.TYPE_ENUM:
        return f"enum ({fd.enum_type.full_name})"
    return {
        _T.TYPE_FLOAT: "float", _T.TYPE_DOUBLE: "double", _T.TYPE_BOOL: "bool", _T.TYPE_STRING: "string",
        _T.TYPE_BYTES: "bytes", _T.TYPE_INT32: "int32", _T.TYPE_INT64: "int64", _T.TYPE_UINT32: "uint32",
        _T.TYPE_UINT64: "uint64", _T.TYPE_MESSAGE: "message",
    }.get(fd.type, "value")


def _owners_of(name: str, desc: Descriptor) -> list[str]:
    """Sub-message fields of `desc` whose message type has a field `name` (e.g. kernel_size in a layer)."""
    owners = []
    for fd in desc.fields:
        if fd.type == _T.TYPE_MESSAGE and name in fd.message_type.fields_by_name:
            owners.append(fd.name)
    return owners


def bind(doc: Document, message_class, diags: Diagnostics | None = None, *, strict: bool = False) -> Located:
    """Bind a parsed document to a new message of `message_class`; raises SchemaError on any error."""
    diags = diags if diags is not None else Diagnostics()
    msg = message_class()
    binder = _Binder(doc.source, diags, strict)
    binder.bind_fields(msg, doc.fields)
    if not diags.errors and not msg.IsInitialized():
        located = Located(msg, doc, doc.source)
        for path in msg.FindInitializationErrors():
            diags.error(f"Message missing required field: {path}", _required_span(located, path),
                        "Caffe's parser refuses a message without its required fields")
    if diags.errors:
        raise SchemaError(diags.items)
    return Located(msg, doc, doc.source)


def _required_span(located: Located, path: str) -> Span | None:
    """The span of the message that lacks a required field, from a path such as layer[3].clip_param.max."""
    parts = path.split(".")[:-1]
    cur = located
    try:
        for part in parts:
            name, _, idx = part.partition("[")
            cur = cur.child(name, int(idx[:-1]) if idx else 0)
    except (KeyError, IndexError, ValueError):
        return located.span()
    return cur.span() or located.span()
