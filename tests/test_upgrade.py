"""netc.upgrade against real Caffe: the golden upgrades of the legacy corpus, hand-written expectations for
two corpus files, and small V0/V1/current/solver snippets for the edge cases and errors."""
from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

import pytest
from google.protobuf import text_format

from netc import caffe_pb2
from netc.errors import UpgradeError
from netc.upgrade import (
    NET_UPGRADES,
    SOLVER_TYPE_NAMES,
    SOLVER_UPGRADES,
    V0_TYPES,
    V1_TYPE_NAMES,
    RecordingContext,
    _V0_DROPPED_FIELDS,
    _V0_PLAIN_FIELDS,
    _V0_TRANSFORM_FIELDS,
    _V0_TYPED_FIELDS,
    _V1_MAPPED_FIELDS,
    upgrade_net,
    upgrade_solver,
)

SHARED = Path(os.environ.get("NETC_SHARED", Path(__file__).resolve().parents[2] / "shared"))
GOLDEN = SHARED / "golden" / "upgrade"
CORPUS_ROOT = SHARED  # index.json's "source" paths are relative to shared/
INDEX = GOLDEN / "index.json"
LEGACY = SHARED / "corpus" / "bvlc_caffe_legacy"

# The wording of the golden index's steps_reported (taken from Caffe's log lines) -> netc's step names.
GOLDEN_STEP_NAMES = {
    "V0LayerParameter -> V1LayerParameter": "V0LayerParameter",
    "data transformation fields -> transform_param": "data transformation",
    "V1LayerParameter (layers) -> LayerParameter (layer)": "V1LayerParameter",
    "input/input_dim/input_shape -> Input layer": "input fields",
    "solver_type (enum) -> type (string)": "solver_type",
}

needs_golden = pytest.mark.skipif(not INDEX.is_file(), reason=f"no golden upgrades at {GOLDEN}")


def _golden_files() -> list:
    if not INDEX.is_file():
        return []
    files = json.loads(INDEX.read_text())["files"]
    return [pytest.param(f, id=f"{f['format']}/{f['commit_short']}/{Path(f['source']).name}") for f in files]


def _parse(cls, path: Path):
    msg = cls()
    text_format.Parse(path.read_text(), msg)
    return msg


def _net(text: str) -> caffe_pb2.NetParameter:
    return text_format.Parse(text, caffe_pb2.NetParameter())


def _upgraded(text: str) -> tuple[caffe_pb2.NetParameter, RecordingContext, list[int | None]]:
    net = _net(text)
    ctx = RecordingContext()
    origins = upgrade_net(net, ctx)
    return net, ctx, origins


def _diff(got, want) -> str:
    """A unified diff of the two messages, layer by layer for nets, for a readable failure."""
    def blocks(msg) -> list[str]:
        if isinstance(msg, caffe_pb2.NetParameter):
            head = caffe_pb2.NetParameter()
            head.CopyFrom(msg)
            head.ClearField("layer")
            out = [text_format.MessageToString(head)]
            out += [f"layer[{i}] {{\n{text_format.MessageToString(l)}}}\n" for i, l in enumerate(msg.layer)]
            return out
        return [text_format.MessageToString(msg)]

    got_lines = "".join(blocks(got)).splitlines(keepends=True)
    want_lines = "".join(blocks(want)).splitlines(keepends=True)
    return "".join(difflib.unified_diff(want_lines, got_lines, "caffe (golden)", "netc"))


# ---------------------------------------------------------------------------------------------------------
# (1) Every file of the golden index: same message as Caffe's upgrade, same steps reported.


@needs_golden
@pytest.mark.parametrize("entry", _golden_files())
def test_matches_caffe_upgrade(entry):
    cls = caffe_pb2.SolverParameter if entry["format"] == "solver" else caffe_pb2.NetParameter
    got = _parse(cls, CORPUS_ROOT / entry["source"])
    want = _parse(cls, GOLDEN.parent / entry["upgraded"])
    ctx = RecordingContext()
    if cls is caffe_pb2.SolverParameter:
        upgrade_solver(got, ctx)
    else:
        upgrade_net(got, ctx)

    assert ctx.errors == []
    if got != want:
        pytest.fail("upgrade differs from Caffe's:\n" + _diff(got, want), pytrace=False)
    expected_steps = [GOLDEN_STEP_NAMES[s] for s in entry["steps_reported"]]
    assert [step for step, _, _ in ctx.warnings] == expected_steps


