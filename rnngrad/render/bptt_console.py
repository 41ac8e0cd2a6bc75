"""The ``table`` view of a :class:`~rnngrad.bptt.report.BpttReport`."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from rnngrad.bptt.report import BpttReport, RecurrenceProfile
from rnngrad.probes.spec import ProbeEcho
from rnngrad.render.numbers import fmt
from rnngrad.render.rich_parts import model_line, notes_text, verdict_text
from rnngrad.render.sparkline import sparkline
from rnngrad.render.text import cell, plain
from rnngrad.report import log10_value, power10

MAX_ROWS = 12


def bptt_view(report: BpttReport) -> Group:
    """A bptt report as Rich parts: model and probe lines, the summary, caveats, each
    recurrence's details, the clip threshold and notes."""
    parts: list[Any] = [model_line(report, "bptt"), Text(probe_line(report.probe), style="dim"),
                        _summary(report)]
    parts += [Text(f"caveat: {plain(caveat)}", style="yellow") for caveat in report.caveats]
    for item in report.recurrences:
        parts.append(_details(item))
    if report.clip is not None:
        parts.append(_clip(report.clip))
    parts.append(notes_text(report.notes))
    return Group(*parts)


def probe_line(probe: ProbeEcho | None, tail: str = "anchor T = last step") -> str:
    """The probe really used, in one line; ``tail`` says what the analysis does with it."""
    if probe is None:
        return "probe: none (nothing was run)"
    shape = "×".join(str(d) for d in probe.shape)
    start = initial_words(probe.initial_state)
    if probe.shape[2] == 0:
        return (f"probe: no input, {probe.batch} × {probe.shape[1]} steps (the recurrence has no "
                f"input weights), {start}; {tail}")
    if probe.kind == "file":  # bptt runs a file whole; lyapunov cuts a burn-in off it
        burn_in = f", burn-in {probe.burn_in} steps; {tail}" if probe.burn_in else ""
        return f"probe: {plain(probe.path)} ({shape}), {start}{burn_in}"
    source = {"tokens": f"token ids from {plain(probe.path)}" if probe.path else
              "random token ids", "gaussian": "Gaussian inputs"}.get(probe.kind, probe.kind)
    scale = f", scale {probe.input_scale:g}" if probe.input_scale is not None else ""
    return (f"probe: {source} {shape} (B×T×I), seed {probe.seed}{scale}, burn-in "
            f"{probe.burn_in} steps, {start}; {tail}")


def initial_words(initial_state: str | None) -> str:
    """The starting state s_0 of a probe echo, in words."""
    if initial_state is None:
        return "zero initial state"
    try:
        return f"initial state s_0 = {float(initial_state):g} (every entry)"
    except ValueError:
        return f"initial state s_0 from {plain(initial_state)}"


def _summary(report: BpttReport) -> Table:
    table = Table(title="‖∂s_T/∂s_(T−ℓ)‖ (geometric mean over probes)", title_justify="left")
    lags = next((item.rows for item in report.recurrences if item.rows), ())
    first = f"ℓ={lags[0].lag}" if lags else "first"
    last = f"ℓ={lags[-1].lag}" if lags else "last"
    for column in ("recurrence", "s", first, last, "per step", "log10 trend", "verdict"):
        table.add_column(column, justify="right" if column in (first, last, "per step")
                         else "left")
    for item in report.recurrences:
        if not item.rows:
            table.add_row(cell(item.recurrence.label), item.state, "—", "—", "—", "",
                          verdict_text(item.verdict))
            continue
        first, last = item.rows[0], item.rows[-1]
        table.add_row(cell(item.recurrence.label), item.state,
                      _value(first.norm, first.log10_norm), _value(last.norm, last.log10_norm),
                      fmt(last.rate), sparkline([log10_value(row.log10_norm) for row in item.rows], 12),
                      verdict_text(item.verdict))
    return table


