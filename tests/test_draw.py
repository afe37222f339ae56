"""`netc draw` and netc.draw: golden DOT per net of nets/, every corpus net rendered by Graphviz, escaping,
in-place folding, module collapsing, and the file writer with and without Graphviz.

Golden files: tests/golden/<net dir>/<file stem>.dot, or <stem>.<PHASE>[+stage].dot for a file whose rules
distinguish phases.  NETC_ACCEPT=1 rewrites them; a mismatch fails with a unified diff.

Data shapes: a corpus net whose data layers read a data set is shaped the way a user would, with --input,
from the shapes Caffe instantiated (../shared/golden/shapes: each phase's substituted data tops; a file the
golden instantiated in another phase than netc's default, e.g. a V0 `*_train.prototxt` without phase rules,
takes that phase's shapes).  A net that still cannot be analysed is skipped with the reason.  In nets/, only
lenet/train_val reads a data set that is not in the repository: its shapes are in NETS_INPUTS below (from the
file's own comments: Fashion-MNIST, 1x28x28).
"""
from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import netc
from netc.analysis import analyze
from netc.cli import main
from netc.draw import draw_to_file, module_names, to_dot, to_svg  # module_names: re-exported from reports
from netc.errors import NetcError, UsageError
from netc.frontend import load_net_param
from netc.graph import PHASE_NAMES, net_states

from golden import GOLDEN as SHARED_GOLDEN, SHARED

ROOT = Path(__file__).resolve().parents[1]
NETS = ROOT / "nets"
DOT_GOLDEN = ROOT / "tests" / "golden"
CORPUS = SHARED / "corpus"
SHAPES = SHARED_GOLDEN / "shapes"
GOOGLENET = CORPUS / "bvlc_caffe" / "models" / "bvlc_googlenet" / "deploy.prototxt"
GOOGLENET_V1 = CORPUS / "bvlc_caffe_legacy" / "v1" / "7e465f288" / "models" / "bvlc_googlenet" / "deploy.prototxt"
MINI_RESNET = SHARED_GOLDEN / "nets" / "mini_resnet" / "net.prototxt"
ALEXNET = NETS / "alexnet" / "train_val.prototxt"
LENET = NETS / "lenet" / "train_val.prototxt"
ACCEPT = os.environ.get("NETC_ACCEPT") == "1"
MAX_RENDER_S = 5.0

NETS_INPUTS = {  # (net dir/file, phase) -> --input shapes
    ("lenet/train_val.prototxt", "TRAIN"): {"data": (64, 1, 28, 28)},
    ("lenet/train_val.prototxt", "TEST"): {"data": (100, 1, 28, 28)},
}

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no shared corpus at {CORPUS}")


def _state_name(phase: int, stages) -> str:
    return PHASE_NAMES[phase] + "".join(f"+{s}" for s in stages)


def _nets_instances():
    out = []
    for f in sorted(NETS.glob("*/*.prototxt")):
        if "solver" in f.name:
            continue
        states = net_states(load_net_param(f).param)
        for phase, stages in states:
            rel = f.relative_to(NETS)
            name = f.stem + ("" if len(states) == 1 else "." + _state_name(phase, stages)) + ".dot"
            out.append(pytest.param(f, PHASE_NAMES[phase], stages, DOT_GOLDEN / rel.parent / name,
                                    id=f"{rel}:{_state_name(phase, stages)}"))
    return out


def _analysis(path: Path, phase: str = "TEST", stages=(), inputs: dict | None = None):
    net = netc.load_net(path, phase, stages, shaped=inputs or ())
    return analyze(net, inputs)


def _nets_analysis(path: Path, phase: str, stages=()):
    return _analysis(path, phase, stages, NETS_INPUTS.get((str(path.relative_to(NETS)), phase)))


# --------------------------------------------------------------------------------------------------------
# Golden DOT per net of nets/

@pytest.mark.parametrize("path,phase,stages,golden", _nets_instances())
def test_golden_dot(path, phase, stages, golden):
    dot = to_dot(_nets_analysis(path, phase, stages))
    if ACCEPT:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(dot, encoding="utf-8")
        return
    assert golden.is_file(), f"no golden {golden}: run NETC_ACCEPT=1 pytest tests/test_draw.py"
    expected = golden.read_text(encoding="utf-8")
    if dot != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), dot.splitlines(True),
                                            str(golden), "to_dot output"))
        pytest.fail(f"DOT differs from {golden} (NETC_ACCEPT=1 accepts it):\n{diff}")


