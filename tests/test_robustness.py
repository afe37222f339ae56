"""The front end never fails with anything but NetcError, and `netc fmt` keeps what it formats.

Random text and bytes, prototxt-shaped token sequences (Hypothesis), seeded mutations of every corpus file
and of nets/ (the mutations of tools/fuzz_parse.py), 100,000-level nesting and a 2 MB line.  Every case runs
the whole front end through `fuzz_parse.run_case`: parse, bind as net and as solver, load_net_param,
build_net for each phase, and the fmt round trip (fmt(x) parses, fmt(fmt(x)) == fmt(x), parse(fmt(x)) ==
parse(x), bind(fmt(x)) == bind(x)).

The bugs the fuzzer found are pinned by the regression tests at the end, each with its smallest repro.
Hypothesis runs derandomized here, so CI is deterministic; tools/fuzz_parse.py is the random explorer.
"""
from __future__ import annotations

import importlib.util
import random
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import netc
from netc import caffe_pb2
from netc.errors import NetcError, ParseError, Source
from netc.fmt import format_document
from netc.syntax import parse

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"


def _load_tool():
    spec = importlib.util.spec_from_file_location("fuzz_parse", ROOT / "tools" / "fuzz_parse.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


fuzz = _load_tool()

def check(data: bytes | str) -> None:
    """The whole front end on one input: a result or a NetcError, and the fmt round trip holds."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    out = fuzz.run_case(data, "<case>")
    if out.status in ("ok", "error"):
        return
    pytest.fail(f"{out.signature} (stage {out.error_stage}) on {data[:300]!r}\n{out.detail}", pytrace=False)


# --------------------------------------------------------------------------------------------------------
# Hypothesis

_names = st.one_of(st.sampled_from(fuzz.FIELD_NAMES), st.sampled_from(fuzz.WORDS),
                   st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True))
_values = st.one_of(st.sampled_from(fuzz.NUMBERS), st.sampled_from(fuzz.STRINGS), st.sampled_from(fuzz.WORDS),
                    st.sampled_from(fuzz.ENUM_NAMES), st.sampled_from([f'"{t}"' for t in fuzz.LAYER_TYPES]))
_token = st.one_of(_names, _values, st.sampled_from(fuzz.PUNCT), st.sampled_from(fuzz.COMMENTS))
_spaces = st.sampled_from(fuzz.SPACES)

token_soup = st.lists(st.tuples(_token, _spaces), max_size=60).map(lambda ts: "".join(a + b for a, b in ts))


def _message(children):
    opening = st.sampled_from(["{", ": {", "<", "{"])
    closing = {"{": "}", ": {": "}", "<": ">"}
    return st.builds(lambda name, o, body, sep: f"{name} {o} {sep.join(body)} {closing[o]}",
                     _names, opening, st.lists(children, max_size=5), st.sampled_from([" ", "\n", ", ", "; "]))


_scalar_field = st.builds(lambda n, v: f"{n}: {v}", _names, _values)
_list_field = st.builds(lambda n, c, vs: f"{n}{c} [{', '.join(vs)}]", _names, st.sampled_from([":", ""]),
                        st.lists(_values, max_size=4))
# Well-formed nesting with the schema's names: reaches bind, the upgrades and the graph checks.
prototxt_shaped = st.lists(st.recursive(_scalar_field | _list_field, _message, max_leaves=20),
                           max_size=8).map("\n".join)


def _field_values(fd) -> st.SearchStrategy[str]:
    """Mostly values of the field's own type, now and then any value."""
    if fd.enum_type is not None:
        own = st.sampled_from([v.name for v in fd.enum_type.values] + [str(v.number) for v in fd.enum_type.values])
    elif fd.type == fd.TYPE_BOOL:
        own = st.sampled_from(["true", "false"])
    elif fd.type in (fd.TYPE_STRING, fd.TYPE_BYTES):
        names = fuzz.LAYER_TYPES if fd.name == "type" else ["data", "label", "conv1", "pool1", "loss", "x"]
        own = st.sampled_from([f'"{n}"' for n in names])
    elif fd.type in (fd.TYPE_FLOAT, fd.TYPE_DOUBLE):
        own = st.sampled_from(["0", "0.5", "1", "1e-3", "-1", "2.5"])
    else:
        own = st.sampled_from(["0", "1", "2", "3", "7", "13", "-1"])
    return st.integers(0, 19).flatmap(lambda k: _values if k == 0 else own)


_SCHEMA_CACHE: dict = {}


def schema_shaped(desc, depth: int = 0) -> st.SearchStrategy[str]:
    """The fields of a caffe.proto message with the right names and (mostly) the right kinds of values:
    reaches bind, the upgrades, the graph checks and the phase filter."""
    key = (desc.full_name, depth)
    if key not in _SCHEMA_CACHE:
        options = []
        for fd in desc.fields:
            if fd.message_type is None:
                options.append(_field_values(fd).map(lambda v, n=fd.name: f"{n}: {v}"))
            elif depth < 3:
                inner = st.deferred(lambda fd=fd: schema_shaped(fd.message_type, depth + 1))
                options.append(inner.map(lambda body, n=fd.name: f"{n} {{ {body} }}"))
        # Each field at most once: a second value of a non-repeated field is an error, and errors stop the
        # pipeline early.
        picks = st.lists(st.sampled_from(range(len(options))), unique=True, max_size=8 if depth == 0 else 4) \
            if options else st.just([])
        _SCHEMA_CACHE[key] = picks.flatmap(lambda ks: st.tuples(*(options[k] for k in ks))).map("\n".join)
    return _SCHEMA_CACHE[key]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(max_size=400))
