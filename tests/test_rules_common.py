"""Shape rules of the common and neuron layers: every golden case against the real Caffe, and the errors
Caffe would abort on, pinned verbatim."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import netc
from netc.analysis import analyze
from netc.errors import ShapeError

from golden import LAYER_CASES, analyze_case, check_case, layer_cases, needs_golden

COMMON = ("InnerProduct", "Concat", "Slice", "Split", "Eltwise", "Flatten", "Reshape", "Crop", "Tile", "Reduction",
          "ArgMax", "Softmax", "MVN", "BatchNorm", "Scale", "Bias", "Embed", "BatchReindex", "Filter", "Silence",
          "Parameter")
NEURON = ("PReLU", "ReLU", "Sigmoid", "TanH", "AbsVal", "BNLL", "Power", "Exp", "Log", "Threshold", "Clip",
          "Swish", "Dropout", "ELU")

# Filter's first dim is the number of non-zero selectors, known only from the data; netc gives N, as Caffe's
# own first Reshape does (the golden case records the shape after the forward pass).
DATA_DEPENDENT = {"filter"}


def _cases():
    out = []
    for param in layer_cases(*COMMON, *NEURON):
        case = param.values[0]
        if case.name in DATA_DEPENDENT:
            param = pytest.param(case, id=param.id, marks=pytest.mark.xfail(
                strict=True, reason="the first dim of a Filter top depends on the selector's values"))
        out.append(param)
    return out


@needs_golden
@pytest.mark.parametrize("case", _cases())
def test_golden(case):
    check_case(case)


@needs_golden
def test_filter_uses_the_batch_size():
    a, _ = analyze_case(LAYER_CASES / "filter")
    assert a.info("filter").top_shapes == [(5, 3, 2)]


def _analyze(tmp_path: Path, monkeypatch, text: str):
    monkeypatch.chdir(tmp_path)
    Path("net.prototxt").write_text(textwrap.dedent(text).lstrip())
    return analyze(netc.load_net(Path("net.prototxt")))


def _error(tmp_path, monkeypatch, text: str) -> str:
    with pytest.raises(ShapeError) as e:
        _analyze(tmp_path, monkeypatch, text)
    return e.value.render()


def test_concat_disagreement_names_both_shapes(tmp_path, monkeypatch):
    assert _error(tmp_path, monkeypatch, """
        layer { name: "in" type: "Input" top: "a" top: "b"
                input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } shape { dim: 2 dim: 4 dim: 7 dim: 8 } } }
        layer { name: "cat" type: "Concat" bottom: "a" bottom: "b" top: "c" }
    """) == """\
net.prototxt:3:56: error: layer "cat" (Concat): bottoms need equal shapes except on axis 1: "a" is (2, 3, 8, 8) but \
"b" is (2, 4, 7, 8)
  layer { name: "cat" type: "Concat" bottom: "a" bottom: "b" top: "c" }
                                                         ^^^
  hint: axis 2 differs (8 vs 7); only axis 1 may differ (set concat_param { axis } to the axis to join on)"""


def test_eltwise_disagreement(tmp_path, monkeypatch):
    assert _error(tmp_path, monkeypatch, """
        layer { name: "in" type: "Input" top: "a" top: "b"
                input_param { shape { dim: 2 dim: 3 dim: 13 dim: 17 } shape { dim: 2 dim: 3 dim: 17 dim: 13 } } }
        layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "s" }
    """) == """\
net.prototxt:3:57: error: layer "sum" (Eltwise): bottoms need the same shape: "a" is (2, 3, 13, 17) but "b" is (2, \
3, 17, 13)
  layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "s" }
                                                          ^^^
  hint: Eltwise does not broadcast; use Scale or Bias with a second bottom for that"""


def test_crop_beyond_bounds(tmp_path, monkeypatch):
    assert _error(tmp_path, monkeypatch, """
        layer { name: "in" type: "Input" top: "data" top: "ref"
                input_param { shape { dim: 2 dim: 3 dim: 13 dim: 17 } shape { dim: 2 dim: 3 dim: 11 dim: 11 } } }
        layer { name: "crop" type: "Crop" bottom: "data" bottom: "ref" top: "c"
                crop_param { axis: 2 offset: 1 offset: 7 } }
    """) == """\
