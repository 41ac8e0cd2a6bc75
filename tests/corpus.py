"""Generator for the corpus of broken and hostile input files.

Nothing in this corpus is committed as a binary: every file is produced by
the code below (``struct``/``json``/``zlib`` (a hand-written zip)/``pickle``/
``torch.save``/``np.save``), so the bytes can be reviewed as source.

Usage::

    from tests.corpus import build_corpus
    cases = build_corpus(pathlib.Path("/tmp/somewhere"))

or ``python tests/corpus.py DEST`` to build it and print a listing.

Each :class:`Case` says how to call the real CLI on it (``args``: argv after
``rnngrad``) and what the one-line error must mention (``expect``).  ``expect``
is a lowercase substring; ``|`` separates acceptable alternatives (e.g.
``"truncated|short"``).  The file name itself is stripped from the message
before ``expect`` is matched, so a name like ``x.safetensors`` cannot satisfy
``"safetensors"`` by accident.

Kinds: ``model`` (a weights file, through every command), ``probe`` (an
``--inputs`` file), ``lags`` (a lag spec), ``option`` (any other file or value
an option names: ``--map``, ``--config``, ``--baseline``, ``--targets``,
``--seed``, ``--device``, ... through one command) and ``output`` (an output
path that would destroy an input or cannot be written).  Classes of issue 17:
memory bounded before allocation (:data:`MEMORY_CASES`, run in a subprocess
under ``RLIMIT_AS``), no hangs (:data:`HANG_CASES`: FIFOs and devices, run in
a subprocess with a timeout), no internal errors, outputs that never destroy
inputs.  File text that must be shown as data (markup, ESC sequences) is not a
refusal: :func:`text_model` writes such a model for the tests that render it.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import shlex
import struct
import sys
import time
import zlib
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

# --------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------

#: File whose appearance proves that a payload in the corpus was executed.
SENTINEL_NAME = "SENTINEL_PWNED"

#: Valid model used for the probe / lag-spec cases.
VALID_MODEL_NAME = "valid_rnn.safetensors"

INPUT_SIZE = 4
HIDDEN_SIZE = 8
PREFIX = "rnn."

#: Lag spec and step count used when a model case is run through ``bptt``.
DEFAULT_LAGS = "1..5"
DEFAULT_STEPS = "50"

MODEL_COMMANDS = ("inspect", "spectrum", "bptt", "check")

#: Cases whose file carries a pickle payload that touches the sentinel.
PAYLOAD_CASES = frozenset({
    "pt_os_system_payload",
    "pt_legacy_os_system_payload",
    "npz_object_payload",
    "probe_object_payload",
})

#: Cases that would allocate gigabytes on an unguarded rnngrad: always run in a
#: subprocess under an address-space limit (:data:`RLIMIT_AS_BYTES`).
MEMORY_CASES = frozenset({
    "npz_many_members", "pt_stride0_expand", "st_big_sparse_tensor", "probe_sparse_4gb",
    "targets_sparse_huge", "batch_million_memory",
})

#: Cases that would block an unguarded rnngrad forever (FIFOs, devices): run
#: under a time limit.
HANG_CASES = frozenset({
    "probe_fifo", "probe_dev_zero", "map_fifo", "map_dev_zero", "config_fifo", "baseline_fifo",
    "targets_fifo", "output_fifo_without_reader",
})

#: Hang cases that an unguarded reader would also fill memory with (/dev/zero
#: never ends): run in a subprocess under RLIMIT_AS, like the memory cases.
DEVICE_CASES = frozenset({"probe_dev_zero", "map_dev_zero"})

#: The address-space limit of a guarded subprocess: torch alone maps about
#: 0.7 GB, so 3 GiB leaves room for every legitimate case and none for the
#: gigabytes the memory cases would take.
RLIMIT_AS_BYTES = 3 * 1024**3

KINDS = ("model", "probe", "lags", "option", "output")


@dataclass(frozen=True)
class Case:
    name: str
    #: File or directory handed to the CLI (for "lags" cases: the valid model).
    path: pathlib.Path
    #: "model", "probe" or "lags".
    kind: str
    #: Full argv after ``rnngrad`` (model cases: the first of ``commands``,
    #: normally ``inspect``; :meth:`argv` builds the others).
    args: list = field(hash=False)
    #: Lowercase substring(s) the error must contain; "|" = alternatives.
    expect: str
    #: For "lags" cases, the lag spec under test.
    spec: Optional[str] = None
    #: Reason to skip this case in the current environment (e.g. running as root).
    skip: Optional[str] = None
    #: Commands that must refuse this case.
    commands: tuple = MODEL_COMMANDS
    #: Whether the error must name ``path``'s file name.
    names_file: bool = True

    def argv(self, command: Optional[str] = None) -> list:
        """argv (after ``rnngrad``) for ``command``; default: :attr:`args`."""
        if command is None or self.kind != "model":
            if command not in (None, self.args[0]):
                raise ValueError(f"{self.kind} case only runs {self.args[0]}")
            return list(self.args)
        return model_argv(command, self.path)

    def expect_alternatives(self) -> list:
        return [e for e in self.expect.split("|") if e]


def model_argv(command: str, path: pathlib.Path) -> list:
    if command == "inspect":
        return ["inspect", str(path)]
    if command == "spectrum":
        return ["spectrum", str(path)]
    if command == "bptt":
        return ["bptt", str(path), "--lags", DEFAULT_LAGS, "--steps", DEFAULT_STEPS]
    if command == "check":
        return ["check", str(path), "--lags", DEFAULT_LAGS, "--steps", DEFAULT_STEPS]
    raise ValueError(command)


def probe_argv(model: pathlib.Path, probe: pathlib.Path) -> list:
    return ["bptt", str(model), "--inputs", str(probe), "--lags", DEFAULT_LAGS]


def lags_argv(model: pathlib.Path, spec: str) -> list:
    # "--lags=-3" keeps argparse from mistaking a leading "-" for an option.
    lag = [f"--lags={spec}"] if spec.startswith("-") else ["--lags", spec]
    return ["bptt", str(model), *lag, "--steps", DEFAULT_STEPS]


def sentinel_path(dest: pathlib.Path, case: Optional[str] = None) -> pathlib.Path:
    """The file whose appearance proves that the payload of ``case`` ran (each payload case
    has its own, so that their calls can run at the same time and still be told apart)."""
    name = SENTINEL_NAME if case is None else f"{SENTINEL_NAME}.{case}"
    return pathlib.Path(dest).resolve() / name


def sentinels(dest: pathlib.Path) -> list:
    """Every sentinel that exists under ``dest``: a payload ran."""
    return sorted(pathlib.Path(dest).resolve().glob(SENTINEL_NAME + "*"))


# --------------------------------------------------------------------------
# Valid reference weights
# --------------------------------------------------------------------------


def valid_state_dict_numpy(input_size: int = INPUT_SIZE, hidden: int = HIDDEN_SIZE,
                           prefix: str = PREFIX, seed: int = 0) -> dict:
    """Deterministic weights with the layout of ``nn.RNN(input_size, hidden)``."""
    rng = np.random.default_rng(seed)
    k = 1.0 / np.sqrt(hidden)

    def u(*shape):
        return rng.uniform(-k, k, size=shape).astype(np.float32)

    return {
        f"{prefix}weight_ih_l0": u(hidden, input_size),
        f"{prefix}weight_hh_l0": u(hidden, hidden),
        f"{prefix}bias_ih_l0": u(hidden),
        f"{prefix}bias_hh_l0": u(hidden),
    }


def valid_state_dict_torch(prefix: str = PREFIX, seed: int = 0) -> dict:
    """Real ``nn.RNN(4, 8)`` state dict with keys prefixed by ``prefix``."""
    import torch

    torch.manual_seed(seed)
    rnn = torch.nn.RNN(INPUT_SIZE, HIDDEN_SIZE)
    return {prefix + k: v.detach().clone().contiguous() for k, v in rnn.state_dict().items()}


def make_valid_model(path: pathlib.Path, seed: int = 0) -> pathlib.Path:
    """Write a valid ``nn.RNN(4, 8)`` state dict (prefix ``rnn.``) as safetensors."""
    from safetensors.torch import save_file

    path = pathlib.Path(path)
    save_file(valid_state_dict_torch(seed=seed), str(path))
    return path


def valid_safetensors_bytes(seed: int = 0) -> bytes:
    """Bytes of a valid model written by the real ``safetensors`` library."""
    from safetensors.torch import save

    return save(valid_state_dict_torch(seed=seed))


def valid_pt_bytes(seed: int = 0, legacy: bool = False) -> bytes:
    import torch

    buf = io.BytesIO()
    if legacy:
        torch.save(valid_state_dict_torch(seed=seed), buf, _use_new_zipfile_serialization=False)
    else:
        torch.save(valid_state_dict_torch(seed=seed), buf)
    return buf.getvalue()


def valid_npz_bytes(seed: int = 0, compressed: bool = False) -> bytes:
    buf = io.BytesIO()
    sd = {k: v.numpy() for k, v in valid_state_dict_torch(seed=seed).items()}
    (np.savez_compressed if compressed else np.savez)(buf, **sd)
    return buf.getvalue()


# --------------------------------------------------------------------------
# Low-level writers
# --------------------------------------------------------------------------

_ST_DTYPES = {
    np.dtype("float16"): "F16",
    np.dtype("float32"): "F32",
    np.dtype("float64"): "F64",
    np.dtype("int8"): "I8",
    np.dtype("int16"): "I16",
    np.dtype("int32"): "I32",
    np.dtype("int64"): "I64",
    np.dtype("uint8"): "U8",
    np.dtype("bool"): "BOOL",
}


def st_pack(header, data: bytes = b"", length: Optional[int] = None, pad: bool = True) -> bytes:
    """Assemble a safetensors file from a header (dict/str/bytes) and data.

    ``length`` overrides the 8-byte little-endian header length.
    """
    if isinstance(header, (dict, list)):
        hb = json.dumps(header, separators=(",", ":")).encode()
    elif isinstance(header, str):
        hb = header.encode()
    else:
        hb = bytes(header)
    if pad:
        hb += b" " * (-len(hb) % 8)
    n = len(hb) if length is None else length
    return struct.pack("<Q", n) + hb + data


def st_layout(tensors: dict) -> tuple:
    """Header dict + data bytes for ``{name: ndarray}`` laid out contiguously."""
    header, chunks, off = {}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {
            "dtype": _ST_DTYPES[arr.dtype],
            "shape": list(arr.shape),
            "data_offsets": [off, off + len(raw)],
        }
        chunks.append(raw)
        off += len(raw)
    return header, b"".join(chunks)


def st_bytes(tensors: dict) -> bytes:
    header, data = st_layout(tensors)
    return st_pack(header, data)


def _write(path: pathlib.Path, data: bytes) -> pathlib.Path:
    path.write_bytes(data)
    return path


class _Payload:
    """Unpickling this object runs ``touch <sentinel>`` via ``os.system``."""

    def __init__(self, sentinel: pathlib.Path):
        self.cmd = "touch " + shlex.quote(str(sentinel))

    def __reduce__(self):
        return (os.system, (self.cmd,))


def _write_zip_raw(path: pathlib.Path, members: list) -> None:
    """Write a zip by hand.  ``members``: (name, usize, crc, cdata, method)."""
    out = io.BytesIO()
    central = []
    for name, usize, crc, cdata, method in members:
        nb = name.encode()
        offset = out.tell()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21,
                              crc, len(cdata), usize, len(nb), 0))
        out.write(nb)
        out.write(cdata)
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0,
                                   0x21, crc, len(cdata), usize, len(nb), 0, 0, 0, 0, 0,
                                   offset) + nb)
    cd_start = out.tell()
    for c in central:
        out.write(c)
    cd_size = out.tell() - cd_start
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members),
                          cd_size, cd_start, 0))
    path.write_bytes(out.getvalue())


def _deflate_member(name: str, payload: bytes) -> tuple:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = c.compress(payload) + c.flush()
    return (name, len(payload), zlib.crc32(payload) & 0xFFFFFFFF, data, 8)


def _zero_bomb_member(name: str, header: bytes, nzero: int) -> tuple:
    """Deflate ``header + b"\\0" * nzero`` cheaply.

    After a Z_FULL_FLUSH the compressor forgets its history, so every later
    1 MiB block of zeros compresses to identical bytes: compress a few
    blocks for real, then repeat the steady-state block.
    """
    chunk_len = 1 << 20
    chunk = bytes(chunk_len)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [c.compress(header) + c.flush(zlib.Z_FULL_FLUSH)]
    nfull, rest = divmod(nzero, chunk_len)
    prev = None
    done = 0
    while done < nfull:
        blk = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
        parts.append(blk)
        done += 1
        if blk == prev:
            parts.append(blk * (nfull - done))
            done = nfull
        prev = blk
    parts.append(c.compress(bytes(rest)) + c.flush(zlib.Z_FINISH))
    crc = zlib.crc32(header)
    for _ in range(nfull):
        crc = zlib.crc32(chunk, crc)
    crc = zlib.crc32(bytes(rest), crc) & 0xFFFFFFFF
    return (name, len(header) + nzero, crc, b"".join(parts), 8)


def _npy_header(descr: str, shape: tuple) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


# --------------------------------------------------------------------------
# Case builders
# --------------------------------------------------------------------------


class _Ctx:
    def __init__(self, dest: pathlib.Path):
        self.dest = dest
        self.case: Optional[str] = None
        self.valid_model = dest / VALID_MODEL_NAME
        self._sd = None

    @property
    def sentinel(self) -> pathlib.Path:
        """The sentinel of the case being built."""
        return sentinel_path(self.dest, self.case)

    @property
    def sd(self) -> dict:
        """Fresh copy of the valid weights (numpy, float32)."""
        if self._sd is None:
            self._sd = {k: v.numpy() for k, v in valid_state_dict_torch().items()}
        return {k: v.copy() for k, v in self._sd.items()}


_Builder = Callable[[_Ctx, pathlib.Path], Optional[str]]


@dataclass(frozen=True)
class _Spec:
    name: str
    kind: str
    filename: Optional[str]
    expect: str
    build: Optional[_Builder] = None
    spec: Optional[str] = None
    commands: tuple = MODEL_COMMANDS
    #: option/output cases: argv after ``rnngrad`` from (ctx, path).
    args: Optional[Callable] = None
    names_file: bool = True


_SPECS: list = []


def _model(name: str, filename: str, expect: str, commands: tuple = MODEL_COMMANDS):
    """Register a model-file case.  ``commands``: which of inspect/spectrum/bptt/check
    must refuse it (all four unless a case says otherwise)."""
    def deco(fn):
        _SPECS.append(_Spec(name, "model", filename, expect, fn, None, tuple(commands)))
        return fn
    return deco


def _probe(name: str, filename: str, expect: str):
    def deco(fn):
        _SPECS.append(_Spec(name, "probe", filename, expect, fn, None, ("bptt",)))
        return fn
    return deco


def _option(name: str, filename: Optional[str], expect: str, args: Callable,
            kind: str = "option", names_file: bool = True):
    """Register a case that hands a file (``filename``, built by the decorated
    function; None: the valid model) or a value to an option. ``args(ctx, path)``
    is the whole argv; its first item is the one command that must refuse it."""
    def deco(fn):
        _SPECS.append(_Spec(name, kind, filename, expect, fn, None, (), args,
                            names_file and filename is not None))
        return fn
    return deco


def _output(name: str, filename: Optional[str], expect: str, args: Callable):
    return _option(name, filename, expect, args, kind="output")


K_IH, K_HH, K_BIH, K_BHH = (PREFIX + s for s in
                            ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"))


# ---- safetensors container damage ---------------------------------------

@_model("empty_file", "empty.safetensors", "empty|truncated")
def _(c, p):
    p.write_bytes(b"")


@_model("st_truncated_in_length", "trunc_len.safetensors", "truncated|short|small")
def _(c, p):
    p.write_bytes(st_bytes(c.sd)[:5])


@_model("st_truncated_in_header", "trunc_hdr.safetensors", "truncated|header")
def _(c, p):
    b = st_bytes(c.sd)
    (n,) = struct.unpack("<Q", b[:8])
    p.write_bytes(b[: 8 + n // 2])


@_model("st_truncated_in_data", "trunc_data.safetensors",
        "truncated|end of file|beyond|exceed|offset")
def _(c, p):
    b = st_bytes(c.sd)
    p.write_bytes(b[: len(b) - 100])


@_model("st_header_len_beyond_file", "hdrlen_beyond.safetensors",
        "header|truncated|exceed")
def _(c, p):
    header, data = st_layout(c.sd)
    hb = json.dumps(header).encode()
    p.write_bytes(st_pack(hb, data, length=len(hb) + len(data) + 1000, pad=False))


@_model("st_header_len_2_60", "hdrlen_huge.safetensors",
        "header|truncated|exceed|large")
def _(c, p):
    header, data = st_layout(c.sd)
    p.write_bytes(st_pack(header, data, length=2 ** 60))


@_model("st_header_not_json", "hdr_notjson.safetensors", "json")
def _(c, p):
    _, data = st_layout(c.sd)
    p.write_bytes(st_pack(b"this is {definitely} not json at all", data))


@_model("st_header_json_not_object", "hdr_array.safetensors",
        "object|json|dict|mapping")
def _(c, p):
    _, data = st_layout(c.sd)
    p.write_bytes(st_pack([1, 2, 3, {"dtype": "F32"}], data))


@_model("st_header_duplicate_keys", "hdr_dupkeys.safetensors", "duplicate|twice")
def _(c, p):
    header, data = st_layout(c.sd)
    # weight_hh_l0 is defined twice.  The *last* definition is the correct
    # one, so a parser where the last key silently wins sees a valid file;
    # the first one points at the weight_ih bytes with a different shape.
    ih = header[K_IH]
    bogus = json.dumps({"dtype": "F32", "shape": [HIDDEN_SIZE, INPUT_SIZE],
                        "data_offsets": ih["data_offsets"]}, separators=(",", ":"))
    rest = json.dumps(header, separators=(",", ":"))
    text = "{" + f'"{K_HH}":{bogus},' + rest[1:]
    assert json.loads(text) == header  # last key wins -> looks valid
    p.write_bytes(st_pack(text, data))


@_model("st_offsets_overlap", "offsets_overlap.safetensors", "overlap|offset")
def _(c, p):
    header, data = st_layout(c.sd)
    # weight_hh (256 bytes) starts half way into weight_ih (128 bytes).
    b0, e0 = header[K_IH]["data_offsets"]
    size_hh = HIDDEN_SIZE * HIDDEN_SIZE * 4
    header[K_HH]["data_offsets"] = [b0 + 64, b0 + 64 + size_hh]
    p.write_bytes(st_pack(header, data))


@_model("st_offsets_outside_data", "offsets_outside.safetensors",
        "offset|outside|bounds|truncated|exceed|beyond")
def _(c, p):
    header, data = st_layout(c.sd)
    n = len(data)
    size_hh = HIDDEN_SIZE * HIDDEN_SIZE * 4
    header[K_HH]["data_offsets"] = [n + 4096, n + 4096 + size_hh]
    p.write_bytes(st_pack(header, data))


@_model("st_offsets_size_mismatch", "offsets_size.safetensors",
        "size|offset|shape|mismatch|bytes")
def _(c, p):
    header, data = st_layout(c.sd)
    b0, e0 = header[K_HH]["data_offsets"]
    header[K_HH]["data_offsets"] = [b0, b0 + (e0 - b0) // 2]  # half the bytes (8,8) needs
    p.write_bytes(st_pack(header, data))


@_model("st_unknown_dtype", "dtype_f99.safetensors", "dtype")
def _(c, p):
    header, data = st_layout(c.sd)
    header[K_HH]["dtype"] = "F99"
    p.write_bytes(st_pack(header, data))


@_model("st_negative_shape", "shape_negative.safetensors", "shape|negative")
def _(c, p):
    header, data = st_layout(c.sd)
    header[K_HH]["shape"] = [-HIDDEN_SIZE, -HIDDEN_SIZE]
    p.write_bytes(st_pack(header, data))


@_model("st_no_rnn_weights", "no_rnn.safetensors", "weight_hh|recurrent|no rnn")
def _(c, p):
    rng = np.random.default_rng(1)
    p.write_bytes(st_bytes({"encoder.linear.weight": rng.standard_normal((3, 3)).astype(np.float32),
                            "encoder.linear.bias": np.zeros(3, np.float32)}))


# ---- semantically broken weights ----------------------------------------

@_model("weight_hh_int64", "hh_int64.safetensors", "dtype|float")
def _(c, p):
    sd = c.sd
    sd[K_HH] = np.arange(HIDDEN_SIZE * HIDDEN_SIZE, dtype=np.int64).reshape(HIDDEN_SIZE, HIDDEN_SIZE)
    p.write_bytes(st_bytes(sd))


@_model("weight_hh_bool", "hh_bool.safetensors", "dtype|float")
def _(c, p):
    sd = c.sd
    sd[K_HH] = np.eye(HIDDEN_SIZE, dtype=bool)
    p.write_bytes(st_bytes(sd))


@_model("weights_nan", "nan.safetensors", "nan")
def _(c, p):
    from safetensors.numpy import save_file
    sd = c.sd
    sd[K_HH][3, 5] = np.nan
    save_file(sd, str(p))


@_model("weights_inf", "inf.safetensors", "inf")
def _(c, p):
    from safetensors.numpy import save_file
    sd = c.sd
    sd[K_HH][2, 2] = np.inf
    sd[K_HH][4, 1] = -np.inf
    save_file(sd, str(p))


@_model("weight_hh_not_square", "hh_8x5.safetensors", "square")
def _(c, p):
    sd = c.sd
    sd[K_HH] = np.full((HIDDEN_SIZE, 5), 0.1, np.float32)
    p.write_bytes(st_bytes(sd))


@_model("weight_ih_hh_disagree", "ih_hh_disagree.safetensors",
        "shape|mismatch|hidden|disagree|inconsistent|match")
def _(c, p):
    sd = c.sd  # weight_ih (8, 4) but weight_hh (6, 6), biases (6)
    sd[K_HH] = np.full((6, 6), 0.1, np.float32)
    sd[K_BIH] = np.zeros(6, np.float32)
    sd[K_BHH] = np.zeros(6, np.float32)
    p.write_bytes(st_bytes(sd))


@_model("layer_gap_l0_l2", "layers_0_2.safetensors", "layer|l1|missing|gap")
def _(c, p):
    sd = c.sd
    rng = np.random.default_rng(2)
    sd[PREFIX + "weight_ih_l2"] = rng.uniform(-.3, .3, (HIDDEN_SIZE, HIDDEN_SIZE)).astype(np.float32)
    sd[PREFIX + "weight_hh_l2"] = rng.uniform(-.3, .3, (HIDDEN_SIZE, HIDDEN_SIZE)).astype(np.float32)
    sd[PREFIX + "bias_ih_l2"] = np.zeros(HIDDEN_SIZE, np.float32)
    sd[PREFIX + "bias_hh_l2"] = np.zeros(HIDDEN_SIZE, np.float32)
    p.write_bytes(st_bytes(sd))


@_model("hidden_size_zero", "hidden0.safetensors", "hidden|empty|zero|size 0")
def _(c, p):
    p.write_bytes(st_bytes({K_IH: np.zeros((0, INPUT_SIZE), np.float32),
                            K_HH: np.zeros((0, 0), np.float32),
                            K_BIH: np.zeros(0, np.float32),
                            K_BHH: np.zeros(0, np.float32)}))


_HUGE = 200_000


def _huge_header() -> dict:
    n_ih = _HUGE * INPUT_SIZE * 8
    n_hh = _HUGE * _HUGE * 8
    return {
        K_IH: {"dtype": "F64", "shape": [_HUGE, INPUT_SIZE], "data_offsets": [0, n_ih]},
        K_HH: {"dtype": "F64", "shape": [_HUGE, _HUGE], "data_offsets": [n_ih, n_ih + n_hh]},
    }


@_model("huge_shape_data_absent", "huge_absent.safetensors",
        "truncated|large|exceed|offset|end of file|beyond|memory")
def _(c, p):
    p.write_bytes(st_pack(_huge_header(), b""))


@_model("huge_shape_sparse_file", "huge_sparse.safetensors",
        "large|memory|too big|exceed|limit")
def _(c, p):
    """Consistent header + 320 GB of (sparse, unallocated) zeros."""
    header = _huge_header()
    return sparse_file(p, st_pack(header, b""), header[K_HH]["data_offsets"][1])


# ---- pickles and other formats ------------------------------------------

@_model("pt_os_system_payload", "evil.pt", "pickle|unsafe|refus|global|forbidden|not allowed")
def _(c, p):
    import torch
    sd = {k: torch.from_numpy(v) for k, v in c.sd.items()}
    sd[K_HH] = _Payload(c.sentinel)
    torch.save(sd, str(p))


@_model("pt_legacy_os_system_payload", "evil_legacy.pt",
        "legacy|pickle|unsafe|refus|global|forbidden|not allowed")
def _(c, p):
    import torch
    sd = {k: torch.from_numpy(v) for k, v in c.sd.items()}
    sd["payload"] = _Payload(c.sentinel)
    torch.save(sd, str(p), _use_new_zipfile_serialization=False)


@_model("pt_whole_module", "module.pt", "pickle|module|state_dict|state dict")
def _(c, p):
    import torch
    torch.manual_seed(0)
    torch.save(torch.nn.RNN(INPUT_SIZE, HIDDEN_SIZE), str(p))


@_model("pt_torchscript", "scripted.pt", "torchscript")
def _(c, p):
    import warnings

    import torch
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(torch.nn.RNN(INPUT_SIZE, HIDDEN_SIZE)), str(p))


@_model("pt_legacy_format", "legacy.pt", "legacy|old|zip")
def _(c, p):
    import torch
    torch.save({k: torch.from_numpy(v) for k, v in c.sd.items()}, str(p),
               _use_new_zipfile_serialization=False)


@_model("pt_truncated", "trunc.pt", "truncated|zip|corrupt|archive")
def _(c, p):
    b = valid_pt_bytes()
    p.write_bytes(b[: len(b) // 2])


@_model("npz_zip_bomb", "bomb.npz", "large|bomb|size|limit|memory|compress")
def _(c, p):
    n = 17_000  # (17000, 17000) float32 = 1.08 GiB declared and actually deflated
    sd = c.sd
    ih = np.zeros((n, INPUT_SIZE), np.float32)
    buf = io.BytesIO()
    np.lib.format.write_array(buf, ih)
    members = [
        _deflate_member(K_IH + ".npy", buf.getvalue()),
        _zero_bomb_member(K_HH + ".npy", _npy_header("<f4", (n, n)), n * n * 4),
    ]
    for k in (K_BIH, K_BHH):
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.zeros(n, np.float32))
        members.append(_deflate_member(k + ".npy", buf.getvalue()))
    del sd
    _write_zip_raw(p, members)


@_model("npz_object_arrays", "objects.npz", "object|pickle")
def _(c, p):
    np.savez(p, **{K_HH: np.array({"weights": [1.0, 2.0]}, dtype=object),
                   K_IH: np.array([{"a": 1}, None], dtype=object)})


@_model("npz_object_payload", "evil.npz", "object|pickle")
def _(c, p):
    np.savez(p, **{K_HH: np.array([_Payload(c.sentinel)], dtype=object)})


@_model("npz_truncated", "trunc.npz", "truncated|zip|corrupt|archive")
def _(c, p):
    b = valid_npz_bytes()
    p.write_bytes(b[: len(b) // 2])


@_model("text_named_safetensors", "model.safetensors",
        "header|safetensors|json|text|not a")
def _(c, p):
    p.write_text("This is a plain text file.\nIt only pretends to be a model.\n")


@_model("directory", "a_directory", "directory|folder")
def _(c, p):
    p.mkdir()


@_model("missing_path", "does_not_exist.safetensors",
        "not found|no such|not exist|missing|does not")
def _(c, p):
    return None  # intentionally not created


@_model("unreadable_file", "unreadable.safetensors",
        "permission|denied|readable|cannot read|access")
def _(c, p):
    make_valid_model(p)
    p.chmod(0)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return "running as root: mode 000 does not stop root from reading"
    return None


# ---- probe (--inputs) files ---------------------------------------------

T = 50


@_probe("probe_wrong_width", "probe_width3.npy", "shape|width|size|dimension|feature")
def _(c, p):
    np.save(p, np.random.default_rng(3).standard_normal((T, 3)).astype(np.float32))


@_probe("probe_integer_dtype", "probe_int.npy", "dtype|float|integer")
def _(c, p):
    np.save(p, np.arange(T * INPUT_SIZE, dtype=np.int64).reshape(T, INPUT_SIZE))


@_probe("probe_rank1", "probe_rank1.npy", "rank|dim|shape")
def _(c, p):
    np.save(p, np.linspace(0, 1, T, dtype=np.float32))


@_probe("probe_rank4", "probe_rank4.npy", "rank|dim|shape")
def _(c, p):
    np.save(p, np.zeros((2, 2, T, INPUT_SIZE), np.float32))


@_probe("probe_nan", "probe_nan.npy", "nan")
def _(c, p):
    a = np.random.default_rng(4).standard_normal((T, INPUT_SIZE)).astype(np.float32)
    a[7, 1] = np.nan
    np.save(p, a)


@_probe("probe_object_array", "probe_object.npy", "object|pickle")
def _(c, p):
    np.save(p, np.array([{"x": 1.0}, {"y": 2.0}], dtype=object), allow_pickle=True)


@_probe("probe_object_payload", "probe_evil.npy", "object|pickle")
def _(c, p):
    np.save(p, np.array([_Payload(c.sentinel)], dtype=object), allow_pickle=True)


@_probe("probe_not_npy", "probe_text.npy", "npy|magic|numpy|not a")
def _(c, p):
    p.write_text("0.1, 0.2, 0.3, 0.4\n" * T)


# ---- issue 17: memory bounded before allocation ----------------------------

#: 40 members of 60 MiB of zeros each: 2.4 MB on disk, 2.3 GiB inflated (each
#: member passes a per-member ratio check, the archive as a whole does not).
MANY_MEMBERS = 40
MEMBER_SIDE = 3960


@_model("npz_many_members", "many_members.npz", "zip bomb|memory limit")
def _(c, p):
    member = _zero_bomb_member("x.npy", _npy_header("<f4", (MEMBER_SIDE, MEMBER_SIDE)),
                               MEMBER_SIDE * MEMBER_SIDE * 4)
    _write_zip_raw(p, [(f"m{i}.weight_hh_l0.npy",) + member[1:] for i in range(MANY_MEMBERS)])


@_model("pt_stride0_expand", "stride0.pt", "memory limit")
def _(c, p):
    """2 KB: a (1, 1) storage viewed with stride 0 as 40000 x 40000 (12.8 GB as float64)."""
    import torch
    side = 40_000
    torch.save({K_HH: torch.zeros(1, 1).expand(side, side),
                K_IH: torch.zeros(1, 1).expand(side, INPUT_SIZE),
                K_BIH: torch.zeros(1).expand(side), K_BHH: torch.zeros(1).expand(side)}, str(p))


@_model("st_big_sparse_tensor", "big_sparse.safetensors", "memory limit",
        commands=("inspect", "check"))  # hashing 2.2 GB of holes takes seconds per call
def _(c, p):
    """A consistent 2.2 GB (sparse) float16 W_hh of 33000 x 33000: 8.7 GB as float64."""
    side = 33_000
    header = {K_HH: {"dtype": "F16", "shape": [side, side], "data_offsets": [0, side * side * 2]}}
    return sparse_file(p, st_pack(header, b""), side * side * 2)


def sparse_file(p: pathlib.Path, head: bytes, data_bytes: int) -> Optional[str]:
    """``head`` followed by ``data_bytes`` of unallocated zeros; a skip reason if the
    file system cannot make sparse files."""
    total = len(head) + data_bytes
    with open(p, "wb") as f:
        f.write(head)
        try:
            f.truncate(total)
        except OSError as e:
            f.truncate(0)
            return f"filesystem refuses a {total}-byte sparse file: {e}"
    st_ = p.stat()
    if st_.st_size != total or st_.st_blocks * 512 > 64 * 1024 * 1024:
        p.unlink()
        p.write_bytes(head)
        return "filesystem does not support sparse files"
    return None


def wide_header_file(path: pathlib.Path, entries: int) -> pathlib.Path:
    """The valid RNN plus ``entries`` one-element tensors (600,000: a 40 MB header), its
    data sparse: the file of issue 17's 493-second ``inspect``."""
    header, offset = {}, 0
    for name, values in valid_state_dict_numpy().items():
        header[name] = {"dtype": "F32", "shape": list(values.shape),
                        "data_offsets": [offset, offset + values.size * 4]}
        offset += values.size * 4
    for index in range(entries):
        header[f"t{index}.weight"] = {"dtype": "F32", "shape": [1],
                                      "data_offsets": [offset, offset + 4]}
        offset += 4
    sparse_file(path, st_pack(header), offset)
    return path


