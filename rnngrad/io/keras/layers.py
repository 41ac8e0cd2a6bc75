"""One Keras recurrent cell's arrays -> PyTorch-layout tensors and a :class:`Layout`.

Keras stores ``kernel`` (I × G·H), ``recurrent_kernel`` (H × G·H) and ``bias`` and computes
x·kernel + h·recurrent_kernel + bias, gate blocks along columns:

- LSTM: i, f, c, o (= PyTorch i, f, g, o); bias 4H, or 8H when saved by ``CuDNNLSTM``
  (input then recurrent biases; Keras adds the halves when loading them into an LSTM);
- GRU: z, r, h, mapped to PyTorch r, z, n; bias (2, 3H) for ``reset_after=True`` (input and
  recurrent biases, PyTorch's b_ih and b_hh), 3H for ``reset_after=False`` (input biases only;
  the cell ``gru_reset_before``), 6H when saved by ``CuDNNGRU`` (= reshape to (2, 3H));
- SimpleRNN: one block, tanh or relu.

Kernels are transposed gate by gate to PyTorch's (G·H × I) and (G·H × H). cuDNN weights
(bias 8H or 6H) are converted exactly as Keras' ``_convert_rnn_weights`` converts them: each
gate's input block k (I × H) becomes ``k.T.reshape(k.shape, order="F")`` in Keras' layout,
which is PyTorch's ``k.reshape(H, I)``; each recurrent block r becomes ``r.T`` in Keras' layout,
which is PyTorch's ``r`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from rnngrad.errors import LoadError
from rnngrad.io.layout import Derived, Layout, derived_tensor

KIND_GATES = {"SimpleRNN": 1, "GRU": 3, "LSTM": 4}
GATES_KIND = {gates: kind for kind, gates in KIND_GATES.items()}
CLASS_KIND = {"SimpleRNN": "SimpleRNN", "SimpleRNNCell": "SimpleRNN", "LSTM": "LSTM",
              "LSTMCell": "LSTM", "CuDNNLSTM": "LSTM", "GRU": "GRU", "GRUCell": "GRU",
              "CuDNNGRU": "GRU"}
# PyTorch's gate block i is Keras' block ORDER[kind][i].
ORDER = {"SimpleRNN": (0,), "LSTM": (0, 1, 2, 3), "GRU": (1, 0, 2)}
GATE_ORDER_TEXT = {"LSTM": "Keras i,f,c,o = PyTorch i,f,g,o", "GRU": "Keras z,r,h → PyTorch r,z,n",
                   "SimpleRNN": ""}


@dataclass(frozen=True, kw_only=True)
class KerasRNN:
    """Where one cell's arrays are (dataset paths), their shapes, and its layer config."""

    module: str
    direction: str
    kernel: str
    recurrent: str
    bias: str | None
    kernel_shape: tuple[int, ...]
    recurrent_shape: tuple[int, ...]
    bias_shape: tuple[int, ...] | None
    dtype: str
    class_name: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)


def describe(rnn: KerasRNN, read: Callable[[str], np.ndarray], flavour: str,
             where: str) -> tuple[Layout, dict[str, Derived], tuple[str, ...]]:
    """The layout, derived tensors and notes of one Keras cell."""
    hidden, gates = _sizes(rnn, where)
    kind = _kind(rnn, gates, where)
    variant = _variant(rnn, kind, hidden, where)
    nonlinearity, notes = _activations(rnn, kind, variant, where)
    layout = Layout(module=rnn.module, direction=rnn.direction,
                    cell="gru_reset_before" if variant == "reset_before" else None,
                    nonlinearity=nonlinearity, nonlinearity_source=_nl_source(rnn),
                    convention=f"{flavour} {_kind_text(kind, variant, rnn)}",
                    gate_order=GATE_ORDER_TEXT[kind], orientation=_orientation_text(variant))
    tensors = _tensors(rnn, layout, kind, variant, hidden, read)
    return layout, tensors, notes