def test_every_golden_has_a_net():
    """A golden DOT left behind by a removed or renamed net fails here."""
    expected = {p.values[3] for p in _nets_instances()}
    found = set(DOT_GOLDEN.glob("*/*.dot"))
    assert found <= expected, sorted(str(p) for p in found - expected)


def test_phases_show_their_layers():
    train = to_dot(_nets_analysis(LENET, "TRAIN"))
    test = to_dot(_nets_analysis(LENET, "TEST"))
    assert "SoftmaxWithLoss" in train and ">Accuracy<" not in train
    assert ">Accuracy<" in test and "(TEST)" in test and "(TRAIN)" in train
    assert "64×1×28×28" in train and "100×1×28×28" in test


@needs_corpus
def test_deterministic_across_processes():
    """Byte-identical DOT from two runs in fresh interpreters with different hash seeds."""
    outs = []
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        r = subprocess.run([sys.executable, "-m", "netc", "draw", str(GOOGLENET), "--collapse-modules",
                            "--detail", "full"], capture_output=True, env=env, cwd=ROOT, timeout=120)
        assert r.returncode == 0, r.stderr.decode()
        outs.append(r.stdout)
    assert outs[0] == outs[1]
    a = _analysis(ALEXNET, "TRAIN")
    assert to_dot(a) == to_dot(a) == to_dot(_analysis(ALEXNET, "TRAIN"))


# --------------------------------------------------------------------------------------------------------
# Every corpus net through Graphviz

def _golden_inputs() -> dict:
    """(prototxt, phase, stages) -> --input shapes, from Caffe's instantiated shapes; also (prototxt,) -> the
    shapes of the file's first instance, for a phase the golden did not instantiate."""
    out: dict = {}
    if not SHAPES.is_dir():
        return out
    for f in sorted(SHAPES.rglob("*.json")):
        rel = f.relative_to(SHAPES)
        if f.name == "index.json" or rel.parts[0] == "variants" or ".net_param." in f.name:
            continue
        g = json.loads(f.read_text())
        root = "bvlc_caffe_legacy" if rel.parts[0] == "legacy" else "bvlc_caffe"
        src = str(CORPUS / root / g["source_prototxt"])
        given = {}
        for sub in g["substitutions"]:
            # A train_val file has a data layer per phase with the same tops: take this phase's.
            phases = {m.group(1) for r in sub["include"] for m in [re.search(r"phase: (\w+)", r)] if m}
            stages = [set(re.findall(r'stage: "([^"]+)"', r)) for r in sub["include"]]
            if phases and g["phase"] not in phases:
                continue
            if stages and not any(s <= set(g["stages"]) for s in stages):
                continue
            given.update({t: tuple(s) for t, s in sub["tops"].items()})
        for layer in g["layers"]:
            if layer["type"] == "Python":
                given.update({t: tuple(s) for t, s in zip(layer["top"], layer["top_shapes"])})
        out[(src, g["phase"], tuple(g["stages"]))] = given
        out.setdefault((src,), given)
    return out


def _corpus_instances():
    if not CORPUS.is_dir():
        return []
    out = []
    for f in sorted(CORPUS.rglob("*.prototxt")):
        if "solver" in f.name:
            continue
        for phase, stages in net_states(load_net_param(f).param):
            out.append(pytest.param(f, PHASE_NAMES[phase], stages,
                                    id=f"{f.relative_to(CORPUS)}:{_state_name(phase, stages)}"))
    return out


_INPUTS: dict | None = None


def _corpus_analysis(path: Path, phase: str, stages):
    global _INPUTS
    if _INPUTS is None:
        _INPUTS = _golden_inputs()
    inputs = _INPUTS.get((str(path), phase, tuple(stages)), _INPUTS.get((str(path),)))
    try:
        return _analysis(path, phase, stages, inputs)
    except NetcError as e:
        pytest.skip(f"cannot be analysed without its data set: {e}")


def _folded(net) -> set[int]:
    """Indices of the layers drawn inside another node: every top in place and nothing else read (the
    corpus has no in-place layer with extra bottoms, so this is the whole rule there)."""
    return {l.index for l in net.layers
            if l.tops and all(l.in_place) and len(l.bottoms) == len(l.tops)}


