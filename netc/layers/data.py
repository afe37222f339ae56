"""Layers without bottoms: the net's inputs and the data-set readers.

Shapes come without the data set where Caffe's parameters fix them, and from the data set where Caffe
reads it (Data: the first Datum; ImageData: the first listed image; HDF5Data: the first file's datasets).
Every top the user shapes with --input (ctx.given_shape) wins, and a layer whose tops are all given reads
nothing.  --batch (ctx.batch) replaces batch_size.  Paths are relative to the current directory, as in Caffe
(which runs where it is started), and else to the net file's folder.

Reading data sets uses optional packages, imported only when needed: `lmdb` (Data, backend LMDB),
`plyvel` (Data, backend LEVELDB), `h5py` (HDF5Data), and `cv2` (OpenCV, exact) or `PIL` (Pillow) to read the
size of an encoded image.  Without them, or without the data set, the error's hint gives the --input line.
"""
from __future__ import annotations

import io
from pathlib import Path

from ..caffe_pb2 import DataParameter, Datum
from ..errors import InternalError
from . import Inferred, LayerRule, fmt_shape, read_blob_dims, register



class Source(LayerRule):
    bottoms = (0, 0)
    tops = (1, None)


def locate(ctx, name: str) -> Path | None:
    """An existing path named as in the net: relative to the current directory (Caffe's view), else to the
    net file's folder."""
    if not name:
        return None
    path = Path(name)
    if path.exists():
        return path
    if ctx.base_dir is not None and not path.is_absolute():
        there = Path(ctx.base_dir) / path
        if there.exists():
            return there
    return None


def batch_size(ctx, given: list, declared: int, sub: str) -> int:
    """The batch: --batch, else the first axis of a top given with --input, else `batch_size`."""
    if ctx.batch is not None:
        return ctx.batch
    for shape in given:
        if shape:
            return shape[0]
    if declared <= 0:
        raise ctx.fail(f"{sub}.batch_size must be positive", "batch_size", sub=sub,
                       hint=f"set {sub} {{ batch_size: ... }}, or pass --batch N")
    return declared


def input_hint(ctx, dims: str) -> str:
    """The --input line for the first top, with what is known filled in."""
    return f"--input {ctx.layer.tops[0]}={dims}"


class DataSource(Source):
    """A data-set reader: top 0 is the data, an optional top 1 the label (batch,)."""

    data = True
    params = ("transform_param",)
    param_field: str  # its own *_param

    def infer(self, ctx, bottoms):
        tops = ctx.layer.tops
        given = [ctx.given_shape(t) for t in tops]
        if all(g is not None for g in given):
            return Inferred(tops=given)
        n = batch_size(ctx, given, self.declared_batch(ctx), self.param_field)
        data = given[0] if given[0] is not None else (n,) + tuple(self.image_shape(ctx, n))
        shapes = [data, (n,)][: len(tops)]
        return Inferred(tops=[g if g is not None else s for g, s in zip(given, shapes)])

    def declared_batch(self, ctx) -> int:
        return getattr(ctx.param, self.param_field).batch_size

    def image_shape(self, ctx, n: int) -> tuple:
        """(C, H, W) of one item."""
        raise NotImplementedError


def read_mean_file(ctx, path: Path) -> tuple[list, tuple[int, int, int]]:
    """(shape, (channels, height, width)) of a binary BlobProto mean file.  Caffe reads it with the legacy
    4-axis accessors: a missing axis counts as 1.  [blob.hpp LegacyShape]"""
    dims = read_blob_dims(ctx, path, f'the mean file "{path}"', "mean_file", "transform_param")
    if len(dims) > 4:
        raise ctx.fail(f'the mean file "{path}" {fmt_shape(dims)} has more than 4 axes', "mean_file",
                       sub="transform_param")
    legacy = [dims[i] if i < len(dims) else 1 for i in (1, 2, 3)]
    return dims, tuple(legacy)