def test_random_text(text):
    check(text)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.binary(max_size=400))
def test_random_bytes(data):
    check(data)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(token_soup)
def test_token_soup(text):
    check(text)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(prototxt_shaped)
def test_prototxt_shaped(text):
    check(text)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(schema_shaped(caffe_pb2.NetParameter.DESCRIPTOR), schema_shaped(caffe_pb2.SolverParameter.DESCRIPTOR)))
def test_schema_shaped(text):
    check(text)


# --------------------------------------------------------------------------------------------------------
# Mutations of real files

SEED_FILES = fuzz.seed_files(CORPUS if CORPUS.is_dir() else None)
MUTATIONS_PER_FILE = 20


def _file_id(p: Path) -> str:
    for root in (CORPUS, ROOT):
        if p.is_relative_to(root):
            return str(p.relative_to(root))
    return p.name


@pytest.mark.parametrize("path", SEED_FILES, ids=[_file_id(p) for p in SEED_FILES])
def test_mutations(path):
    text = path.read_text(encoding="utf-8")
    check(text)
    for k in range(MUTATIONS_PER_FILE):
        rng = random.Random(f"{_file_id(path)}/{k}")
        check(fuzz.mutate(text, rng)[0])


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no corpus at {CORPUS}")
def test_corpus_is_mutated():
    assert any(p.is_relative_to(CORPUS) for p in SEED_FILES)


@pytest.mark.parametrize("name", sorted(fuzz.MUTATIONS))
def test_each_mutation_changes_a_net(name):
    text = (ROOT / "nets" / "lenet" / "train_val.prototxt").read_text()
    changed = sum(fuzz.MUTATIONS[name](text, random.Random(k)) != text for k in range(10))
    assert changed >= 5, f"{name} left the file unchanged {10 - changed} times in 10"


# --------------------------------------------------------------------------------------------------------
# Sizes

DEPTH = 100_000


@pytest.fixture(scope="module", autouse=True)
def _warm():
    netc.parse_prototxt("name: 'warm'")  # the first parse builds the LALR tables


