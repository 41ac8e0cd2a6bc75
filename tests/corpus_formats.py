"""Hostile Keras (HDF5, ``.keras``) and ONNX files: one generator per class of issue #17
(items 1, 2 and 5 for these readers), each building its own file from source.

Like :mod:`corpus` (whose zip writer and bomb builder are reused), nothing here is a committed
binary. Each :class:`FormatCase` says what the one-line error must mention (``expect``,
lowercase, ``|`` between alternatives), which commands must refuse it, and whether it is a
memory class (run in a subprocess under ``RLIMIT_AS``) or could hang (run in a subprocess with
a timeout). ``GOOD`` files are controls that must be read: the valid bases the hostile ones
are made from, and a 5000-node Identity chain (no recursion blow-up).

``python tests/corpus_formats.py DEST`` builds the corpus and lists it with sizes.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import corpus  # noqa: E402

COMMANDS = ("inspect", "spectrum", "bptt")
I, H = 3, 4
GIB = 1024**3


@dataclass(frozen=True)
class FormatCase:
    name: str
    path: pathlib.Path
    expect: str
    memory: bool = False
    hang: bool = False
    commands: tuple = COMMANDS
    extra: tuple = ()

    def argv(self, command: str) -> list:
        return [*corpus.model_argv(command, self.path), *self.extra]

    def expect_alternatives(self) -> list:
        return [e for e in self.expect.split("|") if e]


@dataclass(frozen=True)
class _Spec:
    name: str
    filename: str
    expect: str
    build: Callable[[pathlib.Path, pathlib.Path], None]
    memory: bool = False
    hang: bool = False
    extra: tuple = ()


_SPECS: list[_Spec] = []
GOOD: dict[str, Callable[[pathlib.Path], None]] = {}


def _case(name: str, filename: str, expect: str, *, memory: bool = False, hang: bool = False,
          extra: tuple = ()):
    def register(build):
        _SPECS.append(_Spec(name, filename, expect, build, memory, hang, extra))
        return build
    return register


# --- valid bases ------------------------------------------------------------------------------


def _lstm_arrays(seed: int = 0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return {"kernel": (rng.standard_normal((I, 4 * H)) * 0.5).astype(dtype),
            "recurrent_kernel": (rng.standard_normal((H, 4 * H)) * 0.5).astype(dtype),
            "bias": np.zeros(4 * H, dtype)}


def keras2_file(path: pathlib.Path, *, layer: str = "lstm", model_config: bytes | None = None,
                make: Callable | None = None) -> None:
    """A Keras 2 ``save_weights`` file with one LSTM layer; ``make(group, leaf, array)``
    replaces ``group.create_dataset`` to build hostile datasets."""
    import h5py

    with h5py.File(path, "w", libver="latest") as f:  # "latest": attributes over 64 KiB
        f.attrs["keras_version"] = b"2.4.0"
        f.attrs["backend"] = b"tensorflow"
        if model_config is not None:
            f.attrs["model_config"] = np.bytes_(model_config)
        f.attrs["layer_names"] = np.array([layer.encode()])
        group = f.create_group(layer)
        leaves = _lstm_arrays()
        group.attrs["weight_names"] = np.array([f"{layer}/{leaf}:0".encode() for leaf in leaves])
        inner = group.create_group(layer)
        for leaf, array in leaves.items():
            (make or _plain_dataset)(inner, f"{leaf}:0", array)


def _plain_dataset(group, name: str, array: np.ndarray) -> None:
    group.create_dataset(name, data=array)


def keras3_weights(path_or_file, *, extra: Callable | None = None) -> None:
    """A Keras 3 ``.weights.h5`` (``layers/lstm/cell/vars/0..2``)."""
    import h5py

    with h5py.File(path_or_file, "w") as f:
        f.create_group("vars")
        group = f.require_group("layers/lstm/cell/vars")
        for index, array in enumerate(_lstm_arrays().values()):
            group.create_dataset(str(index), data=array)
        if extra is not None:
            extra(f)


KERAS3_CONFIG = {"module": "keras", "class_name": "Sequential", "config": {
    "name": "sequential", "layers": [
        {"class_name": "InputLayer", "config": {"name": "input_layer"}},
        {"class_name": "LSTM", "config": {"name": "lstm", "units": H, "activation": "tanh",
                                          "recurrent_activation": "sigmoid"}}]}}


def keras_archive(path: pathlib.Path, *, config: bytes | None = None,
                  members: list | None = None) -> None:
    """A ``.keras`` archive; ``members`` (as corpus._write_zip_raw takes them) replace the
    stored config.json when given."""
    import io

    weights = io.BytesIO()
    keras3_weights(weights)
    stored = [("metadata.json", json.dumps({"keras_version": "3.6.0"}).encode()),
              ("model.weights.h5", weights.getvalue())]
    raw = [(name, len(data), _crc(data), data, 0) for name, data in stored]
    if members is None:
        text = json.dumps(KERAS3_CONFIG).encode() if config is None else config
        members = [("config.json", len(text), _crc(text), text, 0)]
    corpus._write_zip_raw(path, members + raw)


def _crc(data: bytes) -> int:
    import zlib

    return zlib.crc32(data) & 0xFFFFFFFF


def onnx_model(*, w_name: str = "W", nodes: list | None = None, inits: list | None = None,
               w=None, attrs: dict | None = None):
    """A forward ONNX LSTM node whose W input is ``w_name`` (computed by ``nodes`` from
    ``inits`` when given)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    w = rng.standard_normal((1, 4 * H, I)).astype(np.float32) if w is None else w
    r = rng.standard_normal((1, 4 * H, H)).astype(np.float32)
    base = [numpy_helper.from_array(r, "R")]
    if inits is None:
        base.append(numpy_helper.from_array(w, "W"))
    node = helper.make_node("LSTM", ["X", w_name, "R"], ["Y"], hidden_size=H, name="/rnn/LSTM",
                            **(attrs or {}))
    graph = helper.make_graph([*(nodes or []), node], "g",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [5, 1, I])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
                              initializer=base + (inits or []))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    return model


