"""Lag specifications (docs/contract.md, "Lags")."""

from __future__ import annotations

import pytest

from rnngrad.errors import OptionError
from rnngrad.probes.lags import parse_lags


@pytest.mark.parametrize("spec,expected", [
    ("1..5", (1, 2, 3, 4, 5)),
    ("1..10:3", (1, 4, 7, 10)),
    ("1,2,5,10", (1, 2, 5, 10)),
    ("10, 2,2", (2, 10)),
    ("1..3,50", (1, 2, 3, 50)),
    ("7", (7,)),
])
def test_valid_specs(spec, expected):
    assert parse_lags(spec, 100) == expected


def test_log_spaced_lags_are_unique_sorted_and_span_the_range():
    lags = parse_lags("log:1..1000:20", 1000)
    assert lags[0] == 1 and lags[-1] == 1000
    assert list(lags) == sorted(set(lags))
    assert 15 <= len(lags) <= 20


@pytest.mark.parametrize("spec", ["", "abc", "0..5", "5..1", "1..", "1..10:0", "-3", "1,,2",
                                  "log:1..10:0", "1e3", "1.5", "log:5..1:3"])
def test_malformed_specs_are_refused(spec):
    with pytest.raises(OptionError):
        parse_lags(spec, 100)


def test_a_lag_past_the_probe_is_an_error_not_a_clip():
    with pytest.raises(OptionError, match="past the probe length T = 50"):
        parse_lags("1..100", 50)