@needs_golden
def test_golden_index_covers_the_corpus():
    files = json.loads(INDEX.read_text())["files"]
    assert len(files) == 38
    assert {f["format"] for f in files} == {"v0", "v1", "solver"}


# ---------------------------------------------------------------------------------------------------------
# (2) Expectations written by hand from reading two corpus files.


def _get(msg, path: str):
    for part in path.split("."):
        msg = getattr(msg, part)
    return list(msg) if hasattr(msg, "__len__") and not isinstance(msg, str) else msg


def _params(layer) -> list[tuple[float | None, float | None]]:
    """(lr_mult, decay_mult) per ParamSpec, None where the field is absent."""
    return [(p.lr_mult if p.HasField("lr_mult") else None, p.decay_mult if p.HasField("decay_mult") else None)
            for p in layer.param]


def _check_layers(net, expected) -> None:
    assert [l.name for l in net.layer] == [e[0] for e in expected]
    for layer, (name, type_, bottoms, tops, checks) in zip(net.layer, expected):
        assert (layer.type, list(layer.bottom), list(layer.top)) == (type_, bottoms, tops), name
        for path, value in checks.items():
            got = _params(layer) if path == "param" else _get(layer, path)
            if isinstance(value, float):
                assert got == pytest.approx(value, rel=1e-6), f"{name}: {path}"
            else:
                assert got == value, f"{name}: {path}"


W12 = {"param": [(1.0, None), (2.0, None)]}  # blobs_lr 1, 2 and no weight_decay
W12_D10 = {"param": [(1.0, 1.0), (2.0, 0.0)]}  # blobs_lr 1, 2 and weight_decay 1, 0


@pytest.mark.skipif(not LEGACY.is_dir(), reason="no legacy corpus")
def test_v1_lenet_train_test_by_hand():
    net = _parse(caffe_pb2.NetParameter, LEGACY / "v1/7e465f288/examples/mnist/lenet_train_test.prototxt")
    ctx = RecordingContext()
    origins = upgrade_net(net, ctx)
    assert ctx.errors == [] and ctx.steps == ["V1LayerParameter"]
    assert ctx.warnings[0][1] == 'converted 11 V1 "layers" to the current "layer" format'
    assert origins == list(range(11))
    assert net.name == "LeNet" and len(net.layers) == 0
    train, test = caffe_pb2.TRAIN, caffe_pb2.TEST
    data = {"transform_param.scale": 0.00390625, "data_param.backend": caffe_pb2.DataParameter.LMDB}
    _check_layers(net, [
        ("mnist", "Data", [], ["data", "label"],
         {**data, "data_param.source": "examples/mnist/mnist_train_lmdb", "data_param.batch_size": 64,
          "include": [caffe_pb2.NetStateRule(phase=train)]}),
        ("mnist", "Data", [], ["data", "label"],
         {**data, "data_param.source": "examples/mnist/mnist_test_lmdb", "data_param.batch_size": 100,
          "include": [caffe_pb2.NetStateRule(phase=test)]}),
        ("conv1", "Convolution", ["data"], ["conv1"],
         {**W12, "convolution_param.num_output": 20, "convolution_param.kernel_size": [5],
          "convolution_param.stride": [1], "convolution_param.pad": [],
          "convolution_param.weight_filler.type": "xavier", "convolution_param.bias_filler.type": "constant"}),
        ("pool1", "Pooling", ["conv1"], ["pool1"],
         {"pooling_param.pool": caffe_pb2.PoolingParameter.MAX, "pooling_param.kernel_size": 2,
          "pooling_param.stride": 2}),
        ("conv2", "Convolution", ["pool1"], ["conv2"],
         {**W12, "convolution_param.num_output": 50, "convolution_param.kernel_size": [5]}),
        ("pool2", "Pooling", ["conv2"], ["pool2"], {"pooling_param.kernel_size": 2, "pooling_param.stride": 2}),
        ("ip1", "InnerProduct", ["pool2"], ["ip1"], {**W12, "inner_product_param.num_output": 500}),
        ("relu1", "ReLU", ["ip1"], ["ip1"], {"param": []}),
        ("ip2", "InnerProduct", ["ip1"], ["ip2"], {**W12, "inner_product_param.num_output": 10}),
        ("accuracy", "Accuracy", ["ip2", "label"], ["accuracy"],
         {"include": [caffe_pb2.NetStateRule(phase=test)]}),
        ("loss", "SoftmaxWithLoss", ["ip2", "label"], ["loss"], {"include": [], "loss_weight": []}),
    ])
    for layer in net.layer[:2]:  # the scale was already in transform_param; nothing is left in data_param
        assert not layer.data_param.HasField("scale")