def _svg_nodes(svg: str):
    """(layer nodes, legend nodes) of an SVG: the <g> elements whose class has the token "node"."""
    root = ET.fromstring(svg)
    nodes = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if "node" in g.get("class", "").split()]
    legend = [g for g in nodes if g.get("id", "").startswith("legend_")]
    return [g for g in nodes if g not in legend], legend, root


def _check_svg(svg: str, analysis, collapsed: bool = False) -> list:
    nodes, legend, root = _svg_nodes(svg)
    assert len(legend) == 1
    assert not [e for e in root.iter() if e.tag.rsplit("}", 1)[-1].lower() == "script"]
    net = analysis.net
    if not collapsed:
        drawn = [f"L{l.index}" for l in net.layers if l.index not in _folded(net)]
        assert sorted(g.get("id") for g in nodes) == sorted(drawn)  # a cluster's nodes come together
    # Every layer, folded or collapsed, is named by exactly one node's class (the report links rows by it).
    named = [t for g in nodes for t in g.get("class").split() if re.fullmatch(r"L\d+", t)]
    assert sorted(named) == sorted(f"L{l.index}" for l in net.layers)
    return nodes


@needs_corpus
@needs_dot
@pytest.mark.parametrize("path,phase,stages", _corpus_instances())
def test_corpus_net_renders(path, phase, stages):
    a = _corpus_analysis(path, phase, stages)
    start = time.perf_counter()
    svg = to_svg(to_dot(a))
    took = time.perf_counter() - start
    assert took < MAX_RENDER_S, f"{path} took {took:.2f} s to draw"
    _check_svg(svg, a)


@needs_dot
@pytest.mark.parametrize("path,phase,stages,golden", _nets_instances())
def test_nets_render(path, phase, stages, golden):
    a = _nets_analysis(path, phase, stages)
    for detail in ("names", "full"):
        start = time.perf_counter()
        svg = to_svg(to_dot(a, detail=detail))
        assert time.perf_counter() - start < MAX_RENDER_S
        _check_svg(svg, a)


@needs_corpus
@needs_dot
def test_legacy_v1_googlenet_draws():
    """A V1 file goes through the upgrade and draws like any other."""
    a = _analysis(GOOGLENET_V1)
    assert any("upgrad" in d.message.lower() for d in a.net.diagnostics)
    _check_svg(to_svg(to_dot(a)), a)
    _check_svg(to_svg(to_dot(a, collapse="modules")), a, collapsed=True)


@needs_corpus
@needs_dot
def test_legacy_v0_draws():
    path = CORPUS / "bvlc_caffe_legacy" / "v0" / "86a3263fe" / "examples" / "imagenet" / "imagenet_deploy.prototxt"
    a = _analysis(path)
    _check_svg(to_svg(to_dot(a, rankdir="LR")), a)


# --------------------------------------------------------------------------------------------------------
# Escaping

NASTY = (
    'name: "nasty<&>"\n'
    'layer { name: "in" type: "Input" top: "in<&>" input_param { shape { dim: 2 dim: 3 dim: 13 dim: 17 } } }\n'
    'layer { name: "<script>alert(1)</script>" type: "Convolution" bottom: "in<&>" top: "c"\n'
    '        convolution_param { num_output: 4 kernel_size: 3 } }\n'
    'layer { name: "q\\"uo\'te\\\\back:port{r}|x" type: "ReLU" bottom: "c" top: "c" }\n'
    'layer { name: "<b>/x\\n\\t\u202e\u00e9\u6f22" type: "Pooling" bottom: "c" top: "p" '
    'pooling_param { kernel_size: 2 } }\n'
    'layer { name: "<b>/y]]>--&amp;" type: "Pooling" bottom: "p" top: "p2" pooling_param { kernel_size: 2 } }\n'
)


def _nasty(tmp_path):
    p = tmp_path / "nasty.prototxt"
    p.write_text(NASTY, encoding="utf-8")
    return _analysis(p)


def test_names_are_escaped_in_dot(tmp_path):
    dot = to_dot(_nasty(tmp_path), detail="full")
    assert "<script" not in dot and "&lt;script&gt;alert(1)&lt;/script&gt;" in dot
    assert "q&quot;uo&#39;te\\back:port{r}|x" in dot
    assert "&lt;b&gt;/x\\u000a\\u0009\\u202eé漢" in dot
    assert "<B>nasty&lt;&amp;&gt;</B> (TEST)" in dot
    assert "&amp;amp;" in dot and "in&lt;&amp;&gt;" in dot  # the blob name differs from its producer's
    # Names never become node ids: only synthetic ids appear before "[".
    ids = re.findall(r"^\s*(\S+) \[", dot, re.M)
    assert all(re.fullmatch(r"L\d+|M\d+|legend_\w+|graph|node|edge", i) for i in ids), ids