def mean_hints(ctx) -> tuple[int | None, tuple[int, int] | None]:
    """What the transform's mean fixes without the data: C from mean_value given once per channel, and
    (C, H, W) from a readable mean_file, which must match the stored images.  [data_transformer.cpp]"""
    tp = ctx.param.transform_param
    if len(tp.mean_value) > 1:
        return len(tp.mean_value), None
    path = locate(ctx, tp.mean_file)
    if path is not None and path.is_file():
        _, (c, h, w) = read_mean_file(ctx, path)
        return c, (h, w)
    return None, None


def check_mean(ctx, c: int, h: int, w: int, what: str) -> None:
    """mean_value is given once or once per channel; a mean_file has the images' C, H, W (before the crop).
    [data_transformer.cpp Transform]"""
    tp = ctx.param.transform_param
    if len(tp.mean_value) not in (0, 1, c):
        raise ctx.fail(f"mean_value is given {len(tp.mean_value)} times for {c}-channel images ({what})",
                       "mean_value", sub="transform_param", hint="give one mean_value, or one per channel")
    path = locate(ctx, tp.mean_file)
    if path is not None and path.is_file():
        dims, chw = read_mean_file(ctx, path)
        if chw != (c, h, w):
            raise ctx.fail(f'the mean file "{tp.mean_file}" is {fmt_shape(dims)} but the images are ({c}, {h}, {w}) '
                           f"({what})", "mean_file", sub="transform_param",
                           hint="a mean file has the size of the stored images, before the crop")


# ---- image sizes without the pixels --------------------------------------------------------------------------

# Pillow modes whose channel count OpenCV's IMREAD_UNCHANGED decode is sure to give.
_NATIVE_CHANNELS = {"1": 1, "L": 1, "I": 1, "I;16": 1, "I;16B": 1, "F": 1, "RGB": 3, "YCbCr": 3, "RGBA": 4}


def image_shape(data: bytes, mode: str) -> tuple[int, int, int] | None:
    """(C, H, W) of an encoded image decoded the way Caffe does: mode "color" (IMREAD_COLOR: 3 channels, EXIF
    orientation applied), "gray" (IMREAD_GRAYSCALE: 1 channel, EXIF applied) or "native" (IMREAD_UNCHANGED:
    the stored channels, EXIF ignored).  None when neither OpenCV nor Pillow is installed; ValueError when the
    bytes are not an image.  [io.cpp DecodeDatumToCVMat, ReadImageToCVMat]"""
    try:
        import cv2
        import numpy as np
    except ImportError:
        cv2 = None
    if cv2 is not None:
        flag = {"color": cv2.IMREAD_COLOR, "gray": cv2.IMREAD_GRAYSCALE, "native": cv2.IMREAD_UNCHANGED}[mode]
        img = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
        if img is None:
            raise ValueError("OpenCV cannot decode it")
        return (1 if img.ndim == 2 else img.shape[2], img.shape[0], img.shape[1])
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        im = Image.open(io.BytesIO(data))
    except Exception as e:  # PIL.UnidentifiedImageError and friends
        raise ValueError(f"Pillow cannot read it: {e}") from None
    w, h = im.size
    if mode != "native":
        if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF Orientation: a quarter turn swaps H and W
            h, w = w, h
        return (3 if mode == "color" else 1, h, w)
    c = _NATIVE_CHANNELS.get(im.mode)
    if im.mode == "P":
        c = 4 if "transparency" in im.info else 3
    if c is None:
        raise ValueError(f"it is a {im.mode} image, whose channels after OpenCV's decode Pillow cannot tell "
                         "(install opencv-python)")
    return (c, h, w)


_NO_DECODER = "reading an image's size needs OpenCV (pip install opencv-python-headless) or Pillow"


# ---- the layers --------------------------------------------------------------------------------------------------


