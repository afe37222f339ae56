"""netc's prototxt front end against protobuf's own parser, `google.protobuf.text_format`.

text_format is the oracle: pycaffe parses with it.  Where it is laxer than the C++ parser that the `caffe`
binary uses, netc sides with C++, and section 3 lists those places.  Four checks:

1. every .prototxt of ../shared/corpus/ parses to the same message in both;
2. a table of small snippets, one per rule of the text format and one per kind of error: same verdict,
   same message on acceptance, and on rejection the same first error (wording and position) unless the
   snippet says why netc's differs;
3. the documented deviations, where netc follows the C++ parser (and the text-format spec) and rejects
   what Python's text_format lets through;
4. the error text a user sees, pinned verbatim.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import NamedTuple

import pytest
from google.protobuf import text_format

import netc
from netc import caffe_pb2
from netc.errors import NetcError, ParseError, SchemaError

# text_format unescapes with Python's "unicode_escape" codec, which warns about the escapes it does not know
# (\q, \8, \?) and octal escapes above \377.
pytestmark = pytest.mark.filterwarnings("ignore:invalid (octal )?escape sequence:DeprecationWarning")

REPO = Path(__file__).resolve().parents[1]
# CI checks shared/ out next to the clone, as in the workspace.
CORPUS = REPO.parent / "shared" / "corpus"

MESSAGE_CLASS = {"net": caffe_pb2.NetParameter, "solver": caffe_pb2.SolverParameter}


def python_parse(text: str, kind: str):
    return text_format.Parse(text, MESSAGE_CLASS[kind]())


def assert_same_message(ours, theirs) -> None:
    """Equal messages; NaN != NaN, so the text forms are compared first and `==` only without a NaN."""
    a = text_format.MessageToString(ours)
    b = text_format.MessageToString(theirs)
    if a != b:
        diff = "\n".join(difflib.unified_diff(b.splitlines(), a.splitlines(), "text_format", "netc", lineterm=""))
        pytest.fail(f"netc's message differs from text_format's:\n{diff}")
    if "nan" not in a:
        assert ours == theirs


def python_message(err: text_format.ParseError, text: str) -> str:
    """text_format's error without its location prefix `line:col : ` and, when present, the quoted line `'...': `."""
    msg = str(err).removeprefix(f"{err.GetLine()}:{err.GetColumn()} : ")
    # The tokenizer quotes the line it was reading: one of the text's lines, or "" past the end.
    for line in ["", *text.split("\n")]:
        quoted = f"'{line}': "
        if msg.startswith(quoted):
            return msg[len(quoted):]
    return msg


# ---------------------------------------------------------------------------------------------------------
# 1. The corpus

def _corpus_params():
    if not CORPUS.is_dir():
        reason = f"{CORPUS} is missing (CI checks shared/ out next to the repository)"
        return [pytest.param(None, id="corpus-missing", marks=pytest.mark.skip(reason=reason))]
    return [pytest.param(p, id=p.relative_to(CORPUS).as_posix()) for p in sorted(CORPUS.rglob("*.prototxt"))]


@pytest.mark.parametrize("path", _corpus_params())
def test_corpus_matches_text_format(path: Path) -> None:
    kind = "solver" if "solver" in path.name else "net"
    text = path.read_text(encoding="utf-8")
    assert_same_message(netc.parse_prototxt(text, kind), python_parse(text, kind))


# ---------------------------------------------------------------------------------------------------------
# 2. Snippets: one rule of the format, or one mistake, each

class Snippet(NamedTuple):
    id: str
    text: str
    valid: bool
    kind: str = "net"
    wording: str | None = None  # why netc's first error is worded differently from text_format's
    position: str | None = None  # why netc's first error (same wording) points elsewhere


def ok(id_: str, text: str, kind: str = "net") -> Snippet:
    return Snippet(id_, text, True, kind)


def bad(id_: str, text: str, kind: str = "net", *, wording: str | None = None, position: str | None = None) -> Snippet:
    return Snippet(id_, text, False, kind, wording, position)


