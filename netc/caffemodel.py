"""Caffe weights in and out: binary `.caffemodel` files (a serialized `caffe.NetParameter`) <-> numpy.

`read_caffemodel` returns, for every layer entry of the file in file order, its name, its type (current type
strings; V1 enums and V0 type strings are mapped the way netc.upgrade maps them) and its blobs as float32
arrays of their stored shapes.  `write_caffemodel` writes the current (V2) format the way Caffe's
`Net::ToProto` does, byte for byte.

Weights are most of a model file (AlexNet: 233 MiB in 16 blobs), and protobuf's Python messages cost as
much again as the file while parsed (then np.array copies the values out), so the reader does not parse
whole messages.  It walks the wire format front to back over the open file and reads each packed `data`
field straight into the numpy array that becomes the blob (`readinto`): the arrays are the only large
allocation, each its own (not a view of a shared buffer), aligned and writable.
Everything else in a layer entry (name, type, bottoms, parameters: a few hundred bytes) is collected and
parsed by protobuf, and so is the rest of any blob that stores its values unpacked (one tag per value:
legal, never written by Caffe, slow either way).
"""
from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass, field
from typing import BinaryIO, Iterable, Sequence

import numpy as np
from google.protobuf.message import DecodeError

from . import caffe_pb2
from .errors import Diagnostic, InputError
from .files import read_error, write_atomic
from .upgrade import V0_TYPES, V1_TYPE_NAMES

__all__ = ["CaffeLayer", "CaffeModel", "read_caffemodel", "decode_caffemodel", "write_caffemodel",
           "encode_caffemodel", "shapes_match"]


@dataclass
class CaffeLayer:
    """One layer entry of a model file.

    `blobs` are float32 arrays in the stored shapes (`shape.dim`, or for a legacy blob the 4-D
    num, channels, height, width); `legacy[i]` says that blob i had the legacy fields, which Caffe compares
    to the net's shape aligned from the end (see `shapes_match`).  `param` is the entry's message without its
    blobs: a LayerParameter, or for V1 and V0 files the V1LayerParameter as stored (not upgraded).
    """

    name: str
    type: str
    blobs: list[np.ndarray]
    param: caffe_pb2.LayerParameter | caffe_pb2.V1LayerParameter
    legacy: tuple[bool, ...] = ()


@dataclass
class CaffeModel:
    path: str
    name: str  # the net's name
    format: str  # "V2" (`layer`), "V1" (`layers`) or "V0" (`layers { layer {} }`)
    layers: list[CaffeLayer] = field(default_factory=list)

    def layer(self, name: str) -> CaffeLayer:
        """The entry named `name`; the last one if the file repeats a name (Caffe copies the weights of
        every entry into the net's layer of that name, so the last copy wins).  KeyError if none."""
        for layer in reversed(self.layers):
            if layer.name == name:
                return layer
        raise KeyError(name)

    def params(self) -> dict[str, np.ndarray]:
        """Every blob under the key "<layer>.<i>" (the convention of the golden params.npz files)."""
        return {f"{layer.name}.{i}": blob for layer in self.layers for i, blob in enumerate(layer.blobs)}


def shapes_match(shape: Sequence[int], stored: Sequence[int], *, legacy: bool) -> bool:
    """Whether a blob stored with shape `stored` fits a net parameter of shape `shape`, as Caffe's
    `Blob::ShapeEquals` decides: exactly, or, for a legacy blob (`legacy`: stored as num, channels, height,
    width), with `shape` at most 4-D and padded with leading 1s to 4 axes.  So an InnerProduct weight (N, K)
    matches a V1 blob 1x1xNxK and its bias (N,) a blob 1x1x1xN.  [blob.cpp ShapeEquals, LegacyShape]"""
    shape, stored = tuple(shape), tuple(stored)
    if not legacy:
        return shape == stored
    return len(shape) <= 4 and (1,) * (4 - len(shape)) + shape == stored