@register
class Input(Source):
    type = "Input"
    params = ("input_param",)

    def infer(self, ctx, bottoms):
        """input_param.shape given once (every top) or once per top; --input overrides, --batch sets dim 0.
        [input_layer.cpp LayerSetUp]"""
        layer = ctx.layer
        specs = list(ctx.param.input_param.shape)
        n = len(layer.tops)
        if len(specs) not in (0, 1, n):
            raise ctx.fail(f"input_param gives {len(specs)} shapes for {n} tops", "shape", sub="input_param",
                           hint="give one shape for every top, or one shape per top")
        tops = []
        for i, top in enumerate(layer.tops):
            shape = ctx.given_shape(top)
            if shape is None:
                if not specs:
                    raise ctx.fail(f'the shape of "{top}" is not given', "input_param",
                                   hint=f"add input_param {{ shape {{ dim: ... }} }} or pass --input {top}=NxCxHxW")
                shape = tuple(specs[0 if len(specs) == 1 else i].dim)
                if ctx.batch is not None and shape:
                    shape = (ctx.batch,) + shape[1:]
            tops.append(shape)
        return Inferred(tops=tops)


@register
class DummyData(Source):
    type = "DummyData"
    params = ("dummy_data_param",)

    def infer(self, ctx, bottoms):
        """`shape` once (every top) or once per top, or the legacy num/channels/height/width (4-D), each once
        or once per top, never both; data_filler 0 times, once or once per top.  --batch sets dim 0.
        [dummy_data_layer.cpp LayerSetUp]"""
        p = ctx.param.dummy_data_param
        tops = ctx.layer.tops
        k = len(tops)
        sub = "dummy_data_param"
        if len(p.data_filler) not in (0, 1, k):
            raise ctx.fail(f"data_filler is given {len(p.data_filler)} times for {k} tops", "data_filler",
                           sub=sub, hint="give it not at all (constant 0), once, or once per top")
        legacy = ("num", "channels", "height", "width")
        if any(len(getattr(p, f)) for f in legacy):
            if p.shape:
                raise ctx.fail("both shape and the legacy num/channels/height/width are given", "shape", sub=sub,
                               hint="use shape { dim: ... } only")
            for f in legacy:
                m = len(getattr(p, f))
                if m not in (1, k):
                    raise ctx.fail(f"{f} is given {m} times for {k} tops", f if m else sub, sub=sub,
                                   hint=f"give {f} once, or once per top")
            shapes = [tuple(getattr(p, f)[0 if len(getattr(p, f)) == 1 else i] for f in legacy) for i in range(k)]
        else:
            if len(p.shape) not in (1, k):
                raise ctx.fail(f"dummy_data_param gives {len(p.shape)} shapes for {k} tops",
                               "shape" if p.shape else sub, sub=sub,
                               hint="give shape { dim: ... } once, or once per top")
            shapes = [tuple(p.shape[0 if len(p.shape) == 1 else i].dim) for i in range(k)]
        out = []
        for top, shape in zip(tops, shapes):
            given = ctx.given_shape(top)
            if given is not None:
                shape = given
            elif ctx.batch is not None and shape:
                shape = (ctx.batch,) + shape[1:]
            out.append(shape)
        return Inferred(tops=out)


