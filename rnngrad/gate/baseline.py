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

from rnngrad.errors import OptionError
from rnngrad.gate.results import CheckReport, CheckResult, Figures, ModelFigures, Threshold
from rnngrad.gate.config import CheckConfig
from rnngrad.report import finite_json, power10

BASELINE_VERSION = 1
FIELDS = ("spectral_radius", "bound", "log10_norm_last", "log10_norm_max", "lag_last",
          "lyapunov")
MAX_BASELINE_BYTES = 64 * 1024 * 1024


def baseline_document(report: CheckReport) -> dict[str, Any]:
    """The baseline JSON of a check report: the key figures per model and recurrence."""
    models = {}
    for figures in report.models:
        models[figures.model.path] = {
            rec.weight_hh: {field: getattr(rec, field) for field in FIELDS}
            for rec in figures.recurrences}
    return finite_json({"schema_version": BASELINE_VERSION, "models": models})


def baseline_text(report: CheckReport) -> str:
    """:func:`baseline_document` as the text ``--write-baseline`` writes (indented JSON, a final
    newline)."""
    return json.dumps(baseline_document(report), indent=2, allow_nan=False) + "\n"


def read_baseline(path: Path) -> dict[str, Any]:
    """The baseline at ``path`` (``--baseline``), at most :data:`MAX_BASELINE_BYTES`; an
    OptionError when it is not JSON with a ``models`` object."""
    from rnngrad.io.textfiles import read_text

    text = read_text(path, "--baseline", MAX_BASELINE_BYTES)
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
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


def compare(figures: ModelFigures, baseline: dict[str, Any],
            config: CheckConfig) -> list[CheckResult]:
    """Regression results for one model's figures against the baseline."""
    model = figures.model.path
    entry = _entry(baseline, model)
    results = []
    for rec in figures.recurrences:
        old = entry.get(rec.weight_hh) if isinstance(entry, dict) else None
        if not isinstance(old, dict):
            results.append(CheckResult(model=model, recurrence=rec.label,
                                       threshold=Threshold.BASELINE, value=None, limit=None, passed=True,
                                       message="not in the baseline: nothing to compare "
                                               "(refresh it with --write-baseline)"))
            continue
        results += [_radius_rise(model, rec, old, config), _norm_drop(model, rec, old, config),
                    _norm_rise(model, rec, old, config)]
    return results


def _radius_rise(model: str, rec: Figures, old: dict[str, Any],
                 config: CheckConfig) -> CheckResult:
    before = _number(old, "spectral_radius")
    limit = before * (1 + config.radius_tolerance) if before is not None else None
    passed = limit is None or rec.spectral_radius <= limit
    change = (rec.spectral_radius / before - 1) if before else 0.0
    return CheckResult(model=model, recurrence=rec.label, threshold=Threshold.BASELINE_SPECTRAL_RADIUS,
                       value=rec.spectral_radius, limit=limit, passed=passed,
                       message=f"spectral radius {_fmt(before)} → {rec.spectral_radius:.4g} "
                               f"({change:+.1%}; allowed +{config.radius_tolerance:.0%})"
                               + ("" if passed else ": the recurrence moved toward explosion"))


def _norm_drop(model: str, rec: Figures, old: dict[str, Any],
               config: CheckConfig) -> CheckResult:
    before, now = _number(old, "log10_norm_last"), rec.log10_norm_last
    allowed = math.log10(config.norm_drop)
    passed = before is None or now is None or now >= before - allowed
    return CheckResult(model=model, recurrence=rec.label, threshold=Threshold.BASELINE_NORM_DROP,
                       value=_ratio(now, before), limit=1 / config.norm_drop, passed=passed,
                       message=f"norm at lag {rec.lag_last}: ×{_ratio_text(now, before)} of the "
                               f"baseline (allowed down to ×1/{config.norm_drop:g})"
                               + ("" if passed else ": long-range memory got worse"),
                       lag=rec.lag_last)


def _norm_rise(model: str, rec: Figures, old: dict[str, Any],
               config: CheckConfig) -> CheckResult:
    before, now = _number(old, "log10_norm_max"), rec.log10_norm_max
    allowed = math.log10(config.norm_rise)
    passed = before is None or now is None or now <= before + allowed
    return CheckResult(model=model, recurrence=rec.label, threshold=Threshold.BASELINE_NORM_RISE,
                       value=_ratio(now, before), limit=config.norm_rise, passed=passed,
                       message=f"largest per-lag norm: ×{_ratio_text(now, before)} of the "
                               f"baseline (allowed up to ×{config.norm_rise:g})"
                               + ("" if passed else ": gradients now grow more"))


def _number(entry: dict[str, Any], name: str) -> float | None:
    """A figure of a baseline entry, or None when it is absent or not a finite number."""
    value = entry.get(name) if isinstance(entry, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _fmt(value: float | None) -> str:
    return "?" if value is None else f"{value:.4g}"


def _ratio(now: float | None, before: float | None) -> float | None:
    """now/before from their log10 values, None when unknown or past float64."""
    if now is None or before is None:
        return None
    return power10(now - before)


def _ratio_text(now, before) -> str:
    if now is None or before is None:
        return "?"
    diff = now - before
    return f"{10 ** diff:.3g}" if math.isfinite(diff) and abs(diff) < 300 else f"10^{diff:.1f}"