@needs_dot
def test_names_are_text_in_svg(tmp_path):
    a = _nasty(tmp_path)
    for collapse in (None, "modules"):
        svg = to_svg(to_dot(a, detail="full", collapse=collapse))
        nodes = _check_svg(svg, a, collapsed=collapse is not None)
        texts = ["".join(t.itertext()) for g in nodes for t in g.iter("{http://www.w3.org/2000/svg}text")]
        if collapse is None:
            assert "<script>alert(1)</script>" in texts
            assert "+ q\"uo'te\\back:port{r}|x (ReLU)" in texts
        assert "<script>" not in svg  # only as &lt;script&gt;
    # The module "<b>" is a cluster label, then a node label.
    root = ET.fromstring(to_svg(to_dot(a)))
    assert "<b>" in ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]


# --------------------------------------------------------------------------------------------------------
# Folding, modules, detail

def test_in_place_layers_fold_into_their_writer():
    a = _analysis(ALEXNET, "TRAIN")
    dot = to_dot(a)
    line = next(l for l in dot.splitlines() if l.startswith("  L16 "))  # fc6
    assert 'class="node-layer L16 L17 L18"' in line
    assert "+ relu6 (ReLU)" in line and "+ drop6 (Dropout, ratio 0.5)" in line
    assert "L17 [" not in dot and "L18 [" not in dot
    assert "  L16 -> L19 " in dot  # fc7 reads fc6's blob from the fc6 node


def test_resnet_naming_rule():
    names = ["data", "conv1", "res2a_branch1", "res2a_branch2a", "res2a_branch2b", "res2a", "res2a_relu",
             "res2b_branch2a", "res2ab", "inception_3a/1x1", "inception_3a/output", "inception_3a_extra",
             "pool5/7x7_s1", "/odd", "_branch1"]
    assert module_names(names) == [None, None, "res2a", "res2a", "res2a", "res2a", "res2a", "res2b", None,
                                   "inception_3a", "inception_3a", "inception_3a", "pool5", None, None]


@pytest.mark.skipif(not MINI_RESNET.is_file(), reason="no mini_resnet golden net")
def test_resnet_block_collapses_to_one_node():
    a = _analysis(MINI_RESNET)
    dot = to_dot(a, collapse="modules")
    module = [l for l in dot.splitlines() if re.match(r"  M\d+ \[", l)]
    assert len(module) == 1 and "<B>res2a</B>" in module[0]
    members = re.search(r'class="node-module ([^"]+)"', module[0]).group(1).split()
    expected = [f"L{l.index}" for l in a.net.layers
                if l.name.startswith(("res2a", "bn2a", "scale2a"))]
    assert sorted(members) == sorted(expected)
    assert "subgraph cluster_M0" in to_dot(a)  # uncollapsed: a cluster


@needs_corpus
@needs_dot
def test_googlenet_modules_one_node_per_inception():
    a = _analysis(GOOGLENET)
    dot = to_dot(a, collapse="modules")
    svg = to_svg(dot)
    nodes = _check_svg(svg, a, collapsed=True)
    inception = sorted({l.name.split("/")[0] for l in a.net.layers if l.name.startswith("inception_")})
    assert len(inception) == 9
    labels = re.findall(r"^  (M\d+) \[.*?<B>([^<]+)</B>", dot, re.M)
    modules = {name: mid for mid, name in labels}
    assert sorted(n for n in modules if n.startswith("inception_")) == inception
    by_id = {g.get("id"): g for g in nodes}
    for name in inception:
        g = by_id[modules[name]]
        members = set(g.get("class").split()[2:])
        assert members == {f"L{l.index}" for l in a.net.layers if l.name.startswith(name + "/")}
    # Modules are joined by one edge per blob: inception_3a -> inception_3b once.
    assert dot.count(f"  {modules['inception_3a']} -> {modules['inception_3b']} ") == 1


