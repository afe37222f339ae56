#!/usr/bin/env python3
"""Fuzz netc's front end: every input must give a result or a NetcError, never anything else.

    python tools/fuzz_parse.py --cases 100000 --seed 1 --jobs 2 [--corpus ../shared/corpus] [--out DIR]
    python tools/fuzz_parse.py --quick                 # a short smoke run
    python tools/fuzz_parse.py --case 4242 --seed 1    # rerun one case, show what it did
    python tools/fuzz_parse.py --replay DIR/crash-1.prototxt

Case i of a run is drawn by `random.Random(f"{seed}/{i}")` from the generator in slot `i % len(SCHEDULE)`, so a
run is the same for any --jobs and any case can be rerun alone.  Each case goes through the whole front end:

    source_from_bytes -> parse -> bind as NetParameter and as SolverParameter (+ the solver upgrade)
    -> load_net_param (parse, bind, upgrade) -> build_net for TRAIN, TEST and the net's own stages
    -> format_document, when it parsed

and every NetcError is rendered.  A case is "ok" when it parsed and either bound as a solver or loaded and built
as a net in every state, "NetcError" when a stage refused it with one.

When the text parsed, the formatter must keep it: fmt(x) parses, fmt(fmt(x)) == fmt(x), and parse(fmt(x)) is
parse(x) up to what fmt canonicalizes (colons, separators, string spelling, `[{...}, {...}]` written as
repeated fields); when it bound, fmt(x) binds to the same message.

Failures (exit 1): an exception other than NetcError, a formatter property broken, a case whose front end
(everything above, without the fmt round trip that only checks it) takes more than --slow CPU seconds.  Each
distinct failure gets a repro under --out: the case as it was, a shrunk copy, and the traceback or the
property's details.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import math
import multiprocessing
import os
import random
import re
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from netc import caffe_pb2  # noqa: E402
from netc.bind import _Bad, _string_bytes, bind  # noqa: E402
from netc.errors import Diagnostics, NetcError, Source  # noqa: E402
from netc.fmt import format_document  # noqa: E402
from netc.frontend import _UpgradeReport, load_net_param, source_from_bytes  # noqa: E402
from netc.graph import PHASES, build_net, net_states  # noqa: E402
from netc.syntax import FIELD_LIST, FIELD_MESSAGE, Message, Strings, parse  # noqa: E402
from netc.upgrade import upgrade_solver  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
MAX_DEPTH = 100_000

# ------------------------------------------------------------------------------------------------------
# The prototxt alphabet

def _schema_names() -> tuple[list[str], list[str]]:
    """Every field name and enum value name of caffe.proto."""
    fields: set[str] = set()
    enums: set[str] = set()
    seen: set[str] = set()
    todo = [caffe_pb2.NetParameter.DESCRIPTOR, caffe_pb2.SolverParameter.DESCRIPTOR]
    while todo:
        d = todo.pop()
        if d.full_name in seen:
            continue
        seen.add(d.full_name)
        for f in d.fields:
            fields.add(f.name)
            if f.message_type is not None:
                todo.append(f.message_type)
            if f.enum_type is not None:
                enums.update(v.name for v in f.enum_type.values)
    return sorted(fields), sorted(enums)


FIELD_NAMES, ENUM_NAMES = _schema_names()


def _layer_types() -> list[str]:
    from netc.layers import known_types
    return known_types()


LAYER_TYPES = _layer_types()

NUMBERS = [
    "0", "1", "-1", "3", "7", "13", "64", "96", "224", "1000", "0.5", ".5", "-.5", "1.", "1e3", "1E-3", "1e+3",
    "2.5e-4", "1.5f", "1F", "0x1F", "0X7fffffff", "017", "09", "0.0", "-0", "00", "2147483647", "2147483648",
    "-2147483648", "-2147483649", "4294967295", "4294967296", "9223372036854775807", "18446744073709551616",
    "99999999999999999999999999", "1e39", "1e-46", "1e309", "1_000", "0b1", "0o17", "1.2.3", "1e", "1e+",
    "-", "--1", "+1", "1x", "0x", "0xg", "1.5e3f", "1ee3", "123abc",
]
WORDS = [
    "true", "false", "True", "False", "t", "f", "inf", "-inf", "infinity", "nan", "-nan", "NaN", "TRAIN", "TEST",
    "MAX", "AVE", "CAFFE", "CUDNN", "SGD", "xavier", "gaussian", "data", "label", "loss", "conv1", "pool1",
    "_", "a", "b", "x1", "A_B_C", "layer", "layers", "input", "input_dim",
]
STRINGS = [
    '""', "''", '"data"', '"label"', '"conv1"', '"Convolution"', '"ReLU"', '"Input"', '"SoftmaxWithLoss"',
    '"a\\nb"', '"tab\\there"', '"q\\"q"', "'s\\'s'", '"\\101\\102"', '"\\x41"', '"\\xff"', '"\\377"', '"\\400"',
    '"\\u00e9"', '"\\U0001F600"', '"\\uD800"', '"\\U00110000"', '"\\q"', '"\\"', '"é"', '"日本"', '"#not a comment"',
    "'single'", '"a" "b"', '"a" \'b\'', '"unterminated', "'unterminated", '"x\\\n#y"', '"\\0"', '"\\?"',
    '"path/to/file.txt"', '"a:b"', '"{"', '"}"',
]
PUNCT = ["{", "}", "<", ">", "[", "]", ":", ",", ";", "-", ".", "+", "=", "/", "\\", "@", "'", '"']
COMMENTS = ["# comment\n", "#\n", "# a { b: 1 }\n", "#}\n", '# "\n', "# é\n", "#"]
SPACES = [" ", " ", " ", "\n", "\n", "  ", "\t", "\r\n", "\r", "", "\n\n", "\f", "\v", "\u00a0", "\u2028"]


def _name(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.6:
        return rng.choice(FIELD_NAMES)
    if r < 0.8:
        return rng.choice(WORDS + ENUM_NAMES)
    word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz_0123456789") for _ in range(rng.randint(1, 12)))
    return word.lstrip("0123456789") or "n"


def _value(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.4:
        return rng.choice(NUMBERS)
    if r < 0.7:
        return rng.choice(STRINGS) if rng.random() < 0.5 else f'"{rng.choice(LAYER_TYPES + WORDS)}"'
    return rng.choice(WORDS + ENUM_NAMES)


def random_token(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.3:
        return _name(rng)
    if r < 0.45:
        return rng.choice(NUMBERS)
    if r < 0.6:
        return rng.choice(STRINGS)
    if r < 0.93:
        return rng.choice(PUNCT[:9]) if rng.random() < 0.8 else rng.choice(PUNCT)
    return rng.choice(COMMENTS)


def _join(tokens: list[str], rng: random.Random) -> str:
    out = []
    for t in tokens:
        out.append(t)
        out.append(rng.choice(SPACES))
    return "".join(out)


# ------------------------------------------------------------------------------------------------------
# Generators: (rng) -> bytes

def gen_bytes(rng: random.Random) -> bytes:
    """Raw bytes: NULs, invalid UTF-8, a BOM, mostly-text with a stray byte."""
    n = int(rng.expovariate(1 / 60)) + 1
    r = rng.random()
    if r < 0.3:
        return rng.randbytes(n)
    if r < 0.6:
        data = bytearray(rng.randbytes(n))
        return bytes(b if b else 1 for b in data)  # no NUL: reaches the UTF-8 check
    base = gen_text(rng).encode("utf-8")
    if r < 0.75:
        return b"\xef\xbb\xbf" + base
    pos = rng.randint(0, len(base))
    junk = rng.choice([b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\xef\xbb\xbf"])
    return base[:pos] + junk + base[pos:]


def gen_text(rng: random.Random) -> str:
    """Random printable text (ASCII mostly, some other Unicode and control characters)."""
    n = int(rng.expovariate(1 / 80)) + 1
    r = rng.random()
    if r < 0.6:
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 \n\t{}<>[]:,;\"'#\\-._"
        return "".join(rng.choice(alphabet) for _ in range(n))
    if r < 0.9:
        return "".join(chr(rng.randint(0x20, 0x7E)) if rng.random() < 0.9 else rng.choice("\n\t\r ")
                       for _ in range(n))
    return "".join(chr(rng.choice([rng.randint(1, 0x7F), rng.randint(0x80, 0x2FFF), rng.randint(0x1F000, 0x1F6FF)]))
                   for _ in range(n))


def gen_tokens(rng: random.Random) -> str:
    """Token soup: prototxt tokens in random order, or in a roughly prototxt shape with slips."""
    if rng.random() < 0.4:
        return _join([random_token(rng) for _ in range(int(rng.expovariate(1 / 25)) + 1)], rng)
    out: list[str] = []
    depth = 0
    for _ in range(int(rng.expovariate(1 / 30)) + 1):
        r = rng.random()
        if r < 0.45:
            out += [_name(rng), ":", _value(rng)]
        elif r < 0.6:
            out += [_name(rng), rng.choice(["{", "{", "<", ": {"])]
            depth += 1
        elif r < 0.75 and depth:
            out.append(rng.choice(["}", "}", ">"]))
            depth -= 1
        elif r < 0.82:
            out += [_name(rng), rng.choice([": [", "["])]
            out.append(", ".join(_value(rng) for _ in range(rng.randint(0, 4))))
            out.append("]")
        elif r < 0.87:
            out += [_name(rng), ": [{", _name(rng), ":", _value(rng), "}, {", "}]"]
        elif r < 0.9:
            out.append(rng.choice([",", ";"]))
        elif r < 0.95:
            out.append(rng.choice(COMMENTS))
        else:
            out.append(random_token(rng))
    if rng.random() < 0.8:
        out += ["}"] * depth
    return _join(out, rng)


def _schema_value(fd, rng: random.Random) -> str:
    T = fd.type
    if rng.random() < 0.08:
        return _value(rng)  # a value of the wrong kind now and then
    if T == fd.TYPE_ENUM:
        return rng.choice([v.name for v in fd.enum_type.values])
    if T == fd.TYPE_BOOL:
        return rng.choice(["true", "false"])
    if T == fd.TYPE_STRING or T == fd.TYPE_BYTES:
        return f'"{rng.choice(LAYER_TYPES + WORDS)}"' if fd.name == "type" else rng.choice(STRINGS[:12])
    if T in (fd.TYPE_FLOAT, fd.TYPE_DOUBLE):
        return rng.choice(["0", "0.5", "1", "0.001", "1e-4", "-1", "2.5", "inf"])
    return rng.choice(["0", "1", "2", "3", "5", "7", "11", "64", "-1", "100000"])


def _schema_message(desc, rng: random.Random, depth: int, lines: list[str], indent: str) -> None:
    fields = list(desc.fields)
    for _ in range(rng.randint(0, 4 if depth else 8)):
        fd = rng.choice(fields)
        if fd.message_type is not None:
            if depth >= 4:
                continue
            lines.append(f"{indent}{fd.name} {{")
            _schema_message(fd.message_type, rng, depth + 1, lines, indent + "  ")
            lines.append(indent + "}")
        else:
            lines.append(f"{indent}{fd.name}: {_schema_value(fd, rng)}")


def gen_schema(rng: random.Random) -> str:
    """Well-formed text with caffe.proto's field names: a solver, or a net of connected layers."""
    lines: list[str] = []
    if rng.random() < 0.2:
        _schema_message(caffe_pb2.SolverParameter.DESCRIPTOR, rng, 0, lines, "")
        return "\n".join(lines) + "\n"
    if rng.random() < 0.5:
        lines.append('name: "fuzz"')
    blobs = ["data"]
    lines.append('layer { name: "data" type: "Input" top: "data" '
                 f'input_param {{ shape {{ dim: {rng.choice([1, 2])} dim: {rng.choice([1, 3])} '
                 f'dim: {rng.choice([13, 17, 32])} dim: {rng.choice([13, 17, 32])} }} }} }}')
    layer_desc = caffe_pb2.LayerParameter.DESCRIPTOR
    params = [f for f in layer_desc.fields if f.name.endswith("_param") and f.message_type is not None]
    for i in range(rng.randint(1, 12)):
        t = rng.choice(LAYER_TYPES)
        lines.append("layer {")
        lines.append(f'  name: "l{i}"')
        lines.append(f'  type: "{t}"')
        for _ in range(rng.choice([0, 1, 1, 1, 2])):
            lines.append(f'  bottom: "{rng.choice(blobs)}"')
        top = rng.choice(blobs) if rng.random() < 0.2 else f"b{i}"
        lines.append(f'  top: "{top}"')
        blobs.append(top)
        for _ in range(rng.choice([0, 1, 1, 2])):
            fd = rng.choice(params)
            lines.append(f"  {fd.name} {{")
            _schema_message(fd.message_type, rng, 2, lines, "    ")
            lines.append("  }")
        if rng.random() < 0.3:
            lines.append(f"  include {{ phase: {rng.choice(['TRAIN', 'TEST'])} }}")
        lines.append("}")
    return "\n".join(lines) + "\n"