def save_onnx(model, path: pathlib.Path) -> None:
    path.write_bytes(model.SerializeToString())


def _const(name: str, values, dtype=np.int64):
    from onnx import helper, numpy_helper

    return helper.make_node("Constant", [], [name],
                            value=numpy_helper.from_array(np.asarray(values, dtype), name + "_v"))


GOOD["keras2_h5"] = lambda p: keras2_file(p / "good.h5")
GOOD["keras3_weights"] = lambda p: keras3_weights(p / "good.weights.h5")
GOOD["keras_archive"] = lambda p: keras_archive(p / "good.keras")
GOOD["onnx"] = lambda p: save_onnx(onnx_model(), p / "good.onnx")


def _chain(p: pathlib.Path) -> None:
    """W through 5000 Identity nodes: read without recursion."""
    from onnx import helper, numpy_helper

    w = np.random.default_rng(1).standard_normal((1, 4 * H, I)).astype(np.float32)
    nodes = [helper.make_node("Identity", [f"w{k}"], [f"w{k + 1}"]) for k in range(5000)]
    save_onnx(onnx_model(w_name="w5000", nodes=nodes,
                         inits=[numpy_helper.from_array(w, "w0")]), p / "chain5000.onnx")


GOOD["onnx_chain_5000"] = _chain


# --- Keras: memory ----------------------------------------------------------------------------


@_case("h5_chunked_never_written", "unwritten.h5", "never written|stores none", memory=True)
def _(dest, p):
    """A 6 KB file whose chunked kernels declare 3.2 GB each (6.4 GB in all), never written."""
    def unwritten(group, name, array):
        shape = (10_000, 40_000) if name != "bias:0" else (40_000,)
        group.create_dataset(name, shape=shape, dtype="<f8", chunks=True)
    keras2_file(p, make=unwritten)


@_case("h5_chunked_partly_written", "partly.h5", "stores only", memory=True)
def _(dest, p):
    def partly(group, name, array):
        shape = (10_000, 40_000) if name != "bias:0" else (40_000,)
        dataset = group.create_dataset(name, shape=shape, dtype="<f8", chunks=True)
        dataset[(0,) * len(shape)] = 1.0  # one chunk of thousands
    keras2_file(p, make=partly)


@_case("h5_gzip_bomb", "gzipbomb.h5", "inflate", memory=True)
def _(dest, p):
    def bomb(group, name, array):
        shape = (10_000, 40_000) if name != "bias:0" else (40_000,)
        dataset = group.create_dataset(name, shape=shape, dtype="<f8", chunks=True,
                                       compression="gzip")
        dataset[(0,) * len(shape)] = 1.0
    keras2_file(p, make=bomb)


@_case("keras_config_json_bomb", "configbomb.keras", "config.json", memory=True)
def _(dest, p):
    """config.json deflated: 3 MB in the archive, 3 GiB inflated."""
    member = corpus._zero_bomb_member("config.json", b'{"pad": "', 3 * GIB)
    keras_archive(p, members=[member])