@pytest.mark.skipif(not LEGACY.is_dir(), reason="no legacy corpus")
def test_v0_imagenet_deploy_with_padding_by_hand():
    net = _parse(caffe_pb2.NetParameter, LEGACY / "v0/a9cce8403/examples/imagenet_deploy.prototxt")
    assert len(net.layers) == 27
    ctx = RecordingContext()
    origins = upgrade_net(net, ctx)
    assert ctx.errors == []
    assert ctx.steps == ["V0LayerParameter", "V1LayerParameter", "input fields"]
    assert not net.HasField("name")
    assert (list(net.input), list(net.input_dim), len(net.layers)) == ([], [], 0)
    # 27 layers - 4 padding layers (pad2 at 4, pad3 at 9, pad4 at 12, pad5 at 15) + the Input layer.
    assert origins == [None, 0, 1, 2, 3, 5, 6, 7, 8, 10, 11, 13, 14, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26]
    fc = "inner_product_param"
    lrn = {"lrn_param.local_size": 5, "lrn_param.alpha": 0.0001, "lrn_param.beta": 0.75}
    max_pool = {"pooling_param.pool": caffe_pb2.PoolingParameter.MAX, "pooling_param.kernel_size": 3,
                "pooling_param.stride": 2}
    _check_layers(net, [
        ("input", "Input", [], ["data"], {"input_param.shape": [caffe_pb2.BlobShape(dim=[10, 3, 227, 227])]}),
        ("conv1", "Convolution", ["data"], ["conv1"],
         {**W12_D10, "convolution_param.num_output": 96, "convolution_param.kernel_size": [11],
          "convolution_param.stride": [4], "convolution_param.pad": [],
          "convolution_param.weight_filler.type": "gaussian", "convolution_param.weight_filler.std": 0.01}),
        ("relu1", "ReLU", ["conv1"], ["conv1"], {}),
        ("pool1", "Pooling", ["conv1"], ["pool1"], max_pool),
        ("norm1", "LRN", ["pool1"], ["norm1"], lrn),
        ("conv2", "Convolution", ["norm1"], ["conv2"],
         {**W12_D10, "convolution_param.num_output": 256, "convolution_param.group": 2,
          "convolution_param.kernel_size": [5], "convolution_param.pad": [2],
          "convolution_param.bias_filler.value": 1.0}),
        ("relu2", "ReLU", ["conv2"], ["conv2"], {}),
        ("pool2", "Pooling", ["conv2"], ["pool2"], max_pool),
        ("norm2", "LRN", ["pool2"], ["norm2"], lrn),
        ("conv3", "Convolution", ["norm2"], ["conv3"],
         {**W12_D10, "convolution_param.num_output": 384, "convolution_param.kernel_size": [3],
          "convolution_param.pad": [1], "convolution_param.stride": []}),
        ("relu3", "ReLU", ["conv3"], ["conv3"], {}),
        ("conv4", "Convolution", ["conv3"], ["conv4"],
         {**W12_D10, "convolution_param.num_output": 384, "convolution_param.group": 2,
          "convolution_param.kernel_size": [3], "convolution_param.pad": [1]}),
        ("relu4", "ReLU", ["conv4"], ["conv4"], {}),
        ("conv5", "Convolution", ["conv4"], ["conv5"],
         {**W12_D10, "convolution_param.num_output": 256, "convolution_param.group": 2,
          "convolution_param.kernel_size": [3], "convolution_param.pad": [1]}),
        ("relu5", "ReLU", ["conv5"], ["conv5"], {}),
        ("pool5", "Pooling", ["conv5"], ["pool5"], max_pool),
        ("fc6", "InnerProduct", ["pool5"], ["fc6"],
         {**W12_D10, f"{fc}.num_output": 4096, f"{fc}.weight_filler.std": 0.005}),
        ("relu6", "ReLU", ["fc6"], ["fc6"], {}),
        ("drop6", "Dropout", ["fc6"], ["fc6"], {"dropout_param.dropout_ratio": 0.5}),
        ("fc7", "InnerProduct", ["fc6"], ["fc7"], {**W12_D10, f"{fc}.num_output": 4096}),
        ("relu7", "ReLU", ["fc7"], ["fc7"], {}),
        ("drop7", "Dropout", ["fc7"], ["fc7"], {"dropout_param.dropout_ratio": 0.5}),
        ("fc8", "InnerProduct", ["fc7"], ["fc8"], {**W12_D10, f"{fc}.num_output": 1000}),
        ("prob", "Softmax", ["fc8"], ["prob"], {"param": []}),
    ])
    assert 'folding 4 padding layers ("pad2", "pad3", "pad4", "pad5")' in ctx.warnings[0][1]


