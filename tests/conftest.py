"""Shared fixtures: the installed command, and small models saved the ways users save them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"


def rnngrad_command() -> list[str]:
    found = shutil.which("rnngrad", path=str(Path(sys.executable).parent)) or shutil.which("rnngrad")
    assert found, "the rnngrad command is not installed (pip install -e .)"
    return [found]


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 300,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the installed ``rnngrad`` as a user does; never raises on a non-zero exit."""
    full_env = {**os.environ, "COLUMNS": "80", **(env or {})}
    return subprocess.run(rnngrad_command() + [str(a) for a in args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env=full_env)


def run_json(*args: str, **kwargs) -> tuple[int, dict]:
    result = run_cli(*args, "--format", "json", **kwargs)
    return result.returncode, json.loads(result.stdout)


def save_safetensors(module: torch.nn.Module, path: Path, prefix: str = "",
                     metadata: dict | None = None) -> Path:
    tensors = {f"{prefix}{k}": v.detach().contiguous() for k, v in module.state_dict().items()}
    save_file(tensors, str(path), metadata=metadata)
    return path


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def samples() -> Path:
    return SAMPLES
