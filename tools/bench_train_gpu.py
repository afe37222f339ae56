"""Training speed of netc's generated modules against the same nets written by hand in PyTorch.

    python tools/bench_train_gpu.py [--models resnet50,googlenet,vgg16,caffenet] [--batch N]
                                    [--steps 30] [--warmup 10] [--no-compile] [--json FILE]
    python tools/bench_train_gpu.py --smoke        # CPU, fp32, eager, batch 2: checks that it runs

One training step, the same for both sides: forward under bf16 autocast, the loss, backward,
`torch.optim.SGD(lr=1e-3, momentum=0.9).step()`, `zero_grad(set_to_none=True)`; model and input in
channels_last, cuDNN autotuning on, the same batch (random images and labels, seed 0) for both sides.
Each step is timed with CUDA events (no synchronisation between steps, so the time per step is the
steady-state throughput); the table gives the median images/s of `--steps` steps after `--warmup`
steps, in eager mode and under `torch.compile` (default mode; the model is compiled, the optimizer
step is not, on both sides).  A compile failure is reported in its row, not raised.

The generated side is the net's deploy.prototxt with its final Softmax replaced by SoftmaxWithLoss
over (logits, "label"), a `label` Input added, and the batch set, built by `netc.emit.build_module`
in phase TRAIN (Dropout drops, BatchNorm uses batch statistics: Caffe's TRAIN semantics).  Deploy
files carry no fillers (Caffe would zero every weight), so the fillers of train_val.prototxt beside
it are copied by layer name when that file exists.  The reference side is torchvision's model with
`F.cross_entropy`, or, for CaffeNet, `HandCaffeNet` below.

Rows (default batches; `--batch` overrides all of them):
  resnet50   nets/resnet50_v1.5/deploy.prototxt vs torchvision resnet50()         batch 256, >= 1.00x
  googlenet  nets/googlenet/deploy.prototxt vs torchvision googlenet(aux_logits=False) 256, >= 1.00x
  vgg16      nets/vgg16/deploy.prototxt vs torchvision vgg16()                    batch 128, >= 1.00x
  caffenet   nets/caffenet/deploy.prototxt vs HandCaffeNet (nn.LocalResponseNorm)  batch 256, >= 1.50x
VGG-16 runs at 128 (not 256) so that eager and compiled both fit with headroom on an 80 GB card.
torchvision's GoogLeNet is its BatchNorm variant while BVLC's has LRN and no BatchNorm: that row
compares two different nets of the same name, as the target asks.

Also printed, outside --smoke: the number of graph breaks of each generated module
(`torch._dynamo.explain`), which should be 0.

Exit status: 0 when every row ran (a missed target is a result, not an error), 1 when an eager run
failed, 2 on usage errors (no CUDA device without --smoke).  Progress goes to stderr, the table to
stdout.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import inspect
import json
import platform
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checkout is measured, not an installed copy

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

EXIT_OK, EXIT_ROW_FAILED, EXIT_USAGE = 0, 1, 2

LR, MOMENTUM = 1e-3, 0.9


# ----------------------------------------------------------------------------------------------------------
# The reference side

class HandCaffeNet(nn.Module):
    """BVLC's reference CaffeNet (models/bvlc_reference_caffenet) written the way a PyTorch user would:
    pooling before LRN, groups of 2 on conv2/4/5, Caffe's round-up pooling via ceil_mode."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, kernel_size=11, stride=4),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75),
            nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
        )
        self.classifier = nn.Sequential(
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class Unavailable(Exception):
    """A side that cannot be built on this machine (a missing file or package): reported, not a failure."""


def _torchvision(name: str, **kwargs) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        try:
            import torchvision
        except Exception as exc:  # ImportError, or a torchvision built for another torch
            raise Unavailable(f"torchvision not importable ({type(exc).__name__})") from exc
        return getattr(torchvision.models, name)(**kwargs)
    return make


@dataclass(frozen=True)
class Model:
    key: str                                  # the --models name
    title: str
    prototxt: str                             # relative to the repository root
    batch: int                                # default batch on the GPU
    reference: str                            # what the reference side is, for the table
    make_reference: Callable[[], nn.Module]   # raises Unavailable
    target: float                             # generated / reference images/s


MODELS = {m.key: m for m in [
    Model("resnet50", "ResNet-50 v1.5", "nets/resnet50_v1.5/deploy.prototxt", 256,
          "torchvision resnet50", _torchvision("resnet50"), 1.00),
    Model("googlenet", "GoogLeNet", "nets/googlenet/deploy.prototxt", 256,
          "torchvision googlenet", _torchvision("googlenet", aux_logits=False, init_weights=True), 1.00),
    Model("vgg16", "VGG-16", "nets/vgg16/deploy.prototxt", 128,
          "torchvision vgg16", _torchvision("vgg16"), 1.00),
    Model("caffenet", "CaffeNet", "nets/caffenet/deploy.prototxt", 256,
          "hand CaffeNet", HandCaffeNet, 1.50),
]}
# --smoke runs these (CPU, batch 2): the smaller nets, so that it stays well under a minute on 2 cores.
SMOKE_MODELS = ("caffenet", "googlenet")


# ----------------------------------------------------------------------------------------------------------
# The generated side

def _copy_fillers(deploy, train_val) -> int:
    """Copy every `*_filler` of train_val's layers into deploy's layers of the same name and type; returns
    how many layers got one."""
    from google.protobuf.message import Message
    by_name = {layer.name: layer for layer in train_val.layer}
    copied = 0
    for layer in deploy.layer:
        source = by_name.get(layer.name)
        if source is None or source.type != layer.type:
            continue
        got = False
        for fd, sub in source.ListFields():
            if not fd.name.endswith("_param") or not isinstance(sub, Message):  # (repeated: a container)
                continue
            for sfd, filler in sub.ListFields():
                if sfd.name.endswith("filler"):
                    getattr(getattr(layer, fd.name), sfd.name).CopyFrom(filler)
                    got = True
        copied += got
    return copied


def training_net(deploy_path: Path, batch: int):
    """The deploy net as a TRAIN net: (NetParameter, data blob name, input CHW, a note)."""
    import netc
    from netc import caffe_pb2
    param = netc.parse_prototxt(str(deploy_path))
    softmaxes = [i for i, layer in enumerate(param.layer) if layer.type == "Softmax"]
    inputs = [i for i, layer in enumerate(param.layer) if layer.type == "Input"]
    if not softmaxes or len(inputs) != 1:
        raise ValueError(f"{deploy_path}: expected one Input layer and a final Softmax layer")
    blobs = {t for layer in param.layer for t in layer.top}
    if {"label", "loss"} & blobs:
        raise ValueError(f"{deploy_path}: already has a blob named 'label' or 'loss'")
    at = softmaxes[-1]
    loss = caffe_pb2.LayerParameter(name="loss", type="SoftmaxWithLoss",
                                    bottom=[param.layer[at].bottom[0], "label"], top=["loss"])
    param.layer[at].CopyFrom(loss)
    data_layer = param.layer[inputs[0]]
    shape = data_layer.input_param.shape[0]
    shape.dim[0] = batch
    chw = tuple(int(d) for d in shape.dim[1:])
    label = caffe_pb2.LayerParameter(name="label", type="Input", top=["label"])
    label.input_param.shape.add().dim.append(batch)
    param.layer.insert(inputs[0] + 1, label)
    train_val = deploy_path.with_name("train_val.prototxt")
    if train_val.exists():
        n = _copy_fillers(param, netc.parse_prototxt(str(train_val)))
        note = f"fillers of {n} layers from train_val.prototxt"
    else:
        note = "no train_val.prototxt: Caffe's default fillers (zeros)"
    return param, data_layer.top[0], chw, note


def build_generated(deploy_path: Path, batch: int):
    """(module, forward argument names in order (data, label), note)."""
    from google.protobuf import text_format

    from netc.emit import build_module
    param, _, chw, note = training_net(deploy_path, batch)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / deploy_path.name
        path.write_text(text_format.MessageToString(param))
        module = build_module(str(path), phase="TRAIN", seed=0)
    names = list(inspect.signature(module.forward).parameters)
    return module, names, chw, note


# ----------------------------------------------------------------------------------------------------------
# Timing

@dataclass
class Row:
    model: str
    side: str                   # "generated" | "reference"
    what: str                   # the reference's name, or the prototxt
    mode: str                   # "eager" | "compile"
    batch: int
    img_s: float | None = None
    step_ms: list[float] = field(default_factory=list)
    warmup_s: float | None = None
    graph_breaks: int | None = None
    note: str = ""
    error: str | None = None    # a failure: eager failures set the exit status
    ratio: float | None = None
    target: float | None = None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]


