"""``[tool.rnngrad]`` configuration: keys, defaults, per-model overrides.

The keys are not listed here: they are the fields of the options dataclasses, written with
dashes exactly like the command-line options (``explode-above = 1e3``):

- the gate's own settings, :class:`CheckConfig` (thresholds, baseline tolerances, ``models``,
  ``baseline``);
- every field of :class:`~rnngrad.bptt.options.BpttOptions` but the verdict thresholds (which
  the gate's thresholds set) and ``probe``, and every field of
  :class:`~rnngrad.probes.spec.ProbeSpec` (``batch``, ``steps``, ``inputs``, ...).

The nearest ``pyproject.toml`` from the working directory up is read (or ``--config FILE``:
a pyproject with a ``[tool.rnngrad]`` table, or a TOML file whose top level holds the keys).
Command-line values override the file; ``[[tool.rnngrad.overrides]]`` tables with a glob
``path`` override keys for the models they match (the last match wins). The same flat keys,
with underscores, are the keyword settings of :func:`rnngrad.check`.
"""

from __future__ import annotations

import fnmatch
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rnngrad.bptt.options import BpttOptions
from rnngrad.errors import OptionError
from rnngrad.probes.spec import ProbeSpec

MAX_CONFIG_BYTES = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class CheckConfig:
    """The gate's settings for one model.

    Thresholds (None = off): ``explode_above`` fails when the per-lag norm exceeds it at any
    checked lag; ``vanish_below`` when the norm at the largest checked lag is below it;
    ``max_spectral_radius`` when ρ exceeds it (W_hh for Elman cells, the rest-state Jacobian
    for gated cells); ``max_bound`` when γ·σ_max exceeds it; ``max_lyapunov`` /
    ``min_lyapunov`` when the largest Lyapunov exponent λ_1 (nats per step, ``rnngrad
    lyapunov`` with its default probe) is above / below it. Baseline tolerances:
    ``radius_tolerance`` (relative rise of ρ), ``norm_drop`` and ``norm_rise`` (factors of the
    last-lag and the largest norm). ``baseline``: a baseline file to compare with; ``models``:
    the models checked when none are named. ``bptt``: how each model is measured.
    ``jobs``: models measured at once, each in its own process (None: one per core; 1: one
    after another in this process; :mod:`rnngrad.gate.parallel`).
    """

    explode_above: float | None = None
    vanish_below: float | None = None
    max_spectral_radius: float | None = None
    max_bound: float | None = None
    max_lyapunov: float | None = None
    min_lyapunov: float | None = None
    radius_tolerance: float = 0.05
    norm_drop: float = 10.0
    norm_rise: float = 10.0
    baseline: str | None = None
    models: tuple[str, ...] = ()
    jobs: int | None = None
    bptt: BpttOptions = field(default_factory=BpttOptions, metadata={"config": "nested"})

    def thresholds(self) -> dict[str, float]:
        """The absolute thresholds that are switched on, by their config names."""
        return {key(name): getattr(self, name) for name in THRESHOLDS
                if getattr(self, name) is not None}

    def __post_init__(self) -> None:
        for name in THRESHOLDS + ("radius_tolerance", "norm_drop", "norm_rise"):
            value = getattr(self, name)
            if value is None:
                continue
            if not _number(value) or value != value or value in (float("inf"), float("-inf")):
                raise OptionError(f"{key(name)} = {value!r} must be a finite number",
                                  "see the README's configuration section")
        for name in ("norm_drop", "norm_rise"):
            if getattr(self, name) <= 1:
                raise OptionError(f"{key(name)} = {getattr(self, name)!r} must be more than 1 "
                                  "(a factor)", f"e.g. {key(name)} = 10")
        if self.jobs is not None and (not isinstance(self.jobs, int) or isinstance(self.jobs, bool)
                                      or self.jobs < 1):
            raise OptionError(f"jobs = {self.jobs!r} must be a whole number of processes, at "
                              "least 1", "e.g. jobs = 2 (or leave it out: one per core)")
        if self.radius_tolerance < 0:
            raise OptionError(f"radius-tolerance = {self.radius_tolerance!r} must be ≥ 0",
                              "e.g. radius-tolerance = 0.05")
        for name in ("explode_above", "vanish_below"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise OptionError(f"{key(name)} = {value!r} must be positive",
                                  f"e.g. {key(name)} = {getattr(BpttOptions(), name):g}")


THRESHOLDS = ("explode_above", "vanish_below", "max_spectral_radius", "max_bound",
              "max_lyapunov", "min_lyapunov")
# Thresholds on λ_1: `check` runs the lyapunov analysis only when one of them is set.
LYAPUNOV_THRESHOLDS = ("max_lyapunov", "min_lyapunov")
# BpttOptions fields the gate sets itself: the verdict thresholds follow the gate's.
_GATE_OWNED = {"explode_above", "vanish_below", "probe"}


def key(name: str) -> str:
    """A field's name as a config key and command-line option: dashes for underscores."""
    return name.replace("_", "-")


def _owners() -> dict[str, tuple[type, str]]:
    """Every config key -> (the dataclass whose field it is, the field's name)."""
    owners: dict[str, tuple[type, str]] = {}
    for cls, skip in ((ProbeSpec, set()), (BpttOptions, _GATE_OWNED), (CheckConfig, {"bptt"})):
        for spec in fields(cls):
            if spec.name not in skip:
                owners[key(spec.name)] = (cls, spec.name)
    return owners


KEYS: dict[str, tuple[type, str]] = _owners()


def config_from_values(values: dict[str, Any], where: str = "settings",
                       noun: str = "key") -> CheckConfig:
    """A :class:`CheckConfig` from flat keys (dashes or underscores), checked and typed;
    ``where`` and ``noun`` name them in errors (a file's key, an API's setting)."""
    grouped: dict[type, dict[str, Any]] = {ProbeSpec: {}, BpttOptions: {}, CheckConfig: {}}
    for name, value in values.items():
        owner = KEYS.get(key(name))
        if owner is None:
            raise OptionError(f"{where}: unknown {noun} {key(name)!r}",
                              f"valid keys: {', '.join(sorted(KEYS))}")
        cls, attr = owner
        grouped[cls][attr] = _typed(cls, attr, value, where)
    gate = grouped[CheckConfig]
    probe = ProbeSpec(**grouped[ProbeSpec])
    explode, vanish = verdict_thresholds(gate.get("explode_above"), gate.get("vanish_below"))
    options = BpttOptions(probe=probe, explode_above=explode, vanish_below=vanish,
                          **grouped[BpttOptions])
    return CheckConfig(bptt=options, **gate)


def verdict_thresholds(explode: float | None, vanish: float | None) -> tuple[float, float]:
    """The measured verdict's thresholds: the gate's when set, else bptt's defaults (moved
    apart when only one is set, so that vanish < explode)."""
    defaults = BpttOptions()
    explode_value = explode if explode is not None else max(defaults.explode_above,
                                                            (vanish or 0) * 10)
    vanish_value = vanish if vanish is not None else min(defaults.vanish_below,
                                                         explode_value / 10)
    return explode_value, vanish_value


def _typed(cls: type, attr: str, value: Any, where: str) -> Any:
    """``value`` checked against the field's type (TOML has ints, floats, strings, lists)."""
    hint = typing.get_type_hints(cls)[attr]
    options = [arg for arg in (typing.get_args(hint) if typing.get_origin(hint) in (
        typing.Union, types.UnionType) else (hint,)) if arg is not type(None)]
    target = options[0]
    if value is None and len(options) < len(typing.get_args(hint) or (hint,)):
        return None
    if typing.get_origin(target) is tuple:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
    elif target is float and _number(value):
        return float(value)
    elif target is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    elif target in (str, bool) and isinstance(value, target):
        return value
    wanted = {float: "a number", int: "an integer", str: "a string", bool: "true or false"}.get(
        target, "a list of strings")
    raise OptionError(f"{where}: {key(attr)} = {value!r} must be {wanted}",
                      "see the README's configuration section")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True, kw_only=True)
