"""Published numbers, reproduced: AlexNet's table (with every disagreement explained), GoogLeNet, VGG-16 and
the worked examples of the articles.  The expected values are the published ones (or, where stated, hand
arithmetic in the comments); MACs count convolutions and fully connected layers only, per image.
"""
from __future__ import annotations

from pathlib import Path


import netc
from netc.analysis import analyze
from netc.cli import main

from golden import SHARED, needs_golden

ROOT = Path(__file__).resolve().parents[1]
NETS = ROOT / "nets"


def totals(path, phase="TEST", batch=1, inputs=None):
    a = analyze(netc.load_net(path, phase), inputs, batch)
    return a.params, a.macs, a


def test_alexnet_bvlc_totals():
    params, macs, _ = totals(NETS / "alexnet" / "deploy.prototxt")
    assert (params, macs) == (60_965_224, 724_406_816)


def test_alexnet_one_tower_totals():
    params, macs, _ = totals(NETS / "alexnet_onetower" / "deploy.prototxt")
    assert (params, macs) == (62_378_344, 1_135_256_096)


def test_alexnet_train_val_matches_deploy():
    # The TEST phase of train_val: Data layer with crop_size 227 and three mean values (so 3 channels).
    params, macs, a = totals(NETS / "alexnet" / "train_val.prototxt")
    assert (params, macs) == (60_965_224, 724_406_816)
    assert a.info("conv1").top_shapes == [(1, 96, 55, 55)]


def test_alexnet_published_table_every_disagreement_explained(capsys):
    rc = main(["report", str(NETS / "alexnet" / "train_val.prototxt"), "--phase", "TEST", "--batch", "1",
               "--compare", str(NETS / "alexnet" / "published.csv")])
    out = capsys.readouterr().out
    assert rc == 0
    compared = out[out.index("Compared with"):]
    lines = compared.splitlines()

    def row(layer, column):
        hits = [l for l in lines if l.split()[:2] == [layer, column]]
        assert len(hits) == 1, (layer, column, compared)
        return hits[0]

    # Agreements.
    for layer in ("conv1", "conv2", "conv4", "conv5", "fc6", "fc7", "fc8"):
        assert row(layer, "params").endswith("ok")
    for layer in ("conv1", "norm1", "pool1", "conv2", "norm2", "pool2", "conv3", "conv4", "conv5", "fc6", "fc8"):
        assert row(layer, "feature_map").endswith("ok")
    # Disagreements, each with its arithmetic.
    assert "published input 224x224x3 = 150,528; the net's input is 227x227x3 = 154,587" in row("input", "feature_map")
    assert "the 384 biases counted 2 times (once per tower)" in row("conv3", "params_two_gpu")
    assert "published is one of 2 towers: 9,216 / 2 = 4,608" in row("pool5", "feature_map")
    assert "not the sum of its column, which is 60,965,224 = the net's total" in row("SUM", "params")
    assert ("the sum of its column as printed; the net's own sum is 1,413,347, 8,667 more, exactly the rows that "
            "disagree (input 150,528 vs 154,587, pool5 4,608 vs 9,216)") in row("SUM", "feature_map")
    assert lines[-1] == "5 disagreements, each explained above"


@needs_golden
def test_googlenet_deploy_and_train():
    models = SHARED / "corpus" / "bvlc_caffe" / "models" / "bvlc_googlenet"
    params, macs, _ = totals(models / "deploy.prototxt")
    assert (params, macs) == (6_998_552, 1_582_671_872)
    a = analyze(netc.load_net(models / "train_val.prototxt", "TRAIN"), {"data": (1, 3, 224, 224), "label": (1,)})
    assert a.params == 13_378_280