def time_steps(step: Callable[[], None], warmup: int, steps: int, cuda: bool) -> tuple[list[float], float]:
    """Per-step seconds of `steps` steps after `warmup`, and the warm-up's wall time (compile time)."""
    t = time.perf_counter()
    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
    warm = time.perf_counter() - t
    if not cuda:
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
        return times, warm
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(steps)]
    for start, end in events:
        start.record()
        step()
        end.record()
    torch.cuda.synchronize()
    return [start.elapsed_time(end) / 1000 for start, end in events], warm


def graph_breaks(model: nn.Module, inputs: dict, autocast) -> int | None:
    import torch._dynamo
    explain = getattr(torch._dynamo, "explain", None)
    if explain is None:
        return None
    with autocast():
        out = explain(model)(**inputs)
    torch._dynamo.reset()
    return getattr(out, "graph_break_count", None)


def _free(cuda: bool) -> None:
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    try:
        import torch._dynamo
        torch._dynamo.reset()
    except Exception:
        pass


def run_side(model: nn.Module, loss_of: Callable, rows: list[Row], args, cuda: bool, autocast) -> None:
    """Time eager then compiled training of `model`, filling the rows (one per mode) in place."""
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def make_step(m):
        def step() -> None:
            with autocast():
                loss = loss_of(m)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        return step

    for row in rows:
        label = f"{row.model} {row.side} {row.mode}"
        print(f"  {label}: {args.warmup} warm-up + {args.steps} steps at batch {row.batch}", file=sys.stderr,
              flush=True)
        try:
            m = model if row.mode == "eager" else torch.compile(model)
            times, warm = time_steps(make_step(m), args.warmup, args.steps, cuda)
        except Exception as exc:
            row.error = _one_line(exc)
            print(f"  {label} failed: {row.error}", file=sys.stderr, flush=True)
            if row.mode == "eager":
                traceback.print_exc()
            opt.zero_grad(set_to_none=True)
            continue
        row.step_ms = [t * 1000 for t in times]
        row.warmup_s = warm
        row.img_s = row.batch / statistics.median(times)
        print(f"  {label}: {row.img_s:,.1f} img/s (warm-up {warm:.1f} s)", file=sys.stderr, flush=True)


