"""The analysis against the real Caffe and against published numbers.

Every top shape, every blob shape and the total parameter count of every corpus net in every phase equal
what Caffe instantiated (golden/shapes).  Where Caffe read a data set, the golden replaced the data layer by
an Input of the same shapes; netc gets those shapes the way a user gives them, with --input.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import netc
from netc import caffe_pb2
from netc.analysis import analyze
from netc.layers import known_types, rule_for

from golden import given_shapes, needs_golden, shape_instances, shape_source

ROOT = Path(__file__).resolve().parents[1]


@needs_golden
@pytest.mark.parametrize("path", shape_instances())
def test_shapes_and_params_match_caffe(path: Path):
    golden = json.loads(path.read_text())
    net = netc.load_net(shape_source(golden, path), golden["phase"], golden["stages"])
    a = analyze(net, given_shapes(golden))
    names = [l["name"] for l in golden["layers"]]
    assert [i.layer.name for i in a.layers] == names
    for info, g in zip(a.layers, golden["layers"]):
        if names.count(g["name"]) > 1:
            continue  # the golden describes layers by name: a repeated name shows the last one's data
        assert [list(s) for s in info.top_shapes] == g["top_shapes"], g["name"]
        assert [list(b) for b in info.blob_shapes] == [p["shape"] for p in g.get("params", [])], g["name"]
    # Caffe's total counts every unique blob, BatchNorm statistics included.
    assert a.params + a.state == golden["total_params"]


def test_every_layer_param_field_is_read_by_a_rule_or_declined():
    """Walk LayerParameter: each *_param field is read by some registered rule, or declined here with a reason."""
    declined = {
        "transform_param": "read by the data layers' rules (crop size)",
        "loss_param": "normalization only changes values, never shapes",
    }
    read = {p for t in known_types() for p in rule_for(t).params}
    for fd in caffe_pb2.LayerParameter.DESCRIPTOR.fields:
        if fd.name.endswith("_param"):
            assert fd.name in read or fd.name in declined, f"{fd.name} is neither read by a rule nor declined"


def test_every_registered_type_has_a_rule_or_a_reasoned_refusal():
    base = netc.layers.LayerRule.infer
    for t in known_types():
        rule = rule_for(t)
        assert type(rule).infer is not base or rule.refusal, f"{t} has no shape rule"
