"""Property-based fuzzing of the loaders and the lag-spec parser (in-process).

Mutated safetensors / .pt / .npz files go through ``rnngrad.load`` and
``rnngrad.spectrum``: each call must either return a result or raise
``rnngrad.errors.RnngradError`` -- any other exception (``KeyError``,
``struct.error``, ``MemoryError``, ``RuntimeError`` from torch, a pyo3
``PanicException``, ...) is a bug -- and must leave the file unchanged.
The files users name by option get the same treatment: mutated ``.npy`` probes
(``--inputs``), mutated ``--map`` TOML files and arbitrary baseline JSON.

``RNNGRAD_FUZZ_EXAMPLES`` sets ``max_examples`` per test (default 500; the
three option-file tests take two fifths of it: 4,100 cases in all).  Runs are
derandomized and use no example database, so CI sees the same inputs every time.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import pathlib
import shutil
import struct
import sys
import tempfile
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import corpus  # noqa: E402
from inprocess import time_limit  # noqa: E402

import rnngrad  # noqa: E402
from rnngrad.errors import RnngradError  # noqa: E402

pytestmark = pytest.mark.slow  # fuzzing: the full suite runs it, the fast loop does not

try:
    from rnngrad.probes.lags import parse_lags
except ImportError as _e:  # reported by the `parse` fixture, not at collection
    parse_lags = None
    _LAGS_IMPORT_ERROR = _e

EXAMPLES = int(os.environ.get("RNNGRAD_FUZZ_EXAMPLES", "500"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)

#: The option files (probes, maps, baselines) are small inputs: fewer examples reach as far.
FUZZ_OPTION_FILES = settings(FUZZ, max_examples=max(1, EXAMPLES * 2 // 5))

#: Wall-clock limit for one load+spectrum of a tiny file / one parse_lags call.
FILE_TIME_LIMIT_S = 20
LAGS_TIME_LIMIT_S = 5


# --------------------------------------------------------------------------
# Infrastructure
# --------------------------------------------------------------------------


_WORKDIR = pathlib.Path(tempfile.mkdtemp(prefix="rnngrad-fuzz-"))
_COUNTER = itertools.count()


@pytest.fixture(scope="module", autouse=True)
def _cleanup_workdir():
    yield
    shutil.rmtree(_WORKDIR, ignore_errors=True)


def _fresh_path(suffix: str) -> pathlib.Path:
    # A new name every time: no cache keyed on (path, mtime, size) can mask bugs.
    return _WORKDIR / f"f{next(_COUNTER):06d}{suffix}"


def check_file(data: bytes, suffix: str) -> None:
    """load + spectrum must return or raise RnngradError; file untouched."""
    path = _fresh_path(suffix)
    path.write_bytes(data)
    try:
        with time_limit(FILE_TIME_LIMIT_S):
            try:
                bundle = rnngrad.load(path)
                assert bundle is not None, "load() returned None"
                report = rnngrad.spectrum(path)
                assert report is not None, "spectrum() returned None"
                event("accepted")
            except RnngradError as e:
                event(f"refused: {type(e).__name__}")
                assert str(e).strip(), "RnngradError with an empty message"
                assert hasattr(e, "hint"), "RnngradError without .hint"
        assert path.read_bytes() == data, "the input file was modified"
    finally:
        path.unlink(missing_ok=True)


# --------------------------------------------------------------------------
# Valid base files and their interesting regions
# --------------------------------------------------------------------------


def _zip_regions(data: bytes) -> list:
    """(start, end) of every local header, member payload, and the central dir."""
    regions = []
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        infos = z.infolist()
        for info in infos:
            h = info.header_offset
            fn_len, extra_len = struct.unpack("<HH", data[h + 26:h + 30])
            start = h + 30 + fn_len + extra_len
            regions.append((h, start))
            regions.append((start, start + info.compress_size))
    end_of_members = max(b for _, b in regions) if regions else 0
    regions.append((end_of_members, len(data)))  # central directory + EOCD
    return [(a, b) for a, b in regions if b > a]


def _st_regions(data: bytes) -> list:
    (n,) = struct.unpack("<Q", data[:8])
    return [(0, 8), (8, 8 + n), (8 + n, len(data))]


def _npy_bytes() -> bytes:
    buffer = io.BytesIO()
    values = np.random.default_rng(0).standard_normal((2, 20, corpus.INPUT_SIZE))
    np.save(buffer, values.astype(np.float32))
    return buffer.getvalue()


MAP_TEXT = (b'[[recurrence]]\nname = "net"\nrecurrent = "rnn.weight_hh_l0"\n'
            b'input = "rnn.weight_ih_l0"\nbias = ["rnn.bias_ih_l0", "rnn.bias_hh_l0"]\n'
            b'nonlinearity = "tanh"\nleak = 0.5\norientation = "rows"\n')

BASES = {
    "npy": (_npy_bytes(), ".npy"),
    "map": (MAP_TEXT, ".toml"),
    "safetensors": (corpus.valid_safetensors_bytes(), ".safetensors"),
    "pt": (corpus.valid_pt_bytes(), ".pt"),
    "pt_legacy": (corpus.valid_pt_bytes(legacy=True), ".pt"),
    "npz": (corpus.valid_npz_bytes(), ".npz"),
    "npz_compressed": (corpus.valid_npz_bytes(compressed=True), ".npz"),
}
REGIONS = {
    "npy": [(0, 10), (10, 128), (128, len(BASES["npy"][0]))],
    "map": [(0, len(MAP_TEXT))],
    "safetensors": _st_regions(BASES["safetensors"][0]),
    "pt": _zip_regions(BASES["pt"][0]),
    "pt_legacy": [(0, len(BASES["pt_legacy"][0]))],
    "npz": _zip_regions(BASES["npz"][0]),
    "npz_compressed": _zip_regions(BASES["npz_compressed"][0]),
}
ALL_BASE_BYTES = [b for b, _ in BASES.values()]


# --------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------

INTERESTING_BYTES = [0x00, 0x01, 0x7F, 0x80, 0xFF, ord('"'), ord("{"), ord("}"),
                     ord("["), ord(","), ord(":"), ord("-"), ord("9"), ord("0"), ord("e")]


@st.composite
def positions(draw, length: int, regions: list):
    if length == 0:
        return 0
    if regions and draw(st.booleans()):
        a, b = draw(st.sampled_from(regions))
        # near the edges of a region or anywhere inside it
        pos = draw(st.one_of(st.integers(a, max(a, b - 1)),
                             st.sampled_from([a, max(a, b - 1), max(a, b - 4)])))
    else:
        pos = draw(st.integers(0, length - 1))
    return min(pos, length - 1)


@st.composite
def byte_mutations(draw, key: str):
    data = bytearray(BASES[key][0])
    regions = REGIONS[key]
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete",
                                   "dup", "splice"]))
        pos = draw(positions(len(data), regions))
        if op == "flip":
            if data:
                data[pos] ^= draw(st.integers(1, 255))
        elif op == "set":
            if data:
                data[pos] = draw(st.one_of(st.sampled_from(INTERESTING_BYTES),
                                           st.integers(0, 255)))
        elif op == "truncate":
            data = data[:pos]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 64))]
        elif op == "dup":
            if data:
                src = draw(st.integers(0, len(data) - 1))
                chunk = data[src:src + draw(st.integers(1, 128))]
                if draw(st.booleans()):
                    data[pos:pos] = chunk
                else:
                    data[pos:pos + len(chunk)] = chunk
        elif op == "splice":
            other = draw(st.sampled_from(ALL_BASE_BYTES))
            j = draw(st.integers(0, len(other)))
            data = data[:pos] + bytearray(other[j:])
    return bytes(data)


json_scalars = st.one_of(
    st.integers(-3, 300),
    st.integers(-(2 ** 70), 2 ** 70),
    st.sampled_from([0, 1, -1, 2 ** 31, 2 ** 32, 2 ** 53 + 1, 2 ** 63 - 1, 2 ** 63,
                     2 ** 64 - 1, 2 ** 64, 10 ** 30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["F32", "F64", "F16", "BF16", "I64", "BOOL", "U8", "F8_E4M3", "F4",
                     "f32", "", "F32 "]),
    st.text(max_size=8),
    st.none(),
    st.booleans(),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)
tensor_names = st.one_of(
    st.sampled_from([corpus.PREFIX + s for s in (
        "weight_hh_l0", "weight_ih_l0", "bias_hh_l0", "bias_ih_l0", "weight_hh_l1",
        "weight_ih_l1", "weight_hh_l0_reverse", "weight_hh_l00", "weight_hh_l-1",
        "weight_hh_l99999999999999999999")] + ["weight_hh_l0", "", "__metadata__"]),
    st.text(max_size=12),
)


@st.composite
def safetensors_header_mutations(draw):
    raw = BASES["safetensors"][0]
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    keys = sorted(k for k in header if k != "__metadata__")
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["value", "value", "value", "list", "drop", "add",
                                   "rename", "metadata", "entry"]))
        key = draw(st.sampled_from(keys))
        if key not in header:
            continue
        entry = header[key]
        if op == "value" and isinstance(entry, dict):
            field = draw(st.sampled_from(["shape", "data_offsets", "dtype"]))
            cur = entry.get(field)
            if isinstance(cur, list) and cur:
                i = draw(st.integers(0, len(cur) - 1))
                cur[i] = draw(json_scalars)
            else:
                entry[field] = draw(json_scalars)
        elif op == "list" and isinstance(entry, dict):
            field = draw(st.sampled_from(["shape", "data_offsets"]))
            entry[field] = draw(st.lists(st.one_of(st.integers(-2, 2 ** 40),
                                                   st.integers(0, 1024)), max_size=5))
        elif op == "drop":
            del header[key]
        elif op == "add":
            header[draw(tensor_names)] = draw(st.one_of(
                json_values,
                st.fixed_dictionaries({
                    "dtype": st.sampled_from(["F32", "F64", "I64", "BOOL", "F16"]),
                    "shape": st.lists(st.integers(0, 2 ** 20), max_size=3),
                    "data_offsets": st.lists(st.integers(0, 2 ** 33), min_size=2, max_size=2),
                })))
        elif op == "rename":
            header[draw(tensor_names)] = header.pop(key)
        elif op == "metadata":
            header["__metadata__"] = draw(json_values)
        elif op == "entry":
            header[key] = draw(json_values)
    hb = json.dumps(header, allow_nan=True).encode()
    hb += b" " * (-len(hb) % 8)
    mode = draw(st.sampled_from(["exact", "exact", "original", "random", "near"]))
    if mode == "exact":
        length = len(hb)
    elif mode == "original":
        length = n
    elif mode == "near":
        length = max(0, len(hb) + draw(st.integers(-16, 16)))
    else:
        length = draw(st.one_of(st.integers(0, 2 ** 64 - 1), st.integers(0, 4096),
                                st.sampled_from([0, 1, 7, 8, 2 ** 31, 2 ** 32, 2 ** 63,
                                                 2 ** 64 - 1])))
    tail = draw(st.sampled_from(["keep", "keep", "cut", "extend"]))
    if tail == "cut":
        data = data[:draw(st.integers(0, len(data)))]
    elif tail == "extend":
        data = data + draw(st.binary(min_size=1, max_size=64))
    return struct.pack("<Q", length) + hb + data


# --------------------------------------------------------------------------
# File fuzzing
# --------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["safetensors", "pt", "npz", "npz_compressed"])
def test_valid_bases_are_accepted(key):
    """Control: unmutated files load and analyse without error."""
    data, suffix = BASES[key]
    path = _fresh_path(suffix)
    path.write_bytes(data)
    try:
        assert rnngrad.load(path) is not None
        assert rnngrad.spectrum(path) is not None
        assert path.read_bytes() == data
    finally:
        path.unlink(missing_ok=True)


@FUZZ
@given(data=byte_mutations("safetensors"))
def test_fuzz_safetensors_bytes(data):
    check_file(data, ".safetensors")


@FUZZ
@given(data=safetensors_header_mutations())
def test_fuzz_safetensors_header(data):
    check_file(data, ".safetensors")


@FUZZ
@given(key=st.sampled_from(["pt", "pt", "pt_legacy"]), seed=st.data())
def test_fuzz_pt_bytes(key, seed):
    check_file(seed.draw(byte_mutations(key)), ".pt")


@FUZZ
@given(key=st.sampled_from(["npz", "npz_compressed"]), seed=st.data())
def test_fuzz_npz_bytes(key, seed):
    check_file(seed.draw(byte_mutations(key)), ".npz")


# --------------------------------------------------------------------------
# Files named by options: probes, maps, baselines
# --------------------------------------------------------------------------


def check_option_file(data: bytes, suffix: str, use) -> None:
    """``use(path)`` must return or raise RnngradError; the file stays unchanged."""
    path = _fresh_path(suffix)
    path.write_bytes(data)
    try:
        with time_limit(FILE_TIME_LIMIT_S):
            try:
                use(path)
                event("accepted")
            except RnngradError as e:
                event(f"refused: {type(e).__name__}")
                assert str(e).strip(), "RnngradError with an empty message"
        assert path.read_bytes() == data, "the input file was modified"
    finally:
        path.unlink(missing_ok=True)


def _probe(path: pathlib.Path) -> None:
    from rnngrad.probes.sequences import make_probe, plan_probe
    from rnngrad.probes.spec import ProbeSpec

    spec = ProbeSpec(inputs=str(path))
    shape = plan_probe(spec, corpus.INPUT_SIZE)
    probe = make_probe(spec, corpus.INPUT_SIZE, max_bytes=64 * 1024**2)
    assert probe.inputs.shape == (shape.batch, shape.length, shape.width)


@FUZZ_OPTION_FILES
@given(data=byte_mutations("npy"))
def test_fuzz_npy_probe_bytes(data):
    check_option_file(data, ".npy", _probe)


@pytest.fixture(scope="module")
def valid_model() -> pathlib.Path:
    return corpus.make_valid_model(_fresh_path(".safetensors"))


@FUZZ_OPTION_FILES
@given(data=byte_mutations("map"))
def test_fuzz_map_toml_bytes(valid_model, data):
    check_option_file(data, ".toml", lambda path: rnngrad.inspect(valid_model, map=str(path)))


@pytest.fixture(scope="module")
def figures(valid_model):
    from rnngrad.gate.check import measure
    from rnngrad.gate.config import config_from_values

    return measure(valid_model, config_from_values({"lags": "1..3", "steps": 10, "batch": 2}))


@FUZZ_OPTION_FILES
@given(document=st.one_of(
    json_values,
    st.fixed_dictionaries({"schema_version": json_scalars, "models": st.one_of(
        json_values, st.dictionaries(st.sampled_from(["", "x", "model.safetensors"]),
                                     json_values, max_size=2))})))
def test_fuzz_baseline_json(figures, document):
    from rnngrad.gate.baseline import compare, read_baseline
    from rnngrad.gate.config import config_from_values

    config = config_from_values({})
    model = {figures.model.path: {figures.recurrences[0].weight_hh: document}}

    def use(path: pathlib.Path) -> None:
        baseline = read_baseline(path)
        compare(figures, baseline, config)
        compare(figures, {"models": model}, config)

    check_option_file(json.dumps(document, allow_nan=True).encode(), ".json", use)


# --------------------------------------------------------------------------
# Lag-spec fuzzing
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def parse():
    if parse_lags is None:
        pytest.fail(f"cannot import rnngrad.probes.lags.parse_lags: {_LAGS_IMPORT_ERROR}")
    return parse_lags


def check_lags(spec: str, max_lag: int):
    """parse_lags must return a sorted tuple of unique ints in 1..max_lag or
    raise RnngradError.  Returns the tuple, or None when it raised."""
    with time_limit(LAGS_TIME_LIMIT_S):
        try:
            res = parse_lags(spec, max_lag)
        except RnngradError as e:
            assert str(e).strip(), "RnngradError with an empty message"
            return None
    assert isinstance(res, tuple), f"parse_lags({spec!r}) returned {type(res).__name__}"
    assert res, f"parse_lags({spec!r}, {max_lag}) returned no lags instead of an error"
    assert all(type(x) is int for x in res), f"non-int lag in {res!r}"
    assert all(1 <= x <= max_lag for x in res), f"lag outside 1..{max_lag}: {res!r}"
    assert all(a < b for a, b in zip(res, res[1:])), f"not sorted/unique: {res!r}"
    return res


LAG_ALPHABET = list("0123456789.,:-+ \tlogLOGexX_") + ["..", "log:", "²", "٣", "１", "\u00a0", "\n"]

max_lags = st.one_of(st.integers(1, 300), st.sampled_from([1, 2, 50, 100]))


# Known-nasty specs, each its own test (the random tests explore beyond them).
NASTY_SPECS = [
    "²",                              # str.isdigit() but int() refuses it
    "1..2,²",
    "٣..５",                           # non-ASCII decimal digits
    "9" * 5000,                       # int() digit limit (sys.int_info.str_digits_check_threshold)
    "1.." + "9" * 5000,
    "log:1..10:99999999999",          # count drives an allocation
    "log:1..10:" + "9" * 25,
    "1..10:" + "9" * 25,
    "log:1..10000000:10000000",       # large work before the max_lag check
    "1..5:0", "log:1..1", "", " ", ",", "..", "log:", ":", "-0", "1..-1",
]


@FUZZ
@given(spec=st.one_of(st.text(max_size=30),
                      st.lists(st.sampled_from(LAG_ALPHABET), max_size=16).map("".join)),
       max_lag=max_lags)
def test_fuzz_parse_lags_text(parse, spec, max_lag):
    check_lags(spec, max_lag)



@pytest.mark.parametrize("spec", NASTY_SPECS, ids=lambda s: repr(s if len(s) < 30 else s[:20] + "..."))
def test_parse_lags_nasty(parse, spec):
    check_lags(spec, 50)


_num = st.one_of(
    st.integers(-5, 400),
    st.integers(-(2 ** 70), 2 ** 70),
    st.sampled_from([0, 1, 2 ** 31, 2 ** 63, 10 ** 30]),
).map(str)
_numtext = st.one_of(_num, _num, _num,
                     st.sampled_from(["", "1e3", "0x10", "+5", " 7", "٣", "１", "1_0", "5.0",
                                      "nan", "inf", "-0", "00", "²"]))


@st.composite
def lag_items(draw):
    a, b, c = draw(_numtext), draw(_numtext), draw(_numtext)
    form = draw(st.sampled_from(["int", "range", "step", "log", "log_nocount", "triple",
                                 "colon_only"]))
    return {
        "int": a,
        "range": f"{a}..{b}",
        "step": f"{a}..{b}:{c}",
        "log": f"log:{a}..{b}:{c}",
        "log_nocount": f"log:{a}..{b}",
        "triple": f"{a}..{b}..{c}",
        "colon_only": f"{a}:{b}",
    }[form]


@FUZZ
@given(items=st.lists(lag_items(), min_size=1, max_size=5),
       sep=st.sampled_from([",", ", ", ",,", ";", " ", ",\t"]),
       pad=st.sampled_from(["", " ", "\t", ",", "\n"]),
       max_lag=max_lags)
def test_fuzz_parse_lags_structured(parse, items, sep, pad, max_lag):
    check_lags(pad + sep.join(items) + (pad if pad != "," else ""), max_lag)


@FUZZ
@given(max_lag=st.integers(1, 300), data=st.data())
def test_parse_lags_plain_valid_specs(parse, max_lag, data):
    """Unambiguous valid specs must parse to the obvious lags."""
    kind = data.draw(st.sampled_from(["int", "list", "range"]))
    if kind == "int":
        k = data.draw(st.integers(1, max_lag))
        assert check_lags(str(k), max_lag) == (k,)
    elif kind == "list":
        ks = data.draw(st.lists(st.integers(1, max_lag), min_size=1, max_size=6, unique=True))
        assert check_lags(",".join(map(str, ks)), max_lag) == tuple(sorted(ks))
    else:
        a = data.draw(st.integers(1, max_lag))
        b = data.draw(st.integers(a, max_lag))
        res = check_lags(f"{a}..{b}", max_lag)
        assert res is not None, f"valid range {a}..{b} (max {max_lag}) rejected"
        assert res[0] == a and res[-1] <= b, f"{a}..{b} -> {res!r}"
