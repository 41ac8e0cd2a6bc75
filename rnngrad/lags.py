"""Lag specifications (CONTRACT.md): ``1..100``, ``1..1000:10``, ``1,2,5,10``, ``log:1..1000:20``.

A lag ℓ counts back from the probe's last step T: ∂s_T/∂s_(T−ℓ), ℓ = 1..T. Parts can be joined
with commas (``1..10,50,100``). The result is sorted and unique; a lag past the probe length is
an error, never silently clipped.
"""

from __future__ import annotations

import re

import numpy as np

from .errors import OptionError

MAX_LAG = 10_000_000
_RANGE = re.compile(r"^(\d+)\.\.(\d+)(?::(\d+))?$")
_LOG = re.compile(r"^log:(\d+)\.\.(\d+):(\d+)$")
_HINT = "write lags as 1..100, 1..1000:10, 1,2,5,10 or log:1..1000:20"


def parse_lags(spec: str, max_lag: int | None = None) -> tuple[int, ...]:
    """The lags named by ``spec``; ``max_lag`` (the probe length T) bounds them."""
    text = "".join(str(spec).split())
    if not text:
        raise OptionError("--lags is empty", _HINT)
    lags: set[int] = set()
    for part in _split(text):
        lags.update(_parse_part(part, text))
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


def _parse_part(part: str, whole: str) -> list[int]:
    if part.isdigit():
        return [_checked(int(part), whole)]
    match = _RANGE.match(part)
    if match:
        start, stop, step = (_checked(int(match[1]), whole), _checked(int(match[2]), whole),
                             int(match[3]) if match[3] is not None else 1)
        if stop < start or step < 1:
            raise OptionError(f"--lags {whole!r}: {part!r} is an empty range", _HINT)
        return list(range(start, stop + 1, step))
    match = _LOG.match(part)
    if match:
        start, stop, count = (_checked(int(match[1]), whole), _checked(int(match[2]), whole),
                              int(match[3]))
        if stop < start or count < 1:
            raise OptionError(f"--lags {whole!r}: {part!r} is an empty range", _HINT)
        points = np.unique(np.rint(np.geomspace(start, stop, count)).astype(np.int64))
        return [int(p) for p in points]
    raise OptionError(f"--lags {whole!r}: cannot read {part!r}", _HINT)


def _checked(lag: int, whole: str) -> int:
    if lag < 1:
        raise OptionError(f"--lags {whole!r}: lag {lag} is not positive",
                          "lags count steps back from the last one and start at 1")
    if lag > MAX_LAG:
        raise OptionError(f"--lags {whole!r}: lag {lag} is beyond any probe",
                          f"lags must be at most {MAX_LAG}")
    return lag