net.prototxt:4:48: error: layer "crop" (Crop): crop of axis 3 is out of bounds: "data" has 17, offset 7 leaves 10, \
but "ref" needs 11
  crop_param { axis: 2 offset: 1 offset: 7 } }
                                         ^
  hint: on axis 3 the offset can be at most 6"""


def test_reshape_count_mismatch(tmp_path, monkeypatch):
    assert _error(tmp_path, monkeypatch, """
        layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 dim: 13 dim: 17 } } }
        layer { name: "r" type: "Reshape" bottom: "x" top: "y"
                reshape_param { shape { dim: 0 dim: 3 dim: 200 } } }
    """) == """\
net.prototxt:3:25: error: layer "r" (Reshape): the new shape (2, 3, 200) has count 1200 but "x" (2, 3, 13, 17) has \
count 1326
  reshape_param { shape { dim: 0 dim: 3 dim: 200 } } }
                  ^^^^^
  hint: Reshape keeps every element: use 0 to copy a bottom dim and -1 to infer one"""


def test_reshape_inferred_dim_must_divide(tmp_path, monkeypatch):
    assert _error(tmp_path, monkeypatch, """
        layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 dim: 13 dim: 17 } } }
        layer { name: "r" type: "Reshape" bottom: "x" top: "y" reshape_param { shape { dim: 0 dim: -1 dim: 4 } } }
    """) == """\
net.prototxt:2:72: error: layer "r" (Reshape): cannot infer the -1 dim: "x" (2, 3, 13, 17) has count 1326, not a \
multiple of 8 (the other dims)
  ...top: "y" reshape_param { shape { dim: 0 dim: -1 dim: 4 } } }
                              ^^^^^
  hint: the given dims must divide the bottom's count"""


def test_slice_points_must_increase(tmp_path, monkeypatch):
    assert _error(tmp_path, monkeypatch, """
        layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 13 dim: 5 } } }
        layer { name: "s" type: "Slice" bottom: "x" top: "a" top: "b" top: "c"
                slice_param { slice_point: 4 slice_point: 4 } }
    """) == """\
net.prototxt:3:51: error: layer "s" (Slice): slice_point 4 is not after the previous point 4
  slice_param { slice_point: 4 slice_point: 4 } }
                                            ^
  hint: slice points must strictly increase (and start above 0)"""


def test_slice_points_count(tmp_path, monkeypatch):
    assert _error(tmp_path, monkeypatch, """
        layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 13 dim: 5 } } }
        layer { name: "s" type: "Slice" bottom: "x" top: "a" top: "b" slice_param { slice_point: 4 slice_point: 9 } }
    """) == """\
net.prototxt:2:105: error: layer "s" (Slice): 2 slice_points for 2 tops
  ...ce_point: 4 slice_point: 9 } }
                              ^
  hint: give one slice_point fewer than tops (1 here), or none to split evenly"""


def test_slice_point_beyond_the_axis(tmp_path, monkeypatch):
    assert _error(tmp_path, monkeypatch, """
        layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 13 dim: 5 } } }
        layer { name: "s" type: "Slice" bottom: "x" top: "a" top: "b" slice_param { axis: -1 slice_point: 6 } }
    """) == """\
net.prototxt:2:99: error: layer "s" (Slice): slice_point 6 is beyond axis 2 of "x" (2, 13, 5)
  ... { axis: -1 slice_point: 6 } }
                              ^
  hint: points must lie between 1 and 5"""


