"""Lag specifications (docs/contract.md): ``1..100``, ``1..1000:10``, ``1,2,5,10``, ``log:1..1000:20``.

A lag ℓ counts back from the probe's last step T: ∂s_T/∂s_(T−ℓ), ℓ = 1..T. Parts can be joined
with commas (``1..10,50,100``). The result is sorted and unique; a lag past the probe length is
an error, never silently clipped.
"""

from __future__ import annotations

import re

import numpy as np

from rnngrad.errors import OptionError

MAX_LAG = 10_000_000
MAX_COUNT = 100_000  # more log-spaced points than this is never what a user means
# ASCII digits only, at most 9 of them: int() then never sees '²' or a 5000-digit number.
_NUMBER = r"([0-9]{1,9})"
_SINGLE = re.compile(rf"^{_NUMBER}$")
_RANGE = re.compile(rf"^{_NUMBER}\.\.{_NUMBER}(?::{_NUMBER})?$")
_LOG = re.compile(rf"^log:{_NUMBER}\.\.{_NUMBER}:{_NUMBER}$")
_HINT = "write lags as 1..100, 1..1000:10, 1,2,5,10 or log:1..1000:20"


def parse_lags(spec: str, max_lag: int | None = None) -> tuple[int, ...]:
    """The lags named by ``spec``; ``max_lag`` (the probe length T) bounds them."""
    text = "".join(str(spec).split())
    if not text:
        raise OptionError("--lags is empty", _HINT)
    shown = text if len(text) <= 40 else text[:37] + "…"  # never echo a megabyte of input
    lags: set[int] = set()
    for part in _split(text):
        if len(part) > 40:  # no valid part is that long; don't echo it whole
            raise OptionError(f"--lags {shown!r}: cannot read {part[:20] + '…'!r}", _HINT)
        lags.update(_parse_part(part, shown, max_lag))
    result = tuple(sorted(lags))
    if max_lag is not None and result[-1] > max_lag:
        raise OptionError(f"--lags {spec!r} reaches lag {result[-1]}, past the probe length "
                          f"T = {max_lag}", f"use lags up to {max_lag}, or longer probes "
                          "(--steps, or longer --inputs sequences)")
    return result


def _split(text: str) -> list[str]:
    if text.startswith("log:"):
        return [text]
    parts = text.split(",")
    if any(not part for part in parts):
        raise OptionError(f"--lags {text!r} has an empty item", _HINT)
    return parts


def _parse_part(part: str, whole: str, max_lag: int | None) -> list[int]:
    match = _SINGLE.match(part)
    if match:
        return [_checked(int(match[1]), whole, max_lag)]
    match = _RANGE.match(part)
    if match:
        start, stop = int(match[1]), int(match[2])
        step = int(match[3]) if match[3] is not None else 1
        if stop < start or step < 1:
            raise OptionError(f"--lags {whole!r}: {part!r} is an empty range", _HINT)
        _checked(start, whole, max_lag)
        _checked(stop, whole, max_lag)  # bounds first: never build a huge range to refuse it
        return list(range(start, stop + 1, step))
    match = _LOG.match(part)
    if match:
        start, stop, count = int(match[1]), int(match[2]), int(match[3])
        if stop < start or not 1 <= count <= MAX_COUNT:
            raise OptionError(f"--lags {whole!r}: {part!r} is an empty or oversized range",
                              f"{_HINT} (at most {MAX_COUNT} points)")
        _checked(start, whole, max_lag)
        _checked(stop, whole, max_lag)
        points = np.unique(np.rint(np.geomspace(start, stop, count)).astype(np.int64))
        return [int(p) for p in points]
    raise OptionError(f"--lags {whole!r}: cannot read {part!r}", _HINT)


def _checked(lag: int, whole: str, max_lag: int | None) -> int:
    if lag < 1:
        raise OptionError(f"--lags {whole!r}: lag {lag} is not positive",
                          "lags count steps back from the last one and start at 1")
    if lag > MAX_LAG:
        raise OptionError(f"--lags {whole!r}: lag {lag} is beyond any probe",
                          f"lags must be at most {MAX_LAG}")
    if max_lag is not None and lag > max_lag:
        raise OptionError(f"--lags {whole!r} reaches lag {lag}, past the probe length "
                          f"T = {max_lag}", f"use lags up to {max_lag}, or longer probes "
                          "(--steps, or longer --inputs sequences)")
    return lag