# ---------------------------------------------------------------------------------------------------------
# (3) V0 snippets


V0_PADDED = """
name: "padded"
input: "data"
input_dim: 2 input_dim: 3 input_dim: 13 input_dim: 17
layers { layer { name: "pad1" type: "padding" pad: 3 } bottom: "data" top: "pad1" }
layers { layer { name: "conv1" type: "conv" num_output: 5 kernelsize: 7 stride: 2 } bottom: "pad1" top: "conv1" }
layers { layer { name: "relu1" type: "relu" } bottom: "conv1" top: "conv1" }
layers { layer { name: "pad2" type: "padding" pad: 1 } bottom: "conv1" top: "pad2" }
layers { layer { name: "pool1" type: "pool" pool: AVE kernelsize: 3 stride: 2 } bottom: "pad2" top: "pool1" }
"""


def test_v0_padding_folded_into_next_conv_and_pool():
    net, ctx, origins = _upgraded(V0_PADDED)
    assert ctx.errors == []
    assert ctx.steps == ["V0LayerParameter", "V1LayerParameter", "input fields"]
    assert [(l.name, l.type, list(l.bottom), list(l.top)) for l in net.layer] == [
        ("input", "Input", [], ["data"]),
        ("conv1", "Convolution", ["data"], ["conv1"]),
        ("relu1", "ReLU", ["conv1"], ["conv1"]),
        ("pool1", "Pooling", ["conv1"], ["pool1"]),
    ]
    assert list(net.layer[0].input_param.shape[0].dim) == [2, 3, 13, 17]
    conv = net.layer[1].convolution_param
    assert (conv.num_output, list(conv.kernel_size), list(conv.stride), list(conv.pad)) == (5, [7], [2], [3])
    pool = net.layer[3].pooling_param
    assert (pool.pool, pool.kernel_size, pool.stride, pool.pad) == (caffe_pb2.PoolingParameter.AVE, 3, 2, 1)
    assert origins == [None, 1, 2, 4]
    assert ctx.warnings[0] == ("V0LayerParameter", 'converted 3 V0 layers to the V1 format, folding 2 padding '
                               'layers ("pad1", "pad2") into the pad of the convolution or pooling layer that '
                               'reads it', None)


