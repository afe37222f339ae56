"""The layer registry: everything netc knows about a layer type, in one place per type.

Each BVLC layer type is a `LayerRule` subclass registered under Caffe's type string, the way Caffe's
`REGISTER_LAYER_CLASS` does.  Here a rule states its blob counts (Caffe's Exact/Min/MaxNum*Blobs), whether
it may run in place, whether it is a loss layer, and the `*_param` fields it reads; the analysis stages add
shapes, parameters and costs to the same classes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from ..errors import Diagnostic, Diagnostics, InternalError, Span, did_you_mean

if TYPE_CHECKING:
    from ..graph import Layer

UNBOUNDED = None
Shape = tuple  # tuple[int, ...]: a Caffe blob shape (N, C, H, W, ...); () is a 0-axis scalar


class ShapeFailure(Exception):
    """Raised by a rule after it reported its error through RuleContext.fail: the layer's tops stay unknown."""


class ShapeUnknown(ShapeFailure):
    """Raised through RuleContext.unknown: the shapes need something netc cannot see here (the data set, a
    Python layer's code); not a mistake in the net."""


@dataclass(frozen=True)
class Window:
    """A sliding window along one spatial axis, for receptive fields: kernel, stride, pad, dilation."""

    kernel: int
    stride: int = 1
    pad: int = 0
    dilation: int = 1


@dataclass
class Inferred:
    """What a rule says about one layer, given its bottom shapes."""

    tops: list                       # top shapes, one per top
    blobs: list = field(default_factory=list)  # the shapes of Caffe's layer.blobs(), in Caffe's order
    learnable: bool = True           # False: the blobs are statistics (BatchNorm), not trained parameters
    macs: int = 0                    # multiply-accumulates of the forward pass (conv, deconv, fc, ...)
    other_ops: int = 0               # other arithmetic (see docs: pooling, LRN, eltwise, softmax ...)
    # Receptive field: "window" (windows per spatial axis below), "same" (element-wise: top i keeps bottom i's
    # field), "merge" (the union of the bottoms' fields: Concat, Eltwise), "none" (not spatial any more).
    rf: str = "none"
    windows: list | None = None      # [Window] per spatial axis (H, W) for rf == "window"


class RuleContext:
    """What a rule may use: the layer, located errors and warnings, and the user's shapes (--input, --batch)."""

    def __init__(self, layer: "Layer", diags: Diagnostics, given: dict | None = None, batch: int | None = None,
                 base_dir=None, lenient: bool = False) -> None:
        self.layer = layer
        self.lenient = lenient
        self.param = layer.param
        self.diags = diags
        self.given = given or {}
        self.batch = batch
        self.base_dir = base_dir

    def _span(self, field: str | None, index: int, sub: str | None) -> Span | None:
        loc = self.layer.loc
        if sub is not None and loc.has_field_text(sub):
            loc = loc.child(sub)
        if field is None:
            return self.layer.span()
        if loc.node is None or not loc.has_field_text(field):
            return loc.span() if sub else self.layer.span()
        return loc.value_span(field, index)

    def fail(self, message: str, field: str | None = None, index: int = 0, hint: str | None = None,
             sub: str | None = None) -> ShapeFailure:
        """Report a located error on this layer; `raise ctx.fail(...)`."""
        self.diags.error(f"{self.layer.label}: {message}", self._span(field, index, sub), hint)
        return ShapeFailure(message)

    def unknown(self, message: str, field: str | None = None, index: int = 0, hint: str | None = None,
                sub: str | None = None) -> ShapeFailure:
        """The shapes depend on what is not here (the data set, a Python layer's code): an error for a report,
        which needs them, a note for `netc check` (lenient), which then checks the rest of the net without
        the shapes that follow from this layer.  `raise ctx.unknown(...)`."""
        if not self.lenient:
            return self.fail(message, field, index, hint, sub)
        self.diags.items.append(Diagnostic("note", f"{self.layer.label}: {message}; the shapes that depend on it "
                                           "are not checked", self._span(field, index, sub), hint))
        return ShapeUnknown(message)

    def warn(self, message: str, field: str | None = None, index: int = 0, hint: str | None = None,
             sub: str | None = None) -> None:
        self.diags.warning(f"{self.layer.label}: {message}", self._span(field, index, sub), hint)

    def given_shape(self, top: str) -> Shape | None:
        """The shape the user gave for a top with --input, if any."""
        s = self.given.get(top)
        return tuple(s) if s is not None else None


def fmt_shape(shape: Shape) -> str:
    """A shape as messages write it: (2, 3, 8, 8); a 1-axis shape is (5), a 0-axis scalar ()."""
    return "(" + ", ".join(map(str, shape)) + ")"


