"""One error hierarchy for netc, and the located diagnostics it carries.

Every stage reports problems as `Diagnostic`s (severity, message, span, hint) into a `Diagnostics` sink, so a
file's independent errors are all reported in one run; a stage that cannot go on raises a `NetcError` holding
them.  Library exceptions are caught at the stage boundary and never reach the user; a netc bug is an
`InternalError`, reported separately from user mistakes.

Rendering follows the compiler convention:

    nets/x.prototxt:12:11: error: layer "conv2" (Convolution): unknown bottom "pool_1"
      bottom: "pool_1"
              ^^^^^^^^
      hint: did you mean "pool1"?
"""
from __future__ import annotations

import bisect
import difflib
from dataclasses import dataclass
from typing import Iterable, Sequence


class Source:
    """A text being compiled: its display name and the offsets where lines start (for line/column)."""

    __slots__ = ("name", "text", "_starts")

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self._starts: list[int] | None = None

    def _line_starts(self) -> list[int]:
        if self._starts is None:
            starts = [0]
            find = self.text.find
            i = find("\n")
            while i >= 0:
                starts.append(i + 1)
                i = find("\n", i + 1)
            self._starts = starts
        return self._starts

    def line_col(self, pos: int) -> tuple[int, int]:
        """1-based line and column of a character offset."""
        starts = self._line_starts()
        line = bisect.bisect_right(starts, pos) - 1
        return line + 1, pos - starts[line] + 1

    def line_text(self, line: int) -> str:
        starts = self._line_starts()
        begin = starts[line - 1]
        end = starts[line] - 1 if line < len(starts) else len(self.text)
        return self.text[begin:end].rstrip("\r")


@dataclass(frozen=True)
class Span:
    """Characters [start, end) of a source."""

    source: Source
    start: int
    end: int

    @property
    def line(self) -> int:
        return self.source.line_col(self.start)[0]

    @property
    def col(self) -> int:
        return self.source.line_col(self.start)[1]

    def location(self) -> str:
        line, col = self.source.line_col(self.start)
        return f"{self.source.name}:{line}:{col}"


@dataclass
class Diagnostic:
    severity: str  # "error" | "warning" | "note"
    message: str
    span: Span | None = None
    hint: str | None = None
    source_name: str | None = None  # where there is no span (a file that could not be read)

    def render(self) -> str:
        """Located: the message, the source line with a caret, the hint.  Without a location (a file that
        cannot be read): one line, the hint after a semicolon."""
        if self.span is None:
            where = self.source_name or "netc"
            return f"{where}: {self.severity}: {self.message}" + (f"; {self.hint}" if self.hint else "")
        out = [f"{self.span.location()}: {self.severity}: {self.message}", *_excerpt(self.span)]
        if self.hint:
            out.append(f"  hint: {self.hint}")
        return "\n".join(out)


EXCERPT_WIDTH = 100


def _excerpt(span: Span) -> list[str]:
    """The source line without its indentation, two spaces in, and the span underlined.  A line longer than
    EXCERPT_WIDTH is cut to a window around the span, with "..." where it was cut."""
    src = span.source
    line, col = src.line_col(span.start)
    text = src.line_text(line).expandtabs(1)
    if not text.strip():
        return []
    indent = len(text) - len(text.lstrip())
    shown = text.strip()
    end_line, end_col = src.line_col(max(span.start, span.end - 1))
    last = end_col if end_line == line else len(text)
    first = max(col - 1 - indent, 0)
    width = max(1, min(last, len(text)) - (col - 1))
    width = min(width, max(1, len(shown) - first))
    if len(shown) > EXCERPT_WIDTH:
        width = min(width, EXCERPT_WIDTH // 2)
        begin = max(0, first - EXCERPT_WIDTH // 4)
        end = min(len(shown), begin + EXCERPT_WIDTH)
        left = "..." if begin > 0 else ""
        right = "..." if end < len(shown) else ""
        shown = left + shown[begin:end] + right
        first = first - begin + len(left)
    return [f"  {shown}", "  " + " " * first + "^" * width]


MAX_ERRORS = 50


class Diagnostics:
    """Collects the diagnostics of one run, in the order they were found (at most MAX_ERRORS errors: past
    that, a file is not worth reading error by error)."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []
        self._errors = 0

    def error(self, message: str, span: Span | None = None, hint: str | None = None) -> None:
        self.items.append(Diagnostic("error", message, span, hint))
        self._errors += 1
        if self._errors >= MAX_ERRORS:
            name = span.source.name if span else None
            self.items.append(Diagnostic("note", f"too many errors ({MAX_ERRORS}); stopping here", None,
                                         source_name=name))
            raise NetcError(self.items)

    def warning(self, message: str, span: Span | None = None, hint: str | None = None) -> None:
        self.items.append(Diagnostic("warning", message, span, hint))

    def extend(self, diags: Iterable[Diagnostic]) -> None:
        self.items.extend(diags)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "warning"]

    def raise_if_errors(self, cls: type[NetcError] | None = None) -> None:
        if self.errors:
            raise (cls or NetcError)(self.items)


class NetcError(Exception):
    """A user-facing failure: one or more diagnostics (warnings found on the way are kept too)."""

    def __init__(self, diagnostics: Sequence[Diagnostic] | str, span: Span | None = None, hint: str | None = None):
        if isinstance(diagnostics, str):
            diagnostics = [Diagnostic("error", diagnostics, span, hint)]
        self.diagnostics = list(diagnostics)
        first = next((d for d in self.diagnostics if d.severity == "error"), None)
        super().__init__(first.message if first else "error")

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    def render(self) -> str:
        return "\n".join(d.render() for d in self.diagnostics)


class InputError(NetcError):
    """The file itself cannot be read as a prototxt: missing, a directory, binary, not UTF-8, too large."""


class ParseError(NetcError):
    """The text is not valid protobuf text format."""


class SchemaError(NetcError):
    """Valid syntax that does not fit the caffe.proto schema (unknown field, wrong type, out of range...)."""


class UpgradeError(NetcError):
    """A legacy file that cannot be upgraded to the current format."""


class GraphError(NetcError):
    """The layers do not form a valid Caffe net (unknown bottom, duplicate top, wrong arity...)."""


class ShapeError(NetcError):
    """Shapes or parameters that Caffe would reject."""


class UsageError(NetcError):
    """Bad command-line usage or API arguments."""


class InternalError(Exception):
    """A netc bug, never a user mistake."""


def did_you_mean(word: str, candidates: Iterable[str], n: int = 1) -> list[str]:
    """The closest candidates to a misspelt word (case-insensitive), best first."""
    cands = list(dict.fromkeys(candidates))
    lower = {c.lower(): c for c in cands}
    hits = difflib.get_close_matches(word.lower(), list(lower), n=n, cutoff=0.6)
    return [lower[h] for h in hits]


def quote_list(names: Sequence[str]) -> str:
    quoted = [f'"{n}"' for n in names]
    if len(quoted) <= 1:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]