def _vgg16(width: int = 224) -> str:
    """VGG-16 (configuration D): 13 3x3 convs in 5 blocks with max pooling, then 3 fully connected layers."""
    layers = [f'layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ dim: 1 dim: 3 dim: {width} dim: {width} }} }} }}']
    bottom = "data"
    for block, (n, maps) in enumerate([(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)], start=1):
        for i in range(1, n + 1):
            name = f"conv{block}_{i}"
            layers.append(f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}" '
                          f'convolution_param {{ num_output: {maps} pad: 1 kernel_size: 3 }} }}')
            layers.append(f'layer {{ name: "relu{block}_{i}" type: "ReLU" bottom: "{name}" top: "{name}" }}')
            bottom = name
        layers.append(f'layer {{ name: "pool{block}" type: "Pooling" bottom: "{bottom}" top: "pool{block}" '
                      f'pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}')
        bottom = f"pool{block}"
    for name, n in (("fc6", 4096), ("fc7", 4096), ("fc8", 1000)):
        layers.append(f'layer {{ name: "{name}" type: "InnerProduct" bottom: "{bottom}" top: "{name}" '
                      f'inner_product_param {{ num_output: {n} }} }}')
        bottom = name
    return "\n".join(layers) + "\n"


def test_vgg16_totals(tmp_path):
    p = tmp_path / "vgg16.prototxt"
    p.write_text(_vgg16())
    params, macs, _ = totals(p)
    assert (params, macs) == (138_357_544, 15_470_264_320)


def _write(tmp_path, text):
    p = tmp_path / "net.prototxt"
    p.write_text(text)
    return p


def test_one_conv_layer_article_example(tmp_path):
    # 5x5 conv, 200 maps, stride 1, SAME padding (pad 2) on a 150x100 RGB image.
    p = _write(tmp_path, """
        layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 150 dim: 100 } } }
        layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
                convolution_param { num_output: 200 kernel_size: 5 pad: 2 } }
    """)
    a = analyze(netc.load_net(p))
    info = a.info("conv")
    assert info.params == 15_200                 # (5*5*3 + 1) * 200
    assert info.macs == 225_000_000              # 5*5*3 * 200*150*100
    assert info.top_shapes == [(1, 200, 150, 100)]
    assert info.activations * 4 == 12_000_000    # float32 bytes per instance
    a100 = analyze(netc.load_net(p), batch=100)
    assert a100.info("conv").activations * 4 == 1_200_000_000  # 1.2 GB at batch 100


def test_bottleneck_article_example(tmp_path):
    p = _write(tmp_path, """
        layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 192 dim: 32 dim: 32 } } }
        layer { name: "direct" type: "Convolution" bottom: "data" top: "direct"
                convolution_param { num_output: 256 kernel_size: 3 pad: 1 bias_term: false } }
        layer { name: "reduce" type: "Convolution" bottom: "data" top: "reduce"
                convolution_param { num_output: 96 kernel_size: 1 bias_term: false } }
        layer { name: "expand" type: "Convolution" bottom: "reduce" top: "expand"
                convolution_param { num_output: 256 kernel_size: 3 pad: 1 bias_term: false } }
    """)
    a = analyze(netc.load_net(p))
    assert a.info("direct").macs == 452_984_832
    assert a.info("reduce").macs + a.info("expand").macs == 245_366_784


def test_three_stride_two_convs_article_example(tmp_path):
    p = _write(tmp_path, """
        layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 200 dim: 300 } } }
        layer { name: "c1" type: "Convolution" bottom: "data" top: "c1" convolution_param { num_output: 100 kernel_size: 3 stride: 2 pad: 1 } }
        layer { name: "c2" type: "Convolution" bottom: "c1" top: "c2" convolution_param { num_output: 200 kernel_size: 3 stride: 2 pad: 1 } }
        layer { name: "c3" type: "Convolution" bottom: "c2" top: "c3" convolution_param { num_output: 400 kernel_size: 3 stride: 2 pad: 1 } }
    """)
    # (3*3*3+1)*100 + (3*3*100+1)*200 + (3*3*200+1)*400 = 2,800 + 180,200 + 720,400
    assert analyze(netc.load_net(p)).params == 903_400
