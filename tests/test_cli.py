"""The `netc` command line, called in-process as `main([...])`: exit codes, what goes to stdout and what to
stderr, the one-line errors for files that are not prototxt, and `upgrade` checked against real Caffe."""
from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from google.protobuf import text_format

import netc
from netc import caffe_pb2
from netc.cli import main
from netc.frontend import load_net_param

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
NETS = ROOT / "nets"
CORPUS = SHARED / "corpus"
LEGACY = CORPUS / "bvlc_caffe_legacy"
GOLDEN_UPGRADE = SHARED / "golden" / "upgrade"

needs_shared = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no shared corpus at {CORPUS}")

LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): error: ")


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    # NETC_DEBUG prints tracebacks on purpose; these tests check that none are shown otherwise.
    monkeypatch.delenv("NETC_DEBUG", raising=False)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def _nets() -> list[Path]:
    return sorted(NETS.glob("**/*.prototxt"))


def _is_solver(path: Path) -> bool:
    return "solver" in path.name


def _phases(path: Path) -> list[str]:
    """The phase instances a net has, read with protobuf itself: TRAIN and TEST when a layer has a phase
    rule, else one TEST instance (NetState's default phase)."""
    net = text_format.Parse(path.read_text(), caffe_pb2.NetParameter())
    ruled = any(r.HasField("phase") for layer in net.layer for r in list(layer.include) + list(layer.exclude))
    return ["TRAIN", "TEST"] if ruled else ["TEST"]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


INPUT_LAYER = """\
layer {
  name: "data"
  type: "Input"
  top: "data"
  input_param { shape { dim: 2 dim: 3 dim: 13 dim: 17 } }
}
"""

UNKNOWN_BOTTOM = INPUT_LAYER + """\
layer {
  name: "conv1"
  type: "Convolution"
  bottom: "dta"
  top: "conv1"
  convolution_param { num_output: 4 kernel_size: 3 }
}
"""

CEIL_MODE = INPUT_LAYER + """\
layer {
  name: "pool1"
  type: "Pooling"
  bottom: "data"
  top: "pool1"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 ceil_mode: false }
}
"""


# --------------------------------------------------------------------------------------------------------
# check: the nets of the repository

@pytest.mark.parametrize("path", _nets(), ids=lambda p: str(p.relative_to(NETS)))
def test_check_every_net(capsys, monkeypatch, path):
    monkeypatch.chdir(ROOT)
    name = str(path.relative_to(ROOT))
    rc, out, err = run(capsys, "check", name)
    assert rc == 0, err
    lines = out.splitlines()
    if _is_solver(path):
        assert len(lines) == 1
        assert lines[0].startswith(f"{name}: ok, a solver (type ")
    else:
        assert [l.split(":", 1)[0] for l in lines] == [f"{name} ({p})" for p in _phases(path)]
        assert all(l.split(":", 1)[1].startswith(" ok, ") for l in lines)


def test_check_nets_cover_both_kinds():
    # The parametrization above is only meaningful if there is a train_val (two phases) and a deploy net.
    kinds = {p.name for p in _nets()}
    assert {"train_val.prototxt", "deploy.prototxt", "solver.prototxt"} <= kinds


