"""The check picture: each threshold's measured value against its limit, passed or failed.

Written against a duck type, so any report with ``results`` draws: each result has ``model``
(str), ``recurrence`` (label), ``threshold`` (name), ``value`` (float; None when it could not
be computed, inf on overflow, 0 on underflow), ``limit`` (float) and ``passed`` (bool). One
panel per threshold, one row per (model, recurrence); the x axis is logarithmic when every
value and limit is positive and they span two decades or more. A value the axis cannot show
(∞, or 0 on a log axis) sits on the panel's edge, marked ∞ or 0.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from rnngrad.plots._common import BOUND, FAILED, GREY, PASSED, model_name, mpl_text, new_figure

LOG_SPAN = 100.0
# What the thresholds of `rnngrad check` compare, and the rule each passes by.
RULES = {
    "explode-above": "largest ‖∂s_T/∂s_(T−ℓ)‖ over the lags ≤ limit",
    "vanish-below": "‖∂s_T/∂s_(T−ℓ)‖ at the largest lag ≥ limit",
    "max-spectral-radius": "spectral radius ρ ≤ limit",
    "max-bound": "γ·σ_max ≤ limit (Pascanu et al. 2013, Sec. 2.1)",
    "max-lyapunov": "largest Lyapunov exponent λ_1 ≤ limit (nats per step)",
    "min-lyapunov": "largest Lyapunov exponent λ_1 ≥ limit (nats per step)",
}


def check_figure(report: Any) -> Any:
    """A matplotlib Figure of a check report (anything with ``results``, see the module doc)."""
    results = list(report.results)
    if not results:
        figure = new_figure(7.0, 1.6)
        figure.suptitle("rnngrad check: no thresholds were checked", fontsize=11)
        return figure
    names = list(dict.fromkeys(result.threshold for result in results))
    groups = [[r for r in results if r.threshold == name] for name in names]
    several_models = len({result.model for result in results}) > 1
    heights = [1.3 + 0.34 * len(group) for group in groups]
    figure = new_figure(8.5, sum(heights) + 1.4)
    grid = figure.add_gridspec(len(groups), 1, height_ratios=heights)
    for index, (name, group) in enumerate(zip(names, groups)):
        _threshold(figure.add_subplot(grid[index, 0]), name, group, several_models)
    passed = sum(bool(result.passed) for result in results)
    figure.suptitle(f"rnngrad check: {passed} of {len(results)} passed", fontsize=11)
    figure.legend(*_legend_entries(), loc="outside lower center", ncols=4)
    return figure


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def _threshold(ax: Any, name: str, group: Sequence[Any], several_models: bool) -> None:
    rows = np.arange(len(group))
    limits = np.array([_number(r.limit) for r in group])
    values = np.array([_number(r.value) for r in group])
    passed = np.array([bool(r.passed) for r in group])
    log = use_log(values, limits)
    shown = np.isfinite(values) & ((values > 0) if log else True)
    missing = np.isnan(values)
    for row, value, limit, ok in zip(rows[shown], values[shown], limits[shown], passed[shown]):
        # the distance to the limit, in the verdict's colour
        ax.plot([limit, value], [row, row], color=PASSED if ok else FAILED, lw=1.2, alpha=0.6)
    ax.scatter(limits, rows, marker="|", s=260, color=BOUND, linewidths=2.0, zorder=3)
    for keep, style in ((passed, {"marker": "o", "s": 46, "color": PASSED}),
                        (~passed, {"marker": "X", "s": 64, "color": FAILED})):
        ax.scatter(values[shown & keep], rows[shown & keep], zorder=4, **style)
        _off_scale(ax, rows, values, keep & ~shown & ~missing, style)
    ax.scatter(limits[missing], rows[missing], marker="o", s=60, facecolors="none",
               edgecolors=GREY, linewidths=1.4, zorder=4)
    if log:
        ax.set_xscale("log")
    ax.set_yticks(rows, [row_label(r, several_models) for r in group])
    ax.set_ylim(len(group) - 0.5, -0.5)
    failed = int(np.count_nonzero(~passed))
    rule = f" ({RULES[name]})" if name in RULES else ""
    ax.set_title(f"{name}{rule}: " + (f"{failed} of {len(group)} failed" if failed
                                      else f"all {len(group)} passed"), loc="left")
    ax.set_xlabel("value (dot or cross) and limit (bar)" + (", log scale" if log else ""))
    ax.grid(axis="y", visible=False)


def _off_scale(ax: Any, rows: np.ndarray, values: np.ndarray, pick: np.ndarray,
               style: dict[str, Any]) -> None:
    """Values the axis cannot show (∞, or ≤ 0 on a log axis): on the edge, marked ∞ or 0."""
    edge = ax.get_yaxis_transform()  # x in axes fraction, y in data
    for row, value in zip(rows[pick], values[pick]):
        right = value > 0
        x = 1.0 if right else 0.0
        ax.scatter([x], [row], transform=edge, clip_on=False, zorder=5, **style)
        ax.annotate("∞" if right else "0" if value == 0 else "−∞", (x, row), xycoords=edge,
                    xytext=(-10 if right else 10, 6), textcoords="offset points",
                    ha="center", fontsize=9, color=style["color"])


def use_log(values: np.ndarray, limits: np.ndarray) -> bool:
    """Log x when the limits are positive, no value is negative and they span two decades."""
    values = np.asarray(values, dtype=np.float64)
    limits = np.asarray(limits, dtype=np.float64)
    if limits.size == 0 or not np.all(np.isfinite(limits) & (limits > 0)):
        return False
    finite = values[np.isfinite(values)]
    if np.any(finite < 0):
        return False
    positive = np.concatenate([finite[finite > 0], limits])
    return positive.max() / positive.min() >= LOG_SPAN


def row_label(result: Any, several_models: bool) -> str:
    """A result's row label: the recurrence (and the model when there are several)."""
    label = f"{model_name(str(result.model))} · {result.recurrence}" if several_models \
        else str(result.recurrence)
    return mpl_text(label)


def _legend_entries() -> tuple[list[Any], list[str]]:
    from matplotlib.lines import Line2D

    def marker(**kwargs: Any) -> Any:
        return Line2D([], [], lw=0, **kwargs)

    handles = [marker(marker="o", color=PASSED, ms=7), marker(marker="X", color=FAILED, ms=8),
               marker(marker="|", color=BOUND, ms=14, mew=2.0),
               marker(marker="o", mfc="none", mec=GREY, ms=8, mew=1.4)]
    labels = ["value, passed", "value, failed", "limit", "no value (could not be computed)"]
    return handles, labels
