"""netc: a Caffe-style declarative network compiler.

    netc.parse_prototxt(text_or_path, kind="net"|"solver")   -> caffe_pb2 message, exactly as written
    netc.load_net(path, phase="TRAIN"|"TEST", stages=(), level=0) -> Net IR (upgraded, filtered, checked)

Nothing imported here pulls in torch: parsing, checking, reports and drawing start fast.
"""
from __future__ import annotations

from .errors import NetcError
from .frontend import parse_prototxt

__version__ = "0.1.0"

__all__ = ["NetcError", "parse_prototxt", "load_net", "__version__"]


def __getattr__(name: str):
    # The graph stage is imported on first use (it is not needed to parse).
    if name == "load_net":
        from .graph import load_net
        return load_net
    raise AttributeError(f"module 'netc' has no attribute {name!r}")
