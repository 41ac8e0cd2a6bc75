"""The parameter-gradient norm per probe sequence, and the clip threshold it gives.

For probe b with loss E_b at its last step (:func:`rnngrad.probes.heads.probe_loss`), the norm
of the whole gradient ‖∂E_b/∂θ‖ over every parameter of the analysed modules (and of the head
the loss goes through), by autograd through the cells' own equations; combined over modules
without squaring large numbers, and +inf when the forward pass overflows.
"""

from __future__ import annotations

import numpy as np
import torch

from rnngrad.bptt.clipping import ClipRecommendation, recommend
from rnngrad.bptt.options import BpttOptions
from rnngrad.cells.base import CellWeights
from rnngrad.cells.stack import ForwardOverflow, Group, run_stack
from rnngrad.probes.heads import Head, probe_loss


def gradient_norms(group: Group, weights: dict, inputs: torch.Tensor, head: Head | None,
                   options: BpttOptions, initial: dict | None = None) -> np.ndarray:
    """‖∂E_b/∂θ‖ per probe b (B,) over the group's parameters (and the head's, if used);
    ``initial`` maps a recurrence to its s_0 (B, S) (absent: zero)."""
    params = {rec: {name: value.detach().clone().requires_grad_(True)
                    for name, value in vars(w).items() if value is not None}
              for rec, w in weights.items()}
    norms = []
    for index in range(inputs.shape[0]):
        with torch.enable_grad():
            layers = [[(rec, CellWeights(**params[rec])) for rec in layer]
                      for layer in group.layers]
            try:
                start = ({rec: state[index:index + 1] for rec, state in initial.items()}
                         if initial is not None else None)
                _, output = run_stack(layers, inputs[index:index + 1], start)
            except ForwardOverflow:
                norms.append(np.inf)
                continue
            loss, head_params = probe_loss(output[:, -1], head, options.loss, index,
                                           options.probe.seed)
            leaves = [p for per in params.values() for p in per.values()] + head_params
            grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        norms.append(joint_norm([float(torch.linalg.vector_norm(g.double()))
                                 for g in grads if g is not None]))
    return np.asarray(norms)


def joint_norm(parts: list[float] | np.ndarray) -> float:
    """‖concat‖ from the norms of the parts, without squaring large numbers; inf if any is."""
    values = np.asarray(parts, dtype=np.float64)
    if values.size == 0:
        return 0.0
    if not np.all(np.isfinite(values)):
        return float("inf")
    top = values.max()
    return float(top * np.sqrt(np.sum((values / top) ** 2))) if top > 0 else 0.0


def clip_recommendation(per_group: list[np.ndarray], head: Head | None,
                        options: BpttOptions) -> ClipRecommendation | None:
    """The clip threshold from the per-probe norms of every analysed module, combined."""
    if not per_group:
        return None
    stacked = np.stack(per_group)  # (modules, B)
    norms = np.array([joint_norm(stacked[:, index]) for index in range(stacked.shape[1])])
    loss = options.loss if head is None else f"{options.loss} through {head.name}"
    return recommend(norms, rule=options.clip_rule, loss=loss)
