"""``[tool.rnngrad]`` configuration for ``rnngrad check``: keys, defaults, per-model overrides.

The nearest ``pyproject.toml`` from the working directory up is read (or ``--config FILE``:
a pyproject with a ``[tool.rnngrad]`` table, or a TOML file whose top level holds the keys).
Command-line values override the file; ``[[tool.rnngrad.overrides]]`` tables with a glob
``path`` override keys for the models they match (the last match wins). Keys are written
with dashes, exactly like the command-line options (``explode-above = 1e3``).
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .errors import OptionError


@dataclass(frozen=True, kw_only=True)
class CheckConfig:
    """Thresholds (None = off), probe settings and baseline tolerances of ``rnngrad check``."""

    lags: str = "1..100"
    explode_above: float | None = None
    vanish_below: float | None = None
    max_spectral_radius: float | None = None
    max_bound: float | None = None
    batch: int = 16
    steps: int = 100
    seed: int = 0
    input_scale: float = 1.0
    inputs: str | None = None
    activation: str | None = None
    leak: float | None = None
    map: str | None = None
    radius_tolerance: float = 0.05
    norm_drop: float = 10.0
    norm_rise: float = 10.0
    baseline: str | None = None
    models: tuple[str, ...] = ()

    def thresholds(self) -> dict[str, float]:
        """The absolute thresholds that are switched on, by their config names."""
        names = ("explode-above", "vanish-below", "max-spectral-radius", "max-bound")
        return {name: getattr(self, attr(name)) for name in names
                if getattr(self, attr(name)) is not None}


# keys allowed in [tool.rnngrad] (dashes) -> their types
KEY_TYPES: dict[str, tuple[type, ...]] = {
    "lags": (str,), "explode-above": (int, float), "vanish-below": (int, float),
    "max-spectral-radius": (int, float), "max-bound": (int, float), "batch": (int,),
    "steps": (int,), "seed": (int,), "input-scale": (int, float), "inputs": (str,),
    "activation": (str,), "leak": (int, float), "map": (str,), "radius-tolerance": (int, float), "norm-drop": (int, float),
    "norm-rise": (int, float), "baseline": (str,), "models": (list,),
}
OVERRIDES = "overrides"


def attr(key: str) -> str:
    return key.replace("-", "_")


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
        values.update({key: value for key, value in cli.items() if value is not None})
        config = CheckConfig()
        converted = {attr(key): tuple(value) if key == "models" else value
                     for key, value in values.items()}
        return replace(config, **converted)


def _matches(model: str, pattern: str, root: Path) -> bool:
    path = Path(model)
    candidates = {str(path), path.name, path.as_posix()}
    try:
        candidates.add(path.resolve().relative_to(root.resolve()).as_posix())
    except ValueError:
        pass
    return any(fnmatch.fnmatch(candidate, pattern) for candidate in candidates)


def find_pyproject(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_config(config: Path | None = None, start: Path | None = None) -> LoadedConfig:
    """Read ``--config FILE`` or the nearest pyproject.toml; validate every key."""
    path = config if config is not None else find_pyproject(start or Path.cwd())
    if path is None:
        return LoadedConfig(base={}, overrides=(), source=None, root=start or Path.cwd())
    table = _read_table(path, explicit=config is not None)
    overrides = table.pop(OVERRIDES, [])
    _check_keys(table, str(path), "[tool.rnngrad]")
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
        _check_keys(override, str(path), f"[[tool.rnngrad.{OVERRIDES}]] path={pattern!r}")
        parsed.append((pattern, override))
    return LoadedConfig(base=table, overrides=tuple(parsed), source=str(path),
                        root=path.parent)


def _read_table(path: Path, *, explicit: bool) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OptionError(f"--config {path}: no such file", "check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise OptionError(f"{path}: cannot be read ({exc})", "check the file") from None
    except tomllib.TOMLDecodeError as exc:
        raise OptionError(f"{path}: invalid TOML ({exc})", "fix the syntax") from None
    tool = data.get("tool", {})
    if isinstance(tool, dict) and "rnngrad" in tool:
        return dict(tool["rnngrad"])
    if explicit and "tool" not in data:
        return dict(data)
    return {}


def _check_keys(table: dict[str, Any], path: str, where: str) -> None:
    for key, value in table.items():
        if key not in KEY_TYPES:
            raise OptionError(f"{path}: unknown key {key!r} in {where}",
                              f"valid keys: {', '.join(sorted(KEY_TYPES))}")
        types = KEY_TYPES[key]
        if isinstance(value, bool) or not isinstance(value, types):
            wanted = " or ".join(t.__name__ for t in types)
            raise OptionError(f"{path}: {key} = {value!r} in {where} must be a {wanted}",
                              "see the README's configuration section")


def config_fields() -> tuple[str, ...]:
    return tuple(f.name for f in fields(CheckConfig))
