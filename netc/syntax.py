"""Text -> syntax tree with positions: the first stage of the pipeline.

The grammar is `prototxt.lark`; Lark computes its LALR(1) tables once, and `parse` drives them with a lexer
made of one compiled regular expression.  Both are tuned for the hot path (a 100 KB net is ~30k tokens):
tokens and fields are plain tuples, every rule has a small callback, and positions are character offsets
that `Source.line_col` turns into line and column only when something is reported.

Tree shapes (all positions are offsets into the source text):

    token    (kind, text, pos)              kind is a terminal name; text is the token's text, except for
                                            KEY and KEY_OPEN whose text is the field name alone (an OPEN
                                            token's text is its bracket, "{" or "<")
             (KEY_OPEN, name, pos, open_pos, bracket)
                                            KEY_OPEN adds the offset of its "{" or "<" and that character
    field    (name, pos, kind, value, colon, end)
             kind FIELD_SCALAR: value is a token, or a Strings node for adjacent string literals
             kind FIELD_MESSAGE: value is a Message
             kind FIELD_LIST: value is a List of tokens / Strings / Messages
             colon: whether a ":" followed the name;  end: offset just past the field
    Message  .fields, .open (offset of "{" or "<"), .close (offset of the closing bracket)
    Document .fields, .source, and the comments of the text (for the formatter)

Comments and whitespace are skipped by the lexer; `comments()` recovers the comments for `netc fmt`.
"""
from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

from .errors import Diagnostic, ParseError, Source, Span
from .perf import gc_paused

FIELD_SCALAR, FIELD_MESSAGE, FIELD_LIST = 0, 1, 2

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# Whitespace and comments.  A comment runs to the end of its line: the lookahead stops the regex engine from
# backtracking into a comment to find a ":" or a name inside it.
_GAP = r"(?:\s|\#[^\n]*(?=\n|\Z))*"
_STRING = r"\"(?:[^\"\\\n]|\\[^\n])*\"|'(?:[^'\\\n]|\\[^\n])*'"  # never across a line break

# One alternative per terminal, tried in order at each position after skipping whitespace and comments.
# KEY must come before KEY_OPEN and NAME (a regex alternation takes the first that matches).
_TOKEN_RE = re.compile(
    rf"""{_GAP}(?:
      (?P<EOF>\Z)
    | (?P<KEY>(?P<key>{_NAME}){_GAP}:)
    | (?P<KEY_OPEN>(?P<kopen>{_NAME}){_GAP}[{{<])
    | (?P<NAME>{_NAME})
    | (?P<NUMBER>-?(?:\d|\.\d)(?:[eE][+-]|[\w.])*)
    | (?P<STRING>{_STRING})
    | (?P<CLOSE>[}}>])
    | (?P<OPEN>[{{<])
    | (?P<COMMA>,)
    | (?P<SEMICOLON>;)
    | (?P<LSQB>\[)
    | (?P<RSQB>\])
    | (?P<NEG_NAME>-{_NAME})
    | (?P<COLON>:)
    | (?P<BAD_STRING>["'][^\n]*)
    | (?P<BAD>\S)
    )""",
    re.VERBOSE | re.DOTALL,
)
_TRAILING_GAP = re.compile(_GAP + r"\Z")
_COMMENT_RE = re.compile(rf"{_STRING}|(\#[^\n]*)")

# What each terminal is called in messages.
_TERMINAL_NAMES = {
    "KEY": "a field name", "KEY_OPEN": "a field name", "NAME": "a name", "NEG_NAME": "a value",
    "NUMBER": "a number", "STRING": "a string", "OPEN": '"{"', "CLOSE": '"}"', "LSQB": '"["',
    "RSQB": '"]"', "COMMA": '","', "SEMICOLON": '";"', "COLON": '":"', "$END": "the end of the file",
}


class Strings:
    """Adjacent string literals, concatenated when bound."""

    __slots__ = ("tokens",)

    def __init__(self, tokens: list) -> None:
        self.tokens = tokens

    @property
    def pos(self) -> int:
        return self.tokens[0][2]


class Message:
    __slots__ = ("fields", "open", "close")

    def __init__(self, fields: list, open_: int, close: int) -> None:
        self.fields = fields
        self.open = open_
        self.close = close


class List:
    __slots__ = ("elements", "open", "close")

    def __init__(self, elements: list, open_: int, close: int) -> None:
        self.elements = elements
        self.open = open_
        self.close = close


