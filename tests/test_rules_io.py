"""Shape rules of the net's ends: losses and metrics, recurrent layers, data layers and Python layers.

Losses, Accuracy, LSTM and RNN are compared with the real Caffe (golden single-layer cases).  Data layers
get their shapes without the data set where Caffe's parameters fix them, from the data set where Caffe
reads it (the golden LMDB of Datum records), and from --input otherwise; the errors that ask for --input
are pinned verbatim.
"""
from __future__ import annotations

import importlib

import pytest

from netc.analysis import analyze
from netc.errors import Diagnostics, NetcError
from netc.frontend import load_net_param
from netc.graph import build_net
from netc.layers import Inferred, LayerRule
from netc.layers.data import PYTHON_RULES, register_python_layer

from golden import GOLDEN, check_case, layer_cases, needs_golden


@needs_golden
@pytest.mark.parametrize("case", layer_cases("SoftmaxWithLoss", "SigmoidCrossEntropyLoss", "EuclideanLoss",
                                             "HingeLoss", "InfogainLoss", "MultinomialLogisticLoss",
                                             "ContrastiveLoss", "Accuracy", "LSTM", "RNN"))
def test_golden(case):
    check_case(case)


def analyze_text(text: str, inputs=None, batch=None, base_dir=None, phase="TEST"):
    diags = Diagnostics()
    ns = load_net_param(text, name="x.prototxt", diags=diags)
    return analyze(build_net(ns, phase, (), None, diags), inputs, batch, base_dir)


def tops(text: str, **kw) -> dict:
    """blob -> shape after analysing the net."""
    a = analyze_text(text, **kw)
    return {t: s for info in a.layers for t, s in zip(info.layer.tops, info.top_shapes)}


def error(text: str, **kw) -> str:
    with pytest.raises(NetcError) as e:
        analyze_text(text, **kw)
    return e.value.render()


def layer(body: str) -> str:
    """A layer block; "|" in the body starts a new line (so that a pinned error's excerpt is short)."""
    return "layer {\n  " + body.replace(" | ", "\n  ") + "\n}\n"


# ---- losses and metrics --------------------------------------------------------------------------------------

SCORES = layer('name: "in" type: "Input" top: "score" top: "label" '
               "input_param { shape { dim: 2 dim: 5 dim: 3 dim: 7 } shape { dim: 2 dim: 1 dim: 3 dim: 7 } }")


def test_loss_tops_are_scalars_and_an_automatic_top_has_one_too():
    a = analyze_text(SCORES + layer('name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label"'))
    info = a.info("loss")
    assert info.layer.tops == ["(automatic)"] and info.top_shapes == [()]
    # softmax 3 per score, log and sum 2 per label
    assert info.other_ops == 3 * 2 * 5 * 3 * 7 + 2 * 2 * 3 * 7


def test_accuracy_second_top_is_per_class():
    shapes = tops(SCORES + layer('name: "acc" type: "Accuracy" bottom: "score" bottom: "label" top: "acc" '
                                 'top: "per_class"'))
    assert shapes["acc"] == () and shapes["per_class"] == (5,)


def test_accuracy_axis_picks_the_classes():
    net = layer('name: "in" type: "Input" top: "score" top: "label" '
                "input_param { shape { dim: 2 dim: 3 dim: 11 } shape { dim: 2 dim: 3 } }")
    shapes = tops(net + layer('name: "acc" type: "Accuracy" bottom: "score" bottom: "label" top: "acc" '
                              'top: "per_class" accuracy_param { axis: -1 }'))
    assert shapes["per_class"] == (11,)


def test_softmax_loss_label_count_error():
    net = layer('name: "in" type: "Input" top: "score" top: "label" '
                "input_param { shape { dim: 2 dim: 5 dim: 3 dim: 7 } shape { dim: 2 dim: 3 } }")
    assert error(net + layer('name: "loss" type: "SoftmaxWithLoss" | bottom: "score" | bottom: "label"')) == (
        'x.prototxt:7:11: error: layer "loss" (SoftmaxWithLoss): the label "label" (2, 3) holds 6 values but '
        '"score" (2, 5, 3, 7) with softmax axis 1 needs 2·3·7 = 42\n'
        '  bottom: "label"\n'
        '          ^^^^^^^\n'
        '  hint: one label per position outside the class axis: with softmax axis 1 and scores (N, C, H, W), '
        'the label holds N·H·W values, e.g. (N, 1, H, W) or (N, H, W)')


