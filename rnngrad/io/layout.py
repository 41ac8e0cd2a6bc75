"""How a file that is not a PyTorch state dict describes its recurrences: :class:`Layout`.

Readers of such files (Keras, ONNX) and the research conventions end in a
:class:`~rnngrad.io.bundle.WeightBundle` whose recurrences are described explicitly by
:class:`Layout` records: the loader knows which tensors form a recurrence, in
which gate order and orientation they were stored and which cell they run. rnngrad's own
*derived* tensors (named as PyTorch names them, ``<module>.weight_hh_l0``, in PyTorch's
orientation and gate order) are computed lazily from the file's tensors, and each one says in
``WeightBundle.derived`` what it was computed from.

- :mod:`rnngrad.io.keras` (``rnngrad[keras]``, h5py): Keras 2/3 HDF5 and ``.keras`` archives;
- :mod:`rnngrad.io.onnx` (``rnngrad[onnx]``): RNN/LSTM/GRU operators of ONNX graphs;
- :mod:`rnngrad.conventions`: research checkpoints (``--map FILE.toml`` and the built-in
  min-char-rnn, PsychRNN and mackelab conventions).

A low-rank recurrent matrix W = scale · L R is described by :class:`LowRank`, so that its
spectrum can come from the small r × r problem (:mod:`rnngrad.spectrum.lowrank`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from rnngrad.errors import LoadError
from rnngrad.io.bundle import TensorInfo, WeightBundle


@dataclass(frozen=True, kw_only=True)
class Layout:
    """One recurrence as a format describes it, over derived tensors named the PyTorch way.

    The derived names are ``<module>.weight_hh_l<layer>[_reverse]`` (with ``weight_ih``,
    ``bias_ih``, ``bias_hh`` companions) or, for ``cell_module``, ``<module>.weight_hh``.
    ``cell`` overrides the guess from the row count (``"gru_reset_before"``, ``"leaky"``).
    ``has_input`` False: the recurrence has no input by design (a map without ``input``), so
    no ``weight_ih`` is missing: it runs on zero-width inputs, x_t = W φ(x_(t−1)) + b.
    ``nonlinearity`` is what the file says the cell runs (an Elman activation, or
    ``"gate/candidate"`` for gated cells; None: the cell's default) and ``nonlinearity_source``
    where it says so (``"config"``, ``"metadata"``, ``"default"``, ...).
    ``reversed_output``: a reverse direction that returns its outputs in the order it computed
    them (Keras ``go_backwards``), not flipped back as PyTorch's reverse directions are.
    """

    module: str
    layer: int = 0
    direction: str = "forward"
    cell_module: bool = False
    cell: str | None = None
    nonlinearity: str | None = None
    nonlinearity_source: str = "metadata"
    convention: str = ""
    gate_order: str = ""
    orientation: str = ""
    leak: float | None = None
    leak_source: str = ""
    low_rank: "LowRank | None" = None
    sources: tuple[str, ...] = ()
    has_input: bool = True
    reversed_output: bool = False

    def tensor_name(self, part: str) -> str:
        """The derived name of ``part`` (``weight_hh``, ``weight_ih``, ``bias_ih``, ...)."""
        prefix = f"{self.module}." if self.module else ""
        if self.cell_module:
            return f"{prefix}{part}"
        reverse = "_reverse" if self.direction == "reverse" else ""
        return f"{prefix}{part}_l{self.layer}{reverse}"


@dataclass(frozen=True)
class Derived:
    """A tensor rnngrad computes from the file's: its description, recipe and provenance."""

    info: TensorInfo
    compute: Callable[[], np.ndarray]
    origin: str


def derived_tensor(name: str, shape: tuple[int, ...], dtype: str,
                   compute: Callable[[], np.ndarray], origin: str) -> tuple[str, Derived]:
    """``(name, Derived)`` for a tensor of ``shape`` and ``dtype`` that ``compute`` makes
    (``origin``: from what), an item of :func:`with_derived`'s ``derived``."""
    return name, Derived(TensorInfo(name=name, shape=tuple(int(d) for d in shape), dtype=dtype),
                         compute, origin)


def with_derived(bundle: WeightBundle, derived: Mapping[str, Derived], layouts: tuple[Layout, ...],
                 notes: tuple[str, ...] = ()) -> WeightBundle:
    """``bundle`` plus derived tensors and the layouts over them.

    The file's own tensors stay listed (``inspect`` marks those a recurrence was computed from
    as used by it). The result remembers ``bundle`` as ``original``, so that a ``--map`` can
    start again from the file as read.
    """
    clash = sorted(set(derived) & set(bundle.tensors))
    if clash:
        raise LoadError(f"{bundle.path}: the file already holds a tensor named {clash[0]!r}, "
                        "which rnngrad would derive", "name the recurrence differently "
                        "(name = \"...\" in a --map file)")
    tensors = {**bundle.tensors, **{name: item.info for name, item in derived.items()}}
    fetch_own = bundle._fetch

    def fetch(name: str) -> np.ndarray:
        item = derived.get(name)
        return item.compute() if item is not None else fetch_own(name)

    return dataclasses.replace(
        bundle, tensors=tensors, notes=bundle.notes + notes, layouts=layouts,
        derived={name: item.origin for name, item in derived.items()},
        original=bundle.original or bundle, _fetch=fetch)


@dataclass(frozen=True, kw_only=True)
class LowRank:
    """W = scale · L R from two tensors of the file.

    ``left`` is stored (N × r); ``right`` is stored (r × N), or (N × r) when
    ``right_transposed``. ``transposed`` means the file's orientation has W acting on rows
    (x' = φ(x) W), so rnngrad's W (rows = new state) is the transpose of the product.
    """

    left: str
    right: str
    scale: float
    right_transposed: bool = False
    transposed: bool = False

    def describe(self) -> str:
        """``W = scale · left right`` (``right`` with ᵀ when stored transposed), as reports show
        it, the file's orientation noted when ``transposed``."""
        product = f"{self.left} {self.right}{'ᵀ' if self.right_transposed else ''}"
        text = f"W = {self.scale:.6g} · {product}"
        return f"{text}, transposed (columns orientation)" if self.transposed else text

    def factors(self, bundle) -> tuple[np.ndarray, np.ndarray]:
        """(L, R) with W = L @ R in rnngrad's orientation, the scale folded into L."""
        left = bundle.array(self.left)
        right = bundle.array(self.right)
        if self.right_transposed:
            right = right.T
        if self.transposed:
            left, right = right.T, left.T
        return self.scale * left, right


__all__ = ["Derived", "Layout", "LowRank", "derived_tensor", "with_derived"]
