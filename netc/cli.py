"""The `netc` command line: main(argv) -> exit code, one small function per subcommand.

Products go to stdout (or -o FILE), diagnostics to stderr.  Exit codes: 0 ok (warnings allowed), 1 the input
is invalid, 2 usage error, 70 internal error (a netc bug).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from . import __version__
from .errors import Diagnostic, NetcError, UsageError
from .files import write_atomic

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 70


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: exit 2, one line
        raise UsageError(f"{self.prog}: {message}")


def _summary(name: str, diags: Sequence[Diagnostic]) -> str:
    e = sum(d.severity == "error" for d in diags)
    w = sum(d.severity == "warning" for d in diags)
    parts = [f"{e} error{'s' if e != 1 else ''}"] if e else []
    if w:
        parts.append(f"{w} warning{'s' if w != 1 else ''}")
    return f"{name}: " + ", ".join(parts)


def _emit(diags: Sequence[Diagnostic], seen: set[str] | None = None) -> None:
    for d in diags:
        text = d.render()
        if seen is not None:
            if text in seen:
                continue
            seen.add(text)
        print(text, file=sys.stderr)


def _guess_kind(doc) -> str:
    """"solver" if the file's top-level fields are SolverParameter's rather than NetParameter's."""
    from .caffe_pb2 import NetParameter, SolverParameter
    net_fields = NetParameter.DESCRIPTOR.fields_by_name
    solver_fields = SolverParameter.DESCRIPTOR.fields_by_name
    names = {f[0] for f in doc.fields}
    s = sum(n in solver_fields and n not in net_fields for n in names)
    n = sum(n in net_fields and n not in solver_fields for n in names)
    return "solver" if s > n else "net"


# --------------------------------------------------------------------------------------------------------

def cmd_check(args) -> int:
    from .errors import Diagnostics
    from .frontend import load_net_param, parse_located, read_source
    from .analysis import analyze
    from .graph import build_net, net_states, parse_phase
    from .syntax import parse

    source = read_source(args.net)
    doc = parse(source)
    if _guess_kind(doc) == "solver":
        from .upgrade import upgrade_solver
        diags = Diagnostics()
        located = parse_located(source, "solver", strict=args.strict, diags=diags, doc=doc)
        from .frontend import _UpgradeReport
        upgrade_solver(located.message, _UpgradeReport(located, diags))
        _emit(diags.items)
        if diags.errors:
            print(_summary(source.name, diags.items), file=sys.stderr)
            return EXIT_INVALID
        print(f"{source.name}: ok, a solver (type {located.message.type}); check its net files separately")
        return EXIT_OK
    inputs = dict(_parse_input(t) for t in args.input)
    diags = Diagnostics()
    ns = load_net_param(source, strict=args.strict, diags=diags, doc=doc)
    if args.phase:
        states = [(parse_phase(args.phase), tuple(args.stage))]
    elif args.stage:
        states = [(p, tuple(args.stage)) for p, _ in dict.fromkeys(net_states(ns.param))]
        states = list(dict.fromkeys(states))
    else:
        states = net_states(ns.param)
    # A problem common to several phases is printed (and counted) once; one summary line for the file.
    seen: set[str] = set()
    shown: list[Diagnostic] = []

    def emit(diags) -> None:
        for d in diags:
            text = d.render()
            if text not in seen:
                seen.add(text)
                shown.append(d)
                print(text, file=sys.stderr)

    emit(ns.diagnostics)
    failed = False
    for phase, stages in states:
        try:
            net = build_net(ns, phase, stages, args.level, Diagnostics(), shaped=inputs)
            # Shapes too, as Caffe's Net::Init would; what needs the data set here is a note, not an error.
            analysis = analyze(net, inputs, lenient=True)
        except NetcError as e:
            failed = True
            emit(e.diagnostics)
            continue
        emit(analysis.diagnostics)
        unknown = [d for d in analysis.diagnostics if d.severity == "note"]
        shapes = ("; shapes ok" if not unknown else "; shapes unchecked past " +
                  ("1 layer that needs its data" if len(unknown) == 1 else f"{len(unknown)} layers that need data"))
        print(net.summary() + shapes)
    if failed:
        print(_summary(source.name, shown), file=sys.stderr)
    return EXIT_INVALID if failed else EXIT_OK


