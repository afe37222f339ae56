"""Caffe weights in and out of generated modules, and state_dict files for the standalone ones.

    load_caffemodel(module, path, strict=True)  copy a .caffemodel's blobs into the module, by layer name
    save_caffemodel(module, path)               write the module's blobs as a .caffemodel Caffe loads
    caffemodel_state_dict(module_cls, path)     the state_dict a .caffemodel makes (for convert-weights)
    save_state_dict(state, path)                .pt (torch.save) or .safetensors, atomically

A generated class lists its Caffe layers and their blobs (`CAFFE_LAYERS`: state_dict key and Caffe shape per
blob, in Caffe's order), so these work on any generated module, in-process or loaded from a file.  The file
side is netc.caffemodel's streaming reader: nothing is unpickled.
"""
from __future__ import annotations

import json
import os
from typing import Iterable

import numpy as np

from .caffemodel import CaffeModel, read_caffemodel, shapes_match, write_caffemodel
from .errors import Diagnostic, InputError, UsageError
from .files import write_atomic
from .layers import fmt_shape

__all__ = ["load_caffemodel", "save_caffemodel", "caffemodel_state_dict", "save_state_dict", "WeightsError"]


class WeightsError(InputError):
    """A model file that does not fit the net: a layer missing, a blob count or shape that differs."""


def _table(module) -> dict:
    table = getattr(type(module), "CAFFE_LAYERS", None)
    if table is None:
        raise UsageError(f"{type(module).__name__} is not a netc-generated module (it has no CAFFE_LAYERS table)")
    return table


def _matched(table: dict, model: CaffeModel, path: str, strict: bool) -> Iterable:
    """(key, Caffe shape, array) for every blob of the net that the file has; raises WeightsError listing
    every missing layer and every blob whose count or shape differs (Caffe's CopyTrainedLayersFrom checks)."""
    problems: list[str] = []
    found = []
    names = {layer.name for layer in model.layers}
    for name, (type_, blobs) in table.items():
        if name not in names:
            if strict and blobs:  # a layer without blobs needs nothing from the file (Caffe skips it too)
                problems.append(f'layer "{name}" ({type_}) is not in the file')
            continue
        entry = model.layer(name)
        if len(entry.blobs) != len(blobs):
            problems.append(f'layer "{name}" ({type_}): the file has {len(entry.blobs)} blobs, the net needs '
                            f"{len(blobs)}")
            continue
        legacy = entry.legacy or (False,) * len(blobs)
        for i, ((key, shape), array, old) in enumerate(zip(blobs, entry.blobs, legacy)):
            if not shapes_match(shape, array.shape, legacy=old):
                problems.append(f'layer "{name}" ({type_}) blob {i}: the net needs {fmt_shape(shape)}, the file '
                                f"has {fmt_shape(array.shape)}")
                continue
            found.append((key, tuple(shape), array))
    if problems:
        hint = ("a model trained for another net, or the net changed since; load_caffemodel(strict=False) skips "
                "layers that the file lacks (their fillers stay)") if strict else None
        raise WeightsError([Diagnostic("error", f"{path}: {p}", None, hint if i == len(problems) - 1 else None)
                            for i, p in enumerate(problems)])
    return found


def load_caffemodel(module, path: str | os.PathLike, strict: bool = True) -> list[str]:
    """Copy the blobs of a binary .caffemodel (V0, V1 or current format) into `module` by layer name, the way
    Caffe's Net::CopyTrainedLayersFrom does: BatchNorm statistics go to its buffers; a blob whose shape
    differs is an error naming the layer and both shapes; so is a layer with blobs that the file lacks, unless
    strict=False (fine-tuning a replaced classifier: its fillers stay).  Layers without blobs (ReLU, a deploy
    net's Input and Softmax) need no entry.  Returns the names of the file's layers the net has no use for
    (Caffe ignores them too)."""
    import torch
    table = _table(module)
    model = read_caffemodel(path)
    state = module.state_dict(keep_vars=True)
    with torch.no_grad():
        for key, _shape, array in _matched(table, model, str(path), strict):
            target = state[key]
            target.copy_(torch.from_numpy(array).reshape(target.shape))
    return [layer.name for layer in model.layers if layer.name not in table and layer.blobs]


def save_caffemodel(module, path: str | os.PathLike, name: str = "") -> None:
    """Write the module's blobs as a current-format binary NetParameter (one `layer` entry per layer with
    blobs: name, type and the blobs in Caffe's order and shapes), which Caffe's CopyTrainedLayersFrom and
    netc.load_caffemodel read.  The file is replaced atomically."""
    import torch
    state = module.state_dict()

    def blobs(specs):
        return [state[key].detach().to("cpu", torch.float32).reshape(shape).numpy() for key, shape in specs]

    write_caffemodel(path, ((layer, type_, blobs(specs)) for layer, (type_, specs) in _table(module).items()),
                     name=name or getattr(type(module), "__name__", ""))


def caffemodel_state_dict(module, path: str | os.PathLike) -> dict:
    """The state_dict that loading `path` into `module` would give, built without touching the module's own
    tensors (it may live on the meta device): a tensor per key, in the module's shapes; every layer must be
    in the file."""
    import torch
    shapes = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    model = read_caffemodel(path)
    out = {}
    for key, _shape, array in _matched(_table(module), model, str(path), strict=True):
        out[key] = torch.from_numpy(array).reshape(shapes[key])
    missing = [k for k in shapes if k not in out]
    if missing:
        raise WeightsError(f"{path}: no blob for {', '.join(missing)}",
                           hint="these module tensors have no Caffe blob in CAFFE_LAYERS")
    return {k: out[k] for k in shapes}


def save_state_dict(state: dict, path: str | os.PathLike) -> None:
    """`.pt`: torch.save of plain tensors (load with torch.load(path, weights_only=True)); `.safetensors`: the
    safetensors format (an 8-byte header length, a JSON header, the raw little-endian data).  Atomic."""
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        write_atomic(path, _safetensors(state))
    elif path.endswith(".pt") or path.endswith(".pth"):
        import io

        import torch
        buf = io.BytesIO()
        torch.save({k: v.detach().cpu().contiguous() for k, v in state.items()}, buf)
        write_atomic(path, buf.getvalue())
    else:
        raise UsageError(f"{path}: the output must end in .pt, .pth or .safetensors")


_SAFETENSORS_DTYPES = {"float32": "F32", "float64": "F64", "float16": "F16", "bfloat16": "BF16", "int64": "I64",
                       "int32": "I32", "uint8": "U8", "bool": "BOOL"}


def _safetensors(state: dict) -> bytes:
    import torch
    header: dict = {}
    chunks: list[bytes] = []
    offset = 0
    for key, tensor in state.items():
        t = tensor.detach().cpu().contiguous()
        dtype = str(t.dtype).replace("torch.", "")
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[key] = {"dtype": _SAFETENSORS_DTYPES[dtype], "shape": list(t.shape),
                       "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    return len(text).to_bytes(8, "little") + text + b"".join(chunks)


def read_safetensors(path: str | os.PathLike) -> dict:
    """A .safetensors file as {key: numpy array} (float and integer dtypes; used by tests and tools)."""
    raw = open(path, "rb").read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    names = {v: k for k, v in _SAFETENSORS_DTYPES.items() if k != "bfloat16"}
    out = {}
    for key, meta in header.items():
        if key == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        out[key] = np.frombuffer(raw[base + start:base + end], dtype=names[meta["dtype"]]).reshape(meta["shape"])
    return out
