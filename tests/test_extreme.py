"""spectrum without torch and without a full SVD: σ_max and σ_min by certified Lanczos, the
leading eigenvector by block inverse iteration, the Elman rest Jacobian in closed form; all
against numpy.linalg (LAPACK) and the cells' torch equations."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
import torch

import rnngrad.spectrum.extreme as extreme
import rnngrad.spectrum.matrix as matrix
from rnngrad.cells.detection import find_recurrences
from rnngrad.cells.base import cell_weights
from rnngrad.cells.rest import equations_rest_jacobian, rest_jacobian, rest_jacobian_of
from rnngrad.io import from_state_dict
from rnngrad.spectrum.extreme import extreme_singular_values, largest_singular_value
from rnngrad.spectrum.matrix import analyze_matrix, leading_eigenvectors, spectral_norm


def gaussian(size: int, seed: int, scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((size, size)) * scale / math.sqrt(size)


@pytest.mark.parametrize("size,seed", [(200, 0), (333, 1), (600, 2)])
def test_extreme_singular_values_match_lapack(size, seed):
    a = gaussian(size, seed)
    values = np.linalg.svd(a, compute_uv=False)
    top, bottom = extreme_singular_values(a)
    assert top == pytest.approx(values[0], rel=1e-12)
    # σ_min through the inverse: as accurate as LAPACK's own, eps·κ (κ ~ 1e3 here)
    assert bottom == pytest.approx(values[-1], rel=1e-10)


def test_outlier_and_clustered_singular_values():
    """A rank-one outlier over noise (fast) and an orthogonal matrix (no gap at all)."""
    rng = np.random.default_rng(4)
    u, v = rng.standard_normal((300, 1)), rng.standard_normal((1, 300))
    a = u @ v / 30 + gaussian(300, 5, 0.1)
    assert largest_singular_value(a) == pytest.approx(np.linalg.norm(a, 2), rel=1e-12)
    q = np.linalg.qr(rng.standard_normal((300, 300)))[0]
    assert extreme_singular_values(q) == pytest.approx((1.0, 1.0), abs=1e-12)


def test_singular_and_ill_conditioned_matrices_fall_back_to_the_svd():
    rng = np.random.default_rng(6)
    low = rng.standard_normal((300, 3)) @ rng.standard_normal((3, 300))  # rank 3
    values = np.linalg.svd(low, compute_uv=False)
    top, bottom = extreme_singular_values(low)
    assert top == pytest.approx(values[0], rel=1e-12)
    assert bottom == pytest.approx(values[-1], abs=1e-12 * values[0])  # 0 up to rounding
    graded = gaussian(300, 7) @ np.diag(np.logspace(0, -13, 300))  # κ ~ 1e13 > MAX_CONDITION
    values = np.linalg.svd(graded, compute_uv=False)
    assert extreme_singular_values(graded)[1] == pytest.approx(values[-1], rel=1e-9)
    assert extreme_singular_values(np.zeros((300, 300))) == (0.0, 0.0)


def test_not_converged_returns_none_and_spectral_norm_uses_lapack(monkeypatch):
    monkeypatch.setattr(extreme, "MAX_ITERATIONS", 1)
    a = gaussian(600, 8)
    assert largest_singular_value(a) is None
    assert spectral_norm(a) == pytest.approx(np.linalg.norm(a, 2), rel=1e-13)
    top, bottom = extreme_singular_values(a)
    values = np.linalg.svd(a, compute_uv=False)
    assert (top, bottom) == pytest.approx((values[0], values[-1]), rel=1e-13)


@pytest.mark.parametrize("scale", [1e160, 1e-160])
def test_entries_whose_gram_matrix_overflows_fall_back_to_lapack(scale, monkeypatch):
    """AᵀA of entries near 1e160 overflows (and of 1e-160 underflows): no crash, no warning,
    LAPACK's SVD gives the numbers (it scales internally)."""
    monkeypatch.setattr(matrix, "EXACT_SVD_MAX", 16)
    a = gaussian(60, 5) * scale
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spec = analyze_matrix(a, gamma=1.0)
    values = np.linalg.svd(a, compute_uv=False)
    assert spec.sigma_max == pytest.approx(values[0], rel=1e-12)
    assert spec.sigma_min == pytest.approx(values[-1], rel=1e-10)


