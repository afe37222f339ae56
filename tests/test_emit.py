"""Generated PyTorch modules against the real Caffe, and against netc's own analysis.

* Parity: every golden case (../shared/golden/layers and nets) loads Caffe's weights.caffemodel through
  load_caffemodel, runs forward_all on Caffe's inputs and matches every array Caffe dumped, forward and (where
  Caffe ran one) backward, within the case's recommended tolerance.  CPU always; CUDA where there is one.
* The analysis and the module check each other on every corpus net Caffe instantiates and every nets/ file:
  learnable parameter count, and every blob shape traced on the meta device.
* Names from the prototxt are data, never code.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="code generation needs torch")

import netc  # noqa: E402
from netc.analysis import analyze  # noqa: E402
from netc.caffemodel import read_caffemodel  # noqa: E402
from netc.cli import main  # noqa: E402
from netc.emit import DECLINED, EMITTERS, EmitError, build_module, emit_torch, fed_blobs  # noqa: E402
from netc.layers import known_types, rule_for  # noqa: E402
from netc.parity import Tolerance, check_parity  # noqa: E402
from netc.weights import WeightsError, load_caffemodel, save_caffemodel  # noqa: E402

from golden import (GOLDEN, GOLDEN_ARTEFACTS, LAYER_CASES, given_shapes, hinge_loss_reference,  # noqa: E402
                    layer_cases, needs_golden, shape_instances, shape_source)

ROOT = Path(__file__).resolve().parents[1]
NET_CASES = GOLDEN / "nets"
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device")])]

# The golden README's tolerances where a case gives none.
NET_TOLERANCE = {"forward": {"rtol": 1e-4, "atol_abs": 1e-7, "atol_rel_to_max": 1e-5},
                 "backward": {"rtol": 1e-3, "atol_abs": 1e-7, "atol_rel_to_max": 2e-5}}


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


def _cases() -> list:
    nets = [pytest.param(p, id=f"nets/{p.name}") for p in sorted(NET_CASES.iterdir())
            if (p / "case.json").is_file()] if NET_CASES.is_dir() else []
    return nets + layer_cases()


def _tolerance(meta: dict) -> dict:
    tol = meta.get("recommended_tolerance") or NET_TOLERANCE
    if isinstance(tol, str):  # the nets' case.json stores it as a Python literal
        tol = ast.literal_eval(tol)
    return {k: tol.get(k, NET_TOLERANCE[k]) for k in ("forward", "backward")}


# ----------------------------------------------------------------------------------------------------------
# Parity with Caffe

@needs_golden
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", _cases())
def test_parity_with_caffe(case: Path, device: str):
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    meta = json.loads((case / "case.json").read_text())
    tol = _tolerance(meta)
    backward = None
    if (case / "backward.npz").is_file():
        backward = dict(np.load(case / "backward.npz"))
        for name, key in GOLDEN_ARTEFACTS:
            if name == case.name:
                assert not backward[key].any(), "the golden hinge gradient is no longer all zero"
                inputs, topdiff = np.load(case / "inputs.npz"), np.load(case / "topdiff.npz")
                norm = netc.parse_prototxt(case / "net.prototxt").layer[1].hinge_loss_param.norm
                backward[key] = hinge_loss_reference(inputs["score"], inputs["label"], "L1" if norm == 1 else "L2",
                                                     float(topdiff["loss"].reshape(())))
    result = check_parity(case / "net.prototxt", case / "weights.caffemodel", case / "inputs.npz",
                          case / "forward.npz", phase=meta.get("phase", "TEST"), backward=backward,
                          topdiff=case / "topdiff.npz" if backward else None,
                          forward_tolerance=Tolerance.of(tol["forward"]),
                          backward_tolerance=Tolerance.of(tol["backward"]), device=device)
    assert result.ok, result.render()
    # Everything Caffe dumped was compared: every blob, every layer blob after forward, and with a backward
    # every gradient (inputs, parameters and the intermediate blobs, in-place ones included).
    assert not result.skipped
    assert result.forward or case.name == "silence"  # Silence has no top
    if backward is not None:
        assert len(result.backward) == len(backward)


@needs_golden
def test_parity_reports_the_first_diverging_blob(tmp_path):
    case = NET_CASES / "mini_caffenet"
    forward = dict(np.load(case / "forward.npz"))
    forward["conv2"] = forward["conv2"].copy()
    forward["conv2"][0, 5, 3, 4] += 1.0
    forward["fc7"] = forward["fc7"] * 2
    np.savez(tmp_path / "forward.npz", **forward)
    result = check_parity(case / "net.prototxt", case / "weights.caffemodel", case / "inputs.npz",
                          tmp_path / "forward.npz")
    assert not result.ok
    failure = result.first_failure
    assert (failure.key, failure.writer, failure.worst_index, failure.bad) == ("conv2", "relu2", (0, 5, 3, 4), 1)
    assert failure.caffe_value == pytest.approx(failure.netc_value + 1.0, abs=1e-5)
    text = result.render()
    assert 'error: first divergence: "conv2" (written by layer "relu2")' in text
    assert "worst at (0, 5, 3, 4): netc " in text and "fc7" in text


@needs_golden
def test_parity_reports_a_diverging_gradient_with_its_layer(tmp_path):
    case = NET_CASES / "mini_resnet"
    backward = dict(np.load(case / "backward.npz"))
    backward["res2a_branch2b.diff"] = backward["res2a_branch2b.diff"] * 1.5   # in place: BatchNorm, Scale, ReLU
    backward["conv1.diff"] = -backward["conv1.diff"]
    result = check_parity(case / "net.prototxt", case / "weights.caffemodel", case / "inputs.npz",
                          case / "forward.npz", backward=backward, topdiff=case / "topdiff.npz")
    # Backward runs from the last layer: res2a_branch2b diverges before conv1 does.
    failure = result.first_failure
    assert (failure.key, failure.writer) == ("res2a_branch2b.diff", "res2a_branch2b")
    assert [c.key for c in result.backward if not c.ok] == ["res2a_branch2b.diff", "conv1.diff"]


@needs_golden
def test_parity_command(tmp_path, capsys):
    case = NET_CASES / "mini_resnet"
    args = ["parity", str(case / "net.prototxt"), "--weights", str(case / "weights.caffemodel"),
            "--inputs", str(case / "inputs.npz"), "--expected", str(case / "forward.npz")]
    assert main(args + ["--backward", str(case / "backward.npz"), "--topdiff", str(case / "topdiff.npz")]) == 0
    out = capsys.readouterr().out
    assert "forward: 9 of 9 arrays match Caffe" in out and "backward: 41 of 41 arrays match Caffe" in out
    forward = dict(np.load(case / "forward.npz"))
    forward["pool5"] = forward["pool5"] + 0.5
    np.savez(tmp_path / "bad.npz", **forward)
    args[-1] = str(tmp_path / "bad.npz")
    assert main(args) == 1
    assert 'first divergence: "pool5" (written by layer "pool5")' in capsys.readouterr().out
    assert main(args + ["--backward", str(case / "backward.npz")]) == 2


# ----------------------------------------------------------------------------------------------------------
# The module and the analysis check each other

def _trace(net, inputs=None):
    """Build on the meta device: parameter count and every traced blob shape equal the analysis'."""
    a = analyze(net, inputs)
    module = build_module(a, device="meta")
    assert sum(p.numel() for p in module.parameters()) == a.params
    feeds = {b: torch.empty(a.blob_shapes[b], device="meta") for b in fed_blobs(net)}
    blobs = module.forward_all(**feeds)
    traced = {b: tuple(t.shape) for b, t in blobs.items()}
    expected = {b: tuple(s) for b, s in a.blob_shapes.items() if b in traced}
    assert traced == expected
    assert set(a.blob_shapes) - set(traced) <= set(), "every blob of the net is a variable of forward"
    return module