def test_slice_even_split_needs_divisibility(tmp_path, monkeypatch):
    assert _error(tmp_path, monkeypatch, """
        layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 13 dim: 5 } } }
        layer { name: "s" type: "Slice" bottom: "x" top: "a" top: "b" }
    """) == """\
net.prototxt:2:15: error: layer "s" (Slice): axis 1 of "x" (2, 13, 5) has 13 entries, which 2 tops cannot share \
evenly
  layer { name: "s" type: "Slice" bottom: "x" top: "a" top: "b" }
                ^^^
  hint: give slice_point values to choose uneven sizes"""


def test_shared_ip_weights_with_different_k(tmp_path, monkeypatch):
    assert _error(tmp_path, monkeypatch, """
        layer { name: "in" type: "Input" top: "a" top: "b"
                input_param { shape { dim: 2 dim: 3 dim: 5 dim: 7 } shape { dim: 2 dim: 11 } } }
        layer { name: "fa" type: "InnerProduct" bottom: "a" top: "fa" param { name: "w" }
                inner_product_param { num_output: 13 } }
        layer { name: "fb" type: "InnerProduct" bottom: "b" top: "fb" param { name: "w" }
                inner_product_param { num_output: 13 } }
    """) == """\
net.prototxt:5:63: error: layer "fb" (InnerProduct): shared param "w" has shape (13, 11) here but (13, 105) in its \
owner layer "fa"
  layer { name: "fb" type: "InnerProduct" bottom: "b" top: "fb" param { name: "w" }
                                                                ^^^^^
  hint: layers sharing a param by name need the same blob shape (share_mode: PERMISSIVE only needs the same count)"""


def test_scale_two_bottom_mismatch(tmp_path, monkeypatch):
    assert _error(tmp_path, monkeypatch, """
        layer { name: "in" type: "Input" top: "x" top: "g"
                input_param { shape { dim: 2 dim: 3 dim: 13 dim: 17 } shape { dim: 3 dim: 17 } } }
        layer { name: "sc" type: "Scale" bottom: "x" bottom: "g" top: "y" }
    """) == """\
net.prototxt:3:54: error: layer "sc" (Scale): "g" (3, 17) must match axes 1..2 of "x" (2, 3, 13, 17), which are (3, \
13)
  layer { name: "sc" type: "Scale" bottom: "x" bottom: "g" top: "y" }
                                                       ^^^
  hint: the second bottom lines up with the first from scale_param { axis } (here 1) on"""


def test_ip_needs_num_output(tmp_path, monkeypatch):
    assert _error(tmp_path, monkeypatch, """
        layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }
        layer { name: "fc" type: "InnerProduct" bottom: "x" top: "y" }
    """) == """\
net.prototxt:2:15: error: layer "fc" (InnerProduct): num_output is required and must be positive
  layer { name: "fc" type: "InnerProduct" bottom: "x" top: "y" }
                ^^^^
  hint: inner_product_param { num_output: N } sets the number of outputs"""


def test_concat_axis_and_concat_dim_together(tmp_path, monkeypatch):
    assert _error(tmp_path, monkeypatch, """
        layer { name: "in" type: "Input" top: "a" input_param { shape { dim: 2 dim: 3 } } }
        layer { name: "c" type: "Concat" bottom: "a" bottom: "a" top: "c" concat_param { axis: 1 concat_dim: 1 } }
    """) == """\
net.prototxt:2:102: error: layer "c" (Concat): sets both axis and concat_dim
  ...am { axis: 1 concat_dim: 1 } }
                              ^
  hint: concat_dim is the legacy name of axis: keep axis only"""


def test_eltwise_coeff_rules(tmp_path, monkeypatch):
    assert _error(tmp_path, monkeypatch, """
        layer { name: "in" type: "Input" top: "a" top: "b" input_param { shape { dim: 2 dim: 3 } } }
        layer { name: "p" type: "Eltwise" bottom: "a" bottom: "b" top: "p"
                eltwise_param { operation: PROD coeff: 1 coeff: -1 } }
    """) == """\
net.prototxt:3:48: error: layer "p" (Eltwise): coeff is only for operation SUM
  eltwise_param { operation: PROD coeff: 1 coeff: -1 } }
                                         ^
  hint: PROD multiplies the bottoms as they are; remove coeff"""


