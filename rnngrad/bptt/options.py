"""What ``bptt`` can be asked, with its defaults: the one place they are written.

The command line, ``[tool.rnngrad]``, :func:`rnngrad.analyze`, :func:`rnngrad.check` and
:func:`rnngrad.testing.assert_healthy` all take their defaults from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from rnngrad.conventions.options import ReadOptions
from rnngrad.errors import OptionError
from rnngrad.probes.spec import ProbeSpec, with_probe_settings

STATES = ("all", "h", "c")
DTYPES = ("float64", "float32")
LOSSES = ("readout", "mse", "ce")
CLIP_RULES = ("auto", "pascanu", "autoclip", "horizon")


@dataclass(frozen=True, kw_only=True)
class BpttOptions(ReadOptions):
    """Everything ``bptt`` can be asked.

    ``lags``: a lag spec (``1..100``, ``1..1000:10``, ``1,2,5,10``, ``log:1..1000:20``);
    ``probe``: the probe sequences; ``state``: for an LSTM the whole state [h; c] (``all``)
    or its ``h`` or ``c`` block; ``vanish_below`` / ``explode_above``: the measured verdict's
    thresholds on the per-lag norm (at the largest lag / at any lag); ``loss``: the probe loss
    for gradients and clipping (``readout``: a random unit readout of the top output; ``mse``,
    ``ce``: through the file's linear head, with ``targets`` or seeded random targets);
    ``clip_rule``: how the clip threshold is chosen (:mod:`rnngrad.bptt.clipping`; ``auto``:
    Pascanu's average while nothing explodes, the healthy-horizon gradient once something
    does); ``modules``: analyse only these modules; ``dtype``, ``device``: where and in which
    precision the analysis runs; ``max_memory`` (:class:`ReadOptions`): GiB it may need,
    estimated before the probe is made. ``profile_only``: the per-lag norms and verdicts
    alone, without directions, gradient shares and the clip recommendation (what a training
    monitor needs, at a fraction of the cost).
    """

    lags: str = "1..100"
    probe: ProbeSpec = field(default_factory=ProbeSpec)
    state: str = "all"
    vanish_below: float = 1e-4
    explode_above: float = 1e4
    loss: str = "readout"
    targets: str | None = None
    clip_rule: str = "auto"
    modules: tuple[str, ...] = ()
    dtype: str = "float64"
    device: str = "cpu"
    profile_only: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "modules", tuple(self.modules))
        check_choice("--state", self.state, STATES)
        check_choice("--dtype", self.dtype, DTYPES)
        check_choice("--loss", self.loss, LOSSES)
        check_choice("--clip-rule", self.clip_rule, CLIP_RULES)
        if not _positive(self.vanish_below) or not _positive(self.explode_above) or not (
                self.vanish_below < self.explode_above):
            raise OptionError(f"thresholds --vanish-below {self.vanish_below} and --explode-above "
                              f"{self.explode_above} must satisfy 0 < vanish < explode",
                              "e.g. --vanish-below 1e-4 --explode-above 1e4")


def check_choice(option: str, value: str, allowed: tuple[str, ...]) -> None:
    """An OptionError naming the option and the choices when ``value`` is not one of them."""
    if value not in allowed:
        raise OptionError(f"{option} {value!r} is not known", f"use one of: {', '.join(allowed)}")


def _positive(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


def bptt_options(options: BpttOptions | None, settings: dict[str, Any]) -> BpttOptions:
    """``options`` with keyword ``settings`` applied: :class:`BpttOptions` fields, and
    :class:`~rnngrad.probes.spec.ProbeSpec` fields for the probe (``batch=4``)."""
    return with_probe_settings(BpttOptions, options, settings)
