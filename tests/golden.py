"""Access to the real Caffe's reference outputs in ../shared/golden, for the tests."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
GOLDEN = SHARED / "golden"
LAYER_CASES = GOLDEN / "layers"
SHAPES = GOLDEN / "shapes"

needs_golden = pytest.mark.skipif(not GOLDEN.is_dir(), reason=f"Caffe's golden outputs not found at {GOLDEN}")


def shape_instances() -> list:
    """pytest params for every phase instance of golden/shapes (corpus nets, legacy ones included); the
    variants and the nets inline in a solver file (`*.net_param.*`) are left out."""
    if not SHAPES.is_dir():
        return []
    out = []
    for f in sorted(SHAPES.rglob("*.json")):
        rel = f.relative_to(SHAPES)
        if f.name == "index.json" or rel.parts[0] == "variants" or ".net_param." in f.name:
            continue
        out.append(pytest.param(f, id=str(rel)))
    return out


def shape_source(golden: dict, path: Path) -> Path:
    """The corpus prototxt a golden/shapes instance describes."""
    root = "bvlc_caffe_legacy" if path.relative_to(SHAPES).parts[0] == "legacy" else "bvlc_caffe"
    return SHARED / "corpus" / root / golden["source_prototxt"]


def layer_cases(*types: str) -> list:
    """pytest params for the golden single-layer cases of these layer types (all types if none given);
    expected-error cases are left out."""
    if not LAYER_CASES.is_dir():
        return []
    out = []
    for case in sorted(p for p in LAYER_CASES.iterdir() if (p / "case.json").is_file()):
        meta = json.loads((case / "case.json").read_text())
        if meta.get("expected_error") or (types and meta["layer_type"] not in types):
            continue
        out.append(pytest.param(case, id=case.name))
    return out


def analyze_case(case: Path):
    """(analysis, case.json) of a golden single-layer case: its net in the case's phase."""
    import netc
    from netc.analysis import analyze

    meta = json.loads((case / "case.json").read_text())
    net = netc.load_net(case / "net.prototxt", meta.get("phase", "TEST"))
    return analyze(net), meta


def check_case(case: Path) -> None:
    """Every top shape and every blob shape of the case equal Caffe's."""
    a, meta = analyze_case(case)
    shapes = {}
    blobs = {}
    for info in a.layers:
        for top, shape in zip(info.layer.tops, info.top_shapes):
            shapes[top] = list(shape)
        for i, b in enumerate(info.blob_shapes):
            blobs[f"{info.layer.name}.{i}"] = list(b)
    for top, shape in meta["tops"].items():
        assert shapes.get(top) == shape, (top, shapes.get(top), shape)
    expected = {k: v for k, v in meta.get("params", {}).items()}
    mine = {k: v for k, v in blobs.items() if not k.startswith("input.")}
    assert mine == expected
