"""Layer 3 of rnngrad: understanding a file, i.e. which recurrences it holds and how they run.

What lives here: the reading options every command shares (:mod:`.options`), the built-in
research conventions (min-char-rnn, PsychRNN, mackelab; :mod:`.builtin`), ``--map FILE.toml``
descriptions of research checkpoints (:mod:`.mapping`), and :func:`understand`, the first
step of every analysis: source -> bundle (with layouts) -> recurrences -> notes saying how the
file was understood.

What it may import: :mod:`rnngrad.io`, :mod:`rnngrad.cells` (torch-free parts), NumPy. It
imports no torch, so ``rnngrad inspect`` of a safetensors or npz file runs without it.
"""

from __future__ import annotations

from rnngrad._lazy import lazy_names
from rnngrad.conventions.options import ReadOptions

__getattr__, __dir__ = lazy_names(__name__, {
    "Understood": "rnngrad.conventions.understand", "understand": "rnngrad.conventions.understand",
    "load": "rnngrad.conventions.understand",
})

__all__ = ["ReadOptions", "Understood", "load", "understand"]
