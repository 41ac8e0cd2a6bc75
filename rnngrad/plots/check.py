"""The check picture: each threshold's measured value against its limit, passed or failed.

Written against a duck type, so any report with ``results`` draws: each result has ``model``
(str), ``recurrence`` (label), ``threshold`` (name), ``value`` (float, or None when it could
not be computed), ``limit`` (float) and ``passed`` (bool). One panel per threshold, one row per
(model, recurrence); the x axis is logarithmic when every value and limit is positive and they
span two decades or more.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ._common import BOUND, FAILED, GREY, PASSED, model_name, new_figure

LOG_SPAN = 100.0


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
    figure = new_figure(8.5, sum(1.3 + 0.34 * len(group) for group in groups) + 1.4)
    for ax, name, group in zip(_stacked_axes(figure, groups), names, groups):
        _threshold(ax, name, group, several_models)
    passed = sum(bool(result.passed) for result in results)
    figure.suptitle(f"rnngrad check: {passed} of {len(results)} passed", fontsize=11)
    figure.legend(*_legend_entries(), loc="outside lower center", ncols=4)
    return figure


def _stacked_axes(figure: Any, groups: list[list[Any]]) -> list[Any]:
    grid = figure.add_gridspec(len(groups), 1,
                               height_ratios=[1.3 + 0.34 * len(group) for group in groups])
    return [figure.add_subplot(grid[index, 0]) for index in range(len(groups))]


def _threshold(ax: Any, name: str, group: Sequence[Any], several_models: bool) -> None:
    rows = np.arange(len(group))
    limits = np.array([float(r.limit) for r in group])
    values = np.array([np.nan if r.value is None or not math.isfinite(r.value) else float(r.value)
                       for r in group])
    passed = np.array([bool(r.passed) for r in group])
    known = np.isfinite(values)
    for row, value, limit, ok in zip(rows, values, limits, passed):
        if math.isfinite(value):  # the distance to the limit, in the verdict's colour
            ax.plot([limit, value], [row, row], color=PASSED if ok else FAILED, lw=1.2, alpha=0.6)
    ax.scatter(limits, rows, marker="|", s=260, color=BOUND, linewidths=2.0, zorder=3)
    ax.scatter(values[known & passed], rows[known & passed], marker="o", s=46, color=PASSED,
               zorder=4)
    ax.scatter(values[known & ~passed], rows[known & ~passed], marker="X", s=64, color=FAILED,
               zorder=4)
    ax.scatter(limits[~known], rows[~known], marker="o", s=60, facecolors="none",
               edgecolors=GREY, linewidths=1.4, zorder=4)
    log = _use_log(np.concatenate([values[known], limits]))
    if log:
        ax.set_xscale("log")
    ax.set_yticks(rows, [_row_label(r, several_models) for r in group])
    ax.set_ylim(len(group) - 0.5, -0.5)
    failed = int(np.count_nonzero(~passed))
    ax.set_title(f"{name}: {failed} of {len(group)} failed" if failed
                 else f"{name}: all {len(group)} passed", loc="left")
    ax.set_xlabel(f"{name}: value and limit" + (" (log scale)" if log else ""))
    ax.grid(axis="y", visible=False)


def _use_log(numbers: np.ndarray) -> bool:
    numbers = numbers[np.isfinite(numbers)]
    if numbers.size == 0 or numbers.min() <= 0:
        return False
    return numbers.max() / numbers.min() >= LOG_SPAN


def _row_label(result: Any, several_models: bool) -> str:
    return f"{model_name(str(result.model))} · {result.recurrence}" if several_models \
        else str(result.recurrence)


def _legend_entries() -> tuple[list[Any], list[str]]:
    from matplotlib.lines import Line2D

    def marker(**kwargs: Any) -> Any:
        return Line2D([], [], lw=0, **kwargs)

    handles = [marker(marker="o", color=PASSED, ms=7), marker(marker="X", color=FAILED, ms=8),
               marker(marker="|", color=BOUND, ms=14, mew=2.0),
               marker(marker="o", mfc="none", mec=GREY, ms=8, mew=1.4)]
    labels = ["value, passed", "value, failed", "limit", "no value (could not be computed)"]
    return handles, labels
