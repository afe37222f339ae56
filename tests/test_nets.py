"""The network library in nets/: every file is what tools/gen_nets.py writes, every net passes `netc check` in
every phase with only the warnings its README explains, the READMEs' numbers are netc's, the learnable tensors
of the nets that copy a torchvision model are torchvision's one for one, and the nets that copy a BVLC model
are BVLC's files layer for layer.  The published totals are in tests/test_published.py.
"""
from __future__ import annotations

import difflib
import importlib.util
import json
import math
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import netc
from netc import caffe_pb2 as pb
from netc.analysis import analyze
from netc.cli import main

from golden import SHARED

ROOT = Path(__file__).resolve().parents[1]
NETS = ROOT / "nets"
CORPUS_MODELS = SHARED / "corpus" / "bvlc_caffe" / "models"
TORCHVISION_SHAPES = ROOT / "tests" / "data" / "torchvision_shapes.json"


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_nets", ROOT / "tools" / "gen_nets.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_nets"] = module
    spec.loader.exec_module(module)
    return module


gen = _load_generator()
DIRS = sorted(p.name for p in NETS.iterdir() if p.is_dir())
GENERATED = [d for d in DIRS if d in gen.DEFS and gen.DEFS[d].build is not None]

# --input for the one net whose data set is not in the repository and whose transform does not fix C, H, W.
INPUTS = {("lenet", "train_val.prototxt", "TRAIN"): "data=64x1x28x28",
          ("lenet", "train_val.prototxt", "TEST"): "data=100x1x28x28"}


def _diff(expected: str, found: str, name: str) -> str:
    return "".join(difflib.unified_diff(expected.splitlines(True), found.splitlines(True), name, "generated"))


# --------------------------------------------------------------------------------------------------------
# The files

def test_every_folder_is_a_complete_net():
    assert DIRS == sorted(gen.DEFS), "a folder of nets/ the generator does not know, or the reverse"
    for d in DIRS:
        for f in ("train_val.prototxt", "deploy.prototxt", "solver.prototxt", "README.md", "diagram.svg"):
            assert (NETS / d / f).is_file(), f"nets/{d}/{f} is missing"


@pytest.mark.parametrize("d", GENERATED)
def test_committed_files_are_the_generators_output(d):
    for fname, text in gen.expected_files(d).items():
        committed = (NETS / d / fname).read_text(encoding="utf-8")
        assert committed == text, (f"nets/{d}/{fname} differs from tools/gen_nets.py's output "
                                   f"(run python tools/gen_nets.py):\n{_diff(committed, text, fname)}")


@pytest.mark.parametrize("path", sorted(NETS.glob("*/*.prototxt")), ids=lambda p: str(p.relative_to(NETS)))
def test_files_are_in_canonical_form(path):
    from netc.fmt import format_document
    from netc.frontend import read_source
    from netc.syntax import parse
    source = read_source(path)
    assert format_document(parse(source)) == source.text


# --------------------------------------------------------------------------------------------------------
# netc check, every file and phase

RESNET_V1 = ["conv1", "res3a_branch2a", "res3a_branch1", "res4a_branch2a", "res4a_branch1", "res5a_branch2a",
             "res5a_branch1"]
RESNET_V15 = ["conv1", "res3a_branch2b", "res3a_branch1", "res4a_branch2b", "res4a_branch1", "res5a_branch2b",
              "res5a_branch1"]
RESNET_BASIC = ["conv1", "res3a_branch2a", "res3a_branch1", "res4a_branch2a", "res4a_branch1", "res5a_branch2a",
                "res5a_branch1"]
