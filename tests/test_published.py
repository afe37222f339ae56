"""Published numbers, reproduced: AlexNet's table (with every disagreement explained), GoogLeNet, VGG-16, the
worked examples of the articles, and the totals of the nets in nets/.  The expected values are the published
ones (or, where stated, hand arithmetic in the comments); MACs count convolutions and fully connected layers
only, per image.
"""
from __future__ import annotations

from pathlib import Path

import pytest

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


# --------------------------------------------------------------------------------------------------------
# The network library (nets/): each net's totals against its published ones.  Per image, at the paper's
# input size (227 for AlexNet/CaffeNet, 224 for the other ImageNet nets, 299 for Xception); deploy.prototxt
# and the TEST phase of train_val.prototxt (whose Data layer is shaped by crop_size and mean_value) agree.

EXACT = {  # net: (learnable params, MACs per image or None), each from the source named
    # Krizhevsky et al. 2012 as BVLC's model (two towers) and in one tower (Krizhevsky 2014, "one weird trick").
    "alexnet": (60_965_224, 724_406_816),
    "alexnet_onetower": (62_378_344, 1_135_256_096),
    # BVLC's CaffeNet only swaps pooling and normalisation: AlexNet's layers, AlexNet's totals.
    "caffenet": (60_965_224, 724_406_816),
    # torchvision's model table (vgg16, vgg19, resnet18, resnet34, resnet50 = v1.5) and torch.hub's counts.
    "vgg16": (138_357_544, 15_470_264_320),
    "vgg19": (143_667_240, 19_632_062_464),
    "googlenet": (6_998_552, 1_582_671_872),
    "resnet18": (11_689_512, 1_814_073_344),
    "resnet34": (21_797_672, 3_663_761_408),
    "resnet50_v1.5": (25_557_032, 4_089_184_256),
    "resnet101_v1.5": (44_549_160, None),
    "resnet152_v1.5": (60_192_808, None),
    # The authors' Caffe release (KaimingHe/deep-residual-networks): stride on the first 1x1; ResNet-50's
    # conv1 has a bias (64 more parameters than torchvision's), ResNet-101's and -152's do not.
    "resnet50": (25_557_096, 3_857_973_248),
    "resnet101": (44_549_160, 7_570_194_432),
    "resnet152": (60_192_808, 11_282_415_616),
    # Chollet 2017, Table 3 (Xception's parameter count).
    "xception": (22_855_952, None),
    # Caffe's MNIST LeNet: (5*5*1+1)*20 + (5*5*20+1)*50 + (800+1)*500 + (500+1)*10, the widely quoted 431,080.
    "lenet": (431_080, None),
    # Geron's Fashion-MNIST CNN, by hand: conv (7*7*1+1)*64 = 3,200; (9*64+1)*128 = 73,856; (9*128+1)*128 =
    # 147,584; (9*128+1)*256 = 295,168; (9*256+1)*256 = 590,080; fc (3*3*256+1)*128 = 295,040; (128+1)*64 =
    # 8,256; (64+1)*10 = 650.
    "fashion_mnist_cnn": (1_413_834, None),
}


def _net_totals(d: str, fname: str = "deploy.prototxt", phase: str = "TEST"):
    a = analyze(netc.load_net(NETS / d / fname, phase), batch=1 if fname == "deploy.prototxt" else None,
                inputs={"data": (100, 1, 28, 28)} if d == "lenet" and fname != "deploy.prototxt" else None)
    n = a.info("data").top_shapes[0][0]
    assert a.macs % n == 0
    return a.params, a.macs // n


@pytest.mark.parametrize("d", sorted(EXACT))
def test_nets_totals_are_the_published_ones(d):
    params, macs = EXACT[d]
    # GoogLeNet's train_val keeps BVLC's auxiliary classifiers in both phases (see below).
    files = ["deploy.prototxt"] + ([] if d == "googlenet" else ["train_val.prototxt"])
    for found in (_net_totals(d, f) for f in files):
        assert found[0] == params
        if macs is not None:
            assert found[1] == macs


def test_nets_googlenet_train_with_auxiliary_classifiers():
    for phase in ("TRAIN", "TEST"):
        assert _net_totals("googlenet", "train_val.prototxt", phase)[0] == 13_378_280


def test_nets_resnet_v15_gmacs_torchvision_documents():
    # torchvision's model table: ResNet-101 7.80 and ResNet-152 11.51 "GFLOPS" (multiply-adds, at 224).
    assert round(_net_totals("resnet101_v1.5")[1] / 1e9, 2) == 7.80
    assert round(_net_totals("resnet152_v1.5")[1] / 1e9, 2) == 11.51


def test_nets_mobilenet_v1_table():
    # Howard et al. 2017, Table 8: 1.0 MobileNet-224, 569 million mult-adds, 4.2 million parameters.
    params, macs = _net_totals("mobilenet_v1")
    assert (round(macs / 1e6), round(params / 1e6, 1)) == (569, 4.2)


@pytest.mark.parametrize("depth,published", [(20, 0.27), (32, 0.46), (56, 0.85), (110, 1.7)])
def test_nets_resnet_cifar_params(depth, published):
    # He et al. 2016 ("Deep Residual Learning"), Table 6: 0.27M, 0.46M, 0.85M, 1.7M parameters.
    params, _ = _net_totals(f"resnet_cifar{depth}")
    assert round(params / 1e6, 2 if depth < 100 else 1) == published


def test_nets_se_resnet50():
    # Hu et al. 2018: "~2.5 million additional parameters beyond the ~25 million" of ResNet-50 (28.1M in the
    # reduction-ratio table, r = 16), and 3.87 GFLOPs against ResNet-50's 3.86.  netc's MACs count
    # convolutions and fully connected layers only: 3.86; the paper's 3.87 also counts the SE block's global
    # pooling and channel scaling (netc's other_ops of those layers).
    se = analyze(netc.load_net(NETS / "se_resnet50" / "deploy.prototxt"), batch=1)
    base = analyze(netc.load_net(NETS / "resnet50_v1.5" / "deploy.prototxt"), batch=1)
    assert round((se.params - base.params) / 1e6, 1) == 2.5 and round(se.params / 1e6, 1) == 28.1
    assert round(se.macs / 1e9, 2) == 3.86
    squeeze = sum(i.other_ops for i in se.layers if i.layer.name.endswith(("_global_pool", "_scale")))
    assert round((se.macs + squeeze) / 1e9, 2) == 3.87


def test_nets_minigooglenet_zhang_et_al():
    # Zhang et al. 2017, Table 1: the small Inception has 1,649,402 parameters, with and without BatchNorm, so
    # the count leaves BatchNorm's gamma and beta (netc: Scale's parameters) out.
    a = analyze(netc.load_net(NETS / "minigooglenet" / "deploy.prototxt"), batch=1)
    gamma_beta = sum(i.params for i in a.layers if i.layer.type == "Scale")
    assert a.params - gamma_beta == 1_649_402
