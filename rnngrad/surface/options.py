"""What ``surface`` can be asked, with its defaults: the one place they are written.

Torch- and NumPy-free, so the command line can import it to show defaults. ``--vary`` specs
are checked for syntax here; their names are resolved against the model by the analysis.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields, replace
from typing import Any

from rnngrad.bptt.options import DTYPES, check_choice
from rnngrad.bptt.options import LOSSES as BPTT_LOSSES
from rnngrad.conventions.options import ReadOptions, with_settings
from rnngrad.errors import OptionError
from rnngrad.probes.spec import ProbeSpec

LOSSES = BPTT_LOSSES + ("squared",)
PARAMS = ("all", "recurrent", "hh")
# surface knows η and λ_max: the curvature rule; bptt's statistics rules for comparison
CLIP_RULES = ("curvature", "pascanu", "autoclip")
DIRECTIONS = ("gradient", "curvature", "random")
DEFAULT_LOSS = "readout"
MAX_POINTS = 1001
MAX_GRID = 250_000
MAX_SGD_STEPS = 1000
VARY_HINT = ("write --vary NAME=START:STOP:N with NAME a direction (gradient, curvature, "
             "random) or a scalar parameter (w, rnn.weight_hh_l0[3,4])")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_VARY = re.compile(rf"^(?P<name>[^=\s]+)=(?P<start>{_NUMBER}):(?P<stop>{_NUMBER})"
                   rf":(?P<count>\d{{1,7}})$")


@dataclass(frozen=True)
class VaryAxis:
    """One ``--vary`` axis: ``name`` (a direction or a parameter, possibly ``name[i,j]``)
    from ``start`` to ``stop`` at ``count`` evenly spaced values."""

    name: str
    start: float
    stop: float
    count: int

    @property
    def is_direction(self) -> bool:
        """Whether ``name`` is a direction (gradient, curvature, random), not a parameter."""
        return self.name in DIRECTIONS


@dataclass(frozen=True, kw_only=True)
class SurfaceOptions(ReadOptions):
    """Everything ``surface`` can be asked.

    ``probe`` and ``loss``/``targets``: as for ``bptt`` (``loss`` also ``squared``:
    ‖y_T − target‖², the paper's E); None takes the model's own ``[probe]`` settings (a map's,
    e.g. the one the shipped ``pascanu_unit`` sample carries), else ``ProbeSpec()`` and
    ``readout``. ``params``: θ is every tensor of the recurrences and of the head the loss uses
    (``all``), the recurrences' tensors only (``recurrent``) or their recurrent matrices
    W_hh only (``hh``). ``lengths``: BPTT horizons for the growth table, as a lag spec
    (default: a few up to the probe length). ``span``: the slice E(θ − tĝ) covers
    t ∈ [−span, span] at ``points`` values (default span: 10 × the step η‖g‖). ``lr``: the
    SGD learning rate η. ``max_norm``: the clip threshold (default: recommended by
    ``clip_rule``: ``curvature``, ‖g‖/(η λ_max), or ``pascanu``/``autoclip`` from the
    per-probe gradient norms, as ``bptt`` does). ``sgd_steps``: the
    length of the SGD paths drawn on the surface. ``vary``: one or two
    ``NAME=START:STOP:N`` axes (two in one spec joined by a comma). ``module``: which module
    (default: the first, the one a head follows). ``dtype``, ``device``, ``max_memory`` as
    for ``bptt``.
    """

    probe: ProbeSpec | None = None
    loss: str | None = None
    targets: str | None = None
    params: str = "all"
    lengths: str | None = None
    span: float | None = None
    points: int = 41
    lr: float = 1e-2
    max_norm: float | None = None
    clip_rule: str = "curvature"
    sgd_steps: int = 10
    vary: tuple[str, ...] = ()
    module: str | None = None
    dtype: str = "float64"
    device: str = "cpu"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "vary", tuple(self.vary))
        if self.targets is not None and not isinstance(self.targets, str):
            object.__setattr__(self, "targets", str(self.targets))
        if self.loss is not None:
            check_choice("--loss", self.loss, LOSSES)
        check_choice("--params", self.params, PARAMS)
        check_choice("--dtype", self.dtype, DTYPES)
        check_choice("--clip-rule", self.clip_rule, CLIP_RULES)
        _positive("--lr", self.lr, "e.g. --lr 0.01")
        if self.span is not None:
            _positive("--span", self.span, "the slice covers t in [-span, span], e.g. --span 1")
        if self.max_norm is not None:
            _positive("--max-norm", self.max_norm, "the clip threshold, e.g. --max-norm 1")
        _count("--points", self.points, 3, MAX_POINTS)
        _count("--sgd-steps", self.sgd_steps, 0, MAX_SGD_STEPS)
        self.axes  # noqa: B018  (parses --vary: a bad spec fails here, before any work)

    @property
    def axes(self) -> tuple[VaryAxis, ...]:
        """The ``--vary`` axes, parsed (at most two)."""
        axes = tuple(axis for spec in self.vary for axis in _parse_vary(spec))
        if len(axes) > 2:
            raise OptionError(f"--vary gives {len(axes)} axes; a slice has one, a surface two",
                              VARY_HINT)
        names = [axis.name for axis in axes]
        if len(set(names)) < len(names):
            raise OptionError(f"--vary names {names[0]!r} twice", "vary two different things")
        if len(axes) == 2 and axes[0].count * axes[1].count > MAX_GRID:
            raise OptionError(f"--vary asks for {axes[0].count} × {axes[1].count} points, "
                              f"over {MAX_GRID:,}", "use fewer points per axis")
        return axes


def _parse_vary(spec: str) -> list[VaryAxis]:
    """``NAME=START:STOP:N``, or two of them joined by a comma outside brackets."""
    text = "".join(str(spec).split())
    shown = text if len(text) <= 60 else text[:57] + "…"
    parts, depth, current = [], 0, ""
    for char in text:
        depth += (char == "[") - (char == "]")
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    axes = []
    for part in parts:
        match = _VARY.match(part)
        if not match:
            raise OptionError(f"--vary {shown!r}: cannot read {part[:40]!r}", VARY_HINT)
        start, stop, count = float(match["start"]), float(match["stop"]), int(match["count"])
        if not (math.isfinite(start) and math.isfinite(stop)) or start == stop:
            raise OptionError(f"--vary {shown!r}: {part!r} is an empty range",
                              "START and STOP must be different finite numbers")
        _count("--vary N", count, 2, MAX_POINTS)
        axes.append(VaryAxis(name=match["name"], start=start, stop=stop, count=count))
    return axes


def _positive(option: str, value: object, hint: str) -> None:
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or value <= 0):
        raise OptionError(f"{option} {value!r} must be a positive number", hint)


def _count(option: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise OptionError(f"{option} {value!r} must be an integer from {low} to {high}",
                          "see `rnngrad surface --help`")


def surface_options(options: SurfaceOptions | None,
                    settings: dict[str, Any]) -> tuple[SurfaceOptions, dict[str, Any]]:
    """``options`` with keyword ``settings`` applied, and the probe settings kept apart.

    :class:`~rnngrad.probes.spec.ProbeSpec` fields in ``settings`` (``steps=30``) are applied
    on top of the model's own probe once the file is read (:func:`resolve_probe`); the rest
    must be :class:`SurfaceOptions` fields.
    """
    probe_names = {spec.name for spec in fields(ProbeSpec)}
    probe = {name: value for name, value in settings.items() if name in probe_names}
    rest = {name: value for name, value in settings.items() if name not in probe_names}
    return with_settings(SurfaceOptions, options, rest), probe


def resolve_probe(options: SurfaceOptions, model_probe: dict[str, Any],
                  given: dict[str, Any], where: str) -> ProbeSpec:
    """The probe to run: ``options.probe`` if set, else the model's own ``[probe]`` fields
    (``where`` names them in errors) over ``ProbeSpec()``; ``given`` fields on top."""
    if options.probe is not None:
        base = options.probe
    else:
        try:
            base = ProbeSpec(**model_probe)
        except TypeError as exc:
            raise OptionError(f"{where}: [probe] {exc}", "see the map format") from None
    return replace(base, **given) if given else base


__all__ = ["CLIP_RULES", "DIRECTIONS", "DTYPES", "LOSSES", "PARAMS", "SurfaceOptions",
           "VaryAxis", "resolve_probe", "surface_options"]
