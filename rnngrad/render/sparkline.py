"""Unicode sparklines for the tables: a profile's shape in one line of text."""

from __future__ import annotations

import math

BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 20) -> str:
    """Resample ``values`` to at most ``width`` points and draw them with eight bar heights."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    if len(values) > width:
        values = [values[round(i * (len(values) - 1) / (width - 1))] for i in range(width)]
    low, high = min(finite), max(finite)
    span = high - low
    out = []
    for value in values:
        if not math.isfinite(value):
            out.append(" ")
            continue
        level = 0 if span == 0 else round((value - low) / span * (len(BARS) - 1))
        out.append(BARS[level])
    return "".join(out)