def test_v0_data_layer_transform_fields_go_to_transform_param():
    net, ctx, _ = _upgraded("""
    layers { layer { name: "data" type: "data" source: "train-leveldb" meanfile: "mean.binaryproto"
                     batchsize: 256 cropsize: 227 mirror: true scale: 0.5 rand_skip: 7 }
             top: "data" top: "label" }
    """)
    assert ctx.errors == []
    # In V0 files the transformation fields go straight to transform_param: no separate step.
    assert ctx.steps == ["V0LayerParameter", "V1LayerParameter"]
    want = text_format.Parse("""
      name: "data" type: "Data" top: "data" top: "label"
      transform_param { scale: 0.5 mirror: true crop_size: 227 mean_file: "mean.binaryproto" }
      data_param { source: "train-leveldb" batch_size: 256 rand_skip: 7 }
    """, caffe_pb2.LayerParameter())
    assert net.layer[0] == want, _diff(net.layer[0], want)


def test_v0_window_data_det_fields():
    net, ctx, _ = _upgraded("""
    layers { layer { name: "w" type: "window_data" source: "windows.txt" batchsize: 128
                     det_fg_threshold: 0.5 det_bg_threshold: 0.4 det_fg_fraction: 0.25 det_context_pad: 16
                     det_crop_mode: "warp" } top: "data" top: "label" }
    """)
    assert ctx.errors == []
    want = text_format.Parse("""
      source: "windows.txt" batch_size: 128 fg_threshold: 0.5 bg_threshold: 0.4 fg_fraction: 0.25
      context_pad: 16 crop_mode: "warp"
    """, caffe_pb2.WindowDataParameter())
    assert net.layer[0].type == "WindowData" and net.layer[0].window_data_param == want


def test_v0_field_wrong_for_its_type_is_an_error():
    _, ctx, _ = _upgraded("""
    layers { layer { name: "conv1" type: "conv" num_output: 4 kernelsize: 3 } bottom: "data" top: "conv1" }
    layers { layer { name: "relu1" type: "relu" kernelsize: 3 } bottom: "conv1" top: "conv1" }
    """)
    assert ctx.errors == [('V0 layer "relu1": field "kernelsize" has no meaning for a "relu" layer (only "conv" '
                           'or "pool" layers have it); Caffe\'s upgrade rejects it too', 1, "kernelsize")]
    with pytest.raises(UpgradeError, match="kernelsize"):
        ctx.raise_if_errors()


def test_v0_unknown_type_is_an_error():
    _, ctx, _ = _upgraded('layers { layer { name: "c" type: "convolution" } bottom: "x" top: "c" }')
    assert ctx.errors == [('V0 layer "c" has unknown type "convolution"', 0, "type")]


def test_v0_padding_read_by_a_non_conv_layer_is_an_error():
    _, ctx, _ = _upgraded("""
    input: "data"
    layers { layer { name: "pad1" type: "padding" pad: 1 } bottom: "data" top: "pad1" }
    layers { layer { name: "relu1" type: "relu" } bottom: "pad1" top: "relu1" }
    """)
    assert ctx.errors == [('layer "relu1" reads the output of V0 padding layer "pad1", which cannot be folded '
                           'into it: it is of type "relu", and only a "conv" or "pool" layer can read a '
                           '"padding" layer', 1, "bottom")]


def test_v0_unread_padding_layer_is_dropped_like_caffe():
    net, ctx, origins = _upgraded("""
    layers { layer { name: "relu1" type: "relu" } bottom: "data" top: "r" }
    layers { layer { name: "pad1" type: "padding" pad: 1 } bottom: "r" top: "pad1" }
    """)
    assert ctx.errors == [] and [l.name for l in net.layer] == ["relu1"] and origins == [0]
    assert 'removed 1 padding layer that nothing reads ("pad1")' in ctx.warnings[0][1]


def test_v0_mixed_with_v1_layers_is_an_error():
    _, ctx, _ = _upgraded("""
    layers { layer { name: "relu1" type: "relu" } bottom: "data" top: "r" }
    layers { name: "relu2" type: RELU bottom: "r" top: "r" }
    """)
    assert [(layer, field) for _, layer, field in ctx.errors] == [(1, "type")]


# ---------------------------------------------------------------------------------------------------------
# Errors and edge cases of the other steps