def test_check_train_val_and_deploy_lines(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    rc, out, _ = run(capsys, "check", "nets/lenet/train_val.prototxt")
    assert rc == 0
    assert out == (
        # LeNet's LMDBs are not in the repo: the Data layer needs its data for C, H, W (a note on stderr).
        "nets/lenet/train_val.prototxt (TRAIN): ok, 9 layers, 9 blobs, inputs: none; outputs: loss; shapes unchecked past 1 layer that needs its data\n"
        "nets/lenet/train_val.prototxt (TEST): ok, 10 layers, 10 blobs, inputs: none; outputs: accuracy, loss; shapes unchecked past 1 layer that needs its data\n")
    rc, out, _ = run(capsys, "check", "nets/lenet/deploy.prototxt")
    assert rc == 0
    assert out == "nets/lenet/deploy.prototxt (TEST): ok, 9 layers, 8 blobs, inputs: data; outputs: prob; shapes ok\n"


# --------------------------------------------------------------------------------------------------------
# check: broken nets and options

def test_check_unknown_bottom_verbatim(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "bad.prototxt", UNKNOWN_BOTTOM)
    rc, out, err = run(capsys, "check", "bad.prototxt")
    assert rc == 1
    assert out == ""
    lines = err.splitlines()
    assert lines[:4] == [
        'bad.prototxt:10:11: error: layer "conv1" (Convolution): unknown bottom "dta"',
        '  bottom: "dta"',
        "          ^^^^^",
        '  hint: did you mean "data"?',
    ]
    # The summary closes the output (its exact form is pinned in test_check_summary_line below).
    assert len(lines) == 5
    assert lines[4].startswith("bad.prototxt") and lines[4].endswith(": 1 error")



def test_check_summary_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "bad.prototxt", UNKNOWN_BOTTOM)
    rc, _, err = run(capsys, "check", "bad.prototxt")
    assert rc == 1
    assert err.splitlines()[-1] == "bad.prototxt: 1 error"


def test_check_summary_line_train_val(capsys, tmp_path, monkeypatch):
    # One unknown bottom in a layer that both phases have: one error, one summary line.
    monkeypatch.chdir(tmp_path)
    text = (NETS / "lenet" / "train_val.prototxt").read_text()
    assert text.count('bottom: "pool2"') == 1
    write(tmp_path / "tv.prototxt", text.replace('bottom: "pool2"', 'bottom: "pool_2"'))
    rc, out, err = run(capsys, "check", "tv.prototxt")
    assert rc == 1
    summaries = [l for l in err.splitlines() if l.startswith("tv.prototxt") and ": error: " not in l]
    assert summaries == ["tv.prototxt: 1 error"]


def test_check_summary_line_counts_warnings(capsys, tmp_path, monkeypatch):
    # A V1 net (one upgrade warning) with an unknown bottom.
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "v1.prototxt", 'layers {\n  name: "data"\n  type: DATA\n  top: "data"\n'
          '  data_param { source: "x" batch_size: 2 }\n}\n'
          'layers {\n  name: "relu"\n  type: RELU\n  bottom: "dta"\n  top: "r"\n}\n')
    rc, _, err = run(capsys, "check", "v1.prototxt")
    assert rc == 1
    assert err.count(": warning: ") == 1
    assert err.splitlines()[-1] == "v1.prototxt: 1 error, 1 warning"


def test_check_parse_error_summary(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "p.prototxt", 'name: "x"\nlayer {\n  name "conv1"\n}\n')
    rc, out, err = run(capsys, "check", "p.prototxt")
    assert rc == 1
    assert out == ""
    assert err == (
        'p.prototxt:3:8: error: expected ":" between field name "name" and its value\n'
        '  name "conv1"\n'
        "       ^^^^^^^\n"
        '  hint: write name: "conv1"\n'
        "p.prototxt: 1 error\n")


