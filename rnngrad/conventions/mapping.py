"""Research checkpoints as rate RNNs: the ``--map FILE.toml`` format and how a map is applied.

A map says which arrays of any ``.npz``/``.pt``/``.safetensors`` file form a recurrence::

    # x_t = (1 − α) x_(t−1) + α (W φ(x_(t−1)) + W_in u_t + b)
    [[recurrence]]                  # repeat for several; a bare [recurrence] or top-level keys
    name = "rnn"                    #   also work. Module name in reports (default: W's prefix)
    recurrent = "W_rec"             # W, N × N ...
    # left = "rnn.m"                # ... or low rank W = scale · left right:
    # right = "rnn.n"               #   left N × r, right r × N (or N × r)
    # scale = "1/N"                 #   a number, "1/N" or "1/sqrt(N)"
    input = "W_in"                  # W_in (optional); input_scale = number or scalar tensor
    bias = ["b_rec"]                # one name or several (summed)
    mask = "rec_connectivity"       # optional elementwise masks on W and W_in ...
    input_mask = "input_connectivity"
    dale = "Dale_rec"               # ... and PsychRNN's Dale matrix: W = |W ∘ mask| D
    nonlinearity = "relu"           # tanh | relu | sigmoid | identity
    leak = 0.1                      # α, or dt = 10 and tau = 100 (α = dt/τ); default 1
    orientation = "rows"            # rows: rows of W index the new state (x' = W φ(x), PyTorch);
                                    # columns: the file stores Wᵀ (x' = φ(x) W)
    input_orientation = "auto"      # rows (N × I), columns (I × N) or auto (by shape)
    form = "rate"                   # rate (above) or elman: h' = φ(W h + W_in u + b), α = 1

    [probe]                         # optional: how the model is run, for `rnngrad surface`
    steps = 50                      #   ProbeSpec fields: batch, steps, burn_in, seed,
    initial_state = 0.5             #   input_scale, initial_state (s_0: number or .npy)
    loss = "squared"                #   and the probe loss with its targets
    targets = 0.7

A safetensors file can carry its own map as the TOML text of its metadata key ``rnngrad.map``
(:data:`MAP_METADATA`), so that it reads without options; ``--map FILE.toml`` replaces it.

Masks and Dale's matrix act on the arrays as stored, before any transpose. The result is a
:class:`~rnngrad.formats.Layout` over derived tensors ``<name>.weight_hh`` (N × N, rows = new
state), ``<name>.weight_ih`` (N × I) and ``<name>.bias_ih`` (N); the ``leaky`` cell runs it
(:mod:`rnngrad.cells.leaky`), or the Elman cell for ``form = "elman"``.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnngrad.cells import RATE_NONLINEARITIES, check_leak
from rnngrad.errors import LoadError, OptionError
from rnngrad.io.bundle import WeightBundle
from rnngrad.io.layout import LowRank
from rnngrad.io.layout import Derived, Layout, derived_tensor, with_derived

MAP_METADATA = "rnngrad.map"  # a safetensors metadata key holding a map's TOML text
MAX_MAP_BYTES = 1024 * 1024  # a map's TOML text, from a file or the metadata
FORMS = ("rate", "elman")
ORIENTATIONS = ("rows", "columns")
KEYS = ("name", "recurrent", "left", "right", "scale", "input", "input_scale", "bias", "mask",
        "input_mask", "dale", "nonlinearity", "leak", "dt", "tau", "orientation",
        "input_orientation", "form")


@dataclass(frozen=True, kw_only=True)
class RateMapping:
    """One recurrence of a research checkpoint; see the module docstring for the keys."""

    source: str
    name: str = ""
    recurrent: str | None = None
    left: str | None = None
    right: str | None = None
    scale: float | str = 1.0
    input: str | None = None
    input_scale: float | str = 1.0
    bias: tuple[str, ...] = ()
    mask: str | None = None
    input_mask: str | None = None
    dale: str | None = None
    nonlinearity: str = "tanh"
    nonlinearity_source: str = "map"
    leak: float = 1.0
    leak_source: str = "map"
    orientation: str = "rows"
    input_orientation: str = "auto"
    form: str = "rate"


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """How a map says its model is run: the ``[probe]`` table, for ``rnngrad surface``.

    ``probe`` holds :class:`~rnngrad.probes.spec.ProbeSpec` fields (``batch``, ``steps``,
    ``burn_in``, ``seed``, ``input_scale``, ``initial_state``), ``loss`` and ``targets`` the
    probe loss (``--loss``, ``--targets``); ``source`` says where the map came from. They are
    checked where they are used (a map cannot know the probe layer's rules).
    """

    source: str
    probe: tuple[tuple[str, Any], ...] = ()
    loss: str | None = None
    targets: str | None = None

    def describe(self) -> str:
        """The settings as the map wrote them: ``steps = 50, loss = squared, ...``."""
        items = [*self.probe, ("loss", self.loss), ("targets", self.targets)]
        return ", ".join(f"{key} = {value}" for key, value in items if value is not None)


def read_map(path: str | Path) -> tuple[tuple[RateMapping, ...], RunSettings | None]:
    """The recurrences a ``--map`` TOML file describes and its ``[probe]`` settings;
    OptionError for anything malformed. The file must be a regular file of at most
    :data:`MAX_MAP_BYTES` (a FIFO or ``/dev/zero`` is refused, never read)."""
    from rnngrad.io.textfiles import read_text

    file = Path(path)
    where = f"--map {file}"
    try:
        text = read_text(file, "--map", MAX_MAP_BYTES)
    except UnicodeDecodeError as exc:
        raise OptionError(f"{where}: not a readable TOML file ({exc})",
                          "see `rnngrad --help` for the map format") from None
    return parse_map(text, where, f"map file {file.name}")


def parse_map(text: str, where: str,
              source: str) -> tuple[tuple[RateMapping, ...], RunSettings | None]:
    """A map's TOML ``text``: its recurrences and ``[probe]``; ``where`` names it in errors,
    ``source`` in reports."""
    if len(text) > MAX_MAP_BYTES:
        raise OptionError(f"{where}: the map is {len(text):,} characters, over "
                          f"{MAX_MAP_BYTES:,}", "a map describes a few recurrences; fix it")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise OptionError(f"{where}: not a readable TOML file ({exc})",
                          "see `rnngrad --help` for the map format") from None
    except RecursionError:
        raise OptionError(f"{where}: TOML nested too deeply", "fix the file") from None
    settings = _settings(document.pop("probe", None), where, source)
    tables = document.get("recurrence", document)
    tables = [tables] if isinstance(tables, dict) else tables
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise OptionError(f"{where}: expected [[recurrence]] tables",
                          "write one [[recurrence]] table per recurrence")
    return tuple(_mapping(table, source, where) for table in tables), settings


PROBE_KEYS = ("batch", "steps", "burn_in", "seed", "input_scale", "initial_state", "loss",
              "targets")


def _settings(table: Any, where: str, source: str) -> RunSettings | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        raise OptionError(f"{where}: [probe] must be a table", f"keys: {', '.join(PROBE_KEYS)}")
    unknown = sorted(set(table) - set(PROBE_KEYS))
    if unknown:
        raise OptionError(f"{where}: unknown [probe] key(s) {', '.join(unknown)}",
                          f"known keys: {', '.join(PROBE_KEYS)}")
    values = dict(table)
    loss, targets = values.pop("loss", None), values.pop("targets", None)
    if loss is not None and not isinstance(loss, str):
        raise OptionError(f"{where}: [probe] loss = {loss!r} is not a name",
                          "e.g. loss = \"squared\"")
    if targets is not None and (isinstance(targets, bool)
                                or not isinstance(targets, (str, int, float))):
        raise OptionError(f"{where}: [probe] targets = {targets!r} is neither a number nor a "
                          "file", "e.g. targets = 0.7")
    return RunSettings(source=source, probe=tuple(values.items()), loss=loss,
                       targets=None if targets is None else str(targets))


def _mapping(table: dict[str, Any], source: str, where: str) -> RateMapping:
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise OptionError(f"{where}: unknown key(s) {', '.join(unknown)}",
                          f"known keys: {', '.join(KEYS)}")
    values = dict(table)
    leak, leak_source = _leak(values.pop("leak", None), values.pop("dt", None),
                              values.pop("tau", None), where)
    bias = values.pop("bias", ())
    values["bias"] = (bias,) if isinstance(bias, str) else tuple(bias)
    try:
        mapping = RateMapping(source=source, leak=leak, leak_source=leak_source, **values)
    except TypeError as exc:
        raise OptionError(f"{where}: {exc}", "check the keys' values") from None
    return validate(mapping, where)


def _leak(leak: Any, dt: Any, tau: Any, where: str) -> tuple[float, str]:
    try:
        if leak is not None:
            if dt is not None or tau is not None:
                raise ValueError("give either leak or dt and tau, not both")
            return check_leak(leak, where), "map"
        if dt is not None or tau is not None:
            if dt is None or tau is None:
                raise ValueError("dt and tau go together (α = dt/τ)")
            return check_leak(float(dt) / float(tau), f"{where} (α = dt/τ)"), \
                f"map: dt/τ = {dt}/{tau}"
    except (TypeError, ValueError, ZeroDivisionError) as exc:
        raise OptionError(f"{where}: {exc}", "leak α = dt/τ must be in (0, 1]") from None
    return 1.0, "map: no leak given"


def validate(mapping: RateMapping, where: str) -> RateMapping:
    """Check the choices (not the tensors: those are checked against the file)."""
    problems = [
        (mapping.form not in FORMS, f"form {mapping.form!r} is not one of {FORMS}"),
        (mapping.orientation not in ORIENTATIONS,
         f"orientation {mapping.orientation!r} is not one of {ORIENTATIONS}"),
        (mapping.input_orientation not in ORIENTATIONS + ("auto",),
         f"input_orientation {mapping.input_orientation!r} is not rows, columns or auto"),
        (mapping.nonlinearity not in RATE_NONLINEARITIES,
         f"nonlinearity {mapping.nonlinearity!r} is not one of {RATE_NONLINEARITIES}"),
        ((mapping.recurrent is None) == (mapping.left is None or mapping.right is None),
         "give either recurrent or both left and right"),
        (mapping.form == "elman" and mapping.leak != 1.0,
         "an Elman recurrence has no leak: use form = \"rate\" with a leak"),
        (mapping.form == "elman" and mapping.nonlinearity not in ("tanh", "relu"),
         "the Elman cell runs tanh or relu"),
        (mapping.left is not None and (mapping.mask or mapping.dale),
         "masks and Dale's matrix apply to a full W, not to low-rank factors"),
    ]
    for bad, message in problems:
        if bad:
            raise OptionError(f"{where}: {message}", "see the map format in the README")
    return mapping


def apply_map_file(bundle: WeightBundle,
                   path: str | Path) -> tuple[WeightBundle, RunSettings | None]:
    """The file's own tensors (before any built-in convention) understood through a map."""
    base = bundle.original or bundle
    mappings, settings = read_map(path)
    return apply(base, mappings, (f"recurrences described by --map {path}",)), settings


def apply_map_metadata(bundle: WeightBundle) -> tuple[WeightBundle, RunSettings | None]:
    """The file understood through the map it carries in its metadata (``rnngrad.map``)."""
    where = f"{bundle.path}: metadata {MAP_METADATA}"
    mappings, settings = parse_map(bundle.metadata[MAP_METADATA], where,
                                   f"the file's {MAP_METADATA} metadata")
    note = (f"recurrences described by the map in the file's metadata {MAP_METADATA} "
            "(a --map FILE.toml replaces it)")
    return apply(bundle, mappings, (note,)), settings


def apply(bundle: WeightBundle, mappings: tuple[RateMapping, ...],
          notes: tuple[str, ...] = ()) -> WeightBundle:
    """``bundle`` plus the recurrences ``mappings`` describe, their tensors derived from the
    file's (:func:`~rnngrad.io.layout.with_derived`); ``notes`` say where the mappings came from."""
    derived: dict[str, Derived] = {}
    layouts = []
    for mapping in mappings:
        layout, tensors = _recurrence(bundle, mapping)
        derived.update(tensors)
        layouts.append(layout)
    return with_derived(bundle, derived, tuple(layouts), notes)


# --- one recurrence -------------------------------------------------------------------------


def _recurrence(bundle: WeightBundle, m: RateMapping) -> tuple[Layout, dict[str, Derived]]:
    size, low_rank = _recurrent_size(bundle, m)
    name = m.name or _default_name(m)
    layout = Layout(module=name, cell_module=True, cell="leaky" if m.form == "rate" else None,
                    nonlinearity=m.nonlinearity, nonlinearity_source=m.nonlinearity_source,
                    convention=_convention(m), orientation=_orientation(bundle, m, size),
                    leak=m.leak if m.form == "rate" else None, leak_source=m.leak_source,
                    low_rank=low_rank, sources=_sources(m), has_input=m.input is not None)
    tensors = dict([_weight_hh(bundle, m, layout, size, low_rank)])
    if m.input:
        tensors.update([_weight_ih(bundle, m, layout, size)])
    if m.bias:
        tensors.update([_bias(bundle, m, layout, size)])
    return layout, tensors


def _default_name(m: RateMapping) -> str:
    key = m.recurrent or m.left or "rnn"
    return key.rsplit(".", 1)[0] if "." in key else "rnn"


def _convention(m: RateMapping) -> str:
    form = ("rate RNN x' = (1−α)x + α(W φ(x) + W_in u + b)" if m.form == "rate"
            else "Elman RNN h' = φ(W h + W_in u + b)")
    return f"{m.source}: {form}"


def _sources(m: RateMapping) -> tuple[str, ...]:
    names = (m.recurrent, m.left, m.right, m.input, *m.bias, m.mask, m.input_mask, m.dale,
             m.input_scale if isinstance(m.input_scale, str) else None)
    return tuple(dict.fromkeys(name for name in names if name))


def _info(bundle: WeightBundle, name: str, m: RateMapping):
    info = bundle.tensors.get(name)
    if info is None:
        listed = ", ".join(list(bundle.tensors)[:12])
        raise LoadError(f"{bundle.path}: {m.source} names {name!r}, which is not in the file",
                        f"tensors in the file: {listed}")
    if not info.is_float:
        raise LoadError(f"{bundle.path}: {name!r} has dtype {info.dtype}, not floating point",
                        "point the mapping at the float weights")
    return info


def _recurrent_size(bundle: WeightBundle, m: RateMapping) -> tuple[int, LowRank | None]:
    if m.recurrent is not None:
        shape = _info(bundle, m.recurrent, m).shape
        if len(shape) != 2 or shape[0] != shape[1] or shape[0] == 0:
            raise LoadError(f"{bundle.path}: recurrent matrix {m.recurrent!r} has shape "
                            f"{list(shape)}, not square", "W is N × N")
        return shape[0], None
    left = _info(bundle, m.left, m).shape
    right = _info(bundle, m.right, m).shape
    if len(left) != 2 or len(right) != 2:
        raise LoadError(f"{bundle.path}: low-rank factors {m.left} {list(left)} and {m.right} "
                        f"{list(right)} must be matrices", "left is N × r, right r × N")
    size, rank = left
    if right == (rank, size):
        transposed_right = False
    elif right == (size, rank):
        transposed_right = True
    else:
        raise LoadError(f"{bundle.path}: low-rank factors {m.left} {list(left)} and {m.right} "
                        f"{list(right)} do not fit", "left is N × r, right r × N (or N × r)")
    scale = _scale(m.scale, size, bundle)
    return size, LowRank(left=m.left, right=m.right, scale=scale,
                         right_transposed=transposed_right,
                         transposed=m.orientation == "columns")


def _scale(value: float | str, size: int, bundle: WeightBundle) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    text = value.replace(" ", "")
    if text == "1/N":
        return 1.0 / size
    if text == "1/sqrt(N)":
        return 1.0 / math.sqrt(size)
    raise LoadError(f"{bundle.path}: scale {value!r} is not a number, \"1/N\" or \"1/sqrt(N)\"",
                    "write the scale of W = scale · left right")


def _orientation(bundle: WeightBundle, m: RateMapping, size: int) -> str:
    w = ("W stored with rows = new state" if m.orientation == "rows"
         else "W stored transposed (x' = φ(x) W), transposed to rows = new state")
    if not m.input:
        return w
    stored = "rows" if _input_is_rows(bundle, m, size) else "columns"
    return w + ("; W_in stored N × I" if stored == "rows"
                else "; W_in stored I × N, transposed to N × I")


def _input_is_rows(bundle: WeightBundle, m: RateMapping, size: int) -> bool:
    shape = _info(bundle, m.input, m).shape
    if len(shape) != 2 or size not in shape:
        raise LoadError(f"{bundle.path}: input matrix {m.input!r} has shape {list(shape)}, "
                        f"which has no side of the state size {size}",
                        "W_in is N × I (rows) or I × N (columns)")
    if m.input_orientation != "auto":
        if shape[0 if m.input_orientation == "rows" else 1] != size:
            raise LoadError(f"{bundle.path}: input matrix {m.input!r} has shape {list(shape)}, "
                            f"not {m.input_orientation} = state size {size}",
                            "fix input_orientation in the map")
        return m.input_orientation == "rows"
    if shape[0] == size and shape[1] != size:
        return True
    if shape[1] == size and shape[0] != size:
        return False
    return m.orientation == "rows"


def _weight_hh(bundle, m: RateMapping, layout: Layout, size: int, low_rank):
    def compute() -> np.ndarray:
        if low_rank is not None:
            left, right = low_rank.factors(bundle)
            return left @ right
        w = bundle.array(m.recurrent)
        if m.mask:
            w = w * _same_shape(bundle, m.mask, w.shape)
        if m.dale:
            w = np.abs(w) @ _same_shape(bundle, m.dale, (size, size))
        return w.T if m.orientation == "columns" else w

    origin = (low_rank.describe() if low_rank is not None else
              _recipe(m.recurrent, m.mask, m.dale, m.orientation == "columns"))
    dtype = bundle.tensors[m.recurrent or m.left].dtype
    return derived_tensor(layout.tensor_name("weight_hh"), (size, size), dtype, compute, origin)


def _weight_ih(bundle, m: RateMapping, layout: Layout, size: int):
    rows = _input_is_rows(bundle, m, size)
    shape = bundle.tensors[m.input].shape
    width = shape[1] if rows else shape[0]

    def compute() -> np.ndarray:
        w = bundle.array(m.input)
        if m.input_mask:
            w = w * _same_shape(bundle, m.input_mask, w.shape)
        if m.dale:
            w = np.abs(w)
        w = w if rows else w.T
        return _input_scale(bundle, m) * w

    origin = _recipe(m.input, m.input_mask, None, not rows)
    if m.input_scale != 1.0:
        origin = f"{m.input_scale} · {origin}"
    return derived_tensor(layout.tensor_name("weight_ih"), (size, width),
                          bundle.tensors[m.input].dtype, compute, origin)


def _bias(bundle, m: RateMapping, layout: Layout, size: int):
    for name in m.bias:
        info = _info(bundle, name, m)
        if int(np.prod(info.shape)) != size or max(info.shape, default=1) != size:
            raise LoadError(f"{bundle.path}: bias {name!r} has shape {list(info.shape)}, "
                            f"not {size} values", "the bias has one value per unit")

    def compute() -> np.ndarray:
        return sum(bundle.array(name).reshape(size) for name in m.bias)

    return derived_tensor(layout.tensor_name("bias_ih"), (size,),
                          bundle.tensors[m.bias[0]].dtype, compute, " + ".join(m.bias))


def _same_shape(bundle: WeightBundle, name: str, shape: tuple[int, ...]) -> np.ndarray:
    values = bundle.array(name)
    if values.shape != tuple(shape):
        raise LoadError(f"{bundle.path}: {name!r} has shape {list(values.shape)}, expected "
                        f"{list(shape)}", "a mask has the shape of the matrix it masks")
    return values


def _input_scale(bundle: WeightBundle, m: RateMapping) -> float:
    if not isinstance(m.input_scale, str):
        return float(m.input_scale)
    values = bundle.array(_info(bundle, m.input_scale, m).name)
    if values.size != 1:
        raise LoadError(f"{bundle.path}: input_scale {m.input_scale!r} has {values.size} values, "
                        "not one", "input_scale is a number or a scalar tensor")
    return float(values.reshape(()))


def _recipe(name: str, mask: str | None, dale: str | None, transposed: bool) -> str:
    text = f"{name} ∘ {mask}" if mask else name
    if dale:
        text = f"|{text}| {dale}"
    return f"({text})ᵀ" if transposed else text
