"""Benchmark netc's front end against protobuf's text_format, on generated nets.

    python tools/bench_parse.py                     # the table, on stdout
    python tools/bench_parse.py --json bench.json   # and the numbers, with the machine they came from
    python tools/bench_parse.py --profile           # and where parse+bind spends its time (cProfile)
    python tools/bench_parse.py --write-nets DIR    # keep the generated prototxts for a look

What it measures, against the issue's targets:

    parse+bind of a ResNet-152 deploy prototxt (~100 KB) vs text_format.Parse of the same text, in one
    process, interleaved so that both see the same noise; median of --repeat runs after a warm-up.
    Target: ratio <= 1.0 (goal 0.5).
    load_net of generated 1k / 5k / 10k-layer nets, from a file; median of --load-repeat runs.
    Target: 10k layers < 2 s, time per layer flat (linear growth).
    Wall time of `netc check nets/alexnet/train_val.prototxt` and of `python -c "import netc.cli"` as
    subprocesses, next to a bare `python -c pass` for the interpreter's own start.  Goal: import < 0.5 s.

The nets are generated here, deterministically, so the numbers do not depend on files outside the repo.
"""
from __future__ import annotations

import argparse
import cProfile
import datetime
import gc
import io
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import netc  # noqa: E402  (after the path is set, so the checkout is measured, not an installed copy)
from netc import caffe_pb2  # noqa: E402
from netc.bind import bind  # noqa: E402
from netc.errors import Source  # noqa: E402
from netc.syntax import parse  # noqa: E402

ALEXNET = ROOT / "nets" / "alexnet" / "train_val.prototxt"


# --------------------------------------------------------------------------------------------------------
# Prototxt writing: a block is a list of (field, value) pairs; a value that is a list is a nested message.
# One field per line, two-space indentation, as the zoo's hand-written nets are laid out.

Block = list


class Enum:
    """An enum value, written bare (pool: MAX)."""

    def __init__(self, name: str) -> None:
        self.name = name


def _scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Enum):
        return v.name
    if isinstance(v, str):
        return f'"{v}"'
    return repr(v)


def _write(out: list[str], block: Block, depth: int) -> None:
    pad = "  " * depth
    for key, value in block:
        if isinstance(value, list):
            out.append(f"{pad}{key} {{")
            _write(out, value, depth + 1)
            out.append(f"{pad}}}")
        else:
            out.append(f"{pad}{key}: {_scalar(value)}")


def prototxt(header: Block, layers: list[Block]) -> str:
    out: list[str] = []
    _write(out, header, 0)
    for layer in layers:
        _write(out, [("layer", layer)], 0)
    return "\n".join(out) + "\n"


def _layer(name: str, type_: str, bottoms: list[str], tops: list[str], *rest) -> Block:
    return [("name", name), ("type", type_), *[("bottom", b) for b in bottoms], *[("top", t) for t in tops], *rest]


# --------------------------------------------------------------------------------------------------------
# ResNet-152, deploy: the layout and names of He et al.'s released Caffe prototxts (conv1 / bn_conv1 /
# scale_conv1, res2a_branch1, res2a_branch2a, bn2a_branch2a, scale2a_branch2a, ...), with the learning-rate
# and filler blocks that a train_val-derived deploy file typically still carries.

RESNET152_BLOCKS = (3, 8, 36, 3)


def _block_names(stage: int, n: int) -> list[str]:
    """He et al.'s block suffixes: a, b, c for short stages; a, b1, b2, ... for long ones."""
    if n <= 3:
        return ["abc"[i] for i in range(n)]
    return ["a"] + [f"b{i}" for i in range(1, n)]


