"""The bptt picture: the measured per-lag profile of each recurrence, and the clip histogram.

One panel per recurrence: log10 ‖∂s_T/∂s_(T−ℓ)‖ against the lag ℓ (geometric mean over the
probes, the min–max band around it), the gradient by lag log10 ‖∂E/∂s_(T−ℓ)‖ for the probe
loss E = uᵀs_T, the vanishing and exploding regions of the verdict, and, when a spectrum run
gave it, the bound (γσ_max)^ℓ (Pascanu et al. 2013, Sec. 2.1). A last panel: the histogram of
the per-probe norms of the whole parameter gradient with the recommended clip threshold.
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

import numpy as np

from rnngrad.bptt.options import BpttOptions
from rnngrad.bptt.report import BpttReport, RecurrenceProfile
from rnngrad.plots._common import (BAND, BOUND, EXPLODE, GRADIENT, GREY, MEASURED, VANISH, clip_norms, dedupe_handles, mpl_text, probe_words,
                      finite_or_nan, model_name, new_figure, y_range)

RULE_LABELS = {"pascanu": "Pascanu avg (the mean norm, Pascanu et al. 2013, Sec. 3.2)",
               "autoclip": "AutoClip p10 (the 10th percentile, Seetharaman et al. 2020)"}
Y_LABEL = "log10 ‖∂s_T/∂s_(T−ℓ)‖"


def bptt_figure(report: BpttReport) -> Any:
    """A matplotlib Figure of ``report`` (with the bound (γσ_max)^ℓ of Elman recurrences)."""
    profiles = report.recurrences
    columns = 1 if len(profiles) == 1 else 2
    rows = math.ceil(len(profiles) / columns)
    has_clip = report.clip is not None
    figure = new_figure(7.5 if columns == 1 else 12.0, 4.0 * rows + 3.0 * has_clip + 1.6)
    grid = figure.add_gridspec(rows + has_clip, columns,
                               height_ratios=[1.0] * rows + [0.72] * has_clip)
    axes = []
    for index, profile in enumerate(profiles):
        ax = figure.add_subplot(grid[index // columns, index % columns])
        _profile(ax, profile, report.options)
        axes.append(ax)
    handles, labels = dedupe_handles(axes)
    if has_clip:
        _clip(figure.add_subplot(grid[rows, :]), report.clip)
    figure.suptitle(f"rnngrad bptt · {mpl_text(model_name(report.model.path))}\n"
                    f"probe: {probe_words(report.probe)}", fontsize=11)
    figure.legend(handles, labels, loc="outside lower center", ncols=columns)
    return figure


def _state(profile: RecurrenceProfile) -> str:
    """The analysed state as the README writes it: h, c or [h; c] (an LSTM's h first)."""
    return {"h,c": "[h; c]", "all": "[h; c]"}.get(profile.state, profile.state)


def _profile(ax: Any, profile: RecurrenceProfile, options: BpttOptions) -> None:
    rows = profile.rows
    bound = profile.bound
    lags = np.array([row.lag for row in rows], dtype=np.float64)
    mean = np.array(finite_or_nan(row.log10_norm for row in rows))
    low = np.array(finite_or_nan(row.log10_norm_min for row in rows))
    high = np.array(finite_or_nan(row.log10_norm_max for row in rows))
    grad = np.array(finite_or_nan(row.log10_grad_norm for row in rows))
    ax.fill_between(lags, low, high, color=BAND, alpha=0.45, lw=0,
                    label="min–max of ‖∂s_T/∂s_(T−ℓ)‖ over the probes")
    ax.plot(lags, mean, color=MEASURED, lw=2.0,
            label="‖∂s_T/∂s_(T−ℓ)‖, geometric mean over the probes (measured)")
    ax.plot(lags, grad, color=GRADIENT, lw=1.4, ls="-.",
            label="gradient by lag ‖∂E/∂s_(T−ℓ)‖, E = uᵀs_T")
    if bound is not None and bound > 0 and math.isfinite(bound):
        ax.plot(lags, lags * math.log10(bound), color=BOUND, lw=1.2, ls="--",
                label="bound (γσ_max)^ℓ, Pascanu et al. 2013")
    vanish, explode = _log10(options.vanish_below), _log10(options.explode_above)
    bottom, top = y_range([mean, low, high, grad], [vanish, explode])
    if vanish is not None:
        ax.axhspan(bottom, vanish, color=VANISH, alpha=0.10, lw=0,
                   label=f"vanishing: norm at the largest lag < {10 ** vanish:g} (--vanish-below)")
        ax.text(0.01, 0.02, "vanishing", transform=ax.transAxes, ha="left", va="bottom",
                color=VANISH, fontsize=8)
    if explode is not None:
        ax.axhspan(explode, top, color=EXPLODE, alpha=0.14, lw=0,
                   label=f"exploding: norm at any lag > {10 ** explode:g} (--explode-above)")
        ax.text(0.01, 0.98, "exploding", transform=ax.transAxes, ha="left", va="top",
                color=EXPLODE, fontsize=8)
    ax.axhline(0.0, color=GREY, lw=0.8, ls=":")
    ax.set_ylim(bottom, top)
    if lags.size > 1:
        ax.set_xlim(lags.min(), lags.max())
    if _log_spaced(lags):
        ax.set_xscale("log")
    if not rows:  # the forward pass overflowed before any lag could be measured
        ax.text(0.5, 0.5, "no lags measured:\n" + textwrap.fill(mpl_text(profile.reason), 60),
                ha="center", va="center", transform=ax.transAxes, fontsize=9)
    rec = profile.recurrence
    cell = f"{rec.cell} {rec.nonlinearity}" if rec.cell == "rnn" else rec.cell
    ax.set_title(f"{mpl_text(rec.label)} ({cell}, s = {_state(profile)}, {profile.state_size} units): "
                 f"{profile.verdict}")
    ax.set_xlabel("lag ℓ (steps)")
    ax.set_ylabel(Y_LABEL)


def _log10(value: Any) -> float | None:
    if value is None or not math.isfinite(value) or value <= 0:
        return None
    return math.log10(value)


def _log_spaced(lags: np.ndarray) -> bool:
    """Lags like ``log:1..1000:20`` (uneven steps spanning 2+ decades) read best on log x."""
    if lags.size < 3 or lags.min() <= 0:
        return False
    steps = np.diff(lags)
    return lags.max() / lags.min() >= 100 and steps.max() > 4 * steps.min()


def _clip(ax: Any, clip: Any) -> None:
    norms = clip_norms(clip)
    finite = norms[np.isfinite(norms) & (norms > 0)]
    skipped = norms.size - finite.size
    ax.set_title(f"Parameter-gradient norm per probe (loss: {mpl_text(clip.loss)}, {norms.size} probes"
                 + (f", {skipped} overflowed or zero, not shown" if skipped else "") + ")")
    if finite.size == 0:
        ax.text(0.5, 0.5, "no finite parameter-gradient norm: every probe overflowed float64\n"
                "(use shorter --steps)", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    spread = finite.max() / finite.min()
    count = int(np.clip(2 * math.sqrt(finite.size), 5, 30))
    if spread > 20:
        bins = np.geomspace(finite.min() / 1.05, finite.max() * 1.05, count + 1)
        ax.set_xscale("log")
    else:
        pad = 0.05 * finite.max() if spread == 1 else 0.0
        bins = np.linspace(finite.min() - pad, finite.max() + pad, count + 1)
    ax.hist(finite, bins=bins, color=BAND, edgecolor=MEASURED, lw=0.8,
            label="‖∂E/∂θ‖ of one probe (whole parameter gradient)")
    if clip.max_norm is not None:
        ax.axvline(clip.max_norm, color=EXPLODE, lw=2.0,
                   label=f"clip threshold max_norm = {clip.max_norm:.4g}: "
                         f"{RULE_LABELS.get(clip.rule, clip.rule)}")
    ax.set_xlabel("‖∂E/∂θ‖ (norm of the parameter gradient; scale follows loss and data)")
    ax.set_ylabel("probes")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.45)  # headroom for the legend
    ax.legend(loc="upper right", frameon=True, framealpha=0.92, edgecolor="none")
