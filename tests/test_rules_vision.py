"""Shape rules of the vision layers (Convolution, Deconvolution, Im2col, Pooling, SPP, LRN).

Oracles: the real Caffe's outputs in ../shared/golden (single-layer cases and every pooling layer of
GoogLeNet and AlexNet-at-224), published parameter and MAC counts worked out by hand in the comments, and
the diagnostics pinned verbatim.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf import text_format

import netc
from netc.analysis import analyze
from netc.errors import ShapeError
from netc.layers.vision import c_div, conv_out, deconv_out, pool_out, spp_levels

from golden import GOLDEN, SHARED, analyze_case, check_case, layer_cases, needs_golden

VARIANTS = GOLDEN / "shapes" / "variants"
VISION = ("Convolution", "Deconvolution", "Im2col", "Pooling", "SPP", "LRN")


# ----------------------------------------------------------------------------------------------------------
# Real Caffe

@needs_golden
@pytest.mark.parametrize("case", layer_cases(*VISION))
def test_golden(case):
    check_case(case)


def _pool_fields(pp) -> tuple:
    """(kernel, stride, pad) as (h, w) pairs, read from a PoolingParameter independently of netc's resolver."""
    def pair(name: str, default: int) -> tuple:
        if pp.HasField(name + "_h"):
            return getattr(pp, name + "_h"), getattr(pp, name + "_w")
        v = getattr(pp, name) if pp.HasField(name) else default
        return v, v
    kernel = (pp.kernel_size,) * 2 if pp.HasField("kernel_size") else (pp.kernel_h, pp.kernel_w)
    return kernel, pair("stride", 1), pair("pad", 0)


def _pool_cases() -> list:
    return [c for c in layer_cases("Pooling")
            if "shape_facts" in json.loads((c.values[0] / "case.json").read_text())]


