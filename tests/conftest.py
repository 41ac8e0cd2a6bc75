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


def run_installed(*args: str, cwd: Path | None = None, timeout: int = 300,
                  env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the installed ``rnngrad`` command in its own process, as a user does (torch's import
    costs ~2 s a process: keep this for what needs a process: entry points, signals, limits,
    payloads); never raises on a non-zero exit."""
    full_env = {**os.environ, "COLUMNS": "80", **(env or {})}
    return subprocess.run(rnngrad_command() + [str(a) for a in args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env=full_env)


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 300,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``rnngrad ARGS`` in this process through the same entry point as the installed
    command (``rnngrad.cli.main``): exit code, stdout and stderr as a subprocess would give
    them, 80 columns, stderr not a terminal. ``timeout`` is accepted for symmetry only."""
    import contextlib
    import io

    from rnngrad.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), Path.cwd()
    os.environ.update({"COLUMNS": "80", **(env or {})})
    code = 0
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                main([str(a) for a in args])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(["rnngrad", *map(str, args)], code, stdout.getvalue(),
                                       stderr.getvalue())


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