def test_loss_first_axis_error():
    net = layer('name: "in" type: "Input" top: "a" top: "b" '
                "input_param { shape { dim: 2 dim: 13 } shape { dim: 3 dim: 13 } }")
    assert error(net + layer('name: "loss" type: "EuclideanLoss" | bottom: "a" | bottom: "b"')) == (
        'x.prototxt:7:11: error: layer "loss" (EuclideanLoss): bottoms "a" (2, 13) and "b" (3, 13) differ in '
        'their first axis (2 vs 3)\n'
        '  bottom: "b"\n'
        '          ^^^\n'
        '  hint: Caffe checks that the data and the label have the same first dimension (one label per sample)')


def test_accuracy_top_k_error():
    assert error(SCORES + layer('name: "acc" type: "Accuracy" bottom: "score" bottom: "label" top: "acc" | '
                                "accuracy_param { top_k: 6 }")) == (
        'x.prototxt:6:27: error: layer "acc" (Accuracy): top_k 6 is more than the 5 classes of "score" (2, '
        '5, 3, 7)\n'
        '  accuracy_param { top_k: 6 }\n'
        '                          ^')


def test_infogain_matrix_from_a_third_bottom_must_be_c_by_c():
    net = layer('name: "in" type: "Input" top: "score" top: "label" top: "H" input_param { shape { dim: 2 '
                "dim: 5 } shape { dim: 2 } shape { dim: 4 dim: 4 } }")
    text = error(net + layer('name: "loss" type: "InfogainLoss" bottom: "score" bottom: "label" bottom: "H"'))
    assert 'the infogain matrix "H" (4, 4) has 16 values; 5 classes need 5x5 = 25' in text


def test_contrastive_loss_legacy_axes():
    net = layer('name: "in" type: "Input" top: "a" top: "b" top: "sim" input_param { shape { dim: 2 dim: 3 '
                "dim: 1 dim: 1 } shape { dim: 2 dim: 3 } shape { dim: 2 dim: 1 dim: 1 dim: 1 } }")
    assert tops(net + layer('name: "loss" type: "ContrastiveLoss" bottom: "a" bottom: "b" bottom: "sim" '
                            'top: "loss"'))["loss"] == ()
    bad = net.replace("shape { dim: 2 dim: 3 }", "shape { dim: 2 dim: 3 dim: 2 }")
    assert 'bottom "b" (2, 3, 2) must have height and width 1 (a feature vector per sample); it has height 2' in \
        error(bad + layer('name: "loss" type: "ContrastiveLoss" bottom: "a" bottom: "b" bottom: "sim"'))


# ---- recurrent layers ----------------------------------------------------------------------------------------

def test_lstm_with_static_input_and_exposed_states():
    net = layer('name: "in" type: "Input" top: "x" top: "cont" top: "xs" top: "h0" top: "c0" input_param { '
                "shape { dim: 3 dim: 2 dim: 4 dim: 5 } shape { dim: 3 dim: 2 } shape { dim: 2 dim: 6 } "
                "shape { dim: 1 dim: 2 dim: 7 } shape { dim: 1 dim: 2 dim: 7 } }")
    a = analyze_text(net + layer('name: "lstm" type: "LSTM" bottom: "x" bottom: "cont" bottom: "xs" bottom: "h0" '
                                 'bottom: "c0" top: "y" top: "hT" top: "cT" '
                                 "recurrent_param { num_output: 7 expose_hidden: true }"))
    info = a.info("lstm")
    assert info.top_shapes == [(3, 2, 7), (1, 2, 7), (1, 2, 7)]
    # W_xc (4H, D = 4*5), b_c, W_xc_static (4H, D_s), W_hc (4H, H)
    assert info.blob_shapes == [(28, 20), (28,), (28, 6), (28, 7)]
    assert info.macs == 3 * 2 * 20 * 28 + 2 * 6 * 28 + 3 * 2 * 7 * 28


def test_rnn_exposed_hidden_state_is_not_a_static_input():
    net = layer('name: "in" type: "Input" top: "x" top: "cont" top: "h0" input_param { '
                "shape { dim: 3 dim: 2 dim: 4 } shape { dim: 3 dim: 2 } shape { dim: 1 dim: 2 dim: 7 } }")
    a = analyze_text(net + layer('name: "rnn" type: "RNN" bottom: "x" bottom: "cont" bottom: "h0" top: "y" '
                                 'top: "hT" recurrent_param { num_output: 7 expose_hidden: true }'))
    info = a.info("rnn")
    assert info.top_shapes == [(3, 2, 7), (1, 2, 7)]
    assert info.blob_shapes == [(7, 4), (7,), (7, 7), (7, 7), (7,)]
    assert info.macs == 3 * 2 * 4 * 7 + 2 * 3 * 2 * 7 * 7