def _log_uniform(rng: random.Random, hi: int) -> int:
    return int(math.exp(rng.uniform(0, math.log(hi))))


def gen_deep(rng: random.Random) -> str:
    """Deep nesting (up to MAX_DEPTH levels), long lists and strings, and nets with many layers.

    Sizes stay within what a real file could hold: nesting and value lists up to MAX_DEPTH, a layer's
    bottoms up to 1000 (a Concat has tens), a chain of up to 2000 layers (ResNet-152 deploy has ~800)."""
    n = _log_uniform(rng, MAX_DEPTH)
    shape = rng.randrange(12)
    if shape == 0:
        return "a {" * n
    if shape == 1:
        return "a {" * n + "}" * n
    if shape == 2:
        return "a <" * n + ">" * n
    if shape == 3:
        return rng.choice(["[", "{", "<", "a: [", "a: {", "}", "]"]) * n
    if shape == 4:
        return "a: [{ " * n + "}]" * n
    if shape == 5:
        return "layer {\n" * n + "}\n" * rng.choice([n, n - 1, n + 1])
    if shape == 6:
        dims = ", ".join(str(rng.choice([1, 2, 3])) for _ in range(n))
        return f'layer {{ name: "d" type: "Input" top: "d" input_param {{ shape {{ dim: [{dims}] }} }} }}\n'
    if shape == 7:
        k = _log_uniform(rng, 1000)
        return 'layer { name: "x" type: "Concat" top: "x" ' + 'bottom: "x" ' * k + "}\n"
    if shape == 8:
        k = _log_uniform(rng, 2000)
        head = 'layer { name: "d" type: "Input" top: "b0" input_param { shape { dim: 2 dim: 3 dim: 13 dim: 17 } } }\n'
        return head + "".join(f'layer {{ name: "r{i}" type: "ReLU" bottom: "b{i}" top: "b{i + 1}" }}\n'
                              for i in range(k))
    if shape == 9:
        return 'name: "' + "x" * (n * 10) + '"\n'
    if shape == 10:
        return "# " + "c" * (n * 10) + "\n" + "\n" * n + 'name: "x"\n'
    return "a: [" + ", ".join(rng.choice(["1", '"s"', "x", "{}"]) for _ in range(n)) + "]\n"