@register
class Data(DataSource):
    type = "Data"
    params = ("data_param", "transform_param")
    tops = (1, 2)
    param_field = "data_param"

    def image_shape(self, ctx, n):
        """(C, crop, crop), or (C, H, W) without crop_size, from the first Datum of the database: raw datums
        carry C, H, W; encoded ones are decoded (force_color: 3 channels, force_gray: 1, else the stored
        ones).  Without the database, C comes from mean_value given once per channel, a mean_file or
        force_color/force_gray, and H, W from crop_size or the mean_file.
        [data_layer.cpp DataLayerSetUp, data_transformer.cpp InferBlobShape]"""
        tp = ctx.param.transform_param
        crop = tp.crop_size
        if tp.force_color and tp.force_gray:
            raise ctx.fail("force_color and force_gray cannot both be set", "force_gray", sub="transform_param")
        dims = f"{n}xCx{crop}x{crop}" if crop else f"{n}xCxHxW"
        datum, where = self.first_datum(ctx, dims)
        if datum is None:
            return self.without_data(ctx, crop, where)
        what = f'the first record of "{ctx.param.data_param.source}"'
        if datum.encoded:
            mode = "color" if tp.force_color else "gray" if tp.force_gray else "native"
            try:
                found = image_shape(datum.data, mode)
            except ValueError as e:
                raise ctx.fail(f"{what} is an encoded image that cannot be read: {e}", "source",
                               sub="data_param") from None
            if found is None:
                return self.without_data(ctx, crop, (f"{what} is an encoded image; {_NO_DECODER}",
                                                     f"install one, or give the shape: {input_hint(ctx, dims)}"))
            c, h, w = found
        else:
            c, h, w = datum.channels, datum.height, datum.width
            if c <= 0 or h <= 0 or w <= 0:
                raise ctx.fail(f"{what} is a raw Datum with channels {c}, height {h}, width {w}", "source",
                               sub="data_param", hint="every stored image needs positive C, H and W")
        check_mean(ctx, c, h, w, what)
        if crop:
            if h < crop or w < crop:
                raise ctx.fail(f"crop_size {crop} is larger than the stored images ({h}x{w}, {what})",
                               "crop_size", sub="transform_param")
            return (c, crop, crop)
        return (c, h, w)

    def without_data(self, ctx, crop: int, where: tuple) -> tuple:
        """C, H, W from the transform alone, or the located error `where` = (message, hint)."""
        tp = ctx.param.transform_param
        c, hw = mean_hints(ctx)
        if c is None and (tp.force_color or tp.force_gray):
            c = 3 if tp.force_color else 1
        if crop:
            hw = (crop, crop)
        if c is not None and hw is not None:
            return (c,) + tuple(hw)
        message, hint = where
        raise ctx.unknown(message, "source", sub="data_param", hint=hint)

    def first_datum(self, ctx, dims: str):
        """(Datum, None) from the database, or (None, (message, hint)) when it cannot be read here."""
        dp = ctx.param.data_param
        source = dp.source
        hint = f"netc reads C, H and W from the data set's first record; without it, give the shape: " \
               f"{input_hint(ctx, dims)}"
        if not source:
            return None, ("data_param.source is not set", hint)
        path = locate(ctx, source)
        if path is None:
            return None, (f'the data set "{source}" is not found (relative to the current directory or to the '
                          "net file's folder)", hint)
        lmdb_files = path.is_dir() and (path / "data.mdb").exists()
        level_files = path.is_dir() and (path / "CURRENT").exists()
        if dp.backend == DataParameter.LEVELDB and lmdb_files and not level_files:
            raise ctx.fail(f'"{source}" is an LMDB but backend is LEVELDB (the default)', "source",
                           sub="data_param", hint="add backend: LMDB to data_param")
        if dp.backend == DataParameter.LMDB and level_files and not lmdb_files:
            raise ctx.fail(f'"{source}" is a LevelDB but backend is LMDB', "backend", sub="data_param",
                           hint="set backend: LEVELDB (or leave backend out: LEVELDB is the default)")
        try:
            if dp.backend == DataParameter.LMDB:
                try:
                    import lmdb
                except ImportError:
                    return None, (f'reading the LMDB "{source}" needs the Python package lmdb (pip install lmdb)',
                                  hint)
                env = lmdb.open(str(path), readonly=True, lock=False, subdir=path.is_dir())
                try:
                    with env.begin() as txn:
                        cursor = txn.cursor()
                        value = bytes(cursor.value()) if cursor.first() else None
                finally:
                    env.close()
            else:
                try:
                    import plyvel
                except ImportError:
                    return None, (f'reading the LevelDB "{source}" needs the Python package plyvel '
                                  "(pip install plyvel)", hint)
                db = plyvel.DB(str(path), create_if_missing=False)
                try:
                    first = next(db.iterator(), None)
                    value = first[1] if first is not None else None
                finally:
                    db.close()
        except Exception as e:  # lmdb.Error, plyvel.Error: the library's own words
            backend = DataParameter.DB.Name(dp.backend)
            raise ctx.fail(f'cannot open "{source}" as {backend}: {e}', "source", sub="data_param") from None
        if value is None:
            raise ctx.fail(f'the data set "{source}" has no records', "source", sub="data_param")
        datum = Datum()
        try:
            datum.ParseFromString(value)
        except Exception as e:
            raise ctx.fail(f'the first record of "{source}" is not a caffe.Datum ({e})', "source",
                           sub="data_param") from None
        return datum, None