def test_collapse_prefixes(tmp_path):
    a = _analysis(ALEXNET, "TEST")
    dot = to_dot(a, collapse=["conv", "fc"])
    assert re.search(r'M0 \[id="M0", class="node-module L1 L2 L5 L6 L9 L10 L11 L12 L13 L14".*<B>conv</B>', dot)
    assert re.search(r"M1 \[.*<B>fc</B>", dot)
    assert "L3 [" in dot  # norm1 is no prefix's
    with pytest.raises(UsageError):
        to_dot(a, collapse=[""])
    with pytest.raises(UsageError):
        to_dot(a, collapse="inception")
    with pytest.raises(UsageError):
        to_dot(a, detail="everything")
    with pytest.raises(UsageError):
        to_dot(a, rankdir="XY")


def test_detail_levels():
    a = _analysis(ALEXNET, "TEST")
    names, params, shapes, full = (to_dot(a, detail=d) for d in ("names", "params", "shapes", "full"))
    assert "params 34,944" not in names and "k11 s4 p0" not in names and "×" not in names
    assert "96 out, k11 s4 p0" in params and "params 34,944" in params and "50×96×55×55" not in params
    assert "50×96×55×55" in shapes and "MACs" not in shapes
    assert "MACs 5.3G" in full and "RF 11/4" in full  # conv1: 50 images × 105.4M MACs
    assert "label<BR/>50" in shapes  # a blob named otherwise than its producer shows its name


# --------------------------------------------------------------------------------------------------------
# Writing files, with and without Graphviz

@needs_corpus
@needs_dot
def test_cli_draw_end_to_end(tmp_path, capsys):
    out = tmp_path / "x.svg"
    assert main(["draw", str(NETS / "alexnet" / "deploy.prototxt"), "-o", str(out)]) == 0
    nodes, legend, _ = _svg_nodes(out.read_text(encoding="utf-8"))
    assert nodes[0].get("id") == "L0" and legend
    png = tmp_path / "x.png"
    assert main(["draw", str(LENET), "--phase", "TRAIN", "--input", "data=64x1x28x28", "-o", str(png)]) == 0
    assert png.read_bytes().startswith(b"\x89PNG")
    pdf = tmp_path / "x.pdf"
    assert main(["draw", str(GOOGLENET), "--collapse-modules", "-o", str(pdf)]) == 0
    assert pdf.read_bytes().startswith(b"%PDF")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


def test_cli_draw_dot_and_stdout(tmp_path, capsys):
    dot = tmp_path / "x.dot"
    assert main(["draw", str(ALEXNET), "--phase", "TRAIN", "-o", str(dot)]) == 0
    assert dot.read_text(encoding="utf-8") == to_dot(_analysis(ALEXNET, "TRAIN"))
    capsys.readouterr()
    assert main(["draw", str(ALEXNET), "--phase", "TRAIN", "--detail", "names", "--rankdir", "LR"]) == 0
    assert capsys.readouterr().out == to_dot(_analysis(ALEXNET, "TRAIN"), detail="names", rankdir="LR")


def test_unknown_extension_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(UsageError, match=r"\.svg, \.png, \.pdf or \.dot"):
        draw_to_file("digraph {}", tmp_path / "x.jpeg")
    assert main(["draw", str(ALEXNET), "-o", str(tmp_path / "x.txt")]) == 2
    assert "use .svg, .png, .pdf or .dot" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_missing_dot_writes_the_dot_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert to_svg("digraph { a }") is None
    out = tmp_path / "net.svg"
    assert main(["draw", str(ALEXNET), "--phase", "TRAIN", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    beside = tmp_path / "net.dot"
    assert not out.exists() and beside.read_text(encoding="utf-8") == to_dot(_analysis(ALEXNET, "TRAIN"))
    assert str(beside) in err
    for hint in ("apt-get install graphviz", "brew install graphviz", "conda install"):
        assert hint in err
    assert "Traceback" not in err


def test_missing_dot_by_which(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    assert draw_to_file("digraph { a }\n", tmp_path / "g.png") == 1
    assert (tmp_path / "g.dot").read_text() == "digraph { a }\n"
    assert "apt-get install graphviz" in capsys.readouterr().err


def test_draw_without_the_data_set_draws_every_layer(tmp_path, capsys):
    """A diagram does not need every shape: a Data layer whose LMDB is absent is a note, not a failure."""
    out = tmp_path / "lenet.svg"
    rc = main(["draw", str(ROOT / "nets" / "lenet" / "train_val.prototxt"), "--phase", "TRAIN", "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 0 and ": note: " in err and "--input data=" in err
    if out.exists():  # rendered (dot installed); else the DOT is beside it
        text = out.read_text()
        for name in ("conv1", "pool1", "conv2", "pool2", "ip1", "ip2", "loss"):
            assert f">{name}<" in text