# ---------------------------------------------------------------------------------------------------------
# Reading

# Wire types.  [protobuf encoding]
_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = 0, 1, 2, 3, 4, 5

# NetParameter: layer = 100 (LayerParameter), layers = 2 (V1LayerParameter).  The blobs of a layer entry:
# LayerParameter.blobs = 7, V1LayerParameter.blobs = 6, V0LayerParameter.blobs = 50; a V1 entry of a V0
# file holds its V0 layer in field 1.  BlobProto: num, channels, height, width = 1..4, data = 5,
# diff = 6, shape = 7, double_data = 8, double_diff = 9.
_NET_LAYER, _NET_LAYERS = 100, 2
_BLOBS = {"V2": 7, "V1": 6, "V0": 50}
_MESSAGE = {"V2": caffe_pb2.LayerParameter, "V1": caffe_pb2.V1LayerParameter, "V0": caffe_pb2.V0LayerParameter}
_V1_V0_LAYER = 1
_BLOB_DATA, _BLOB_SHAPE, _BLOB_DOUBLE_DATA = 5, 7, 8
_LEGACY_DIMS = {1: "num", 2: "channels", 3: "height", 4: "width"}
_V1Type = caffe_pb2.V1LayerParameter.LayerType


class _Overrun(Exception):
    """A field runs past the end of the message (or file) that holds it."""


class _Corrupt(Exception):
    """Bytes that are not the wire format of a NetParameter."""


class _Truncated(Exception):
    """The file ends inside a field (or got shorter while being read)."""


class _BadBlob(Exception):
    """A blob whose shape and values disagree."""


class _Stream:
    """Reads protobuf wire format front to back from a binary file, keeping the byte position.  Every read
    names `end`, the end of the message being read; a read past it raises _Overrun."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f = f
        self.size = size
        self.pos = 0
        self.field_start = 0  # where the last tag read began, for messages

    def _bytes(self, n: int, end: int) -> bytes:
        if self.pos + n > end:
            raise _Overrun()
        data = self.f.read(n)
        if len(data) != n:  # the file got shorter since we measured it
            raise _Truncated()
        self.pos += n
        return data

    def varint(self, end: int) -> int:
        start = self.pos
        value = shift = 0
        while True:
            byte = self._bytes(1, end)[0]
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
            if shift >= 70:
                raise _Corrupt(f"a varint longer than 10 bytes at byte {start}")

    def tag(self, end: int) -> tuple[int, int]:
        start = self.field_start = self.pos
        key = self.varint(end)
        number, wire = key >> 3, key & 7
        if wire in (_SGROUP, _EGROUP) or wire > _I32:
            # Groups are legal protobuf but no Caffe message has one; a text file read as binary often
            # starts like one ('#' and 'l' are group tags), so they count as corruption here.
            raise _Corrupt(f"wire type {wire} at byte {start}")
        if number == 0:
            raise _Corrupt(f"field number 0 at byte {start}")
        return number, wire

    def length(self, end: int) -> int:
        """A length prefix; returns where the length-delimited value ends."""
        n = self.varint(end)
        if self.pos + n > end:
            raise _Overrun()
        return self.pos + n

    def take(self, stop: int) -> bytes:
        return self._bytes(stop - self.pos, stop)

    def fill(self, out: np.ndarray, end: int) -> None:
        """Read out.nbytes bytes into the contiguous array `out`."""
        if self.pos + out.nbytes > end:
            raise _Overrun()
        view = memoryview(out.reshape(-1).view(np.uint8))
        done = 0
        while done < len(view):
            got = self.f.readinto(view[done:])
            if not got:
                raise _Truncated()
            done += got
        self.pos += done

    def skip(self, stop: int) -> None:
        if stop > self.size:
            raise _Truncated()
        self.f.seek(stop - self.pos, io.SEEK_CUR)
        self.pos = stop

    def value(self, wire: int, end: int) -> bytes:
        """The encoded value of a field whose tag was just read (length prefix included)."""
        if wire == _VARINT:
            return _varint(self.varint(end))
        if wire == _LEN:
            n = self.varint(end)
            return _varint(n) + self._bytes(n, end)
        return self._bytes(8 if wire == _I64 else 4, end)

    def skip_value(self, wire: int, end: int) -> None:
        if wire == _VARINT:
            self.varint(end)
        elif wire == _LEN:
            self.skip(self.length(end))
        else:
            n = 8 if wire == _I64 else 4
            if self.pos + n > end:
                raise _Overrun()
            self.skip(self.pos + n)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _int32(value: int) -> int:
    """An int32 field's value from its varint (negative numbers are sign-extended to 64 bits)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