def test_both_layer_and_layers_is_an_error():
    _, ctx, origins = _upgraded("""
    layer { name: "a" type: "ReLU" bottom: "x" top: "x" }
    layers { name: "b" type: RELU bottom: "x" top: "x" }
    """)
    assert ctx.errors == [('both "layer" and "layers" are given: a net is either in the current format or in '
                           'the V1 format', None, "layers")]
    assert origins == [0]


def test_input_dim_not_four_per_input_is_an_error():
    net, ctx, _ = _upgraded('input: "data" input_dim: 1 input_dim: 3 input_dim: 8 '
                            'layer { name: "r" type: "ReLU" bottom: "data" top: "r" }')
    assert ctx.errors == [('3 input_dims given for 1 input ("data"): input_dim gives 4 dimensions (N, C, H, W) '
                           'per input, so 4 are needed', None, "input_dim")]


def test_input_shape_count_must_match_inputs():
    _, ctx, _ = _upgraded('input: "a" input: "b" input_shape { dim: 1 dim: 2 }')
    assert [(layer, field) for _, layer, field in ctx.errors] == [(None, "input_shape")]


def test_input_shape_makes_an_input_layer_for_a_current_net():
    net, ctx, origins = _upgraded("""
    input: "a" input_shape { dim: 2 dim: 3 } input: "b" input_shape { dim: 2 dim: 5 dim: 7 }
    layer { name: "cat" type: "Concat" bottom: "a" bottom: "b" top: "c" }
    """)
    assert ctx.errors == [] and ctx.steps == ["input fields"]
    want = text_format.Parse('name: "input" type: "Input" top: "a" top: "b" '
                             'input_param { shape { dim: 2 dim: 3 } shape { dim: 2 dim: 5 dim: 7 } }',
                             caffe_pb2.LayerParameter())
    assert net.layer[0] == want and origins == [None, 0]


def test_input_without_shape_is_just_dropped():
    net, ctx, origins = _upgraded('input: "data" layer { name: "r" type: "ReLU" bottom: "data" top: "r" }')
    assert ctx.errors == [] and ctx.steps == ["input fields"]
    assert [l.name for l in net.layer] == ["r"] and origins == [0] and list(net.input) == []


def test_batchnorm_with_three_params_gets_zero_mults():
    net, ctx, origins = _upgraded("""
    layer { name: "bn" type: "BatchNorm" bottom: "x" top: "x" param { lr_mult: 1 } param {} param { name: "s" } }
    layer { name: "bn2" type: "BatchNorm" bottom: "x" top: "x" param { lr_mult: 1 } }
    """)
    assert ctx.errors == [] and ctx.steps == ["BatchNorm params"]
    assert _params(net.layer[0]) == [(0.0, 0.0)] * 3 and net.layer[0].param[2].name == "s"
    assert _params(net.layer[1]) == [(1.0, None)]
    assert origins == [0, 1]


def test_batchnorm_without_three_params_is_left_alone():
    _, ctx, _ = _upgraded('layer { name: "bn" type: "BatchNorm" bottom: "x" top: "x" }')
    assert ctx.warnings == []


def test_current_net_needs_nothing():
    text = 'name: "n" layer { name: "r" type: "ReLU" bottom: "x" top: "x" }'
    net, ctx, origins = _upgraded(text)
    assert ctx.warnings == [] and ctx.errors == [] and origins == [0] and net == _net(text)


def test_v1_param_names_share_modes_and_loss_weight():
    net, ctx, _ = _upgraded("""
    layers { name: "ip" type: INNER_PRODUCT bottom: "x" top: "y" param: "w" param: "b"
             blob_share_mode: PERMISSIVE blobs_lr: 1 blobs_lr: 2 blobs_lr: 3 weight_decay: 0
             loss_weight: 0.5 exclude { stage: "deploy" } inner_product_param { num_output: 3 } }
    layers { type: NONE }
    """)
    assert ctx.errors == []
    want = text_format.Parse("""
      name: "ip" type: "InnerProduct" bottom: "x" top: "y" loss_weight: 0.5
      param { name: "w" share_mode: PERMISSIVE lr_mult: 1 decay_mult: 0 }
      param { name: "b" lr_mult: 2 }
      param { lr_mult: 3 }
      exclude { stage: "deploy" }
      inner_product_param { num_output: 3 }
    """, caffe_pb2.LayerParameter())
    assert net.layer[0] == want, _diff(net.layer[0], want)
    assert net.layer[1].HasField("type") and net.layer[1].type == ""