# ------------------------------------------------------------------------------------------------------
# Mutations of real files: (text, rng) -> text

_TOKEN_SPLIT = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|#[^\n]*'
                          r'|[A-Za-z_][A-Za-z0-9_]*|-?[0-9.][\w.+-]*|\s+|.',
                          re.DOTALL)


def _tokens(text: str) -> list[str]:
    return _TOKEN_SPLIT.findall(text)


def _span(text: str, rng: random.Random) -> tuple[int, int]:
    a = rng.randint(0, len(text))
    return a, min(len(text), a + int(rng.expovariate(1 / 20)) + 1)


def mut_delete_span(text: str, rng: random.Random) -> str:
    a, b = _span(text, rng)
    return text[:a] + text[b:]


def mut_insert_span(text: str, rng: random.Random) -> str:
    a = rng.randint(0, len(text))
    if text and rng.random() < 0.5:
        b, c = _span(text, rng)
        piece = text[b:c]
    else:
        piece = _join([random_token(rng) for _ in range(rng.randint(1, 4))], rng)
    return text[:a] + piece + text[a:]


def mut_duplicate_span(text: str, rng: random.Random) -> str:
    a, b = _span(text, rng)
    return text[:b] + text[a:b] + text[b:]


def mut_swap_spans(text: str, rng: random.Random) -> str:
    a, b = _span(text, rng)
    c, d = _span(text, rng)
    if c < a:
        a, b, c, d = c, d, a, b
    if b > c:
        return text
    return text[:a] + text[c:d] + text[b:c] + text[a:b] + text[d:]


def _token_op(text: str, rng: random.Random, op: str) -> str:
    toks = _tokens(text)
    solid = [i for i, t in enumerate(toks) if not t.isspace()]
    if not solid:
        return text + random_token(rng)
    i = rng.choice(solid)
    if op == "delete":
        toks[i] = ""
    elif op == "insert":
        toks[i] = random_token(rng) + rng.choice(SPACES) + toks[i]
    elif op == "duplicate":
        toks[i] = toks[i] + rng.choice([" ", "", "\n"]) + toks[i]
    elif op == "swap":
        j = rng.choice(solid)
        toks[i], toks[j] = toks[j], toks[i]
    elif op == "replace":
        t = toks[i]
        if t[0] in "\"'":
            toks[i] = rng.choice(STRINGS)
        elif t[0].isdigit() or t[0] in "-.":
            toks[i] = rng.choice(NUMBERS)
        elif t[0].isalpha() or t[0] == "_":
            toks[i] = _name(rng) if rng.random() < 0.7 else rng.choice(WORDS + ENUM_NAMES)
        else:
            toks[i] = random_token(rng)
    return "".join(toks)