@dataclass
class _RawBlob:
    values: np.ndarray  # 1-D float32
    shape: tuple[int, ...]
    legacy: bool


def _read_blob(s: _Stream, end: int) -> _RawBlob:
    """One BlobProto.  Caffe's `Blob::FromProto` rules: the legacy num/channels/height/width, if any of them
    is set, give a 4-D shape (an unset one is 0), else `shape.dim`; `double_data`, if it holds any values,
    is used instead of `data` (converted to float32).  diff and double_diff are skipped."""
    floats: list[np.ndarray] = []
    doubles: list[np.ndarray] = []
    shape_bytes = bytearray()  # every `shape` occurrence: protobuf merges them by concatenation
    legacy: dict[int, int] = {}
    while s.pos < end:
        number, wire = s.tag(end)
        if wire == _LEN and number in (_BLOB_DATA, _BLOB_DOUBLE_DATA):  # packed values: the fast path
            stop = s.length(end)
            width = 4 if number == _BLOB_DATA else 8
            if (stop - s.pos) % width:
                raise _Corrupt(f"a packed field of {stop - s.pos} bytes holds no whole number of "
                               f"{width}-byte values at byte {s.pos}")
            chunk = np.empty((stop - s.pos) // width, "<f4" if width == 4 else "<f8")
            s.fill(chunk, stop)
            (floats if width == 4 else doubles).append(chunk)
        elif wire == _LEN and number == _BLOB_SHAPE:
            shape_bytes += s.take(s.length(end))
        elif wire == _VARINT and number in _LEGACY_DIMS:
            legacy[number] = _int32(s.varint(end))
        elif (number, wire) in ((_BLOB_DATA, _I32), (_BLOB_DOUBLE_DATA, _I64)):
            # Unpacked values, one tag each: protobuf parses the rest of the blob.
            at = s.pos
            rest = _tag(number, wire) + s.take(end)
            try:
                tail = caffe_pb2.BlobProto.FromString(rest)
            except DecodeError as e:
                raise _Corrupt(f"a BlobProto that protobuf cannot parse ({e}) at byte {at}") from None
            floats.append(np.array(tail.data, np.float32))
            doubles.append(np.array(tail.double_data, np.float64))
            if tail.HasField("shape"):
                shape_bytes += tail.shape.SerializeToString()
            for dim, dim_name in _LEGACY_DIMS.items():
                if tail.HasField(dim_name):
                    legacy[dim] = getattr(tail, dim_name)
        else:  # diff, double_diff, fields this schema does not know
            s.skip_value(wire, end)

    if legacy:
        shape = tuple(legacy.get(number, 0) for number in _LEGACY_DIMS)
    else:
        try:
            shape = tuple(caffe_pb2.BlobShape.FromString(bytes(shape_bytes)).dim)
        except DecodeError as e:
            raise _Corrupt(f"a BlobShape that protobuf cannot parse ({e}) before byte {end}") from None
    chunks = doubles if sum(c.size for c in doubles) else floats
    if not chunks:
        values = np.empty(0, np.float32)
    elif len(chunks) == 1:
        values = chunks[0]
    else:
        values = np.concatenate(chunks)
    # No copy on a little-endian machine, where "<f4" is float32.
    return _RawBlob(values.astype(np.float32, copy=False), shape, bool(legacy))


@dataclass
class _RawLayer:
    param: object  # LayerParameter | V1LayerParameter | V0LayerParameter, without blobs
    blobs: list[_RawBlob]


def _read_layer(s: _Stream, end: int, kind: str) -> _RawLayer:
    """One layer entry of kind "V2", "V1" or "V0": the blobs are read here, every other field is collected
    as it is encoded and parsed by protobuf."""
    rest = bytearray()
    blobs: list[_RawBlob] = []
    inner: list[_RawLayer] = []
    while s.pos < end:
        number, wire = s.tag(end)
        if wire == _LEN and number == _BLOBS[kind]:
            blobs.append(_read_blob(s, s.length(end)))
        elif wire == _LEN and kind == "V1" and number == _V1_V0_LAYER:
            inner.append(_read_layer(s, s.length(end), "V0"))
        else:
            rest += _tag(number, wire) + s.value(wire, end)
    try:
        param = _MESSAGE[kind].FromString(bytes(rest))
    except DecodeError as e:
        raise _Corrupt(f"a {_MESSAGE[kind].__name__} that protobuf cannot parse ({e}) before byte {end}") \
            from None
    for v0 in inner:  # (a repeated message field merges, like protobuf does)
        param.layer.MergeFrom(v0.param)
        blobs.extend(v0.blobs)
    return _RawLayer(param, blobs)


def _name_and_type(raw: _RawLayer) -> tuple[str, str] | None:
    """The entry's name and current type string; None for a V0 "padding" layer, which Caffe's upgrade folds
    into the next layer (it has no blobs).  [upgrade_proto.cpp UpgradeV1LayerType, UpgradeV0LayerType]"""
    p = raw.param
    if isinstance(p, caffe_pb2.LayerParameter):
        return p.name, p.type
    if p.HasField("layer"):
        v0 = p.layer
        if v0.type == "padding":
            return None
        # An unknown V0 type is kept as written: upgrading the net definition reports it.
        return v0.name, V1_TYPE_NAMES.get(V0_TYPES.get(v0.type, ""), v0.type)
    enum_name = _V1Type.Name(p.type)
    return p.name, V1_TYPE_NAMES.get(enum_name, enum_name)


def _shape_text(shape: Sequence[int]) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


def _blob_array(raw: _RawBlob, where: str, index: int) -> np.ndarray:
    if any(d < 0 for d in raw.shape):
        raise _BadBlob(f"{where}, blob {index}: negative dimension in shape {_shape_text(raw.shape)}")
    count = math.prod(raw.shape)
    if count != raw.values.size:
        raise _BadBlob(f"{where}, blob {index}: shape {_shape_text(raw.shape)} needs {count} values, the file "
                       f"has {raw.values.size}")
    return raw.values.reshape(raw.shape)


def _read_net(s: _Stream, path: str) -> CaffeModel:
    header = bytearray()  # the net's own fields (name, inputs ...), parsed by protobuf at the end
    layers: list[CaffeLayer] = []
    kinds: set[str] = set()
    index = 0
    while s.pos < s.size:
        try:
            number, wire = s.tag(s.size)
            if wire == _LEN and number in (_NET_LAYER, _NET_LAYERS):
                n = s.varint(s.size)
                if s.pos + n > s.size:
                    raise _Truncated(f"truncated file ({s.size} bytes): layer #{index} runs to byte "
                                     f"{s.pos + n}")
            else:
                header += _tag(number, wire) + s.value(wire, s.size)
                continue
        except _Overrun:
            raise _Truncated(f"truncated file ({s.size} bytes): the field at byte {s.field_start} runs "
                             f"past its end") from None
        kind = "V2" if number == _NET_LAYER else "V1"
        try:
            raw = _read_layer(s, s.pos + n, kind)
        except _Overrun:
            raise _Corrupt(f"the field at byte {s.field_start} runs past the end of its message (in layer "
                           f"#{index})") from None
        except _Corrupt as e:
            raise _Corrupt(f"{e} (in layer #{index})") from None
        index += 1
        named = _name_and_type(raw)
        if named is None:
            continue
        if kind == "V1" and raw.param.HasField("layer"):
            kind = "V0"
        kinds.add(kind)
        name, layer_type = named
        where = f'layer "{name}" ({layer_type})' if name else f"layer #{index - 1} ({layer_type})"
        blobs = [_blob_array(b, where, i) for i, b in enumerate(raw.blobs)]
        layers.append(CaffeLayer(name, layer_type, blobs, raw.param, tuple(b.legacy for b in raw.blobs)))
    try:
        net = caffe_pb2.NetParameter.FromString(bytes(header))
    except DecodeError as e:
        raise _Corrupt(f"a NetParameter that protobuf cannot parse ({e})") from None
    if index == 0:
        raise _Corrupt('no layers (a Caffe model has "layer" or "layers" entries)')
    if "V2" in kinds and len(kinds) > 1:
        raise _Corrupt('both "layer" (current) and "layers" (V1) entries; Caffe refuses to upgrade such a '
                       'file')
    fmt = "V2" if "V2" in kinds else ("V0" if "V0" in kinds else "V1")
    return CaffeModel(path, net.name, fmt, layers)


def _looks_like_text(head: bytes) -> bool:
    return bool(head) and all(32 <= b < 127 or b in b"\t\n\r" for b in head)


def _decode(f: BinaryIO, size: int, name: str) -> CaffeModel:
    def fail(msg: str, hint: str | None = None) -> InputError:
        return InputError([Diagnostic("error", msg, None, hint, source_name=name)])

    if size == 0:
        raise fail("empty file, not a Caffe model")
    s = _Stream(f, size)
    try:
        return _read_net(s, name)
    except _Truncated as e:
        raise fail(str(e) if e.args else f"truncated file: it ended before byte {size}",
                   "the download or copy was cut short") from None
    except _BadBlob as e:
        raise fail(str(e)) from None
    except _Corrupt as e:
        f.seek(0)
        hint = None
        if name.endswith(".solverstate"):
            hint = "a .solverstate holds a solver's state; its learned_net names the .caffemodel with the weights"
        elif name.endswith(".binaryproto"):
            hint = "a .binaryproto holds a single blob (such as a mean image), not a model"
        elif _looks_like_text(f.read(256)):
            hint = "this is text: a .prototxt describes a net, its weights are in a binary .caffemodel"
        raise fail(f"not a Caffe model (binary NetParameter): {e}", hint) from None


def read_caffemodel(path: str | os.PathLike) -> CaffeModel:
    """Read a binary Caffe model (V2 `layer`, V1 `layers` or V0 `layers { layer {} }` entries).

    Raises InputError with a one-line message for a file that cannot be read or is not a model: missing,
    empty, truncated, not a NetParameter, or holding a blob whose values disagree with its shape.
    """
    name = str(path)

    def fail(msg: str) -> InputError:
        return InputError([Diagnostic("error", msg, source_name=name)])

    try:
        # The buffer only serves the small reads (tags, names); blob values bypass it (readinto).
        with open(path, "rb", buffering=1 << 16) as f:
            return _decode(f, os.fstat(f.fileno()).st_size, name)
    except IsADirectoryError:
        raise fail("is a directory, not a .caffemodel file") from None
    except OSError as e:
        raise fail(read_error(e)) from None


def decode_caffemodel(data: bytes, name: str = "<bytes>") -> CaffeModel:
    """`read_caffemodel` of bytes already in memory (the arrays are copies; `data` may be dropped)."""
    return _decode(io.BytesIO(data), len(data), name)


# ---------------------------------------------------------------------------------------------------------
# Writing

def _spec(layer) -> tuple[str, str, Sequence, object]:
    if isinstance(layer, CaffeLayer):
        return layer.name, layer.type, layer.blobs, layer.param
    if len(layer) == 3:
        return (*layer, None)
    return tuple(layer)


def _encode_blob(array) -> list:
    """A BlobProto as Caffe's `Blob::ToProto` writes it, in field-number order like C++ protobuf: packed
    float `data` (omitted when empty), then `shape`, which a 0-axis blob (PReLU's shared slope) has none of:
    ToProto creates it when it adds the first dim."""
    a = np.asarray(array, dtype="<f4", order="C")  # (ascontiguousarray would make a 0-axis blob 1-D)
    parts: list = []
    if a.size:
        parts += [_tag(_BLOB_DATA, _LEN), _varint(a.nbytes), memoryview(a.reshape(-1).view(np.uint8))]
    if a.ndim:
        dims = caffe_pb2.BlobShape(dim=a.shape).SerializeToString()
        parts += [_tag(_BLOB_SHAPE, _LEN), _varint(len(dims)), dims]
    return [_tag(_BLOBS["V2"], _LEN), _varint(sum(len(p) for p in parts)), *parts]


def _split_after(encoded: bytes, number: int) -> int:
    """Offset of the first top-level field of `encoded` whose number is above `number` (its length if
    none): where C++ protobuf, which writes fields in number order, puts field `number`."""
    s = _Stream(io.BytesIO(encoded), len(encoded))
    while s.pos < s.size:
        start = s.pos
        field_number, wire = s.tag(s.size)
        if field_number > number:
            return start
        s.skip_value(wire, s.size)
    return len(encoded)


def _encode_layer(name: str, type_: str, blobs: Sequence, param) -> list:
    msg = caffe_pb2.LayerParameter()
    if isinstance(param, caffe_pb2.LayerParameter):
        msg.CopyFrom(param)
        msg.ClearField("blobs")
    elif param is not None and not isinstance(param, caffe_pb2.V1LayerParameter):
        raise TypeError(f"layer {name!r}: param must be a caffe_pb2.LayerParameter, not {type(param).__name__}")
    # A legacy V1 message is not copied: this writes the current format, and upgrading a layer's definition
    # is netc.upgrade's business.  The weights are matched by name.
    if msg.name != name:
        msg.name = name
    if msg.type != type_:
        msg.type = type_
    encoded = msg.SerializeToString()
    cut = _split_after(encoded, _BLOBS["V2"])
    parts: list = [encoded[:cut]]
    for array in blobs:
        parts += _encode_blob(array)
    parts.append(encoded[cut:])
    return [_tag(_NET_LAYER, _LEN), _varint(sum(len(p) for p in parts)), *parts]


def encode_caffemodel(layers: Iterable, name: str = "") -> bytes:
    """The bytes `write_caffemodel` writes."""
    name_bytes = name.encode("utf-8")
    # Net::ToProto always sets the name, so it is written even when empty.
    parts: list = [_tag(1, _LEN), _varint(len(name_bytes)), name_bytes]
    for layer in layers:
        parts += _encode_layer(*_spec(layer))
    return b"".join(parts)


def write_caffemodel(path: str | os.PathLike, layers: Iterable, name: str = "") -> None:
    """Write a current-format (V2) model: one `layer` entry per item, in order, each blob with `shape` and
    packed float32 `data`, byte for byte what Caffe's `Net::ToProto` writes for the same layers.

    An item is a CaffeLayer or a tuple (name, type, blobs) or (name, type, blobs, param), where blobs are
    array-likes (converted to float32) and param, a LayerParameter or None, is copied into the entry
    (its own blobs dropped; name and type set from the item).  The file is replaced atomically.
    """
    write_atomic(path, encode_caffemodel(layers, name))