def _details(item: RecurrenceProfile) -> Group:
    rec = item.recurrence
    head = Text.assemble((plain(rec.label), "bold"), f" ({plain(rec.cell)}, state {item.state}, "
                         f"size {item.state_size}): ", verdict_text(item.verdict),
                         (f"\n  {plain(item.reason)}", "italic"))
    if not item.rows:
        return Group(head)
    table = Table(show_edge=False, pad_edge=False, box=None)
    for column in ("lag", "norm", "min", "max", "Frobenius", "‖∂E/∂s‖", ""):
        table.add_column(column, justify="right")
    for row in _sample(item.rows):
        style = {"explode": "bold red", "vanish": "blue"}.get(row.flag or "", "")
        table.add_row(str(row.lag), _value(row.norm, row.log10_norm),
                      _value(row.norm_min, row.log10_norm_min),
                      _value(row.norm_max, row.log10_norm_max),
                      _value(row.frobenius, row.log10_frobenius),
                      _value(row.grad_norm, row.log10_grad_norm), row.flag or "", style=style)
    extra = Text()
    if len(item.rows) > MAX_ROWS:
        extra.append(f"  ({MAX_ROWS} of {len(item.rows)} lags shown; --format json has all)\n",
                     style="dim")
    if item.share_beyond_10 is not None:
        extra.append(f"  W_hh gradient from lags > 10: {item.share_beyond_10:.1%}, > 100: "
                     f"{item.share_beyond_100:.1%}\n")
    extra.append(omega_line(item))
    if item.directions is not None:
        extra.append(_directions(item.directions, item.verdict))
    return Group(head, table, extra)


def omega_line(item: RecurrenceProfile) -> str:
    """Pascanu's Ω in one line (Pascanu et al. 2013, Sec. 3.3, eq. 9)."""
    window = f"lags 1..{item.rows[-1].lag}"
    if item.omega is None:
        return f"  Pascanu's Ω ({window}): not defined, ∂E/∂s became exactly zero\n"
    return (f"  Pascanu's Ω ({window}): {fmt(item.omega)}, per step "
            f"{fmt(item.omega_per_step)} (0: ‖∂E/∂s‖ kept each step)\n")


def _sample(rows: tuple, count: int = MAX_ROWS) -> list:
    if len(rows) <= count:
        return list(rows)
    picks = sorted({round(i * (len(rows) - 1) / (count - 1)) for i in range(count)})
    return [rows[i] for i in picks]


def _value(value: float | None, log10: float | None) -> str:
    if value is not None:
        return fmt(value)
    return "0" if log10 is None else f"10^{log10:.1f}"


# The top singular direction of ∂s_T/∂s_(T−ℓ) is the one the gradient keeps best: it explodes
# only when the profile does.
DIRECTION_WORDS = {"exploding": "exploding direction", "vanishing": "most persistent direction",
                   "healthy": "direction of largest gain"}


def _directions(d: Any, verdict: str) -> str:
    sigma = _value(power10(d.log10_sigma), d.log10_sigma)
    return (f"  {DIRECTION_WORDS.get(str(verdict), 'top direction')} at lag {d.lag} "
            f"(σ = {sigma}): "
            f"units {', '.join(map(str, d.top_units_right))} at T−ℓ → "
            f"{', '.join(map(str, d.top_units_left))} at T; consistency over probes "
            f"{d.consistency_right:.2f}\n  |cos| with the leading eigenvectors of the "
            f"{d.reference}: {d.cos_right_leading:.3f} (at T−ℓ), {d.cos_left_leading:.3f} "
            f"(at T): {d.alignment}\n")


def _clip(clip: Any) -> Text:
    """The clip recommendation: the norms, the rule and what it rests on, then the line."""
    what = "gradient over the healthy horizon" if clip.horizon else "parameter-gradient norm"
    text = Text.assemble(
        ("Gradient clipping", "bold"), f" ({clip.regime})\n",
        f"  {what} over {clip.probes} probes ({plain(clip.loss)} loss): mean "
        f"{fmt(clip.mean)}, median {fmt(clip.median)}, 10th pct {fmt(clip.p10)}, max "
        f"{fmt(clip.maximum)}; spike ratio max/median {fmt(clip.spike_ratio)}\n")
    if clip.advice:
        text.append(f"  {plain(clip.advice)}\n", style="yellow" if not clip.trusted else "")
    if clip.max_norm is None:
        text.append("  no clip threshold can be recommended from this probe\n", style="bold yellow")
    else:
        text.append(f"  recommended max_norm = {fmt(clip.max_norm)} by {clip.rule_text}; it would "
                    f"clip {clip.clipped_share:.0%} of the probes\n")
        text.append(f"  {clip.line}" + ("" if clip.trusted else "   # rests on exploding "
                                                              "gradients, see above") + "\n",
                    style="green" if clip.trusted else "yellow")
    text.append(f"  note: {clip.caveat}", style="dim")
    return text
