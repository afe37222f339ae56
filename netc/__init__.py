"""netc: a Caffe-style declarative network compiler.

    netc.parse_prototxt(text_or_path, kind="net"|"solver")   -> caffe_pb2 message, exactly as written
    netc.load_net(path, phase="TRAIN"|"TEST", stages=(), level=0) -> Net IR (upgraded, filtered, checked)
    netc.analyze(net, inputs=None, batch=None)                -> Analysis (shapes, params, MACs, fields)
    netc.report(net_or_path, batch=None)                      -> Report (.to_table(), .to_json(), ...)
    netc.build_module(net_or_path, phase="TEST")              -> torch nn.Module with Caffe's semantics
    netc.load_caffemodel(module, path) / netc.save_caffemodel(module, path)   Caffe weights in and out

Nothing imported here pulls in torch: parsing, checking, reports and drawing start fast; code generation
imports it on first use.
"""
from __future__ import annotations

from .errors import NetcError
from .frontend import parse_prototxt

__version__ = "0.1.0"

__all__ = ["NetcError", "parse_prototxt", "load_net", "analyze", "report", "build_module", "load_caffemodel",
           "save_caffemodel", "__version__"]


def __getattr__(name: str):
    # Later stages are imported on first use (they are not needed to parse).
    if name == "load_net":
        from .graph import load_net
        return load_net
    if name == "analyze":
        from .analysis import analyze
        return analyze
    if name == "report":
        from .reports import report
        return report
    if name == "build_module":
        from .emit import build_module
        return build_module
    if name in ("load_caffemodel", "save_caffemodel"):
        from . import weights
        return getattr(weights, name)
    raise AttributeError(f"module 'netc' has no attribute {name!r}")
