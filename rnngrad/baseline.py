"""Baselines for ``rnngrad check``: save the measured figures, fail on regressions later.

A baseline is a JSON file ``{"schema_version": 1, "models": {path: {weight_hh: figures}}}``.
Models are matched by the path as given, then by file name; recurrences by their ``weight_hh``
tensor name. A model or recurrence missing from the baseline is reported, not failed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .errors import OptionError
from .report import finite_json

BASELINE_VERSION = 1
FIELDS = ("spectral_radius", "bound", "log10_norm_last", "log10_norm_max", "lag_last")


def baseline_document(report) -> dict[str, Any]:
    models = {}
    for figures in report.models:
        models[figures.model.path] = {
            rec.weight_hh: {field: getattr(rec, field) for field in FIELDS}
            for rec in figures.recurrences}
    return finite_json({"schema_version": BASELINE_VERSION, "models": models})


def write_baseline(report, path: Path) -> None:
    try:
        path.write_text(json.dumps(baseline_document(report), indent=2, allow_nan=False) + "\n",
                        encoding="utf-8")
    except OSError as exc:
        raise OptionError(f"--write-baseline {path}: cannot be written ({exc.strerror})",
                          "choose a writable path") from None


def read_baseline(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OptionError(f"--baseline {path}: no such file",
                          "create one with --write-baseline") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OptionError(f"--baseline {path}: not a baseline file ({exc})",
                          "create one with --write-baseline") from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise OptionError(f"--baseline {path}: not a baseline file (no 'models')",
                          "create one with --write-baseline")
    return data


def _entry(baseline: dict[str, Any], model: str) -> dict[str, Any] | None:
    models = baseline["models"]
    if model in models:
        return models[model]
    by_name = [value for key, value in models.items() if Path(key).name == Path(model).name]
    return by_name[0] if len(by_name) == 1 else None


def compare(figures, baseline: dict[str, Any], config) -> list:
    """Regression results for one model's figures against the baseline."""
    from .check import CheckResult

    model = figures.model.path
    entry = _entry(baseline, model)
    results = []
    for rec in figures.recurrences:
        old = (entry or {}).get(rec.weight_hh)
        if old is None:
            results.append(CheckResult(model=model, recurrence=rec.label,
                                       threshold="baseline", value=None, limit=0.0, passed=True,
                                       message="not in the baseline: nothing to compare "
                                               "(refresh it with --write-baseline)"))
            continue
        results += [_radius_rise(model, rec, old, config), _norm_drop(model, rec, old, config),
                    _norm_rise(model, rec, old, config)]
    return results


def _radius_rise(model, rec, old, config):
    from .check import CheckResult

    before = old.get("spectral_radius")
    limit = before * (1 + config.radius_tolerance) if before is not None else math.inf
    passed = rec.spectral_radius <= limit
    change = (rec.spectral_radius / before - 1) if before else 0.0
    return CheckResult(model=model, recurrence=rec.label, threshold="baseline-spectral-radius",
                       value=rec.spectral_radius, limit=limit, passed=passed,
                       message=f"spectral radius {before:.4g} → {rec.spectral_radius:.4g} "
                               f"({change:+.1%}; allowed +{config.radius_tolerance:.0%})"
                               + ("" if passed else ": the recurrence moved toward explosion"))


def _norm_drop(model, rec, old, config):
    from .check import CheckResult

    before, now = old.get("log10_norm_last"), rec.log10_norm_last
    allowed = math.log10(config.norm_drop)
    passed = before is None or now is None or now >= before - allowed
    return CheckResult(model=model, recurrence=rec.label, threshold="baseline-norm-drop",
                       value=_ratio(now, before), limit=1 / config.norm_drop, passed=passed,
                       message=f"norm at lag {rec.lag_last}: ×{_ratio_text(now, before)} of the "
                               f"baseline (allowed down to ×1/{config.norm_drop:g})"
                               + ("" if passed else ": long-range memory got worse"),
                       lag=rec.lag_last)


def _norm_rise(model, rec, old, config):
    from .check import CheckResult

    before, now = old.get("log10_norm_max"), rec.log10_norm_max
    allowed = math.log10(config.norm_rise)
    passed = before is None or now is None or now <= before + allowed
    return CheckResult(model=model, recurrence=rec.label, threshold="baseline-norm-rise",
                       value=_ratio(now, before), limit=config.norm_rise, passed=passed,
                       message=f"largest per-lag norm: ×{_ratio_text(now, before)} of the "
                               f"baseline (allowed up to ×{config.norm_rise:g})"
                               + ("" if passed else ": gradients now grow more"))


def _ratio(now: float | None, before: float | None) -> float | None:
    if now is None or before is None:
        return None
    diff = now - before
    return 10 ** diff if math.isfinite(diff) and abs(diff) < 300 else (
        math.inf if diff > 0 else 0.0)


def _ratio_text(now, before) -> str:
    if now is None or before is None:
        return "?"
    diff = now - before
    return f"{10 ** diff:.3g}" if math.isfinite(diff) and abs(diff) < 300 else f"10^{diff:.1f}"
