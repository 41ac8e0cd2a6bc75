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
targets (N(0, 1) values; uniform class ids) or ``--targets FILE.npy``.
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

LOSSES = ("readout", "mse", "ce")
HEAD_NAMES = ("fc", "head", "decoder", "linear", "out", "output", "classifier", "readout")
_EMBEDDING = re.compile(r"(^|\.)(embedding|embeddings|embed|emb|encoder|word_embeddings)"
                        r"\.weight\Z")


@dataclass(frozen=True, kw_only=True)
class Head:
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
    if loss not in LOSSES:
        raise OptionError(f"--loss {loss!r} is not known", f"use one of: {', '.join(LOSSES)}")
    if loss == "readout":
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


def find_embedding(bundle: WeightBundle, input_size: int) -> np.ndarray | None:
    for name, info in bundle.tensors.items():
        if _EMBEDDING.search(name) and len(info.shape) == 2 and info.shape[1] == input_size:
            return bundle.array(name)
    return None


def probe_loss(last_output: torch.Tensor, head: Head | None, loss: str, index: int, seed: int,
               ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The loss of probe ``index`` from its top output at T (1, W); returns (E, head leaves)."""
    rng = np.random.default_rng([seed, 11, index])
    if head is None:
        u = rng.standard_normal(last_output.shape[-1])
        u = torch.as_tensor(u / np.linalg.norm(u), dtype=last_output.dtype,
                            device=last_output.device)
        return (last_output @ u).sum(), []
    weight = head.weight.detach().clone().requires_grad_(True)
    bias = head.bias.detach().clone().requires_grad_(True) if head.bias is not None else None
    logits = last_output @ weight.T + (bias if bias is not None else 0)
    leaves = [weight] + ([bias] if bias is not None else [])
    classes = weight.shape[0]
    if loss == "ce":
        target = (head.targets[index % len(head.targets)] if head.targets is not None
                  else rng.integers(0, classes))
        target_t = torch.as_tensor([int(target)], device=logits.device)
        return torch.nn.functional.cross_entropy(logits, target_t), leaves
    target = (head.targets[index % len(head.targets)] if head.targets is not None
              else rng.standard_normal(classes))
    target_t = torch.as_tensor(target, dtype=logits.dtype, device=logits.device)[None]
    return 0.5 * torch.sum((logits - target_t) ** 2), leaves
