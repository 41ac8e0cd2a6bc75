"""The layers around a recurrence that probes and losses can use: an input embedding and a
linear output head.

- Embedding: a 2-D tensor (V, I) whose name says so (``embedding.weight``, ``embed.weight``,
  ``encoder.weight``, ``emb.weight``, ...) with I equal to the first layer's input size.
- Head: ``<name>.weight`` of shape (C, W) (and optional ``<name>.bias``) where the last part of
  ``<name>`` is ``fc``, ``head``, ``decoder``, ``linear``, ``out``, ``output``, ``classifier``
  or ``readout`` and W is the width of the RNN's output (all directions of the top layer).

Probe losses, for probe b with top output y_T (the last step of the output sequence):
``readout`` E = uᵀ y_T with a seeded random unit u (the default, no head needed); ``mse``
½‖W_head y_T + b − target‖² and ``ce`` cross-entropy of W_head y_T + b, with seeded random
targets (N(0, 1) values; uniform class ids) or ``--targets FILE.npy``; ``squared``
‖y_T − target‖² on the output itself, no head and no ½ (Pascanu et al. 2013's
E = (σ(x_T) − 0.7)²), with ``--targets VALUE`` (every entry), ``FILE.npy`` (B, W) or (W,),
or seeded N(0, 1) targets. Probe b's readout or random target is drawn from
``numpy.random.default_rng([seed, 11, b])``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rnngrad.cells import Recurrence
from rnngrad.errors import OptionError, ProbeError
from rnngrad.io.bundle import WeightBundle
from rnngrad.io.npy import npy_header, read_npy
from rnngrad.limits import DEFAULT_MAX_BYTES

LOSSES = ("readout", "mse", "ce", "squared")
HEAD_NAMES = ("fc", "head", "decoder", "linear", "out", "output", "classifier", "readout")
_EMBEDDING = re.compile(r"(^|\.)(embedding|embeddings|embed|emb|encoder|word_embeddings)"
                        r"\.weight\Z")


@dataclass(frozen=True, kw_only=True)
class Head:
    """The linear head the ``mse`` and ``ce`` losses go through: ``weight`` (C, W), ``bias``
    (C,) or None, the weight's ``name`` in the file, and ``targets`` read from ``--targets``
    (None: seeded random targets)."""

    weight: torch.Tensor
    bias: torch.Tensor | None
    name: str
    targets: np.ndarray | None = None


def find_head(bundle: WeightBundle, top_layer: list[Recurrence]) -> str | None:
    """Name of the linear head's weight fed by this top layer, if the file has one."""
    width = sum(rec.output_size for rec in top_layer)
    for name, info in bundle.tensors.items():
        parts = name.split(".")
        if (len(parts) >= 2 and parts[-1] == "weight" and parts[-2] in HEAD_NAMES
                and len(info.shape) == 2 and info.shape[1] == width and info.is_float):
            return name
    return None


def load_head(bundle: WeightBundle, name: str | None, loss: str, targets: str | None,
              dtype: torch.dtype, device, max_bytes: int = DEFAULT_MAX_BYTES) -> Head | None:
    """The head ``name`` as tensors of ``dtype`` on ``device`` for ``loss`` ``mse`` or ``ce``;
    None for ``readout`` and ``squared``, which use none. An unknown loss, or a head loss
    without a head, is an OptionError."""
    if loss not in LOSSES:
        raise OptionError(f"--loss {loss!r} is not known", f"use one of: {', '.join(LOSSES)}")
    if loss in ("readout", "squared"):
        return None
    if name is None:
        raise OptionError(f"--loss {loss} needs a linear head on the RNN's output, and "
                          f"{bundle.path} has none", "use --loss readout (the default)")
    bias_name = name.removesuffix("weight") + "bias"
    weight = torch.as_tensor(bundle.array(name), dtype=dtype, device=device)
    bias = (torch.as_tensor(bundle.array(bias_name), dtype=dtype, device=device)
            if bias_name in bundle.tensors else None)
    return Head(weight=weight, bias=bias, name=name,
                targets=(_read_targets(Path(targets), loss, weight.shape[0], max_bytes)
                         if targets else None))


def _read_targets(path: Path, loss: str, classes: int, max_bytes: int) -> np.ndarray:
    """Targets from a regular ``.npy`` file: class ids (B,) for ``ce``, values (B, C) for
    ``mse``; the shape and dtype are checked from the header before the values are read."""
    header = npy_header(path, "--targets")
    if loss == "ce":
        if len(header.shape) != 1 or not np.issubdtype(header.dtype, np.integer):
            raise ProbeError(f"--targets {path}: cross-entropy needs class ids (B,), not "
                             f"{header.dtype} {list(header.shape)}",
                             "save integer class ids, one per sequence")
    elif (len(header.shape) != 2 or header.shape[1] != classes
          or not np.issubdtype(header.dtype, np.floating)):
        raise ProbeError(f"--targets {path}: MSE needs float targets (B, {classes}), not "
                         f"{header.dtype} {list(header.shape)}",
                         "save one target vector per sequence")
    if header.shape[0] == 0:
        raise ProbeError(f"--targets {path}: holds no targets (shape {list(header.shape)})",
                         "save one target per probe sequence")
    array = read_npy(path, "--targets", max_bytes)
    if loss == "ce":
        if array.min() < 0 or array.max() >= classes:
            raise ProbeError(f"--targets {path}: cross-entropy needs class ids in "
                             f"[0, {classes})", "save integer class ids, one per sequence")
        return array.astype(np.int64)
    if not np.all(np.isfinite(array)):
        raise ProbeError(f"--targets {path}: contains NaN or Inf", "clean the targets")
    return array.astype(np.float64)