@pytest.mark.parametrize("opener", ["a {", "a <", "a: {", "[", "a: [", "a: [{ ", "{", "layer {\n"])
def test_deep_nesting_is_a_located_error(opener):
    text = opener * DEPTH
    start = time.perf_counter()
    with pytest.raises(ParseError) as info:
        netc.parse_prototxt(text)
    seconds = time.perf_counter() - start
    errors = info.value.errors
    assert errors and errors[0].span is not None, info.value.render()
    assert info.value.render().startswith("<text>:")
    assert seconds < 2, f"{seconds:.2f} s"


@pytest.mark.parametrize("opener, closer", [("a {", "}"), ("a <", ">"), ("layer {", "}"), ("a: [{ ", "}]")])
def test_deep_nesting_closed_is_a_located_error(opener, closer):
    text = opener * DEPTH + closer * DEPTH
    start = time.perf_counter()
    with pytest.raises(NetcError) as info:
        netc.parse_prototxt(text)
    seconds = time.perf_counter() - start
    assert info.value.errors[0].span is not None, info.value.render()
    assert seconds < 2, f"{seconds:.2f} s"


def test_deep_nesting_from_a_file(tmp_path):
    path = tmp_path / "deep.prototxt"
    path.write_text("layer {" * DEPTH)
    start = time.perf_counter()
    with pytest.raises(ParseError) as info:
        netc.load_net(path)
    assert info.value.render().startswith(f"{path}:1:")
    assert time.perf_counter() - start < 2


def _one_line_net(size: int) -> str:
    parts = ['layer { name: "data" type: "Input" top: "b0" input_param { shape { dim: 2 dim: 3 dim: 13 dim: 17 } } }']
    total, i = len(parts[0]), 0
    while total < size:
        parts.append(f'layer {{ name: "relu{i}" type: "ReLU" bottom: "b{i}" top: "b{i + 1}" }}')
        total += len(parts[-1]) + 1
        i += 1
    return " ".join(parts)


def test_two_megabyte_line_parses():
    text = _one_line_net(2_000_000)
    assert "\n" not in text and len(text) >= 2_000_000
    start = time.perf_counter()
    net = netc.parse_prototxt(text)
    seconds = time.perf_counter() - start
    assert len(net.layer) > 25_000
    assert seconds < 10, f"{seconds:.2f} s for 2 MB"


def test_two_megabyte_string_parses():
    text = 'name: "' + "x" * 2_000_000 + '"'
    start = time.perf_counter()
    net = netc.parse_prototxt(text)
    assert len(net.name) == 2_000_000
    assert time.perf_counter() - start < 10


# --------------------------------------------------------------------------------------------------------
# Known bugs: each fails today; the marker is strict, so a fix shows up as XPASS.

def _formats(text: str) -> None:
    """parse and fmt give a NetcError or a text that formats to itself."""
    try:
        out = format_document(parse(Source("<x>", text)))
    except NetcError:
        return
    assert format_document(parse(Source("<fmt>", out))) == out


@pytest.mark.parametrize("text", ["a: [{}, 1]", "a: [1, {}]", 'layer { bottom: ["x", {}] }', 'a[{},""]'])
def test_fmt_list_mixing_messages_and_scalars(text):
    _formats(text)
    check(text)  # the whole round trip: parse(fmt(x)) == parse(x) too


@pytest.mark.parametrize("text", ["a: 'x\\q'", "a: 'x\\400'", 'a: "a" "\\q"'])
def test_fmt_bad_escape_outside_a_double_quoted_literal(text):
    _formats(text)


def test_fmt_deep_nesting():
    text = "a {" * DEPTH + "}" * DEPTH
    start = time.perf_counter()
    _formats(text)
    assert time.perf_counter() - start < 2


def test_string_literal_across_a_line_break():
    _formats('name: "x\\\n#y"\n')


@pytest.mark.parametrize("text, kind", [("solver_mode: 4294967296", "solver"),
                                        ("state { phase: 4294967297 }", "net")])
def test_enum_number_beyond_int32(text, kind):
    with pytest.raises(NetcError):
        netc.parse_prototxt(text, kind)
