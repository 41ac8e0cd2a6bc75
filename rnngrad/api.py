"""``rnngrad.analyze``: spectrum and measured profile of a model in one call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .analysis import spectrum
from .bptt import BpttOptions, bptt
from .loading import as_bundle
from .probes import ProbeSpec
from .report import BpttReport, SpectrumReport


@dataclass(frozen=True, kw_only=True)
class Analysis:
    """Both reports for one model: ``spectrum`` (what the weights allow) and ``bptt`` (what
    they do on the probe)."""

    spectrum: SpectrumReport
    bptt: BpttReport


def analyze(source: Any, *, lags: str = "1..100", batch: int = 16, steps: int = 100,
            seed: int = 0, input_scale: float = 1.0, activation: str | None = None,
            keys: tuple[str, ...] = ()) -> Analysis:
    """Analyse a path, a state dict or a ``torch.nn.Module`` (nn.RNN/LSTM/GRU or any module
    containing them)."""
    bundle = as_bundle(source)
    probe = ProbeSpec(batch=batch, steps=steps, seed=seed, input_scale=input_scale)
    return Analysis(
        spectrum=spectrum(bundle, keys=keys, activation=activation),
        bptt=bptt(bundle, BpttOptions(lags=lags, probe=probe, keys=keys, activation=activation)))
