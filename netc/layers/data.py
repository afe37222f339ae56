"""Layers without bottoms: the net's inputs and the data-set readers."""
from __future__ import annotations

from . import LayerRule, register


class Source(LayerRule):
    bottoms = (0, 0)
    tops = (1, None)


class DataSource(Source):
    data = True
    params = ("transform_param",)


@register
class Input(Source):
    type = "Input"
    params = ("input_param",)


@register
class DummyData(Source):
    type = "DummyData"
    params = ("dummy_data_param",)


@register
class Data(DataSource):
    type = "Data"
    params = ("data_param", "transform_param")
    tops = (1, 2)


@register
class ImageData(DataSource):
    type = "ImageData"
    params = ("image_data_param", "transform_param")
    tops = (2, 2)


@register
class WindowData(DataSource):
    type = "WindowData"
    params = ("window_data_param", "transform_param")
    tops = (2, 2)


@register
class MemoryData(DataSource):
    type = "MemoryData"
    params = ("memory_data_param", "transform_param")
    tops = (2, 2)


@register
class HDF5Data(DataSource):
    type = "HDF5Data"
    params = ("hdf5_data_param",)  # no transform_param: HDF5 data is used as stored


@register
class HDF5Output(LayerRule):
    type = "HDF5Output"
    params = ("hdf5_output_param",)
    bottoms = (2, 2)
    tops = (0, 0)


@register
class Python(LayerRule):
    """A user layer written in Python: Caffe declares no blob counts for it."""

    type = "Python"
    params = ("python_param",)
    bottoms = (0, None)
    tops = (0, None)
    in_place = "ok"  # opaque: netc cannot know