# Reasons shared by several snippets.
SYNTAX = "a syntax error: netc says what it expected; text_format names its tokenizer state"
UNTERMINATED = "netc: 'string literal is missing its closing quote'; text_format: 'String missing ending quote'"
CODEC = "text_format passes on a Python codec error; netc names the bad escape"
UTF8 = "text_format passes on the UTF-8 codec error (and points past the string)"
SECOND_FIELD = "netc underlines the repeated field's name, text_format points at the value after it"
NOT_A_MESSAGE = "netc names the field and its scalar type; text_format reports the token it wanted"
NOT_A_SCALAR = "netc names the message field; text_format says only 'Expected \"{\".'"
NOT_REPEATED = "netc says the field is not repeated; text_format reports the '[' as a bad value"
LIST_COLON = "netc reports the missing ':' at the field name; text_format at the '['"
UNCLOSED = "netc points at the unclosed opening bracket; text_format at the end of the text"

SNIPPETS = [
    # --- whitespace, comments, empty input
    ok("empty-text", ""),
    ok("only-a-comment", "# nothing here"),
    ok("comment-line", '# a net\nname: "x"\n'),
    ok("comment-at-eof-no-newline", 'name: "x" # trailing'),
    ok("comment-after-message-at-eof", "layer {} # done"),
    ok("comment-between-name-and-colon", 'name # why not\n : "x"'),
    ok("comment-between-name-and-brace", "layer # the first\n { }"),
    ok("comment-inside-list", 'layer { bottom: [ "a", # first\n "b" ] }'),
    ok("hash-inside-string", 'name: "a#b" # c "d"'),
    ok("crlf-line-ends", 'name: "a"\r\nforce_backward: true\r\n'),
    ok("tab-formfeed-vtab-whitespace", 'name:\t"a"\x0c\x0bforce_backward: 1'),
    ok("no-whitespace-at-all", 'layer{name:"a"bottom:"b"}layer{}'),
    # --- strings
    ok("double-quoted", 'name: "x"'),
    ok("single-quoted", "name: 'x'"),
    ok("utf8-text", 'name: "café"'),
    ok("octal-escape", r'name: "\101\0"'),
    ok("octal-escape-stops-at-3-digits", r'name: "\1234"'),
    ok("octal-escapes-of-utf8-bytes", r'name: "caf\303\251"'),
    ok("hex-escape", r'name: "\x41\x4"'),
    ok("hex-escape-stops-at-2-digits", r'name: "\x414"'),
    ok("hex-escapes-of-utf8-bytes", r'name: "caf\xc3\xa9"'),
    ok("unicode-escape-4", r'name: "caf\u00e9"'),
    ok("unicode-escape-8", r'layer { top: "\U0001F600" }'),
    ok("simple-escapes", r'name: "\n\t\r\\\"\'\a\b\f\v"'),
    ok("quotes-escaped-in-single-quotes", r"name: 'it\'s \"q\"'"),
    ok("adjacent-strings-mixed-quotes", '''name: "a" 'b' "c"'''),
    ok("adjacent-strings-across-lines-and-comments", 'name: "a" # one\n  \'b\'\n  "c"'),
    ok("adjacent-strings-with-escapes", 'name: "caf" "\\u00e9" \'\\x21\''),
    ok("adjacent-strings-in-list", 'layer { bottom: ["a" "b", \'c\'] }'),
    bad("unterminated-double-quote", 'name: "abc', wording=UNTERMINATED),
    bad("unterminated-single-quote", "name: 'abc", wording=UNTERMINATED),
    bad("string-across-a-newline", 'name: "ab\ncd"', wording=UNTERMINATED),
    bad("escaped-closing-quote", 'name: "a\\"', wording=UNTERMINATED),
    bad("unterminated-after-adjacent-string", "name: \"a\" 'b", wording=UNTERMINATED),
    bad("hex-escape-without-digits", r'name: "\x"', wording=CODEC),
    bad("hex-escape-bad-digits", r"name: '\xZZ'", wording=CODEC),
    bad("octal-escape-above-377", r'name: "\400"', wording=CODEC),
    bad("unicode-escape-short", r'name: "\u00e"', wording=CODEC),
    bad("unicode-escape-surrogate", r'name: "\ud800"', wording=CODEC),
    bad("unicode-escape-above-10ffff", r'name: "\U00110000"', wording=CODEC),
    bad("escape-gives-invalid-utf8", r'name: "\377"', wording=UTF8),
    bad("escape-gives-truncated-utf8", r'name: "\xE9"', wording=UTF8),
    # --- integers (input_dim: int32, crop_size: uint32, random_seed: int64)
    ok("int-decimal", "input_dim: 10"),
    ok("int-zero-and-negative-zero", "input_dim: 0 input_dim: -0 input_dim: 00"),
    ok("int-hex", "input_dim: 0x1F input_dim: 0X1f"),
    ok("int-octal", "input_dim: 017"),
    ok("int-negative", "input_dim: -5"),
    ok("int-negative-hex-and-octal", "input_dim: -0x10 input_dim: -017"),
    ok("int32-limits", "input_dim: -2147483648 input_dim: 2147483647"),
    ok("uint32-max", "layer { transform_param { crop_size: 4294967295 } }"),
    ok("uint32-max-hex", "layer { transform_param { crop_size: 0xFFFFFFFF } }"),
    ok("int64-limits", "random_seed: 9223372036854775807", "solver"),
    ok("int64-min", "random_seed: -9223372036854775808", "solver"),
    ok("int64-list", "input_shape { dim: [1, 3, -1, 0x10] }"),
    bad("int-from-string", 'input_dim: "3"'),
    bad("int-from-float", "input_dim: 1.5"),
    bad("int-from-exponent", "input_dim: 1e3"),
    bad("int-from-f-suffix", "input_dim: 1f"),
    bad("int-from-inf", "input_dim: inf"),
    bad("int-from-identifier", "input_dim: -abc"),
    bad("int-bad-octal-digit", "input_dim: 08"),
    bad("int-hex-without-digits", "input_dim: 0x"),
    bad("int-glued-to-identifier", "input_dim: 1x"),
    bad("int-in-list-from-float", "input_shape { dim: [1.5] }"),
    bad("int32-above-max", "input_dim: 2147483648"),
    bad("int32-below-min", "input_dim: -2147483649"),
    bad("int32-far-out", "input_dim: 99999999999999999999999"),
    bad("uint32-negative", "layer { transform_param { crop_size: -1 } }"),
    bad("uint32-2-to-the-32", "layer { transform_param { crop_size: 4294967296 } }"),
    bad("int64-above-max", "random_seed: 9223372036854775808", "solver"),
    # --- floats (loss_weight: repeated float; double_data: repeated double)
    ok("float-exponent", "layer { loss_weight: 1e-4 loss_weight: -1.5E+3 loss_weight: 1.e5 }"),
    ok("float-leading-dot", "layer { loss_weight: .5 loss_weight: -.5 }"),
    ok("float-trailing-dot", "layer { loss_weight: 5. }"),
    ok("float-f-suffix", "layer { loss_weight: 1.5f loss_weight: .5f loss_weight: 5.f loss_weight: 1.5e3f }"),
    ok("float-int-with-f-suffix", "layer { loss_weight: 1f loss_weight: 1F }"),
    ok("float-from-int", "layer { loss_weight: 2 loss_weight: -0.0 }"),
    ok("float-inf", "layer { loss_weight: inf loss_weight: -inf loss_weight: INF }"),
    ok("float-infinity", "layer { loss_weight: Infinity loss_weight: -Infinity loss_weight: iNfInItY }"),
    ok("float-nan", "layer { loss_weight: nan loss_weight: NaN loss_weight: -nan }"),
    ok("float-overflow-is-inf", "layer { loss_weight: 1e400 loss_weight: 3.5e38 }"),
    ok("float-list-with-nan-and-inf", "layer { loss_weight: [nan, 1, -inf, 2.5f] }"),
    ok("double-list", "layer { blobs { double_data: [1.5, inf, -2] } }"),
    bad("float-from-hex", "layer { loss_weight: 0x10 }"),
    bad("float-octal-looking", "layer { loss_weight: 01 }"),
    bad("float-octal-looking-fraction", "layer { loss_weight: 00.5 }"),
    bad("float-dangling-exponent", "layer { loss_weight: 0.5e }"),
    bad("float-two-dots", "layer { loss_weight: 0.5.5 }"),
    bad("float-from-string", 'layer { loss_weight: "1" }'),
    bad("float-from-identifier", "layer { loss_weight: foo }"),
    bad("float-infinite-misspelt", "layer { loss_weight: infinite }"),
    bad("float-exponent-without-mantissa", "layer { loss_weight: e5 }"),
    bad("double-list-from-hex", "layer { blobs { double_data: [1.5, -0x1] } }"),
    # --- bools (force_backward; propagate_down is repeated)
    ok("bool-words", "force_backward: true debug_info: False"),
    ok("bool-short-and-digits", "force_backward: t debug_info: 0"),
    ok("bool-list", "layer { propagate_down: [true, 0, f, True, 1, false] }"),
    bad("bool-from-number", "force_backward: 2"),
    bad("bool-from-upper-case", "force_backward: TRUE"),
    bad("bool-from-string", 'force_backward: "true"'),
    bad("bool-from-hex", "force_backward: 0x1"),
    bad("bool-from-float", "force_backward: 1.0"),
    bad("bool-list-from-number", "layer { propagate_down: [2] }"),
    # --- enums (phase: caffe.Phase; blob_share_mode: repeated V1 enum)
    ok("enum-by-name", "layer { phase: TRAIN }"),
    ok("enum-by-number", "layer { phase: 1 }"),
    ok("enum-by-hex-number", "layer { phase: 0x1 }"),
    ok("enum-list-names-and-numbers", "layers { blob_share_mode: [STRICT, 1, PERMISSIVE] }"),
    bad("enum-unknown-name", "layer { phase: FOO }"),
    bad("enum-name-wrong-case", "layer { phase: train }"),
    bad("enum-name-quoted", 'layer { phase: "TRAIN" }'),
    bad("enum-name-negated", "layer { phase: -TRAIN }"),
    bad("enum-unknown-number", "layer { phase: 7 }"),
    bad("enum-negative-number", "layer { phase: -1 }"),
    bad("enum-unknown-hex-number", "layer { phase: 0x3 }"),
    bad("enum-from-float", "layer { phase: 1.0 }"),
    bad("enum-list-unknown-number", "layers { blob_share_mode: [STRICT, 2] }"),
    bad("enum-list-unknown-name", "layers { blob_share_mode: [FOO] }"),
    # --- strings in the wrong place
    bad("string-from-identifier", "name: abc"),
    bad("string-from-negative-identifier", "name: -abc"),
    bad("string-list-from-identifier", 'layer { bottom: ["a", b] }'),
    # --- fields and messages
    ok("scalar-field", 'name: "a"'),
    ok("message-braces", "layer { convolution_param { num_output: 1 } }"),
    ok("message-colon-braces", 'layer: { name: "a" }'),
    ok("message-angles", 'layer < name: "a" >'),
    ok("message-colon-angles", 'layer: < name: "a" >'),
    ok("message-empty-angles", "layer: < >"),
    ok("angles-around-braces", "layer < convolution_param { num_output: 1 } >"),
    ok("brace-on-next-line", 'layer\n{\nname: "a"\n}'),
    ok("repeated-message-twice", "layer {} layer {}"),
    ok("repeated-submessages", "layer { include { phase: TRAIN } include { phase: TEST stage: 'a' } }"),
    ok("all-separators", 'layer { name: "a", bottom: "b"; top: "c" }'),
    ok("separator-after-each-field", 'name: "a", force_backward: true;'),
    ok("separator-after-messages", 'layer { name: "a" }, layer: { name: "b" };'),
    ok("separator-before-closing-brace", 'layer { name: "a"; type: "b", }'),
    ok("separator-at-eof", 'name: "a" ; force_backward: 1 ,'),
    ok("solver-with-net-param", 'type: "SGD" net_param { layer { name: "a" } }', "solver"),
    bad("unknown-field", 'layer { bottoms: "x" }'),
    bad("unknown-top-level-field", "foo: 1"),
    bad("unknown-field-on-line-3", '\n\n  layer { bottoms: "x" }'),
    bad("message-for-string", "name { }", wording=NOT_A_MESSAGE),
    bad("colon-message-for-string", "name: { }", wording=NOT_A_MESSAGE),
    bad("scalar-for-message", "layer: 1", wording=NOT_A_SCALAR),
    bad("string-for-message", 'layer: "a"', wording=NOT_A_SCALAR),
    bad("scalar-for-nested-message", "layer { convolution_param: 1 }", wording=NOT_A_SCALAR),
    bad("scalar-given-twice", 'name: "a" name: "b"', position=SECOND_FIELD),
    bad("bool-given-twice", "debug_info: true debug_info: false", position=SECOND_FIELD),
    bad("enum-given-twice", "layer { phase: TRAIN phase: TEST }", position=SECOND_FIELD),
    bad("message-given-twice", "layer { convolution_param { } convolution_param { } }", position=SECOND_FIELD),
    bad("colon-missing-before-scalar", 'name "a"', wording=SYNTAX),
    bad("colon-missing-nested", "layer { convolution_param { num_output 1 } }", wording=SYNTAX),
    bad("colon-doubled", 'name:: "a"', wording=SYNTAX),
    bad("colon-without-value", "name:", wording=SYNTAX),
    bad("colon-without-value-in-message", "layer { name: }", wording=SYNTAX),
    bad("stray-colon", 'name: "a" :', wording=SYNTAX),
    bad("value-without-name", 'name: "a" 5', wording=SYNTAX),
    bad("name-without-value", "name: 'a' b", wording=SYNTAX),
    bad("extension-syntax", "[caffe.foo]: 1", wording=SYNTAX),
    # --- separators
    bad("two-semicolons", 'name: "a";;', wording=SYNTAX),
    bad("two-commas", 'name: "a",,', wording=SYNTAX),
    bad("two-separators-in-message", 'layer { name: "a";; }', wording=SYNTAX),
    bad("two-separators-after-message", "layer {}; ;", wording=SYNTAX),
    bad("leading-separator", ';name: "a"', wording=SYNTAX),
    bad("separator-alone-in-message", "layer { ; }", wording=SYNTAX),
    # --- brackets
    bad("unclosed-brace", 'layer { name: "a"', wording=UNCLOSED),
    bad("unclosed-brace-then-comment", 'layer { name: "a" # c', wording=UNCLOSED),
    bad("unclosed-colon-brace", 'layer: { name: "a" ', wording=UNCLOSED),
    bad("unclosed-angle", "layer <", wording=SYNTAX),
    bad("extra-closing-brace", "layer { } }", wording=SYNTAX),
    bad("closing-brace-alone", "}", wording=SYNTAX),
    bad("extra-closing-angle", "layer < >>", wording=SYNTAX),
    bad("brace-closed-by-angle", 'layer { name: "a" >', wording=SYNTAX),
    bad("angle-closed-by-brace", 'layer < name: "a" }', wording=SYNTAX),
    bad("braces-without-name", "{ }", wording=SYNTAX),
    bad("nested-braces-without-name", "layer { { } }", wording=SYNTAX),
    bad("angle-alone", "<", wording=SYNTAX),
    # --- lists
    ok("scalar-list", 'layer { bottom: ["a", "b"] }'),
    ok("int-list", "input_dim: [1, 3, 0x10, 017]"),
    ok("uint32-list", "layer { convolution_param { kernel_size: [3, 5] stride: 2 } }"),
    ok("mixed-scalar-list", "layer { transform_param: { crop_size: 1, mirror: true, mean_value: [1, 2.5, .5] } }"),
    ok("list-and-single-values-mix", 'layer { bottom: "a" bottom: ["b", "c"] bottom: "d" }'),
    ok("message-list-no-colon", 'layer [{ name: "a" }, { name: "b" }]'),
    ok("message-list-colon-mixed-brackets", 'layer: [{ name: "a" }, < name: "b" >]'),
    ok("empty-scalar-list", "layer { bottom: [] }"),
    ok("empty-message-list", "layer []"),
    ok("empty-message-list-colon", "layer: []"),
    bad("list-trailing-comma", 'layer { bottom: ["a", ] }', wording=SYNTAX),
    bad("message-list-trailing-comma", 'layer: [{ name: "a" }, ]', wording=SYNTAX),
    bad("list-leading-comma", 'layer { bottom: [, "a"] }', wording=SYNTAX),
    bad("list-only-comma", "layer: [,]", wording=SYNTAX),
    bad("list-semicolon", 'layer { bottom: ["a"; "b"] }', wording=SYNTAX),
    bad("message-list-without-comma", 'layer: [{ name: "a" } { name: "b" }]', wording=SYNTAX),
    bad("list-closed-by-brace", 'layer { bottom: ["a", "b" }', wording=SYNTAX),
    bad("list-unclosed", "layer [", wording=SYNTAX),
    bad("message-list-unclosed", "layer: [{}", wording=SYNTAX),
    bad("stray-closing-bracket", 'layer { bottom: "a" ] }', wording=SYNTAX),
    bad("list-for-non-repeated", 'name: ["a"]', wording=NOT_REPEATED),
    bad("list-for-non-repeated-nested", 'layer: { name: ["a"] }', wording=NOT_REPEATED),
    bad("list-after-single-value", 'name: "a" name: ["b"]', wording="netc reports the second 'name'; "
        "text_format the '[' (it checks a value before counting fields)"),
    bad("scalar-list-without-colon", 'layer { bottom ["a"] }', wording=LIST_COLON),
    bad("message-in-scalar-list", "layer { bottom: [{}] }", wording=NOT_A_MESSAGE),
    bad("scalar-in-message-list", "layer: [1]", wording=NOT_A_SCALAR),
    bad("scalar-in-message-list-no-colon", "layer [1]", wording=NOT_A_SCALAR),
]