def bench_model(spec: Model, args, device: torch.device) -> list[Row]:
    cuda = device.type == "cuda"
    batch = args.batch or (2 if args.smoke else spec.batch)
    modes = ["eager"] if args.smoke or args.no_compile else ["eager", "compile"]
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else contextlib.nullcontext
    gen_rows = [Row(spec.key, "generated", spec.prototxt, mode, batch) for mode in modes]
    ref_rows = [Row(spec.key, "reference", spec.reference, mode, batch) for mode in modes]
    for row in gen_rows + ref_rows:
        row.target = spec.target if row.side == "generated" else None
    print(f"{spec.title}:", file=sys.stderr, flush=True)

    deploy = ROOT / spec.prototxt
    gen = names = None
    chw = (3, 227, 227) if spec.key == "caffenet" else (3, 224, 224)
    if not deploy.exists():
        for row in gen_rows:
            row.note = f"{spec.prototxt} not found: skipped"
    else:
        try:
            gen, names, chw, note = build_generated(deploy, batch)
            for row in gen_rows:
                row.note = note
        except Exception as exc:
            traceback.print_exc()
            for row in gen_rows:
                row.error = f"build failed: {_one_line(exc)}"

    # The same batch for both sides: images in channels_last, labels as Caffe's floats and torch's int64.
    gen_cpu = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *chw, generator=gen_cpu).to(device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), generator=gen_cpu).to(device)
    y_float = y.float()

    if gen is not None:
        gen = gen.to(device).to(memory_format=torch.channels_last).train()
        inputs = dict(zip(names, (x, y_float)))
        if not args.smoke and "compile" in modes:
            try:
                breaks = graph_breaks(gen, inputs, autocast)
            except Exception as exc:
                breaks = None
                for row in gen_rows:
                    row.note += f"; explain failed: {_one_line(exc)}"
            for row in gen_rows:
                row.graph_breaks = breaks
        run_side(gen, lambda m: m(**inputs)["loss"], gen_rows, args, cuda, autocast)
        del gen, inputs
        _free(cuda)

    try:
        torch.manual_seed(0)
        ref = spec.make_reference()
    except Unavailable as exc:
        ref = None
        for row in ref_rows:
            row.note = str(exc)
    except Exception as exc:
        ref = None
        traceback.print_exc()
        for row in ref_rows:
            row.error = f"build failed: {_one_line(exc)}"
    if ref is not None:
        ref = ref.to(device).to(memory_format=torch.channels_last).train()
        run_side(ref, lambda m: F.cross_entropy(m(x), y), ref_rows, args, cuda, autocast)
        del ref
        _free(cuda)

    for g, r in zip(gen_rows, ref_rows):
        if g.img_s and r.img_s:
            g.ratio = g.img_s / r.img_s
    return gen_rows + ref_rows


