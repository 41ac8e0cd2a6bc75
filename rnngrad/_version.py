"""The version of rnngrad: the one place it is written (pyproject.toml reads it from here).

A plain constant, so ``rnngrad --version`` needs no package metadata lookup.
"""

__version__ = "0.1.0"