def test_recurrent_cont_must_match_x():
    net = layer('name: "in" type: "Input" top: "x" top: "cont" input_param { '
                "shape { dim: 3 dim: 2 dim: 4 } shape { dim: 2 dim: 3 } }")
    assert error(net + layer('name: "lstm" type: "LSTM" | bottom: "x" | bottom: "cont" | top: "y" | '
                             "recurrent_param { num_output: 7 }")) == (
        'x.prototxt:7:11: error: layer "lstm" (LSTM): the sequence indicators "cont" (2, 3) must be (T, N) = '
        '(3, 2), the first two axes of "x" (3, 2, 4)\n'
        '  bottom: "cont"\n'
        '          ^^^^^^')


def test_lstm_unit():
    net = layer('name: "in" type: "Input" top: "c" top: "x" top: "cont" input_param { '
                "shape { dim: 1 dim: 2 dim: 5 } shape { dim: 1 dim: 2 dim: 20 } shape { dim: 1 dim: 2 } }")
    unit = layer('name: "unit" type: "LSTMUnit" bottom: "c" bottom: "x" bottom: "cont" top: "c1" top: "h1"')
    shapes = tops(net + unit)
    assert shapes["c1"] == shapes["h1"] == (1, 2, 5)
    assert 'the gate inputs "x" (1, 2, 19) must be (1, N, 4H) = (1, 2, 20)' in \
        error(net.replace("dim: 20", "dim: 19") + unit)


# ---- data layers without a data set ----------------------------------------------------------------------------

def test_dummy_data_shape_once_and_per_top():
    once = layer('name: "d" type: "DummyData" top: "a" top: "b" dummy_data_param { shape { dim: 2 dim: 3 } }')
    assert tops(once) == {"a": (2, 3), "b": (2, 3)}
    per_top = layer('name: "d" type: "DummyData" top: "a" top: "b" '
                    "dummy_data_param { shape { dim: 2 dim: 3 } shape { dim: 2 } }")
    assert tops(per_top) == {"a": (2, 3), "b": (2,)}
    assert tops(per_top, batch=5) == {"a": (5, 3), "b": (5,)}


def test_dummy_data_legacy_fields():
    net = layer('name: "d" type: "DummyData" top: "a" top: "b" '
                "dummy_data_param { num: 2 channels: 3 channels: 1 height: 13 width: 17 }")
    assert tops(net) == {"a": (2, 3, 13, 17), "b": (2, 1, 13, 17)}


def test_dummy_data_shape_count_error():
    net = layer('name: "d" type: "DummyData" top: "a" top: "b" top: "c" | '
                "dummy_data_param { shape { dim: 2 } shape { dim: 3 } }")
    assert error(net) == (
        'x.prototxt:3:22: error: layer "d" (DummyData): dummy_data_param gives 2 shapes for 3 tops\n'
        '  dummy_data_param { shape { dim: 2 } shape { dim: 3 } }\n'
        '                     ^^^^^\n'
        '  hint: give shape { dim: ... } once, or once per top')


def test_memory_data():
    net = layer('name: "d" type: "MemoryData" top: "data" top: "label" '
                "memory_data_param { batch_size: 2 channels: 3 height: 13 width: 17 }")
    assert tops(net) == {"data": (2, 3, 13, 17), "label": (2,)}


def test_image_data_new_size_and_crop():
    resized = layer('name: "d" type: "ImageData" top: "data" top: "label" '
                    'image_data_param { source: "no_such_list.txt" batch_size: 2 new_height: 13 new_width: 17 }')
    assert tops(resized) == {"data": (2, 3, 13, 17), "label": (2,)}
    gray = resized.replace("new_width: 17", "new_width: 17 is_color: false")
    assert tops(gray)["data"] == (2, 1, 13, 17)
    cropped = resized.replace("layer {\n", "layer {\n  transform_param { crop_size: 11 }\n")
    assert tops(cropped)["data"] == (2, 3, 11, 11)


def test_image_data_without_size_needs_the_images():
    net = layer('name: "d" type: "ImageData" top: "data" top: "label" | '
                'image_data_param { source: "no_such_list.txt" batch_size: 4 }')
    assert error(net) == (
        'x.prototxt:3:30: error: layer "d" (ImageData): the image list "no_such_list.txt" is not found '
        "(relative to the current directory or to the net file's folder)\n"
        '  image_data_param { source: "no_such_list.txt" batch_size: 4 }\n'
        '                             ^^^^^^^^^^^^^^^^^^\n'
        "  hint: without new_height/new_width or crop_size, the top has the first image's size; give it: "
        '--input data=4x3xHxW')


