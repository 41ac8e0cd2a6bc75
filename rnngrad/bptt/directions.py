"""The exploding directions at the largest lag, compared with the theory's prediction.

Pascanu et al. (2013): in the linear case the gradient explodes along the leading eigenvector
of W_rec. For P_ℓ = W^ℓ the top left singular vector (at T) tends to the leading *right*
eigenvector of W and the top right singular vector (at T−ℓ) to the leading *left* one; we
report both cosines. Over several probes the direction is their principal axis (the top
eigenvector of Σ_b v_b v_bᵀ), and its consistency the mean |cos| between pairs of probes.
"""

from __future__ import annotations

import numpy as np

from rnngrad.bptt.report import Directions
from rnngrad.report import finite_or_none
from rnngrad.spectrum.matrix import leading_eigenvectors

ALIGNED, PARTLY = 0.9, 0.5


def exploding_directions(profile, reference: np.ndarray, reference_name: str) -> Directions:
    """The top singular directions of ∂s_T/∂s_(T−ℓ) at the largest lag over the probes, and
    their |cos| with the leading eigenvectors of ``reference`` (S × S)."""
    right, consistency_right = principal_direction(profile.right)
    left, consistency_left = principal_direction(profile.left)
    value, right_vec, left_vec = leading_eigenvectors(reference)
    cos_right = span_cosine(right, left_vec)
    cos_left = span_cosine(left, right_vec)
    return Directions(
        lag=int(profile.lags[-1]), log10_sigma=finite_or_none(float(np.mean(profile.log10_sigma))),
        right=tuple(float(x) for x in right), left=tuple(float(x) for x in left),
        consistency_right=consistency_right, consistency_left=consistency_left,
        cos_right_leading=cos_right, cos_left_leading=cos_left, reference=reference_name,
        leading_eigenvalue=(float(value.real), float(value.imag)),
        top_units_right=top_units(right), top_units_left=top_units(left),
        alignment=_alignment_words(min(cos_right, cos_left), reference_name))


def principal_direction(vectors: np.ndarray) -> tuple[np.ndarray, float]:
    """Sign-free average of unit vectors (B, S) and their mean pairwise |cos|."""
    units = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-300)
    _, _, vh = np.linalg.svd(units, full_matrices=False)
    axis = vh[0] * np.sign(vh[0][np.argmax(np.abs(vh[0]))])
    count = units.shape[0]
    if count < 2:
        return axis, 1.0
    cos = np.abs(units @ units.T)
    return axis, float((cos.sum() - np.trace(cos)) / (count * (count - 1)))


def span_cosine(vector: np.ndarray, eigenvector: np.ndarray) -> float:
    """|cos| between a real vector and the real span of a (possibly complex) eigenvector."""
    basis = np.stack([eigenvector.real, eigenvector.imag], axis=1)
    q, r = np.linalg.qr(basis)
    keep = np.abs(np.diag(r)) > 1e-12 * np.abs(r).max()
    projection = q[:, keep].T @ vector
    return float(min(np.linalg.norm(projection) / max(np.linalg.norm(vector), 1e-300), 1.0))


def top_units(vector: np.ndarray, count: int = 5) -> tuple[int, ...]:
    """The indices of the ``count`` largest |components|, largest first."""
    return tuple(int(i) for i in np.argsort(-np.abs(vector), kind="stable")[:count])


def _alignment_words(cosine: float, reference: str) -> str:
    if cosine >= ALIGNED:
        return f"aligned with the leading eigenvectors of the {reference} (|cos| ≥ {ALIGNED})"
    if cosine >= PARTLY:
        return f"partly aligned with the leading eigenvectors of the {reference}"
    return (f"not aligned with the leading eigenvectors of the {reference}: the nonlinearity "
            "along the probe decides the direction, not the linear prediction")


def save_directions(report, path) -> None:
    """Write each recurrence's exploding directions to a safetensors file (see
    :func:`directions_bytes`); the model file itself is refused."""
    from pathlib import Path

    from rnngrad.errors import OptionError

    target = Path(path)
    if target.exists() and target.resolve() == Path(report.model.path).resolve():
        raise OptionError(f"--save-directions {target} is the model file itself",
                          "choose another file name; rnngrad never changes its input")
    data = directions_bytes(report)
    try:
        target.write_bytes(data)
    except OSError as exc:
        raise OptionError(f"--save-directions {target}: cannot be written ({exc.strerror})",
                          "choose a writable path") from None


def directions_bytes(report) -> bytes:
    """The exploding directions of every recurrence as the bytes of a safetensors file.

    Keys ``<weight_hh>.right`` and ``<weight_hh>.left`` (float64 vectors) and
    ``<weight_hh>.log10_sigma``; metadata records the lag and the probe.
    """
    import json

    from safetensors.numpy import save

    tensors = {}
    for item in report.recurrences:
        if item.directions is None:
            continue
        name = item.recurrence.weight_hh
        tensors[f"{name}.right"] = np.asarray(item.directions.right, dtype=np.float64)
        tensors[f"{name}.left"] = np.asarray(item.directions.left, dtype=np.float64)
        sigma = item.directions.log10_sigma
        tensors[f"{name}.log10_sigma"] = np.asarray([-np.inf if sigma is None else sigma])
    probe = report.probe.to_dict() if report.probe is not None else None
    metadata = {"probe": json.dumps(probe), "model": report.model.path,
                "lags": report.options.lags}
    return save(tensors, metadata=metadata)
