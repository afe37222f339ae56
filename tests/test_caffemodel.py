"""Reading and writing binary .caffemodel files: against the models the real Caffe saved
(../shared/golden: arrays in params.npz, bytes from Net::ToProto), against protobuf's own parser for the
encodings Caffe never writes (unpacked values, double_data, legacy 4-D fields, V1 and V0 entries), and the
errors a person gets for a file that is not a model."""
from __future__ import annotations

import time

import numpy as np
import pytest

from golden import GOLDEN
from netc import caffe_pb2
from netc.caffemodel import (CaffeLayer, decode_caffemodel, encode_caffemodel, read_caffemodel, shapes_match,
                             write_caffemodel)
from netc.errors import InputError


def golden_models(pattern: str) -> list:
    return [pytest.param(p, id=str(p.parent.relative_to(GOLDEN))) for p in sorted(GOLDEN.glob(pattern))]


WEIGHTS = golden_models("*/*/weights.caffemodel")  # layers/<case>/ and nets/<case>/
ALL_MODELS = golden_models("**/*.caffemodel")  # + solver snapshots and final weights
if not WEIGHTS:
    WEIGHTS = ALL_MODELS = [pytest.param(None, marks=pytest.mark.skip(reason=f"no golden models at {GOLDEN}"))]


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype == np.float32 and a.shape == b.shape and a.tobytes() == b.tobytes()


# ---------------------------------------------------------------------------------------------------------
# The real Caffe's files


@pytest.mark.parametrize("path", WEIGHTS)
def test_golden_weights_equal_params_npz(path):
    model = read_caffemodel(path)
    assert model.format == "V2"
    golden = np.load(path.parent / "params.npz")
    got = model.params()
    assert sorted(got) == sorted(golden.files)
    for key in golden.files:
        blob = got[key]
        # A 0-axis blob (PReLU's shared slope) is stored as (1,) in the npz, pycaffe's view of it.
        if blob.shape == () and golden[key].shape == (1,):
            blob = blob.reshape(1)
        assert same_bits(blob, golden[key]), key


@pytest.mark.parametrize("path", ALL_MODELS)
def test_golden_models_agree_with_protobuf_and_write_back_byte_for_byte(path):
    data = path.read_bytes()
    model = read_caffemodel(path)
    net = caffe_pb2.NetParameter.FromString(data)
    assert model.name == net.name
    assert [(l.name, l.type) for l in model.layers] == [(l.name, l.type) for l in net.layer]
    for layer, ref in zip(model.layers, net.layer):
        assert len(layer.blobs) == len(ref.blobs) and layer.legacy == (False,) * len(ref.blobs)
        for blob, ref_blob in zip(layer.blobs, ref.blobs):
            assert blob.shape == tuple(ref_blob.shape.dim)
            assert same_bits(blob.reshape(-1), np.array(ref_blob.data, np.float32))
        without_blobs = caffe_pb2.LayerParameter()
        without_blobs.CopyFrom(ref)
        without_blobs.ClearField("blobs")
        assert layer.param == without_blobs
    # Caffe-identical: the same bytes Net::ToProto wrote.
    assert encode_caffemodel(model.layers, model.name) == data


def test_arrays_are_aligned_writable_float32():
    path = WEIGHTS[0].values[0]
    if path is None:
        pytest.skip("no golden models")
    for blob in read_caffemodel(path).params().values():
        assert blob.flags.writeable and blob.flags.aligned and blob.flags.c_contiguous
        assert blob.dtype == np.dtype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# Writing


def random_layers(rng: np.random.Generator) -> list:
    return [
        ("data", "Input", []),
        ("conv1", "Convolution", [rng.standard_normal((7, 3, 5, 5), np.float32), rng.standard_normal(7, np.float32)]),
        ("relu1", "ReLU", []),
        ("ip", "InnerProduct", [rng.standard_normal((11, 13), np.float32), np.zeros(11, np.float32)]),
        ("prelu", "PReLU", [np.array(0.25, np.float32)]),  # 0-axis: channel_shared
        ("empty", "Parameter", [np.zeros((2, 0, 3), np.float32)]),
    ]