def find_embedding(bundle: WeightBundle, input_size: int | None) -> np.ndarray | None:
    """The embedding table (V, I) whose width is ``input_size`` (any width for None)."""
    for name, info in bundle.tensors.items():
        if (_EMBEDDING.search(name) and len(info.shape) == 2
                and (input_size is None or info.shape[1] == input_size)):
            return bundle.array(name)
    return None


def probe_target(head: Head | None, loss: str, index: int, seed: int, width: int,
                 given: np.ndarray | None = None) -> np.ndarray:
    """What probe ``index``'s loss compares its top output (width W) with: the unit readout u
    (W,) (``readout``), the target (C,) (``mse``) or (W,) (``squared``), or the class id
    (``ce``). Given targets (the head's, else ``given``) are used in turn; otherwise drawn
    from ``default_rng([seed, 11, index])``."""
    rng = np.random.default_rng([seed, 11, index])
    if loss == "readout":
        u = rng.standard_normal(width)
        return u / np.linalg.norm(u)
    given = head.targets if head is not None and head.targets is not None else given
    if given is not None:
        return given[index % len(given)]
    if loss == "ce":
        return np.asarray(rng.integers(0, head.weight.shape[0]))
    return rng.standard_normal(head.weight.shape[0] if loss == "mse" else width)


def probe_loss(last_output: torch.Tensor, head: Head | None, loss: str, index: int, seed: int,
               ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The loss of probe ``index`` from its top output at T (1, W); returns (E, head leaves)."""
    target = probe_target(head, loss, index, seed, last_output.shape[-1])
    if head is None:
        u = torch.as_tensor(target, dtype=last_output.dtype, device=last_output.device)
        return (last_output @ u).sum(), []
    weight = head.weight.detach().clone().requires_grad_(True)
    bias = head.bias.detach().clone().requires_grad_(True) if head.bias is not None else None
    logits = last_output @ weight.T + (bias if bias is not None else 0)
    leaves = [weight] + ([bias] if bias is not None else [])
    if loss == "ce":
        target_t = torch.as_tensor([int(target)], device=logits.device)
        return torch.nn.functional.cross_entropy(logits, target_t), leaves
    target_t = torch.as_tensor(target, dtype=logits.dtype, device=logits.device)[None]
    return 0.5 * torch.sum((logits - target_t) ** 2), leaves


def per_probe_loss(last_output: torch.Tensor, loss: str, targets: torch.Tensor,
                   weight: torch.Tensor | None = None,
                   bias: torch.Tensor | None = None) -> torch.Tensor:
    """E_b for every probe b (B,) from the top outputs at T (B, W), as a pure function of its
    tensors (for ``torch.func``): ``targets`` stacks :func:`probe_target` over the probes;
    ``weight`` (C, W) and ``bias`` (C,) are the head's, for ``mse`` and ``ce``."""
    if loss == "readout":
        return (last_output * targets).sum(-1)
    if loss == "squared":
        return ((last_output - targets) ** 2).sum(-1)
    logits = last_output @ weight.T
    if bias is not None:
        logits = logits + bias
    if loss == "mse":
        return 0.5 * ((logits - targets) ** 2).sum(-1)
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return torch.logsumexp(logits, dim=-1) - picked


def squared_targets(spec: str, width: int) -> np.ndarray:
    """``--targets`` of the ``squared`` loss: a number for every entry, or a ``.npy`` of
    shape (B, W) or (W,); (n, W) float64, used in turn over the probes."""
    try:
        value = float(spec)
    except ValueError:
        value = None
    if value is not None:
        if not np.isfinite(value):
            raise ProbeError(f"--targets {spec}: the target must be finite",
                             "give a finite number or FILE.npy")
        return np.full((1, width), value)
    try:
        array = np.load(Path(spec), allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ProbeError(f"--targets {spec}: neither a number nor a readable .npy array "
                         f"({exc})", "give a number or save the targets with numpy.save") from None
    array = array[None] if array.ndim == 1 else array
    if (array.ndim != 2 or array.shape[1] != width or array.shape[0] == 0
            or not np.issubdtype(array.dtype, np.floating) or not np.all(np.isfinite(array))):
        raise ProbeError(f"--targets {spec}: the squared loss needs finite float targets "
                         f"(B, {width}) or ({width},), got {array.dtype} {list(array.shape)}",
                         "one target per output unit of the top layer")
    return array.astype(np.float64)