def mut_delete_token(text: str, rng: random.Random) -> str:
    return _token_op(text, rng, "delete")


def mut_insert_token(text: str, rng: random.Random) -> str:
    return _token_op(text, rng, "insert")


def mut_duplicate_token(text: str, rng: random.Random) -> str:
    return _token_op(text, rng, "duplicate")


def mut_swap_tokens(text: str, rng: random.Random) -> str:
    return _token_op(text, rng, "swap")


def mut_replace_token(text: str, rng: random.Random) -> str:
    return _token_op(text, rng, "replace")


def mut_truncate(text: str, rng: random.Random) -> str:
    return text[:rng.randint(0, len(text))]


def mut_flip_brace(text: str, rng: random.Random) -> str:
    where = [m.start() for m in re.finditer(r"[{}<>\[\]]", text)]
    if not where:
        return text + rng.choice("{}")
    i = rng.choice(where)
    new = {"{": "}", "}": "{", "<": ">", ">": "<", "[": "]", "]": "["}[text[i]]
    new = rng.choice([new, new, "", "{", "}", "<", ">", text[i] * 2])
    return text[:i] + new + text[i + 1:]


def _blocks(text: str) -> list[tuple[int, int]]:
    """(start, end) of each `layer {...}` / `layers {...}` block, braces matched outside strings/comments."""
    out = []
    for m in re.finditer(r"(?m)^[ \t]*layers?\s*\{", text):
        depth = 0
        for t in _TOKEN_SPLIT.finditer(text, m.end() - 1):
            s = t.group()
            if s == "{":
                depth += 1
            elif s == "}":
                depth -= 1
                if depth == 0:
                    out.append((m.start(), t.end()))
                    break
    return out


def mut_duplicate_layer(text: str, rng: random.Random) -> str:
    blocks = _blocks(text)
    if not blocks:
        return mut_duplicate_span(text, rng)
    a, b = rng.choice(blocks)
    block = text[a:b]
    if rng.random() < 0.5:
        at = b  # right after itself
    else:
        at = rng.choice([s for s, _ in blocks] + [e for _, e in blocks])
    return text[:at] + "\n" + block + "\n" + text[at:]


def mut_drop_layer(text: str, rng: random.Random) -> str:
    blocks = _blocks(text)
    if not blocks:
        return mut_delete_span(text, rng)
    a, b = rng.choice(blocks)
    return text[:a] + text[b:]


_BLOB_RE = re.compile(r'\b(bottom|top)(\s*:\s*)"([^"\\\n]*)"')


def mut_rename_bottom(text: str, rng: random.Random) -> str:
    """Point a bottom (sometimes a top) at another blob, a near-miss spelling or a new name."""
    refs = list(_BLOB_RE.finditer(text))
    bottoms = [m for m in refs if m.group(1) == "bottom"] or refs
    if not bottoms:
        return mut_replace_token(text, rng)
    m = rng.choice(bottoms) if rng.random() < 0.85 else rng.choice(refs)
    name = m.group(3)
    r = rng.random()
    if r < 0.4:
        new = rng.choice(refs).group(3)
    elif r < 0.7 and name:
        i = rng.randrange(len(name))
        new = name[:i] + rng.choice(["", "_", "x", name[i] * 2]) + name[i + 1:]
    else:
        new = rng.choice(["", "data", "label", "nope", "a/b", "x:y", "é", 'q\\"q'])
    return text[:m.start(3)] + new + text[m.end(3):]


_SCALAR_RE = re.compile(r"\b([a-z_]+)(\s*:\s*)(-?[0-9.][\w.+-]*|[A-Za-z_]\w*)")


def mut_replace_value(text: str, rng: random.Random) -> str:
    """Give a scalar field an edge value (zero, negative, huge, NaN, the wrong kind)."""
    found = list(_SCALAR_RE.finditer(text))
    if not found:
        return mut_replace_token(text, rng)
    m = rng.choice(found)
    new = rng.choice(["0", "-1", "1", "2", "3", "100000", "2147483647", "4294967296", "-2147483649", "0.5", "1e40",
                      "nan", "inf", "-inf", "true", "MAX", "CUDNN", '"s"', "TEST", "TRAIN"])
    return text[:m.start(3)] + new + text[m.end(3):]


MUTATIONS = {
    "delete_span": mut_delete_span, "insert_span": mut_insert_span, "duplicate_span": mut_duplicate_span,
    "swap_spans": mut_swap_spans, "delete_token": mut_delete_token, "insert_token": mut_insert_token,
    "duplicate_token": mut_duplicate_token, "swap_tokens": mut_swap_tokens, "replace_token": mut_replace_token,
    "truncate": mut_truncate, "flip_brace": mut_flip_brace, "duplicate_layer": mut_duplicate_layer,
    "drop_layer": mut_drop_layer, "rename_bottom": mut_rename_bottom, "replace_value": mut_replace_value,
}


def mutate(text: str, rng: random.Random, count: int | None = None) -> tuple[str, list[str]]:
    """Apply `count` (default: 1 to 3, mostly 1) random mutations; returns the text and their names."""
    if count is None:
        count = rng.choice([1, 1, 1, 2, 3])
    names = []
    for _ in range(count):
        name = rng.choice(sorted(MUTATIONS))
        text = MUTATIONS[name](text, rng)
        names.append(name)
    return text, names


def seed_files(corpus: Path | None) -> list[Path]:
    """The prototxt files mutations start from: nets/ and the corpus, in a fixed order."""
    roots = [ROOT / "nets"] + ([corpus] if corpus is not None else [])
    files: list[Path] = []
    for r in roots:
        if r.is_dir():
            files += sorted(r.rglob("*.prototxt"))
    return files


_SEEDS: list[tuple[str, str]] = []


def _load_seeds(corpus: Path | None) -> None:
    _SEEDS.clear()
    for p in seed_files(corpus):
        _SEEDS.append((str(p), p.read_text(encoding="utf-8", errors="replace")))