def test_window_data():
    net = layer('name: "d" type: "WindowData" top: "data" top: "label" transform_param { crop_size: 11 } '
                'window_data_param { source: "windows.txt" batch_size: 2 }')
    assert tops(net) == {"data": (2, 3, 11, 11), "label": (2,)}


DATA = layer('name: "data" type: "Data" top: "data" top: "label" | transform_param { crop_size: 227 } | '
             'data_param { source: "no_such_lmdb" batch_size: 64 backend: LMDB }')


def test_data_shapes_from_input():
    assert tops(DATA, inputs={"data": (2, 3, 8, 8), "label": (2,)}) == {"data": (2, 3, 8, 8), "label": (2,)}
    # The label follows the given data's batch.
    assert tops(DATA, inputs={"data": (2, 3, 8, 8)})["label"] == (2,)


def test_data_channels_from_mean_values():
    net = DATA.replace("crop_size: 227", "crop_size: 227 mean_value: 104 mean_value: 117 mean_value: 123")
    assert tops(net) == {"data": (64, 3, 227, 227), "label": (64,)}
    assert tops(net, batch=1)["data"] == (1, 3, 227, 227)


def test_data_without_database_asks_for_input():
    assert error(DATA) == (
        'x.prototxt:4:24: error: layer "data" (Data): the data set "no_such_lmdb" is not found (relative to '
        "the current directory or to the net file's folder)\n"
        '  data_param { source: "no_such_lmdb" batch_size: 64 backend: LMDB }\n'
        '                       ^^^^^^^^^^^^^^\n'
        "  hint: netc reads C, H and W from the data set's first record; without it, give the shape: --input "
        'data=64xCx227x227')
    no_crop = DATA.replace("transform_param { crop_size: 227 }", "")
    assert error(no_crop).endswith("hint: netc reads C, H and W from the data set's first record; without it, "
                                   "give the shape: --input data=64xCxHxW")


def test_hdf5_data_without_list_asks_for_input():
    net = layer('name: "d" type: "HDF5Data" top: "data" top: "label" '
                'hdf5_data_param { source: "no_such_list.txt" batch_size: 8 }')
    assert error(net).endswith(
        "hint: netc reads each top's shape from the first HDF5 file; without it, give the shapes (the batch, then "
        "the dataset's axes after the first): --input data=8x... --input label=8x...")
    assert tops(net, inputs={"data": (8, 1, 28, 28), "label": (8,)}) == {"data": (8, 1, 28, 28), "label": (8,)}


def test_hdf5_output_has_no_top():
    net = layer('name: "in" type: "Input" top: "a" top: "b" input_param { shape { dim: 2 dim: 3 } '
                "shape { dim: 2 } }")
    a = analyze_text(net + layer('name: "out" type: "HDF5Output" bottom: "a" bottom: "b" '
                                 'hdf5_output_param { file_name: "out.h5" }'))
    assert a.info("out").top_shapes == []


# ---- data layers over the golden data ------------------------------------------------------------------------

def importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


GOLDEN_DATA = GOLDEN / "data"
needs_lmdb = pytest.mark.skipif(not importable("lmdb"),
                                reason="the optional package lmdb is not installed (pip install lmdb)")


@needs_golden
@needs_lmdb
def test_data_reads_the_first_datum():
    # fmnist3_lmdb: 16 raw Datum records, 3 x 32 x 32.
    net = layer('name: "data" type: "Data" top: "data" top: "label" '
                'data_param { source: "fmnist3_lmdb" batch_size: 10 backend: LMDB }')
    assert tops(net, base_dir=GOLDEN_DATA) == {"data": (10, 3, 32, 32), "label": (10,)}
    cropped = net.replace("layer {\n", "layer {\n  transform_param { crop_size: 28 }\n")
    assert tops(cropped, base_dir=GOLDEN_DATA)["data"] == (10, 3, 28, 28)
    too_big = net.replace("layer {\n", "layer {\n  transform_param { crop_size: 33 }\n")
    assert "crop_size 33 is larger than the stored images (32x32, the first record of \"fmnist3_lmdb\")" in \
        error(too_big, base_dir=GOLDEN_DATA)
    means = net.replace("layer {\n", "layer {\n  transform_param { mean_value: 1 mean_value: 2 }\n")
    assert "mean_value is given 2 times for 3-channel images" in error(means, base_dir=GOLDEN_DATA)


