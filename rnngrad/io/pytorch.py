"""PyTorch files (``torch.save``), through ``torch.load(weights_only=True)`` only.

``weights_only`` unpickling accepts tensors and plain containers and refuses every other
global (a pickled ``nn.Module``, an ``os.system`` payload); rnngrad requires torch >= 2.10,
which has no known bypass. TorchScript archives and legacy (non-zip) pickles are refused
before this module is reached (:mod:`rnngrad.io.sniff`). Checkpoint dicts that nest a state
dict (``state_dict``, ``model``, ``model_state_dict``, ...) are unwrapped.

The archive is read without ``mmap``: a memory map of a file that a trainer truncates while
rnngrad reads it (``torch.save`` over the same path) kills the process with SIGBUS, which
no Python code can catch. Reading costs the archive's size in memory, so its declared size is
checked against the memory limit first (and refused as a zip bomb when absurd); a tensor's
float64 copy is checked by the bundle (:attr:`WeightBundle.max_bytes`) against its *shape*,
so a 2 KB file whose stride-0 view expands to 40000 × 40000 is refused before ``.double()``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from rnngrad.errors import LoadError, ResourceError
from rnngrad.io.archive import check_declared_sizes, zip_members
from rnngrad.io.bundle import TensorInfo, WeightBundle
from rnngrad.limits import gib

# Keys under which training scripts commonly nest the model's state dict, in order of preference.
STATE_DICT_KEYS = (
    "state_dict", "model_state_dict", "model_state", "model", "net", "network", "module",
    "params", "weights", "ema_state_dict", "ema",
)
SAVE_STATE_DICT_HINT = "save model.state_dict() with torch.save or safetensors instead"


def read_pytorch(file: Path, sha: str, max_bytes: int | None = None) -> WeightBundle:
    """The tensors of a ``torch.save`` zip archive (``sha``: its SHA-256), its storages read
    into memory after a size check against ``max_bytes``, loaded with ``weights_only=True``;
    a nested state dict is unwrapped and non-tensor entries skipped, each with a note. Arrays
    are fetched as float64."""
    import pickle

    import torch

    declared = check_declared_sizes(file, zip_members(file, SAVE_STATE_DICT_HINT),
                                    "re-save or re-download the weights")
    if max_bytes is not None and declared > max_bytes:
        raise ResourceError(f"{file}: reading this PyTorch archive needs {gib(declared)}, "
                            f"over the {gib(max_bytes)} memory limit",
                            "raise --max-memory if the machine has the memory, or save just "
                            "the recurrent weights")
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unsupported object"
        raise LoadError(f"{file}: refused: the pickle holds Python objects beyond plain tensors "
                        f"and containers ({first[:160]})", SAVE_STATE_DICT_HINT) from None
    except Exception as exc:  # torch raises many types for damaged archives
        raise LoadError(f"{file}: cannot be read as a PyTorch file "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})",
                        "re-save or re-download the weights") from None
    state, where = _find_state_dict(obj)
    if state is None:
        raise LoadError(f"{file}: holds no tensors rnngrad can find "
                        f"(top level is {type(obj).__name__})", SAVE_STATE_DICT_HINT)
    notes = (f"state dict taken from checkpoint key {where!r}",) if where else ()
    arrays = {str(name): value for name, value in state.items() if isinstance(value, torch.Tensor)}
    skipped = sorted(str(name) for name, value in state.items()
                     if not isinstance(value, torch.Tensor))
    if skipped:
        notes += (f"skipped {len(skipped)} non-tensor entries: {', '.join(skipped[:5])}",)
    tensors = {name: TensorInfo(name=name, shape=tuple(t.shape),
                                dtype=str(t.dtype).removeprefix("torch."))
               for name, t in arrays.items()}
    return WeightBundle(path=str(file), format="pytorch", sha256=sha, tensors=tensors,
                        notes=notes, _fetch=lambda name: arrays[name].double().numpy())


def _find_state_dict(obj: Any) -> tuple[dict[str, Any] | None, str]:
    """The mapping of tensors in a checkpoint, and the key it was nested under ('' if top)."""
    import torch

    if not isinstance(obj, Mapping):
        return None, ""
    if any(isinstance(value, torch.Tensor) for value in obj.values()):
        return dict(obj), ""
    for key in STATE_DICT_KEYS:
        inner = obj.get(key)
        if isinstance(inner, Mapping) and any(isinstance(v, torch.Tensor) for v in inner.values()):
            return dict(inner), key
    nested = [(key, value) for key, value in obj.items()
              if isinstance(value, Mapping)
              and any(isinstance(v, torch.Tensor) for v in value.values())]
    if len(nested) == 1:
        return dict(nested[0][1]), str(nested[0][0])
    return None, ""
