"""What an analysis runs the model on: probe sequences, the lags it looks at, the losses.

What lives here: :class:`ProbeSpec` (how to make a probe; torch- and NumPy-free) and the
echo of the probe really used (:mod:`.spec`), making the sequences (:mod:`.sequences`), lag
specs (:mod:`.lags`), and the layers around a recurrence that probes and losses use, an input
embedding and a linear head (:mod:`.heads`).

What it may import: :mod:`rnngrad.io`, :mod:`rnngrad.cells`, :mod:`rnngrad.conventions`
(options), :mod:`rnngrad.report`, NumPy, torch (in :mod:`.heads` only).
"""

from __future__ import annotations

from rnngrad._lazy import lazy_names
from rnngrad.probes.spec import ProbeEcho, ProbeSpec

__getattr__, __dir__ = lazy_names(__name__, {
    "Probe": "rnngrad.probes.sequences", "make_probe": "rnngrad.probes.sequences",
    "parse_lags": "rnngrad.probes.lags",
})

__all__ = ["Probe", "ProbeEcho", "ProbeSpec", "make_probe", "parse_lags"]