@_case("keras_weights_member_bomb", "weightsbomb.keras", "inflate|cap|compression",
       memory=True)
def _(dest, p):
    """model.weights.h5 deflated: 2.5 MB in the archive, 2.5 GiB inflated."""
    text = json.dumps(KERAS3_CONFIG).encode()
    members = [("config.json", len(text), _crc(text), text, 0),
               corpus._zero_bomb_member("model.weights.h5", b"\x89HDF\r\n\x1a\n", 5 * GIB // 2)]
    corpus._write_zip_raw(p, members)


# --- Keras: links and cycles ------------------------------------------------------------------


def _other_file(dest: pathlib.Path) -> pathlib.Path:
    other = dest / "other_weights.h5"
    if not other.exists():
        keras2_file(other, layer="lstm")
    return other


@_case("h5_soft_link_through_external_link", "softext.h5", "soft link")
def _(dest, p):
    """The layer group is a soft link to an external link into another file: rnngrad used to
    analyse the other file's weights and exit 0."""
    import h5py

    other = _other_file(dest)
    with h5py.File(p, "w") as f:
        f.attrs["keras_version"] = b"2.4.0"
        f.attrs["layer_names"] = np.array([b"lstm"])
        f["elsewhere"] = h5py.ExternalLink(str(other), "/lstm")
        f["lstm"] = h5py.SoftLink("/elsewhere")


@_case("h5_soft_link_to_fifo", "softfifo.h5", "soft link", hang=True)
def _(dest, p):
    """The same through an external link to a FIFO: rnngrad used to hang opening it."""
    import h5py

    fifo = dest / "weights_fifo.h5"
    if not fifo.exists():
        os.mkfifo(fifo)
    with h5py.File(p, "w") as f:
        f.attrs["keras_version"] = b"2.4.0"
        f.attrs["layer_names"] = np.array([b"lstm"])
        f["elsewhere"] = h5py.ExternalLink(str(fifo), "/lstm")
        f["lstm"] = h5py.SoftLink("/elsewhere")


@_case("h5_soft_link_in_weight_path", "softpath.h5", "soft link")
def _(dest, p):
    import h5py

    def linked(group, name, array):
        if name == "kernel:0":
            group.file["stash"] = array
            group[name] = h5py.SoftLink("/stash")
        else:
            group.create_dataset(name, data=array)
    keras2_file(p, make=linked)


@_case("h5_external_link_in_keras3_tree", "ext3.weights.h5", "external link")
def _(dest, p):
    import h5py

    other = _other_file(dest)
    keras3_weights(p, extra=lambda f: f.__setitem__("layers/gru",
                                                     h5py.ExternalLink(str(other), "/lstm")))


@_case("h5_hard_link_cycle", "cycle.weights.h5", "reached twice", hang=True)
def _(dest, p):
    """``layers/lstm/again`` is a hard link to ``layers``: a walk used to loop forever."""
    keras3_weights(p, extra=lambda f: f["layers/lstm"].__setitem__("again", f["layers"]))


# --- Keras: what the file holds ---------------------------------------------------------------


@_case("h5_model_config_not_json", "notjson.h5", "not json")
def _(dest, p):
    keras2_file(p, model_config=b"{'class_name': 'Sequential',")


@_case("h5_model_config_deeply_nested", "nested.h5", "nested too deeply")
def _(dest, p):
    keras2_file(p, model_config=b"[" * 100_000 + b"]" * 100_000)


@_case("keras_config_deeply_nested", "nested.keras", "nested too deeply")
def _(dest, p):
    keras_archive(p, config=b"[" * 100_000 + b"]" * 100_000)


@_case("h5_string_kernel", "strkernel.h5", "not floating-point")
def _(dest, p):
    def strings(group, name, array):
        data = array.astype("S8") if name == "kernel:0" else array
        group.create_dataset(name, data=data)
    keras2_file(p, make=strings)


@_case("h5_compound_kernel", "compound.h5", "not floating-point")
def _(dest, p):
    def compound(group, name, array):
        if name == "kernel:0":
            data = np.zeros(array.shape, dtype=[("re", "<f4"), ("im", "<f4")])
            group.create_dataset(name, data=data)
        else:
            group.create_dataset(name, data=array)
    keras2_file(p, make=compound)


@_case("h5_null_kernel", "nullkernel.h5", "null dataspace")
def _(dest, p):
    import h5py

    def null(group, name, array):
        group.create_dataset(name, data=h5py.Empty("<f4") if name == "kernel:0" else array)
    keras2_file(p, make=null)


@_case("h5_corrupted_gzip_chunk", "badgzip.h5", "cannot read dataset|damaged")
def _(dest, p):
    import h5py

    def gz(group, name, array):
        group.create_dataset(name, data=array, chunks=array.shape, compression="gzip")
    keras2_file(p, make=gz)
    with h5py.File(p, "r") as f:
        info = f["lstm/lstm/recurrent_kernel:0"].id.get_chunk_info(0)
    data = bytearray(p.read_bytes())
    data[info.byte_offset + 2: info.byte_offset + info.size] = b"\xa5" * (info.size - 2)
    p.write_bytes(bytes(data))


# --- ONNX: memory -----------------------------------------------------------------------------


@_case("onnx_constant_of_shape_bomb", "cosbomb.onnx", "would build", memory=True)
def _(dest, p):
    """A few hundred bytes whose W is ConstantOfShape([1, 16, 200_000_000]): 12.8 GB."""
    nodes = [_const("shape", [1, 16, 200_000_000]),
             __import__("onnx").helper.make_node("ConstantOfShape", ["shape"], ["Wbig"])]
    save_onnx(onnx_model(w_name="Wbig", nodes=nodes, inits=[]), p)


@_case("onnx_expand_bomb", "expandbomb.onnx", "would build", memory=True)
def _(dest, p):
    from onnx import helper

    nodes = [_const("one", [1.0], np.float32), _const("shape", [1, 16, 200_000_000]),
             helper.make_node("Expand", ["one", "shape"], ["Wbig"])]
    save_onnx(onnx_model(w_name="Wbig", nodes=nodes, inits=[]), p)


@_case("onnx_broadcast_bomb", "mulbomb.onnx", "would build", memory=True)
def _(dest, p):
    """Mul of a (1, 60000, 1) and a (1, 1, 60000) constant: 3.6e9 values from 480 KB."""
    from onnx import helper, numpy_helper

    inits = [numpy_helper.from_array(np.ones((1, 60_000, 1), np.float32), "a"),
             numpy_helper.from_array(np.ones((1, 1, 60_000), np.float32), "b")]
    nodes = [helper.make_node("Mul", ["a", "b"], ["Wbig"])]
    save_onnx(onnx_model(w_name="Wbig", nodes=nodes, inits=inits), p)


def _external(p: pathlib.Path, entries: dict, data_file: str = "w.bin",
              data_size: int = 4096) -> None:
    from onnx import TensorProto

    model = onnx_model()
    (w,) = [init for init in model.graph.initializer if init.name == "W"]
    w.ClearField("raw_data")
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in entries.items():
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    target = p.parent / data_file
    if "\x00" not in data_file and not target.exists():
        with open(target, "wb") as handle:
            handle.truncate(data_size)
    save_onnx(model, p)


@_case("onnx_external_length_minus_one", "extneg.onnx", "not a non-negative", memory=True)
def _(dest, p):
    """length = -1 next to a 10 GiB sparse data file: read(-1) used to read all of it."""
    _external(p, {"location": "sparse10g.bin", "length": "-1"}, "sparse10g.bin", 10 * GIB)


@_case("onnx_external_offset_negative", "extoff.onnx", "not a non-negative")
def _(dest, p):
    _external(p, {"location": "w.bin", "offset": "-8"})


@_case("onnx_external_offset_not_a_number", "extnan.onnx", "not a non-negative")
def _(dest, p):
    _external(p, {"location": "w.bin", "offset": "0x10"})


@_case("onnx_external_location_nul", "extnul.onnx", "names its external data file")
def _(dest, p):
    _external(p, {"location": "w.bin\x00/../../etc/passwd"}, "w.bin\x00")


@_case("onnx_external_length_too_big", "extlong.onnx", "its dims need|claims")
def _(dest, p):
    _external(p, {"location": "w.bin", "length": str(10 * GIB)})


@_case("onnx_sparse_10gib", "sparse10g.onnx", "protobuf parses at most|2 gib", memory=True)
def _(dest, p):
    """A valid model followed by 10 GiB of (sparse) zeros: protobuf would need it all."""
    save_onnx(onnx_model(), p)
    with open(p, "r+b") as handle:
        handle.truncate(10 * GIB)


# --- ONNX: what the graph holds ---------------------------------------------------------------


@_case("onnx_dims_larger_than_data", "dims.onnx", "declares dims")
def _(dest, p):
    model = onnx_model()
    (w,) = [init for init in model.graph.initializer if init.name == "W"]
    w.dims[1] = 4 * H * 100_000
    save_onnx(model, p)


@_case("onnx_unknown_data_type", "dtype.onnx", "unknown data type")
def _(dest, p):
    model = onnx_model()
    (w,) = [init for init in model.graph.initializer if init.name == "W"]
    w.data_type = 99
    save_onnx(model, p)


@_case("onnx_string_weights", "strings.onnx", "not numbers")
def _(dest, p):
    from onnx import TensorProto

    model = onnx_model()
    (w,) = [init for init in model.graph.initializer if init.name == "W"]
    w.ClearField("raw_data")
    w.data_type = TensorProto.STRING
    w.string_data.extend([b"x"] * (4 * H * I))
    save_onnx(model, p)


@_case("onnx_cycle", "cycle.onnx", "cycle")
def _(dest, p):
    from onnx import helper

    nodes = [helper.make_node("Identity", ["b"], ["a"]), helper.make_node("Identity", ["a"], ["b"])]
    save_onnx(onnx_model(w_name="a", nodes=nodes, inits=[]), p)


def _malformed(op_nodes: list, inits: list | None = None):
    def build(dest, p):
        save_onnx(onnx_model(w_name="Wx", nodes=op_nodes, inits=inits or []), p)
    return build


def _register_malformed() -> None:
    from onnx import helper, numpy_helper

    w = numpy_helper.from_array(np.ones((1, 4 * H, I), np.float32), "w0")
    cases = {
        "reshape_wrong_size": [_const("s", [1, 5, 7]),
                               helper.make_node("Reshape", ["w0", "s"], ["Wx"])],
        "slice_step_zero": [_const("a", [0]), _const("b", [3]), _const("ax", [0]),
                            _const("st", [0]),
                            helper.make_node("Slice", ["w0", "a", "b", "ax", "st"], ["Wx"])],
        "gather_out_of_range": [_const("i", [7]),
                                helper.make_node("Gather", ["w0", "i"], ["Wx"], axis=0)],
        "transpose_bad_perm": [helper.make_node("Transpose", ["w0"], ["Wx"], perm=[0, 0, 1])],
        "cast_unknown_type": [helper.make_node("Cast", ["w0"], ["Wx"], to=99)],
        "concat_ranks_differ": [_const("v", [1.0], np.float32),
                                helper.make_node("Concat", ["w0", "v"], ["Wx"], axis=0)],
        "add_without_second_input": [helper.make_node("Add", ["w0"], ["Wx"])],
        "constant_of_shape_negative": [_const("s", [1, -16, 3]),
                                       helper.make_node("ConstantOfShape", ["s"], ["Wx"])],
    }
    for name, nodes in cases.items():
        _case(f"onnx_malformed_{name}", f"bad_{name}.onnx",
              "cannot be evaluated|do not fit|negative dims|malformed")(_malformed(nodes, [w]))


_register_malformed()


# --- public -----------------------------------------------------------------------------------


def case_names() -> list[str]:
    return [spec.name for spec in _SPECS]


def build(dest: pathlib.Path, only: set | None = None) -> list[FormatCase]:
    """Build the hostile cases under ``dest`` (created); the controls with :func:`build_good`."""
    dest = pathlib.Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    cases = []
    for spec in _SPECS:
        if only is not None and spec.name not in only:
            continue
        folder = dest / spec.name
        folder.mkdir(exist_ok=True)
        path = folder / spec.filename
        spec.build(folder, path)
        cases.append(FormatCase(spec.name, path, spec.expect, spec.memory, spec.hang,
                                extra=spec.extra))
    return cases


def build_good(dest: pathlib.Path) -> dict[str, pathlib.Path]:
    """The control files, which every command must read (exit 0)."""
    dest = pathlib.Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    for make in GOOD.values():
        make(dest)
    return {name: next(p for p in dest.iterdir() if p.name.startswith(stem))
            for name, stem in (("keras2_h5", "good.h5"), ("keras3_weights", "good.weights"),
                               ("keras_archive", "good.keras"), ("onnx", "good.onnx"),
                               ("onnx_chain_5000", "chain5000"))}


def _main(argv: list) -> int:
    import tempfile

    dest = pathlib.Path(argv[0]) if argv else pathlib.Path(tempfile.mkdtemp(prefix="fmt-corpus-"))
    start = time.perf_counter()
    cases = build(dest)
    seconds = time.perf_counter() - start
    for case in cases:
        info = case.path.stat()
        print(f"{case.name:42} {info.st_size:>14,d} B ({info.st_blocks * 512:>10,d} on disk)"
              f"{'  memory' if case.memory else ''}{'  hang' if case.hang else ''}")
    print(f"{len(cases)} cases in {dest}, built in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