def test_write_then_read(tmp_path):
    layers = random_layers(np.random.default_rng(13))
    path = tmp_path / "m.caffemodel"
    write_caffemodel(path, layers, name="tiny")
    model = read_caffemodel(path)
    assert model.name == "tiny" and model.format == "V2"
    assert [(l.name, l.type) for l in model.layers] == [(n, t) for n, t, _ in layers]
    for layer, (_, _, blobs) in zip(model.layers, layers):
        assert len(layer.blobs) == len(blobs)
        for got, want in zip(layer.blobs, blobs):
            assert same_bits(got, want)


def test_written_bytes_are_protobufs_serialization():
    """With the full LayerParameter copied, the writer's bytes are exactly protobuf's canonical encoding of
    the same NetParameter (fields in number order, blobs (7) between param (6) and include (8))."""
    rng = np.random.default_rng(5)
    param = caffe_pb2.LayerParameter(name="conv", type="Convolution", bottom=["data"], top=["conv"],
                                     phase=caffe_pb2.TEST)
    param.param.add(lr_mult=1)
    param.param.add(lr_mult=2, decay_mult=0)
    param.include.add(phase=caffe_pb2.TEST)
    param.convolution_param.num_output = 3
    param.convolution_param.kernel_size.append(3)
    stale = param.blobs.add()  # blobs already in the param are replaced by the given ones
    stale.data.append(1.0)
    blobs = [rng.standard_normal((3, 2, 3, 3), np.float32), rng.standard_normal(3, np.float32)]

    ref = caffe_pb2.NetParameter(name="n")
    layer = ref.layer.add()
    layer.CopyFrom(param)
    del layer.blobs[:]
    for b in blobs:
        layer.blobs.add(data=b.reshape(-1).tolist(), shape=caffe_pb2.BlobShape(dim=b.shape))
    assert encode_caffemodel([("conv", "Convolution", blobs, param)], "n") == ref.SerializeToString()
    # The item's name and type win over the param's.
    renamed = caffe_pb2.NetParameter.FromString(encode_caffemodel([("c2", "Deconvolution", [], param)]))
    assert (renamed.layer[0].name, renamed.layer[0].type, list(renamed.layer[0].bottom)) == \
        ("c2", "Deconvolution", ["data"])


def test_write_converts_to_float32_and_accepts_layer_objects(tmp_path):
    path = tmp_path / "m.caffemodel"
    weights = np.arange(6, dtype=np.float64).reshape(2, 3) / 3
    write_caffemodel(path, [CaffeLayer("ip", "InnerProduct", [weights], caffe_pb2.LayerParameter(name="ip"))])
    (layer,) = read_caffemodel(path).layers
    assert same_bits(layer.blobs[0], weights.astype(np.float32))


def test_write_replaces_the_file_atomically(tmp_path):
    path = tmp_path / "m.caffemodel"
    path.write_bytes(b"old")
    write_caffemodel(path, [("ip", "InnerProduct", [np.ones(3, np.float32)])])
    assert read_caffemodel(path).layers[0].blobs[0].tolist() == [1, 1, 1]
    assert [p.name for p in tmp_path.iterdir()] == ["m.caffemodel"]


def test_50mb_model_round_trips_quickly(tmp_path):
    rng = np.random.default_rng(0)
    layers = [("conv", "Convolution", [rng.standard_normal((256, 192, 3, 3), np.float32),
                                       rng.standard_normal(256, np.float32)]),
              ("fc", "InnerProduct", [rng.standard_normal((3000, 4000), np.float32),
                                      rng.standard_normal(3000, np.float32)])]
    path = tmp_path / "big.caffemodel"
    start = time.perf_counter()
    write_caffemodel(path, layers)
    model = read_caffemodel(path)
    elapsed = time.perf_counter() - start
    assert path.stat().st_size > 49_000_000
    for layer, (_, _, blobs) in zip(model.layers, layers):
        for got, want in zip(layer.blobs, blobs):
            assert np.array_equal(got, want)
    assert elapsed < 5, f"writing and reading {path.stat().st_size / 1e6:.0f} MB took {elapsed:.1f} s"


# ---------------------------------------------------------------------------------------------------------
# Encodings Caffe does not write (protobuf's parser is the reference)


def varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def field(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def unpacked(number: int, values: np.ndarray) -> bytes:
    """A repeated float (wire type 5) or double (1) field, one tag per value."""
    wire = 5 if values.dtype == np.float32 else 1
    return b"".join(varint(number << 3 | wire) + v.tobytes() for v in values.astype(values.dtype.newbyteorder("<")))


def model_with_blob(blob_bytes: bytes, layer_name: str = "ip") -> bytes:
    layer = field(1, layer_name.encode()) + field(2, b"InnerProduct") + field(7, blob_bytes)
    return field(1, b"net") + field(100, layer)


def read_both(data: bytes) -> tuple[np.ndarray, caffe_pb2.BlobProto]:
    (layer,) = decode_caffemodel(data).layers
    ref = caffe_pb2.NetParameter.FromString(data).layer[0].blobs[0]
    return layer.blobs[0], ref


def test_unpacked_and_split_data_read_like_protobuf():
    rng = np.random.default_rng(3)
    v = rng.standard_normal(12).astype(np.float32)
    shape = field(7, caffe_pb2.BlobShape(dim=[3, 4]).SerializeToString())
    cases = [
        unpacked(5, v) + shape,  # every value unpacked
        field(5, v[:5].tobytes()) + unpacked(5, v[5:9]) + field(5, v[9:].tobytes()) + shape,  # mixed, in order
        field(5, v[:7].tobytes()) + shape + field(5, v[7:].tobytes()),  # a packed field given twice
    ]
    for data in cases:
        got, ref = read_both(model_with_blob(data))
        assert list(ref.data) == v.tolist()
        assert got.shape == (3, 4) and same_bits(got.reshape(-1), v)


def test_double_data_is_used_when_present():
    """Caffe's Blob::FromProto takes double_data when it holds values (over data), converting to float."""
    d = np.array([0.1, 1 / 3, -2.5, 1e-40, 3.4e38], np.float64)
    both = field(5, np.zeros(5, np.float32).tobytes()) + field(8, d.tobytes())
    for data in (field(8, d.tobytes()), unpacked(8, d), both):
        got, ref = read_both(model_with_blob(data + field(7, caffe_pb2.BlobShape(dim=[5]).SerializeToString())))
        assert list(ref.double_data) == d.tolist()
        assert same_bits(got, d.astype(np.float32))


def test_diffs_and_unknown_fields_are_skipped():
    v = np.arange(6, dtype=np.float32)
    blob = (field(6, (-v).tobytes()) + field(5, v.tobytes()) + field(9, np.ones(6).tobytes())
            + varint(99 << 3 | 0) + varint(7) + field(7, caffe_pb2.BlobShape(dim=[2, 3]).SerializeToString()))
    got, _ = read_both(model_with_blob(blob))
    assert same_bits(got, v.reshape(2, 3))


def legacy_blob(values: np.ndarray, num: int, channels: int, height: int, width: int) -> caffe_pb2.BlobProto:
    return caffe_pb2.BlobProto(num=num, channels=channels, height=height, width=width,
                               data=values.reshape(-1).tolist())


def test_v1_model_reads_with_current_types_and_legacy_shapes():
    rng = np.random.default_rng(7)
    w = rng.standard_normal((4, 6), np.float32)
    b = rng.standard_normal(4, np.float32)
    k = rng.standard_normal((4, 2, 3, 3), np.float32)
    net = caffe_pb2.NetParameter(name="v1net")
    L = caffe_pb2.V1LayerParameter
    net.layers.add(name="data", type=L.DATA, top=["data"])
    net.layers.add(name="conv", type=L.CONVOLUTION, blobs=[legacy_blob(k, 4, 2, 3, 3), legacy_blob(b, 1, 1, 1, 4)],
                   blobs_lr=[1, 2])
    net.layers.add(name="fc", type=L.INNER_PRODUCT, blobs=[legacy_blob(w, 1, 1, 4, 6), legacy_blob(b, 1, 1, 1, 4)])
    net.layers.add(name="loss", type=L.SOFTMAX_LOSS)
    model = decode_caffemodel(net.SerializeToString())
    assert model.format == "V1" and model.name == "v1net"
    assert [(l.name, l.type) for l in model.layers] == [
        ("data", "Data"), ("conv", "Convolution"), ("fc", "InnerProduct"), ("loss", "SoftmaxWithLoss")]
    conv, fc = model.layers[1], model.layers[2]
    assert [x.shape for x in conv.blobs] == [(4, 2, 3, 3), (1, 1, 1, 4)] and conv.legacy == (True, True)
    assert [x.shape for x in fc.blobs] == [(1, 1, 4, 6), (1, 1, 1, 4)]
    assert same_bits(fc.blobs[0], w.reshape(1, 1, 4, 6)) and same_bits(fc.blobs[1], b.reshape(1, 1, 1, 4))
    assert list(conv.param.blobs_lr) == [1, 2] and not conv.param.blobs
    # Caffe compares a legacy blob with the net's shape aligned from the end.
    assert shapes_match((4, 6), fc.blobs[0].shape, legacy=True)
    assert shapes_match((4,), fc.blobs[1].shape, legacy=True)
    assert not shapes_match((4, 6), fc.blobs[0].shape, legacy=False)
    assert not shapes_match((6, 4), fc.blobs[0].shape, legacy=True)
    assert not shapes_match((1, 1, 1, 4, 6), (1, 1, 4, 6), legacy=True)
    # Written back, a V1 model becomes a current one: names, types and blobs as read (the legacy 4-D
    # shapes included: fitting them to the net's shapes needs the net), the V1 messages are not copied.
    again = decode_caffemodel(encode_caffemodel(model.layers, model.name))
    assert again.format == "V2" and [(l.name, l.type) for l in again.layers] == [(l.name, l.type) for l in model.layers]
    assert [x.shape for x in again.layers[2].blobs] == [(1, 1, 4, 6), (1, 1, 1, 4)]
    assert again.layers[2].legacy == (False, False) and not again.layers[1].param.param


def test_legacy_fields_win_over_shape_as_in_caffe():
    """Blob::FromProto uses num/channels/height/width if any is set (an unset one is 0), else shape."""
    blob = caffe_pb2.BlobProto(num=1, channels=1, height=2, width=3, data=range(6),
                               shape=caffe_pb2.BlobShape(dim=[6]))
    (layer,) = decode_caffemodel(model_with_blob(blob.SerializeToString())).layers
    assert layer.blobs[0].shape == (1, 1, 2, 3) and layer.legacy == (True,)
    blob = caffe_pb2.BlobProto(width=3, shape=caffe_pb2.BlobShape(dim=[3]))  # (0, 0, 0, 3): no values
    (layer,) = decode_caffemodel(model_with_blob(blob.SerializeToString())).layers
    assert layer.blobs[0].shape == (0, 0, 0, 3)


def test_v0_model_reads_its_inner_layers():
    net = caffe_pb2.NetParameter(name="v0net")
    k = np.arange(2 * 1 * 3 * 3, dtype=np.float32)
    net.layers.add(layer=caffe_pb2.V0LayerParameter(name="pad1", type="padding", pad=1),
                   bottom=["data"], top=["pad1"])
    net.layers.add(layer=caffe_pb2.V0LayerParameter(name="conv1", type="conv", num_output=2, kernelsize=3,
                                                    blobs=[legacy_blob(k, 2, 1, 3, 3)]),
                   bottom=["pad1"], top=["conv1"])
    net.layers.add(layer=caffe_pb2.V0LayerParameter(name="fc", type="innerproduct"))
    model = decode_caffemodel(net.SerializeToString())
    assert model.format == "V0"
    assert [(l.name, l.type) for l in model.layers] == [("conv1", "Convolution"), ("fc", "InnerProduct")]
    assert same_bits(model.layers[0].blobs[0], k.reshape(2, 1, 3, 3)) and model.layers[0].legacy == (True,)
    assert model.layers[0].param.layer.kernelsize == 3


def test_layer_lookup_by_name():
    model = decode_caffemodel(encode_caffemodel([("a", "ReLU", []), ("b", "Bias", [np.ones(2)]),
                                                 ("b", "Bias", [np.zeros(2)])]))
    assert model.layer("b").blobs[0].tolist() == [0, 0]  # the last entry of a name wins, as in Caffe
    with pytest.raises(KeyError):
        model.layer("c")


# ---------------------------------------------------------------------------------------------------------
# Errors: one line each, pinned


def error_of(path) -> tuple[str, str | None]:
    with pytest.raises(InputError) as e:
        read_caffemodel(path)
    (diag,) = e.value.diagnostics
    assert diag.source_name == str(path) and "\n" not in diag.message
    return diag.message, diag.hint


def test_missing_file_and_directory(tmp_path):
    assert error_of(tmp_path / "nope.caffemodel") == ("no such file", None)
    assert error_of(tmp_path) == ("is a directory, not a .caffemodel file", None)


def test_empty_file(tmp_path):
    path = tmp_path / "e.caffemodel"
    path.write_bytes(b"")
    assert error_of(path) == ("empty file, not a Caffe model", None)


def test_text_prototxt_is_not_a_model(tmp_path):
    path = tmp_path / "net.prototxt"
    path.write_text('name: "LeNet"\nlayer { name: "data" type: "Input" }\n')
    assert error_of(path) == ("not a Caffe model (binary NetParameter): wire type 6 at byte 0",
                              "this is text: a .prototxt describes a net, its weights are in a binary .caffemodel")


def test_truncated_file(tmp_path):
    data = model_with_blob(field(5, np.ones(100, np.float32).tobytes())
                           + field(7, caffe_pb2.BlobShape(dim=[100]).SerializeToString()))
    path = tmp_path / "t.caffemodel"
    path.write_bytes(data[:-10])
    assert error_of(path) == (f"truncated file ({len(data) - 10} bytes): layer #0 runs to byte {len(data)}",
                              "the download or copy was cut short")
    path.write_bytes(data + b"\xa2")  # a tag cut after its first byte
    assert error_of(path) == (f"truncated file ({len(data) + 1} bytes): the field at byte {len(data)} runs "
                              f"past its end", "the download or copy was cut short")


def test_count_disagreeing_with_shape_names_layer_and_blob(tmp_path):
    good = caffe_pb2.BlobProto(data=[1, 2], shape=caffe_pb2.BlobShape(dim=[2]))
    bad = caffe_pb2.BlobProto(data=[1, 2, 3, 4, 5], shape=caffe_pb2.BlobShape(dim=[2, 3]))
    net = caffe_pb2.NetParameter()
    net.layer.add(name="ip", type="InnerProduct", blobs=[good, bad])
    path = tmp_path / "c.caffemodel"
    path.write_bytes(net.SerializeToString())
    assert error_of(path) == ('layer "ip" (InnerProduct), blob 1: shape (2, 3) needs 6 values, the file has 5', None)
    net.layer[0].blobs[1].CopyFrom(legacy_blob(np.ones(6, np.float32), 1, 1, 2, -3))
    path.write_bytes(net.SerializeToString())
    assert error_of(path) == ('layer "ip" (InnerProduct), blob 1: negative dimension in shape (1, 1, 2, -3)', None)


def test_corrupt_layer_entry(tmp_path):
    path = tmp_path / "x.caffemodel"
    path.write_bytes(field(1, b"n") + field(100, field(7, varint(5 << 3 | 2) + varint(40) + b"\0" * 8)))
    assert error_of(path) == ("not a Caffe model (binary NetParameter): the field at byte 8 runs past the end of "
                              "its message (in layer #0)", None)
    path.write_bytes(field(100, field(1, b"a") + b"\x07"))
    assert error_of(path) == ("not a Caffe model (binary NetParameter): wire type 7 at byte 6 (in layer #0)", None)


@pytest.mark.parametrize("name, message, hint", [
    ("data/mean.binaryproto", 'no layers (a Caffe model has "layer" or "layers" entries)',
     "a .binaryproto holds a single blob (such as a mean image), not a model"),
    ("solver/snapshot_resume_adam/snap_iter_20.solverstate", "wire type 3 at byte 4 (in layer #0)",
     "a .solverstate holds a solver's state; its learned_net names the .caffemodel with the weights"),
])
def test_other_caffe_files_are_not_models(name, message, hint):
    path = GOLDEN / name
    if not path.exists():
        pytest.skip(f"{path} not found")
    assert error_of(path) == (f"not a Caffe model (binary NetParameter): {message}", hint)


def test_v1_and_v2_entries_together_are_refused(tmp_path):
    net = caffe_pb2.NetParameter()
    net.layer.add(name="a", type="ReLU")
    net.layers.add(name="b", type=caffe_pb2.V1LayerParameter.RELU)
    path = tmp_path / "m.caffemodel"
    path.write_bytes(net.SerializeToString())
    assert error_of(path) == ('not a Caffe model (binary NetParameter): both "layer" (current) and "layers" (V1) '
                              "entries; Caffe refuses to upgrade such a file", None)
