"""rnngrad reproduces the reference numbers in sample_models/README.md on the exact probes.

Those numbers were measured independently (jacrev of PyTorch's own cells, measure_samples.py).
"""

from __future__ import annotations

import pytest

from rnngrad.bptt import BpttOptions, bptt
from rnngrad.probes import ProbeSpec
from conftest import SAMPLES

PROBES = SAMPLES / "probes"

# file, input width, {recurrence label: {lag: geometric-mean norm}} from sample_models/README.md
REFERENCE = [
    ("elman_vanishing.safetensors", 8, {"rnn L0": {1: 0.4603, 10: 1.159e-06, 100: 4.14e-63}}),
    ("elman_exploding.safetensors", 8, {"rnn L0": {1: 1.123, 10: 2.649, 50: 119.9, 100: 1.407e4}}),
    ("elman_orthogonal.safetensors", 8, {"rnn L0": {1: 0.9993, 10: 0.3511, 100: 5.33e-08}}),
    ("lstm_2layer.pt", 16, {"encoder L0": {1: 0.8472, 10: 0.0147, 100: 5.04e-21},
                            "encoder L1": {1: 0.8322, 10: 0.02666, 100: 7.99e-18}}),
    ("gru_bidirectional.safetensors", 10, {"encoder L0": {1: 0.7479, 10: 0.02685, 100: 5.79e-20},
                                           "encoder L0 rev": {1: 0.7528, 100: 1.27e-22}}),
]


@pytest.mark.parametrize("name,width,expected", REFERENCE, ids=[r[0] for r in REFERENCE])
def test_reference_numbers(name, width, expected):
    probe = PROBES / f"gaussian_seed0_B8_T200_I{width}.npy"
    report = bptt(SAMPLES / name, BpttOptions(lags="1,10,50,100", probe=ProbeSpec(
        inputs=str(probe))))
    by_label = {item.recurrence.label: item for item in report.recurrences}
    for label, lags in expected.items():
        rows = {row.lag: row for row in by_label[label].rows}
        for lag, value in lags.items():
            # the README quotes 3-4 significant digits
            assert rows[lag].norm == pytest.approx(value, rel=6e-4), (label, lag)


def test_sample_verdicts():
    from rnngrad import spectrum

    verdicts = {name: spectrum(SAMPLES / name).recurrences[0].verdict
                for name in ("elman_vanishing.safetensors", "elman_exploding.safetensors",
                             "elman_orthogonal.safetensors", "adding_task_lstm.safetensors")}
    assert verdicts == {"elman_vanishing.safetensors": "vanishing-guaranteed",
                        "elman_exploding.safetensors": "explosion-possible",
                        "elman_orthogonal.safetensors": "explosion-possible",
                        "adding_task_lstm.safetensors": "undetermined"}