@register
class ImageData(DataSource):
    type = "ImageData"
    params = ("image_data_param", "transform_param")
    tops = (2, 2)
    param_field = "image_data_param"

    def image_shape(self, ctx, n):
        """(3 if is_color else 1, H', W'): crop_size if set, else new_height x new_width if set (both or
        neither), else the size of the first listed image (read here when it can be).
        [image_data_layer.cpp DataLayerSetUp]"""
        p = ctx.param.image_data_param
        sub = "image_data_param"
        crop = ctx.param.transform_param.crop_size
        nh, nw = p.new_height, p.new_width
        if (nh == 0) != (nw == 0):
            raise ctx.fail("new_height and new_width must be set together", "new_height" if nh else "new_width",
                           sub=sub, hint="set both to resize every image, or neither")
        c = 3 if p.is_color else 1
        if nh:
            check_mean(ctx, c, nh, nw, f"resized to {nh}x{nw}")
            if crop and (nh < crop or nw < crop):
                raise ctx.fail(f"crop_size {crop} is larger than the resized images ({nh}x{nw})", "crop_size",
                               sub="transform_param")
        if crop:
            return (c, crop, crop)
        if nh:
            return (c, nh, nw)
        mc, hw = mean_hints(ctx)
        if hw is not None and mc == c:
            return (c,) + hw
        return self.first_image(ctx, n, c)

    def first_image(self, ctx, n: int, c: int) -> tuple:
        """(C, H, W) of the first listed image.  List lines are `path label`, split at the last space;
        root_folder is prepended as a plain string.  [image_data_layer.cpp DataLayerSetUp]"""
        p = ctx.param.image_data_param
        hint = ("without new_height/new_width or crop_size, the top has the first image's size; give it: "
                f"{input_hint(ctx, f'{n}x{c}xHxW')}")
        listing = locate(ctx, p.source)
        if listing is None or not listing.is_file():
            raise ctx.unknown(f'the image list "{p.source}" is not found (relative to the current directory or to '
                           "the net file's folder)", "source", sub="image_data_param", hint=hint)
        lines = listing.read_text(errors="replace").splitlines()
        if not lines:
            raise ctx.fail(f'the image list "{p.source}" is empty', "source", sub="image_data_param")
        name = lines[0].rsplit(" ", 1)[0] if " " in lines[0] else lines[0]
        image = locate(ctx, p.root_folder + name)
        if image is None or not image.is_file():
            raise ctx.unknown(f'the first listed image "{p.root_folder + name}" is not found', "source",
                           sub="image_data_param", hint=hint)
        try:
            found = image_shape(image.read_bytes(), "color" if p.is_color else "gray")
        except ValueError as e:
            raise ctx.fail(f'the first listed image "{p.root_folder + name}" cannot be read: {e}', "source",
                           sub="image_data_param") from None
        if found is None:
            raise ctx.unknown(f'the size of the first listed image "{p.root_folder + name}" is unknown: '
                           f"{_NO_DECODER}", "source", sub="image_data_param", hint=hint)
        check_mean(ctx, *found, f'the first listed image "{p.root_folder + name}"')
        return found


