"""``--plot term``: the same pictures in the terminal, drawn with plotext (6 or newer).

Terminal cells are coarse, so each picture keeps its main curves and names them in a legend;
log scales are drawn as log10 values (plotext's own log rulers reject zero bins). plotext keeps
one global figure: it is cleared before and after each picture, so nothing leaks between calls.
"""

from __future__ import annotations

import math
import shutil
from typing import Any

import numpy as np

from rnngrad.bptt.report import BpttReport
from rnngrad.lyapunov.report import LyapunovReport
from rnngrad.plots._common import clip_norms, model_name, y_range
from rnngrad.plots.spectrum import eigenvalues
from rnngrad.render.text import plain
from rnngrad.report import log10_value
from rnngrad.spectrum.report import SpectrumReport

PANEL_HEIGHT = 24
MAX_WIDTH = 120
BINS = 12
RUNNING_SHOWN = 4


def render(draw: Any, panels: int, *, color: bool) -> str:
    """Run ``draw(figure)`` on a cleared plotext figure of ``panels`` rows; the text."""
    import plotext

    figure = plotext.figure
    figure.clear()
    plotext.terminal.limit(width=True, height=False)  # tall pictures scroll like any output
    try:
        width = min(max(shutil.get_terminal_size((100, 30)).columns, 40), MAX_WIDTH)
        figure.plot_size(width, PANEL_HEIGHT * panels)
        if panels > 1:
            figure.subplots(panels, 1)
        draw(figure)
        return figure.build().string(colorless=not color)
    finally:
        figure.clear()
        plotext.terminal.limit(width=True, height=True)  # plotext's default


def _panel(figure: Any, index: int, panels: int) -> Any:
    return figure.subplot(index + 1, 1) if panels > 1 else figure


