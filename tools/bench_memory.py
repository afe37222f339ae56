"""netc report's training-memory estimate against a measured training step of the generated module.

    python tools/bench_memory.py [--models lenet,alexnet,googlenet,resnet50_v1.5] [--batch N]   (CUDA)
    python tools/bench_memory.py --smoke                                                       (CPU: estimates only)

For each net, the deploy file as a TRAIN net (its Softmax replaced by SoftmaxWithLoss, as
tools/bench_train_gpu.py does), float32, SGD with momentum.  Measured: `torch.cuda.max_memory_allocated()`
over the second training step (forward, backward, optimizer step; the first step has allocated the gradients
and the momentum buffers), with nothing else on the device but the module, its optimizer and the batch.
Estimated: `netc.analyze(...).memory(solver_type="SGD")["training"]` (parameters + every blob and its
gradient + a gradient and one history blob per learnable value; Caffe's own allocation).  The report's
target is agreement within ±15%.  On CPU there is no allocator statistic worth the name, so --smoke prints
the estimates and says the measurement needs CUDA.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

BATCHES = {"lenet": 64, "alexnet": 128, "googlenet": 64, "resnet50_v1.5": 64, "vgg16": 32}


def measure(path: Path, batch: int, data: str, chw: tuple) -> int:
    """Peak bytes allocated on CUDA over the second training step (module, optimizer state and batch included)."""
    import torch

    from netc.emit import build_module
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    module = build_module(path, "TRAIN", seed=0).cuda()
    opt = torch.optim.SGD(module.parameters(), lr=1e-3, momentum=0.9)
    feeds = {data: torch.randn((batch,) + tuple(chw), device="cuda"),
             "label": torch.randint(0, 10, (batch,), device="cuda").float()}
    for i in range(2):  # the first step allocates the gradients and the momentum buffers
        if i == 1:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        module(**feeds)["loss"].backward()
        opt.step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def main(argv=None) -> int:
    import torch
    from google.protobuf import text_format

    import netc
    from bench_train_gpu import training_net
    from netc.analysis import analyze

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="lenet,alexnet,googlenet,resnet50_v1.5")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--smoke", action="store_true", help="CPU: print the estimates only (batch 2)")
    args = ap.parse_args(argv)
    cuda = torch.cuda.is_available() and not args.smoke
    if not cuda and not args.smoke:
        print("no CUDA device: the measurement needs one (use --smoke for the estimates alone)", file=sys.stderr)
        return 2
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name() if cuda else 'CPU (estimates only)'}")
    print("| net | batch | netc estimate MiB | measured peak MiB | measured / estimate | within ±15%? |")
    print("|---|---:|---:|---:|---:|---|")
    for name in args.models.split(","):
        deploy = ROOT / "nets" / name / "deploy.prototxt"
        if not deploy.is_file():
            print(f"| {name} | - | - | - | - | {deploy} not found |")
            continue
        batch = 2 if args.smoke else (args.batch or BATCHES.get(name, 32))
        param, data, chw, _ = training_net(deploy, batch)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "train.prototxt"
            path.write_text(text_format.MessageToString(param))
            analysis = analyze(netc.load_net(path, "TRAIN"))
            estimate = analysis.memory("float32", "SGD")["training"]
            if not cuda:
                print(f"| {name} | {batch} | {estimate / 2**20:,.1f} | unmeasured | - | - |")
                continue
            peak = measure(path, batch, data, chw)
        ratio = peak / estimate
        print(f"| {name} | {batch} | {estimate / 2**20:,.1f} | {peak / 2**20:,.1f} | {ratio:.2f} | "
              f"{'yes' if abs(ratio - 1) <= 0.15 else 'no'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
