"""Property-based fuzzing of the Keras and ONNX readers (in-process), as :mod:`test_fuzz` does
for the others and with its checker: every mutated file through ``rnngrad.load`` and
``rnngrad.spectrum`` must give a result or an ``RnngradError`` (nothing else escapes), within a
time limit, and leave the file unchanged.

Bases: a Keras 2 ``save_weights`` HDF5 file, a Keras 3 ``.weights.h5``, a ``.keras`` archive
and an ONNX model (:mod:`corpus_formats`). Mutations: :mod:`test_fuzz`'s byte mutations (flips,
sets, cuts, inserts, duplications, splices with its other bases), and for ONNX also the
protobuf's fields (dims, data types, attributes, names,
external-data entries, node types) re-serialised, so the parser accepts what the reader gets.

Derandomized, no example database; ``RNNGRAD_FUZZ_EXAMPLES`` sets the examples per test
(default here 40: the four byte targets and the protobuf target take ~15 s on a quiet machine).
"""

from __future__ import annotations

import io
import os
import pathlib
import shutil
import sys
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import corpus_formats as cf  # noqa: E402
import test_fuzz  # noqa: E402
from test_fuzz import check_file  # noqa: E402

pytest.importorskip("h5py")
onnx = pytest.importorskip("onnx")

EXAMPLES = int(os.environ.get("RNNGRAD_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                print_blob=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _bytes_of(write) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "base"
        write(path)
        return path.read_bytes()


def _archive_bytes() -> bytes:
    return _bytes_of(lambda path: cf.keras_archive(path))


BASES = {
    "keras2_h5": (_bytes_of(lambda path: cf.keras2_file(path)), ".h5"),
    "keras3_weights": (_bytes_of(lambda path: cf.keras3_weights(path)), ".weights.h5"),
    "keras_archive": (_archive_bytes(), ".keras"),
    "onnx": (cf.onnx_model().SerializeToString(), ".onnx"),
}


@pytest.fixture(scope="module", autouse=True)
def _workdir():
    """test_fuzz's scratch folder (its own module removes it when it is done with it)."""
    test_fuzz._WORKDIR.mkdir(parents=True, exist_ok=True)
    yield
    shutil.rmtree(test_fuzz._WORKDIR, ignore_errors=True)


# test_fuzz's byte mutations, on these bases too (whole files as one region each)
test_fuzz.BASES.update(BASES)
test_fuzz.REGIONS.update({key: [(0, len(data))] for key, (data, _) in BASES.items()})


@pytest.mark.parametrize("key", sorted(BASES))
def test_valid_bases_are_read(key, tmp_path):
    """Control: the unmutated bases are read and analysed."""
    import rnngrad

    data, suffix = BASES[key]
    path = tmp_path / f"base{suffix}"
    path.write_bytes(data)
    assert rnngrad.spectrum(path).recurrences


@FUZZ
@given(data=st.data())
@pytest.mark.parametrize("key", ["keras2_h5", "keras3_weights", "keras_archive", "onnx"])
def test_fuzz_bytes(key, data):
    check_file(data.draw(test_fuzz.byte_mutations(key)), BASES[key][1])


_BIG = st.sampled_from([0, 1, -1, 2, 7, 2**31 - 1, 2**31, 2**40, 2**62, -(2**62)])


@st.composite
def onnx_field_mutations(draw) -> bytes:
    """The ONNX base with 1-3 of its protobuf fields changed, serialised again."""
    from onnx import TensorProto

    model = onnx.ModelProto()
    model.ParseFromString(BASES["onnx"][0])
    graph = model.graph
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["dims", "data_type", "raw_data", "external", "attribute",
                                   "op_type", "input", "initializer_name", "opset"]))
        init = draw(st.sampled_from(list(graph.initializer)))
        node = graph.node[-1]
        if op == "dims" and init.dims:
            init.dims[draw(st.integers(0, len(init.dims) - 1))] = draw(_BIG)
        elif op == "data_type":
            init.data_type = draw(st.sampled_from([0, 2, 7, 8, 9, 10, 11, 16, 17, 23, 99]))
        elif op == "raw_data":
            cut = draw(st.integers(0, len(init.raw_data)))
            init.raw_data = init.raw_data[:cut] + draw(st.binary(max_size=16))
        elif op == "external":
            init.data_location = TensorProto.EXTERNAL
            for key in draw(st.lists(st.sampled_from(["location", "offset", "length"]),
                                     max_size=3)):
                entry = init.external_data.add()
                entry.key = key
                entry.value = draw(st.sampled_from(["w.bin", "../x", "/etc/passwd", "-1", "0",
                                                    "9" * 30, "a\x00b", ""]))
        elif op == "attribute":
            for attribute in node.attribute:
                if attribute.name == "hidden_size":
                    attribute.i = draw(_BIG)
        elif op == "op_type":
            node.op_type = draw(st.sampled_from(["GRU", "RNN", "LSTM", "Identity", "Loop"]))
        elif op == "input":
            node.input[draw(st.integers(0, len(node.input) - 1))] = draw(
                st.sampled_from(["", "W", "R", "Y", "X", "nope"]))
        elif op == "initializer_name":
            init.name = draw(st.sampled_from(["W", "R", "Y", "", "X"]))
        elif op == "opset":
            model.opset_import[0].version = draw(st.sampled_from([1, 7, 14, 22, 10**6]))
    return model.SerializeToString()


@FUZZ
@given(data=onnx_field_mutations())
def test_fuzz_onnx_fields(data):
    check_file(data, ".onnx")


def test_archive_base_is_a_zip():
    import zipfile

    with zipfile.ZipFile(io.BytesIO(BASES["keras_archive"][0])) as archive:
        assert set(archive.namelist()) == {"config.json", "metadata.json", "model.weights.h5"}