def _snippet_params(snippets):
    ids = [s.id for s in snippets]
    assert len(ids) == len(set(ids)), "snippet ids must be unique"
    return [pytest.param(s, id=s.id) for s in snippets]


def _both(s: Snippet):
    """(netc's message or NetcError, text_format's message or ParseError)."""
    try:
        ours = netc.parse_prototxt(s.text, s.kind)
    except NetcError as e:
        ours = e
    try:
        theirs = python_parse(s.text, s.kind)
    except text_format.ParseError as e:
        theirs = e
    return ours, theirs


@pytest.mark.parametrize("s", _snippet_params(SNIPPETS))
def test_snippet_verdict_and_message(s: Snippet) -> None:
    ours, theirs = _both(s)
    python_ok = not isinstance(theirs, Exception)
    assert python_ok == s.valid, f"the table says valid={s.valid}, text_format says {theirs!r}"
    if s.valid:
        assert not isinstance(ours, Exception), f"netc rejects valid text:\n{ours.render()}"
        assert_same_message(ours, theirs)
    else:
        assert isinstance(ours, (ParseError, SchemaError)), f"netc accepts what text_format rejects ({theirs})"
        first = ours.errors[0]
        assert first.span is not None, "every syntax or schema error has a location"


# The errors that keep protobuf's wording; the others say in the table why theirs differs.
SAME_WORDING = [s for s in SNIPPETS if not s.valid and s.wording is None]