def _sizes(rnn: KerasRNN, where: str) -> tuple[int, int]:
    if len(rnn.recurrent_shape) != 2 or len(rnn.kernel_shape) != 2 \
            or rnn.recurrent_shape[0] == 0:
        raise LoadError(f"{where}: {rnn.recurrent} {list(rnn.recurrent_shape)} and {rnn.kernel} "
                        f"{list(rnn.kernel_shape)} are not a Keras RNN's matrices",
                        "kernel is I × G·H and recurrent_kernel H × G·H")
    hidden, width = rnn.recurrent_shape
    gates = width // hidden
    if gates * hidden != width or gates not in GATES_KIND or rnn.kernel_shape[1] != width:
        raise LoadError(f"{where}: {rnn.recurrent} has shape {list(rnn.recurrent_shape)} and "
                        f"{rnn.kernel} {list(rnn.kernel_shape)}: not 1, 3 or 4 gate blocks of "
                        f"{hidden} units", "rnngrad reads Keras SimpleRNN, GRU and LSTM layers")
    return hidden, gates


def _kind(rnn: KerasRNN, gates: int, where: str) -> str:
    kind = CLASS_KIND.get(rnn.class_name or "", GATES_KIND[gates])
    if KIND_GATES[kind] != gates:
        raise LoadError(f"{where}: layer {rnn.module} is a {rnn.class_name} but its recurrent "
                        f"kernel has {gates} gate blocks", "the file is inconsistent")
    return kind


def _variant(rnn: KerasRNN, kind: str, hidden: int, where: str) -> str:
    """standard | cudnn | reset_after | reset_before, from the bias shape (as Keras decides)."""
    shape = rnn.bias_shape
    gates = KIND_GATES[kind]
    if shape is None:
        if kind == "GRU":
            return "reset_after" if rnn.config.get("reset_after", True) else "reset_before"
        return "standard"
    known = {(gates * hidden,): "reset_before" if kind == "GRU" else "standard",
             (2 * gates * hidden,): "cudnn"}
    if kind == "GRU":
        known[(2, gates * hidden)] = "reset_after"
    if kind == "SimpleRNN":
        known.pop((2 * hidden,))
    variant = known.get(tuple(shape))
    if variant is None:
        raise LoadError(f"{where}: {rnn.bias} has shape {list(shape)}, which fits no Keras "
                        f"{kind} of {hidden} units", "the file is damaged or not Keras'")
    return variant


def _activations(rnn: KerasRNN, kind: str, variant: str, where: str) -> tuple[str | None, tuple]:
    config = rnn.config
    if kind == "SimpleRNN":
        activation = _activation_name(config.get("activation", "tanh"))
        if activation not in ("tanh", "relu"):
            raise LoadError(f"{where}: SimpleRNN {rnn.module} uses activation {activation!r}",
                            "rnngrad's Elman cell runs tanh or relu")
        return activation, ()
    if variant == "cudnn" or (rnn.class_name or "").startswith("CuDNN"):
        return None, ()
    activation = _activation_name(config.get("activation", "tanh"))
    recurrent = _activation_name(config.get("recurrent_activation", "sigmoid"))
    if activation != "tanh" or recurrent != "sigmoid":
        raise LoadError(f"{where}: {kind} {rnn.module} uses activation {activation!r} and "
                        f"recurrent_activation {recurrent!r}",
                        "rnngrad's gated cells run tanh with the logistic sigmoid (Keras ≤ 2.2 "
                        "defaulted to hard_sigmoid); re-save with recurrent_activation='sigmoid'")
    if not config:
        return None, (f"{rnn.module}: no layer config in the file: assumed activation tanh and "
                      "recurrent_activation sigmoid (Keras ≥ 2.3 defaults; Keras ≤ 2.2 used "
                      "hard_sigmoid)",)
    return None, ()


def _activation_name(value: Any) -> str:
    if isinstance(value, dict):  # Keras 3 may serialise {"class_name": ..., "config": "tanh"}
        inner = value.get("config")
        value = inner if isinstance(inner, str) else value.get("class_name", "")
    return str(value).rsplit(".", 1)[-1].lower()