def test_v1_data_transform_fields_overwrite_transform_param_as_in_caffe():
    net, ctx, _ = _upgraded("""
    layers { name: "d" type: IMAGE_DATA top: "x" top: "y"
             image_data_param { source: "list.txt" mirror: true crop_size: 5 }
             transform_param { crop_size: 7 } }
    layers { name: "d2" type: DATA top: "x2" top: "y2" }
    """)
    assert ctx.errors == []
    assert [step for step, _, _ in ctx.warnings] == ["data transformation", "data transformation",
                                                     "V1LayerParameter"]
    assert ctx.warnings[0][1] == 'layer "d": image_data_param.crop_size 5 replaces transform_param.crop_size 7, ' \
                                 'as in Caffe'
    assert ctx.warnings[1][1] == ('moved crop_size, mirror of 1 layer ("d") from image_data_param into '
                                  'transform_param')
    want = text_format.Parse("""
      name: "d" type: "ImageData" top: "x" top: "y"
      transform_param { mirror: true crop_size: 5 } image_data_param { source: "list.txt" }
    """, caffe_pb2.LayerParameter())
    assert net.layer[0] == want, _diff(net.layer[0], want)
    # Caffe touches every DATA layer's data_param and transform_param, leaving them present though empty.
    assert net.layer[1].HasField("data_param") and net.layer[1].HasField("transform_param")


def test_current_format_data_param_transform_fields_are_left_alone_with_a_warning():
    # Caffe's NetNeedsDataUpgrade looks at V1 `layers {}` only, and its data layers read only transform_param:
    # these fields change nothing in Caffe, so netc neither moves them nor reports a Caffe upgrade step.
    text = """
    layer { name: "d" type: "Data" top: "x" data_param { source: "db" scale: 0.25 mean_file: "m" }
            transform_param { scale: 0.5 } }
    layer { name: "w" type: "WindowData" top: "w" window_data_param { source: "s" mirror: true } }
    layer { name: "i" type: "ImageData" top: "i" data_param { scale: 2 } }
    layer { type: "Data" top: "y" data_param { crop_size: 227 } }
    """
    net, ctx, origins = _upgraded(text)
    assert ctx.errors == [] and origins == [0, 1, 2, 3]
    step = "ignored transform fields"
    assert ctx.warnings == [
        (step, 'layer "d": data_param.scale is ignored by Caffe (only transform_param is read, which gives '
               "scale 0.5); remove it", 0),
        (step, 'layer "d": data_param.mean_file is ignored by Caffe (only transform_param is read); move it '
               "into transform_param", 0),
        (step, 'layer "w": window_data_param.mirror is ignored by Caffe (only transform_param is read); move it '
               "into transform_param", 1),
        (step, "layer #3: data_param.crop_size is ignored by Caffe (only transform_param is read); move it into "
               "transform_param", 3),
    ]
    assert step not in [u.step for u in NET_UPGRADES] and step not in GOLDEN_STEP_NAMES.values()
    assert net == _net(text), _diff(net, _net(text))


def test_ignored_crop_size_does_not_crop():
    # What Caffe does with `image_data_param { crop_size }`: nothing; the top keeps the resized size.
    from netc.analysis import analyze
    from netc.errors import Diagnostics
    from netc.frontend import load_net_param
    from netc.graph import build_net

    text = ('layer {\n  name: "d"\n  type: "ImageData"\n  top: "data"\n  top: "label"\n'
            '  image_data_param { source: "list.txt" batch_size: 2 new_height: 13 new_width: 17 crop_size: 11 }\n'
            '}\n')
    diags = Diagnostics()
    ns = load_net_param(text, name="x.prototxt", diags=diags)
    assert [d.render() for d in diags.items] == [
        'x.prototxt:2:3: warning: upgrade (ignored transform fields): layer "d": image_data_param.crop_size is '
        "ignored by Caffe (only transform_param is read); move it into transform_param\n"
        '  name: "d"\n'
        "  ^^^^"]
    assert ns.steps == ["ignored transform fields"]
    a = analyze(build_net(ns, "TEST", (), None, diags))
    assert a.info("d").top_shapes == [(2, 3, 13, 17), (2,)]