def test_batchnorm_statistics_cannot_be_trained(tmp_path, monkeypatch):
    assert _error(tmp_path, monkeypatch, """
        layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 dim: 5 dim: 7 } } }
        layer { name: "bn" type: "BatchNorm" bottom: "x" top: "x" param { lr_mult: 0 } param { decay_mult: 0 } }
    """) == """\
net.prototxt:2:80: error: layer "bn" (BatchNorm): param 1 has lr_mult 1 (the default); BatchNorm's statistics are \
not trained
  ..."x" param { lr_mult: 0 } param { decay_mult: 0 } }
                              ^^^^^
  hint: use lr_mult: 0 (or leave the param blocks out: Caffe adds them); the trainable gamma/beta belong in a Scale \
layer"""


def _shapes(tmp_path, monkeypatch, inputs: str, layer: str):
    source = f'layer {{ name: "in" type: "Input" {inputs} }}\n' if inputs else ""
    a = _analyze(tmp_path, monkeypatch, source + layer + "\n")
    info = a.layers[-1]
    return info.top_shapes, info.blob_shapes


@pytest.mark.parametrize("inputs, layer, tops, blobs", [
    # Reshape: a negative axis counts from after the last axis; 0 copies relative to axis.
    ('top: "x" input_param { shape { dim: 2 dim: 3 dim: 13 } }',
     'layer { name: "r" type: "Reshape" bottom: "x" top: "y" reshape_param { shape { dim: 1 dim: 1 } axis: -1 } }',
     [(2, 3, 13, 1, 1)], []),
    ('top: "x" input_param { shape { dim: 2 dim: 3 dim: 13 } }',
     'layer { name: "r" type: "Reshape" bottom: "x" top: "y" '
     'reshape_param { shape { dim: 0 dim: -1 } axis: 1 num_axes: 2 } }', [(2, 3, 13)], []),
    ('top: "x" input_param { shape { dim: 2 dim: 3 dim: 13 } }',
     'layer { name: "r" type: "Reshape" bottom: "x" top: "y" reshape_param { shape { dim: 3 } axis: 1 num_axes: 1 } }',
     [(2, 3, 13)], []),
    # Flatten with end_axis = axis - 1 inserts an axis of 1 (an empty product), as Caffe does.
    ('top: "x" input_param { shape { dim: 2 dim: 3 dim: 13 } }',
     'layer { name: "f" type: "Flatten" bottom: "x" top: "y" flatten_param { axis: 2 end_axis: 1 } }',
     [(2, 3, 1, 13)], []),
    # ArgMax without axis pads to max(3, ndim) axes.
    ('top: "x" input_param { shape { dim: 2 dim: 3 dim: 5 dim: 7 dim: 11 } }',
     'layer { name: "m" type: "ArgMax" bottom: "x" top: "y" argmax_param { top_k: 4 out_max_val: true } }',
     [(2, 2, 4, 1, 1)], []),
    # MVN reads its bottom through Caffe's legacy (N, C, H, W) accessors.
    ('top: "x" input_param { shape { dim: 2 dim: 3 } }',
     'layer { name: "m" type: "MVN" bottom: "x" top: "y" }', [(2, 3, 1, 1)], []),
    # Scale: num_axes -1 spans every trailing axis, 0 is a scalar; bias_term adds a beta of the same shape.
    ('top: "x" input_param { shape { dim: 2 dim: 3 dim: 5 dim: 7 } }',
     'layer { name: "s" type: "Scale" bottom: "x" top: "y" scale_param { axis: -2 num_axes: -1 bias_term: true } }',
     [(2, 3, 5, 7)], [(5, 7), (5, 7)]),
    ('top: "x" input_param { shape { dim: 2 dim: 3 dim: 5 dim: 7 } }',
     'layer { name: "s" type: "Scale" bottom: "x" top: "y" scale_param { num_axes: 0 } }', [(2, 3, 5, 7)], [()]),
    ('top: "x" top: "g" input_param { shape { dim: 2 dim: 3 dim: 5 dim: 7 } shape { dim: 5 dim: 7 } }',
     'layer { name: "s" type: "Scale" bottom: "x" bottom: "g" top: "y" scale_param { axis: 2 bias_term: true } }',
     [(2, 3, 5, 7)], [(5, 7)]),
    ('top: "x" top: "b" input_param { shape { dim: 2 dim: 3 dim: 5 dim: 7 } shape { } }',
     'layer { name: "s" type: "Bias" bottom: "x" bottom: "b" top: "y" bias_param { axis: 9 } }',
     [(2, 3, 5, 7)], []),
    ('top: "x" input_param { shape { dim: 2 dim: 3 } }',
     'layer { name: "fc" type: "InnerProduct" bottom: "x" top: "y" '
     'inner_product_param { num_output: 5 transpose: true bias_term: false } }', [(2, 5)], [(3, 5)]),
    ('top: "x" input_param { shape { dim: 2 dim: 3 dim: 5 } }',
     'layer { name: "c" type: "Concat" bottom: "x" bottom: "x" top: "y" concat_param { concat_dim: 2 } }',
     [(2, 3, 10)], []),
    ('top: "x" input_param { shape { dim: 2 dim: 3 dim: 5 } }',
     'layer { name: "c" type: "Crop" bottom: "x" bottom: "x" top: "y" crop_param { axis: 1 } }', [(2, 3, 5)], []),
    ('', 'layer { name: "p" type: "Parameter" top: "w" parameter_param { shape { dim: 13 dim: 17 } } }',
     [(13, 17)], [(13, 17)]),
])
def test_shapes(tmp_path, monkeypatch, inputs, layer, tops, blobs):
    assert _shapes(tmp_path, monkeypatch, inputs, layer) == (tops, blobs)