class LoadedConfig:
    """The file's settings, its per-model overrides, and where it came from."""

    base: dict[str, Any]
    overrides: tuple[tuple[str, dict[str, Any]], ...]
    source: str | None
    root: Path

    def for_model(self, model: str, cli: dict[str, Any]) -> CheckConfig:
        """Settings for one model: file, then matching overrides, then the command line."""
        values = dict(self.base)
        for pattern, table in self.overrides:
            if _matches(model, pattern, self.root):
                values.update(table)
        values.update({name: value for name, value in cli.items() if value is not None})
        return config_from_values(values, self.source or "the command line")


def _matches(model: str, pattern: str, root: Path) -> bool:
    path = Path(model)
    candidates = {str(path), path.name, path.as_posix()}
    try:
        candidates.add(path.resolve().relative_to(root.resolve()).as_posix())
    except (ValueError, OSError):
        pass
    return any(fnmatch.fnmatch(candidate, pattern) for candidate in candidates)


def find_pyproject(start: Path) -> Path | None:
    """The nearest ``pyproject.toml`` in ``start`` or a folder above it, or None. It need not
    have a ``[tool.rnngrad]`` table: the search stops at the first one found."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


OVERRIDES = "overrides"


def load_config(config: Path | None = None, start: Path | None = None) -> LoadedConfig:
    """Read ``--config FILE`` or the nearest pyproject.toml; validate every key."""
    path = config if config is not None else find_pyproject(start or Path.cwd())
    if path is None:
        return LoadedConfig(base={}, overrides=(), source=None, root=start or Path.cwd())
    table = _read_table(path, explicit=config is not None)
    overrides = table.pop(OVERRIDES, [])
    where = f"{path} [tool.rnngrad]"
    config_from_values(table, where)
    if not isinstance(overrides, list) or not all(isinstance(o, dict) for o in overrides):
        raise OptionError(f"{path}: {OVERRIDES} must be a list of tables ([[tool.rnngrad."
                          f"{OVERRIDES}]])", "give each table a glob `path` and its keys")
    parsed = []
    for index, override in enumerate(overrides):
        override = dict(override)
        pattern = override.pop("path", None)
        if not isinstance(pattern, str):
            raise OptionError(f"{path}: [[tool.rnngrad.{OVERRIDES}]] number {index + 1} has no "
                              "`path` glob", 'add e.g. path = "checkpoints/*.pt"')
        config_from_values({**table, **override},
                           f"{path} [[tool.rnngrad.{OVERRIDES}]] path={pattern!r}")
        parsed.append((pattern, override))
    return LoadedConfig(base=table, overrides=tuple(parsed), source=str(path),
                        root=path.parent)


def _read_table(path: Path, *, explicit: bool) -> dict[str, Any]:
    from rnngrad.io.textfiles import read_text

    try:
        data = tomllib.loads(read_text(path, "--config", MAX_CONFIG_BYTES))
    except tomllib.TOMLDecodeError as exc:
        raise OptionError(f"{path}: invalid TOML ({exc})", "fix the syntax") from None
    except RecursionError:
        raise OptionError(f"{path}: TOML nested too deeply", "fix the file") from None
    tool = data.get("tool", {})
    if isinstance(tool, dict) and "rnngrad" in tool:
        if not isinstance(tool["rnngrad"], dict):
            raise OptionError(f"{path}: [tool.rnngrad] must be a table", "see the README")
        return dict(tool["rnngrad"])
    if explicit and "tool" not in data:
        return dict(data)
    return {}


def config_keys() -> tuple[str, ...]:
    """Every key ``[tool.rnngrad]`` accepts (besides ``overrides``), sorted."""
    return tuple(sorted(KEYS))


__all__ = ["CheckConfig", "KEYS", "LoadedConfig", "config_from_values", "config_keys",
           "load_config", "verdict_thresholds"]