@needs_golden
@pytest.mark.parametrize("path", shape_instances())
def test_corpus_net_traces_to_the_reports_shapes(path: Path):
    golden = json.loads(path.read_text())
    net = netc.load_net(shape_source(golden, path), golden["phase"], golden["stages"])
    declined = [layer for layer in net.layers if layer.type in DECLINED]
    if declined:
        with pytest.raises(EmitError) as err:
            emit_torch(analyze(net, given_shapes(golden)))
        text = err.value.render()
        assert f'layer "{declined[0].name}" ({declined[0].type}): netc cannot compile a {declined[0].type} layer' \
               in text and DECLINED[declined[0].type] in text
        return
    _trace(net, given_shapes(golden))


def _nets_instances() -> list:
    out = []
    for f in sorted((ROOT / "nets").rglob("*.prototxt")):
        if "solver" in f.name:
            continue
        for phase in ("TRAIN", "TEST") if "train" in f.name else ("TEST",):
            out.append(pytest.param(f, phase, id=f"{f.relative_to(ROOT / 'nets')}:{phase}"))
    return out


def _deploy_inputs(path: Path, phase: str) -> dict:
    """Shapes for data layers whose data set is not here: the deploy net's input, and labels (N,)."""
    net = netc.load_net(path, phase)
    a = analyze(net, lenient=True)
    missing = [b for b in fed_blobs(net) if b not in a.blob_shapes]
    if not missing:
        return {}
    deploy = analyze(netc.load_net(path.parent / "deploy.prototxt", "TEST"))
    data = deploy.blob_shapes[fed_blobs(deploy.net)[0]]
    return {b: (data if i == 0 else data[:1]) for i, b in enumerate(missing)}


