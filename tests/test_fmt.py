"""`netc fmt`: the canonical layout, pinned on small inputs, and three properties over every prototxt of the
corpus and of nets/ (idempotent, same message, every comment kept in order); then the command's --check and
--in-place modes."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest

import netc
from netc.cli import main
from netc.errors import ParseError, Source
from netc.fmt import format_document
from netc.syntax import comments, parse

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
NETS = ROOT / "nets"
CORPUS = SHARED / "corpus"


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("NETC_DEBUG", raising=False)


def fmt(text: str) -> str:
    return format_document(parse(Source("t.prototxt", text)))


def _files() -> list:
    files = [pytest.param(p, id=f"nets/{p.relative_to(NETS)}") for p in sorted(NETS.glob("**/*.prototxt"))]
    if CORPUS.is_dir():
        files += [pytest.param(p, id=f"corpus/{p.relative_to(CORPUS)}")
                  for p in sorted(CORPUS.glob("**/*.prototxt"))]
    return files


def test_corpus_is_there():
    if not CORPUS.is_dir():
        pytest.skip(f"no shared corpus at {CORPUS}")
    assert len(list(CORPUS.glob("**/*.prototxt"))) > 50


# --------------------------------------------------------------------------------------------------------
# Properties over every file

@pytest.mark.parametrize("path", _files())
def test_fmt_properties(path):
    text = path.read_text(encoding="utf-8")
    out = fmt(text)
    assert fmt(out) == out, "not idempotent"
    kind = "solver" if "solver" in path.name else "net"
    assert netc.parse_prototxt(out, kind) == netc.parse_prototxt(text, kind)
    # Every comment, in order (trailing blanks of a comment line are not kept).
    assert [c for _, c in comments(out)] == [c.rstrip() for _, c in comments(text)]
    assert out.endswith("\n") and "\n\n\n" not in out and not out.startswith("\n")
    assert all(line == line.rstrip() for line in out.splitlines())


# --------------------------------------------------------------------------------------------------------
# The layout, pinned

LAYOUT = {
    "angle-brackets": ("layer <\n  name: \"a\"\n  top: \"a\"\n>\n",
                       "layer {\n  name: \"a\"\n  top: \"a\"\n}\n"),
    "colon-before-message": ("layer: {\n  name: \"a\"\n  top: \"a\"\n}\n",
                             "layer {\n  name: \"a\"\n  top: \"a\"\n}\n"),
    "colon-and-angle-brackets": ("layer: < name: \"a\" >\n", "layer { name: \"a\" }\n"),
    "separators": ("name: \"n\";\nforce_backward: true,\nlayer {\n  name: \"a\";\n  top: \"a\",\n}\n",
                   "name: \"n\"\nforce_backward: true\nlayer {\n  name: \"a\"\n  top: \"a\"\n}\n"),
    "single-quotes": ("name: 'n'\n", "name: \"n\"\n"),
    "single-quotes-with-double-quote": ("name: 'say \"hi\"'\n", "name: \"say \\\"hi\\\"\"\n"),
    "single-quotes-with-escaped-quote": ("name: 'it\\'s'\n", "name: \"it's\"\n"),
    "adjacent-strings": ("name: \"conv\" '1' \"_a\"\n", "name: \"conv1_a\"\n"),
    "utf8-string": ("name: \"réseau\"\n", "name: \"réseau\"\n"),
    "hash-in-string": ("name: \"a#b\"  # real\n", "name: \"a#b\"  # real\n"),
    "scalar-list": ("input_dim: [1, 3,224,   224]\n", "input_dim: [1, 3, 224, 224]\n"),
    "string-list": ("layer { top: ['a', \"b\"] }\n", "layer { top: [\"a\", \"b\"] }\n"),
    "empty-list": ("layer { bottom: [] }\n", "layer { bottom: [] }\n"),
    "message-list": ("layer { blobs: [{ shape { dim: 1 } },{ shape { dim: 2 } }] }\n",
                     "layer {\n  blobs { shape { dim: 1 } }\n  blobs { shape { dim: 2 } }\n}\n"),
    "message-list-scalars": ("layer { param [{lr_mult: 1}, {lr_mult: 2}] }\n",
                             "layer {\n  param { lr_mult: 1 }\n  param { lr_mult: 2 }\n}\n"),
    "one-line-message": ("layer {\n  param {lr_mult:1   decay_mult:1}\n}\n",
                         "layer {\n  param { lr_mult: 1 decay_mult: 1 }\n}\n"),
    "one-line-top-level": ("layer { name: \"a\" type: \"ReLU\" }\n", "layer { name: \"a\" type: \"ReLU\" }\n"),
    "empty-message": ("layer {}\nlayer < >\n", "layer { }\nlayer { }\n"),
    "one-line-with-message-is-expanded": ("layer { convolution_param { num_output: 4 } }\n",
                                          "layer {\n  convolution_param { num_output: 4 }\n}\n"),
    "one-line-too-long-is-expanded": (
        "layer { name: \"" + "a" * 50 + "\" type: \"Convolution\" bottom: \"" + "b" * 20 + "\" top: \"c\" }\n",
        "layer {\n  name: \"" + "a" * 50 + "\"\n  type: \"Convolution\"\n  bottom: \"" + "b" * 20
        + "\"\n  top: \"c\"\n}\n"),
    "multi-line-message-indented": ("layer {\nname: \"a\"\n        convolution_param {\nnum_output: 4\n"
                                    "      kernel_size: 3 }}\n",
                                    "layer {\n  name: \"a\"\n  convolution_param {\n    num_output: 4\n"
                                    "    kernel_size: 3\n  }\n}\n"),
    "tabs": ("layer {\n\tname: \"a\"\n\ttop:\t\"a\"\n}\n", "layer {\n  name: \"a\"\n  top: \"a\"\n}\n"),
    "fields-on-one-line-at-top": ("name: \"n\" force_backward: true\n", "name: \"n\"\nforce_backward: true\n"),
    "numbers-as-written": ("layer { dropout_param { dropout_ratio: .5 } threshold_param { threshold: -inf } "
                           "convolution_param { bias_term: False weight_filler { std: 1e-2 } } }\n",
                           "layer {\n  dropout_param { dropout_ratio: .5 }\n"
                           "  threshold_param { threshold: -inf }\n"
                           "  convolution_param { bias_term: False weight_filler { std: 1e-2 } }\n}\n"),
    "trailing-comment": ("name: \"n\"   # the name\nlayer {\n  name: \"a\" # first\n  top: \"a\"\n}  # done\n",
                         "name: \"n\"  # the name\nlayer {\n  name: \"a\"  # first\n  top: \"a\"\n}  # done\n"),
    "comment-after-open": ("layer { # opens\n  name: \"a\"\n}\n", "layer {  # opens\n  name: \"a\"\n}\n"),
    "trailing-comment-after-one-line-message": ("layer {\n  param { lr_mult: 1 }  # weights\n}\n",
                                                "layer {\n  param { lr_mult: 1 }  # weights\n}\n"),
    "comment-before-close": ("layer {\n  name: \"a\"\n# last word\n}\n",
                             "layer {\n  name: \"a\"\n  # last word\n}\n"),
    # The lexer folds a name and its bracket into one token across whitespace and comments.
    "comment-between-name-and-brace": ("layer # why\n\n  {\n  name: \"a\"\n}\n",
                                       "layer {\n  # why\n  name: \"a\"\n}\n"),
    "comment-before-field": ("layer {\n      # the name\n  name: \"a\"\n}\n",
                             "layer {\n  # the name\n  name: \"a\"\n}\n"),
    "comment-splits-one-line-message": ("layer { name: \"a\" # why\n top: \"a\" }\n",
                                        "layer {\n  name: \"a\"  # why\n  top: \"a\"\n}\n"),
    "blank-lines-collapse": ("name: \"n\"\n\n\n\nlayer {\n  name: \"a\"\n\n\n\n  top: \"a\"\n}\n\n\n",
                             "name: \"n\"\n\nlayer {\n  name: \"a\"\n\n  top: \"a\"\n}\n"),
    "blank-line-kept-before-comment": ("name: \"n\"\n\n\n# layers\nlayer { name: \"a\" }\n",
                                       "name: \"n\"\n\n# layers\nlayer { name: \"a\" }\n"),
    "no-blank-line-added": ("name: \"n\"\nlayer { name: \"a\" }\nlayer { name: \"b\" }\n",
                            "name: \"n\"\nlayer { name: \"a\" }\nlayer { name: \"b\" }\n"),
    "leading-blank-lines": ("\n\n\nname: \"n\"\n", "name: \"n\"\n"),
    "comment-at-eof-without-newline": ("name: \"n\"\n# the end", "name: \"n\"\n# the end\n"),
    "trailing-comment-at-eof-without-newline": ("name: \"n\" # the end", "name: \"n\"  # the end\n"),
    "only-a-comment": ("# nothing yet", "# nothing yet\n"),
    "empty": ("", ""),
    "only-blank-lines": ("\n\n \n", ""),
    "crlf": ("name: \"n\"\r\n# c\r\nlayer {\r\n  name: \"a\"  # t\r\n}\r\n",
             "name: \"n\"\n# c\nlayer {\n  name: \"a\"  # t\n}\n"),
}


@pytest.mark.parametrize("case", list(LAYOUT))
def test_layout(case):
    text, expected = LAYOUT[case]
    out = fmt(text)
    assert out == expected
    assert fmt(out) == out
    assert netc.parse_prototxt(out) == netc.parse_prototxt(text)


# --------------------------------------------------------------------------------------------------------
# Syntax errors fmt stops at: which bracket opened the message, found whatever path the opener took
# (a name and its bracket, "name: {", or a message in a list)

@pytest.mark.parametrize("text,message", [
    ("layer <\n  name: \"a\"\n}", 'expected ">" to close the "<" on line 1, found "}"'),
    ("layer # c\n{\n  name: \"a\"\n>", 'expected "}" to close the "{" on line 2, found ">"'),
    ("layer: {\n  name: \"a\"\n>", 'expected "}" to close the "{" on line 1, found ">"'),
    ("layer { blobs: [{ }, <\n}] }", 'expected ">" to close the "<" on line 1, found "}"'),
    ("layer: <\n  name: \"a\"\n", 'expected ">" to close "layer <" opened on line 1, found the end of the file'),
    ("layer {\n  blobs: [\n{", 'expected "}" to close "{" opened on line 3, found the end of the file'),
], ids=["angle-closed-by-brace", "brace-after-comment-closed-by-angle", "colon-brace-closed-by-angle",
        "angle-in-list-closed-by-brace", "colon-angle-unclosed", "list-message-unclosed"])
def test_fmt_bracket_errors(text, message):
    with pytest.raises(ParseError) as e:
        fmt(text)
    assert [d.message for d in e.value.diagnostics] == [message]


# --------------------------------------------------------------------------------------------------------
# Upgraded messages

def test_message_lines_one_line_at_its_own_depth():
    # A nested message goes on one line if it fits at the depth where it is printed: the same filler fits
    # at depth 1 and not at depth 2 (100 columns).
    from netc.caffe_pb2 import LayerParameter
    from netc.fmt import message_lines
    layer = LayerParameter()
    layer.convolution_param.weight_filler.type = "x" * 71
    filler = 'weight_filler { type: "' + "x" * 71 + '" }'
    assert message_lines(layer.convolution_param, 1) == ["  " + filler]
    assert message_lines(layer, 1) == ["  convolution_param {", "    weight_filler {",
                                       '      type: "' + "x" * 71 + '"', "    }", "  }"]


V1_COMMENTED = """# header
name: "c"
# the input
input: "data"
input_dim: 2 input_dim: 3
input_dim: 13
input_dim: 17
""" + "".join(f"""# before {i}
layers {{
  name: "r{i}"  # inside {i}
  type: RELU bottom: "data" top: "data"
}}
""" for i in range(40)) + "# the end\n"


def test_upgrade_comments_follow_their_fields(capsys, tmp_path):
    p = tmp_path / "v1.prototxt"
    p.write_text(V1_COMMENTED)
    rc, out, err = run(capsys, "upgrade", str(p))
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[:4] == ["# header", 'name: "c"', "# the input", "layer {"]
    assert lines[4] == '  name: "input"'
    for i in range(40):
        k = lines.index(f"# before {i}")
        assert lines[k + 1: k + 4] == [f"# inside {i}", "layer {", f'  name: "r{i}"']
    assert lines[-1] == "# the end"
    assert [c for _, c in comments(out)] == [c for _, c in comments(V1_COMMENTED)]

# --------------------------------------------------------------------------------------------------------
# The command

UNFORMATTED = "name: 'n';\nlayer <\n name: \"a\" type: \"ReLU\"\n>\n"
FORMATTED = "name: \"n\"\nlayer {\n  name: \"a\"\n  type: \"ReLU\"\n}\n"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def test_fmt_prints_to_stdout(capsys, tmp_path):
    p = tmp_path / "u.prototxt"
    p.write_text(UNFORMATTED)
    rc, out, err = run(capsys, "fmt", str(p))
    assert (rc, out, err) == (0, FORMATTED, "")
    assert p.read_text() == UNFORMATTED


def test_fmt_several_files(capsys, tmp_path):
    a, b = tmp_path / "a.prototxt", tmp_path / "b.prototxt"
    a.write_text(UNFORMATTED)
    b.write_text("# b\n")
    rc, out, _ = run(capsys, "fmt", str(a), str(b))
    assert (rc, out) == (0, FORMATTED + "# b\n")


def test_fmt_check(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("u.prototxt").write_text(UNFORMATTED)
    Path("f.prototxt").write_text(FORMATTED)
    rc, out, err = run(capsys, "fmt", "--check", "u.prototxt")
    assert (rc, out, err) == (1, "", "u.prototxt: would reformat\n")
    rc, out, err = run(capsys, "fmt", "--check", "f.prototxt")
    assert (rc, out, err) == (0, "", "")
    rc, out, err = run(capsys, "fmt", "--check", "f.prototxt", "u.prototxt")
    assert (rc, out, err) == (1, "", "u.prototxt: would reformat\n")
    # --check only reads.
    assert Path("u.prototxt").read_text() == UNFORMATTED


def test_fmt_check_repository_nets(capsys, monkeypatch):
    # The repository's own nets: --check answers exactly as comparing with fmt's output does.
    monkeypatch.chdir(ROOT)
    for p in sorted(NETS.glob("**/*.prototxt")):
        name = str(p.relative_to(ROOT))
        rc, _, err = run(capsys, "fmt", "--check", name)
        formatted = fmt(p.read_text()) == p.read_text()
        assert (rc, err) == ((0, "") if formatted else (1, f"{name}: would reformat\n"))


@pytest.mark.parametrize("flag", ["--in-place", "-i"])
def test_fmt_in_place(capsys, tmp_path, flag):
    p = tmp_path / "u.prototxt"
    p.write_text(UNFORMATTED)
    p.chmod(0o640)
    rc, out, err = run(capsys, "fmt", flag, str(p))
    assert (rc, out, err) == (0, "", "")
    assert p.read_text() == FORMATTED
    assert stat.S_IMODE(p.stat().st_mode) == 0o640
    assert [f.name for f in tmp_path.iterdir()] == ["u.prototxt"]
    # A formatted file is left alone (not even rewritten).
    mtime = p.stat().st_mtime_ns
    rc, _, _ = run(capsys, "fmt", flag, str(p))
    assert rc == 0 and p.stat().st_mtime_ns == mtime
    rc, _, _ = run(capsys, "fmt", "--check", str(p))
    assert rc == 0


def test_fmt_in_place_keeps_executable_bits(capsys, tmp_path):
    p = tmp_path / "u.prototxt"
    p.write_text(UNFORMATTED)
    p.chmod(0o751)
    assert run(capsys, "fmt", "-i", str(p))[0] == 0
    assert stat.S_IMODE(p.stat().st_mode) == 0o751
    assert p.read_text() == FORMATTED


def test_fmt_syntax_error(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    broken = "layer {\n  name: \"a\"\n"
    Path("s.prototxt").write_text(broken)
    expected_err = ('s.prototxt:1:7: error: expected "}" to close "layer {" opened on line 1, found the end of '
                    'the file\n  layer {\n        ^\ns.prototxt: 1 error\n')
    rc, out, err = run(capsys, "fmt", "s.prototxt")
    assert (rc, out, err) == (1, "", expected_err)
    for flag in ("--in-place", "--check"):
        rc, out, err = run(capsys, "fmt", flag, "s.prototxt")
        assert (rc, out, err) == (1, "", expected_err)
        assert Path("s.prototxt").read_text() == broken
        assert [f.name for f in tmp_path.iterdir()] == ["s.prototxt"]


@pytest.mark.parametrize("data,message", [
    (b'name: "a"\0', "binary data, not a text prototxt (NUL byte at offset 9)"),
    (b'name: "\xff\xfe"', "not UTF-8 text (invalid byte 0xff on line 1)"),
], ids=["binary", "non-utf8"])
def test_fmt_unreadable_file(capsys, tmp_path, monkeypatch, data, message):
    monkeypatch.chdir(tmp_path)
    Path("x.prototxt").write_bytes(data)
    rc, out, err = run(capsys, "fmt", "-i", "x.prototxt")
    assert rc == 1 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"x.prototxt: error: {message}")
    assert Path("x.prototxt").read_bytes() == data


def test_fmt_missing_file(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, err = run(capsys, "fmt", "nope.prototxt")
    assert (rc, out, err) == (1, "", "nope.prototxt: error: no such file\n")


def test_fmt_moderate_nesting(capsys, tmp_path):
    # Deeper than any real net (they nest ~4 levels), still formatted.
    p = tmp_path / "d.prototxt"
    p.write_text("a { " * 200 + "}" * 200 + "\n")
    rc, out, err = run(capsys, "fmt", str(p))
    assert rc == 0, err
    # The innermost "a { }" would pass 100 columns at that depth, so it is written on two lines too.
    opens = "".join("  " * i + "a {\n" for i in range(200))
    assert out == opens + "".join("  " * i + "}\n" for i in reversed(range(200)))


def test_fmt_deep_nesting(capsys, tmp_path):
    p = tmp_path / "deep.prototxt"
    p.write_text("a { " * 10000 + "}" * 10000 + "\n")
    rc, out, err = run(capsys, "fmt", str(p))
    assert rc in (0, 1)
    assert "internal error" not in err


def test_fmt_in_place_through_symlink(capsys, tmp_path):
    target = tmp_path / "real.prototxt"
    target.write_text(UNFORMATTED)
    link = tmp_path / "link.prototxt"
    link.symlink_to(target.name)
    rc, _, _ = run(capsys, "fmt", "-i", str(link))
    assert rc == 0
    assert link.is_symlink()
    assert target.read_text() == FORMATTED


def test_every_net_in_the_repo_is_formatted(capsys):
    """nets/ is what users copy from: every file is in the canonical form (`netc fmt --check`)."""
    files = sorted(str(p) for p in (Path(__file__).resolve().parents[1] / "nets").rglob("*.prototxt"))
    assert files
    assert main(["fmt", "--check", *files]) == 0, capsys.readouterr().err