@_model("st_deep_json_header", "deep_header.safetensors", "nest|deep")
def _(c, p):
    p.write_bytes(st_pack("{\"x\":" + "[" * 100_000 + "]" * 100_000 + "}"))


@_model("npz_header_lies", "header_lies.npz", "declares|truncated")
def _(c, p):
    """A member whose .npy header claims (8, 8) float32 over 16 bytes of data."""
    _write_zip_raw(p, [_deflate_member(K_HH + ".npy", _npy_header("<f4", (8, 8)) + bytes(16))])


@_model("npz_non_npy_member", "with_text.npz", "no recurrence|not .npy")
def _(c, p):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.zeros(3, np.float32))
    _write_zip_raw(p, [_deflate_member("x.npy", buf.getvalue()),
                       _deflate_member("notes.txt", b"trained for 3 epochs\n")])


@_probe("probe_sparse_4gb", "probe_sparse.npy", "limit")
def _(c, p):
    """(250, 1000000, 4) float32: a 4 GB (sparse) probe file, 8 GB as float64."""
    shape = (250, 1_000_000, INPUT_SIZE)
    return sparse_file(p, _npy_header("<f4", shape), 250 * 1_000_000 * INPUT_SIZE * 4)


@_probe("probe_truncated", "probe_truncated.npy", "truncated|holds")
def _(c, p):
    p.write_bytes(_npy_header("<f4", (T, INPUT_SIZE)) + bytes(T * INPUT_SIZE * 4 // 2))


@_probe("probe_fifo", "probe_fifo.npy", "regular|pipe")
def _(c, p):
    os.mkfifo(p)


@_probe("probe_dev_zero", "probe_zero.npy", "regular|device")
def _(c, p):
    p.symlink_to("/dev/zero")


@_option("batch_million_memory", None, "limit",  # 1e6 × 150 steps: far over 8 GiB
         lambda c, p: ["bptt", p, "--batch", "1000000", "--lags", "1..100"])
def _(c, p):
    return None


HEAD_MODEL_NAME = "valid_with_head.safetensors"


def _head_model(c: "_Ctx") -> pathlib.Path:
    """The valid RNN with a linear head ``fc`` (3 classes), for --loss/--targets cases."""
    path = c.dest / HEAD_MODEL_NAME
    if not path.exists():
        import torch
        from safetensors.torch import save_file
        torch.manual_seed(0)
        head = torch.nn.Linear(HIDDEN_SIZE, 3)
        save_file({**valid_state_dict_torch(),
                   **{f"fc.{k}": v.contiguous() for k, v in head.state_dict().items()}},
                  str(path))
    return path


def _targets_args(loss: str):
    return lambda c, p: ["bptt", c.dest / HEAD_MODEL_NAME, "--loss", loss, "--targets", p,
                         "--lags", DEFAULT_LAGS, "--steps", DEFAULT_STEPS]


@_option("targets_sparse_huge", "targets_huge.npy", "limit", _targets_args("mse"))
def _(c, p):
    """(10**9, 3) float64 targets: 24 GB (sparse)."""
    _head_model(c)
    return sparse_file(p, _npy_header("<f8", (10**9, 3)), 10**9 * 3 * 8)


# ---- issue 17: no hangs, no unbounded reads, no internal errors ----------------

@_option("targets_fifo", "targets_fifo.npy", "regular|pipe", _targets_args("mse"))
def _(c, p):
    _head_model(c)
    os.mkfifo(p)


@_option("targets_empty", "targets_empty.npy", "no targets|empty", _targets_args("ce"))
def _(c, p):
    _head_model(c)
    np.save(p, np.zeros(0, np.int64))


@_option("targets_npz", "targets.npz", "npy|magic", _targets_args("ce"))
def _(c, p):
    _head_model(c)
    np.savez(p, targets=np.zeros(4, np.int64))


def _map_args(c, p):
    return ["inspect", c.valid_model, "--map", p]


@_option("map_fifo", "map_fifo.toml", "regular|pipe", _map_args)
def _(c, p):
    os.mkfifo(p)


@_option("map_dev_zero", "map_zero.toml", "regular|device", _map_args)
def _(c, p):
    p.symlink_to("/dev/zero")


@_option("map_deep_toml", "map_deep.toml", "nest|deep", _map_args)
def _(c, p):
    p.write_text("recurrent = " + "[" * 50_000 + "]" * 50_000 + "\n")


def _check_args(option: str):
    return lambda c, p: ["check", c.valid_model, option, p, "--lags", DEFAULT_LAGS,
                         "--steps", DEFAULT_STEPS]


@_option("config_fifo", "config_fifo.toml", "regular|pipe", _check_args("--config"))
def _(c, p):
    os.mkfifo(p)


@_option("baseline_fifo", "baseline_fifo.json", "regular|pipe", _check_args("--baseline"))
def _(c, p):
    os.mkfifo(p)


@_option("config_deep_toml", "config_deep.toml", "nest|deep", _check_args("--config"))
def _(c, p):
    p.write_text("batch = " + "[" * 50_000 + "]" * 50_000 + "\n")


@_option("baseline_deep_json", "baseline_deep.json", "baseline", _check_args("--baseline"))
def _(c, p):
    p.write_text("[" * 100_000 + "]" * 100_000)


CONFIG_VALUES = {
    "config_models_not_strings": ("models = [1]", "list of strings"),
    "config_batch_2_62": (f"batch = {2**62}", "batch"),
    "config_seed_negative": ("seed = -1", "seed"),
    "config_norm_drop_zero": ("norm-drop = 0", "norm-drop"),
    "config_explode_nan": ("explode-above = nan", "explode-above"),
    "config_vanish_nan": ("vanish-below = nan", "vanish-below"),
    "config_max_memory_nan": ("max-memory = nan", "max-memory"),
}


def _config_case(name: str, line: str, expect: str) -> None:
    def build(c, p):
        p.write_text(f"[tool.rnngrad]\n{line}\n")
    _option(name, f"{name}.toml", expect, _check_args("--config"), names_file=False)(build)


for _name, (_line, _expect) in CONFIG_VALUES.items():
    _config_case(_name, _line, _expect)

OPTION_VALUES = {
    "seed_negative": (["bptt", "--seed", "-1"], "seed"),
    "device_meta": (["bptt", "--device", "meta"], "device"),
    "max_memory_nan": (["spectrum", "--max-memory", "nan"], "max-memory"),
    "max_memory_nan_inspect": (["inspect", "--max-memory", "nan"], "max-memory"),
    "max_memory_zero_check": (["check", "--max-memory", "0"], "max-memory"),
    "batch_two_million": (["bptt", "--batch", "2000000"], "batch"),
    "norm_drop_zero": (["check", "--norm-drop", "0"], "norm-drop"),
    "explode_above_nan": (["check", "--explode-above", "nan"], "explode-above"),
}


def _value_case(name: str, argv: list, expect: str) -> None:
    def args(c, p):
        lags = ["--lags", DEFAULT_LAGS] if argv[0] in ("bptt", "check") else []
        return [argv[0], c.valid_model, *argv[1:], *lags]
    _option(name, None, expect, args)(lambda c, p: None)


for _name, (_argv, _expect) in OPTION_VALUES.items():
    _value_case(_name, _argv, _expect)


# ---- issue 17: outputs never destroy inputs ----------------------------------

def _victim(p: pathlib.Path) -> pathlib.Path:
    """The model an output case would destroy: its own copy, so that an rnngrad that does
    destroy it harms no other case."""
    return p.parent / f"victim_of_{p.name}.safetensors"


def _json_output(command: str = "inspect", option: str = "--output", model=None):
    """argv writing ``--output``/``--plot``/... to the case's path; the model read is
    ``model(c, p)`` (default: the case's victim copy)."""
    def args(c, p):
        read = (model or (lambda c, p: _victim(p)))(c, p)
        head = {"inspect": ["inspect", read, "--format", "json"],
                "spectrum": ["spectrum", read],
                "bptt": ["bptt", read, "--lags", DEFAULT_LAGS, "--steps", DEFAULT_STEPS]}
        return [*head[command], option, p]
    return args


def _valid(c, p):
    return c.valid_model


@_output("output_is_the_model", "victim.safetensors", "input",
         _json_output(model=lambda c, p: p))
def _(c, p):
    make_valid_model(p)


@_output("output_hard_link_to_model", "model_hardlink.json", "input", _json_output())
def _(c, p):
    os.link(make_valid_model(_victim(p)), p)


@_output("output_symlink_to_model", "model_symlink.json", "input", _json_output())
def _(c, p):
    p.symlink_to(make_valid_model(_victim(p)))


@_output("plot_onto_model", "model_picture.svg", "input", _json_output("spectrum", "--plot"))
def _(c, p):
    p.symlink_to(make_valid_model(_victim(p)))


@_output("save_directions_onto_model", "directions_link.safetensors", "input",
         _json_output("bptt", "--save-directions"))
def _(c, p):
    os.link(make_valid_model(_victim(p)), p)


@_output("write_baseline_onto_config", "gate_config.toml", "input",
         lambda c, p: ["check", c.valid_model, "--config", p, "--write-baseline", p,
                       "--lags", DEFAULT_LAGS, "--steps", DEFAULT_STEPS])
def _(c, p):
    p.write_text("[tool.rnngrad]\nexplode-above = 1e4\n")


@_output("output_missing_folder", "no_such_folder", "does not exist",
         lambda c, p: ["inspect", c.valid_model, "--output", p / "report.txt"])
def _(c, p):
    return None


@_output("output_is_a_directory", "a_folder_for_output", "directory",
         _json_output(model=_valid))
def _(c, p):
    p.mkdir()


@_output("output_dev_full", "full_device", "no space", _json_output(model=_valid))
def _(c, p):
    if not os.path.exists("/dev/full"):
        return "no /dev/full on this system"
    p.symlink_to("/dev/full")


@_output("output_fifo_without_reader", "report_fifo", "pipe", _json_output(model=_valid))
def _(c, p):
    os.mkfifo(p)


# ---- lag specs -----------------------------------------------------------

LAG_SPECS = {
    "lags_empty": "",
    "lags_letters": "abc",
    "lags_zero_start": "0..5",
    "lags_reversed": "5..1",
    "lags_open_range": "1..",
    "lags_zero_step": "1..10:0",
    "lags_negative": "-3",
    "lags_double_comma": "1,,2",
    "lags_log_zero_count": "log:1..10:0",
    "lags_beyond_steps": "1..1000000",
    "lags_float_exponent": "1e3",
    "lags_superscript_digit": "1,²",
    "lags_log_huge_count": "log:1..10:99999999999",
}
for _name, _s in LAG_SPECS.items():
    _SPECS.append(_Spec(_name, "lags", None, "lag", None, _s, ("bptt",)))


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def case_specs() -> list:
    """(name, kind) of every case, available without building anything."""
    return [(s.name, s.kind) for s in _SPECS]


def case_commands() -> dict:
    """{name: commands that must refuse the case}, without building anything."""
    return {s.name: s.commands or (s.args(_Ctx(pathlib.Path("/nonexistent")),
                                          pathlib.Path("x"))[0],)
            for s in _SPECS}


def build_corpus(dest: pathlib.Path, only: Optional[set] = None) -> list:
    """Build the corpus under ``dest`` (created if needed); return the cases.

    ``only``: restrict to these case names (the valid model is always built).
    """
    dest = pathlib.Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    ctx = _Ctx(dest)
    make_valid_model(ctx.valid_model)
    cases = []
    for s in _SPECS:
        if only is not None and s.name not in only:
            continue
        skip = None
        if s.kind == "lags":
            path = ctx.valid_model
            args = lags_argv(path, s.spec)
        else:
            path = dest / s.filename if s.filename else ctx.valid_model
            ctx.case = s.name
            skip = s.build(ctx, path)
            if s.args is not None:
                args = [str(a) for a in s.args(ctx, path)]
            else:
                args = (model_argv(s.commands[0], path) if s.kind == "model"
                        else probe_argv(ctx.valid_model, path))
        commands = s.commands or (args[0],)
        cases.append(Case(name=s.name, path=path, kind=s.kind, args=args,
                          expect=s.expect, spec=s.spec, skip=skip, commands=commands,
                          names_file=s.names_file and s.kind != "lags"))
    if sentinels(dest):
        raise RuntimeError("building the corpus executed a payload")
    return cases


def _main(argv: list) -> int:
    import tempfile
    dest = pathlib.Path(argv[0]) if argv else pathlib.Path(tempfile.mkdtemp(prefix="rnngrad-corpus-"))
    t0 = time.perf_counter()
    cases = build_corpus(dest)
    dt = time.perf_counter() - t0
    disk = 0
    for c in cases:
        p = c.path
        if p.is_file():
            st_ = p.stat()
            disk += st_.st_blocks * 512
            size = f"{st_.st_size:>14,d} B  ({st_.st_blocks * 512:,d} B on disk)"
        elif p.is_dir():
            size = "<dir>"
        else:
            size = "<absent>"
        extra = f" spec={c.spec!r}" if c.kind == "lags" else ""
        print(f"{c.kind:5} {c.name:30} {p.name:28} {size}  expect={c.expect!r}{extra}"
              + (f"  SKIP: {c.skip}" if c.skip else ""))
    print(f"{len(cases)} cases in {dest}; built in {dt:.2f} s; ~{disk / 1e6:.2f} MB on disk")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
