"""What ``lyapunov`` can be asked, with its defaults: the one place they are written.

Torch- and NumPy-free: the command line imports it to show the defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from rnngrad.conventions.options import ReadOptions
from rnngrad.errors import OptionError
from rnngrad.probes.spec import ProbeSpec, with_probe_settings

DTYPES = ("float64", "float32")
# A long probe: the exponents are time averages along the trajectory, whose standard error
# falls like 1/√steps; the burn-in lets the state forget s_0 = 0 and the orthonormal frame
# turn into the leading directions before anything is averaged.
DEFAULT_PROBE = ProbeSpec(batch=8, steps=3000, burn_in=1000)
# ε of the verdict, in nats per step: within ±0.01 a gradient changes by at most a factor e
# over 100 steps, the length of bptt's default window.
DEFAULT_EDGE = 0.01


@dataclass(frozen=True, kw_only=True)
class LyapunovOptions(ReadOptions):
    """Everything ``lyapunov`` can be asked.

    ``k``: how many exponents per recurrence (the top k; all of them when the state is
    smaller); ``probe``: the probe sequences (``burn_in`` steps are run before the
    ``steps`` averaged; for file probes the first ``burn_in`` steps of the file's own
    sequences); ``edge``: ε of the verdict in nats per step (``chaotic`` above ε,
    ``stable`` below −ε, ``edge-of-chaos`` between); ``blocks``: how many blocks the window
    is cut into for the standard error (batch means); ``bptt_lags``: also run ``bptt`` with
    these lags on the same trajectory and compare its per-step rate at the largest lag with
    e^{λ_1}; ``modules``: analyse only these modules; ``dtype``, ``device``: where and in
    which precision the analysis runs; ``max_memory``: GiB it may need before it is refused.
    """

    k: int = 10
    probe: ProbeSpec = field(default_factory=lambda: DEFAULT_PROBE)
    edge: float = DEFAULT_EDGE
    blocks: int = 20
    bptt_lags: str | None = None
    modules: tuple[str, ...] = ()
    dtype: str = "float64"
    device: str = "cpu"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "modules", tuple(self.modules))
        # a probe that leaves its window open gets lyapunov's long one, not bptt's
        object.__setattr__(self, "probe", replace(
            self.probe, steps=DEFAULT_PROBE.steps if self.probe.steps is None else self.probe.steps,
            burn_in=DEFAULT_PROBE.burn_in if self.probe.burn_in is None else self.probe.burn_in))
        if not _integer(self.k) or self.k < 1:
            raise OptionError(f"--k {self.k!r} must be an integer ≥ 1",
                              "ask for the top exponents, e.g. --k 10")
        if not _integer(self.blocks) or self.blocks < 2:
            raise OptionError(f"--blocks {self.blocks!r} must be an integer ≥ 2",
                              "the standard error needs at least two blocks, e.g. --blocks 20")
        if (isinstance(self.edge, bool) or not isinstance(self.edge, (int, float))
                or not math.isfinite(self.edge) or self.edge <= 0):
            raise OptionError(f"--edge {self.edge!r} must be a positive number (nats per step)",
                              f"e.g. --edge {DEFAULT_EDGE:g}")
        if self.dtype not in DTYPES:
            raise OptionError(f"--dtype {self.dtype!r} is not known",
                              f"use one of: {', '.join(DTYPES)}")


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def lyapunov_options(options: LyapunovOptions | None, settings: dict[str, Any]) -> LyapunovOptions:
    """``options`` with keyword ``settings`` applied: :class:`LyapunovOptions` fields, and
    :class:`~rnngrad.probes.spec.ProbeSpec` fields for the probe (``steps=5000``)."""
    return with_probe_settings(LyapunovOptions, options, settings)
