"""Benchmark `netc report --format json` on generated nets of 1k/5k/10k layers (target: 10k in < 2 s, linear).

    python tools/bench_report.py [--sizes 1000,5000,10000] [--repeat 5] [--json FILE]

Times the whole report in-process as the CLI runs it (parse, bind, upgrade, filter, graph, shapes and costs,
JSON text), on the chain nets of tools/bench_parse.py written to a temporary file.
"""
from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _bench_parse():
    spec = importlib.util.spec_from_file_location("bench_parse", HERE / "bench_parse.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def report_json(path: Path) -> str:
    from netc.reports import report
    return json.dumps(report(str(path)).to_json())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,5000,10000")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    bp = _bench_parse()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = Path(tmp) / f"chain{n}.prototxt"
            path.write_text(bp.chain_prototxt(n))
            report_json(path)  # warm-up, and a check that it works
            samples = []
            for _ in range(args.repeat):
                gc.collect()
                t = time.perf_counter()
                report_json(path)
                samples.append(time.perf_counter() - t)
            results[n] = {"median_s": statistics.median(samples), "min_s": min(samples),
                          "kb": path.stat().st_size / 1024}
    info = bp.machine()
    print(f"netc report --format json, generated chains; median of {args.repeat}")
    print(f"{info.get('cpu', '')}, Python {sys.version.split()[0]}")
    print(f"{'layers':>8} {'KB':>8} {'median ms':>10} {'us/layer':>9}")
    for n, r in results.items():
        print(f"{n:>8} {r['kb']:>8.0f} {r['median_s'] * 1000:>10.1f} {r['median_s'] / n * 1e6:>9.1f}")
    big = max(results)
    small = min(results)
    growth = (results[big]["median_s"] / big) / (results[small]["median_s"] / small)
    ok = results[big]["median_s"] < 2.0
    print(f"per-layer time {big} vs {small}: {growth:.2f}x (1.0 = linear); {big} layers in "
          f"{results[big]['median_s']:.2f} s, target < 2 s: {'PASS' if ok else 'FAIL'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "results": results}, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
