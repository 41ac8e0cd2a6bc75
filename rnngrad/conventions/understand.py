"""The first step of every analysis: source -> bundle -> recurrences -> notes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rnngrad.cells import Recurrence
from rnngrad.conventions.options import ReadOptions
from rnngrad.errors import ResourceError
from rnngrad.io import WeightBundle, as_bundle, with_limit
from rnngrad.limits import gib


if TYPE_CHECKING:
    from rnngrad.conventions.mapping import RunSettings


@dataclass(frozen=True)
class Understood:
    """A source read and understood: its bundle, its recurrences in file order, notes (what
    the reader skipped or assumed, how each recurrence was understood), and the ``[probe]``
    settings of the map it was read with, if any."""

    bundle: WeightBundle
    recurrences: tuple[Recurrence, ...]
    notes: tuple[str, ...]
    settings: RunSettings | None = None


def understand(source: Any, options: ReadOptions = ReadOptions()) -> Understood:
    """Read ``source`` (a path, bundle, state dict or ``torch.nn.Module``) and find its
    recurrences: a ``--map`` file, else the map in the file's metadata (``rnngrad.map``), else
    the file's own layouts, else a known research convention, else PyTorch's key patterns;
    ``keys``, ``activation`` and ``leak`` apply.

    Nothing is read but headers: the recurrent weights' float64 size is checked against
    ``max_memory`` from their shapes, and every tensor read later is checked again
    (:attr:`~rnngrad.io.WeightBundle.max_bytes`)."""
    from rnngrad.cells.detection import find_recurrences
    from rnngrad.conventions.builtin import recognise
    from rnngrad.conventions.mapping import MAP_METADATA, apply_map_file, apply_map_metadata

    bundle = as_bundle(source, max_bytes=options.max_bytes)
    settings = None
    if options.map is not None:
        bundle, settings = apply_map_file(bundle, options.map)
    elif MAP_METADATA in bundle.metadata and not bundle.layouts:
        bundle, settings = apply_map_metadata(bundle)
    else:
        bundle = recognise(bundle)
    bundle = with_limit(bundle, options.max_bytes)
    recurrences = find_recurrences(bundle, keys=options.keys, activation=options.activation,
                                   leak=options.leak)
    check_weights_memory(bundle, recurrences, options.max_bytes)
    notes = _notes(bundle, recurrences)
    if settings is not None:
        notes += (f"{settings.source} says how the model runs: [probe] {settings.describe()} "
                  "(`rnngrad surface` uses it; options given replace it)",)
    return Understood(bundle=bundle, recurrences=recurrences, notes=notes, settings=settings)


def check_weights_memory(bundle: WeightBundle, recurrences: tuple[Recurrence, ...],
                         max_bytes: int) -> None:
    """Refuse, from shapes alone, recurrent weights whose float64 copies exceed ``max_bytes``
    (every analysis reads all of them; 200 recurrences of 60 MiB are 24 GB as float64)."""
    names = {name for rec in recurrences for name in rec.tensor_names if name in bundle.tensors}
    needed = sum(bundle.tensors[name].numel * 8 for name in names)
    if needed > max_bytes:
        raise ResourceError(f"{bundle.path}: the recurrent weights ({len(recurrences)} "
                            f"recurrence(s), {len(names)} tensors) need {gib(needed)} as "
                            f"float64, over the {gib(max_bytes)} memory limit",
                            "raise --max-memory if the machine has the memory, or analyse "
                            "fewer recurrences (--map, --key)")


def load(path: Any) -> WeightBundle:
    """The bundle of a weights file, its recurrences described when it follows a known
    research convention (``rnngrad.load``; :func:`rnngrad.io.load` is the file as it is)."""
    from rnngrad.conventions.builtin import recognise
    from rnngrad.io import load as read

    return recognise(read(path))


def _notes(bundle: WeightBundle, recurrences: tuple[Recurrence, ...]) -> tuple[str, ...]:
    """The loader's notes, then one line per recurrence on how the file was understood."""
    lines = tuple(line for line in (rec.understanding() for rec in recurrences) if line)
    derived = tuple(f"{name} = {origin}" for name, origin in bundle.derived.items())
    return bundle.notes + lines + derived