def cmd_fmt(args) -> int:
    from .fmt import format_document
    from .frontend import read_source
    from .syntax import parse

    status = EXIT_OK
    for name in args.files:
        source = read_source(name)
        out = format_document(parse(source))
        if args.check:
            if out != source.text:
                print(f"{name}: would reformat", file=sys.stderr)
                status = EXIT_INVALID
        elif args.in_place:
            if out != source.text:
                write_atomic(name, out)
        else:
            sys.stdout.write(out)
    return status


def cmd_upgrade(args) -> int:
    from .errors import Diagnostics
    from .fmt import format_upgraded, message_lines
    from .frontend import _UpgradeReport, parse_located, read_source
    from .syntax import parse
    from .upgrade import IGNORED_TRANSFORM_FIELDS, upgrade_net, upgrade_solver

    source = read_source(args.file)
    doc = parse(source)
    kind = _guess_kind(doc)
    diags = Diagnostics()
    located = parse_located(source, kind, strict=args.strict, diags=diags, doc=doc)
    report = _UpgradeReport(located, diags)
    if kind == "solver":
        upgrade_solver(located.message, report)
        out = "\n".join(message_lines(located.message)) + "\n"
    else:
        key = report.key
        origin = upgrade_net(located.message, report)
        out = format_upgraded(located.message, doc, origin, key) if not diags.errors else ""
    _emit(diags.items)
    if diags.errors:
        print(_summary(source.name, diags.items), file=sys.stderr)
        return EXIT_INVALID
    if not [s for s in report.steps if s != IGNORED_TRANSFORM_FIELDS]:  # that step changes nothing
        print(f"{source.name}: already in the current format", file=sys.stderr)
    if args.output:
        write_atomic(args.output, out)
    else:
        sys.stdout.write(out)
    return EXIT_OK


def _parse_input(text: str) -> tuple[str, tuple]:
    """BLOB=NxCxHxW (any number of axes, each > 0; "scalar" for a 0-axis blob such as a loss)."""
    blob, sep, dims = text.rpartition("=")
    try:
        shape = () if dims.strip().lower() == "scalar" else \
            tuple(int(d) for d in dims.lower().replace("*", "x").split("x"))
    except ValueError:
        shape = None
    if not sep or not blob or shape is None or any(d <= 0 for d in shape):
        raise UsageError(f"--input {text}: expected BLOB=NxCxHxW with positive sizes, e.g. --input "
                         "data=64x3x227x227 (or BLOB=scalar)")
    return blob, shape


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    return n


def _solver_type_near(net_path: str) -> str | None:
    """The type of a solver.prototxt beside the net that names this net file."""
    from .frontend import parse_prototxt
    from .upgrade import RecordingContext, upgrade_solver
    net = Path(net_path)
    for cand in sorted(net.parent.glob("*solver*.prototxt")):
        try:
            solver = parse_prototxt(cand, "solver")
        except NetcError:
            continue
        named = [solver.net, solver.train_net, *solver.test_net]
        if any(n and Path(n).name == net.name for n in named):
            upgrade_solver(solver, RecordingContext())
            return solver.type
    return None


def cmd_report(args) -> int:
    from .frontend import read_source
    from .reports import compare_published, report

    if args.compare and args.format != "table":
        raise UsageError("--compare prints a table: it cannot be combined with --format " + args.format)
    inputs = dict(_parse_input(t) for t in args.input)
    solver_type = args.solver_type or _solver_type_near(args.net) or "SGD"
    rep = report(args.net, args.batch, inputs, args.phase, args.stage, args.level, args.strict, args.dtype,
                 solver_type, args.flops)
    _warn_unused_inputs(inputs, rep.net)
    for d in rep.analysis.diagnostics:
        if d.severity != "error":
            print(d.render(), file=sys.stderr)
    if args.format == "html":
        from .draw import to_dot, to_svg
        from .html import render_html
        svg = to_svg(to_dot(rep.analysis, rankdir="TB", detail="shapes",
                            collapse="modules" if args.group_by_prefix else None))
        out = render_html(rep, svg, group_by_prefix=args.group_by_prefix)
    elif args.compare:
        text, _ = compare_published(rep.analysis, read_source(args.compare).text, args.compare)
        out = rep.to_table(args.group_by_prefix) + "\n" + f"Compared with {args.compare}:\n" + text
    elif args.format == "json":
        out = rep.to_json_text()
    elif args.format == "md":
        out = rep.to_markdown(args.group_by_prefix)
    elif args.format == "csv":
        out = rep.to_csv(args.group_by_prefix)
    else:
        out = rep.to_table(args.group_by_prefix)
    if args.output:
        write_atomic(args.output, out)
    else:
        sys.stdout.write(out)
    return EXIT_OK


