"""``rnngrad inspect``: what is in a file, its tensors and the recurrences rnngrad finds in it.

Reads only the file's header and shapes (and each recurrent tensor once, to refuse NaN/Inf or
non-float weights), so it runs without torch for safetensors and npz files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rnngrad.cells import Recurrence, RecurrenceId
from rnngrad.conventions.options import ReadOptions
from rnngrad.conventions.understand import understand
from rnngrad.conventions.options import with_settings
from rnngrad.report import Document, ModelInfo, Record


@dataclass(frozen=True, kw_only=True)
class TensorRow(Record):
    """One tensor of the file: ``used_by`` is the label of the recurrence that uses it."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    used_by: str | None

    def to_dict(self) -> dict[str, Any]:
        # What Record.to_dict writes, without its generic walk: a file may hold 600,000 rows.
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype,
                "used_by": self.used_by}


@dataclass(frozen=True, kw_only=True)
class RecurrenceInfo(RecurrenceId):
    """A recurrence as found: its identity, and the file's tensors it is made of.

    ``missing`` names companions the file lacks (``weight_ih``: spectrum works, bptt
    cannot run); ``weight_ih`` etc. are None when the file has no such tensor.
    """

    weight_ih: str | None = None
    bias_ih: str | None = None
    bias_hh: str | None = None
    weight_hr: str | None = None
    missing: tuple[str, ...] = ()

    @classmethod
    def of(cls, rec: Recurrence) -> RecurrenceInfo:
        """The info of ``rec``: its identity, its tensor names and the companions it lacks."""
        return cls(**vars(rec.identity()), weight_ih=rec.weight_ih, bias_ih=rec.bias_ih,
                   bias_hh=rec.bias_hh, weight_hr=rec.weight_hr, missing=rec.missing)

    def json_extras(self) -> dict[str, Any]:
        return {"state_size": self.state_size}

    @property
    def tensor_names(self) -> tuple[str, ...]:
        """The tensors the recurrence uses, those it has of weight_ih, weight_hh, bias_ih, bias_hh
        and weight_hr, in that order."""
        names = (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self.weight_hr)
        return tuple(name for name in names if name)


@dataclass(frozen=True, kw_only=True)
class InspectReport(Document):
    """The tensors of a file (file order), its recurrences, metadata and notes."""

    command = "inspect"
    tensors: tuple[TensorRow, ...]
    recurrences: tuple[RecurrenceInfo, ...]
    metadata: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def unused(self) -> tuple[TensorRow, ...]:
        """The tensors no recurrence uses, in file order."""
        return tuple(row for row in self.tensors if row.used_by is None)

    def json_extras(self) -> dict[str, Any]:
        return {"unused_tensors": [row.name for row in self.unused]}


def inspect(source: Any, options: ReadOptions | None = None, **settings: Any) -> InspectReport:
    """The tensors of a file and the recurrences rnngrad finds in it.

    ``source`` is a path, a :class:`~rnngrad.io.WeightBundle`, a state dict or a
    ``torch.nn.Module``; ``settings`` are :class:`~rnngrad.conventions.ReadOptions` fields.
    """
    options = with_settings(ReadOptions, options, settings)
    understood = understand(source, options)
    bundle = understood.bundle
    for rec in understood.recurrences:  # refuse NaN/Inf or non-float recurrent weights here too
        for name in rec.tensor_names:
            if name in bundle.tensors:
                bundle.array(name)
    owner = {name: rec.label for rec in understood.recurrences
             for name in rec.tensor_names + rec.sources}
    rows = tuple(TensorRow(name=info.name, shape=info.shape, dtype=info.dtype,
                           used_by=owner.get(info.name)) for info in bundle.tensors.values())
    return InspectReport(model=ModelInfo.of(bundle), tensors=rows,
                         recurrences=tuple(RecurrenceInfo.of(rec)
                                           for rec in understood.recurrences),
                         notes=understood.notes, metadata=dict(sorted(bundle.metadata.items())))