@pytest.mark.parametrize("s", _snippet_params(SAME_WORDING))
def test_first_error_matches_text_format(s: Snippet) -> None:
    ours, theirs = _both(s)
    first = ours.errors[0]
    assert first.message == python_message(theirs, s.text)
    if not s.position:
        assert (first.span.line, first.span.col) == (theirs.GetLine(), theirs.GetColumn())


def test_snippet_table_is_large_and_covers_both_verdicts() -> None:
    assert len(SNIPPETS) >= 60
    assert sum(s.valid for s in SNIPPETS) >= 30 and sum(not s.valid for s in SNIPPETS) >= 30
    assert all(s.valid or s.wording or s.position or s in SAME_WORDING for s in SNIPPETS)


# ---------------------------------------------------------------------------------------------------------
# 3. Documented deviations: Python's text_format accepts, the C++ parser (Caffe's) and netc reject

class Deviation(NamedTuple):
    id: str
    text: str
    message: str  # netc's first error, verbatim
    reason: str
    kind: str = "net"


DEVIATIONS = [
    Deviation("unknown-escape", r'name: "\q"', r"Invalid escape sequence \q in string literal",
              "C++ accepts only the escapes of the spec; Python keeps an unknown one as backslash + letter"),
    Deviation("escape-of-non-octal-digit", r'name: "\8"', r"Invalid escape sequence \8 in string literal",
              "\\8 and \\9 are not octal escapes; Python keeps them as written"),
    Deviation("leading-plus-int", "input_dim: +5", 'unexpected character "+"',
              "the spec has only a minus sign; Python hands '+5' to int()"),
    Deviation("leading-plus-int64", "random_seed: +1", 'unexpected character "+"',
              "the spec has only a minus sign; Python hands '+1' to int()", "solver"),
    Deviation("leading-plus-float", "layer { loss_weight: +1.5 }", 'unexpected character "+"',
              "the spec has only a minus sign; Python hands '+1.5' to float()"),
    Deviation("leading-plus-enum-number", "layer { phase: +1 }", 'unexpected character "+"',
              "the spec has only a minus sign; Python reads '+1' as enum number 1"),
    Deviation("underscore-digits-int", "input_dim: 1_000", "Couldn't parse integer: 1_000",
              "digit separators are Python syntax, not text format"),
    Deviation("underscore-digits-float", "layer { loss_weight: 1_0.5 }", "Couldn't parse float: 1_0.5",
              "digit separators are Python syntax, not text format"),
    Deviation("python-octal-prefix", "input_dim: 0o17", "Couldn't parse integer: 0o17",
              "the text format writes octal as 017; 0o is Python's int(text, 0)"),
    Deviation("python-octal-prefix-int64", "random_seed: 0o7", "Couldn't parse integer: 0o7",
              "the text format writes octal as 07; 0o is Python's int(text, 0)", "solver"),
    Deviation("python-binary-prefix", "input_dim: 0b1", "Couldn't parse integer: 0b1",
              "the text format has no binary literals; 0b is Python's int(text, 0)"),
    Deviation("python-binary-enum-number", "layer { phase: 0b1 }", 'Enum type "caffe.Phase" has no value named 0b1.',
              "the text format has no binary literals; 0b is Python's int(text, 0)"),
    Deviation("missing-required-field", "layer { clip_param { min: 0 } }",
              "Message missing required field: layer[0].clip_param.max",
              "C++ TextFormat::Parse fails on a message without its required fields; text_format.Parse does not check"),
    Deviation("missing-required-field-in-solver-net", "net_param { layer { clip_param {} } }",
              "Message missing required field: net_param.layer[0].clip_param.min",
              "C++ TextFormat::Parse fails on a message without its required fields; text_format.Parse does not check",
              "solver"),
]


