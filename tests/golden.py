"""Access to the real Caffe's reference outputs in ../shared/golden, for the tests."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
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


def given_shapes(golden: dict) -> dict:
    """--input for every top Caffe needed data (or a Python module) to shape."""
    given = {}
    for sub in golden["substitutions"]:
        # A train_val file has a data layer per phase, both with tops "data" and "label": take this phase's.
        rules = [(re.search(r"phase: (\w+)", r), re.findall(r'stage: "([^"]+)"', r)) for r in sub["include"]]
        if rules and not any((not ph or ph.group(1) == golden["phase"]) and set(st) <= set(golden["stages"])
                             for ph, st in rules):
            continue
        given.update({t: tuple(s) for t, s in sub["tops"].items()})
    for layer in golden["layers"]:
        if layer["type"] == "Python":
            given.update({t: tuple(s) for t, s in zip(layer["top"], layer["top_shapes"])})
    return given


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


# Golden gradients that are artefacts of how the vectors were made, not Caffe's training arithmetic.
# HingeLoss Forward_cpu uses bottom[0]'s diff as scratch for the margins max(0, 1 ± x) and Backward_cpu reads
# them back; the golden score.diff is all zeros (-0 where the true class flips the sign), so the generator
# cleared bottom diffs between net.forward() and net.backward().  In Solver::Step (ForwardBackward) nothing
# clears them, and Caffe trains with sign(margin)·(±1)/N (L1) or 2·margin·(±1)/N (L2), which is what
# hinge_loss_reference() computes.
GOLDEN_ARTEFACTS = {("hinge_l1", "score.diff"), ("hinge_l2", "score.diff")}


def hinge_loss_reference(score: np.ndarray, label: np.ndarray, norm: str, weight: float) -> np.ndarray:
    """HingeLossLayer::Backward_cpu with the margins Forward_cpu leaves in bottom_diff."""
    n = score.shape[0]
    flip = np.ones_like(score.reshape(n, -1))
    flip[np.arange(n), label.astype(np.int64)] = -1
    margin = np.maximum(0, 1 + flip * score.reshape(n, -1))
    grad = np.sign(margin) if norm == "L1" else 2 * margin
    return (grad * flip * weight / n).reshape(score.shape)
