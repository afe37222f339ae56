"""The layer registry: everything netc knows about a layer type, in one place per type.

Each BVLC layer type is a `LayerRule` subclass registered under Caffe's type string, the way Caffe's
`REGISTER_LAYER_CLASS` does.  Here a rule states its blob counts (Caffe's Exact/Min/MaxNum*Blobs), whether
it may run in place, whether it is a loss layer, and the `*_param` fields it reads; the analysis stages add
shapes, parameters and costs to the same classes.
"""
from __future__ import annotations

from typing import Callable, ClassVar

from ..errors import InternalError, did_you_mean

UNBOUNDED = None


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

    def blob_counts(self, layer) -> tuple[tuple[int, int | None], tuple[int, int | None]]:
        """(bottoms, tops) ranges for this layer; some types depend on their parameters."""
        return self.bottoms, self.tops


REGISTRY: dict[str, LayerRule] = {}


def register(cls: type[LayerRule]) -> type[LayerRule]:
    """Class decorator: register a rule under its `type` (twice is a netc bug)."""
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
