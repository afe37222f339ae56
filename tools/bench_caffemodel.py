"""How fast, and in how much memory, a .caffemodel of AlexNet's size loads into a generated module.

    python tools/bench_caffemodel.py [--net nets/alexnet/deploy.prototxt] [--repeat 5]

Makes the model file once with save_caffemodel from the module's own (random, Caffe-filler) weights, then,
in a fresh process per run, builds the module and times `netc.load_caffemodel(module, path)`; "extra
memory" is the process's peak resident memory during the load minus its resident memory just before
(Linux: /proc/self/status VmHWM after resetting it through /proc/self/clear_refs).  Targets: under 3 s,
at most 2x the file's size in extra memory.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[3])
import torch
from netc.emit import build_module
from netc.weights import load_caffemodel

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
module = build_module(sys.argv[1])
with open("/proc/self/clear_refs", "w") as f:   # reset the peak (VmHWM) to the current RSS
    f.write("5")
before = status("VmRSS")
start = time.perf_counter()
load_caffemodel(module, sys.argv[2])
seconds = time.perf_counter() - start
peak = status("VmHWM")
print(json.dumps({"seconds": seconds, "extra_bytes": peak - before}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", default=str(ROOT / "nets" / "alexnet" / "deploy.prototxt"))
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import torch

    from netc.emit import build_module
    from netc.weights import save_caffemodel

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.caffemodel"
        save_caffemodel(build_module(args.net, seed=0), path)
        size = path.stat().st_size
        runs = []
        for _ in range(args.repeat):
            out = subprocess.run([sys.executable, "-c", CHILD, args.net, str(path), str(ROOT)],
                                 capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout))
    seconds = statistics.median(r["seconds"] for r in runs)
    extra = statistics.median(r["extra_bytes"] for r in runs)
    print(f"net: {args.net}; file {size / 2**20:.1f} MiB; torch {torch.__version__}; {args.repeat} fresh processes")
    print(f"load_caffemodel: median {seconds:.3f} s (target < 3 s); extra memory {extra / 2**20:.1f} MiB = "
          f"{extra / size:.2f}x the file (target <= 2x)")
    print("runs: " + ", ".join(f"{r['seconds']:.3f} s / {r['extra_bytes'] / size:.2f}x" for r in runs))
    return 0 if seconds < 3 and extra <= 2 * size else 1


if __name__ == "__main__":
    sys.exit(main())
