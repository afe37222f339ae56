"""Every diagnostic kind of the front end, pinned verbatim: location, message, caret and hint.

Each case is a small net; the expected text is what a user reads.  A change to any of these messages must be
deliberate (edit the expectation here in the same commit).
"""
from __future__ import annotations

import pytest

from netc.errors import Diagnostics, NetcError
from netc.frontend import load_net_param
from netc.graph import build_net

INPUT = 'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } } }\n'


def diagnose(text: str, phase: str = "TEST", strict: bool = False) -> str:
    """Everything the front end says about a net named x.prototxt, rendered."""
    diags = Diagnostics()
    try:
        ns = load_net_param(text, name="x.prototxt", strict=strict, diags=diags)
        build_net(ns, phase, (), None, diags)
    except NetcError as e:
        return e.render()
    return "\n".join(d.render() for d in diags.items)


CASES = {
    'unclosed': (
        'layer {\n  name: "a"\n',
        'x.prototxt:1:7: error: expected "}" to close "layer {" opened on line 1, found the end of the file\n  layer {\n        ^',
    ),
    'extra_close': (
        'name: "x"\n}\n',
        'x.prototxt:2:1: error: unexpected "}": no message is open here\n  }\n  ^',
    ),
    'missing_colon': (
        'layer {\n  name "conv1"\n}\n',
        'x.prototxt:2:8: error: expected ":" between field name "name" and its value\n  name "conv1"\n       ^^^^^^^\n  hint: write name: "conv1"',
    ),
    'unterminated': (
        'name: "abc\n',
        'x.prototxt:1:7: error: string literal is missing its closing quote "\n  name: "abc\n        ^^^^\n  hint: strings end on the line where they start; adjacent strings are joined: "a" "b"',
    ),
    'bad_char': (
        'name: "x" @\n',
        'x.prototxt:1:11: error: unexpected character "@"\n  name: "x" @\n            ^',
    ),
    'mismatch': (
        'layer <\n  name: "a"\n}\n',
        'x.prototxt:3:1: error: expected ">" to close the "<" on line 1, found "}"\n  }\n  ^\n  hint: a message opened with "{" closes with "}", one opened with "<" with ">"',
    ),
    'unknown_field': (
        'layer {\n  name: "a"\n  bottoms: "x"\n}\n',
        'x.prototxt:3:3: error: Message type "caffe.LayerParameter" has no field named "bottoms".\n  bottoms: "x"\n  ^^^^^^^\n  hint: did you mean "bottom"?',
    ),
    'unknown_field_owner': (
        'layer {\n  name: "a"\n  kernel_size: 3\n}\n',
        'x.prototxt:3:3: error: Message type "caffe.LayerParameter" has no field named "kernel_size".\n  kernel_size: 3\n  ^^^^^^^^^^^\n  hint: "kernel_size" is a field of "convolution_param" or "pooling_param"',
    ),
    'int_for_string': (
        'layer {\n  name: conv1\n}\n',
        'x.prototxt:2:9: error: Expected string but found: \'conv1\'\n  name: conv1\n        ^^^^^\n  hint: strings are quoted: name: "conv1"',
    ),
    'string_for_int': (
        'layer {\n  convolution_param { num_output: "96" }\n}\n',
        'x.prototxt:2:35: error: Couldn\'t parse integer: "96"\n  convolution_param { num_output: "96" }\n                                  ^^^^',
    ),
    'enum_bad': (
        'layer {\n  include { phase: TRIAN }\n}\n',
        'x.prototxt:2:20: error: Enum type "caffe.Phase" has no value named TRIAN.\n  include { phase: TRIAN }\n                   ^^^^^\n  hint: did you mean TRAIN?',
    ),
    'enum_number': (
        'layer {\n  phase: 7\n}\n',
        'x.prototxt:2:10: error: Enum type "caffe.Phase" has no value with number 7.\n  phase: 7\n         ^\n  hint: one of TRAIN, TEST',
    ),
    'enum_quoted': (
        'layer {\n  phase: "TRAIN"\n}\n',
        'x.prototxt:2:10: error: Enum type "caffe.Phase" has no value named "TRAIN".\n  phase: "TRAIN"\n         ^^^^^^^\n  hint: enum values are written without quotes: phase: TRAIN',
    ),
    'duplicate': (
        'layer {\n  name: "a"\n  name: "b"\n}\n',
        'x.prototxt:3:3: error: Message type "caffe.LayerParameter" should not have multiple "name" fields.\n  name: "b"\n  ^^^^\n  hint: name was already given on line 2; Caffe\'s parser refuses a second value for a non-repeated field',
    ),
    'duplicate_msg': (
        'layer {\n  convolution_param { num_output: 1 }\n  convolution_param { num_output: 2 }\n}\n',
        'x.prototxt:3:3: error: Message type "caffe.LayerParameter" should not have multiple "convolution_param" fields.\n  convolution_param { num_output: 2 }\n  ^^^^^^^^^^^^^^^^^\n  hint: convolution_param was already given on line 2; Caffe\'s parser refuses a second value for a non-repeated field',
    ),
    'range': (
        'layer {\n  convolution_param { num_output: -1 }\n}\n',
        'x.prototxt:2:35: error: Value out of range: -1\n  convolution_param { num_output: -1 }\n                                  ^^\n  hint: num_output is a uint32: 0 to 4294967295',
    ),
    'float_for_int': (
        'layer {\n  convolution_param { num_output: 1.5 }\n}\n',
        "x.prototxt:2:35: error: Couldn't parse integer: 1.5\n  convolution_param { num_output: 1.5 }\n                                  ^^^",
    ),
    'bool_bad': (
        'force_backward: yes\n',
        'x.prototxt:1:17: error: Expected "true" or "false".\n  force_backward: yes\n                  ^^^',
    ),
    'msg_for_scalar': (
        'name { }\n',
        'x.prototxt:1:1: error: Field "name" of "caffe.NetParameter" is a string, not a message.\n  name { }\n  ^^^^\n  hint: write name: <value>',
    ),
    'scalar_for_msg': (
        'layer: 5\n',
        'x.prototxt:1:8: error: Expected "{" for message field "layer" of "caffe.NetParameter".\n  layer: 5\n         ^\n  hint: write layer { ... }',
    ),
    'list_nonrepeated': (
        'name: ["a", "b"]\n',
        'x.prototxt:1:7: error: Field "name" of "caffe.NetParameter" is not repeated: a list [...] is not allowed.\n  name: ["a", "b"]\n        ^^^^^^^^^^',
    ),
    'required': (
        'layer {\n  name: "c"\n  clip_param { min: 0 }\n}\n',
        "x.prototxt:3:14: error: Message missing required field: layer[0].clip_param.max\n  clip_param { min: 0 }\n             ^^^^^^^^^^\n  hint: Caffe's parser refuses a message without its required fields",
    ),
    'bad_escape': (
        'name: "a\\qb"\n',
        'x.prototxt:1:7: error: Invalid escape sequence \\q in string literal\n  name: "a\\qb"\n        ^^^^^^',
    ),
    'two_errors': (
        'layer {\n  bottoms: "x"\n  convolution_param { num_output: -1 }\n}\n',
        'x.prototxt:2:3: error: Message type "caffe.LayerParameter" has no field named "bottoms".\n  bottoms: "x"\n  ^^^^^^^\n  hint: did you mean "bottom"?\nx.prototxt:3:35: error: Value out of range: -1\n  convolution_param { num_output: -1 }\n                                  ^^\n  hint: num_output is a uint32: 0 to 4294967295',
    ),
    'both_formats': (
        'layer { name: "a" type: "ReLU" }\nlayers { name: "b" type: RELU }\n',
        'x.prototxt:2:1: error: both "layer" and "layers" are given: a net is either in the current format or in the V1 format\n  layers { name: "b" type: RELU }\n  ^^^^^^',
    ),
    'input_dim': (
        'input: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 224\n',
        'x.prototxt:2:1: error: 3 input_dims given for 1 input ("data"): input_dim gives 4 dimensions (N, C, H, W) per input, so 4 are needed\n  input_dim: 1\n  ^^^^^^^^^',
    ),
    'ceil_mode': (
        INPUT + 'layer {\n  name: "p"\n  type: "Pooling"\n  bottom: "data"\n  top: "p"\n  pooling_param { kernel_size: 2 ceil_mode: false }\n}\n',
        'x.prototxt:7:34: warning: upgrade (ceil_mode): the fork field ceil_mode: false is read as round_mode: FLOOR; BVLC Caffe rejects ceil_mode (netc --strict does too)\n  pooling_param { kernel_size: 2 ceil_mode: false }\n                                 ^^^^^^^^^',
    ),
    'ceil_mode_then_round_mode': (
        INPUT + 'layer {\n  name: "p"\n  type: "Pooling"\n  bottom: "data"\n  top: "p"\n  pooling_param {\n    kernel_size: 2\n    ceil_mode: false\n    round_mode: CEIL\n  }\n}\n',
        'x.prototxt:9:5: error: ceil_mode (a fork field) and round_mode (BVLC\'s) are both given: keep round_mode\n  ceil_mode: false\n  ^^^^^^^^^\n  hint: round_mode is given on line 10; remove ceil_mode',
    ),
    'round_mode_then_ceil_mode': (
        INPUT + 'layer {\n  name: "p"\n  type: "Pooling"\n  bottom: "data"\n  top: "p"\n  pooling_param {\n    kernel_size: 2\n    round_mode: CEIL\n    ceil_mode: false\n  }\n}\n',
        'x.prototxt:10:5: error: ceil_mode (a fork field) and round_mode (BVLC\'s) are both given: keep round_mode\n  ceil_mode: false\n  ^^^^^^^^^\n  hint: round_mode is given on line 9; remove ceil_mode',
    ),
    'ceil_mode_twice': (
        INPUT + 'layer {\n  name: "p"\n  type: "Pooling"\n  bottom: "data"\n  top: "p"\n  pooling_param {\n    kernel_size: 2\n    ceil_mode: false\n    ceil_mode: true\n  }\n}\n',
        'x.prototxt:9:5: warning: upgrade (ceil_mode): the fork field ceil_mode: false is read as round_mode: FLOOR; BVLC Caffe rejects ceil_mode (netc --strict does too)\n  ceil_mode: false\n  ^^^^^^^^^\n'
        'x.prototxt:10:5: error: Message type "caffe.PoolingParameter" should not have multiple "ceil_mode" fields.\n  ceil_mode: true\n  ^^^^^^^^^\n  hint: ceil_mode was already given on line 9; Caffe\'s parser refuses a second value for a non-repeated field',
    ),
    'ignored_transform_field': (
        'layer {\n  name: "data"\n  type: "Data"\n  top: "data"\n  top: "label"\n  data_param { source: "db" batch_size: 2 crop_size: 227 }\n}\n',
        'x.prototxt:2:3: warning: upgrade (ignored transform fields): layer "data": data_param.crop_size is ignored by Caffe (only transform_param is read); move it into transform_param\n  name: "data"\n  ^^^^',
    ),
    'unknown_bottom': (
        INPUT + 'layer {\n  name: "pool1"\n  type: "Pooling"\n  bottom: "data"\n  top: "pool1"\n  pooling_param { kernel_size: 2 }\n}\nlayer {\n  name: "conv2"\n  type: "Convolution"\n  bottom: "pool_1"\n  top: "conv2"\n  convolution_param { num_output: 4 kernel_size: 1 }\n}\n',
        'x.prototxt:12:11: error: layer "conv2" (Convolution): unknown bottom "pool_1"\n  bottom: "pool_1"\n          ^^^^^^^^\n  hint: did you mean "pool1"?',
    ),
    'bottom_excluded': (
        'layer {\n  name: "data"\n  type: "Input"\n  top: "data"\n  include { phase: TRAIN }\n  input_param { shape { dim: 1 } }\n}\nlayer {\n  name: "r"\n  type: "ReLU"\n  bottom: "data"\n  top: "r"\n}\n',
        'x.prototxt:11:11: error: layer "r" (ReLU): unknown bottom "data"\n  bottom: "data"\n          ^^^^^^\n  hint: "data" is produced by layer "data" (Input), which the include/exclude rules leave out in TEST',
    ),
    'bottom_later': (
        INPUT + 'layer {\n  name: "r2"\n  type: "ReLU"\n  bottom: "r1"\n  top: "r2"\n}\nlayer {\n  name: "r1"\n  type: "ReLU"\n  bottom: "data"\n  top: "r1"\n}\n',
        'x.prototxt:5:11: error: layer "r2" (ReLU): unknown bottom "r1"\n  bottom: "r1"\n          ^^^^\n  hint: "r1" is produced later, by layer "r1" (ReLU): layers run in file order',
    ),
    'top_twice': (
        INPUT + 'layer {\n  name: "a"\n  type: "ReLU"\n  bottom: "data"\n  top: "x"\n}\nlayer {\n  name: "b"\n  type: "Sigmoid"\n  bottom: "data"\n  top: "x"\n}\n',
        'x.prototxt:12:8: error: layer "b" (Sigmoid): top "x" is already produced by layer "a" (ReLU) (line 3)\n  top: "x"\n       ^^^\n  hint: a blob has one producer; name this top differently, e.g. "b"',
    ),
    'inplace_after_read': (
        INPUT + 'layer {\n  name: "a"\n  type: "Sigmoid"\n  bottom: "data"\n  top: "s"\n}\nlayer {\n  name: "relu"\n  type: "ReLU"\n  bottom: "data"\n  top: "data"\n}\n',
        'x.prototxt:12:8: error: layer "relu" (ReLU): works in place on "data", which layer "a" (Sigmoid) already reads\n  top: "data"\n       ^^^^^^\n  hint: Caffe splits "data" for its readers and then refuses this layer ("Top blob \'data\' produced by multiple sources"); move it before layer "a" (Sigmoid) or give it its own top',
    ),
    'bottom_arity': (
        INPUT + 'layer {\n  name: "r"\n  type: "ReLU"\n  bottom: "data"\n  bottom: "data"\n  top: "r"\n}\n',
        'x.prototxt:6:11: error: layer "r" (ReLU): takes exactly 1 bottom, got 2\n  bottom: "data"\n          ^^^^^^',
    ),
    'top_arity': (
        INPUT + 'layer {\n  name: "p"\n  type: "Pooling"\n  bottom: "data"\n  top: "p"\n  top: "mask"\n  pooling_param { pool: AVE kernel_size: 2 }\n}\n',
        'x.prototxt:7:8: error: layer "p" (Pooling): takes exactly 1 top, got 2\n  top: "mask"\n       ^^^^^^\n  hint: only MAX pooling has a second top (the argmax mask)',
    ),
    'unknown_type': (
        INPUT + 'layer {\n  name: "c"\n  type: "Convolutoin"\n  bottom: "data"\n  top: "c"\n}\n',
        'x.prototxt:4:9: error: layer "c" (Convolutoin): unknown layer type "Convolutoin"\n  type: "Convolutoin"\n        ^^^^^^^^^^^^^\n  hint: did you mean "Convolution" or "Deconvolution"? Otherwise, a type from a Caffe fork needs a shape rule (@netc.layers.register) or its tops\' shapes: --input c=NxCxHxW',
    ),
    'case_type': (
        INPUT + 'layer {\n  name: "r"\n  type: "relu"\n  bottom: "data"\n  top: "r"\n}\n',
        'x.prototxt:4:9: error: layer "r" (relu): unknown layer type "relu"\n  type: "relu"\n        ^^^^^^\n  hint: did you mean "ReLU"? (layer types are case-sensitive)',
    ),
    'no_type': (
        INPUT + 'layer {\n  name: "r"\n  bottom: "data"\n  top: "r"\n}\n',
        'x.prototxt:3:3: error: layer "r": has no type\n  name: "r"\n  ^^^^\n  hint: every layer needs a type, e.g. type: "Convolution"',
    ),
    'incl_excl': (
        INPUT + 'layer {\n  name: "r"\n  type: "ReLU"\n  bottom: "data"\n  top: "r"\n  include { phase: TRAIN }\n  exclude { phase: TEST }\n}\n',
        'x.prototxt:8:3: error: layer "r" (ReLU): has both include and exclude rules\n  exclude { phase: TEST }\n  ^^^^^^^\n  hint: Caffe accepts either include rules or exclude rules',
    ),
    'loss_weight_count': (
        INPUT + 'layer {\n  name: "s"\n  type: "Slice"\n  bottom: "data"\n  top: "a"\n  top: "b"\n  loss_weight: 1\n}\n',
        'x.prototxt:8:16: error: layer "s" (Slice): loss_weight is given once for 2 tops\n  loss_weight: 1\n               ^\n  hint: give loss_weight once per top, or not at all',
    ),
    'swl_two_tops': (
        INPUT + 'layer {\n  name: "label"\n  type: "Input"\n  top: "label"\n  input_param { shape { dim: 2 } }\n}\nlayer {\n  name: "loss"\n  type: "SoftmaxWithLoss"\n  bottom: "data"\n  bottom: "label"\n  top: "loss"\n  top: "prob"\n}\n',
        'x.prototxt:14:8: error: layer "loss" (SoftmaxWithLoss): Caffe cannot build this loss with a second top\n  top: "prob"\n       ^^^^^^\n  hint: its internal Softmax copies the layer\'s loss weights but has one top (Check failed: top.size() == num_loss_weights); add a separate Softmax layer for the probabilities',
    ),
    'flatten_inplace': (
        INPUT + 'layer {\n  name: "f"\n  type: "Flatten"\n  bottom: "data"\n  top: "data"\n}\n',
        'x.prototxt:6:8: error: layer "f" (Flatten): cannot work in place (top "data" is its bottom)\n  top: "data"\n       ^^^^^^\n  hint: Caffe\'s Flatten layer checks that its top is not its bottom; give the top its own name',
    ),
    'eltwise_inplace': (
        INPUT + 'layer {\n  name: "e"\n  type: "Eltwise"\n  bottom: "data"\n  bottom: "data"\n  top: "data"\n}\n',
        'x.prototxt:7:8: warning: layer "e" (Eltwise): works in place on "data", which Caffe does not support for Eltwise\n  top: "data"\n       ^^^^^^\n  hint: Caffe\'s Eltwise zeroes its top before adding the bottoms, destroying bottom 0',
    ),
    'dup_name': (
        INPUT + 'layer {\n  name: "data"\n  type: "ReLU"\n  bottom: "data"\n  top: "r"\n}\n',
        'x.prototxt:3:9: warning: layer "data" (ReLU): a second layer is named "data"\n  name: "data"\n        ^^^^^^\n  hint: the first is on line 1; weights load by layer name',
    ),
    'propagate_down': (
        INPUT + 'layer {\n  name: "r"\n  type: "ReLU"\n  bottom: "data"\n  top: "r"\n  propagate_down: true\n  propagate_down: false\n}\n',
        'x.prototxt:7:3: error: layer "r" (ReLU): propagate_down is given twice for 1 bottom\n  propagate_down: true\n  ^^^^^^^^^^^^^^\n  hint: give it once per bottom, or not at all',
    ),
    'inplace_wrong_index': (
        INPUT + 'layer {\n  name: "label"\n  type: "Input"\n  top: "y"\n  input_param { shape { dim: 2 } }\n}\nlayer {\n  name: "e"\n  type: "Eltwise"\n  bottom: "data"\n  bottom: "y"\n  top: "y"\n}\n',
        'x.prototxt:13:8: error: layer "e" (Eltwise): top "y" is already produced by layer "label" (Input) (line 3)\n  top: "y"\n       ^^^\n  hint: a layer works in place only when top 0 equals bottom 0; here it is bottom 1',
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_diagnostic_text(case):
    text, expected = CASES[case]
    assert diagnose(text) == expected


def test_ceil_mode_is_refused_with_strict():
    text = CASES["ceil_mode"][0]
    assert diagnose(text, strict=True) == (
        'x.prototxt:7:34: error: Message type "caffe.PoolingParameter" has no field named "ceil_mode".\n'
        '  pooling_param { kernel_size: 2 ceil_mode: false }\n'
        '                                 ^^^^^^^^^\n'
        '  hint: "ceil_mode" exists only in Caffe forks; BVLC Caffe (and --strict) rejects it')


def test_ceil_mode_maps_to_round_mode():
    from netc import caffe_pb2
    ns = load_net_param(CASES["ceil_mode"][0], name="x.prototxt")
    pool = ns.param.layer[1].pooling_param
    assert pool.HasField("round_mode") and pool.round_mode == caffe_pb2.PoolingParameter.FLOOR


def test_every_independent_error_is_reported():
    text = 'layer {\n  bottoms: "x"\n  name: 1\n  convolution_param { num_output: -1 group: "2" }\n}\nlayer { phase: TRIAN }\n'
    rendered = diagnose(text)
    assert rendered.count(": error: ") == 5