@pytest.mark.parametrize("d", [pytest.param(d, id=d.id) for d in DEVIATIONS])
def test_deviation_netc_rejects_what_python_accepts(d: Deviation) -> None:
    python_parse(d.text, d.kind)  # Python's text_format lets it through...
    with pytest.raises(NetcError) as info:  # ...netc, like Caffe's C++ parser, does not.
        netc.parse_prototxt(d.text, d.kind)
    assert info.value.errors[0].message == d.message, d.reason


def test_deviation_question_mark_escape_is_a_question_mark() -> None:
    # The spec and the C++ tokenizer read \? as "?"; Python's text_format keeps the backslash.
    text = r'name: "a\?"'
    assert netc.parse_prototxt(text).name == "a?"
    assert python_parse(text, "net").name == "a\\?"


# ---------------------------------------------------------------------------------------------------------
# 4. Error text, verbatim

def first_error(text: str, kind: str = "net"):
    with pytest.raises(NetcError) as info:
        netc.parse_prototxt(text, kind)
    return info.value, info.value.errors[0]


PINNED_SCHEMA_ERRORS = [
    # (id, text, line, col, netc's message = protobuf's wording)
    ("unknown-field", 'layer { bottoms: "x" }', 1, 9,
     'Message type "caffe.LayerParameter" has no field named "bottoms".'),
    # netc underlines the second `name`; text_format points at its value (2:7).
    ("field-twice", 'name: "a"\nname: "b"', 2, 1,
     'Message type "caffe.NetParameter" should not have multiple "name" fields.'),
    ("enum-name", "layer {\n  phase: FOO\n}", 2, 10, 'Enum type "caffe.Phase" has no value named FOO.'),
    ("enum-number", "layer { phase: 7 }", 1, 16, 'Enum type "caffe.Phase" has no value with number 7.'),
    ("out-of-range", "layer { transform_param { crop_size: -1 } }", 1, 38, "Value out of range: -1"),
    ("int-from-float", "input_dim: 1.5", 1, 12, "Couldn't parse integer: 1.5"),
    ("float-from-name", "layer { loss_weight: foo }", 1, 22, "Couldn't parse float: foo"),
    ("bool-from-number", "force_backward: 2", 1, 17, 'Expected "true" or "false".'),
    ("string-from-name", "name: abc", 1, 7, "Expected string but found: 'abc'"),
]