def gen_mutation(rng: random.Random) -> str:
    if not _SEEDS:
        return gen_tokens(rng)
    _, text = rng.choice(_SEEDS)
    return mutate(text, rng)[0]


GENERATORS = {
    "bytes": gen_bytes, "text": gen_text, "tokens": gen_tokens, "mutation": gen_mutation, "schema": gen_schema,
    "deep": gen_deep,
}
# Round-robin order; mutations of real files get two slots (they reach the deepest stages).
SCHEDULE = ["bytes", "text", "tokens", "mutation", "schema", "mutation", "deep"]


def make_case(seed: int, index: int) -> tuple[str, bytes]:
    gen = SCHEDULE[index % len(SCHEDULE)]
    rng = random.Random(f"{seed}/{index}")
    data = GENERATORS[gen](rng)
    return gen, data if isinstance(data, bytes) else data.encode("utf-8")


# ------------------------------------------------------------------------------------------------------
# Running one case

STAGES = ["parsed", "bound net", "bound solver", "loaded net", "built TRAIN", "built TEST"]


class Hang(BaseException):
    """Raised by the per-case alarm (BaseException so no `except Exception` in netc swallows it)."""


class PropertyViolation(Exception):
    def __init__(self, prop: str, detail: str) -> None:
        super().__init__(f"{prop}: {detail}")
        self.prop = prop
        self.detail = detail


@dataclass
class Outcome:
    status: str = "ok"              # ok | error (a NetcError stopped it) | crash | property
    stages: list[str] = field(default_factory=list)
    error_stage: str = ""           # where the NetcError or crash happened
    signature: str = ""             # what makes two failures the same one
    detail: str = ""                # traceback or property details
    unlocated: int = 0              # NetcErrors whose diagnostics carry neither a span nor a file name
    check_cpu: float = 0.0          # CPU seconds of the fmt round trip (not the front end's own time)


def _render(e: NetcError, out: Outcome) -> None:
    e.render()
    str(e)
    if not any(d.span is not None or d.source_name for d in e.diagnostics):
        out.unlocated += 1


def _events(fields: list) -> list[tuple]:
    """A tree as a flat list of events, without positions and without what fmt may change (colons,
    separators, string spelling, `name: [{...}, {...}]` for repeated `name {...}`).  Iterative: the tree
    may be nested 100k deep."""
    out: list[tuple] = []
    stack = [_items(fields, None)]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            continue
        tag, x = item
        if tag == "emit":
            out.append(x)
        elif tag == "element":  # of a list that mixes messages and scalars
            if isinstance(x, Message):
                out.append(("element {",))
                stack.append(_items(x.fields, ("}",)))
            else:
                out.append(("element", _scalar(x)))
        else:
            name, kind, value = x[0], x[2], x[3]
            if kind == FIELD_MESSAGE:
                out.append((name, "{"))
                stack.append(_items(value.fields, ("}",)))
            elif kind == FIELD_LIST and value.elements and all(isinstance(e, Message) for e in value.elements):
                stack.append(_repeated(name, value.elements))
            elif kind == FIELD_LIST and any(isinstance(e, Message) for e in value.elements):
                out.append((name, "["))
                stack.append(_elements(value.elements))
            elif kind == FIELD_LIST:
                out.append((name, "list", tuple(_scalar(e) for e in value.elements)))
            else:
                out.append((name, "scalar", _scalar(value)))
    return out


def _items(fields: list, close: tuple | None):
    for f in fields:
        yield "field", f
    if close:
        yield "emit", close


def _repeated(name: str, elements: list):
    for e in elements:
        yield "emit", (name, "{")
        yield from _items(e.fields, ("}",))


def _elements(elements: list):
    for e in elements:
        yield "element", e
    yield "emit", ("]",)


def _scalar(v) -> tuple:
    if isinstance(v, Strings) or v[0] == "STRING":
        try:
            return ("string", _string_bytes(v))
        except _Bad:
            return ("string?", tuple(t[1] for t in (v.tokens if isinstance(v, Strings) else [v])))
    return (v[0], v[1])


def _check_fmt(doc, out1: str, messages: dict[str, bytes | None], name: str) -> None:
    """fmt(x) = out1 parses, is a fixed point, keeps the tree and binds to the same messages."""
    try:
        doc2 = parse(Source(name + " (formatted)", out1))
    except NetcError as e:
        raise PropertyViolation("fmt output does not parse", e.render() + "\n--- fmt output:\n" + out1[:4000]) from None
    out2 = format_document(doc2)
    if out2 != out1:
        a, b = out1.splitlines(), out2.splitlines()
        k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        raise PropertyViolation("fmt is not idempotent",
                                f"line {k + 1}: fmt(x) {a[k:k + 1]!r:.300} fmt(fmt(x)) {b[k:k + 1]!r:.300}")
    e1, e2 = _events(doc.fields), _events(doc2.fields)
    if e1 != e2:
        k = next((i for i, (a, b) in enumerate(zip(e1, e2)) if a != b), min(len(e1), len(e2)))
        raise PropertyViolation("parse(fmt(x)) != parse(x)",
                                f"event {k}: {e1[max(k - 2, 0):k + 2]!r:.400} became {e2[max(k - 2, 0):k + 2]!r:.400}")
    for kind, want in messages.items():
        if want is None:
            continue
        cls = caffe_pb2.NetParameter if kind == "net" else caffe_pb2.SolverParameter
        try:
            got = bind(doc2, cls).message.SerializeToString(deterministic=True)
        except NetcError as e:
            raise PropertyViolation("fmt(x) does not bind", f"as {kind}: " + e.render()) from None
        if got != want:
            raise PropertyViolation("bind(fmt(x)) != bind(x)", f"the {kind} message changed")