class Document:
    __slots__ = ("fields", "source")

    def __init__(self, fields: list, source: Source) -> None:
        self.fields = fields
        self.source = source

    def comments(self) -> list[tuple[int, str]]:
        return comments(self.source.text)


def comments(text: str) -> list[tuple[int, str]]:
    """Every `#` comment of a text with its offset (string literals are skipped)."""
    return [(m.start(1), m.group(1)) for m in _COMMENT_RE.finditer(text) if m.group(1) is not None]


def token_end(value) -> int:
    """Offset just past a scalar value (token or Strings)."""
    if isinstance(value, Strings):
        value = value.tokens[-1]
    return value[2] + len(value[1])


# --------------------------------------------------------------------------------------------------------
# Rule callbacks: each takes the children of a reduction and returns the node.  `n` is the number of
# children (optional separators make two variants of the same rule).

def _r_start(c):
    return c[0]


def _r_fields_more(c):
    c[0].append(c[1])
    return c[0]


def _r_fields_empty(c):
    return []


def _r_scalar_field(c):
    key, value = c[0], c[1]
    end = c[2][2] + 1 if len(c) == 3 else token_end(value)
    return (key[1], key[2], FIELD_SCALAR, value, True, end)


def _r_list_field(c):
    key, lst = c[0], c[1]
    end = c[2][2] + 1 if len(c) == 3 else lst.close + 1
    return (key[1], key[2], FIELD_LIST, lst, key[0] == "KEY", end)


def _r_message_field(c):
    key, msg = c[0], c[1]
    end = c[2][2] + 1 if len(c) == 3 else msg.close + 1
    return (key[1], key[2], FIELD_MESSAGE, msg, key[0] == "KEY", end)


def _r_open_field(c):
    key, close = c[0], c[2]
    _check_brackets(key[4], key[3], close)
    msg = Message(c[1], key[3], close[2])
    end = c[3][2] + 1 if len(c) == 4 else close[2] + 1
    return (key[1], key[2], FIELD_MESSAGE, msg, False, end)


def _r_message(c):
    _check_brackets(c[0][1], c[0][2], c[2])
    return Message(c[1], c[0][2], c[2][2])


def _r_scalar_strings(c):
    s = c[0]
    return s.tokens[0] if len(s.tokens) == 1 else s


def _r_first(c):
    return c[0]


def _r_strings_one(c):
    return Strings([c[0]])


def _r_strings_more(c):
    c[0].tokens.append(c[1])
    return c[0]


def _r_list_empty(c):
    return List([], c[0][2], c[1][2])


def _r_list(c):
    return List(c[1], c[0][2], c[2][2])


def _r_elements_one(c):
    return [c[0]]


def _r_elements_more(c):
    c[0].append(c[2])
    return c[0]


class _BracketMismatch(Exception):
    def __init__(self, opener: str, open_pos: int, close_tok) -> None:
        self.opener = opener
        self.open_pos = open_pos
        self.close_tok = close_tok


def _check_brackets(opener: str, open_pos: int, close_tok) -> None:
    if (opener == "{") != (close_tok[1] == "}"):
        raise _BracketMismatch(opener, open_pos, close_tok)


_CALLBACKS = {
    ("start", None, 1): _r_start,
    ("fields", None, 2): _r_fields_more,
    ("fields", None, 0): _r_fields_empty,
    ("message", None, 3): _r_message,
    ("scalar", None, 1): _r_first,
    ("strings", None, 1): _r_strings_one,
    ("strings", None, 2): _r_strings_more,
    ("list", None, 2): _r_list_empty,
    ("list", None, 3): _r_list,
    ("elements", None, 1): _r_elements_one,
    ("elements", None, 3): _r_elements_more,
    ("element", None, 1): _r_first,
    ("sep", None, 1): _r_first,
}


