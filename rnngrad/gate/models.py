"""Model arguments of ``rnngrad check``: files, folders and globs, in natural order."""

from __future__ import annotations

import glob
import re
from pathlib import Path

from rnngrad.errors import OptionError

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".npz", ".ckpt", ".h5", ".keras",
                   ".onnx")


def natural_key(path: str) -> list:
    """Sort key so that ckpt_2 comes before ckpt_10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path)]


def expand_models(arguments: list[str] | tuple[str, ...]) -> list[str]:
    """Each argument as given, a folder's weight files, or a glob's matches, in order."""
    models: list[str] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found = [str(p) for p in path.iterdir()
                     if p.is_file() and p.suffix.lower() in WEIGHT_SUFFIXES]
            if not found:
                raise OptionError(f"{argument}: folder holds no weight files",
                                  f"expected files ending in {', '.join(WEIGHT_SUFFIXES)}")
            models += sorted(found, key=natural_key)
        elif not path.exists() and any(ch in argument for ch in "*?["):
            found = [p for p in glob.glob(argument, recursive=True) if Path(p).is_file()]
            if not found:
                raise OptionError(f"{argument}: no file matches this pattern",
                                  "check the glob, or quote it for rnngrad to expand")
            models += sorted(found, key=natural_key)
        else:
            models.append(argument)
    return models