def _nl_source(rnn: KerasRNN) -> str:
    return "metadata" if rnn.config else "default"


def _kind_text(kind: str, variant: str, rnn: KerasRNN) -> str:
    name = rnn.class_name or kind
    text = {"cudnn": f"{name} with cuDNN weights (bias {rnn.bias_shape and rnn.bias_shape[0]} = "
                     "input + recurrent biases)",
            "reset_after": f"{name}(reset_after=True) = PyTorch GRU",
            "reset_before": f"{name}(reset_after=False): reset gate before the recurrent "
                            "matmul (cell gru_reset_before)"}.get(variant, name)
    if rnn.bias_shape is None:
        text += ", use_bias=False"
    return f"{text}{', go_backwards' if rnn.direction == 'reverse' else ''}"


def _orientation_text(variant: str) -> str:
    if variant == "cudnn":
        return ("cuDNN layout converted as Keras does: each gate's kernel block read as an "
                "H × I row-major matrix, recurrent blocks kept as stored")
    return "kernel I × G·H and recurrent_kernel H × G·H transposed gate by gate to G·H × I, G·H × H"


# --- the derived tensors ---------------------------------------------------------------------


def _tensors(rnn: KerasRNN, layout: Layout, kind: str, variant: str, hidden: int,
             read: Callable[[str], np.ndarray]) -> dict[str, Derived]:
    gates, order, cudnn = KIND_GATES[kind], ORDER[kind], variant == "cudnn"
    inputs = rnn.kernel_shape[0]

    def kernel() -> np.ndarray:
        blocks = np.hsplit(read(rnn.kernel), gates)
        blocks = [b.reshape(hidden, inputs) if cudnn else b.T for b in blocks]
        return np.concatenate([blocks[k] for k in order], axis=0)

    def recurrent() -> np.ndarray:
        blocks = np.hsplit(read(rnn.recurrent), gates)
        blocks = [b if cudnn else b.T for b in blocks]
        return np.concatenate([blocks[k] for k in order], axis=0)

    how = "per gate as cuDNN stores it" if cudnn else "transposed per gate"
    out = dict([
        derived_tensor(layout.tensor_name("weight_ih"), (gates * hidden, inputs), rnn.dtype,
                       kernel, f"{rnn.kernel} {how}"),
        derived_tensor(layout.tensor_name("weight_hh"), (gates * hidden, hidden), rnn.dtype,
                       recurrent, f"{rnn.recurrent} {how}")])
    if rnn.bias is not None:
        out.update(_biases(rnn, layout, variant, gates * hidden, order, read))
    return out


def _biases(rnn: KerasRNN, layout: Layout, variant: str, rows: int, order: tuple[int, ...],
            read: Callable[[str], np.ndarray]) -> dict[str, Derived]:
    def reordered(vector: np.ndarray) -> np.ndarray:
        return np.concatenate([np.split(vector, len(order))[k] for k in order])

    def both() -> np.ndarray:
        return read(rnn.bias).reshape(2, rows)

    if variant in ("cudnn", "reset_after") and len(order) == 3:  # GRU: b_ih and b_hh
        return dict([
            derived_tensor(layout.tensor_name("bias_ih"), (rows,), rnn.dtype,
                           lambda: reordered(both()[0]), f"{rnn.bias} input half"),
            derived_tensor(layout.tensor_name("bias_hh"), (rows,), rnn.dtype,
                           lambda: reordered(both()[1]), f"{rnn.bias} recurrent half")])
    if variant == "cudnn":  # LSTM: Keras adds the input and recurrent halves
        return dict([derived_tensor(layout.tensor_name("bias_ih"), (rows,), rnn.dtype,
                                    lambda: reordered(both().sum(axis=0)),
                                    f"{rnn.bias} input + recurrent halves")])
    return dict([derived_tensor(layout.tensor_name("bias_ih"), (rows,), rnn.dtype,
                                lambda: reordered(read(rnn.bias)), rnn.bias)])