class _Tables:
    """The LALR tables of prototxt.lark in the form the driver wants.

    action[state][terminal] is a state to shift to (>= 0) or ~rule for a reduction; goto[state][nonterminal]
    is the state after a reduction; rules[i] = (lhs, number of children, callback).
    """

    def __init__(self) -> None:
        from lark import Lark  # imported here: only the first parse pays for building the tables
        from lark.parsers.lalr_analysis import Shift

        grammar = resources.files(__package__).joinpath("prototxt.lark").read_text()
        lark = Lark(grammar, parser="lalr", lexer="basic")
        table = lark.parser.parser.parser.parse_table
        rules: list = []
        rule_ids: dict = {}
        nonterminals = {str(r.origin.name) for r in lark.rules}
        self.action: dict[int, dict[str, int]] = {}
        self.goto: dict[int, dict[str, int]] = {}
        for state, acts in table.states.items():
            act: dict[str, int] = {}
            gt: dict[str, int] = {}
            for sym, (kind, arg) in acts.items():
                sym = str(sym)
                if kind is Shift:
                    (gt if sym in nonterminals else act)[sym] = arg
                    continue
                if arg not in rule_ids:
                    rule_ids[arg] = len(rules)
                    # Plain str: Lark's Token compares in Python, and the driver compares lhs per reduction.
                    name, n = str(arg.origin.name), len(arg.expansion)
                    if name == "field":
                        cb = globals()[f"_r_{arg.alias}"]
                    elif name == "scalar" and arg.expansion[0].name == "strings":
                        cb = _r_scalar_strings
                    else:
                        cb = _CALLBACKS[(name, None, n)]
                    rules.append((name, n, cb))
                act[sym] = ~rule_ids[arg]
            self.action[state] = act
            self.goto[state] = gt
        self.rules = rules
        self.start = table.start_states["start"]


@lru_cache(maxsize=1)
def _tables() -> _Tables:
    return _Tables()


def parse(source: Source) -> Document:
    """Parse a whole text. Raises ParseError (one diagnostic: the first syntax error) on invalid syntax."""
    with gc_paused():  # netc/perf.py
        return _parse(source)


def _parse(source: Source) -> Document:
    t = _tables()
    action, goto, rules = t.action, t.goto, t.rules
    text = source.text
    states = [t.start]
    values: list = []
    try:
        pos = 0
        n = len(text)
        match = _TOKEN_RE.match
        tok = None
        while True:
            m = match(text, pos)
            kind = m.lastgroup
            if kind == "EOF":  # only whitespace or comments left
                kind = "$END"
                tok = ("$END", "", n)
            elif kind == "KEY":
                tok = ("KEY", m.group("key"), m.start("key"))
            elif kind == "KEY_OPEN":
                end = m.end()
                tok = ("KEY_OPEN", m.group("kopen"), m.start("kopen"), end - 1, text[end - 1])
            elif kind in ("BAD", "BAD_STRING"):
                _lex_error(source, kind, m.start(kind), m.group(kind))
            else:
                tok = (kind, m.group(kind), m.start(kind))
            pos = m.end()
            while True:
                a = action[states[-1]].get(kind)
                if a is None:
                    _syntax_error(source, tok, states[-1], action, values)
                if a >= 0:
                    states.append(a)
                    values.append(tok)
                    break
                lhs, k, cb = rules[~a]
                if k:
                    children = values[-k:]
                    del values[-k:]
                    del states[-k:]
                else:
                    children = []
                node = cb(children)
                if lhs == "start":
                    return Document(node, source)
                values.append(node)
                states.append(goto[states[-1]][lhs])
    except _BracketMismatch as e:
        opener = e.opener
        want = "}" if opener == "{" else ">"
        line = source.line_col(e.open_pos)[0]
        raise ParseError([Diagnostic(
            "error", f'expected "{want}" to close the "{opener}" on line {line}, found "{e.close_tok[1]}"',
            Span(source, e.close_tok[2], e.close_tok[2] + 1),
            hint='a message opened with "{" closes with "}", one opened with "<" with ">"')]) from None


def _lex_error(source: Source, kind: str, pos: int, text: str) -> None:
    if kind == "BAD_STRING":
        msg = f"string literal is missing its closing quote {text[0]}"
        span = Span(source, pos, pos + len(text))
        hint = "strings end on the line where they start; adjacent strings are joined: \"a\" \"b\""
    else:
        shown = text if text.isprintable() and not text.isspace() else repr(text)[1:-1]
        msg = f'unexpected character "{shown}"'
        span = Span(source, pos, pos + 1)
        hint = None
        if text == "-":
            hint = "a minus sign must touch its number: -1"
    raise ParseError([Diagnostic("error", msg, span, hint)])


def _describe(tok) -> str:
    kind, text = tok[0], tok[1]
    if kind == "$END":
        return "end of file"
    if kind in ("KEY", "KEY_OPEN"):
        return f'field "{text}"'
    if kind == "STRING":
        return f"string {text}"
    return f'"{text}"'