def read_blob_dims(ctx: "RuleContext", path, what: str, field: str, sub: str) -> list:
    """The dims of a binary caffe.BlobProto file (a mean file, an infogain matrix): `shape` if set, else the
    legacy num/channels/height/width.  An unreadable or non-BlobProto file is a located error on `field`."""
    from ..caffe_pb2 import BlobProto
    blob = BlobProto()
    try:
        blob.ParseFromString(path.read_bytes())
    except Exception as e:  # protobuf's DecodeError, or an unreadable file
        raise ctx.fail(f'{what} is not a binary caffe.BlobProto ({e})', field, sub=sub) from None
    return list(blob.shape.dim) if blob.HasField("shape") else [blob.num, blob.channels, blob.height, blob.width]


def count(shape: Shape, start: int = 0, end: int | None = None) -> int:
    """The product of dims [start, end) (Caffe's Blob::count)."""
    return math.prod(shape[start:end])


def canonical_axis(ctx: RuleContext, axis: int, ndim: int, field: str = "axis", sub: str | None = None) -> int:
    """A negative axis counts from the end (Blob::CanonicalAxisIndex); out of range is an error."""
    if not -ndim <= axis < ndim:
        raise ctx.fail(f"axis {axis} is out of range for a {ndim}-axis bottom", field, sub=sub)
    return axis + ndim if axis < 0 else axis


class LayerRule:
    """Base of every layer rule; the class attributes are Caffe's declared blob counts."""

    type: ClassVar[str]
    params: ClassVar[tuple[str, ...]] = ()      # the LayerParameter *_param fields this type reads
    bottoms: ClassVar[tuple[int, int | None]] = (1, 1)   # (min, max); max None = unbounded
    tops: ClassVar[tuple[int, int | None]] = (1, 1)
    equal_bottoms_tops: ClassVar[bool] = False  # Convolution: top i is the transform of bottom i
    loss: ClassVar[bool] = False                # a LossLayer subclass: loss_weight 1 on top 0 by default
    auto_top: ClassVar[bool] = False            # Caffe creates a missing top ("(automatic)")
    # In place (top j == bottom j): "ok" (designed for it), "refused" (Caffe CHECK-fails), "unsafe" (Caffe
    # accepts it but computes something else than the user meant: backward or the result is wrong).
    in_place: ClassVar[str] = "unsafe"
    in_place_note: ClassVar[str] = ""
    data: ClassVar[bool] = False                # a data-source layer (no bottoms, reads a data set)

    # Where netc cannot infer shapes statically, the reason (the layer then needs --input on its tops).
    refusal: ClassVar[str | None] = None

    def blob_counts(self, layer) -> tuple[tuple[int, int | None], tuple[int, int | None]]:
        """(bottoms, tops) ranges for this layer; some types depend on their parameters."""
        return self.bottoms, self.tops

    def infer(self, ctx: RuleContext, bottoms: list) -> Inferred:
        """Top shapes, blob shapes and costs from the bottom shapes.  Report problems with ctx.fail/warn."""
        raise ctx.fail(f"netc has no shape rule for {self.type} yet")


class Opaque(LayerRule):
    """A layer of a type netc does not know (a Caffe fork's), all of whose tops the user shaped with --input."""

    type = "(opaque)"
    bottoms = (0, None)
    tops = (0, None)
    in_place = "ok"

    def infer(self, ctx, bottoms):
        return Inferred(tops=[ctx.given_shape(t) for t in ctx.layer.tops])


REGISTRY: dict[str, LayerRule] = {}


def register(cls: type[LayerRule]) -> type[LayerRule]:
    """Class decorator: register a rule under its `type` (twice is a netc bug).  It is also the plugin hook
    for layer types of Caffe forks:

        @netc.layers.register
        class Normalize(netc.layers.LayerRule):
            type = "Normalize"
            def infer(self, ctx, bottoms):
                return netc.layers.Inferred(tops=[bottoms[0]], blobs=[(bottoms[0][1],)], rf="same")
    """
    _load()
    name = cls.type
    if name in REGISTRY:
        raise InternalError(f"layer type {name!r} registered twice")
    REGISTRY[name] = cls()
    return cls


def rule_for(type_name: str) -> LayerRule | None:
    _load()
    return REGISTRY.get(type_name)


def known_types() -> list[str]:
    _load()
    return sorted(REGISTRY)


def nearest_types(type_name: str, n: int = 3) -> list[str]:
    _load()
    exact = [t for t in REGISTRY if t.lower() == type_name.lower()]
    return exact or did_you_mean(type_name, REGISTRY, n=n)


_loaded = False


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        from . import common, data, loss, neuron, recurrent, vision  # noqa: F401  (they register)