def _conv_bn_scale(layers: list[Block], conv: str, bn: str, scale: str, bottom: str, num_output: int,
                   kernel: int, stride: int, pad: int) -> None:
    conv_param = [("num_output", num_output), ("kernel_size", kernel), ("pad", pad), ("stride", stride),
                  ("bias_term", False), ("weight_filler", [("type", "msra")])]
    layers.append(_layer(conv, "Convolution", [bottom], [conv],
                         ("param", [("lr_mult", 1), ("decay_mult", 1)]),
                         ("convolution_param", conv_param)))
    layers.append(_layer(bn, "BatchNorm", [conv], [conv], ("batch_norm_param", [("use_global_stats", True)])))
    layers.append(_layer(scale, "Scale", [conv], [conv], ("scale_param", [("bias_term", True)])))


def _relu(layers: list[Block], name: str, blob: str) -> None:
    layers.append(_layer(name, "ReLU", [blob], [blob]))


def resnet_prototxt(blocks=RESNET152_BLOCKS, name: str = "ResNet-152") -> str:
    layers: list[Block] = []
    layers.append(_layer("data", "Input", [], ["data"],
                         ("input_param", [("shape", [("dim", 1), ("dim", 3), ("dim", 224), ("dim", 224)])])))
    _conv_bn_scale(layers, "conv1", "bn_conv1", "scale_conv1", "data", 64, 7, 2, 3)
    _relu(layers, "conv1_relu", "conv1")
    layers.append(_layer("pool1", "Pooling", ["conv1"], ["pool1"],
                         ("pooling_param", [("pool", Enum("MAX")), ("kernel_size", 3), ("stride", 2)])))
    bottom = "pool1"
    for stage, n in enumerate(blocks, start=2):
        mid = 64 * 2 ** (stage - 2)
        for i, suffix in enumerate(_block_names(stage, n)):
            res = f"res{stage}{suffix}"
            stride = 2 if i == 0 and stage > 2 else 1
            if i == 0:
                _conv_bn_scale(layers, f"{res}_branch1", f"bn{stage}{suffix}_branch1",
                               f"scale{stage}{suffix}_branch1", bottom, 4 * mid, 1, stride, 0)
                shortcut = f"{res}_branch1"
            else:
                shortcut = bottom
            x = bottom
            for part, (k, s, c) in zip("abc", ((1, stride, mid), (3, 1, mid), (1, 1, 4 * mid))):
                conv = f"{res}_branch2{part}"
                _conv_bn_scale(layers, conv, f"bn{stage}{suffix}_branch2{part}", f"scale{stage}{suffix}_branch2{part}",
                               x, c, k, s, k // 2)
                if part != "c":
                    _relu(layers, f"{conv}_relu", conv)
                x = conv
            layers.append(_layer(res, "Eltwise", [shortcut, x], [res],
                                 ("eltwise_param", [("operation", Enum("SUM"))])))
            _relu(layers, f"{res}_relu", res)
            bottom = res
    layers.append(_layer("pool5", "Pooling", [bottom], ["pool5"],
                         ("pooling_param", [("pool", Enum("AVE")), ("kernel_size", 7), ("stride", 1)])))
    layers.append(_layer("fc1000", "InnerProduct", ["pool5"], ["fc1000"],
                         ("param", [("lr_mult", 1), ("decay_mult", 1)]),
                         ("param", [("lr_mult", 2), ("decay_mult", 0)]),
                         ("inner_product_param", [("num_output", 1000),
                                                  ("weight_filler", [("type", "xavier")]),
                                                  ("bias_filler", [("type", "constant"), ("value", 0)])])))
    layers.append(_layer("prob", "Softmax", ["fc1000"], ["prob"]))
    return prototxt([("name", name)], layers)


# --------------------------------------------------------------------------------------------------------
# A long chain of n layers (the Input included): a repeating mix of the layer types and fields that VGG,
# GoogLeNet and ResNet files use, each layer its own block.  Shapes stay valid (3x3 pad 1, stride 1).

def chain_prototxt(n: int) -> str:
    layers: list[Block] = [_layer("data", "Input", [], ["data"],
                                  ("input_param", [("shape", [("dim", 2), ("dim", 3), ("dim", 32), ("dim", 32)])]))]
    blob = "data"
    i = 0
    while len(layers) < n:
        i += 1
        unit = _chain_unit(i, blob)
        for layer in unit[: n - len(layers)]:
            layers.append(layer)
        blob = f"pool{i}"
    return prototxt([("name", f"chain{n}")], layers)


def _chain_unit(i: int, bottom: str) -> list[Block]:
    c = 16 + 8 * (i % 7)
    conv, conv1x1, pool = f"conv{i}", f"conv{i}_1x1", f"pool{i}"
    fillers = [("weight_filler", [("type", "gaussian"), ("std", 0.01)]),
               ("bias_filler", [("type", "constant"), ("value", 0.1)])]
    return [
        _layer(conv, "Convolution", [bottom], [conv],
               ("param", [("lr_mult", 1), ("decay_mult", 1)]), ("param", [("lr_mult", 2), ("decay_mult", 0)]),
               ("convolution_param", [("num_output", c), ("kernel_size", 3), ("pad", 1), ("stride", 1), *fillers])),
        _layer(f"bn{i}", "BatchNorm", [conv], [conv], ("batch_norm_param", [("use_global_stats", True)])),
        _layer(f"scale{i}", "Scale", [conv], [conv], ("scale_param", [("bias_term", True)])),
        _layer(f"relu{i}", "ReLU", [conv], [conv]),
        _layer(conv1x1, "Convolution", [conv], [conv1x1],
               ("param", [("lr_mult", 1)]), ("param", [("lr_mult", 2)]),
               ("convolution_param", [("num_output", c), ("kernel_size", 1), ("group", 1), *fillers])),
        _layer(f"relu{i}_1x1", "ReLU", [conv1x1], [conv1x1], ("relu_param", [("negative_slope", 0.1)])),
        _layer(f"norm{i}", "LRN", [conv1x1], [f"norm{i}"],
               ("lrn_param", [("local_size", 5), ("alpha", 0.0001), ("beta", 0.75)])),
        _layer(pool, "Pooling", [f"norm{i}"], [pool],
               ("pooling_param", [("pool", Enum("MAX" if i % 2 else "AVE")), ("kernel_size", 3), ("stride", 1),
                                  ("pad", 1)])),
        _layer(f"drop{i}", "Dropout", [pool], [pool], ("dropout_param", [("dropout_ratio", 0.5)])),
    ]


# --------------------------------------------------------------------------------------------------------
# Timing

def _timed(fn: Callable[[], object]) -> float:
    gc.collect()  # so that garbage of the previous run is not collected on this one's clock
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _stats(samples: list[float]) -> dict:
    return {"median_s": statistics.median(samples), "min_s": min(samples), "max_s": max(samples),
            "samples_s": samples}


def bench_interleaved(cases: dict[str, Callable[[], object]], repeat: int, warmup: int) -> dict[str, dict]:
    """Run every case once per round, in alternating order, so that all see the same machine noise."""
    names = list(cases)
    samples: dict[str, list[float]] = {k: [] for k in names}
    for r in range(warmup + repeat):
        order = names if r % 2 == 0 else names[::-1]
        for k in order:
            t = _timed(cases[k])
            if r >= warmup:
                samples[k].append(t)
    return {k: _stats(v) for k, v in samples.items()}


def bench_parse(text: str, repeat: int, warmup: int) -> dict:
    from google.protobuf import text_format

    src = Source("<resnet152>", text)
    doc = parse(src)
    ours = netc.parse_prototxt(text)
    theirs = text_format.Parse(text, caffe_pb2.NetParameter())
    if ours != theirs:
        raise SystemExit("netc and text_format disagree on the generated ResNet-152: the benchmark is void")
    cases = {
        "netc parse+bind": lambda: netc.parse_prototxt(text),
        "text_format.Parse": lambda: text_format.Parse(text, caffe_pb2.NetParameter()),
        "netc parse only": lambda: parse(Source("<resnet152>", text)),
        "netc bind only": lambda: bind(doc, caffe_pb2.NetParameter),
    }
    return bench_interleaved(cases, repeat, warmup)


def bench_load_net(sizes: list[int], repeat: int, tmp: Path) -> dict[int, dict]:
    out = {}
    for n in sizes:
        path = tmp / f"chain{n}.prototxt"
        path.write_text(chain_prototxt(n))
        net = netc.load_net(str(path), phase="TEST")  # warm-up, and a check that the net is what we meant
        if len(net.layers) != n:
            raise SystemExit(f"chain{n}: load_net kept {len(net.layers)} layers, not {n}")
        samples = [_timed(lambda: netc.load_net(str(path), phase="TEST")) for _ in range(repeat)]
        out[n] = {**_stats(samples), "bytes": path.stat().st_size, "per_layer_us": statistics.median(samples) / n * 1e6}
    return out


def bench_subprocess(argv: list[str], repeat: int) -> dict:
    def once() -> float:
        t0 = time.perf_counter()
        r = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        t = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited {r.returncode}:\n{r.stderr.decode(errors='replace')}")
        return t

    once()  # warm the file cache and the .pyc files
    return {**_stats([once() for _ in range(repeat)]), "argv": argv}


def netc_command() -> list[str]:
    """The installed `netc` entry point next to this interpreter (no pyenv shim in between), else -m netc."""
    script = Path(sys.executable).parent / "netc"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "netc"]