def _syntax_error(source: Source, tok, state: int, action, values: list) -> None:
    kind = tok[0]
    expected = set(action[state])
    pos = tok[2]
    end = pos + max(1, len(tok[1])) if kind not in ("KEY", "KEY_OPEN") else pos + len(tok[1])
    hint = None
    prev = values[-1] if values else None
    if kind == "$END" and "CLOSE" in expected:
        opener = _innermost_open(values)
        if opener is not None:
            name, open_pos = opener
            line = source.line_col(open_pos)[0]
            want = "}" if source.text[open_pos] == "{" else ">"
            what = f'"{name} {source.text[open_pos]}"' if name else f'"{source.text[open_pos]}"'
            msg = f'expected "{want}" to close {what} opened on line {line}, found the end of the file'
            raise ParseError([Diagnostic("error", msg, Span(source, open_pos, open_pos + 1))])
    if isinstance(prev, tuple) and len(prev) >= 3 and prev[0] == "NAME" and kind in ("NUMBER", "STRING", "NAME", "NEG_NAME"):
        msg = f'expected ":" between field name "{prev[1]}" and its value'
        end = pos + len(tok[1])
        hint = f'write {prev[1]}: {tok[1]}'
    elif kind == "CLOSE" and "CLOSE" not in expected and not _innermost_open(values):
        msg = f'unexpected "{tok[1]}": no message is open here'
    else:
        msg = f"unexpected {_describe(tok)}, expected {_expected_text(expected, values)}"
        if kind == "COLON":
            hint = "a field name comes before its colon: name: value"
        elif kind in ("NUMBER", "STRING") and isinstance(prev, tuple) and prev and prev[0] in ("NUMBER", "STRING", "NAME", "NEG_NAME"):
            hint = "each value needs its own field name; use name: [a, b] for a list"
    raise ParseError([Diagnostic("error", msg, Span(source, pos, end), hint)])


def _expected_text(expected: set, values: list) -> str:
    """What may come next, in a person's words (LALR lookaheads are wider than what is really possible)."""
    in_list = _in_list(values)
    if in_list and expected & {"COMMA", "RSQB"}:
        return '"," or "]"'
    words = []
    if expected & {"KEY", "KEY_OPEN"}:
        words.append("a field name")
    elif expected & {"NUMBER", "STRING", "NAME", "NEG_NAME"}:
        words.append("a value")
    # After a bare field name the parser can shift only "[" (name [...]), because the lexer reads a name and
    # its "{" as one KEY_OPEN; the person's usual next character is still "{".
    if expected & {"OPEN", "LSQB"} and not words:
        words.append('"{"')
    if in_list and "COMMA" in expected:
        words.append('","')
    if in_list and "RSQB" in expected:
        words.append('"]"')
    if "CLOSE" in expected and _innermost_open(values) is not None:
        words.append('"}"')
    elif "$END" in expected and not in_list:
        words.append("the end of the file")
    if not words:
        words = sorted({_TERMINAL_NAMES.get(e, e) for e in expected})
    return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else words[0]


def _innermost_open(values: list):
    """The (name, offset) of the innermost message still open on the parser stack, if any.  An opener
    followed by its CLOSE on the stack is closed already (its rule waits for a valid lookahead)."""
    closed = 0
    for i in range(len(values) - 1, -1, -1):
        v = values[i]
        if not (isinstance(v, tuple) and v):
            continue
        if v[0] == "CLOSE":
            closed += 1
        elif v[0] in ("KEY_OPEN", "OPEN"):
            if closed:
                closed -= 1
                continue
            if v[0] == "KEY_OPEN":
                return v[1], v[3]
            # An OPEN follows a KEY (name: {) or sits in a list; the lexer folds a name and its "{" into
            # KEY_OPEN, so no NAME ever precedes an OPEN.
            prev = values[i - 1] if i > 0 else None
            name = prev[1] if isinstance(prev, tuple) and prev and prev[0] == "KEY" else ""
            return name, v[2]
    return None


def _in_list(values: list) -> bool:
    depth = 0
    for v in reversed(values):
        if isinstance(v, tuple) and v:
            if v[0] == "RSQB":
                depth += 1
            elif v[0] == "LSQB":
                if not depth:
                    return True
                depth -= 1
    return False