def _signature(e: BaseException) -> str:
    """Exception type and the innermost netc frame: one line per distinct bug."""
    frames = traceback.extract_tb(e.__traceback__)
    if isinstance(e, RecursionError):
        # The innermost frame is wherever the stack ran out; the frame that repeats is the bug.
        rec = [f for f in frames if f"{os.sep}netc{os.sep}" in f.filename] or frames
        counts: dict = {}
        for f in rec:
            counts[(f.filename, f.name)] = counts.get((f.filename, f.name), 0) + 1
        (fname, func), _ = max(counts.items(), key=lambda kv: kv[1])
        return f"RecursionError in {Path(fname).name}:{func}"
    ours = [f for f in frames if f"{os.sep}netc{os.sep}" in f.filename]
    where = ours[-1] if ours else (frames[-1] if frames else None)
    loc = f"{Path(where.filename).name}:{where.lineno} in {where.name}" if where else "?"
    # The netc function the front end called: _Bad from bind.py means one thing in bind, another in fmt.
    entry = f" (from {Path(ours[0].filename).name}:{ours[0].name})" if ours and ours[0] is not where else ""
    return f"{type(e).__name__} at {loc}{entry}"


def run_case(data: bytes, name: str = "<fuzz>") -> Outcome:
    """The whole front end on one input; never raises (except Hang)."""
    out = Outcome()
    stage = "source_from_bytes"
    try:
        try:
            source = source_from_bytes(name, data)
            stage = "parse"
            doc = parse(source)
        except NetcError as e:
            _render(e, out)
            out.status, out.error_stage = "error", stage
            return out
        out.stages.append("parsed")
        messages: dict[str, bytes | None] = {}
        bound = False
        for kind, cls in (("net", caffe_pb2.NetParameter), ("solver", caffe_pb2.SolverParameter)):
            stage = f"bind as {kind}"
            try:
                diags = Diagnostics()
                located = bind(doc, cls, diags)
                messages[kind] = located.message.SerializeToString(deterministic=True)
                out.stages.append(f"bound {kind}")
                if kind == "solver":
                    stage = "upgrade solver"
                    upgrade_solver(located.message, _UpgradeReport(located, diags))
                    for d in diags.items:
                        d.render()
                    if diags.errors:
                        raise NetcError(diags.items)
                    bound = True
            except NetcError as e:
                _render(e, out)
                messages.setdefault(kind, None)
                out.error_stage = out.error_stage or stage
        net_ok = False
        if messages.get("net") is not None:
            stage = "load_net_param"
            try:
                ns = load_net_param(source)
                for d in ns.diagnostics:
                    d.render()
                out.stages.append("loaded net")
                states = [(PHASES["TRAIN"], ()), (PHASES["TEST"], ())]
                states += [s for s in net_states(ns.param) if s not in states]
                net_ok = True
                for phase, stages in states:
                    stage = f"build_net {phase} {stages}"
                    try:
                        net = build_net(ns, phase, stages)
                        net.summary()
                        for d in net.diagnostics:
                            d.render()
                        if not stages:
                            out.stages.append("built " + ("TRAIN" if phase == PHASES["TRAIN"] else "TEST"))
                    except NetcError as e:
                        _render(e, out)
                        net_ok = False
                        out.error_stage = out.error_stage or stage
            except NetcError as e:
                _render(e, out)
                out.error_stage = out.error_stage or stage
        stage = "fmt"
        try:
            formatted = format_document(doc)
        except NetcError as e:  # a formatter may refuse a file, as long as it says where and why
            _render(e, out)
            out.status, out.error_stage = "error", "fmt"
            return out
        t0 = time.process_time()
        try:
            _check_fmt(doc, formatted, messages, name)
        except PropertyViolation as v:
            out.status, out.error_stage, out.signature, out.detail = "property", "fmt", v.prop, v.detail
            return out
        finally:
            out.check_cpu = time.process_time() - t0
        if not (net_ok or bound):
            out.status = "error"
        return out
    except Hang:
        raise
    except BaseException as e:  # noqa: BLE001 - anything but NetcError is the finding
        out.status, out.error_stage = "crash", stage
        out.signature = _signature(e)
        out.detail = "".join(traceback.format_exception(e))[-6000:]
        return out


def _on_alarm(signum, frame):
    raise Hang()


def timed_case(data: bytes, name: str, timeout: float) -> tuple[Outcome, float, float]:
    """run_case with a wall-clock alarm (a case still running after `timeout` s is a hang).

    Returns the outcome, the front end's CPU seconds (without the fmt round trip) and the whole case's
    wall-clock seconds.  "Slow" is judged on CPU time: it is what an algorithm costs, where wall-clock time
    also counts whatever else the machine was running."""
    if hasattr(signal, "setitimer"):
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    c0 = time.process_time()
    t0 = time.perf_counter()
    try:
        out = run_case(data, name)
    except Hang:
        out = Outcome(status="crash", error_stage="?", signature=f"hang (> {timeout:g} s)",
                      detail=f"still running after {timeout:g} s")
    finally:
        if hasattr(signal, "setitimer"):
            signal.setitimer(signal.ITIMER_REAL, 0)
    total = time.perf_counter() - t0
    return out, time.process_time() - c0 - out.check_cpu, total


# ------------------------------------------------------------------------------------------------------
# A run: chunks of cases in worker processes, tallies merged in the parent

@dataclass
class Failure:
    index: int
    generator: str
    kind: str           # crash | property | slow
    signature: str
    detail: str
    data: bytes
    seconds: float


@dataclass
class Tally:
    cases: int = 0
    counts: dict = field(default_factory=lambda: {"ok": 0, "error": 0, "crash": 0, "property": 0})
    stages: dict = field(default_factory=lambda: {s: 0 for s in STAGES})
    # generator -> [cases, ok, error, failed, total seconds, most front-end seconds]
    per_gen: dict = field(default_factory=dict)
    slow: int = 0
    unlocated: int = 0
    slowest: tuple = (0.0, 0.0, -1, "", 0)          # front-end seconds, whole case, index, generator, bytes
    slowest_total: tuple = (0.0, -1, "")            # whole case seconds (with the fmt checks), index, generator
    failures: list = field(default_factory=list)    # first few Failure per signature

    def add(self, other: "Tally", keep: int) -> None:
        self.cases += other.cases
        for k, v in other.counts.items():
            self.counts[k] += v
        for k, v in other.stages.items():
            self.stages[k] += v
        for g, row in other.per_gen.items():
            mine = self.per_gen.setdefault(g, [0, 0, 0, 0, 0.0, 0.0])
            for i in range(5):
                mine[i] += row[i]
            mine[5] = max(mine[5], row[5])
        self.slow += other.slow
        self.unlocated += other.unlocated
        self.slowest = max(self.slowest, other.slowest)
        self.slowest_total = max(self.slowest_total, other.slowest_total)
        for f in other.failures:
            if sum(1 for g in self.failures if g.signature == f.signature) < keep:
                self.failures.append(f)


