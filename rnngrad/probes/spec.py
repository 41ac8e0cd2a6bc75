"""How to make the probe sequences an analysis runs on (docs/contract.md "Probes").

Torch- and NumPy-free: the command line imports it to show defaults. The sequences themselves
are made by :func:`rnngrad.probes.sequences.make_probe`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

from rnngrad.conventions.options import with_settings
from rnngrad.errors import ProbeError
from rnngrad.report import Record

O = TypeVar("O")

DEFAULT_BURN_IN = 50
# A probe of at least this many analysed steps stands for a long-running sequence, where a
# burn-in lets the state leave zero first; a shorter probe is a whole sequence from the zero
# state, as a model trained on short sequences (28 steps for MNIST rows) sees it.
LONG_PROBE = 100
# No probe needs more sequences or steps than this; a larger number is a typo that would ask
# for terabytes before any memory estimate could run.
MAX_BATCH = 1_000_000
MAX_STEPS = 10_000_000


@dataclass(frozen=True, kw_only=True)
class ProbeSpec:
    """The probe: seeded Gaussian inputs, a file of sequences, or token ids.

    - ``inputs``: a ``.npy`` file with the exact sequences, (B, T, I) or (T, I);
    - ``tokens``: random token ids looked up in the file's embedding table, or
      ``tokens_file``, a ``.npy`` of token ids (B, T) or (T,);
    - otherwise Gaussian inputs N(0, ``input_scale``²) of shape (``batch``,
      ``burn_in`` + ``steps``, I) drawn with ``seed``.

    Generated probes run ``burn_in`` steps before the analysed window of ``steps`` steps; lags
    reach back at most ``steps``. By default (None) ``steps`` is the largest lag asked for, and
    ``burn_in`` is 50 for a window of 100 steps or more (a long-running sequence: the state
    leaves zero first) and 0 for a shorter one (a whole short sequence from the zero state, as
    the model saw it in training): :meth:`window`. File probes have no burn-in: lags reach back
    to their first step.

    ``initial_state``: the state s_0 every probe starts from: None (zero, the default), a
    number (every entry of every recurrence's s_0), or a ``.npy`` file
    (:func:`rnngrad.probes.initial.initial_states` says which shapes). A number is kept as
    its text (``"0.5"``), so that the options round-trip through JSON.
    """

    inputs: str | None = None
    tokens: bool = False
    tokens_file: str | None = None
    batch: int = 16
    steps: int | None = None
    burn_in: int | None = None
    seed: int = 0
    input_scale: float = 1.0
    initial_state: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "initial_state", _initial_text(self.initial_state))
        problems = [
            (self.inputs is not None and (self.tokens or self.tokens_file is not None),
             "--inputs and --tokens/--tokens-file are two different probes; give one"),
            (not _integer(self.batch) or not 1 <= self.batch <= MAX_BATCH,
             f"--batch {self.batch!r} must be an integer from 1 to {MAX_BATCH:,}"),
            (self.steps is not None and (not _integer(self.steps)
                                         or not 1 <= self.steps <= MAX_STEPS),
             f"--steps {self.steps!r} must be an integer from 1 to {MAX_STEPS:,}"),
            (self.burn_in is not None and (not _integer(self.burn_in)
                                           or not 0 <= self.burn_in <= MAX_STEPS),
             f"--burn-in {self.burn_in!r} must be an integer from 0 to {MAX_STEPS:,}"),
            (not _integer(self.seed) or self.seed < 0,
             f"--seed {self.seed!r} must be an integer ≥ 0"),
            (not isinstance(self.input_scale, (int, float)) or isinstance(self.input_scale, bool)
             or not math.isfinite(self.input_scale) or self.input_scale < 0,
             f"--input-scale {self.input_scale!r} must be a finite number ≥ 0"),
        ]
        for bad, message in problems:
            if bad:
                raise ProbeError(message, "see `rnngrad bptt --help`")

    def window(self, largest_lag: int) -> tuple[int, int]:
        """(steps, burn_in) of a generated probe for lags up to ``largest_lag``."""
        steps = self.steps if self.steps is not None else largest_lag
        burn_in = self.burn_in if self.burn_in is not None else (
            DEFAULT_BURN_IN if steps >= LONG_PROBE else 0)
        return steps, burn_in

    @property
    def kind(self) -> str:
        """``"file"``, ``"tokens"`` or ``"gaussian"``."""
        if self.inputs is not None:
            return "file"
        return "tokens" if self.tokens or self.tokens_file is not None else "gaussian"

    @property
    def path(self) -> str | None:
        """The file the probe comes from, if any."""
        return self.inputs if self.inputs is not None else self.tokens_file

    @property
    def initial_value(self) -> float | None:
        """s_0 as one number for every entry, when ``initial_state`` is a number."""
        return _number(self.initial_state)

    @property
    def initial_path(self) -> str | None:
        """The ``.npy`` file s_0 comes from, when ``initial_state`` names one."""
        state = self.initial_state
        return state if state is not None and _number(state) is None else None


@dataclass(frozen=True, kw_only=True)
class ProbeEcho(Record):
    """The probe an analysis really ran on, so that a run can be reproduced.

    ``shape`` is (B, T, I) of the input sequences fed to the first layer (burn-in included);
    ``batch`` = B, ``steps`` = the analysed window (the longest lag possible, ``max_lag``),
    ``burn_in`` the steps before it (0 for file probes). ``seed`` drew the Gaussian inputs or
    token ids, the random readout and random targets; ``input_scale`` is the Gaussian inputs'
    standard deviation (None for other probes); ``path`` the file for file probes;
    ``initial_state`` the starting state s_0: None for zero, else the number or ``.npy`` file
    it came from (:class:`ProbeSpec`).
    """

    kind: str
    batch: int
    steps: int
    seed: int
    input_scale: float | None
    burn_in: int
    path: str | None
    shape: tuple[int, int, int]
    max_lag: int
    initial_state: str | None = None


def _initial_text(value: object) -> str | None:
    """``initial_state`` as stored: None, a finite number as text, or a file name."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = repr(float(value))
    if not isinstance(value, str) or not value.strip():
        raise ProbeError(f"--initial-state {value!r} is neither a number nor a .npy file",
                         "give a number (every entry of s_0) or FILE.npy")
    number = _number(value)
    if number is not None:
        return repr(number)
    if value.strip().lower() in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity"):
        raise ProbeError(f"--initial-state {value}: s_0 must be finite",
                         "give a finite number or FILE.npy")
    return value


def _number(text: str | None) -> float | None:
    """The finite number ``text`` spells, else None."""
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def with_probe_settings(kind: type[O], options: O | None, settings: dict[str, Any]) -> O:
    """``options`` (or the defaults of ``kind``, an options class with a ``probe`` field) with
    keyword ``settings`` applied: its own fields, and :class:`ProbeSpec` fields for the probe
    (``rnngrad.bptt(path, batch=4)``)."""
    base = options if options is not None else kind()
    probe_names = {spec.name for spec in fields(ProbeSpec)}
    probe = {name: value for name, value in settings.items() if name in probe_names}
    rest = {name: value for name, value in settings.items() if name not in probe_names}
    if probe:
        current = rest.get("probe", base.probe)  # type: ignore[attr-defined]
        rest["probe"] = replace(current, **probe)
    return with_settings(kind, base, rest)
