"""tools/bench_train_gpu.py: the CPU smoke run works end to end, without CUDA and without torchvision."""
from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "bench_train_gpu.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_train_gpu", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look the defining module up here
    spec.loader.exec_module(mod)
    return mod


bench = _bench()


def table_rows(stdout: str) -> list[dict]:
    """The Markdown table's body as dicts keyed by its header."""
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(head, (c.strip() for c in line.strip("|").split("|")))) for line in lines[2:]]


def test_smoke_run(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--json", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "netc training speed:" in proc.stdout and "torch " in proc.stdout
    rows = table_rows(proc.stdout)
    data = json.loads(out.read_text())
    assert len(data["rows"]) == len(rows)
    for key in bench.SMOKE_MODELS:
        spec = bench.MODELS[key]
        mine = [r for r in rows if r["model"] == key]
        assert {r["mode"] for r in mine} == {"eager"}  # --smoke: eager only
        generated = [r for r in mine if r["side"].startswith("generated")]
        reference = [r for r in mine if r["side"].startswith("reference")]
        assert len(generated) == 1 and len(reference) == 1
        if (ROOT / spec.prototxt).exists():
            assert float(generated[0]["img/s"].replace(",", "")) > 0, generated[0]
            assert generated[0]["target"] == f">= {spec.target:.2f}x"
        else:
            assert "not found" in generated[0]["note"]
        # The reference either ran or says why not (torchvision is absent on the CI machine).
        if reference[0]["img/s"] == "-":
            assert reference[0]["note"].startswith("torchvision not importable"), reference[0]
        else:
            assert float(reference[0]["img/s"].replace(",", "")) > 0
            if generated[0]["img/s"] != "-":
                assert generated[0]["generated/reference"].endswith("x")
                assert generated[0]["met?"] in ("yes", "no")
    for r in data["rows"]:
        if r["img_s"] is not None:
            assert len(r["step_ms"]) == data["steps"] == 2 and all(t > 0 for t in r["step_ms"])


def _args(**kw) -> argparse.Namespace:
    base = dict(smoke=True, no_compile=True, batch=None, steps=1, warmup=0)
    base.update(kw)
    return argparse.Namespace(**base)


def test_missing_prototxt_is_skipped_and_the_reference_still_runs():
    tiny = lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 1000))  # noqa: E731
    spec = bench.Model("missing", "Missing", "nets/no_such_net/deploy.prototxt", 2, "tiny", tiny, 1.0)
    rows = bench.bench_model(spec, _args(), torch.device("cpu"))
    gen, ref = rows
    assert gen.side == "generated" and gen.img_s is None and gen.error is None
    assert gen.note == "nets/no_such_net/deploy.prototxt not found: skipped"
    assert ref.side == "reference" and ref.img_s > 0 and gen.ratio is None


def test_unavailable_reference_is_a_note_not_a_failure():
    def absent():
        raise bench.Unavailable("torchvision not importable (ModuleNotFoundError)")
    spec = bench.Model("missing", "Missing", "nets/no_such_net/deploy.prototxt", 2, "absent", absent, 1.0)
    _, ref = bench.bench_model(spec, _args(), torch.device("cpu"))
    assert ref.error is None and ref.note == "torchvision not importable (ModuleNotFoundError)"


@pytest.mark.parametrize("key", list(bench.MODELS))
def test_training_net_turns_deploy_into_a_loss(key):
    spec = bench.MODELS[key]
    path = ROOT / spec.prototxt
    if not path.exists():
        pytest.skip(f"{spec.prototxt} not generated yet")
    param, data, chw, note = bench.training_net(path, 7)
    assert [layer.type for layer in param.layer].count("Softmax") == 0
    loss = [layer for layer in param.layer if layer.type == "SoftmaxWithLoss"]
    assert len(loss) == 1 and list(loss[0].top) == ["loss"] and loss[0].bottom[1] == "label"
    inputs = {layer.top[0]: list(layer.input_param.shape[0].dim) for layer in param.layer if layer.type == "Input"}
    assert inputs == {data: [7, *chw], "label": [7]}
    if path.with_name("train_val.prototxt").exists():
        convs = [layer for layer in param.layer if layer.type == "Convolution"]
        assert convs and all(layer.convolution_param.HasField("weight_filler") for layer in convs), note