@dataclass
class Config:
    seed: int
    corpus: str | None
    slow: float
    timeout: float
    max_depth: int = MAX_DEPTH
    keep: int = 3


_CONFIG: Config | None = None


def _init_worker(cfg: Config) -> None:
    global _CONFIG, MAX_DEPTH
    _CONFIG = cfg
    MAX_DEPTH = cfg.max_depth
    _load_seeds(Path(cfg.corpus) if cfg.corpus else None)
    sys.setrecursionlimit(1000)  # what a user of netc gets; a deeper stack only hides a recursion


def run_chunk(bounds: tuple[int, int]) -> Tally:
    cfg = _CONFIG
    t = Tally()
    for i in range(*bounds):
        gen, data = make_case(cfg.seed, i)
        out, secs, total = timed_case(data, f"case-{i}", cfg.timeout)
        t.cases += 1
        row = t.per_gen.setdefault(gen, [0, 0, 0, 0, 0.0, 0.0])
        row[0] += 1
        row[4] += total
        row[5] = max(row[5], secs)
        t.counts[out.status] += 1
        t.unlocated += out.unlocated
        for s in out.stages:
            if s in t.stages:
                t.stages[s] += 1
        if out.status in ("crash", "property"):
            row[3] += 1
            fail = Failure(i, gen, out.status, out.signature, out.detail, data, secs)
            if sum(1 for f in t.failures if f.signature == fail.signature) < cfg.keep:
                t.failures.append(fail)
        else:
            row[1 if out.status == "ok" else 2] += 1
        if secs > cfg.slow:
            t.slow += 1
            if out.status not in ("crash", "property"):
                row[3] += 1
            sig = f"slow (> {cfg.slow:g} s): {gen}"
            if sum(1 for f in t.failures if f.signature == sig) < cfg.keep:
                t.failures.append(Failure(i, gen, "slow", sig, f"{secs:.3f} s CPU, {len(data)} bytes", data, secs))
        t.slowest = max(t.slowest, (secs, total, i, gen, len(data)))
        t.slowest_total = max(t.slowest_total, (total, i, gen))
    return t


def run(cases: int, cfg: Config, jobs: int, progress) -> Tally:
    chunk = 100
    bounds = [(a, min(cases, a + chunk)) for a in range(0, cases, chunk)]
    total = Tally()
    if jobs <= 1:
        _init_worker(cfg)
        for b in bounds:
            total.add(run_chunk(b), cfg.keep)
            progress(total)
        return total
    ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker,
                                                initargs=(cfg,)) as pool:
        for t in pool.map(run_chunk, bounds):
            total.add(t, cfg.keep)
            progress(total)
    return total


# ------------------------------------------------------------------------------------------------------
# Repros