CIFAR = ["res3a/conv1", "res4a/conv1"]
# The layers whose output size is not an integer (a warning that shows the arithmetic): stride-2 layers on an
# even size, which PyTorch, Keras and Caffe all floor; each README explains its list.
DOCUMENTED_WARNINGS = {
    "googlenet": ["conv1/7x7_s2"],
    "mobilenet_v1": ["conv1", "conv2_2/dw", "conv3_2/dw", "conv4_2/dw", "conv5_6/dw"],
    "minigooglenet": ["downsample_1/3x3_s2"],
    "xception": ["block3/residual"],
    "se_resnet50": ["conv1/7x7_s2", "conv3_1_1x1_reduce", "conv3_1_1x1_proj", "conv4_1_1x1_reduce",
                    "conv4_1_1x1_proj", "conv5_1_1x1_reduce", "conv5_1_1x1_proj"],
    "resnet18": RESNET_BASIC, "resnet34": RESNET_BASIC,
    "resnet50": RESNET_V1, "resnet101": RESNET_V1, "resnet152": RESNET_V1,
    "resnet50_v1.5": RESNET_V15, "resnet101_v1.5": RESNET_V15, "resnet152_v1.5": RESNET_V15,
    "resnet_cifar20": CIFAR, "resnet_cifar32": CIFAR, "resnet_cifar56": CIFAR, "resnet_cifar110": CIFAR,
}
FLOORED = re.compile(r'warning: layer "([^"]+)" \(Convolution\): \(\d+ - \d+ \+ 2\*\d+\)/\d+ \+ 1 = [\d.]+, '
                     r"floored to \d+ \(an input of \d+ gives exactly \d+\)$")


def _check(capsys, path: Path, phase: str | None, extra=()):
    argv = ["check", str(path)] + (["--phase", phase] if phase else []) + list(extra)
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def _instances():
    out = []
    for d in DIRS:
        for fname, phase in gen.net_files(d):
            out.append(pytest.param(d, fname, phase, id=f"{d}/{fname}:{phase}"))
    return out


@pytest.mark.parametrize("d,fname,phase", _instances())
def test_check_has_only_the_documented_warnings(capsys, d, fname, phase):
    path = NETS / d / fname
    given = INPUTS.get((d, fname, phase))
    rc, out, err = _check(capsys, path, phase, ["--input", given] if given else [])
    assert rc == 0, err
    assert out.endswith("; shapes ok\n"), out
    diagnostics = [l for l in err.splitlines() if l.startswith(str(path))]
    warned = []
    for line in diagnostics:
        m = FLOORED.search(line)
        assert m, f"an undocumented diagnostic: {line}"
        warned.append(m.group(1))
    assert warned == DOCUMENTED_WARNINGS.get(d, [])


@pytest.mark.parametrize("d", sorted(DOCUMENTED_WARNINGS))
def test_readme_explains_each_warning(d):
    prose = (NETS / d / "README.md").read_text(encoding="utf-8").split(gen.NUMBERS_BEGIN)[0]
    for layer in DOCUMENTED_WARNINGS[d]:
        assert f"`{layer}`" in prose, f"nets/{d}/README.md does not explain the warning of {layer}"


def test_lenet_without_its_data_set_is_a_note(capsys):
    """LeNet's transform fixes neither C nor H, W (Caffe's MNIST example): without the LMDB, check says so."""
    rc, out, err = _check(capsys, NETS / "lenet" / "train_val.prototxt", None)
    assert rc == 0 and "warning" not in err
    assert err.count(": note: ") == 2 and "--input data=64xCxHxW" in err and "--input data=100xCxHxW" in err
    assert out.count("shapes unchecked past 1 layer that needs its data") == 2


TEST_SETS = {"ilsvrc12_val": 50_000, "cifar10_test": 10_000, "mnist_test": 10_000, "tiny_imagenet_val": 10_000}


@pytest.mark.parametrize("d", DIRS)
def test_solver_checks_and_names_its_net(capsys, d):
    path = NETS / d / "solver.prototxt"
    rc, out, err = _check(capsys, path, None)
    assert (rc, err) == (0, ""), err
    solver = netc.parse_prototxt(path, kind="solver")
    assert solver.net == f"nets/{d}/train_val.prototxt"
    assert solver.max_iter > 0
    # One test pass covers the whole test set: test_iter x the TEST batch.
    data = netc.load_net(NETS / d / "train_val.prototxt", "TEST").layer("data").param.data_param
    size = next(n for key, n in TEST_SETS.items() if key in data.source)
    assert solver.test_iter[0] * data.batch_size == size


