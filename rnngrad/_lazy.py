"""Lazy public names, so that ``import rnngrad`` (and each subpackage) costs next to nothing.

A package lists its public names and the module each comes from; the module is imported the
first time the name is looked up (PEP 562 ``__getattr__``). An analysis package can also be
called like its main function (``rnngrad.bptt(path, options)`` runs
:func:`rnngrad.bptt.analysis.bptt`), so the documented ``rnngrad.bptt(...)`` and
``rnngrad.bptt.BpttOptions`` both hold, whichever was imported first.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any, Callable


def lazy_names(package: str, names: dict[str, str]) -> tuple[Callable[[str], Any],
                                                             Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``names`` maps a name to its module."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        imported = importlib.import_module(module)
        # A subpackage listed under its own name is itself the value (rnngrad.bptt).
        value = imported if module == f"{package}.{name}" else getattr(imported, name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__


class _CallableModule(types.ModuleType):
    """A package that is also its main function: ``module(*args)`` calls ``module.<target>``."""

    _call_target: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(self, self._call_target)(*args, **kwargs)


def make_callable(package: str, target: str) -> None:
    """Let ``package(...)`` call its function ``target`` (looked up, so lazily imported)."""
    module = sys.modules[package]
    module.__class__ = _CallableModule
    module._call_target = target
