"""Where a monitor's records go: TensorBoard, a JSON-lines or CSV file, or any callable.

A record is a flat dict: ``{"step": 12, "grad_norm": 0.83}`` every step, and every N steps one
per recurrence: ``{"step": 100, "recurrence": "rnn L0", "spectral_radius": ..., "bound": ...,
"log10_norm_last": ..., "lyapunov": ..., "verdict": ..., "profile": {"1": -0.1, ...}}``
(``profile`` maps each lag to log10 ‖∂s_T/∂s_(T−ℓ)‖).

- ``SummaryWriter`` (``torch.utils.tensorboard``, needs ``pip install 'rnngrad[tensorboard]'``)
  or a folder name: scalars ``rnngrad/grad_norm`` and ``rnngrad/<recurrence>/<figure>``, and
  the per-lag curve as a figure (with matplotlib) or a text table;
- a path ending in ``.jsonl`` (one JSON object a line) or ``.csv`` (``step,name,value`` rows);
- a callable, called with each record.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Callable

from rnngrad.errors import OptionError

Record = dict[str, Any]
TENSORBOARD_HINT = "pip install 'rnngrad[tensorboard]' (TensorBoard's writer)"


def make_sink(log: Any) -> Callable[[Record], None] | None:
    """The writer of records for ``log`` (None: keep nothing but the summary)."""
    if log is None:
        return None
    if callable(log) and not hasattr(log, "add_scalar"):
        return log
    if hasattr(log, "add_scalar"):
        return TensorBoardSink(log)
    path = Path(log)
    if path.suffix == ".jsonl":
        return JsonLinesSink(path)
    if path.suffix == ".csv":
        return CsvSink(path)
    return TensorBoardSink(_summary_writer(path))


def _summary_writer(folder: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise OptionError("logging to TensorBoard needs the tensorboard package",
                          TENSORBOARD_HINT) from None
    return SummaryWriter(log_dir=str(folder))


class JsonLinesSink:
    """One JSON object a line, flushed as written (a crash keeps what was logged)."""

    def __init__(self, path: Path) -> None:
        self.handle = path.open("a", encoding="utf-8")

    def __call__(self, record: Record) -> None:
        self.handle.write(json.dumps(_finite(record), allow_nan=False) + "\n")
        self.handle.flush()

    def close(self) -> None:
        """Close the file."""
        self.handle.close()


class CsvSink:
    """``step,name,value`` rows: one per scalar of a record (the profile as ``log10_norm@ℓ``)."""

    def __init__(self, path: Path) -> None:
        fresh = not path.exists() or path.stat().st_size == 0
        self.handle = path.open("a", encoding="utf-8", newline="")
        self.writer = csv.writer(self.handle)
        if fresh:
            self.writer.writerow(["step", "name", "value"])

    def __call__(self, record: Record) -> None:
        for name, value in scalars(record):
            self.writer.writerow([record["step"], name, "" if value is None else repr(value)])
        self.handle.flush()

    def close(self) -> None:
        """Close the file."""
        self.handle.close()


class TensorBoardSink:
    """Scalars under ``rnngrad/``; the per-lag profile as a figure (matplotlib) or text."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer

    def __call__(self, record: Record) -> None:
        step = record["step"]
        for name, value in scalars(record):
            if value is not None and "@" not in name:
                self.writer.add_scalar(f"rnngrad/{name}", value, step)
        if "profile" in record:
            self._profile(record, step)
        self.writer.flush()

    def _profile(self, record: Record, step: int) -> None:
        tag = f"rnngrad/{record['recurrence']}/profile"
        lags = [int(lag) for lag in record["profile"]]
        values = [record["profile"][str(lag)] for lag in lags]
        try:
            from matplotlib.figure import Figure
        except ImportError:
            rows = "\n".join(f"| {lag} | {value} |" for lag, value in zip(lags, values))
            self.writer.add_text(tag, "| lag | log10 norm |\n|---|---|\n" + rows, step)
            return
        figure = Figure(figsize=(4.5, 3.0))
        ax = figure.add_subplot()
        ax.plot(lags, [math.nan if v is None else v for v in values], marker=".")
        ax.set_xlabel("lag ℓ (steps)")
        ax.set_ylabel("log10 ‖∂s_T/∂s_(T−ℓ)‖")
        ax.set_title(f"{record['recurrence']} at step {step}")
        self.writer.add_figure(tag, figure, step)

    def close(self) -> None:
        """Close the SummaryWriter, flushing what it holds."""
        self.writer.close()


def scalars(record: Record) -> list[tuple[str, float | None]]:
    """A record's numbers as (name, value): ``grad_norm``, ``<recurrence>/<figure>`` and
    ``<recurrence>/log10_norm@<lag>``."""
    if "recurrence" not in record:
        return [(name, value) for name, value in record.items()
                if name != "step" and isinstance(value, (int, float))]
    prefix = record["recurrence"]
    out = [(f"{prefix}/{name}", value) for name, value in record.items()
           if name not in ("step", "recurrence", "profile", "verdict")
           and (value is None or isinstance(value, (int, float)))]
    out += [(f"{prefix}/log10_norm@{lag}", value)
            for lag, value in record.get("profile", {}).items()]
    return out


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return value