@needs_golden
@pytest.mark.parametrize("case", _pool_cases())
def test_golden_pool_shape_facts(case):
    a, meta = analyze_case(case)
    facts = meta["shape_facts"]
    info = a.info(meta["layer_name"])
    pp = info.layer.param.pooling_param
    (kh, kw), (sh, sw), (ph, pw) = _pool_fields(pp)
    h, w = facts["input_hw"]
    assert list(info.top_shapes[0][2:]) == facts["caffe_output_hw"] == facts["expected_hw"]
    # The case's own arithmetic, recomputed here: floor and ceil of (n + 2p - k) / s, plus one.
    assert [(h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1] == facts["floor_formula_hw"]
    assert [-(-(h + 2 * ph - kh) // sh) + 1, -(-(w + 2 * pw - kw) // sw) + 1] == facts["ceil_formula_without_clip_hw"]
    clip = bool(ph or pw)
    assert [pool_out(h, kh, sh, ph, False, clip), pool_out(w, kw, sw, pw, False, clip)] == facts["floor_formula_hw"]
    ceil = pp.round_mode == pp.CEIL
    assert [pool_out(h, kh, sh, ph, ceil, clip), pool_out(w, kw, sw, pw, ceil, clip)] == facts["caffe_output_hw"]


def _variant_pools() -> list:
    out = []
    for f in sorted(VARIANTS.glob("*_pools.json")) if VARIANTS.is_dir() else []:
        meta = json.loads(f.read_text())
        own = VARIANTS / (f.name[: -len("_pools.json")] + ".prototxt")
        source = own if own.is_file() else SHARED / "corpus" / "bvlc_caffe" / meta["source"]
        for entry in meta["pooling_layers"]:
            out.append(pytest.param(source, meta["phase"], entry, id=f"{f.stem}/{entry['layer']}"))
    return out


@needs_golden
@pytest.mark.parametrize("source, phase, entry", _variant_pools())
def test_variant_pools(tmp_path, source, phase, entry):
    """Every pooling layer of GoogLeNet (deploy and TRAIN) and AlexNet at 224, fed Caffe's input shape."""
    layer = netc.load_net(source, phase).layer(entry["layer"])
    pp = text_format.MessageToString(layer.param.pooling_param, as_one_line=True)
    a = _analyze(tmp_path, f'''
layer {{ name: "pool" type: "Pooling" bottom: "data" top: "out" pooling_param {{ {pp} }} }}''', entry["in"])
    assert list(a.info("pool").top_shapes[0]) == entry["out"]
    (kh, kw), (sh, sw), (ph, pw) = entry["kernel"], entry["stride"], entry["pad"]
    h, w = entry["in"][2:]
    clip = bool(ph or pw)
    ceil = entry["round_mode"] == "CEIL"
    assert [pool_out(h, kh, sh, ph, ceil, clip), pool_out(w, kw, sw, pw, ceil, clip)] == entry["out"][2:]
    assert [pool_out(h, kh, sh, ph, False, clip), pool_out(w, kw, sw, pw, False, clip)] == entry["floor_formula_hw"]


# ----------------------------------------------------------------------------------------------------------
# The integer formulas

def test_c_division_truncates_toward_zero():
    assert c_div(7, 2) == 3
    assert c_div(-3, 4) == 0  # Python: -3 // 4 == -1
    assert c_div(-7, 2) == -3


def test_conv_out():
    assert conv_out(227, 11, 4) == 55           # (227 - 11)/4 + 1
    assert conv_out(224, 11, 4) == 54           # 213/4 = 53.25 -> 53, + 1
    assert conv_out(13, 3, 1, 1) == 13
    assert conv_out(13, 3, 1, 0, 2) == 9         # extent 2*(3-1)+1 = 5: (13 - 5)/1 + 1
    # Input short of the kernel by less than the stride: C gives (2 - 5)/4 + 1 = 0 + 1 = 1, floor would give 0.
    assert conv_out(2, 5, 4) == 1
    assert conv_out(1, 5, 1) == -3               # (1 - 5)/1 + 1


def test_deconv_out():
    assert deconv_out(7, 4, 2, 1) == 14          # 2*(7-1) + 4 - 2*1
    assert deconv_out(5, 3) == 7                 # 1*(5-1) + 3
    assert deconv_out(5, 3, 1, 0, 2) == 9        # extent 5


def test_pool_out():
    assert pool_out(112, 3, 2, 0) == 56          # ceil(109/2) + 1; floor would give 55
    assert pool_out(112, 3, 2, 0, ceil=False) == 55
    assert pool_out(3, 2, 2, 1) == 2             # ceil(3/2)+1 = 3, then (3-1)*2 = 4 >= 3+1: clipped
    assert pool_out(6, 1, 3, 0) == 3             # no pad, no clip: the last window is empty (PyTorch: 2)
    assert pool_out(6, 1, 3, 0, clip=True) == 2  # the clip runs when the *other* axis has a pad


def test_spp_levels():
    # 13x13: bins 1 -> k 13 pad 0; bins 2 -> k 7, pad (14-13+1)/2 = 1; bins 4 -> k 4, pad (16-13+1)/2 = 2.
    assert spp_levels(13, 13, 3) == [((13, 13), (13, 13), (0, 0)), ((7, 7), (7, 7), (1, 1)), ((4, 4), (4, 4), (2, 2))]


# ----------------------------------------------------------------------------------------------------------
# Small nets

def _net_text(body: str, shape) -> str:
    dims = " ".join(f"dim: {d}" for d in shape)
    return f'name: "t"\nlayer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ {dims} }} }} }}{body}\n'


def _analyze(tmp_path: Path, body: str, shape=(2, 3, 13, 17)):
    path = tmp_path / "x.prototxt"
    path.write_text(_net_text(body, shape))
    return analyze(netc.load_net(path))


def _error(tmp_path: Path, body: str, shape=(2, 3, 13, 17)) -> str:
    with pytest.raises(ShapeError) as e:
        _analyze(tmp_path, body, shape)
    return e.value.render().replace(str(tmp_path / "x.prototxt"), "x.prototxt")


def _warnings(tmp_path: Path, body: str, shape=(2, 3, 13, 17)) -> str:
    a = _analyze(tmp_path, body, shape)
    return "\n".join(d.render() for d in a.diagnostics if d.severity == "warning").replace(
        str(tmp_path / "x.prototxt"), "x.prototxt")


def _conv(param: str, name: str = "conv", bottom: str = "data", top: str | None = None,
          type_: str = "Convolution") -> str:
    return f'''
layer {{
  name: "{name}"
  type: "{type_}"
  bottom: "{bottom}"
  top: "{top or name}"
  convolution_param {{ {param} }}
}}'''


def _pool(param: str, name: str = "pool", bottom: str = "data", tops=("pool",)) -> str:
    top_lines = "".join(f'\n  top: "{t}"' for t in tops)
    return f'''
layer {{
  name: "{name}"
  type: "Pooling"
  bottom: "{bottom}"{top_lines}
  pooling_param {{ {param} }}
}}'''


def _lrn(param: str) -> str:
    return f'''
layer {{
  name: "norm"
  type: "LRN"
  bottom: "data"
  top: "norm"
  lrn_param {{ {param} }}
}}'''


def test_published_conv_5x5(tmp_path):
    # 5x5 conv, 200 maps, stride 1, pad 2 on 1x3x150x100:
    # params 200*3*5*5 + 200 = 15,200; MACs 200*3*25 per output pixel * 200*150*100 pixels... per map:
    # 200 maps * 150*100 pixels * 3*25 = 225,000,000.
    a = _analyze(tmp_path, _conv("num_output: 200 kernel_size: 5 stride: 1 pad: 2"), (1, 3, 150, 100))
    info = a.info("conv")
    assert info.top_shapes == [(1, 200, 150, 100)]
    assert info.params == 15_200
    assert info.macs == 225_000_000
    assert info.other_ops == 200 * 150 * 100  # one bias add per output element


def test_published_conv_192_to_256(tmp_path):
    # 192 -> 256 channels, 3x3 pad 1 at 32x32: 256 * 32*32 * 192*9 = 452,984,832 MACs.
    a = _analyze(tmp_path, _conv("num_output: 256 kernel_size: 3 pad: 1"), (1, 192, 32, 32))
    assert a.info("conv").macs == 452_984_832


def test_published_bottleneck(tmp_path):
    # 1x1 to 96: 96 * 1024 * 192 = 18,874,368; then 3x3 to 256: 256 * 1024 * 96*9 = 226,492,416.
    # Sum 245,366,784.
    a = _analyze(tmp_path, _conv("num_output: 96 kernel_size: 1", "reduce")
                 + _conv("num_output: 256 kernel_size: 3 pad: 1", "conv", "reduce"), (1, 192, 32, 32))
    assert a.info("reduce").macs + a.info("conv").macs == 245_366_784


def test_published_three_stride2(tmp_path):
    # 3 -> 100 -> 200 -> 400 maps, 3x3: (3*9*100 + 100) + (100*9*200 + 200) + (200*9*400 + 400)
    # = 2,800 + 180,200 + 720,400 = 903,400.  Sizes 200x300 -> 100x150 -> 50x75 -> 25x38.
    body = (_conv("num_output: 100 kernel_size: 3 stride: 2 pad: 1", "c1")
            + _conv("num_output: 200 kernel_size: 3 stride: 2 pad: 1", "c2", "c1")
            + _conv("num_output: 400 kernel_size: 3 stride: 2 pad: 1", "c3", "c2"))
    a = _analyze(tmp_path, body, (1, 3, 200, 300))
    assert a.params == 903_400
    assert a.info("c3").top_shapes == [(1, 400, 25, 38)]


def test_receptive_field_alexnet(tmp_path):
    # conv1 k11 s4: size 1 + (11-1)*1 = 11, jump 1*4 = 4.
    # pool1 k3 s2: size 11 + (3-1)*4 = 19, jump 4*2 = 8.
    body = (_conv("num_output: 96 kernel_size: 11 stride: 4", "conv1")
            + _pool("pool: MAX kernel_size: 3 stride: 2", "pool1", "conv1", ("pool1",)))
    a = _analyze(tmp_path, body, (1, 3, 227, 227))
    assert a.info("conv1").top_shapes == [(1, 96, 55, 55)]
    assert a.info("pool1").top_shapes == [(1, 96, 27, 27)]
    rf1 = a.info("conv1").rf["conv1"]
    rf2 = a.info("pool1").rf["pool1"]
    assert (rf1.size, rf1.jump) == ((11, 11), (4, 4))
    assert (rf2.size, rf2.jump) == ((19, 19), (8, 8))


def test_conv_rectangular_and_group(tmp_path):
    # N=2, C=6, 13x17; group 3, 9 outputs, kernel 3x5, stride 2x3, pad 1x2.
    # H: (13 + 2 - 3)/2 + 1 = 7; W: (17 + 4 - 5)/3 + 1 = 6.  Weight (9, 6/3, 3, 5).
    a = _analyze(tmp_path, _conv("num_output: 9 group: 3 kernel_h: 3 kernel_w: 5 stride_h: 2 stride_w: 3 "
                                 "pad_h: 1 pad_w: 2 bias_term: false"), (2, 6, 13, 17))
    info = a.info("conv")
    assert info.top_shapes == [(2, 9, 7, 6)]
    assert info.blob_shapes == [(9, 2, 3, 5)]
    assert info.macs == 2 * 9 * 2 * 15 * 7 * 6
    assert info.other_ops == 0
    rf = info.rf["conv"]
    assert (rf.size, rf.jump) == ((3, 5), (2, 3))


def test_conv_pad_h_alone(tmp_path):
    # Caffe accepts pad_h without pad_w (pad_w keeps its default 0); not so kernel_h or stride_h.
    a = _analyze(tmp_path, _conv("num_output: 4 kernel_size: 3 pad_h: 1"))
    assert a.info("conv").top_shapes == [(2, 4, 13, 15)]


def test_conv_nd_and_negative_axis(tmp_path):
    # 5-D (N, C, D, H, W) = (2, 3, 5, 7, 11); kernel (3, 3, 5) given per axis, stride 2 once.
    # D: (5-3)/2+1 = 2; H: (7-3)/2+1 = 3; W: (11-5)/2+1 = 4.
    a = _analyze(tmp_path, _conv("num_output: 4 kernel_size: 3 kernel_size: 3 kernel_size: 5 stride: 2"),
                 (2, 3, 5, 7, 11))
    info = a.info("conv")
    assert info.top_shapes == [(2, 4, 2, 3, 4)]
    assert info.blob_shapes == [(4, 3, 3, 3, 5), (4,)]
    assert info.macs == 2 * 4 * 3 * 45 * 24
    assert info.rf == {}
    # axis -2 on (2, 3, 13, 17): channel axis 2 (13 channels), one spatial axis of 17; N = 2*3.
    a = _analyze(tmp_path, _conv("num_output: 4 kernel_size: 5 axis: -2"))
    info = a.info("conv")
    assert info.top_shapes == [(2, 3, 4, 13)]
    assert info.blob_shapes == [(4, 13, 5), (4,)]
    assert info.macs == 6 * 4 * 13 * 5 * 13


def test_conv_several_bottoms(tmp_path):
    body = _conv("num_output: 4 kernel_size: 3", "c0") + _conv("num_output: 4 kernel_size: 3", "c1") + '''
layer {
  name: "conv"
  type: "Convolution"
  bottom: "c0"
  bottom: "c1"
  top: "t0"
  top: "t1"
  convolution_param { num_output: 5 kernel_size: 3 }
}'''
    info = _analyze(tmp_path, body).info("conv")
    assert info.top_shapes == [(2, 5, 9, 13)] * 2
    assert info.blob_shapes == [(5, 4, 3, 3), (5,)]
    assert info.macs == 2 * (2 * 5 * 4 * 9 * 9 * 13)


def test_deconv(tmp_path):
    # FCN-style 2x upsampling of 4 channels, group 4: kernel 4, stride 2, pad 1: 2*(13-1) + 4 - 2 = 26.
    a = _analyze(tmp_path, _conv("num_output: 4 group: 4 kernel_size: 4 stride: 2 pad: 1 bias_term: false",
                                 type_="Deconvolution"), (2, 4, 13, 17))
    info = a.info("conv")
    assert info.top_shapes == [(2, 4, 26, 34)]
    assert info.blob_shapes == [(4, 1, 4, 4)]  # (Cin, Cout/g, k, k)
    assert info.macs == 2 * 4 * 1 * 16 * 13 * 17  # N * Cin * Cout/g * k*k * input pixels
    assert info.rf == {}
    # Cin 3 -> Cout 6: weight (3, 6, 3, 3), bias (6).
    info = _analyze(tmp_path, _conv("num_output: 6 kernel_size: 3", type_="Deconvolution")).info("conv")
    assert info.top_shapes == [(2, 6, 15, 19)]
    assert info.blob_shapes == [(3, 6, 3, 3), (6,)]
    assert info.other_ops == 2 * 6 * 15 * 19


def test_im2col(tmp_path):
    # C * k*k = 3 * 3*5 channels; H (13 + 2 - 3)/1 + 1 = 13, W (17 + 0 - 5)/1 + 1 = 13.
    a = _analyze(tmp_path, '''
layer { name: "col" type: "Im2col" bottom: "data" top: "col"
  convolution_param { kernel_h: 3 kernel_w: 5 pad_h: 1 } }''')
    info = a.info("col")
    assert info.top_shapes == [(2, 45, 13, 13)]
    assert (info.blob_shapes, info.macs, info.other_ops) == ([], 0, 0)
    assert info.rf["col"].size == (3, 5)


def test_pooling(tmp_path):
    # MAX 3/2 on 13x17 with a mask top: ceil(10/2)+1 = 6, ceil(14/2)+1 = 8; 9 compares per output.
    a = _analyze(tmp_path, _pool("pool: MAX kernel_size: 3 stride: 2", tops=("pool", "mask")))
    info = a.info("pool")
    assert info.top_shapes == [(2, 3, 6, 8), (2, 3, 6, 8)]
    assert info.other_ops == 2 * 3 * 6 * 8 * 9
    # FLOOR: floor(10/2)+1 = 6, floor(14/2)+1 = 8; 12x16 input: ceil 6/7 vs floor 5/7.
    a = _analyze(tmp_path, _pool("pool: AVE kernel_size: 3 stride: 2 round_mode: FLOOR"), (2, 3, 12, 16))
    assert a.info("pool").top_shapes == [(2, 3, 5, 7)]
    a = _analyze(tmp_path, _pool("pool: AVE kernel_size: 3 stride: 2"), (2, 3, 12, 16))
    assert a.info("pool").top_shapes == [(2, 3, 6, 8)]


def test_pooling_clip_on_the_unpadded_axis(tmp_path):
    # pad_h 1, pad_w 0, kernel 1x1 ... kernel_h 2 stride 3: W 6 without pad: ceil(5/3)+1 = 3, and since the
    # layer has a pad, (3-1)*3 = 6 >= 6 + 0 clips it to 2.  H 7: ceil((7+2-2)/3)+1 = 4, (4-1)*3 = 9 >= 8 -> 3.
    a = _analyze(tmp_path, _pool("pool: MAX kernel_h: 2 kernel_w: 1 stride: 3 pad_h: 1 pad_w: 0"), (2, 3, 7, 6))
    assert a.info("pool").top_shapes == [(2, 3, 3, 2)]


def test_global_pooling(tmp_path):
    a = _analyze(tmp_path, _pool("pool: AVE global_pooling: true"))
    info = a.info("pool")
    assert info.top_shapes == [(2, 3, 1, 1)]
    assert info.other_ops == 2 * 3 * 13 * 17
    assert info.rf["pool"].size == (13, 17)


def test_spp(tmp_path):
    # 3 levels on 13x17: 1 + 2x2 + 4x4 bins = 21 per channel.
    a = _analyze(tmp_path, '''
layer { name: "spp" type: "SPP" bottom: "data" top: "spp" spp_param { pyramid_height: 3 } }''')
    info = a.info("spp")
    assert info.top_shapes == [(2, 3 * 21)]
    assert info.rf == {}
    a = _analyze(tmp_path, '''
layer { name: "spp" type: "SPP" bottom: "data" top: "spp" spp_param { pyramid_height: 1 pool: AVE } }''')
    assert a.info("spp").top_shapes == [(2, 3, 1, 1)]
    assert a.info("spp").other_ops == 2 * 3 * 13 * 17


def test_lrn(tmp_path):
    a = _analyze(tmp_path, _lrn("local_size: 5"))
    info = a.info("norm")
    assert info.top_shapes == [(2, 3, 13, 17)]
    assert info.other_ops == 2 * 3 * 13 * 17 * (5 + 3)
    assert info.rf["norm"].size == (1, 1)
    a = _analyze(tmp_path, _lrn("local_size: 3 norm_region: WITHIN_CHANNEL"))
    assert a.info("norm").other_ops == 2 * 3 * 13 * 17 * (9 + 3)


# ----------------------------------------------------------------------------------------------------------
# Diagnostics, pinned

def test_warning_alexnet_224(tmp_path):
    text = _warnings(tmp_path, _conv("num_output: 96 kernel_size: 11 stride: 4", "conv1"), (1, 3, 224, 224))
    assert text == '''\
x.prototxt:8:62: warning: layer "conv1" (Convolution): (224 - 11 + 2*0)/4 + 1 = 54.25, floored to 54 (an input of 227 gives exactly 55)
  convolution_param { num_output: 96 kernel_size: 11 stride: 4 }
                                                             ^
  hint: the last 1 of the 224 positions of the padded input along H and W never fall in a window'''


def test_warning_one_axis(tmp_path):
    text = _warnings(tmp_path, _conv("num_output: 96 kernel_size: 11 stride: 4", "conv1"), (1, 3, 224, 227))
    assert text == '''\
x.prototxt:8:62: warning: layer "conv1" (Convolution): H: (224 - 11 + 2*0)/4 + 1 = 54.25, floored to 54 (an input of 227 gives exactly 55)
  convolution_param { num_output: 96 kernel_size: 11 stride: 4 }
                                                             ^
  hint: the last 1 of the 224 positions of the padded input along H never fall in a window'''
    assert _warnings(tmp_path, _conv("num_output: 96 kernel_size: 11 stride: 4", "conv1"), (1, 3, 227, 227)) == ""


ERRORS = {
    "num_output_missing": (
        _conv("kernel_size: 3"), None,
        'x.prototxt:8:21: error: layer "conv" (Convolution): num_output is missing\n'
        '  convolution_param { kernel_size: 3 }\n'
        '                    ^^^^^^^^^^^^^^^^^^\n'
        '  hint: set convolution_param { num_output: N }, the number of output channels',
    ),
    "num_output_zero": (
        _conv("num_output: 0 kernel_size: 3"), None,
        'x.prototxt:8:35: error: layer "conv" (Convolution): num_output must be positive, got 0\n'
        '  convolution_param { num_output: 0 kernel_size: 3 }\n'
        '                                  ^\n'
        '  hint: num_output is the number of output channels',
    ),
    "group": (
        _conv("num_output: 5 group: 2 kernel_size: 3"), None,
        'x.prototxt:8:44: error: layer "conv" (Convolution): the 3 input channels are not divisible by group 2\n'
        '  convolution_param { num_output: 5 group: 2 kernel_size: 3 }\n'
        '                                           ^\n'
        '  hint: Caffe splits the input and the output channels into `group` equal parts: both the input channels '
        'and num_output must be multiples of group\n'
        'x.prototxt:8:44: error: layer "conv" (Convolution): num_output 5 is not divisible by group 2\n'
        '  convolution_param { num_output: 5 group: 2 kernel_size: 3 }\n'
        '                                           ^\n'
        '  hint: Caffe splits the input and the output channels into `group` equal parts: both the input channels '
        'and num_output must be multiples of group',
    ),
    "kernel_missing": (
        _conv("num_output: 4"), None,
        'x.prototxt:8:21: error: layer "conv" (Convolution): kernel_size is missing\n'
        '  convolution_param { num_output: 4 }\n'
        '                    ^^^^^^^^^^^^^^^^^\n'
        '  hint: give kernel_size: K (or kernel_h and kernel_w for a 2-D convolution)',
    ),
    "kernel_times": (
        _conv("num_output: 4 kernel_size: 3 kernel_size: 3 kernel_size: 3"), None,
        'x.prototxt:8:80: error: layer "conv" (Convolution): kernel_size is given 3 times for 2 spatial axes\n'
        '  convolution_param { num_output: 4 kernel_size: 3 kernel_size: 3 kernel_size: 3 }\n'
        '                                                                               ^\n'
        '  hint: give it once (the same for every axis) or twice (one per axis: H, W)',
    ),
    "kernel_h_alone": (
        _conv("num_output: 4 kernel_h: 3"), None,
        'x.prototxt:8:47: error: layer "conv" (Convolution): kernel_h is given without kernel_w\n'
        '  convolution_param { num_output: 4 kernel_h: 3 }\n'
        '                                              ^\n'
        '  hint: a rectangular kernel needs both kernel_h and kernel_w (or kernel_size for a square one)',
    ),
    "kernel_and_kernel_h": (
        _conv("num_output: 4 kernel_size: 3 kernel_h: 3 kernel_w: 3"), None,
        'x.prototxt:8:62: error: layer "conv" (Convolution): kernel_size and kernel_h/kernel_w are both given\n'
        '  convolution_param { num_output: 4 kernel_size: 3 kernel_h: 3 kernel_w: 3 }\n'
        '                                                             ^\n'
        '  hint: use either kernel_size or kernel_h and kernel_w',
    ),
    "conv_kernel_too_large": (
        _conv("num_output: 4 kernel_size: 11"), (2, 3, 10, 17),
        'x.prototxt:8:50: error: layer "conv" (Convolution): kernel 11 is larger than the padded input 10 '
        '(H 10 + 2*0)\n'
        '  convolution_param { num_output: 4 kernel_size: 11 }\n'
        '                                                 ^^\n'
        '  hint: Caffe does not check this and computes an output size of 0; use a smaller kernel, more padding '
        'or a larger input',
    ),
    "conv_kernel_too_large_both": (
        _conv("num_output: 4 kernel_size: 11 pad: 1 stride: 4"), (2, 3, 8, 8),
        'x.prototxt:8:50: error: layer "conv" (Convolution): kernel 11 is larger than the padded input 10 '
        '(H and W 8 + 2*1)\n'
        '  convolution_param { num_output: 4 kernel_size: 11 pad: 1 stride: 4 }\n'
        '                                                 ^^\n'
        '  hint: Caffe does not check this and computes an output size of 1; use a smaller kernel, more padding '
        'or a larger input',
    ),
    "bottoms_differ": (
        _conv("num_output: 4 kernel_size: 1", "c0") + '''
layer {
  name: "conv"
  type: "Convolution"
  bottom: "data"
  bottom: "c0"
  top: "t0"
  top: "t1"
  convolution_param { num_output: 5 kernel_size: 3 }
}''', None,
        'x.prototxt:14:11: error: layer "conv" (Convolution): bottom 1 has shape (2, 4, 13, 17), but bottom 0 has '
        '(2, 3, 13, 17)\n'
        '  bottom: "c0"\n'
        '          ^^^^\n'
        '  hint: every bottom of a Convolution layer goes through the same weights, so all must have the same shape',
    ),
    "conv_stride_h_alone": (
        _conv("num_output: 4 kernel_size: 3 stride_h: 2"), None,
        'x.prototxt:8:62: error: layer "conv" (Convolution): stride_h is given without stride_w\n'
        '  convolution_param { num_output: 4 kernel_size: 3 stride_h: 2 }\n'
        '                                                             ^\n'
        '  hint: a rectangular stride needs both stride_h and stride_w (or stride for a square one)',
    ),
    "deconv_pad_too_large": (
        _conv("num_output: 4 kernel_size: 3 pad: 4", type_="Deconvolution"), (2, 3, 2, 2),
        'x.prototxt:8:57: error: layer "conv" (Deconvolution): the output size -4 on H and W is not positive: '
        '1*(2 - 1) + 3 - 2*4\n'
        '  convolution_param { num_output: 4 kernel_size: 3 pad: 4 }\n'
        '                                                        ^\n'
        '  hint: the pad removes more than the deconvolution adds; use a smaller pad',
    ),
    "spp_level_too_fine": (
        """
layer { name: "spp" type: "SPP" bottom: "data" top: "spp" spp_param { pyramid_height: 3 } }""", (2, 3, 5, 5),
        'x.prototxt:3:87: error: layer "spp" (SPP): level 2 (4x4 bins) on a 5x5 input needs pad (2, 2) not '
        'smaller than its kernel (2, 2)\n'
        '  layer { name: "spp" type: "SPP" bottom: "data" top: "spp" spp_param { pyramid_height: 3 } }\n'
        '                                                                                        ^\n'
        "  hint: Caffe's pooling requires pad < kernel: use fewer levels or a larger input",
    ),
    "pool_kernel_too_large": (
        _pool("pool: MAX kernel_size: 15"), None,
        'x.prototxt:8:42: error: layer "pool" (Pooling): kernel 15 is larger than the padded input 13 (H 13 + 2*0)\n'
        '  pooling_param { pool: MAX kernel_size: 15 }\n'
        '                                         ^^\n'
        '  hint: Caffe does not check this and computes an output size of -1; use a smaller kernel, more padding '
        'or a larger input',
    ),
    "pool_pad_not_smaller": (
        _pool("pool: MAX kernel_size: 3 pad: 3"), None,
        'x.prototxt:8:49: error: layer "pool" (Pooling): pad 3 must be smaller than kernel_size 3\n'
        '  pooling_param { pool: MAX kernel_size: 3 pad: 3 }\n'
        '                                                ^\n'
        '  hint: Caffe checks pad < kernel: a window must not lie wholly in the padding',
    ),
    "pool_not_4d": (
        _pool("pool: MAX kernel_size: 3"), (2, 3, 13),
        'x.prototxt:6:11: error: layer "pool" (Pooling): Pooling needs a 4-axis (N, C, H, W) bottom, got 3 axes '
        '(2, 3, 13)\n'
        '  bottom: "data"\n'
        '          ^^^^^^\n'
        "  hint: Caffe's Pooling layer only takes (num, channels, height, width) blobs",
    ),
    "pool_global_pad_stride": (
        _pool("pool: AVE global_pooling: true pad: 1 stride: 2"), None,
        'x.prototxt:8:55: error: layer "pool" (Pooling): global_pooling takes no pad, but pad is 1\n'
        '  pooling_param { pool: AVE global_pooling: true pad: 1 stride: 2 }\n'
        '                                                      ^\n'
        '  hint: a global window covers the whole input: remove the pad\n'
        'x.prototxt:8:65: error: layer "pool" (Pooling): global_pooling takes no stride, but stride is 2\n'
        '  pooling_param { pool: AVE global_pooling: true pad: 1 stride: 2 }\n'
        '                                                                ^\n'
        '  hint: a global window has one position: remove the stride',
    ),
    "pool_kernel_missing": (
        _pool("pool: MAX stride: 2"), None,
        'x.prototxt:8:17: error: layer "pool" (Pooling): kernel_size is missing\n'
        '  pooling_param { pool: MAX stride: 2 }\n'
        '                ^^^^^^^^^^^^^^^^^^^^^^^\n'
        '  hint: give kernel_size: K, kernel_h and kernel_w, or global_pooling: true',
    ),
    "pool_kernel_w_alone": (
        _pool("pool: MAX kernel_w: 3"), None,
        'x.prototxt:8:39: error: layer "pool" (Pooling): kernel_w is given without kernel_h\n'
        '  pooling_param { pool: MAX kernel_w: 3 }\n'
        '                                      ^\n'
        "  hint: Caffe's Pooling needs both kernel_h and kernel_w (or kernel_size for both axes)",
    ),
    "pool_stochastic_pad": (
        _pool("pool: STOCHASTIC kernel_size: 3 pad: 1"), None,
        'x.prototxt:8:56: error: layer "pool" (Pooling): STOCHASTIC pooling takes no pad\n'
        '  pooling_param { pool: STOCHASTIC kernel_size: 3 pad: 1 }\n'
        '                                                       ^\n'
        '  hint: Caffe implements padding only for MAX and AVE pooling',
    ),
    "lrn_even": (
        _lrn("local_size: 4"), None,
        'x.prototxt:8:27: error: layer "norm" (LRN): local_size 4 must be odd\n'
        '  lrn_param { local_size: 4 }\n'
        '                          ^\n'
        '  hint: the window is centred on each element: use 3 or 5',
    ),
    "lrn_not_4d": (
        _lrn("local_size: 5"), (2, 3, 13, 17, 19),
        'x.prototxt:6:11: error: layer "norm" (LRN): LRN needs a 4-axis (N, C, H, W) bottom, got 5 axes '
        '(2, 3, 13, 17, 19)\n'
        '  bottom: "data"\n'
        '          ^^^^^^\n'
        "  hint: Caffe's LRN layer only takes (num, channels, height, width) blobs",
    ),
}


@pytest.mark.parametrize("name", ERRORS)
def test_error_text(tmp_path, name):
    body, shape, expected = ERRORS[name]
    assert _error(tmp_path, body, shape or (2, 3, 13, 17)) == expected