def _rows(table):
    return [pytest.param(*row[1:], id=row[0]) for row in table]


@pytest.mark.parametrize("text, line, col, message", _rows(PINNED_SCHEMA_ERRORS))
def test_schema_error_keeps_protobuf_wording(text, line, col, message) -> None:
    err, d = first_error(text)
    assert isinstance(err, SchemaError)
    assert (d.message, d.span.line, d.span.col) == (message, line, col)
    with pytest.raises(text_format.ParseError) as theirs:
        python_parse(text, "net")
    assert python_message(theirs.value, text) == message


# Syntax errors are netc's own words: what was found, what could come instead.
PINNED_SYNTAX_ERRORS = [
    # (id, text, line, col, message)
    ("missing-colon", 'name "a"', 1, 6, 'expected ":" between field name "name" and its value'),
    ("unterminated-string", 'name: "abc', 1, 7, 'string literal is missing its closing quote "'),
    ("unclosed-brace", 'layer {\n  name: "a"\n', 1, 7,
     'expected "}" to close "layer {" opened on line 1, found the end of the file'),
    ("brace-closed-by-angle", 'layer {\n  name: "a"\n>', 3, 1, 'expected "}" to close the "{" on line 1, found ">"'),
    ("extra-closing-brace", "layer { } }", 1, 11, 'unexpected "}": no message is open here'),
    ("two-separators", 'name: "a";;', 1, 11, 'unexpected ";", expected a field name or the end of the file'),
    ("two-separators-in-message", 'layer { name: "a";; }', 1, 19, 'unexpected ";", expected a field name or "}"'),
    ("list-trailing-comma", 'layer { bottom: ["a", ] }', 1, 23, 'unexpected "]", expected a value'),
    ("list-semicolon", 'layer { bottom: ["a"; "b"] }', 1, 21, 'unexpected ";", expected "," or "]"'),
]