@pytest.mark.parametrize("path,phase", _nets_instances())
def test_nets_compile_and_trace_to_the_reports_shapes(path: Path, phase: str):
    net = netc.load_net(path, phase)
    _trace(net, _deploy_inputs(path, phase))


# ----------------------------------------------------------------------------------------------------------
# The generated source

def test_every_layer_type_compiles_or_is_declined_with_a_reason():
    for t in known_types():
        if t == "Input" or (rule_for(t).data and t not in DECLINED):
            continue  # data layers: their tops are the module's inputs
        assert (t in EMITTERS) != (t in DECLINED), t


def test_source_is_deterministic_and_reads_like_code():
    a = analyze(netc.load_net(ROOT / "nets" / "alexnet" / "deploy.prototxt"))
    first, second = emit_torch(a), emit_torch(a)
    assert first == second
    compile(first, "model.py", "exec")
    lines = first.splitlines()
    assert lines[0].startswith("# Generated by netc ") and "deploy.prototxt (phase TEST)" in lines[0]
    assert "class AlexNet(nn.Module):" in first
    assert "        self.conv2 = nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2)" in lines
    assert any(l.strip().startswith("conv1 = F.relu(conv1, inplace=True)") and l.endswith("# (10, 96, 55, 55)  relu1, in place")
               for l in lines)
    assert any(l.strip().startswith("pool1 = self.pool1(norm1)") for l in lines)
    assert "self.pool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)" in first
    assert "fc6 = self.fc6(pool5.flatten(1))" in first
    assert "fc7 = F.dropout(fc7, 0.5, self.training)" in first  # not in place: relu7 needs its output


def test_compile_command_writes_the_same_source(tmp_path):
    out = tmp_path / "model.py"
    net = ROOT / "nets" / "alexnet" / "deploy.prototxt"
    assert main(["compile", str(net), "-o", str(out), "--class-name", "Alex"]) == 0
    text = out.read_text()
    assert text == emit_torch(analyze(netc.load_net(net)), "Alex", source_name=str(net))
    assert main(["compile", str(net), "--class-name", "not valid"]) == 1


def test_a_layer_with_no_forward_is_a_located_error(tmp_path, capsys):
    net = tmp_path / "py.prototxt"
    net.write_text('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }\n'
                   'layer { name: "mine" type: "Python" bottom: "x" top: "y"\n'
                   '        python_param { module: "m" layer: "L" } }\n')
    assert main(["compile", str(net), "--input", "y=2x3"]) == 1
    err = capsys.readouterr().err
    assert f'{net}:2:15: error: layer "mine" (Python): netc cannot compile a Python layer to PyTorch' in err
    assert "hint: its forward is user code that netc does not see" in err


HOSTILE = [
    'x"); __import__(\'os\').system(\'touch PWNED\'); ("',
    "back\\slash",
    'triple """ quotes \'\'\'',
    "new\nline",
    "class",
    "self",
    "ünïcödé/층",
    "forward",
    "1x1",
    "",
]


