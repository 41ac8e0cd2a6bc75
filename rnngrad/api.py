"""``rnngrad.analyze``: the spectrum and the measured profile of a model in one call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rnngrad.bptt.analysis import bptt
from rnngrad.bptt.options import BpttOptions, bptt_options
from rnngrad.bptt.report import BpttReport
from rnngrad.io import as_bundle
from rnngrad.spectrum.analysis import spectrum
from rnngrad.spectrum.options import SpectrumOptions
from rnngrad.spectrum.report import SpectrumReport


@dataclass(frozen=True, kw_only=True)
class Analysis:
    """Both reports for one model: ``spectrum`` (what the weights allow) and ``bptt`` (what
    they do on the probe)."""

    spectrum: SpectrumReport
    bptt: BpttReport


def analyze(source: Any, options: BpttOptions | None = None, **settings: Any) -> Analysis:
    """Analyse a path, a state dict or a ``torch.nn.Module`` (nn.RNN/LSTM/GRU or any module
    containing them) with the same defaults as ``rnngrad spectrum`` and ``rnngrad bptt``.

    ``settings`` are :class:`~rnngrad.bptt.options.BpttOptions` fields
    (``analyze(model, lags="1..50")``); the spectrum uses their reading options.
    """
    options = bptt_options(options, settings)
    bundle = as_bundle(source)
    return Analysis(spectrum=spectrum(bundle, SpectrumOptions(**vars(options.read_options()))),
                    bptt=bptt(bundle, options))