# ---------------------------------------------------------------------------------------------------------
# (4) Solvers


@pytest.mark.skipif(not INDEX.is_file(), reason="no golden upgrades")
def test_all_seven_legacy_solvers_match_caffe():
    entries = [f for f in json.loads(INDEX.read_text())["files"] if f["format"] == "solver"]
    assert len(entries) == 7
    for entry in entries:
        got = _parse(caffe_pb2.SolverParameter, CORPUS_ROOT / entry["source"])
        want = _parse(caffe_pb2.SolverParameter, GOLDEN.parent / entry["upgraded"])
        ctx = RecordingContext()
        upgrade_solver(got, ctx)
        assert ctx.errors == [] and got == want, entry["source"] + "\n" + _diff(got, want)
        if entry["source"].endswith("lenet_consolidated_solver.prototxt"):
            assert len(got.net_param.layers) > 0 and len(got.net_param.layer) == 0  # inline net untouched


def test_solver_type_becomes_type():
    solver = text_format.Parse("solver_type: RMSPROP rms_decay: 0.98", caffe_pb2.SolverParameter())
    ctx = RecordingContext()
    upgrade_solver(solver, ctx)
    assert solver == text_format.Parse('type: "RMSProp" rms_decay: 0.98', caffe_pb2.SolverParameter())
    assert ctx.warnings == [("solver_type", 'replaced the deprecated solver_type: RMSPROP by type: "RMSProp"',
                             None)]


def test_solver_with_both_solver_type_and_type_is_an_error():
    solver = text_format.Parse('solver_type: ADAM type: "Adam"', caffe_pb2.SolverParameter())
    ctx = RecordingContext()
    upgrade_solver(solver, ctx)
    assert ctx.errors == [('both "solver_type" (ADAM) and "type" ("Adam") are given: "solver_type" is the '
                           'deprecated spelling of "type"; keep only "type"', None, "solver_type")]
    assert ctx.warnings == []


# ---------------------------------------------------------------------------------------------------------
# The schema is the source of truth: every legacy field and enum value has a place.


def test_every_v1_enum_has_a_type_name():
    assert set(V1_TYPE_NAMES) == set(caffe_pb2.V1LayerParameter.LayerType.keys())
    assert set(V0_TYPES.values()) <= set(V1_TYPE_NAMES)
    assert set(SOLVER_TYPE_NAMES) == set(caffe_pb2.SolverParameter.SolverType.keys())


def test_every_v1_field_is_mapped():
    current = caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name
    for fd in caffe_pb2.V1LayerParameter.DESCRIPTOR.fields:
        if fd.name not in _V1_MAPPED_FIELDS:
            assert fd.name.endswith("_param") and fd.name in current, fd.name
            assert current[fd.name].message_type is fd.message_type, fd.name


def test_every_v0_field_is_handled():
    handled = set(_V0_PLAIN_FIELDS) | set(_V0_TRANSFORM_FIELDS) | set(_V0_DROPPED_FIELDS) | set(_V0_TYPED_FIELDS)
    assert {fd.name for fd in caffe_pb2.V0LayerParameter.DESCRIPTOR.fields} == handled
    v1_fields = caffe_pb2.V1LayerParameter.DESCRIPTOR.fields_by_name
    for targets in _V0_TYPED_FIELDS.values():
        for kind, (param, sub) in targets.items():
            assert kind in V0_TYPES
            assert not sub or sub in v1_fields[param].message_type.fields_by_name


def test_step_names_and_order():
    assert [u.step for u in NET_UPGRADES] == ["V0LayerParameter", "data transformation", "V1LayerParameter",
                                              "input fields", "BatchNorm params"]
    assert [u.step for u in SOLVER_UPGRADES] == ["solver_type"]