def _warn_unused_inputs(inputs: dict, net) -> None:
    """An --input naming no top of the net is a typo the user wants to hear about."""
    tops = {t for layer in net.layers for t in layer.tops}
    for blob in inputs:
        if blob not in tops:
            from .errors import did_you_mean
            near = did_you_mean(blob, tops)
            hint = f' (did you mean "{near[0]}"?)' if near else ""
            print(f'{net.source.name}: warning: --input {blob}=...: no layer has a top "{blob}"{hint}',
                  file=sys.stderr)


def cmd_draw(args) -> int:
    from .analysis import analyze
    from .draw import draw_to_file, to_dot
    from .graph import load_net

    inputs = dict(_parse_input(t) for t in args.input)
    net = load_net(args.net, args.phase, args.stage, args.level, strict=args.strict, shaped=inputs)
    # A diagram does not need every shape: what needs the data set is a note, and those edges go unlabelled.
    analysis = analyze(net, inputs, args.batch, lenient=True)
    for d in analysis.diagnostics:
        print(d.render(), file=sys.stderr)
    collapse = "modules" if args.collapse_modules else (args.collapse or None)
    dot = to_dot(analysis, rankdir=args.rankdir, detail=args.detail, collapse=collapse)
    if not args.output:
        sys.stdout.write(dot)
        return EXIT_OK
    return draw_to_file(dot, args.output)


def _analysed(args):
    """The analysed net of the compile-like commands (every shape must be known to generate code)."""
    from .analysis import analyze
    from .graph import load_net
    inputs = dict(_parse_input(t) for t in args.input)
    net = load_net(args.net, args.phase, args.stage, args.level, strict=args.strict, shaped=inputs)
    _warn_unused_inputs(inputs, net)
    analysis = analyze(net, inputs, args.batch)
    for d in analysis.diagnostics:
        print(d.render(), file=sys.stderr)
    return analysis


def cmd_compile(args) -> int:
    from .emit import emit_torch
    source = emit_torch(_analysed(args), args.class_name, source_name=args.net)
    if args.output:
        write_atomic(args.output, source)
    else:
        sys.stdout.write(source)
    return EXIT_OK


def cmd_convert_weights(args) -> int:
    from .emit import build_module
    from .weights import caffemodel_state_dict, save_state_dict
    module = build_module(_analysed(args), device="meta")
    state = caffemodel_state_dict(module, args.caffemodel)
    save_state_dict(state, args.output)
    print(f"{args.output}: {len(state)} tensors, {sum(t.numel() for t in state.values()):,} values", file=sys.stderr)
    return EXIT_OK


