"""What every view of a check report shares: the summary sentence, model names, key figures.

Key figures are shown with their changes from one model to the next only when the models are
one training run: the same recurrences with the same shapes in every file (``models`` in
natural order, as ``check`` sorts them); otherwise as a plain table. Model names are never
cut: when a name is long, rows name the model by a short id (``m1``, ``m2``, ...) and a legend
gives the full names.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rnngrad.render.numbers import fmt

LONG_NAME = 24
# What ρ and γσ_max mean, per cell type (docs/theory.md, "Bounds and verdicts").
FIGURES_FOOTNOTE = (
    "ρ: the spectral radius of W_hh for Elman (rnn) cells; for lstm, gru and leaky cells of the "
    "step Jacobian at rest (s = 0, x = 0). γσ_max: Pascanu's per-step bound γ·σ_max of W_hh "
    "(rnn), (1−α) + αγσ_max(W) (leaky), of the candidate block W_hg (lstm) or W_hn (gru).")


def model_ids(report: Any) -> dict[str, str]:
    """Each model's name in tables: its file name, or ``m1``, ``m2``, ... when any is long
    (or two share a file name); :func:`legend` maps the ids back."""
    paths = [figures.model.path for figures in report.models]
    paths += [result.model for result in report.results if result.model not in paths]
    names = [Path(path).name or path for path in paths]
    if any(len(name) > LONG_NAME for name in names) or len(set(names)) < len(names):
        return {path: f"m{index + 1}" for index, path in enumerate(paths)}
    return dict(zip(paths, names))


def legend(ids: dict[str, str]) -> list[str]:
    """``m1 = path`` lines when :func:`model_ids` used ids, else nothing."""
    return [f"{short} = {path}" for path, short in ids.items() if short != Path(path).name]


def one_training_run(report: Any) -> bool:
    """Several models with the same recurrences and shapes: checkpoints of one run."""
    if len(report.models) < 2:
        return False
    shapes = [tuple((rec.weight_hh, rec.recurrence.cell, rec.recurrence.hidden_size,
                     rec.recurrence.input_size) for rec in figures.recurrences)
              for figures in report.models]
    return all(shape == shapes[0] for shape in shapes)


def figure_rows(report: Any) -> list[list[str]]:
    """Rows of (model, recurrence, ρ, γσ_max, log10 norm at the last lag, verdict), with the
    changes from the previous model when the models are one training run."""
    ids = model_ids(report)
    trend = one_training_run(report)
    rows, previous = [], {}
    for figures in report.models:
        for rec in figures.recurrences:
            before = previous.get(rec.weight_hh) if trend else None
            rows.append([ids[figures.model.path], rec.label,
                         _with_change(rec.spectral_radius, before and before.spectral_radius),
                         _with_change(rec.bound, before and before.bound),
                         _log_with_change(math.inf if rec.overflowed else rec.log10_norm_last,
                                          before.log10_norm_last if before else None),
                         str(rec.verdict) if rec.verdict is not None else "not measured"])
            previous[rec.weight_hh] = rec
    return rows


def figures_title(report: Any) -> str:
    """The key-figures table's title: by checkpoint (one training run) or by model."""
    return ("Key figures by checkpoint (one training run, in order; changes from the previous)"
            if one_training_run(report) else "Key figures by model")


def _with_change(value: float, before: float | None) -> str:
    if before is None or before == 0:
        return fmt(value)
    return f"{fmt(value)} ({value / before - 1:+.1%})"


def _log_with_change(value: float | None, before: float | None) -> str:
    if value is None:
        return "—"
    if not math.isfinite(value):
        return "overflow" if value > 0 else "−∞"
    if before is None or not math.isfinite(before):
        return f"{value:.2f}"
    return f"{value:.2f} ({value - before:+.2f})"
