"""What every picture shares: the target, the optional imports, the palette and the style.

Nothing here imports matplotlib or plotext at module level: :func:`require` imports them when a
picture is asked for, so ``import rnngrad.plots`` costs nothing and works without the extra.
"""

from __future__ import annotations

import contextlib
import importlib
import math
from pathlib import Path
from typing import Any, Iterator

from rnngrad.errors import OptionError

TERM = "term"
FORMATS = ("png", "svg")
INSTALL_HINT = 'pip install "rnngrad[plot]"'

# Okabe & Ito (2008), "Color Universal Design": eight colours told apart with every common
# colour-vision deficiency. Each role below keeps its colour in every figure.
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9", "green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7",
}
GREY = "#7F7F7F"
MEASURED = OKABE_ITO["blue"]
BAND = OKABE_ITO["sky_blue"]
GRADIENT = OKABE_ITO["purple"]
BOUND = OKABE_ITO["black"]
VANISH = OKABE_ITO["blue"]
EXPLODE = OKABE_ITO["vermillion"]
PASSED = OKABE_ITO["green"]
FAILED = OKABE_ITO["vermillion"]
LEADING = OKABE_ITO["orange"]

# Styling applied inside an rc_context on top of matplotlib's defaults, so neither a user's
# matplotlibrc nor their global rcParams change a picture, and we never change theirs.
STYLE: dict[str, Any] = {
    "svg.hashsalt": "rnngrad",  # clip-path ids are hashes: fixed salt, byte-identical SVG
    "svg.fonttype": "path",  # glyphs as paths: looks the same in every viewer
    "font.size": 10.0,
    "axes.titlesize": 10.0,
    "axes.labelsize": 10.0,
    "legend.fontsize": 9.0,
    "legend.frameon": False,
    "xtick.labelsize": 9.0,
    "ytick.labelsize": 9.0,
    "axes.grid": True,
    "grid.color": "#D9D9D9",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "savefig.dpi": 120,
}
# What matplotlib writes by default and we drop: the creation date (SVG) and the version
# string (PNG "Software"), so two runs give identical bytes.
METADATA = {"svg": {"Date": None, "Creator": "rnngrad"}, "png": {"Software": None}}


def target_kind(target: str | Path) -> str:
    """``"png"``, ``"svg"`` or ``"term"`` for a ``--plot`` target, else an OptionError."""
    text = str(target)
    if text == TERM:
        return TERM
    suffix = Path(text).suffix.lower()
    if suffix[1:] in FORMATS:
        return suffix[1:]
    got = f"the extension {suffix!r}" if suffix else "a name without an extension"
    raise OptionError(f"--plot {text}: cannot draw a picture to {got}",
                      "name a .png or .svg file, or use --plot term to draw in the terminal")


def require(kind: str) -> None:
    """Import the library ``kind`` needs, or raise the OptionError that says how to get it."""
    if kind == TERM:
        try:
            plotext = importlib.import_module("plotext")
        except ImportError:
            raise OptionError("--plot term needs plotext", INSTALL_HINT) from None
        figure = getattr(plotext, "figure", None)
        if not (hasattr(figure, "signal") and hasattr(figure, "build")):
            version = getattr(plotext, "__version__", "an older version")
            raise OptionError(f"--plot term needs plotext 6 or newer, found {version}",
                              'pip install -U "plotext>=6"')
        return
    try:
        importlib.import_module("matplotlib")
        importlib.import_module("matplotlib.figure")
    except ImportError:
        raise OptionError("--plot needs matplotlib", INSTALL_HINT) from None


@contextlib.contextmanager
def style() -> Iterator[None]:
    """matplotlib's defaults plus :data:`STYLE`, for the duration of one picture."""
    import matplotlib
    import matplotlib.style

    with matplotlib.style.context("default"), matplotlib.rc_context(STYLE):
        yield


def new_figure(width: float, height: float) -> Any:
    """A :class:`matplotlib.figure.Figure` on an Agg canvas: no pyplot, no global figure list."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save(figure: Any, file: Any, kind: str) -> None:
    """Write ``figure`` as ``kind`` (png or svg) to ``file`` (a binary file object), without
    dates or versions."""
    figure.savefig(file, format=kind, metadata=METADATA[kind])


def finite_or_nan(values: Any) -> list[float]:
    """Floats with None, ±inf and NaN as NaN, so matplotlib leaves a gap there."""
    out = []
    for value in values:
        out.append(float(value) if value is not None and math.isfinite(value) else math.nan)
    return out


def y_range(series: list[Any], thresholds: list[float | None]) -> tuple[float, float]:
    """Limits showing the finite data, 0 and every threshold, padded by 8 %.

    Thresholds are always in view, so a flat profile reads as far from either of them.
    """
    import numpy as np

    values = [float(v) for s in series for v in np.asarray(s, dtype=np.float64).ravel()
              if np.isfinite(v)]
    values += [t for t in thresholds if t is not None] + [0.0]
    low, high = min(values), max(values)
    pad = 0.08 * (high - low) or 1.0
    return low - pad, high + pad


def dedupe_handles(axes: Any) -> tuple[list[Any], list[str]]:
    """Legend handles and labels of several axes, each label once, in first-seen order."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label and not label.startswith("_") and label not in seen:
                seen[label] = handle
    return list(seen.values()), list(seen)


def model_name(path: str) -> str:
    """The file name of a report's model (``<Module>`` for an in-memory one)."""
    return Path(path).name or path


def clip_norms(clip: Any) -> Any:
    """The per-probe gradient norms of a clip recommendation (overflowed: inf) as an array."""
    import numpy as np

    if clip is None:
        return np.zeros(0)
    return np.array([math.inf if norm is None else norm for norm in clip.norms], dtype=np.float64)


def mpl_text(value: Any) -> str:
    """Text from a file, safe in a matplotlib label: plain, with ``$`` not starting mathtext."""
    from rnngrad.render.text import plain

    return plain(value).replace("$", r"\$")


def probe_words(probe: Any) -> str:
    """The probe in a few words for a title: B × T steps, kind, seed."""
    if probe is None:
        return "none (nothing was run)"
    if probe.shape[2] == 0:
        return f"{probe.batch} × {probe.shape[1]} steps, no input"
    return f"{probe.batch} × {probe.steps} steps, {probe.kind}, seed {probe.seed}"
