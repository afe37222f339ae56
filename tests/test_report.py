"""`netc report`: formats, JSON schema, module summary, and robustness over the whole corpus."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

import netc
from netc import caffe_pb2
from netc.cli import main
from netc.graph import net_states

from golden import SHARED, needs_golden

ROOT = Path(__file__).resolve().parents[1]
LENET = ROOT / "nets" / "lenet" / "deploy.prototxt"
CORPUS = SHARED / "corpus"


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_json_schema_and_totals(capsys):
    rc, out, err = run(capsys, "report", str(LENET), "--format", "json", "--batch", "1")
    assert rc == 0, err
    doc = json.loads(out)
    assert set(doc) == {"net", "phase", "batch", "layers", "totals"}
    assert (doc["phase"], doc["batch"]) == ("TEST", 1)
    keys = {"name", "type", "bottoms", "tops", "top_shapes", "param_shapes", "params", "state", "macs",
            "other_ops", "activations", "rf"}
    for layer in doc["layers"]:
        assert set(layer) == keys
    conv1 = next(l for l in doc["layers"] if l["name"] == "conv1")
    assert conv1["top_shapes"] == {"conv1": [1, 20, 24, 24]}
    assert conv1["param_shapes"] == [[20, 1, 5, 5], [20]]
    assert conv1["rf"]["conv1"] == {"size": [5, 5], "jump": [1, 1], "start": [2.0, 2.0]}
    t = doc["totals"]
    assert t["params"] == 431_080  # LeNet: 520 + 25,050 + 400,500 + 5,010
    # conv1 5*5*20*24*24 + conv2 5*5*20*50*8*8 + ip1 800*500 + ip2 500*10
    assert t["macs"] == 288_000 + 1_600_000 + 400_000 + 5_000
    assert set(t["memory_bytes"]) == {"params", "inference", "training"}
    assert t["memory_bytes"]["params"] == 431_080 * 4


def test_table_md_csv_and_flops(capsys):
    rc, table, _ = run(capsys, "report", str(LENET))
    assert rc == 0
    assert table.splitlines()[0] == "LeNet (TEST)"
    assert "TOTAL" in table and "Learnable params: 431,080" in table
    rc, md, _ = run(capsys, "report", str(LENET), "--format", "md")
    assert "| layer | type | top shape | params | MACs | activations | RF size/jump |" in md
    rc, text, _ = run(capsys, "report", str(LENET), "--format", "csv", "--batch", "1")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[-1]["name"] == "TOTAL" and int(rows[-1]["params"]) == 431_080
    rc, flops, _ = run(capsys, "report", str(LENET), "--flops", "--batch", "1")
    assert f"Total FLOPs: {2 * 2_293_000:,}" in flops


def test_output_file(capsys, tmp_path):
    out = tmp_path / "r.json"
    rc, stdout, _ = run(capsys, "report", str(LENET), "--format", "json", "-o", str(out))
    assert rc == 0 and stdout == "" and json.loads(out.read_text())["net"] == "LeNet"


@needs_golden
def test_group_by_prefix_folds_inception_modules(capsys):
    deploy = CORPUS / "bvlc_caffe" / "models" / "bvlc_googlenet" / "deploy.prototxt"
    rc, out, _ = run(capsys, "report", str(deploy), "--group-by-prefix", "--batch", "1")
    assert rc == 0
    names = [l.split()[0] for l in out.splitlines() if l.startswith("inception_")]
    assert names == [f"inception_{m}/*" for m in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")]
    assert "Learnable params: 6,998,552" in out


def test_input_override_and_batch(capsys):
    rc, out, _ = run(capsys, "report", str(LENET), "--input", "data=2x1x32x32", "--format", "json")
    doc = json.loads(out)
    assert doc["layers"][1]["top_shapes"] == {"conv1": [2, 20, 28, 28]}
    rc, _, err = run(capsys, "report", str(LENET), "--input", "data=2xx1")
    assert rc == 2 and "expected BLOB=NxCxHxW" in err


def test_python_api():
    rep = netc.report(str(LENET), batch=1)
    assert rep.to_json()["totals"]["params"] == 431_080
    assert rep.to_table().startswith("LeNet (TEST, batch 1)")


def _corpus_instances():
    if not CORPUS.is_dir():
        return []
    out = []
    for f in sorted(CORPUS.rglob("*.prototxt")):
        if "solver" in f.name:
            continue
        param = netc.frontend.load_net_param(f).param
        for phase, stages in net_states(param):
            name = "TRAIN" if phase == caffe_pb2.TRAIN else "TEST"
            out.append(pytest.param(f, name, stages, id=f"{f.relative_to(CORPUS)}:{name}{''.join('+' + s for s in stages)}"))
    return out


@needs_golden
@pytest.mark.parametrize("path,phase,stages", _corpus_instances())
def test_report_on_every_corpus_net(capsys, path, phase, stages):
    """No traceback anywhere; a net Caffe can only shape from its data gets the located --input hint."""
    argv = ["report", str(path), "--phase", phase] + [a for s in stages for a in ("--stage", s)]
    rc, out, err = run(capsys, *argv)
    assert "Traceback" not in err and "internal error" not in err
    assert rc in (0, 1)
    if rc == 1:
        assert "--input" in err and f"{path}:" in err, err
    else:
        assert "TOTAL" in out


FORK_NET = """
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "norm" type: "Normalize" bottom: "data" top: "norm" }
layer { name: "conv" type: "Convolution" bottom: "norm" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }
"""


def test_fork_layer_needs_a_rule_or_input(capsys, tmp_path):
    p = tmp_path / "fork.prototxt"
    p.write_text(FORK_NET)
    rc, _, err = run(capsys, "report", str(p))
    assert rc == 1
    assert 'unknown layer type "Normalize"' in err and "--input norm=NxCxHxW" in err
    assert "@netc.layers.register" in err
    rc, out, err = run(capsys, "report", str(p), "--input", "norm=1x3x8x8", "--format", "json")
    assert rc == 0 and "kept as an opaque layer" in err
    assert json.loads(out)["layers"][2]["top_shapes"] == {"conv": [1, 4, 6, 6]}


def test_fork_layer_plugin_rule(tmp_path):
    from netc import layers

    @layers.register
    class Normalize(layers.LayerRule):
        type = "Normalize"
        params = ()

        def infer(self, ctx, bottoms):
            return layers.Inferred(tops=[bottoms[0]], blobs=[(bottoms[0][1],)], rf="same")

    try:
        p = tmp_path / "fork.prototxt"
        p.write_text(FORK_NET)
        a = netc.analyze(netc.load_net(p))
        assert a.info("norm").params == 3 and a.info("conv").top_shapes == [(1, 4, 6, 6)]
    finally:
        del layers.REGISTRY["Normalize"]