@pytest.mark.parametrize("size,seed", [(40, 0), (90, 3), (130, 11)])
def test_analyze_matrix_above_the_exact_size_matches_numpy(size, seed, monkeypatch):
    """The Lanczos path of analyze_matrix (forced at small sizes) against eigvals + svd."""
    monkeypatch.setattr(matrix, "EXACT_SVD_MAX", 16)
    a = gaussian(size, seed, 1.3)
    spec = analyze_matrix(a, gamma=0.25, top=4)
    values = np.linalg.svd(a, compute_uv=False)
    assert spec.sigma_max == pytest.approx(values[0], rel=1e-12)
    assert spec.sigma_min == pytest.approx(values[-1], rel=1e-10)
    assert spec.condition_number == pytest.approx(values[0] / values[-1], rel=1e-10)
    assert spec.spectral_radius == pytest.approx(np.abs(np.linalg.eigvals(a)).max(), rel=1e-12)
    with_values = analyze_matrix(a, values=True)
    assert with_values.singular_values == pytest.approx(tuple(values), rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_leading_eigenvectors_real_and_complex(seed):
    """Right and left eigenvectors of the largest-modulus eigenvalue, real or a complex pair."""
    a = gaussian(150, 20 + seed, 1.1)
    eig, right = np.linalg.eig(a)
    index = int(np.argmax(np.abs(eig)))
    value, vector, left = leading_eigenvectors(a)
    assert value == pytest.approx(complex(eig[index]), rel=1e-12)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-12)
    assert np.linalg.norm(a @ vector - value * vector) < 1e-11 * abs(value)
    assert np.linalg.norm(a.T @ left - value * left) < 1e-11 * abs(value)
    # the same line as LAPACK's eigenvector (|cos| = 1 up to a complex phase)
    reference = right[:, index] / np.linalg.norm(right[:, index])
    assert abs(np.vdot(reference, vector)) == pytest.approx(1.0, abs=1e-9)


def _elman(nonlinearity: str, bias: bool, seed: int):
    torch.manual_seed(seed)
    module = torch.nn.RNN(3, 12, nonlinearity="relu" if nonlinearity == "relu" else "tanh",
                          bias=bias).double()  # the weights; the metadata names φ
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name.startswith("bias"):
                param.mul_(4.0)  # slopes at rest well away from 1 (and relu units off)
    state = {f"rnn.{k}": v for k, v in module.state_dict().items()}
    pytorch_name = "relu" if nonlinearity == "relu" else "tanh"
    bundle = from_state_dict(state, metadata={"rnn.nonlinearity": pytorch_name})
    # other φ as a Keras or ONNX file names them (a state dict can only say tanh or relu)
    return bundle, dataclasses.replace(find_recurrences(bundle)[0], nonlinearity=nonlinearity)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu", "sigmoid", "identity", "softsign", "elu"])
@pytest.mark.parametrize("bias", [True, False])
def test_elman_rest_jacobian_closed_form_equals_the_torch_equations(nonlinearity, bias):
    """NumPy's closed form where it knows φ', the cell's equations otherwise: both agree with
    one step of the torch equations (a Keras/ONNX Elman cell may use any activation)."""
    bundle, rec = _elman(nonlinearity, bias, seed=1)
    weights = cell_weights(bundle, rec)
    through_torch = equations_rest_jacobian(rec, weights)  # tanh in torch and NumPy: ulps apart
    np.testing.assert_allclose(rest_jacobian_of(rec, bundle), through_torch, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(rest_jacobian(rec, weights), through_torch, rtol=1e-12, atol=1e-15)
    if bias and nonlinearity == "relu":
        assert 0 < np.count_nonzero(np.abs(through_torch).sum(axis=1)) < 12  # some units off


@pytest.mark.slow
@pytest.mark.parametrize("sample, options", [("elman_exploding.safetensors", ()),
                                             ("elman_relu_npz.npz", ()),
                                             ("elman_relu_npz.npz", ("--leak", "0.2"))])
def test_spectrum_of_an_elman_or_leaky_file_never_imports_torch(sample, options):
    from conftest import SAMPLES
    from test_layout import _imported_after

    argv = ["spectrum", str(SAMPLES / sample), "-q", *options]
    imported = _imported_after(f"from rnngrad.cli import main; main({argv!r})")
    assert "numpy" in imported and "torch" not in imported


def test_a_complex_pair_falls_back_to_the_complex_lu(monkeypatch):
    """If the real (A − μI)(A − μ̄I) route misses the residual, the complex LU answers."""
    original = matrix._inverse_iteration
    calls = []

    def quadratic_fails(a, shifted, start, value, limit, rounds):
        calls.append(np.iscomplexobj(shifted))
        return None if rounds == 2 else original(a, shifted, start, value, limit, rounds)

    monkeypatch.setattr(matrix, "_inverse_iteration", quadratic_fails)
    a = gaussian(150, 20, 1.1)  # leading eigenvalue 0.81 + 0.79i
    value, vector, _ = leading_eigenvectors(a)
    assert value.imag != 0 and calls[:2] == [False, True]
    assert np.linalg.norm(a @ vector - value * vector) < 1e-11 * abs(value)
