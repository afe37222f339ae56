"""The Net IR against the real Caffe: phase/stage filtering, wiring, outputs and loss weights.

golden/shapes holds, for every corpus net (legacy ones upgraded by Caffe's own tool) and every phase
instance, the layers Caffe instantiated.  netc must keep the same layers in the same order.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import netc
from netc import caffe_pb2
from netc.graph import AUTOMATIC, layer_included, net_states, state_meets_rule
from netc.layers import known_types, rule_for

from golden import SHAPES, SHARED, shape_instances, shape_source


@pytest.mark.skipif(not SHAPES.is_dir(), reason=f"golden shapes not found at {SHAPES}")
@pytest.mark.parametrize("path", shape_instances())
def test_layers_per_phase_match_caffe(path: Path):
    golden = json.loads(path.read_text())
    net = netc.load_net(shape_source(golden, path), golden["phase"], golden["stages"])
    # The golden replaced data-set readers by Input layers of the same name (their shapes need the data).
    original = {s["layer"]: s["original_type"] for s in golden["substitutions"]}
    expected = [(l["name"], original.get(l["name"], l["type"]) if l["type"] == "Input" else l["type"])
                for l in golden["layers"]]
    assert [(l.name, l.type) for l in net.layers] == expected
    # Wiring.  The golden describes layers by name, so a name used twice (mnist_autoencoder's two "loss"
    # layers) shows the last one's blobs for both: compare only uniquely named layers.
    names = [l["name"] for l in golden["layers"]]
    for mine, theirs in zip(net.layers, golden["layers"]):
        if names.count(theirs["name"]) == 1:
            assert (mine.bottoms, mine.tops) == (theirs["bottom"], theirs["top"]), mine.name
    assert sorted(net.outputs) == sorted(golden["net_outputs"])
    # Anonymous loss tops are not referable blobs; the goldens list them inconsistently.
    drop_auto = lambda d: {k: v for k, v in d.items() if not k.startswith(AUTOMATIC)}  # noqa: E731
    assert drop_auto(net.losses) == drop_auto(golden["loss_weights"])


@pytest.mark.skipif(not SHAPES.is_dir(), reason=f"golden shapes not found at {SHAPES}")
def test_phase_instances_of_each_file_match_the_goldens():
    """Without --phase, `netc check` checks the (phase, stage) instances Caffe's golden enumerates."""
    index = json.loads((SHAPES / "index.json").read_text())
    entries = index["files"] if isinstance(index, dict) and "files" in index else index
    checked = 0
    by_file: dict[str, set] = {}
    for f in SHAPES.glob("*/**/*.json"):
        rel = f.relative_to(SHAPES)
        if rel.parts[0] in ("variants", "legacy") or f.name == "index.json" or ".net_param." in f.name:
            continue
        g = json.loads(f.read_text())
        by_file.setdefault(g["source_prototxt"], set()).add((g["phase"], tuple(g["stages"])))
    for src, states in by_file.items():
        param = netc.frontend.load_net_param(SHARED / "corpus" / "bvlc_caffe" / src).param
        mine = {("TRAIN" if p == caffe_pb2.TRAIN else "TEST", s) for p, s in net_states(param)}
        # Files without rules are instantiated once, in whichever phase their role implies.
        if len(states) == 1 and len(mine) == 1 and not next(iter(states))[1]:
            continue
        assert mine == states, src
        checked += 1
    assert checked >= 10 and entries


def test_all_61_bvlc_layer_types_are_known():
    # The complete set registered in BVLC Caffe (REGISTER_LAYER_CLASS / REGISTER_LAYER_CREATOR), from the
    # reference's section 1.5.
    bvlc = """AbsVal Accuracy ArgMax BNLL BatchNorm BatchReindex Bias Clip Concat ContrastiveLoss Convolution Crop
    Data Deconvolution Dropout DummyData ELU Eltwise Embed EuclideanLoss Exp Filter Flatten HDF5Data HDF5Output
    HingeLoss Im2col ImageData InfogainLoss InnerProduct Input LRN LSTM LSTMUnit Log MVN MemoryData
    MultinomialLogisticLoss PReLU Parameter Pooling Power Python RNN ReLU Reduction Reshape SPP Scale Sigmoid
    SigmoidCrossEntropyLoss Silence Slice Softmax SoftmaxWithLoss Split Swish TanH Threshold Tile WindowData""".split()
    assert len(bvlc) == 61
    assert sorted(known_types()) == sorted(bvlc)


def test_every_rule_names_real_param_fields():
    fields = caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name
    for t in known_types():
        for p in rule_for(t).params:
            assert p in fields, (t, p)


def _rule(**kw) -> caffe_pb2.NetStateRule:
    r = caffe_pb2.NetStateRule()
    for k, v in kw.items():
        if isinstance(v, list):
            getattr(r, k).extend(v)
        else:
            setattr(r, k, v)
    return r


