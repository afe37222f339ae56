"""LRN (ACROSS_CHANNELS), forward + backward: netc.runtime.lrn against torch's nn.LocalResponseNorm.

    python tools/bench_lrn.py [--device cpu|cuda] [--shape 32x96x55x55] [--repeat 10]

CaffeNet's norm1 by default (batch 32, 96 channels, 55x55; local_size 5, alpha 1e-4, beta 0.75).  The two
results are checked equal first; median wall-clock of `repeat` steps after one warm-up.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    import torch

    from netc import runtime as rt
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--shape", default="32x96x55x55")
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args(argv)
    shape = tuple(int(d) for d in args.shape.split("x"))
    x = torch.randn(shape, device=args.device, requires_grad=True)
    ref = torch.nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0)
    ours = lambda v: rt.lrn(v, 5, 1e-4, 0.75, 1.0)  # noqa: E731
    torch.testing.assert_close(ours(x), ref(x))

    def timed(fn) -> float:
        times = []
        for _ in range(args.repeat + 1):
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            y = fn(x)
            y.backward(torch.ones_like(y))
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        return statistics.median(times[1:])

    a, b = timed(ours), timed(ref)
    print(f"LRN fwd+bwd {args.shape} on {args.device}, torch {torch.__version__}: netc.runtime.lrn "
          f"{a * 1e3:.1f} ms, nn.LocalResponseNorm {b * 1e3:.1f} ms: {b / a:.2f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