@needs_golden
def test_data_default_backend_is_leveldb():
    net = layer('name: "data" type: "Data" top: "data" top: "label" | '
                'data_param { source: "fmnist3_lmdb" batch_size: 10 }')
    assert error(net, base_dir=GOLDEN_DATA) == (
        'x.prototxt:3:24: error: layer "data" (Data): "fmnist3_lmdb" is an LMDB but backend is LEVELDB (the '
        'default)\n'
        '  data_param { source: "fmnist3_lmdb" batch_size: 10 }\n'
        '                       ^^^^^^^^^^^^^^\n'
        '  hint: add backend: LMDB to data_param')


@needs_golden
def test_data_shape_from_the_golden_nets():
    """Every golden Data/ImageData case whose shape netc can know here (no OpenCV/Pillow needed for raw
    datums, resized or cropped images) against the arrays Caffe produced."""
    import numpy as np

    import netc
    cases = [d for d in sorted(GOLDEN_DATA.iterdir()) + sorted((GOLDEN_DATA / "imagedata").iterdir())
             if (d / "forward.npz").is_file()]
    assert cases
    checked = 0
    for case in cases:
        try:
            a = analyze(netc.load_net(case / "net.prototxt", "TEST"))
        except NetcError as e:
            # Only a missing optional package may stop it.
            assert "needs the Python package" in e.render() or "needs OpenCV" in e.render(), e.render()
            continue
        f = np.load(case / "forward.npz")
        assert a.layers[0].top_shapes == [f["data"].shape, f["label"].shape], case.name
        checked += 1
    assert checked >= 8  # the ImageData cases with new size or crop need no package at all


needs_h5py = pytest.mark.skipif(not importable("h5py"),
                                reason="the optional package h5py is not installed (pip install h5py)")
needs_decoder = pytest.mark.skipif(not (importable("cv2") or importable("PIL")),
                                   reason="reading an image's size needs OpenCV or Pillow, neither is installed")


@needs_golden
@needs_h5py
def test_hdf5_data_reads_the_first_file():
    # solver/data/train.h5: data (N, 1, 28, 28), label (N,)
    import netc
    net = netc.load_net(GOLDEN / "solver" / "sgd_step" / "train_test.prototxt", "TRAIN")
    assert analyze(net).layers[0].top_shapes == [(64, 1, 28, 28), (64,)]
    assert analyze(net, batch=3).layers[0].top_shapes == [(3, 1, 28, 28), (3,)]


@needs_golden
@needs_decoder
def test_image_data_reads_the_first_image():
    # list.txt starts with rgb_a_48x64.png: 48 x 64.
    net = layer('name: "d" type: "ImageData" top: "data" top: "label" | '
                'image_data_param { source: "list.txt" root_folder: "images/" batch_size: 8 }')
    assert tops(net, base_dir=GOLDEN_DATA / "imagedata") == {"data": (8, 3, 48, 64), "label": (8,)}
    gray = net.replace("batch_size: 8", "batch_size: 8 is_color: false")
    assert tops(gray, base_dir=GOLDEN_DATA / "imagedata")["data"] == (8, 1, 48, 64)


# ---- Python layers --------------------------------------------------------------------------------------------

PY = layer('name: "roi" type: "Python" top: "rois" top: "labels" | '
           'python_param { module: "my_layers" layer: "RoIData" }')


def test_python_layer_is_refused_with_a_hint():
    assert error(PY) == (
        'x.prototxt:3:45: error: layer "roi" (Python): netc cannot infer the tops of the Python layer '
        'my_layers.RoIData: its code sets their shapes at run time\n'
        '  python_param { module: "my_layers" layer: "RoIData" }\n'
        '                                            ^^^^^^^^^\n'
        '  hint: give the shape of every top: --input rois=NxCxHxW --input labels=NxCxHxW, or register a '
        'rule with netc.layers.data.register_python_layer("my_layers", "RoIData")')


def test_python_layer_with_input_shapes():
    assert tops(PY, inputs={"rois": (4, 5), "labels": (4,)}) == {"rois": (4, 5), "labels": (4,)}


def test_python_layer_with_a_registered_rule():
    @register_python_layer("my_layers", "RoIData")
    class RoIData(LayerRule):
        type = "Python"

        def infer(self, ctx, bottoms):
            return Inferred(tops=[(ctx.batch or 1, 5), (ctx.batch or 1,)])

    try:
        assert tops(PY, batch=3) == {"rois": (3, 5), "labels": (3,)}
        assert tops(PY, batch=3, inputs={"labels": (2,)})["labels"] == (2,)
    finally:
        del PYTHON_RULES[("my_layers", "RoIData")]