# ----------------------------------------------------------------------------------------------------------
# Output

def header(device: torch.device) -> dict:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    cudnn = torch.backends.cudnn.version() if device.type == "cuda" else None
    return {"device": name, "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": cudnn,
            "python": platform.python_version(), "date": datetime.datetime.now().isoformat(timespec="seconds")}


def table(rows: list[Row], info: dict, args) -> str:
    precision = "fp32" if args.smoke else "bf16 autocast"
    lines = [
        f"netc training speed: {info['device']}, torch {info['torch']}, CUDA {info['cuda'] or 'none'}"
        f"{', cuDNN ' + str(info['cudnn']) if info['cudnn'] else ''}, Python {info['python']}, {info['date']}",
        "",
        f"{precision}, channels_last, SGD(momentum={MOMENTUM}) step + zero_grad; median of {args.steps} steps "
        f"after {args.warmup} warm-up{' (--smoke)' if args.smoke else ''}",
        "",
        "| model | side | mode | batch | img/s | generated/reference | target | met? | graph breaks | note |",
        "|---|---|---|---:|---:|---:|---:|---|---:|---|",
    ]
    for r in rows:
        img = f"{r.img_s:,.1f}" if r.img_s else "-"
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        target = f">= {r.target:.2f}x" if r.target is not None else "-"
        met = "-" if r.ratio is None else ("yes" if r.ratio >= r.target else "no")
        breaks = "-" if r.graph_breaks is None else str(r.graph_breaks)
        note = f"FAILED: {r.error}" if r.error else r.note
        lines.append(f"| {r.model} | {r.side} ({r.what}) | {r.mode} | {r.batch} | {img} | {ratio} | {target} | "
                     f"{met} | {breaks} | {note.replace('|', '/')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", help=f"comma-separated, from {', '.join(MODELS)} (default: all; "
                                     f"--smoke: {', '.join(SMOKE_MODELS)})")
    ap.add_argument("--batch", type=int, help="one batch for every model (default: per model, 2 with --smoke)")
    ap.add_argument("--steps", type=int, help="timed steps (default 30, 2 with --smoke)")
    ap.add_argument("--warmup", type=int, help="untimed steps first (default 10, 1 with --smoke)")
    ap.add_argument("--no-compile", action="store_true", help="eager rows only")
    ap.add_argument("--json", metavar="FILE", help="write the raw numbers (every step's time) here")
    ap.add_argument("--smoke", action="store_true", help="CPU, fp32, eager, batch 2, 2 steps: does it run")
    args = ap.parse_args(argv)
    args.steps = args.steps if args.steps is not None else (2 if args.smoke else 30)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.smoke else 10)
    keys = args.models.split(",") if args.models else list(SMOKE_MODELS if args.smoke else MODELS)
    unknown = [k for k in keys if k not in MODELS]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")
    if args.steps < 1 or args.warmup < 0 or (args.batch is not None and args.batch < 1):
        ap.error("--steps and --batch must be positive, --warmup not negative")

    if args.smoke:
        device = torch.device("cpu")
    elif torch.cuda.is_available():
        device = torch.device("cuda")
        torch.backends.cudnn.benchmark = True
    else:
        print("bench_train_gpu: no CUDA device; --smoke runs the CPU check", file=sys.stderr)
        return EXIT_USAGE

    rows: list[Row] = []
    for key in keys:
        rows += bench_model(MODELS[key], args, device)
    info = header(device)
    print(table(rows, info, args))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": info, "smoke": args.smoke, "steps": args.steps, "warmup": args.warmup,
            "precision": "fp32" if args.smoke else "bf16", "lr": LR, "momentum": MOMENTUM,
            "rows": [r.__dict__ for r in rows]}, indent=1))
    failed = [r for r in rows if r.error and r.mode == "eager"]
    return EXIT_ROW_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