# --------------------------------------------------------------------------------------------------------
# READMEs and diagrams

@pytest.mark.parametrize("d", DIRS)
def test_readme_numbers_are_netcs(d):
    readme = (NETS / d / "README.md").read_text(encoding="utf-8")
    expected = gen.readme_text(d, readme)
    assert readme == expected, f"nets/{d}/README.md: run python tools/gen_nets.py\n{_diff(readme, expected, d)}"
    prose = readme.split(gen.NUMBERS_BEGIN)[0]
    assert prose.startswith("# ") and "## Source" in prose and "## Published numbers" in prose


@pytest.mark.parametrize("d", DIRS)
def test_diagram_is_the_deploy_net(d):
    """diagram.svg is netc.draw's drawing of deploy.prototxt: every layer is named by one node's class
    (folded and collapsed layers included), with netc's title."""
    net = netc.load_net(NETS / d / "deploy.prototxt", "TEST")
    svg = ET.parse(NETS / d / "diagram.svg").getroot()
    nodes = [g for g in svg.iter("{http://www.w3.org/2000/svg}g") if "node" in g.get("class", "").split()]
    named = sorted(t for g in nodes for t in g.get("class").split() if re.fullmatch(r"L\d+", t))
    assert named == sorted(f"L{l.index}" for l in net.layers)
    texts = ["".join(t.itertext()) for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert net.name in texts


# --------------------------------------------------------------------------------------------------------
# torchvision: the learnable tensors, one for one

def _netc_shapes(d: str) -> list[list[int]]:
    """Learnable blob shapes in net order: Convolution/InnerProduct weight then bias, Scale gamma then beta
    (BatchNorm's blobs are statistics: state, not parameters)."""
    a = analyze(netc.load_net(NETS / d / "deploy.prototxt", "TEST"), batch=1)
    return [list(s) for info in a.layers if info.params for s in info.blob_shapes]


def _recorded() -> dict:
    return json.loads(TORCHVISION_SHAPES.read_text(encoding="utf-8"))


def _live_torchvision(model: str):
    try:
        from torchvision import models
    except Exception:  # not installed, or its C extension does not match this torch
        return None
    return [list(p.shape) for p in getattr(models, model)(weights=None).parameters()]


TORCHVISION_TWINS = [("vgg16", "vgg16"), ("vgg19", "vgg19"), ("resnet18", "resnet18"), ("resnet34", "resnet34"),
                     ("resnet50_v1.5", "resnet50"), ("resnet101_v1.5", "resnet101"),
                     ("resnet152_v1.5", "resnet152")]


@pytest.mark.parametrize("d,model", TORCHVISION_TWINS)
def test_learnable_tensors_are_torchvisions(d, model):
    ours = _netc_shapes(d)
    recorded = [s for _, s in _recorded()["models"][model]]
    assert len(ours) == len(recorded)
    for i, (a, b) in enumerate(zip(ours, recorded)):
        assert a == b, f"tensor {i} ({_recorded()['models'][model][i][0]}): netc {a}, torchvision {b}"
    live = _live_torchvision(model)
    if live is not None:
        assert ours == live


def test_recorded_shapes_say_how_they_were_made():
    rec = _recorded()
    assert rec["torchvision"].startswith("0.28.0") and "--torchvision-shapes" in rec["command"]
    # The recorded models have torchvision's documented parameter counts.
    counts = {m: sum(math.prod(s) for _, s in v) for m, v in rec["models"].items()}
    assert counts == {"vgg16": 138_357_544, "vgg19": 143_667_240, "resnet18": 11_689_512, "resnet34": 21_797_672,
                      "resnet50": 25_557_032, "resnet101": 44_549_160, "resnet152": 60_192_808}


@pytest.mark.parametrize("d,model", [("resnet101", "resnet101"), ("resnet152", "resnet152")])
def test_v1_layout_has_the_same_tensors(d, model):
    """Moving the stride from the 3x3 to the first 1x1 changes no tensor: the v1 nets of 101 and 152 layers
    have torchvision's tensors too (ResNet-50 v1 has conv1's 64 biases more, see test_published)."""
    assert _netc_shapes(d) == [s for _, s in _recorded()["models"][model]]


def test_resnet50_v1_differs_by_conv1s_bias():
    ours = _netc_shapes("resnet50")
    tv = [s for _, s in _recorded()["models"]["resnet50"]]
    assert ours[:1] + ours[2:] == tv and ours[1] == [64]


# --------------------------------------------------------------------------------------------------------
# BVLC's files, layer for layer

def _layers(path: Path, training_fields: bool = True) -> list:
    out = []
    for lp in netc.parse_prototxt(path).layer:
        lp = pb.LayerParameter.FromString(lp.SerializeToString())
        if lp.type == "Data":
            lp.data_param.ClearField("source")  # LMDBs beside our file; BVLC's under examples/imagenet/
        if not training_fields:
            lp.ClearField("param")
            for f in ("convolution_param", "inner_product_param"):
                if lp.HasField(f):
                    getattr(lp, f).ClearField("weight_filler")
                    getattr(lp, f).ClearField("bias_filler")
        out.append(lp)
    return out


def _same_layers(ours: list, theirs: list) -> None:
    assert [l.name for l in ours] == [l.name for l in theirs]
    for a, b in zip(ours, theirs):
        assert a == b, f"{a.name}:\nours:\n{a}\nBVLC's:\n{b}"


needs_corpus = pytest.mark.skipif(not CORPUS_MODELS.is_dir(), reason=f"no BVLC corpus at {CORPUS_MODELS}")


@needs_corpus
def test_googlenet_is_bvlcs():
    _same_layers(_layers(NETS / "googlenet" / "train_val.prototxt"),
                 _layers(CORPUS_MODELS / "bvlc_googlenet" / "train_val.prototxt"))
    # BVLC's deploy file keeps the param and filler fields; ours has none (a deploy net does not train).
    _same_layers(_layers(NETS / "googlenet" / "deploy.prototxt"),
                 _layers(CORPUS_MODELS / "bvlc_googlenet" / "deploy.prototxt", training_fields=False))


@needs_corpus
def test_caffenet_is_bvlcs_but_for_the_mean():
    ours = _layers(NETS / "caffenet" / "train_val.prototxt")
    theirs = _layers(CORPUS_MODELS / "bvlc_reference_caffenet" / "train_val.prototxt")
    for a, b in zip(ours[:2], theirs[:2]):
        assert list(a.transform_param.mean_value) == [104, 117, 123]
        assert b.transform_param.mean_file == "data/ilsvrc12/imagenet_mean.binaryproto"
        a.transform_param.ClearField("mean_value")
        b.transform_param.ClearField("mean_file")
    _same_layers(ours, theirs)
    _same_layers(_layers(NETS / "caffenet" / "deploy.prototxt"),
                 _layers(CORPUS_MODELS / "bvlc_reference_caffenet" / "deploy.prototxt", training_fields=False))


# --------------------------------------------------------------------------------------------------------
# Shapes the sources state

def _deploy(d: str):
    return analyze(netc.load_net(NETS / d / "deploy.prototxt", "TEST"), batch=1)


def test_minigooglenet_last_inception_is_7x7x336():
    a = _deploy("minigooglenet")
    assert a.info("inception_3b/output").top_shapes == [(1, 336, 7, 7)]
    assert a.info("downsample_1/output").top_shapes == [(1, 160, 15, 15)]
    assert a.info("downsample_2/output").top_shapes == [(1, 240, 7, 7)]


def test_minigooglenet_without_floor_is_a_concat_error(tmp_path, capsys):
    """Caffe's pooling rounds up: without round_mode FLOOR the downsample module's pool gives 16 x 16 beside
    its convolution's 15 x 15, and check names both shapes; the convolution's warning shows its arithmetic."""
    text = (NETS / "minigooglenet" / "deploy.prototxt").read_text(encoding="utf-8")
    line = "  pooling_param { pool: MAX kernel_size: 3 stride: 2 round_mode: FLOOR }\n"
    assert text.count(line) == 2
    p = tmp_path / "mini.prototxt"
    p.write_text(text.replace(line, line.replace(" round_mode: FLOOR", ""), 1), encoding="utf-8")
    rc, out, err = _check(capsys, p, None)
    assert rc == 1
    assert ('error: layer "downsample_1/output" (Concat): bottoms need equal shapes except on axis 1: '
            '"downsample_1/3x3_s2" is (1, 80, 15, 15) but "downsample_1/pool" is (1, 80, 16, 16)') in err
    assert "hint: axis 2 differs (15 vs 16)" in err
    assert ('warning: layer "downsample_1/3x3_s2" (Convolution): (32 - 3 + 2*0)/2 + 1 = 15.5, floored to 15 '
            "(an input of 33 gives exactly 16)") in err
    assert err.rstrip().endswith(f"{p}: 1 error, 1 warning")


def test_deepergooglenet_inception_outputs():
    # GoogLeNet's Table 1 depths; 3a is 256 maps, 4c 512 with the paper's 64-map 5x5 (84 would give 532).
    a = _deploy("deepergooglenet")
    found = {m: a.info(f"inception_{m}/output").top_shapes[0] for m in ("3a", "3b", "4a", "4b", "4c", "4d", "4e")}
    assert found == {"3a": (1, 256, 16, 16), "3b": (1, 480, 16, 16), "4a": (1, 512, 8, 8), "4b": (1, 512, 8, 8),
                     "4c": (1, 512, 8, 8), "4d": (1, 528, 8, 8), "4e": (1, 832, 8, 8)}
    assert a.info("pool4/3x3_s2").top_shapes == [(1, 832, 4, 4)]
    assert a.info("classifier").top_shapes == [(1, 200)]


def test_fashion_mnist_cnn_pools_round_down():
    a = _deploy("fashion_mnist_cnn")
    assert [a.info(f"pool{i}").top_shapes[0] for i in (1, 2, 3)] == [(1, 64, 14, 14), (1, 128, 7, 7),
                                                                     (1, 256, 3, 3)]
    assert a.info("fc4").blob_shapes == [(128, 2304), (128,)]


def test_resnet_cifar_depths():
    for n, depth in ((3, 20), (5, 32), (9, 56), (18, 110)):
        a = _deploy(f"resnet_cifar{depth}")
        weighted = [i for i in a.layers if i.layer.type in ("Convolution", "InnerProduct")]
        assert len(weighted) == 6 * n + 2  # option-A shortcuts have no weights
        assert a.info(f"res4{'abcdefghijklmnopqr'[n - 1]}").top_shapes == [(1, 64, 8, 8)]


def test_xception_flows():
    a = _deploy("xception")
    assert a.info("block1/conv2").top_shapes == [(1, 64, 147, 147)]
    sizes = [a.info(f"block{i}/add").top_shapes[0] for i in (2, 3, 4, 12, 13)]
    assert sizes == [(1, 128, 74, 74), (1, 256, 37, 37), (1, 728, 19, 19), (1, 728, 19, 19), (1, 1024, 10, 10)]
    assert a.info("block14/sepconv2").top_shapes == [(1, 2048, 10, 10)]


def test_resnet_pool1_matches_its_layout():
    """v1 (the authors' release): 3x3/2 max pool without padding, rounded up; v1.5 (torchvision): padded 1,
    rounded down.  Both give 56 x 56 from 112, with windows one pixel apart."""
    v1 = netc.load_net(NETS / "resnet50" / "deploy.prototxt").layer("pool1").param.pooling_param
    v15 = netc.load_net(NETS / "resnet50_v1.5" / "deploy.prototxt").layer("pool1").param.pooling_param
    assert (v1.pad, v1.round_mode) == (0, pb.PoolingParameter.CEIL)
    assert (v15.pad, v15.round_mode) == (1, pb.PoolingParameter.FLOOR)
    for d in ("resnet50", "resnet50_v1.5"):
        assert _deploy(d).info("pool1").top_shapes == [(1, 64, 56, 56)]
