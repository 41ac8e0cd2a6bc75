"""Number formatting shared by the human renderers (tables and Markdown)."""

from __future__ import annotations

import math


def fmt(value: float | None, digits: int = 4) -> str:
    """Compact significant-digit form; '—' for a missing or non-finite value."""
    if value is None or not math.isfinite(value):
        return "—"
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e5:
        return f"{value:.{digits}g}"
    return f"{value:.{max(digits - 2, 1)}e}"


def fmt_complex(pair: tuple[float, float], digits: int = 4) -> str:
    """An (re, im) pair as ``a+bi`` (a real number when the imaginary part is negligible)."""
    re, im = pair
    if abs(im) <= 1e-12 * max(abs(re), 1e-300):
        return fmt(re, digits)
    sign = "+" if im >= 0 else "−"
    return f"{fmt(re, digits)}{sign}{fmt(abs(im), digits)}i"


def fmt_shape(shape: tuple[int, ...]) -> str:
    """A tensor shape as ``4×8`` (``scalar`` for ())."""
    return "×".join(str(d) for d in shape) if shape else "scalar"


def top_units(vector: tuple[tuple[float, float], ...], count: int = 3) -> str:
    """The units with the largest |component| of a (re, im)-pair vector: 'u3 0.61, u7 −0.4'."""
    mags = sorted(range(len(vector)), key=lambda i: -math.hypot(*vector[i]))[:count]
    return ", ".join(f"u{i} {fmt_complex(vector[i], 2)}" for i in mags)