def shrink(data: bytes, still_fails, budget_s: float = 20.0) -> bytes:
    """Delta debugging: drop runs of tokens, then of bytes, halving the run, while the same failure remains."""
    deadline = time.monotonic() + budget_s

    def drop_runs(parts: list, join) -> list:
        n = max(1, len(parts) // 2)
        while n >= 1 and time.monotonic() < deadline:
            i = 0
            changed = False
            while i < len(parts) and time.monotonic() < deadline:
                cand = parts[:i] + parts[i + n:]
                if still_fails(join(cand)):
                    parts = cand
                    changed = True
                else:
                    i += 1 if len(parts) < 2000 else n  # small inputs: try every run, not just aligned ones
            if not changed:
                n //= 2
        return parts

    try:
        tokens = _tokens(data.decode("utf-8"))
    except UnicodeDecodeError:
        tokens = None
    if tokens is not None:
        data = "".join(drop_runs(tokens, lambda ts: "".join(ts).encode("utf-8"))).encode("utf-8")
    return bytes(drop_runs(list(data), bytes))


def write_repros(tally: Tally, out_dir: Path, cfg: Config, shrink_s: float) -> list[tuple[Failure, Path, bytes]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    by_sig: dict[str, list[Failure]] = {}
    for f in tally.failures:
        by_sig.setdefault(f.signature, []).append(f)
    for n, (sig, fails) in enumerate(sorted(by_sig.items()), 1):
        first = min(fails, key=lambda f: len(f.data))
        stem = f"{first.kind}-{n}"
        (out_dir / f"{stem}.prototxt").write_bytes(first.data)
        small = first.data
        if first.kind != "slow" and shrink_s > 0:
            def still_fails(d: bytes, sig=sig) -> bool:
                o, _, _ = timed_case(d, "<shrink>", cfg.timeout)
                return o.signature == sig
            small = shrink(first.data, still_fails, shrink_s)
            (out_dir / f"{stem}.min.prototxt").write_bytes(small)
        note = [f"{sig}", f"generator {first.generator}, case {first.index} (seed {cfg.seed}), "
                f"{len(first.data)} bytes, {first.seconds:.3f} s",
                f"rerun: python tools/fuzz_parse.py --seed {cfg.seed} --case {first.index}",
                f"other cases: {', '.join(str(f.index) for f in fails if f is not first) or 'none kept'}",
                f"shrunk repro ({len(small)} bytes): {small[:300]!r}", "", first.detail]
        (out_dir / f"{stem}.txt").write_text("\n".join(note) + "\n", encoding="utf-8")
        written.append((first, out_dir / f"{stem}.prototxt", small))
    return written


# ------------------------------------------------------------------------------------------------------
# The command line

def summary(tally: Tally, cfg: Config, jobs: int, seconds: float, distinct: dict[str, int]) -> str:
    c = tally.counts
    s = tally.stages
    lines = [
        f"netc fuzz_parse: {tally.cases} cases, seed {cfg.seed}, {jobs} job{'s' * (jobs != 1)}, "
        f"{seconds:.1f} s ({tally.cases / max(seconds, 1e-9):.1f} cases/s)",
        f"  ok {c['ok']}, NetcError {c['error']}, uncaught exceptions {c['crash']} ({distinct['crash']} distinct), "
        f"fmt property violations {c['property']} ({distinct['property']} distinct), "
        f"front end slower than {cfg.slow:g} s CPU {tally.slow}",
        f"  slowest case: {tally.slowest[0]:.3f} s CPU in the front end, {tally.slowest[1]:.3f} s wall-clock with "
        f"the fmt round trip (case {tally.slowest[2]}, {tally.slowest[3]}, {tally.slowest[4]} bytes); slowest "
        f"wall-clock: {tally.slowest_total[0]:.3f} s (case {tally.slowest_total[1]})",
        f"  reached: parsed {s['parsed']}, bound as net {s['bound net']}, as solver {s['bound solver']}, "
        f"loaded net {s['loaded net']}, built TRAIN {s['built TRAIN']}, built TEST {s['built TEST']}",
        f"  NetcErrors without a location: {tally.unlocated}",
        "  generator     cases       ok  NetcError  failed  mean ms (wall)  max front-end ms (CPU)",
    ]
    for g in GENERATORS:
        if g in tally.per_gen:
            n, ok, err, fail, tot, mx = tally.per_gen[g]
            lines.append(f"  {g:<10} {n:>8} {ok:>8} {err:>10} {fail:>7} {1e3 * tot / max(n, 1):>15.2f} "
                         f"{1e3 * mx:>23.1f}")
    return "\n".join(lines)


def _replay(path: Path, timeout: float) -> int:
    data = path.read_bytes()
    out, secs, _ = timed_case(data, str(path), timeout)
    print(f"{path}: {out.status}, front end {secs:.3f} s CPU; stages {', '.join(out.stages) or 'none'}"
          + (f"; stopped at {out.error_stage}" if out.error_stage else ""))
    if out.status in ("crash", "property"):
        print(out.signature)
        print(out.detail)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="fuzz_parse.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, help="number of cases (default 100000; 2000 with --quick)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS if DEFAULT_CORPUS.is_dir() else None,
                    help="more files to mutate besides nets/ (default ../shared/corpus if present)")
    ap.add_argument("--out", type=Path, default=Path("fuzz-out"), help="where repros go (default ./fuzz-out)")
    ap.add_argument("--slow", type=float, default=1.0,
                    help="a case whose front end takes more CPU seconds than this fails (1)")
    ap.add_argument("--timeout", type=float, default=30.0, help="a case still running after this is a hang (30)")
    ap.add_argument("--shrink", type=float, default=20.0, help="seconds to shrink each distinct failure (20; 0: off)")
    ap.add_argument("--quick", action="store_true", help="a short run: 2000 cases, nesting up to 10k levels")
    ap.add_argument("--case", type=int, help="run only this case index and show its outcome")
    ap.add_argument("--write-case", type=Path, help="with --case: also save the case's bytes here")
    ap.add_argument("--replay", type=Path, help="run a saved file through the checks")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.replay:
        return _replay(args.replay, args.timeout)
    cases = args.cases if args.cases is not None else (2000 if args.quick else 100_000)
    if cases < 0 or args.jobs < 1:
        print("fuzz_parse.py: --cases must be >= 0 and --jobs >= 1", file=sys.stderr)
        return 2
    cfg = Config(args.seed, str(args.corpus) if args.corpus else None, args.slow, args.timeout,
                 10_000 if args.quick else MAX_DEPTH)
    if args.case is not None:
        _init_worker(cfg)
        gen, data = make_case(args.seed, args.case)
        if args.write_case:
            args.write_case.write_bytes(data)
        out, secs, _ = timed_case(data, f"case-{args.case}", args.timeout)
        print(f"case {args.case} ({gen}, {len(data)} bytes): {out.status}, front end {secs:.3f} s CPU; "
              f"stages {', '.join(out.stages) or 'none'}"
              + (f"; stopped at {out.error_stage}" if out.error_stage else ""))
        print(f"  {data[:200]!r}{' ...' if len(data) > 200 else ''}")
        if out.status in ("crash", "property"):
            print(out.signature)
            print(out.detail)
        return 1 if out.status in ("crash", "property") or secs > args.slow else 0

    seeds = len(seed_files(Path(cfg.corpus) if cfg.corpus else None))
    print(f"fuzzing {cases} cases, seed {cfg.seed}, {args.jobs} jobs, {seeds} files to mutate", file=sys.stderr)
    t0 = time.perf_counter()
    last = [t0]

    def progress(t: Tally) -> None:
        now = time.perf_counter()
        if now - last[0] >= 10 or t.cases == cases:
            last[0] = now
            bad = t.counts["crash"] + t.counts["property"] + t.slow
            print(f"  {t.cases}/{cases} cases, {t.cases / (now - t0):.0f}/s, {bad} failing",
                  file=sys.stderr, flush=True)

    tally = run(cases, cfg, args.jobs, progress)
    seconds = time.perf_counter() - t0
    sigs = {f.signature: f.kind for f in tally.failures}
    distinct = {k: sum(1 for v in sigs.values() if v == k) for k in ("crash", "property", "slow")}
    print(summary(tally, cfg, args.jobs, seconds, distinct))
    if tally.failures:
        written = write_repros(tally, args.out, cfg, args.shrink)
        print(f"  distinct failures ({len(written)}), repros in {args.out}/:")
        for f, path, small in written:
            print(f"    {path.name}: {f.signature} (case {f.index}, {f.generator}); shrunk: {small[:120]!r}")
    failed = tally.counts["crash"] or tally.counts["property"] or tally.slow
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