def test_state_meets_rule_each_constraint():
    T, E = caffe_pb2.TRAIN, caffe_pb2.TEST
    assert state_meets_rule(_rule(), T, 0, ())
    assert not state_meets_rule(_rule(phase=E), T, 0, ())
    assert state_meets_rule(_rule(min_level=2), T, 2, ()) and not state_meets_rule(_rule(min_level=2), T, 1, ())
    assert state_meets_rule(_rule(max_level=2), T, 2, ()) and not state_meets_rule(_rule(max_level=2), T, 3, ())
    assert state_meets_rule(_rule(stage=["a", "b"]), T, 0, ("a", "b", "c"))
    assert not state_meets_rule(_rule(stage=["a", "b"]), T, 0, ("a",))  # every stage must be present
    assert not state_meets_rule(_rule(not_stage=["x"]), T, 0, ("x",))
    assert state_meets_rule(_rule(not_stage=["x"]), T, 0, ("y",))


def test_include_any_rule_exclude_any_rule():
    T, E = caffe_pb2.TRAIN, caffe_pb2.TEST
    layer = caffe_pb2.LayerParameter()
    assert layer_included(layer, T, 0, ())  # no rules: always
    layer.include.add().phase = E
    layer.include.add().stage.append("s")
    assert layer_included(layer, E, 0, ()) and layer_included(layer, T, 0, ("s",))
    assert not layer_included(layer, T, 0, ())
    excl = caffe_pb2.LayerParameter()
    excl.exclude.add().phase = T
    assert not layer_included(excl, T, 0, ()) and layer_included(excl, E, 0, ())


def test_loss_defaults_automatic_top_and_outputs(tmp_path):
    net = netc.load_net(_write(tmp_path, """
        layer { name: "in" type: "Input" top: "x" top: "y" input_param { shape { dim: 2 dim: 5 } shape { dim: 2 } } }
        layer { name: "ip" type: "InnerProduct" bottom: "x" top: "ip" inner_product_param { num_output: 3 } }
        layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "y" }
        layer { name: "acc" type: "Accuracy" bottom: "ip" bottom: "y" top: "acc" }
        layer { name: "w" type: "EuclideanLoss" bottom: "ip" bottom: "ip" top: "e" loss_weight: 0.5 }
    """))
    loss = net.layer("loss")
    assert loss.tops == [AUTOMATIC] and loss.loss_weights == [1.0]
    assert net.layer("acc").loss_weights == [0.0]
    assert net.losses == {f"{AUTOMATIC} of loss": 1.0, "e": 0.5}
    assert net.outputs == ["acc", "e"] and net.inputs == ["x", "y"]
    assert net.blobs["ip"].consumers == [2, 3, 4, 4]


def test_in_place_chain_before_fan_out_is_fine(tmp_path):
    net = netc.load_net(_write(tmp_path, """
        layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 5 } } }
        layer { name: "fc" type: "InnerProduct" bottom: "x" top: "fc" inner_product_param { num_output: 3 } }
        layer { name: "relu" type: "ReLU" bottom: "fc" top: "fc" }
        layer { name: "drop" type: "Dropout" bottom: "fc" top: "fc" }
        layer { name: "a" type: "Sigmoid" bottom: "fc" top: "a" }
        layer { name: "b" type: "TanH" bottom: "fc" top: "b" }
    """))
    assert net.blobs["fc"].producers == [1, 2, 3]
    assert net.layer("relu").in_place == [True]
    assert sorted(net.outputs) == ["a", "b"]


def test_filtering_happens_before_the_graph(tmp_path):
    # A train_val net defines "data" twice, once per phase: neither phase sees two producers.
    path = _write(tmp_path, """
        layer { name: "d" type: "Input" top: "data" include { phase: TRAIN } input_param { shape { dim: 4 } } }
        layer { name: "d" type: "Input" top: "data" include { phase: TEST } input_param { shape { dim: 2 } } }
        layer { name: "r" type: "ReLU" bottom: "data" top: "r" }
        layer { name: "t" type: "TanH" bottom: "r" top: "t" include { stage: "deep" } }
        layer { name: "lvl" type: "TanH" bottom: "r" top: "l" include { min_level: 1 } }
    """)
    for phase in ("TRAIN", "TEST"):
        assert [l.name for l in netc.load_net(path, phase).layers] == ["d", "r"]
    assert [l.name for l in netc.load_net(path, "TEST", stages=["deep"]).layers] == ["d", "r", "t"]
    assert [l.name for l in netc.load_net(path, "TEST", level=1).layers] == ["d", "r", "lvl"]


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "net.prototxt"
    p.write_text(text)
    return p


def test_net_states_keep_the_plain_state_when_stages_exclude(tmp_path):
    """A stage used in exclude rules leaves the stage-less state meaningful: it is checked too."""
    param = netc.frontend.load_net_param(_write(tmp_path, """
        layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 } } }
        layer { name: "a" type: "ReLU" bottom: "x" top: "a" include { phase: TRAIN stage: "deploy" } }
        layer { name: "b" type: "ReLU" bottom: "x" top: "b" exclude { stage: "deploy" } }
    """)).param
    T, E = caffe_pb2.TRAIN, caffe_pb2.TEST
    assert net_states(param) == [(T, ()), (T, ("deploy",)), (E, ())]