def _curve(plot: Any, x: Any, y: Any, label: str | None, *, lines: bool = True) -> None:
    """Draw the finite points of (x, y), joined by lines; ``label`` None keeps it off the legend."""
    x = np.array([np.nan if v is None else v for v in x], dtype=np.float64)
    y = np.array([np.nan if v is None else v for v in y], dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    if not keep.any():
        return
    signal = plot.signal([float(v) for v in x[keep]], [float(v) for v in y[keep]])
    if label:
        signal.label(label)
    if lines:
        signal.lines()
    plot.draw(signal)


def spectrum_text(report: SpectrumReport, *, color: bool = False) -> str:
    """Per recurrence: the eigenvalues λ of every block with the unit circle, then log10 σ_i."""
    items = report.recurrences

    def draw(figure: Any) -> None:
        for index, item in enumerate(items):
            _eigen_panel(_panel(figure, 2 * index, 2 * len(items)), item)
            _sigma_panel(_panel(figure, 2 * index + 1, 2 * len(items)), item)

    header = f"rnngrad spectrum · {plain(model_name(report.model.path))}\n"
    return header + render(draw, 2 * len(items), color=color)


def _eigen_panel(plot: Any, item: Any) -> None:
    angle = np.linspace(0.0, 2.0 * math.pi, 90)
    _curve(plot, np.cos(angle), np.sin(angle), "unit circle |λ| = 1 (= 1/γ circle, γ = 1)"
           if item.gamma == 1 else "unit circle |λ| = 1")
    if item.gamma != 1:
        _curve(plot, np.cos(angle) / item.gamma, np.sin(angle) / item.gamma, "1/γ circle")
    for block in item.blocks:
        spec = block.spectrum
        eig = eigenvalues(spec)
        _curve(plot, eig.real, eig.imag, f"λ of {plain(block.name)}: ρ = {spec.spectral_radius:.4g}",
               lines=False)
    limit = 1.1 * max(1.0, 1.0 / item.gamma, *(b.spectrum.spectral_radius for b in item.blocks))
    plot.ruler("x").lim(-2.6 * limit, limit)  # room on the left for the legend
    plot.ruler("y").lim(-limit, limit)
    plot.legend(x=-2.6 * limit, y=limit, ha="left", va="top", relative=True)
    plot.title(f"{plain(item.recurrence.label)}: {item.verdict}; eigenvalues λ")
    plot.label("Re λ", axis="x")
    plot.label("Im λ", axis="y")


def _sigma_panel(plot: Any, item: Any) -> None:
    for block in item.blocks:
        spec = block.spectrum
        every = spec.singular_values is not None
        sigma = (np.asarray(spec.singular_values) if every
                 else np.array([spec.sigma_max, spec.sigma_min]))
        index = np.arange(1, sigma.size + 1) if every else np.array([1, spec.size])
        with np.errstate(divide="ignore"):
            _curve(plot, index, np.log10(sigma),
                   f"σ_i of {plain(block.name)}: σ_max = {spec.sigma_max:.4g}")
    plot.line(math.log10(item.bound), label=f"bound γ·σ_max({item.bound_block}) = {item.bound:.4g}")
    plot.line(0.0, label="1 (Elman: γ·σ_max < 1 vanishes)")
    size = max(block.spectrum.size for block in item.blocks)
    plot.legend(x=size, y=0.0, ha="right", va="top", relative=True)  # the empty corner
    every = all(block.spectrum.singular_values is not None for block in item.blocks)
    plot.title(f"{plain(item.recurrence.label)}: singular values" + ("" if every else " (σ_max, σ_min)"))
    plot.label("index i (largest first)", axis="x")
    plot.label("log10 σ_i", axis="y")


def bptt_text(report: BpttReport, *, color: bool = False) -> str:
    """Per recurrence: log10 ‖∂s_T/∂s_(T−ℓ)‖ by lag with the thresholds; the clip histogram."""
    profiles = report.recurrences
    norms = clip_norms(report.clip)
    finite = norms[np.isfinite(norms) & (norms > 0)]
    panels = len(profiles) + (finite.size > 0)

    def draw(figure: Any) -> None:
        for index, profile in enumerate(profiles):
            _profile_panel(_panel(figure, index, panels), profile, report.options)
        if finite.size:
            _clip_panel(_panel(figure, len(profiles), panels), report.clip, finite, norms.size)

    header = f"rnngrad bptt · {plain(model_name(report.model.path))}\n" + "".join(
        f"{plain(p.recurrence.label)}: no lags measured: {p.reason}\n"
        for p in profiles if not p.rows)
    return header + render(draw, panels, color=color)


def _profile_panel(plot: Any, profile: Any, options: Any) -> None:
    lags = [row.lag for row in profile.rows]
    mean = [log10_value(row.log10_norm) for row in profile.rows]
    _curve(plot, lags, mean, "log10 ‖∂s_T/∂s_(T−ℓ)‖ (mean; min, max)")
    _curve(plot, lags, [log10_value(row.log10_norm_max) for row in profile.rows], None)
    _curve(plot, lags, [log10_value(row.log10_norm_min) for row in profile.rows], None)
    bound = profile.bound
    if bound is not None and bound > 0 and math.isfinite(bound):
        _curve(plot, lags, [lag * math.log10(bound) for lag in lags],
               "bound (γσ_max)^ℓ, Pascanu et al. 2013")
    levels = []
    for key, name in (("explode_above", "exploding above"), ("vanish_below", "vanishing below")):
        value = getattr(options, key)
        if value is not None and 0 < value < math.inf:
            levels.append(math.log10(value))
            plot.line(levels[-1], label=f"{name} {value:g}")
    bottom, top = y_range([mean], levels)
    plot.ruler("y").lim(bottom, top)
    finite = [v for v in mean if v is not None and math.isfinite(v)]
    rising = len(finite) > 1 and finite[-1] > finite[0]
    if lags:
        plot.legend(x=max(lags), y=bottom if rising else top, ha="right",
                    va="bottom" if rising else "top", relative=True)  # the corner left free
    plot.title(f"{plain(profile.recurrence.label)}: {profile.verdict}" + ("" if lags else
                                                                   " (no lags measured)"))
    plot.label("lag ℓ (steps)", axis="x")
    plot.label("log10 ‖∂s_T/∂s_(T−ℓ)‖", axis="y")


def _clip_panel(plot: Any, clip: Any, finite: np.ndarray, probes: int) -> None:
    logs = np.log10(finite)
    plot.draw(plot.hist([float(v) for v in logs], bins=BINS))
    tallest = np.histogram(logs, bins=BINS)[0].max()
    plot.ruler("y").lim(0, 1.7 * tallest)  # headroom for the legend
    if clip.max_norm is not None and clip.max_norm > 0:
        plot.line(math.log10(clip.max_norm), orientation="vertical",
                  label=f"clip threshold {clip.max_norm:.4g} ({clip.rule})")
    plot.title(f"parameter-gradient norm per probe ({finite.size} of {probes} finite)")
    plot.label("log10 ‖∂E/∂θ‖", axis="x")
    plot.label("probes", axis="y")


def lyapunov_text(report: LyapunovReport, *, color: bool = False) -> str:
    """Per recurrence: the running estimates of the top exponents, with ±ε and 0."""
    items = [item for item in report.recurrences if item.running is not None]

    def draw(figure: Any) -> None:
        for index, item in enumerate(items):
            _running_panel(_panel(figure, index, len(items)), item)

    header = f"rnngrad lyapunov · {plain(model_name(report.model.path))}\n" + "".join(
        f"{plain(item.recurrence.label)}: {plain(item.reason)}\n"
        for item in report.recurrences if item.running is None)
    return header + (render(draw, len(items), color=color) if items else "")


def _running_panel(plot: Any, item: Any) -> None:
    steps = np.log10(np.array(item.running.steps, dtype=np.float64))
    shown = item.running.exponents[:RUNNING_SHOWN]
    for index, series in enumerate(shown):
        _curve(plot, steps, series, f"λ_{index + 1}")
    plot.line(item.edge, label=f"+ε = {item.edge:g}")
    plot.line(-item.edge, label=f"−ε = {-item.edge:g}")
    # the later half of each curve sets the scale: the first steps' estimates swing widely
    later = [v for series in shown for v in series[len(series) // 2:] if v is not None]
    bottom, top = y_range([later], [item.edge, -item.edge])
    plot.ruler("y").lim(bottom, top)
    plot.legend(x=float(steps[-1]), y=top, ha="right", va="top", relative=True)
    plot.title(f"{plain(item.recurrence.label)}: {item.verdict}; running estimates of the top "
               "exponents")
    plot.label("log10 steps averaged", axis="x")
    plot.label("λ (nats per step)", axis="y")


def check_text(report: Any, *, color: bool = False) -> str:
    """Per threshold: the values (o passed, x failed) and the limits (+), one column per row."""
    results = list(report.results)
    names = list(dict.fromkeys(result.threshold for result in results))
    if not names:
        return "rnngrad check: no thresholds were checked\n"

    def draw(figure: Any) -> None:
        for index, name in enumerate(names):
            _check_panel(_panel(figure, index, len(names)), name,
                         [result for result in results if result.threshold == name])

    return "rnngrad check\n" + render(draw, len(names), color=color)


def _check_panel(plot: Any, name: str, group: list[Any]) -> None:
    from rnngrad.plots.check import row_label, use_log

    values = np.array([np.nan if r.value is None else r.value for r in group], dtype=np.float64)
    limits = np.array([np.nan if r.limit is None else r.limit for r in group], dtype=np.float64)
    log = use_log(values, limits)
    scale = np.log10 if log else np.asarray
    with np.errstate(divide="ignore"):
        values, limits = scale(values), scale(limits)  # ∞, 0 on log: not drawn (not finite)
    rows = list(range(1, len(group) + 1))
    _marks(plot, rows, limits, "limit", "+")
    for label, keep, marker in (("passed", True, "o"), ("failed", False, "x")):
        picked = [(row, value) for row, value, r in zip(rows, values, group)
                  if bool(r.passed) == keep and math.isfinite(value)]
        if picked:
            _marks(plot, *zip(*picked), label, marker)
    bottom, top = y_range([values, limits], [])
    plot.ruler("y").lim(bottom, top)
    plot.ruler("x").lim(-0.6 * len(group), len(group) + 0.5)  # room on the left for the legend
    several = len({r.model for r in group}) > 1
    plot.ruler("x").ticks(rows, [row_label(r, several) for r in group])
    plot.legend(x=-0.6 * len(group), y=top, ha="left", va="top", relative=True)
    failed = sum(not r.passed for r in group)
    plot.title(f"{name}: {failed} of {len(group)} failed" if failed
               else f"{name}: all {len(group)} passed")
    plot.label(f"{'log10 ' if log else ''}value and limit", axis="y")


def _marks(plot: Any, x: Any, y: Any, label: str, marker: str) -> None:
    keep = [(float(a), float(b)) for a, b in zip(x, y) if math.isfinite(b)]
    if not keep:
        return
    signal = plot.signal([a for a, _ in keep], [b for _, b in keep], marker=marker)
    signal.label(label)
    plot.draw(signal)


def surface_text(report: Any, *, color: bool = False) -> str:
    """The --vary grid (a few rows of a surface), the slice with its wall, the growth panel."""
    grid = report.grid
    panels = 2 + (grid is not None)

    def draw(figure: Any) -> None:
        if grid is not None:
            _surface_grid_panel(_panel(figure, 0, panels), grid)
        _surface_slice_panel(_panel(figure, panels - 2, panels), report)
        _surface_growth_panel(_panel(figure, panels - 1, panels), report)

    header = (f"rnngrad surface · {plain(model_name(report.model.path))}\n"
              f"{plain(report.step.sentence)}\n")
    return header + render(draw, panels, color=color)


GRID_ROWS = 5


def _surface_grid_panel(plot: Any, grid: Any) -> None:
    first = grid.axes[0]
    if len(grid.axes) == 1:
        _curve(plot, first.values, grid.loss[0], f"E along {plain(first.name)}")
        plot.title(f"E along {plain(first.name)} (θ at {first.origin:.4g})")
    else:
        second = grid.axes[1]
        picks = sorted({round(k * (len(second.values) - 1) / (GRID_ROWS - 1))
                        for k in range(GRID_ROWS)})
        for j in picks:
            _curve(plot, first.values, [row[j] for row in grid.loss],
                   f"{plain(second.name)} = {second.values[j]:.4g}")
        plot.title(f"E along {plain(first.name)} at {len(picks)} values of "
                   f"{plain(second.name)} (θ at {first.origin:.4g}, {second.origin:.4g})")
    plot.line(first.origin, orientation="vertical", label="θ")
    plot.label(plain(first.name), axis="x")
    plot.label("E", axis="y")


def _surface_slice_panel(plot: Any, report: Any) -> None:
    if not report.slice:
        plot.title("no slice: the gradient is zero or not finite")
        return
    _curve(plot, [p.step for p in report.slice], [p.loss for p in report.slice],
           "E(θ − tĝ)")
    if report.wall is not None:
        plot.line(report.wall.distance, orientation="vertical",
                  label=f"wall at t = {report.wall.distance:.4g}")
    step = report.step
    if step.step_length is not None:
        plot.line(step.step_length, orientation="vertical",
                  label=f"one plain step lands (t = {step.step_length:.4g})")
    if step.clipped_length is not None and step.clipped_length != step.step_length:
        plot.line(step.clipped_length, orientation="vertical",
                  label=f"one clipped step lands (t = {step.clipped_length:.4g})")
    plot.title("Slice along the gradient (t > 0: downhill)")
    plot.label("step t along −ĝ", axis="x")
    plot.label("E", axis="y")


def _surface_growth_panel(plot: Any, report: Any) -> None:
    steps = [row.steps for row in report.by_length]
    for name, label in (("gradient_norm", "log10 ‖g‖"), ("top_eigenvalue", "log10 |λ_1|"),
                        ("along_gradient", "log10 |ĝᵀHĝ|")):
        values = [math.log10(abs(v)) if v else None for v in
                  (getattr(row, name) for row in report.by_length)]
        _curve(plot, steps, values, label)
    plot.title(f"Growth with the BPTT horizon: {report.growth.regime}")
    plot.label("horizon T (steps)", axis="x")
    plot.label("log10 size", axis="y")


TEXTS = {"spectrum": spectrum_text, "bptt": bptt_text, "check": check_text,
         "surface": surface_text, "lyapunov": lyapunov_text}