# --------------------------------------------------------------------------------------------------------
# Where the numbers came from

def machine() -> dict:
    import google.protobuf
    import lark
    from google.protobuf.internal import api_implementation

    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "?"

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "protobuf": google.protobuf.__version__,
        "protobuf_backend": api_implementation.Type(),
        "lark": lark.__version__,
        "netc": netc.__version__,
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def profile_parse_bind(text: str, runs: int, top: int) -> str:
    netc.parse_prototxt(text)  # tables built outside the profile
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(runs):
        netc.parse_prototxt(text)
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(top)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------------------

def _ms(s: float) -> str:
    return f"{s * 1e3:9.2f}"


def report(m: dict, res: dict) -> str:
    lines = []
    add = lines.append
    add(f"netc {m['netc']} ({m['git_commit']}{', modified' if m['git_dirty'] else ''})  {m['date']}")
    add(f"{m['cpu']} x{m['cpus']}, {m['platform']}")
    add(f"Python {m['python']}, protobuf {m['protobuf']} ({m['protobuf_backend']}), lark {m['lark']}")
    add("")
    p = res["parse"]
    add(f"ResNet-152 deploy prototxt: {res['resnet_bytes']:,} bytes, {res['resnet_layers']} layers, "
        f"{res['resnet_lines']:,} lines; median of {res['repeat']} interleaved runs after {res['warmup']} warm-up")
    add(f"  {'':22}{'median ms':>9}  {'min ms':>9}  {'max ms':>9}  {'vs text_format':>14}")
    base = p["text_format.Parse"]["median_s"]
    for name, st in p.items():
        add(f"  {name:22}{_ms(st['median_s'])}  {_ms(st['min_s'])}  {_ms(st['max_s'])}  {st['median_s'] / base:13.2f}x")
    ratio = p["netc parse+bind"]["median_s"] / base
    verdict = "PASS" if ratio <= 1.0 else "FAIL"
    add(f"  parse+bind / text_format.Parse = {ratio:.2f}x   target <= 1.0x: {verdict};  goal 0.5x: "
        f"{'met' if ratio <= 0.5 else 'not met'}")
    add("")
    ln = res["load_net"]
    add(f"load_net (file, phase TEST), generated chains; median of {res['load_repeat']}")
    add(f"  {'layers':>7}  {'KB':>7}  {'median ms':>9}  {'min ms':>9}  {'us/layer':>8}")
    for n, st in ln.items():
        add(f"  {n:>7}  {st['bytes'] / 1024:7.0f}  {_ms(st['median_s'])}  {_ms(st['min_s'])}  {st['per_layer_us']:8.1f}")
    sizes = list(ln)
    big = ln[sizes[-1]]
    growth = big["per_layer_us"] / ln[sizes[0]]["per_layer_us"]
    add(f"  per-layer time {sizes[-1]} vs {sizes[0]}: {growth:.2f}x (1.0 = linear)")
    if 10000 in ln:
        t = ln[10000]["median_s"]
        add(f"  10,000 layers in {t:.2f} s   target < 2 s: {'PASS' if t < 2 else 'FAIL'}")
    if "load_net_resnet" in res:
        add(f"  ResNet-152 through load_net: {_ms(res['load_net_resnet']['median_s']).strip()} ms")
    add("")
    add(f"Subprocess wall time; median of {res['proc_repeat']}")
    for name, st in res["proc"].items():
        add(f"  {name:52}{_ms(st['median_s'])} ms")
    imp = res["proc"].get('python -c "import netc.cli"')
    if imp:
        add(f"  import netc.cli goal < 0.5 s: {'PASS' if imp['median_s'] < 0.5 else 'FAIL'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15, help="timed runs of each parse case (default 15)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    ap.add_argument("--sizes", default="1000,5000,10000", help="layer counts for load_net (default 1000,5000,10000)")
    ap.add_argument("--load-repeat", type=int, default=5, help="timed load_net runs per size (default 5)")
    ap.add_argument("--proc-repeat", type=int, default=5, help="timed subprocess runs (default 5)")
    ap.add_argument("--json", metavar="FILE", help="also write the numbers and the machine info as JSON")
    ap.add_argument("--profile", action="store_true", help="cProfile parse+bind of the ResNet-152 text")
    ap.add_argument("--profile-top", type=int, default=15, help="functions to list (default 15)")
    ap.add_argument("--write-nets", metavar="DIR", help="write the generated prototxts to DIR")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]

    text = resnet_prototxt()
    if args.write_nets:
        d = Path(args.write_nets)
        d.mkdir(parents=True, exist_ok=True)
        (d / "resnet152_deploy.prototxt").write_text(text)
        for n in sizes:
            (d / f"chain{n}.prototxt").write_text(chain_prototxt(n))

    m = machine()
    print(f"timing parse+bind vs text_format ({args.repeat} rounds)...", file=sys.stderr)
    res: dict = {"repeat": args.repeat, "warmup": args.warmup, "load_repeat": args.load_repeat,
                 "proc_repeat": args.proc_repeat}
    res["resnet_bytes"] = len(text.encode())
    res["resnet_lines"] = text.count("\n")
    res["parse"] = bench_parse(text, args.repeat, args.warmup)
    res["resnet_layers"] = len(netc.parse_prototxt(text).layer)

    print(f"timing load_net on {', '.join(map(str, sizes))} layers...", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        res["load_net"] = bench_load_net(sizes, args.load_repeat, Path(tmp))
        rpath = Path(tmp) / "resnet152_deploy.prototxt"
        rpath.write_text(text)
        netc.load_net(str(rpath))
        res["load_net_resnet"] = _stats([_timed(lambda: netc.load_net(str(rpath))) for _ in range(args.load_repeat)])

    print("timing subprocesses...", file=sys.stderr)
    check = [*netc_command(), "check", str(ALEXNET.relative_to(ROOT))]
    res["proc"] = {
        'python -c "pass" (interpreter start)': bench_subprocess([sys.executable, "-c", "pass"], args.proc_repeat),
        'python -c "import netc.cli"': bench_subprocess([sys.executable, "-c", "import netc.cli"], args.proc_repeat),
        "netc check nets/alexnet/train_val.prototxt": bench_subprocess(check, args.proc_repeat),
    }

    print(report(m, res))
    if args.profile:
        print()
        print(f"cProfile of parse+bind on the ResNet-152 text (5 runs), top {args.profile_top} by tottime")
        print(profile_parse_bind(text, 5, args.profile_top))
    if args.json:
        out = {"machine": m, **res, "load_net": {str(k): v for k, v in res["load_net"].items()}}
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