def test_check_phase_test_only(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    rc, out, _ = run(capsys, "check", "nets/lenet/train_val.prototxt", "--phase", "TEST")
    assert rc == 0
    assert out == ("nets/lenet/train_val.prototxt (TEST): ok, 10 layers, 10 blobs, inputs: none; "
                   "outputs: accuracy, loss; shapes unchecked past 1 layer that needs its data\n")
    # Phase names are read case-insensitively.
    rc, out2, _ = run(capsys, "check", "nets/lenet/train_val.prototxt", "--phase", "test")
    assert (rc, out2) == (0, out)


@pytest.mark.parametrize("argv", [
    ["check", "nets/lenet/train_val.prototxt", "--phase", "bogus"],
    [],
    ["check", "nets/lenet/train_val.prototxt", "--bogus"],
    ["--bogus"],
    ["frobnicate"],
    ["check"],
    ["check", "nets/lenet/train_val.prototxt", "--level", "two"],
    ["fmt"],
    ["fmt", "--check", "--in-place", "nets/lenet/deploy.prototxt"],
    ["upgrade"],
], ids=["bad-phase", "no-command", "unknown-option", "unknown-global-option", "unknown-command", "check-no-net",
        "level-not-int", "fmt-no-file", "fmt-check-and-in-place", "upgrade-no-file"])
def test_usage_errors(capsys, monkeypatch, argv):
    monkeypatch.chdir(ROOT)
    rc, out, err = run(capsys, *argv)
    assert rc == 2
    assert out == ""
    assert err.strip()


def test_usage_error_text(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    _, _, err = run(capsys, "check", "nets/lenet/train_val.prototxt", "--phase", "bogus")
    assert err == "error: netc check: argument --phase: invalid choice: 'BOGUS' (choose from 'TRAIN', 'TEST')\n"
    _, _, err = run(capsys)
    assert err.startswith("usage: netc ")


def test_check_ceil_mode_strict(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "pool.prototxt", CEIL_MODE)
    rc, out, err = run(capsys, "check", "pool.prototxt")
    assert rc == 0
    assert out == "pool.prototxt (TEST): ok, 2 layers, 2 blobs, inputs: data; outputs: pool1; shapes ok\n"
    assert err.startswith("pool.prototxt:12:54: warning: ")
    assert "round_mode: FLOOR" in err

    rc, out, err = run(capsys, "check", "--strict", "pool.prototxt")
    assert rc == 1
    assert out == ""
    assert err == (
        'pool.prototxt:12:54: error: Message type "caffe.PoolingParameter" has no field named "ceil_mode".\n'
        "  pooling_param { pool: MAX kernel_size: 3 stride: 2 ceil_mode: false }\n"
        "                                                     ^^^^^^^^^\n"
        '  hint: "ceil_mode" exists only in Caffe forks; BVLC Caffe (and --strict) rejects it\n'
        "pool.prototxt: 1 error\n")


# --------------------------------------------------------------------------------------------------------
# check: files that are not prototxt.  One error line naming the file (with its hint after a semicolon), exit 1.

def one_line_error(capsys, path, message: str, hint: str | None = None) -> None:
    rc, out, err = run(capsys, "check", str(path))
    assert rc == 1
    assert out == ""
    expected = [f"{path}: error: {message}" + (f"; {hint}" if hint else "")]
    assert err.splitlines() == expected


BINARY_HINT = "a .caffemodel is binary: read it with netc.caffemodel.read_caffemodel"


def test_missing_file(capsys, tmp_path):
    one_line_error(capsys, tmp_path / "missing.prototxt", "no such file")


def test_directory(capsys, tmp_path):
    one_line_error(capsys, tmp_path, "is a directory, not a prototxt file")


def test_binary_file(capsys, tmp_path):
    p = tmp_path / "weights.prototxt"
    p.write_bytes(b'name: "a"\0\x01\x02')
    one_line_error(capsys, p, "binary data, not a text prototxt (NUL byte at offset 9)", BINARY_HINT)


def test_non_utf8(capsys, tmp_path):
    p = tmp_path / "latin.prototxt"
    p.write_bytes(b'name: "\xff\xfe"')
    one_line_error(capsys, p, "not UTF-8 text (invalid byte 0xff on line 1)", "save the file as UTF-8")


def test_non_utf8_line_number(capsys, tmp_path):
    p = tmp_path / "latin.prototxt"
    p.write_bytes(b'name: "x"\nlayer {\n  name: "caf\xe9"\n}\n')
    one_line_error(capsys, p, "not UTF-8 text (invalid byte 0xe9 on line 3)", "save the file as UTF-8")


def test_huge_file(capsys, tmp_path):
    layer = 'layer {\n  name: "relu"\n  type: "ReLU"\n  bottom: "data"\n  top: "data"\n}\n'
    p = tmp_path / "huge.prototxt"
    with open(p, "w") as f:
        f.write(layer * (50_000_000 // len(layer) + 1))
    assert p.stat().st_size == 50_000_046
    start = time.perf_counter()
    one_line_error(capsys, p, "file is too large for a prototxt (47.7 MiB; netc reads at most 32 MiB)",
                   "weights belong in a binary .caffemodel, not in the net text")
    assert time.perf_counter() - start < 5


def test_empty_file(capsys, tmp_path, monkeypatch):
    # An empty text is a valid NetParameter with no layers (protobuf and Caffe accept it): one TEST instance.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.prototxt").write_bytes(b"")
    rc, out, err = run(capsys, "check", "empty.prototxt")
    assert rc == 0
    assert out == "empty.prototxt (TEST): ok, 0 layers, 0 blobs, inputs: none; outputs: none; shapes ok\n"
    assert err == ""


def test_random_bytes(capsys, tmp_path):
    data = random.Random(20240611).randbytes(4096)
    p = tmp_path / "random.prototxt"
    p.write_bytes(data)
    nul = data.find(b"\0")
    assert nul >= 0
    one_line_error(capsys, p, f"binary data, not a text prototxt (NUL byte at offset {nul})", BINARY_HINT)


def test_random_bytes_without_nul(capsys, tmp_path):
    data = random.Random(20240611).randbytes(4096).replace(b"\0", b"")
    p = tmp_path / "random.prototxt"
    p.write_bytes(data)
    with pytest.raises(UnicodeDecodeError) as e:
        data.decode("utf-8")
    line = data.count(b"\n", 0, e.value.start) + 1
    one_line_error(capsys, p, f"not UTF-8 text (invalid byte 0x{data[e.value.start]:02x} on line {line})",
                   "save the file as UTF-8")


@pytest.mark.parametrize("seed", range(5))
def test_random_text(capsys, tmp_path, seed):
    rng = random.Random(seed)
    alphabet = "{}<>[]:;,#\"' \n\tabc_019.-"
    p = tmp_path / "noise.prototxt"
    p.write_text("layer {" + "".join(rng.choice(alphabet) for _ in range(2000)))
    rc, out, err = run(capsys, "check", str(p))
    assert rc == 1
    assert LOCATED.match(err) and LOCATED.match(err)["file"] == str(p)
    assert "internal error" not in err


def test_deep_nesting(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deep.prototxt").write_text("a { " * 10000 + "}" * 10000 + "\n")
    rc, out, err = run(capsys, "check", "deep.prototxt")
    assert rc == 1
    assert out == ""
    assert "RecursionError" not in err and "internal error" not in err
    assert err.startswith('deep.prototxt:1:1: error: Message type "caffe.NetParameter" has no field named "a".\n')
    assert err.endswith("\ndeep.prototxt: 1 error\n")


def test_deep_nesting_of_known_fields(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deep.prototxt").write_text("layer {\n" * 10000 + "}\n" * 10000)
    rc, _, err = run(capsys, "check", "deep.prototxt")
    assert rc == 1
    assert err.startswith('deep.prototxt:2:1: error: Message type "caffe.LayerParameter" has no field named '
                          '"layer".\n')


@needs_shared
@pytest.mark.parametrize("path", sorted(p for p in CORPUS.glob("**/*.prototxt") if not _is_solver(p))
                         if CORPUS.is_dir() else [], ids=lambda p: str(p.relative_to(CORPUS)))
def test_truncated_corpus_file(capsys, tmp_path, path):
    data = path.read_bytes()
    p = tmp_path / path.name
    p.write_bytes(data[: len(data) // 2])
    rc, out, err = run(capsys, "check", str(p))
    assert rc == 1
    m = LOCATED.match(err)
    assert m and m["file"] == str(p), err
    assert err.endswith(": 1 error\n")


def test_truncated_net_verbatim(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = (NETS / "lenet" / "train_val.prototxt").read_bytes()
    (tmp_path / "half.prototxt").write_bytes(data[: len(data) // 2])
    rc, _, err = run(capsys, "check", "half.prototxt")
    assert rc == 1
    assert err == ('half.prototxt:54:4: error: unexpected end of file, expected "{"\n'
                   "  lay\n"
                   "     ^\n"
                   "half.prototxt: 1 error\n")


# --------------------------------------------------------------------------------------------------------
# The process: `python -m netc`, and what `check` imports

def test_version_subprocess():
    r = subprocess.run([sys.executable, "-m", "netc", "--version"], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0
    assert r.stdout == f"netc {netc.__version__}\n"


def test_module_check_subprocess():
    r = subprocess.run([sys.executable, "-m", "netc", "check", "nets/lenet/deploy.prototxt"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    assert r.stdout == "nets/lenet/deploy.prototxt (TEST): ok, 9 layers, 8 blobs, inputs: data; outputs: prob; shapes ok\n"
    assert r.stderr == ""


def test_check_does_not_import_torch(tmp_path):
    # A stub torch first on the path makes the test mean the same with or without a real torch installed.
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    code = ("import sys, netc.cli\n"
            "rc = netc.cli.main(['check', 'nets/alexnet/train_val.prototxt'])\n"
            "assert rc == 0, rc\n"
            "sys.exit('torch' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    # The stub is importable: the check above would have seen an import.
    probe = "import sys, torch; sys.exit(not torch.__file__.startswith(sys.argv[1]))"
    r = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr


# --------------------------------------------------------------------------------------------------------
# upgrade

V1_LENET = LEGACY / "v1" / "7e465f288" / "examples" / "mnist" / "lenet_train_test.prototxt"
V1_LENET_GOLDEN = GOLDEN_UPGRADE / "v1" / "7e465f288" / "examples" / "mnist" / "lenet_train_test.upgraded.prototxt"
V0_LENET = LEGACY / "v0" / "86a3263fe" / "examples" / "lenet" / "lenet_train.prototxt"
V0_LENET_GOLDEN = GOLDEN_UPGRADE / "v0" / "86a3263fe" / "examples" / "lenet" / "lenet_train.upgraded.prototxt"
ADAM_SOLVER = LEGACY / "solver" / "46dac4038" / "examples" / "mnist" / "lenet_solver_adam.prototxt"


def _golden(path: Path, cls=caffe_pb2.NetParameter):
    if not path.is_file():
        pytest.skip(f"no golden file {path}")
    return text_format.Parse(path.read_text(), cls())


@needs_shared
@pytest.mark.parametrize("src,golden", [(V1_LENET, V1_LENET_GOLDEN), (V0_LENET, V0_LENET_GOLDEN)],
                         ids=["v1", "v0"])
def test_upgrade_matches_caffe(capsys, src, golden):
    rc, out, err = run(capsys, "upgrade", str(src))
    assert rc == 0, err
    assert ": warning: upgrade (" in err
    printed = netc.parse_prototxt(out)
    assert printed == load_net_param(src).param
    assert printed == _golden(golden)


V1_SMALL = """\
name: "tiny"
input: "data"
input_dim: 2
input_dim: 3
input_dim: 13
input_dim: 17
# my comment
layers {
  name: "relu"
  type: RELU
  bottom: "data"
  top: "data"
}
# second comment
layers {
  name: "pool"
  type: POOLING
  bottom: "data"
  top: "pool"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 }
}
"""


def test_upgrade_keeps_comments(capsys, tmp_path):
    p = write(tmp_path / "v1.prototxt", V1_SMALL)
    rc, out, err = run(capsys, "upgrade", str(p))
    assert rc == 0, err
    lines = out.splitlines()
    i = lines.index("# my comment")
    assert lines[i + 1: i + 3] == ["layer {", '  name: "relu"']
    j = lines.index("# second comment")
    assert lines[j + 1: j + 3] == ["layer {", '  name: "pool"']
    assert out == (
        'name: "tiny"\n'
        "layer {\n"
        '  name: "input"\n'
        '  type: "Input"\n'
        '  top: "data"\n'
        "  input_param {\n"
        "    shape { dim: 2 dim: 3 dim: 13 dim: 17 }\n"
        "  }\n"
        "}\n"
        "# my comment\n"
        "layer {\n"
        '  name: "relu"\n'
        '  type: "ReLU"\n'
        '  bottom: "data"\n'
        '  top: "data"\n'
        "}\n"
        "# second comment\n"
        "layer {\n"
        '  name: "pool"\n'
        '  type: "Pooling"\n'
        '  bottom: "data"\n'
        '  top: "pool"\n'
        "  pooling_param { pool: MAX kernel_size: 3 stride: 2 }\n"
        "}\n")


def test_upgrade_output_file(capsys, tmp_path):
    p = write(tmp_path / "v1.prototxt", V1_SMALL)
    out_path = tmp_path / "current.prototxt"
    rc, out, err = run(capsys, "upgrade", str(p), "-o", str(out_path))
    assert rc == 0, err
    assert out == ""
    rc, stdout_text, _ = run(capsys, "upgrade", str(p))
    assert out_path.read_text() == stdout_text
    assert sorted(f.name for f in tmp_path.iterdir()) == ["current.prototxt", "v1.prototxt"]
    # The output is a current-format net that checks.
    rc, out, err = run(capsys, "check", str(out_path))
    assert rc == 0 and err == ""


def test_upgrade_output_file_mode(capsys, tmp_path):
    p = write(tmp_path / "v1.prototxt", V1_SMALL)
    old = os.umask(0o022)
    try:
        rc, _, _ = run(capsys, "upgrade", str(p), "-o", str(tmp_path / "new.prototxt"))
    finally:
        os.umask(old)
    assert rc == 0
    assert (tmp_path / "new.prototxt").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("target", ["missing/out.prototxt", "."], ids=["missing-folder", "a-folder"])
def test_upgrade_output_unwritable(capsys, tmp_path, monkeypatch, target):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "v1.prototxt", V1_SMALL)
    rc, out, err = run(capsys, "upgrade", "v1.prototxt", "-o", target)
    assert rc == 1
    assert "internal error" not in err
    assert err.splitlines()[-1].startswith(f"{target}: error: ")


def test_upgrade_current_format(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    rc, out, err = run(capsys, "upgrade", "nets/lenet/deploy.prototxt")
    assert rc == 0
    assert err == "nets/lenet/deploy.prototxt: already in the current format\n"
    assert netc.parse_prototxt(out) == netc.parse_prototxt(ROOT / "nets" / "lenet" / "deploy.prototxt")


@needs_shared
def test_upgrade_legacy_solver(capsys):
    rc, out, err = run(capsys, "upgrade", str(ADAM_SOLVER))
    assert rc == 0, err
    assert 'type: "Adam"' in out.splitlines()
    assert "solver_type" not in out
    assert "upgrade (solver_type)" in err
    printed = netc.parse_prototxt(out, "solver")
    golden = ADAM_SOLVER.relative_to(LEGACY)
    golden = GOLDEN_UPGRADE / golden.with_name(golden.stem + ".upgraded.prototxt")
    assert printed == _golden(golden, caffe_pb2.SolverParameter)


def test_upgrade_broken_file(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "b.prototxt", 'layers {\n  name: "x"\n  type: RELU\n')
    rc, out, err = run(capsys, "upgrade", "b.prototxt")
    assert rc == 1
    assert out == ""
    assert LOCATED.match(err)["file"] == "b.prototxt"
