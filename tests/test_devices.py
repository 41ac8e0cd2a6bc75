"""Where and in which precision bptt runs: --device and --dtype (issue #15, item 5).

No GPU is lent to this project's machines as a rule: the CUDA comparison runs only where
``torch.cuda.is_available()``; without CUDA, ``--device cuda`` must be a clean exit 2.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import SAMPLES, run_cli
from rnngrad.bptt import BpttOptions, bptt

MODEL = str(SAMPLES / "elman_exploding.safetensors")
CUDA = torch.cuda.is_available()


@pytest.mark.skipif(CUDA, reason="CUDA is available here")
@pytest.mark.parametrize("fmt", ["table", "json"])
def test_device_cuda_without_cuda_is_a_clean_exit_2(fmt):
    result = run_cli("bptt", MODEL, "--device", "cuda", "--format", fmt)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "rnngrad: error: --device cuda: no CUDA device is available; use --device cpu"]
    assert "Traceback" not in result.stderr + result.stdout


def _logs(**options) -> np.ndarray:
    report = bptt(MODEL, BpttOptions(lags="1..40", **options))
    return np.array([row.log10_norm for row in report.recurrences[0].rows])


def test_float32_agrees_with_float64_to_float32_accuracy():
    # 40 products of float32 Jacobians: each loses ~1e-7 relative; the norms stay within 1e-4
    np.testing.assert_allclose(10 ** (_logs(dtype="float32") - _logs()), 1, rtol=1e-4)


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-9), ("float32", 1e-4)])
def test_cuda_agrees_with_the_cpu(dtype, rtol):
    np.testing.assert_allclose(10 ** (_logs(device="cuda", dtype=dtype) - _logs()), 1, rtol=rtol)