@register
class WindowData(DataSource):
    type = "WindowData"
    params = ("window_data_param", "transform_param")
    tops = (2, 2)
    param_field = "window_data_param"

    def image_shape(self, ctx, n):
        """(3, crop, crop): crop_size is required; the windows are read in colour.  (Caffe sizes the top with
        the channel count written in the window file, 3 for the colour images it reads.)
        [window_data_layer.cpp DataLayerSetUp]"""
        crop = ctx.param.transform_param.crop_size
        if crop <= 0:
            raise ctx.fail("WindowData needs transform_param.crop_size", "crop_size", sub="transform_param",
                           hint="every window is warped or cropped to crop_size x crop_size")
        return (3, crop, crop)


@register
class MemoryData(DataSource):
    type = "MemoryData"
    params = ("memory_data_param", "transform_param")
    tops = (2, 2)
    param_field = "memory_data_param"

    def image_shape(self, ctx, n):
        """(channels, height, width), all required and positive.  [memory_data_layer.cpp DataLayerSetUp]"""
        p = ctx.param.memory_data_param
        for f in ("channels", "height", "width"):
            if getattr(p, f) <= 0:
                raise ctx.fail(f"memory_data_param.{f} must be positive", f, sub="memory_data_param",
                               hint="MemoryData takes its shape from batch_size, channels, height and width")
        check_mean(ctx, p.channels, p.height, p.width, "memory_data_param")
        return (p.channels, p.height, p.width)


@register
class HDF5Data(Source):
    type = "HDF5Data"
    params = ("hdf5_data_param",)  # no transform_param: HDF5 data is used as stored
    data = True

    def infer(self, ctx, bottoms):
        """Each top is the dataset of its name in the first listed file: [batch] + dataset.shape[1:]; the
        datasets have the same number of rows.  [hdf5_data_layer.cpp LayerSetUp, LoadHDF5FileData]"""
        p = ctx.param.hdf5_data_param
        tops = ctx.layer.tops
        given = [ctx.given_shape(t) for t in tops]
        if all(g is not None for g in given):
            return Inferred(tops=given)
        n = batch_size(ctx, given, p.batch_size, "hdf5_data_param")
        missing = [t for t, g in zip(tops, given) if g is None]
        found = self.read(ctx, n, missing)
        out = []
        for top, g in zip(tops, given):
            out.append(g if g is not None else (n,) + found[top][1:])
        return Inferred(tops=out)

    def read(self, ctx, n: int, names: list) -> dict:
        p = ctx.param.hdf5_data_param
        sub = "hdf5_data_param"
        hint = ("netc reads each top's shape from the first HDF5 file; without it, give the shapes (the batch, "
                "then the dataset's axes after the first): " + " ".join(f"--input {t}={n}x..." for t in names))
        listing = locate(ctx, p.source)
        if listing is None or not listing.is_file():
            raise ctx.unknown(f'the HDF5 file list "{p.source}" is not found (relative to the current directory or '
                           "to the net file's folder)", "source", sub=sub, hint=hint)
        files = listing.read_text(errors="replace").split()
        if not files:
            raise ctx.fail(f'the HDF5 file list "{p.source}" names no file', "source", sub=sub,
                           hint="list one .h5 file per line")
        first = locate(ctx, files[0])
        if first is None:
            raise ctx.unknown(f'the first HDF5 file "{files[0]}" (listed in "{p.source}") is not found', "source",
                           sub=sub, hint=hint)
        try:
            import h5py
        except ImportError:
            raise ctx.unknown(f'reading "{files[0]}" needs the Python package h5py (pip install h5py)', "source",
                           sub=sub, hint=hint) from None
        shapes = {}
        try:
            with h5py.File(first, "r") as f:
                for name in names:
                    if name not in f or not isinstance(f[name], h5py.Dataset):
                        raise ctx.fail(f'the HDF5 file "{files[0]}" has no dataset "{name}" for the top of that '
                                       "name", "source", sub=sub,
                                       hint=f"its datasets: {', '.join(sorted(f.keys())) or 'none'}")
                    shapes[name] = tuple(f[name].shape)
        except OSError as e:  # not an HDF5 file
            raise ctx.fail(f'cannot read "{files[0]}" as HDF5: {e}', "source", sub=sub) from None
        rows = {name: s[0] if s else None for name, s in shapes.items()}
        for name, s in shapes.items():
            if not s:
                raise ctx.fail(f'the dataset "{name}" of "{files[0]}" is a scalar: it needs a first axis of rows',
                               "source", sub=sub)
        if len(set(rows.values())) > 1:
            listed = ", ".join(f'"{k}" {v}' for k, v in rows.items())
            raise ctx.fail(f'the datasets of "{files[0]}" differ in their number of rows ({listed})', "source",
                           sub=sub, hint="every top's dataset holds one row per sample")
        return shapes