def cmd_parity(args) -> int:
    from .parity import BACKWARD_TOLERANCE, FORWARD_TOLERANCE, Tolerance, check_parity
    if bool(args.backward) != bool(args.topdiff):
        raise UsageError("--backward and --topdiff go together: the gradients need the top diffs that made them")
    fwd = Tolerance(args.rtol, args.atol, args.atol_rel) if args.rtol is not None else FORWARD_TOLERANCE
    result = check_parity(args.net, args.weights, args.inputs, args.expected, phase=args.phase, stages=args.stage,
                          backward=args.backward, topdiff=args.topdiff, forward_tolerance=fwd,
                          backward_tolerance=BACKWARD_TOLERANCE, device=args.device)
    print(result.render())
    return EXIT_OK if result.ok else EXIT_INVALID


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="netc", description="A Caffe-style declarative network compiler.")
    ap.add_argument("--version", action="version", version=f"netc {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    strict = dict(action="store_true", help="reject fork-only fields (ceil_mode) as BVLC Caffe does")

    p = sub.add_parser("check", help="check a net (or solver): syntax, schema, upgrades, graph")
    p.add_argument("net", metavar="NET", help="a net prototxt (train_val, deploy) or a solver prototxt")
    p.add_argument("--phase", choices=["TRAIN", "TEST"], type=str.upper,
                   help="check this phase only (default: every phase the file's rules distinguish)")
    p.add_argument("--stage", action="append", default=[], metavar="S", help="add a stage to the net state")
    p.add_argument("--level", type=int, default=None, metavar="N", help="the net state's level")
    p.add_argument("--input", action="append", default=[], metavar="BLOB=NxCxHxW",
                   help="the shape of a data or input top, where Caffe would read the data set")
    p.add_argument("--strict", **strict)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("report", help="per-layer shapes, parameters, MACs, activations, receptive fields, memory")
    p.add_argument("net", metavar="NET")
    p.add_argument("--phase", choices=["TRAIN", "TEST"], type=str.upper, default="TEST")
    p.add_argument("--stage", action="append", default=[], metavar="S")
    p.add_argument("--level", type=int, default=None, metavar="N")
    p.add_argument("--batch", type=_positive, default=None, metavar="N", help="batch size of the net inputs")
    p.add_argument("--input", action="append", default=[], metavar="BLOB=NxCxHxW",
                   help="the shape of a data or input top (needed where Caffe would read the data set)")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16", "float64"], default="float32")
    p.add_argument("--solver-type", choices=["SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam"],
                   help="optimizer for the training-memory estimate (default: the solver beside the net, else SGD)")
    p.add_argument("--format", choices=["table", "md", "csv", "json", "html"], default="table",
                   help="html: one self-contained page with the sortable table and the diagram")
    p.add_argument("-o", "--output", metavar="FILE")
    p.add_argument("--group-by-prefix", action="store_true", help="fold module/part layers into one row per module")
    p.add_argument("--flops", action="store_true", help="show FLOPs (2 x MACs) instead of MACs")
    p.add_argument("--compare", metavar="PUBLISHED.csv", help="compare with published per-layer numbers")
    p.add_argument("--strict", **strict)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("draw", help="an architecture diagram (Graphviz): SVG, PNG, PDF or DOT text")
    p.add_argument("net", metavar="NET")
    p.add_argument("-o", "--output", metavar="OUT", help="out.svg, .png, .pdf or .dot (default: DOT on stdout)")
    p.add_argument("--phase", choices=["TRAIN", "TEST"], type=str.upper, default="TEST")
    p.add_argument("--stage", action="append", default=[], metavar="S")
    p.add_argument("--level", type=int, default=None, metavar="N")
    p.add_argument("--batch", type=_positive, default=None, metavar="N")
    p.add_argument("--input", action="append", default=[], metavar="BLOB=NxCxHxW")
    p.add_argument("--rankdir", choices=["TB", "LR", "BT", "RL"], default="TB")
    p.add_argument("--detail", choices=["names", "params", "shapes", "full"], default="shapes")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--collapse", metavar="PREFIX", action="append", default=[],
                   help="draw the layers named PREFIX... as one node (repeatable)")
    g.add_argument("--collapse-modules", action="store_true",
                   help="one node per module (inception_3a/, res2a_ ...)")
    p.add_argument("--strict", **strict)
    p.set_defaults(func=cmd_draw)

    def net_state(p, batch: bool = True) -> None:
        p.add_argument("--phase", choices=["TRAIN", "TEST"], type=str.upper, default="TEST")
        p.add_argument("--stage", action="append", default=[], metavar="S")
        p.add_argument("--level", type=int, default=None, metavar="N")
        if batch:
            p.add_argument("--batch", type=_positive, default=None, metavar="N",
                           help="batch size of the traced shapes (the module takes any batch)")
        p.add_argument("--input", action="append", default=[], metavar="BLOB=NxCxHxW",
                       help="the shape of a data or input top (needed where Caffe would read the data set)")
        p.add_argument("--strict", **strict)

    p = sub.add_parser("compile", help="a standalone PyTorch module (one .py file) with Caffe's exact semantics")
    p.add_argument("net", metavar="NET")
    net_state(p)
    p.add_argument("-o", "--output", metavar="model.py", help="write here instead of stdout")
    p.add_argument("--class-name", metavar="NAME", help="the nn.Module class name (default: from the net's name)")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("convert-weights", help="a .caffemodel as a state_dict (.pt or .safetensors) for the "
                                               "compiled module")
    p.add_argument("caffemodel", metavar="IN.caffemodel")
    p.add_argument("--net", required=True, metavar="NET", help="the prototxt the weights belong to")
    net_state(p)
    p.add_argument("-o", "--output", required=True, metavar="OUT.pt|OUT.safetensors")
    p.set_defaults(func=cmd_convert_weights)

    p = sub.add_parser("parity", help="compare the compiled module with arrays dumped from Caffe, blob by blob")
    p.add_argument("net", metavar="NET")
    p.add_argument("--weights", required=True, metavar="W.caffemodel")
    p.add_argument("--inputs", required=True, metavar="inputs.npz", help="one array per input blob")
    p.add_argument("--expected", required=True, metavar="forward.npz",
                   help="Caffe's blobs after forward (blob name -> array; \"<layer>.<i>\" -> a layer blob)")
    p.add_argument("--backward", metavar="backward.npz", help="Caffe's diffs (\"<blob>.diff\", \"<layer>.<i>.diff\")")
    p.add_argument("--topdiff", metavar="topdiff.npz", help="the diffs Caffe put on the output blobs")
    net_state(p, batch=False)
    p.add_argument("--rtol", type=float, default=None, help="forward tolerance (default: rtol 1e-4, atol 1e-7 "
                                                            "+ 1e-5 x max|Caffe|, the golden nets' tolerance)")
    p.add_argument("--atol", type=float, default=0.0, help="absolute tolerance, with --rtol")
    p.add_argument("--atol-rel", type=float, default=0.0, help="tolerance relative to max|Caffe|, with --rtol")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.set_defaults(func=cmd_parity)

    p = sub.add_parser("fmt", help="print a prototxt in the canonical form, comments kept")
    p.add_argument("files", nargs="+", metavar="FILE")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--in-place", "-i", action="store_true", help="rewrite the files (atomically)")
    g.add_argument("--check", action="store_true", help="exit 1 if a file is not formatted (for hooks)")
    p.set_defaults(func=cmd_fmt)

    p = sub.add_parser("upgrade", help="convert a V0/V1 net or an old solver to the current format")
    p.add_argument("file", metavar="FILE")
    p.add_argument("-o", "--output", metavar="OUT", help="write here instead of stdout")
    p.add_argument("--strict", **strict)
    p.set_defaults(func=cmd_upgrade)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    try:
        ap = build_parser()
        try:
            args = ap.parse_args(list(argv) if argv is not None else None)
        except SystemExit as e:  # --help and --version: main() returns, it does not exit
            return e.code if isinstance(e.code, int) else EXIT_OK
        if not getattr(args, "func", None):
            ap.print_usage(sys.stderr)
            return EXIT_USAGE
        return args.func(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except NetcError as e:
        _emit(e.diagnostics)
        name = next((d.span.source.name for d in e.diagnostics if d.span), None) or \
            next((d.source_name for d in e.diagnostics if d.source_name), "netc")
        if len(e.diagnostics) > 1 or e.diagnostics[0].span is not None:
            print(_summary(name, e.diagnostics), file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except RecursionError:
        print("netc: internal error: input nested too deeply for this netc (please report it)", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as e:  # a netc bug: say so, separately from user mistakes
        import traceback
        print(f"netc: internal error: {type(e).__name__}: {e}\n(this is a bug in netc, not in your file; "
              "please report it with the input)", file=sys.stderr)
        if os.environ.get("NETC_DEBUG"):
            traceback.print_exc()
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