def test_hostile_names_compile_to_a_working_module(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from netc.caffe_pb2 import NetParameter
    net = NetParameter(name='n"; import os #\n""" + __import__("os").system("touch PWNED") + """')
    inp = net.layer.add(name=HOSTILE[0], type="Input", top=[HOSTILE[0]])
    inp.input_param.shape.add(dim=[2, 3, 5, 7])
    prev = HOSTILE[0]
    for i, name in enumerate(HOSTILE[1:]):
        layer = net.layer.add(name=name or f"anon{i}", type="Convolution", bottom=[prev], top=[name or f"t{i}"])
        layer.convolution_param.num_output = 3
        layer.convolution_param.kernel_size.append(1)
        layer.convolution_param.weight_filler.type = "xavier"
        relu = net.layer.add(name=f"{name}/relu", type="ReLU", bottom=[layer.top[0]], top=[layer.top[0]])
        prev = relu.top[0]
    # Layers that become comment lines (a Scale run by its BatchNorm, a Silence) carry names too.
    net.layer.add(name="bn\nimport os", type="BatchNorm", bottom=[prev], top=[prev])
    net.layer.add(name='sc\n__import__("os").system("touch PWNED")', type="Scale", bottom=[prev], top=[prev])
    tap = net.layer.add(name="tap", type="Split", bottom=[prev], top=[prev + "\r", "spare"])
    net.layer.add(name="si\rraise SystemExit", type="Silence", bottom=[tap.top[1]])
    prev = tap.top[0]
    path = tmp_path / "hostile.prototxt"
    from google.protobuf import text_format
    path.write_text(text_format.MessageToString(net))
    source = emit_torch(analyze(netc.load_net(path)))
    module = build_module(path)
    out = module(**{HOSTILE[0]: torch.randn(2, 3, 5, 7)})
    assert list(out) == [prev] and out[prev].shape == (2, 3, 5, 7)
    blobs = module.forward_all(**{HOSTILE[0]: torch.randn(2, 3, 5, 7)})
    assert set(blobs) == {HOSTILE[0], "spare", prev} | {n or f"t{i}" for i, n in enumerate(HOSTILE[1:])}
    assert "# sc\\n__import__" in source and "# si\\rraise SystemExit (Silence)" in source
    with_blobs = {name for name, (_, blobs) in type(module).CAFFE_LAYERS.items() if blobs}
    assert with_blobs == {n or f"anon{i}" for i, n in enumerate(HOSTILE[1:])} | {
        "bn\nimport os", 'sc\n__import__("os").system("touch PWNED")'}
    assert not (tmp_path / "PWNED").exists()
    # Every identifier is plain ASCII, and the only imports are torch's.
    tree = ast.parse(source)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | \
            {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert all(n.isascii() and n.isidentifier() for n in names)
    imports = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    assert imports <= {"annotations", "torch", "torch.nn.functional", "Tensor", "nn", "runtime", "forward_all"}


def test_standalone_file_runs_without_netc(tmp_path):
    """A net that needs none of Caffe's special arithmetic imports torch only."""
    net = tmp_path / "plain.prototxt"
    net.write_text('name: "plain"\n'
                   'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 9 '
                   'dim: 9 } } }\n'
                   'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"\n'
                   '  convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "msra" } } }\n'
                   'layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }\n'
                   'layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool"\n'
                   '  pooling_param { pool: MAX kernel_size: 3 stride: 2 } }\n'
                   'layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc"\n'
                   '  inner_product_param { num_output: 5 weight_filler { type: "gaussian" std: 0.1 } } }\n'
                   'layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }\n')
    model = tmp_path / "model.py"
    assert main(["compile", str(net), "-o", str(model)]) == 0
    imports = [l for l in model.read_text().splitlines() if l.startswith(("import ", "from "))]
    assert imports == ["from __future__ import annotations", "import torch", "import torch.nn.functional as F",
                       "from torch import Tensor, nn"]
    script = ("import sys, torch; sys.path.insert(0, sys.argv[1]); import model\n"
              "torch.manual_seed(0); m = model.Plain(); out = m(data=torch.randn(2, 3, 9, 9))\n"
              "assert 'netc' not in sys.modules, 'netc was imported'\n"
              "print(tuple(out['prob'].shape), round(float(out['prob'].sum()), 4))")
    # -I: isolated, so the repository (and an installed netc) is not importable.
    env_path = str(Path(torch.__file__).resolve().parents[1])
    run = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.append({env_path!r}); " + script,
                          str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "(2, 5) 2.0"


def test_train_outputs_apply_the_loss_weights():
    path = GOLDEN.parent / "corpus" / "bvlc_caffe" / "models" / "bvlc_googlenet" / "train_val.prototxt"
    if not path.is_file():
        pytest.skip("corpus not found")
    net = netc.load_net(path, "TRAIN")
    a = analyze(net, {"data": (2, 3, 224, 224), "label": (2,)})
    source = emit_torch(a)
    assert "'loss1/loss1': loss1_loss1 * 0.3,  # loss_weight 0.3" in source
    assert "'loss3/loss3': loss3_loss3," in source
    assert "'loss1/top-1'" not in source  # accuracies are TEST-only in this net


def test_batch_norm_follows_the_phase_and_its_param(tmp_path):
    text = """
    layer { name: "d" type: "Input" top: "x" input_param { shape { dim: 4 dim: 3 dim: 2 dim: 2 } } }
    layer { name: "bn" type: "BatchNorm" bottom: "x" top: "y" }
    layer { name: "bn2" type: "BatchNorm" bottom: "x" top: "z" batch_norm_param { use_global_stats: true } }
    layer { name: "drop" type: "Dropout" bottom: "y" top: "w" dropout_param { dropout_ratio: 0.5 } }
    """
    path = tmp_path / "bn.prototxt"
    path.write_text(text)
    train, test = build_module(path, "TRAIN"), build_module(path, "TEST")
    assert train.training and not test.training
    x = torch.randn(4, 3, 2, 2) * 3 + 1
    out = train.forward_all(x=x)
    # TRAIN: batch statistics, then Caffe's moving-average update; use_global_stats: true stays global
    # (its statistics are zero with scale factor 0, so it divides by sqrt(eps)).
    torch.testing.assert_close(out["y"].mean((0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(train.bn.scale_factor, torch.ones(1))
    torch.testing.assert_close(train.bn.mean, x.mean((0, 2, 3)))
    torch.testing.assert_close(out["z"], x / (1e-5) ** 0.5)
    assert (out["w"] == 0).any()  # dropped
    test.load_state_dict(train.state_dict())
    out = test.forward_all(x=x)
    torch.testing.assert_close(out["w"], out["y"])  # TEST: Dropout passes through
    torch.testing.assert_close(out["y"], (x - x.mean((0, 2, 3), keepdim=True)) /
                               torch.sqrt(x.var((0, 2, 3), keepdim=True) + 1e-5))


@pytest.mark.parametrize("name", ["mini_googlenet", "mini_resnet", "mini_caffenet"])
@needs_golden
def test_no_graph_breaks_under_torch_compile(name):
    explain = getattr(torch._dynamo, "explain", None)
    if explain is None:
        pytest.skip("this torch has no torch._dynamo.explain")
    case = NET_CASES / name
    module = build_module(case / "net.prototxt")
    inputs = {k: torch.tensor(v) for k, v in np.load(case / "inputs.npz").items()}
    result = explain(module)(**inputs)
    assert result.graph_break_count == 0, result.break_reasons
    assert result.graph_count == 1


# ----------------------------------------------------------------------------------------------------------
# Weights

def _golden_models() -> list:
    return [pytest.param(case, id=case.name) for case in
            sorted(p.parent for p in GOLDEN.rglob("weights.caffemodel"))] if GOLDEN.is_dir() else []


@needs_golden
@pytest.mark.parametrize("case", _golden_models())
def test_save_of_load_round_trips_every_golden_model(case: Path, tmp_path):
    meta = json.loads((case / "case.json").read_text())
    module = build_module(case / "net.prototxt", meta.get("phase", "TEST"))
    load_caffemodel(module, case / "weights.caffemodel")
    save_caffemodel(module, tmp_path / "out.caffemodel")
    before, after = read_caffemodel(case / "weights.caffemodel"), read_caffemodel(tmp_path / "out.caffemodel")
    # Caffe's Net::ToProto writes every layer, with or without blobs; so does save_caffemodel (all but the
    # Split layers Caffe inserts itself where a blob has several readers).
    ours = set(type(module).CAFFE_LAYERS)
    kept = [l for l in before.layers if l.name in ours or l.type != "Split"]
    assert [(l.name, l.type) for l in after.layers] == [(l.name, l.type) for l in kept]
    for old, new in zip(kept, after.layers):
        assert len(old.blobs) == len(new.blobs)
        for a, b in zip(old.blobs, new.blobs):
            assert a.shape == b.shape and np.array_equal(a, b), old.name


def test_load_errors_name_the_layer_and_both_shapes(tmp_path):
    from netc.caffemodel import write_caffemodel
    net = ROOT / "nets" / "lenet" / "deploy.prototxt"
    module = build_module(net)
    path = tmp_path / "w.caffemodel"
    blobs = [(k, tuple(v.shape)) for k, v in module.state_dict().items()]
    layers = [(name, type_, [np.zeros(shape, np.float32) for _, shape in specs])
              for name, (type_, specs) in type(module).CAFFE_LAYERS.items()]
    conv1 = next(i for i, l in enumerate(layers) if l[0] == "conv1")
    layers[conv1] = ("conv1", "Convolution", [np.zeros((20, 1, 5, 4), np.float32), layers[conv1][2][1]])
    ip2 = next(i for i, l in enumerate(layers) if l[0] == "ip2")
    write_caffemodel(path, layers[:ip2] + layers[ip2 + 1:])
    with pytest.raises(WeightsError) as err:
        load_caffemodel(module, path)
    text = err.value.render()
    assert f'{path}: layer "conv1" (Convolution) blob 0: the net needs (20, 1, 5, 5), the file has (20, 1, 5, 4)' in text
    assert f'{path}: layer "ip2" (InnerProduct) is not in the file' in text
    assert blobs  # the module was untouched by the failed load: still its fillers
    del layers[conv1]
    write_caffemodel(path, layers + [("extra", "ReLU", [np.ones(3, np.float32)])])
    before = module.conv1.weight.detach().clone()
    assert load_caffemodel(module, path, strict=False) == ["extra"]  # Caffe ignores it too
    assert torch.equal(module.conv1.weight, before) and (module.ip2.weight == 0).all()


@needs_golden
def test_convert_weights_loads_with_plain_load_state_dict(tmp_path):
    case = NET_CASES / "mini_resnet"
    model_py = tmp_path / "model.py"
    assert main(["compile", str(case / "net.prototxt"), "-o", str(model_py)]) == 0
    spec = importlib.util.spec_from_file_location("mini_resnet_model", model_py)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    reference = build_module(case / "net.prototxt")
    load_caffemodel(reference, case / "weights.caffemodel")
    x = torch.tensor(np.load(case / "inputs.npz")["data"])
    for ext in ("pt", "safetensors"):
        out = tmp_path / f"w.{ext}"
        assert main(["convert-weights", str(case / "weights.caffemodel"), "--net", str(case / "net.prototxt"),
                     "-o", str(out)]) == 0
        if ext == "pt":
            state = torch.load(out, weights_only=True)
        else:
            from netc.weights import read_safetensors
            state = {k: torch.from_numpy(v.copy()) for k, v in read_safetensors(out).items()}
        model = mod.MiniResnet()
        model.load_state_dict(state)  # strict: every key, every shape
        torch.testing.assert_close(model(data=x)["prob"], reference(data=x)["prob"], rtol=0, atol=0)
        np.testing.assert_allclose(model(data=x)["prob"].detach().numpy(), np.load(case / "forward.npz")["prob"],
                                   rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------------------------------------
# Fillers, applied by the module when no weights are loaded

def _filler_net(tmp_path, filler: str, shape=(200, 300)) -> Path:
    path = tmp_path / "f.prototxt"
    path.write_text(
        'layer { name: "d" type: "Input" top: "x" input_param { shape { dim: 1 dim: %d } } }\n'
        'layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y"\n'
        '  inner_product_param { num_output: %d weight_filler { %s } bias_filler { type: "constant" value: 0.5 } } }\n'
        % (shape[1], shape[0], filler))
    return path


@pytest.mark.parametrize("filler,check", [
    ('type: "constant" value: 0.25', lambda w: (w == 0.25).all()),
    ('type: "uniform" min: -0.3 max: 0.1', lambda w: w.min() >= -0.3 and w.max() <= 0.1
     and abs(w.mean() + 0.1) < 0.005 and abs(w.std() - 0.4 / 12 ** 0.5) < 0.003),
    ('type: "gaussian" mean: 1 std: 0.2', lambda w: abs(w.mean() - 1) < 0.003 and abs(w.std() - 0.2) < 0.003),
    # xavier: U(±sqrt(3 / fan_in)), fan_in 300 -> bound 0.1, std 0.1 / sqrt(3)
    ('type: "xavier"', lambda w: w.abs().max() <= 0.1 and w.abs().max() > 0.099
     and abs(w.std() - 0.1 / 3 ** 0.5) < 0.001),
    ('type: "xavier" variance_norm: AVERAGE', lambda w: w.abs().max() <= (3 / 250) ** 0.5),
    # msra: N(0, sqrt(2 / fan_out)), fan_out 200 -> std 0.1
    ('type: "msra" variance_norm: FAN_OUT', lambda w: abs(w.std() - 0.1) < 0.001 and abs(w.mean()) < 0.001),
    # sparse: each value kept with probability 20/200
    ('type: "gaussian" std: 1 sparse: 20', lambda w: abs((w != 0).float().mean() - 0.1) < 0.005),
    ('type: "positive_unitball"', lambda w: (w >= 0).all() and torch.allclose(w.sum(1), torch.ones(200))),
])
def test_module_fillers_statistics(tmp_path, filler, check):
    module = build_module(_filler_net(tmp_path, filler), seed=3)
    w = module.ip.weight.detach()
    assert w.shape == (200, 300)
    assert check(w), (filler, float(w.mean()), float(w.std()), float(w.min()), float(w.max()))
    assert (module.ip.bias == 0.5).all()
    again = build_module(_filler_net(tmp_path, filler), seed=3)
    assert torch.equal(again.ip.weight, module.ip.weight)  # seeded


@needs_golden
def test_bilinear_filler_is_caffes_bit_for_bit():
    case = LAYER_CASES / "deconv_bilinear_fcn"
    net = netc.parse_prototxt(case / "net.prototxt")
    assert any(l.convolution_param.weight_filler.type == "bilinear" for l in net.layer)
    module = build_module(case / "net.prototxt")
    caffe = np.load(case / "params.npz")
    layer = next(l for l in net.layer if l.type == "Deconvolution")
    key = type(module).CAFFE_LAYERS[layer.name][1][0][0]
    assert np.array_equal(module.state_dict()[key].numpy(), caffe[f"{layer.name}.0"])


@pytest.mark.parametrize("phase", ["TRAIN", "TEST"])
def test_batch_norm_and_scale_in_place_run_as_one_kernel(tmp_path, phase):
    path = tmp_path / "bns.prototxt"
    path.write_text(
        'layer { name: "d" type: "Input" top: "x" input_param { shape { dim: 3 dim: 4 dim: 5 dim: 6 } } }\n'
        'layer { name: "conv" type: "Convolution" bottom: "x" top: "c"\n'
        '  convolution_param { num_output: 4 kernel_size: 1 weight_filler { type: "xavier" } } }\n'
        'layer { name: "bn" type: "BatchNorm" bottom: "c" top: "c" batch_norm_param { moving_average_fraction: 0.9 } }\n'
        'layer { name: "sc" type: "Scale" bottom: "c" top: "c" scale_param { bias_term: true } }\n'
        'layer { name: "relu" type: "ReLU" bottom: "c" top: "c" }\n')
    source = emit_torch(analyze(netc.load_net(path, phase)))
    assert "c = self.bn(c, affine=self.sc)" in source and "# sc (Scale): applied by self.bn" in source
    module = build_module(path, phase, seed=1)
    with torch.no_grad():
        module.sc.weight.uniform_(0.5, 1.5)
        module.sc.bias.uniform_(-1, 1)
        module.bn.mean.uniform_(-1, 1)
        module.bn.variance.uniform_(1, 2)
        module.bn.scale_factor.fill_(2.0)
    state = {k: v.clone() for k, v in module.state_dict().items()}
    x = torch.randn(3, 4, 5, 6)
    y = module(x=x)["c"]
    y.backward(torch.ones_like(y))
    # The same layers one by one with the runtime's functions, on copies of the blobs.
    from netc import runtime as rt
    gamma = state["sc.weight"].clone().requires_grad_()
    conv = torch.nn.functional.conv2d(x, state["conv.weight"], state["conv.bias"])
    if phase == "TRAIN":
        z, mean, var, factor = rt.batch_norm_train(conv, state["bn.mean"], state["bn.variance"],
                                                   state["bn.scale_factor"], moving_average_fraction=0.9)
        torch.testing.assert_close(module.bn.mean, mean)
        torch.testing.assert_close(module.bn.variance, var)
        torch.testing.assert_close(module.bn.scale_factor, factor)
    else:
        z = rt.batch_norm_global(conv, state["bn.mean"], state["bn.variance"], state["bn.scale_factor"])
    ref = torch.relu(rt.scale(z, gamma, state["sc.bias"]))
    ref.backward(torch.ones_like(ref))
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(module.sc.weight.grad, gamma.grad, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------------------------------------
# Golden generated files: a change to the emitter shows up as a diff of real models (NETC_ACCEPT=1 accepts)

MODEL_GOLDENS = [  # (net, phase, inputs): one of each thing the emitter does differently
    ("lenet/train_val.prototxt", "TRAIN", {"data": (64, 1, 28, 28)}),       # data layers as inputs, a loss
    ("alexnet/deploy.prototxt", "TEST", {}),                                # groups, LRN, in place, dropout
    ("googlenet/train_val.prototxt", "TRAIN", {}),                          # auxiliary losses weighted 0.3
    ("resnet50_v1.5/deploy.prototxt", "TEST", {}),                          # BatchNorm + Scale as one call
    ("minigooglenet/deploy.prototxt", "TEST", {}),                          # FLOOR pooling
    ("se_resnet50/deploy.prototxt", "TEST", {}),                            # two-bottom Scale
]


@pytest.mark.parametrize("net,phase,inputs", MODEL_GOLDENS, ids=[f"{n}:{p}" for n, p, _ in MODEL_GOLDENS])
def test_generated_model_golden(net, phase, inputs):
    import difflib
    import os
    path = Path("nets") / net
    golden = ROOT / "tests" / "golden" / Path(net).parent / f"{Path(net).stem}.{phase}.model.py"
    old = os.getcwd()
    os.chdir(ROOT)  # the header names the net as given, relative to the repository
    try:
        source = emit_torch(analyze(netc.load_net(path, phase), inputs or None), source_name=str(path))
    finally:
        os.chdir(old)
    if os.environ.get("NETC_ACCEPT") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(source, encoding="utf-8")
        return
    assert golden.is_file(), f"no golden {golden}: run NETC_ACCEPT=1 pytest tests/test_emit.py"
    expected = golden.read_text(encoding="utf-8")
    if source != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), source.splitlines(True), str(golden),
                                            "emit_torch output"))
        pytest.fail(f"the generated model differs from {golden} (NETC_ACCEPT=1 accepts it):\n{diff}")


# ----------------------------------------------------------------------------------------------------------
# Review findings, pinned

def _net(tmp_path, text: str, name: str = "t.prototxt") -> Path:
    path = tmp_path / name
    path.write_text('layer { name: "data" type: "Input" top: "x" input_param { shape { dim: 2 dim: 4 } } }\n'
                    + text)
    return path


def test_repeated_and_empty_layer_names_get_their_own_modules(tmp_path):
    path = _net(tmp_path, 'layer { name: "fc" type: "InnerProduct" bottom: "x" top: "a" '
                          'inner_product_param { num_output: 5 } }\n'
                          'layer { name: "fc" type: "InnerProduct" bottom: "a" top: "b" '
                          'inner_product_param { num_output: 3 } }\n'
                          'layer { type: "InnerProduct" bottom: "b" top: "c" inner_product_param { num_output: 2 } }\n'
                          'layer { type: "InnerProduct" bottom: "c" top: "d" inner_product_param { num_output: 6 } }\n')
    module = build_module(path)
    assert module(x=torch.randn(2, 4))["d"].shape == (2, 6)
    assert (module.fc.weight.shape, module.fc_2.weight.shape) == ((5, 4), (3, 5))
    # Caffe copies a model's blobs into the last layer of a name: the table lists that one.
    assert type(module).CAFFE_LAYERS["fc"][1][0] == ("fc_2.weight", (3, 5))


def test_two_unnamed_loss_tops_are_both_returned(tmp_path):
    path = _net(tmp_path, 'layer { name: "l" type: "Input" top: "l" input_param { shape { dim: 2 } } }\n'
                          'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "x" bottom: "l" }\n'
                          'layer { name: "loss" type: "EuclideanLoss" bottom: "x" bottom: "x" loss_weight: 2 }\n')
    out = build_module(path, "TRAIN")(x=torch.randn(2, 4), l=torch.zeros(2))
    assert list(out) == ["(automatic) of loss", "(automatic) of loss #2"]


def test_a_slice_with_one_top_is_its_bottom(tmp_path):
    path = _net(tmp_path, 'layer { name: "s" type: "Slice" bottom: "x" top: "y" }\n'
                          'layer { name: "p" type: "Power" bottom: "y" top: "z" power_param { scale: 2 } }\n')
    x = torch.randn(2, 4)
    torch.testing.assert_close(build_module(path)(x=x)["z"], 2 * x)


def test_class_names_do_not_hide_the_files_own_names(tmp_path):
    for name, cls in (("f", "FNet"), ("tensor", "TensorNet"), ("nn", "Nn")):
        path = tmp_path / f"{name}.prototxt"
        path.write_text(f'name: "{name}"\n' + _net(tmp_path, 'layer { name: "r" type: "ReLU" bottom: "x" top: "y" }'
                                                    ).read_text())
        module = build_module(path)
        assert type(module).__name__ == cls and module(x=torch.randn(2, 4))["y"].shape == (2, 4)
    with pytest.raises(EmitError):
        build_module(path, class_name="F")


def test_permissive_sharing_of_another_shape_is_a_located_error(tmp_path):
    path = _net(tmp_path, 'layer { name: "f1" type: "InnerProduct" bottom: "x" top: "a" '
                          'param { name: "w" share_mode: PERMISSIVE } inner_product_param { num_output: 6 bias_term: false } }\n'
                          'layer { name: "f2" type: "InnerProduct" bottom: "a" top: "b" '
                          'param { name: "w" share_mode: PERMISSIVE } inner_product_param { num_output: 4 bias_term: false } }\n')
    with pytest.raises(EmitError) as err:
        build_module(path)
    assert "layer \"f2\" (InnerProduct): shares param 'w' with layer 'f1' in another shape ((4, 6) here, (6, 4) " \
           "there)" in err.value.render()


def test_an_input_named_self_is_a_located_error(tmp_path):
    path = tmp_path / "s.prototxt"
    path.write_text('layer { name: "in" type: "Input" top: "self" input_param { shape { dim: 2 } } }\n')
    with pytest.raises(EmitError) as err:
        build_module(path)
    assert 'an input blob named "self" cannot be passed to a PyTorch module by name' in err.value.render()


def test_global_max_pooling_with_its_mask_follows_the_input_size(tmp_path):
    path = tmp_path / "g.prototxt"
    path.write_text('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 dim: 5 dim: 7 } } }\n'
                    'layer { name: "p" type: "Pooling" bottom: "x" top: "m" top: "i" '
                    'pooling_param { pool: MAX global_pooling: true } }\n')
    out = build_module(path)(x=torch.randn(2, 3, 6, 9))
    assert out["m"].shape == out["i"].shape == (2, 3, 1, 1)


def test_a_deploy_net_loads_a_model_without_its_input_and_softmax(tmp_path):
    net = ROOT / "nets" / "lenet" / "deploy.prototxt"
    module = build_module(net, seed=0)
    trained = [(name, type_, [np.full(shape, 0.5, np.float32) for _, shape in specs])
               for name, (type_, specs) in type(module).CAFFE_LAYERS.items() if specs]
    from netc.caffemodel import write_caffemodel
    write_caffemodel(tmp_path / "w.caffemodel", trained)
    assert load_caffemodel(module, tmp_path / "w.caffemodel") == []
    assert (module.ip2.weight == 0.5).all()
    out = tmp_path / "w.pt"
    assert main(["convert-weights", str(tmp_path / "w.caffemodel"), "--net", str(net), "-o", str(out)]) == 0


def test_memory_benchmark_smoke(capsys):
    """tools/bench_memory.py needs CUDA to measure; its smoke mode prints the estimates (a GPU session runs it)."""
    spec = importlib.util.spec_from_file_location("bench_memory", ROOT / "tools" / "bench_memory.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--smoke", "--models", "lenet,missing"]) == 0
    out = capsys.readouterr().out
    assert "| lenet | 2 |" in out and "unmeasured" in out and "missing/deploy.prototxt not found" in out