def test_costs(tmp_path, monkeypatch):
    a = _analyze(tmp_path, monkeypatch, """
        layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 dim: 5 dim: 7 } } }
        layer { name: "fc" type: "InnerProduct" bottom: "x" top: "fc" inner_product_param { num_output: 11 } }
        layer { name: "sc" type: "Scale" bottom: "x" top: "sc" scale_param { bias_term: true } }
        layer { name: "sum" type: "Eltwise" bottom: "x" bottom: "sc" bottom: "x" top: "sum" }
        layer { name: "bn" type: "BatchNorm" bottom: "sum" top: "sum" }
        layer { name: "pr" type: "PReLU" bottom: "sum" top: "pr" prelu_param { channel_shared: true } }
    """)
    fc, sc, add, bn, pr = (a.info(n) for n in ("fc", "sc", "sum", "bn", "pr"))
    assert (fc.macs, fc.other_ops, fc.params) == (2 * 105 * 11, 2 * 11, 105 * 11 + 11)
    assert (sc.macs, sc.other_ops, sc.params) == (0, 210, 6)  # MACs: conv and fc only
    assert add.other_ops == 2 * 210
    assert (bn.params, bn.state) == (0, 3 + 3 + 1)
    assert pr.blob_shapes == [()] and pr.params == 1
    assert a.info("sum").rf and a.info("sc").rf  # merge and same keep the spatial field


def test_crop_shifts_the_receptive_field(tmp_path, monkeypatch):
    a = _analyze(tmp_path, monkeypatch, """
        layer { name: "in" type: "Input" top: "x" top: "r"
                input_param { shape { dim: 2 dim: 3 dim: 13 dim: 17 } shape { dim: 2 dim: 3 dim: 5 dim: 7 } } }
        layer { name: "c" type: "Crop" bottom: "x" bottom: "r" top: "y" crop_param { offset: 2 offset: 3 } }
    """)
    rf = a.info("c").rf["y"]
    assert (rf.size, rf.jump, rf.start) == ((1, 1), (1, 1), (2.0, 3.0))