@register
class HDF5Output(LayerRule):
    type = "HDF5Output"
    params = ("hdf5_output_param",)
    bottoms = (2, 2)
    tops = (0, 0)

    def infer(self, ctx, bottoms):
        """No top; the data and the label have the same first axis.  [hdf5_output_layer.cpp Forward]"""
        a, b = bottoms
        names = ctx.layer.bottoms
        if not a or not b or a[0] != b[0]:
            raise ctx.fail(f'"{names[0]}" {fmt_shape(a)} and "{names[1]}" {fmt_shape(b)} must have the same first axis',
                           "bottom", 1, hint="HDF5Output writes one data row and one label row per sample")
        return Inferred(tops=[])


# ---- Python layers ---------------------------------------------------------------------------------------------

PYTHON_RULES: dict[tuple[str, str], LayerRule] = {}


def register_python_layer(module: str, layer: str):
    """Class decorator: a shape rule for the Python layer `python_param { module: ... layer: ... }`.

        @register_python_layer("my_layers", "RoIData")
        class RoIData(LayerRule):
            type = "Python"
            def infer(self, ctx, bottoms): return Inferred(tops=[(ctx.batch or 1, 5)])
    """
    def wrap(cls):
        key = (module, layer)
        if key in PYTHON_RULES:
            raise InternalError(f"Python layer {module}.{layer} registered twice")
        PYTHON_RULES[key] = cls()
        return cls
    return wrap


@register
class Python(LayerRule):
    """A user layer written in Python: Caffe declares no blob counts for it."""

    type = "Python"
    params = ("python_param",)
    bottoms = (0, None)
    tops = (0, None)
    in_place = "ok"  # opaque: netc cannot know
    refusal = "a Python layer sets its top shapes in its own code, at run time"

    def infer(self, ctx, bottoms):
        """Tops given with --input, else a rule registered with register_python_layer, else an error."""
        p = ctx.param.python_param
        tops = ctx.layer.tops
        given = [ctx.given_shape(t) for t in tops]
        if all(g is not None for g in given):
            return Inferred(tops=given)
        rule = PYTHON_RULES.get((p.module, p.layer))
        if rule is not None:
            inf = rule.infer(ctx, bottoms)
            inf.tops = [g if g is not None else s for g, s in zip(given, inf.tops)]
            return inf
        missing = [t for t, g in zip(tops, given) if g is None]
        raise ctx.unknown(f'netc cannot infer the tops of the Python layer {p.module}.{p.layer}: its code sets their '
                       "shapes at run time", "layer", sub="python_param",
                       hint="give " + ("its top's shape" if len(tops) == 1 else "the shape of every top") + ": "
                            + " ".join(f"--input {t}=NxCxHxW" for t in missing)
                            + f', or register a rule with netc.layers.data.register_python_layer("{p.module}", '
                              f'"{p.layer}")')