@pytest.mark.parametrize("text, line, col, message", _rows(PINNED_SYNTAX_ERRORS))
def test_syntax_error_wording(text, line, col, message) -> None:
    err, d = first_error(text)
    assert isinstance(err, ParseError)
    assert (d.message, d.span.line, d.span.col) == (message, line, col)


# After a top-level `name { ... }`, a stray token must not be reported as if "}" could come next (the closed
# message's KEY_OPEN is still on the parser stack, not yet reduced, when the error is found).
@pytest.mark.parametrize("text", ["layer {} ;;", "layer < > ]", "layer {} 5"])
def test_syntax_error_after_top_level_message_offers_no_brace(text) -> None:
    _, d = first_error(text)
    assert d.message.endswith("expected a field name or the end of the file"), d.message


def test_render_is_compiler_style() -> None:
    err, _ = first_error('layer {\n  bottoms: "x"\n}')
    assert err.render() == (
        '<text>:2:3: error: Message type "caffe.LayerParameter" has no field named "bottoms".\n'
        '  bottoms: "x"\n'
        "  ^^^^^^^\n"
        '  hint: did you mean "bottom"?'
    )


def test_every_independent_schema_error_is_reported_in_order() -> None:
    err, _ = first_error('layer { bottoms: "x" } foo: 1 name: abc')
    assert [(d.span.col, d.message) for d in err.errors] == [
        (9, 'Message type "caffe.LayerParameter" has no field named "bottoms".'),
        (24, 'Message type "caffe.NetParameter" has no field named "foo".'),
        (37, "Expected string but found: 'abc'"),
    ]
