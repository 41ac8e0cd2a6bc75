"""One Keras recurrent cell's arrays -> PyTorch-layout tensors and a :class:`Layout`.

Keras stores ``kernel`` (I × G·H), ``recurrent_kernel`` (H × G·H) and ``bias`` and computes
x·kernel + h·recurrent_kernel + bias, gate blocks along columns:

- LSTM: i, f, c, o (= PyTorch i, f, g, o); bias 4H, or 8H when saved by ``CuDNNLSTM``
  (input then recurrent biases; Keras adds the halves when loading them into an LSTM);
- GRU: z, r, h, mapped to PyTorch r, z, n; bias (2, 3H) for ``reset_after=True`` (input and
  recurrent biases, PyTorch's b_ih and b_hh), 3H for ``reset_after=False`` (input biases only;
  the cell ``gru_reset_before``), 6H when saved by ``CuDNNGRU`` (= reshape to (2, 3H));
- SimpleRNN: one block.

What the cell runs comes from the layer config the file carries (:func:`run_activations`):
``activation`` and ``recurrent_activation`` under rnngrad's names (``linear`` is ``identity``;
``hard_sigmoid`` is clip(0.2x + 0.5, 0, 1) before Keras 3 and clip(x/6 + 1/2, 0, 1) from Keras 3
on), ``reset_after`` (checked against the bias shape), ``go_backwards``. Without a config the
Keras version's defaults are assumed and a note says so; nothing is run silently.

Kernels are transposed gate by gate to PyTorch's (G·H × I) and (G·H × H). cuDNN weights
(bias 8H or 6H) are converted exactly as Keras' ``_convert_rnn_weights`` converts them: each
gate's input block k (I × H) becomes ``k.T.reshape(k.shape, order="F")`` in Keras' layout,
which is PyTorch's ``k.reshape(H, I)``; each recurrent block r becomes ``r.T`` in Keras' layout,
which is PyTorch's ``r`` itself.
"""

from __future__ import annotations

import re
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
    """Where one cell's arrays are (dataset paths), their shapes, and its layer config.

    ``has_config``: the file carries this layer's config (``config`` is then what it says);
    ``version``: the Keras version that wrote the file ("" when it names none);
    ``reversed_output``: a ``go_backwards`` layer (not a Bidirectional's backward half), whose
    outputs stay reversed.
    """

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
    has_config: bool = False
    version: str = ""
    reversed_output: bool = False


def describe(rnn: KerasRNN, read: Callable[[str], np.ndarray], flavour: str,
             where: str) -> tuple[Layout, dict[str, Derived], tuple[str, ...]]:
    """The layout, derived tensors and notes of one Keras cell."""
    hidden, gates = _sizes(rnn, where)
    kind = _kind(rnn, gates, where)
    variant = _variant(rnn, kind, hidden, where)
    nonlinearity, source, notes = run_activations(rnn, kind, variant, where)
    layout = Layout(module=rnn.module, direction=rnn.direction,
                    cell="gru_reset_before" if variant == "reset_before" else None,
                    nonlinearity=nonlinearity, nonlinearity_source=source,
                    convention=f"{flavour} {_kind_text(kind, variant, rnn)}",
                    gate_order=GATE_ORDER_TEXT[kind], orientation=_orientation_text(variant),
                    reversed_output=rnn.reversed_output)
    tensors = _tensors(rnn, layout, kind, variant, hidden, read)
    return layout, tensors, notes + _config_notes(rnn, kind)


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
    if rnn.class_name is not None and rnn.class_name not in CLASS_KIND:
        raise LoadError(f"{where}: layer {rnn.module} is a {rnn.class_name}, whose equations "
                        "rnngrad does not know", "rnngrad reads Keras SimpleRNN, GRU and LSTM "
                        "layers (and RNN layers over their cells)")
    kind = CLASS_KIND.get(rnn.class_name or "", GATES_KIND[gates])
    if KIND_GATES[kind] != gates:
        raise LoadError(f"{where}: layer {rnn.module} is a {rnn.class_name} but its recurrent "
                        f"kernel has {gates} gate blocks", "the file is inconsistent")
    return kind


def _variant(rnn: KerasRNN, kind: str, hidden: int, where: str) -> str:
    """standard | cudnn | reset_after | reset_before, from the bias shape (as Keras decides),
    checked against the config's ``reset_after``."""
    shape = rnn.bias_shape
    gates = KIND_GATES[kind]
    if shape is None:
        if kind == "GRU":
            return "reset_after" if _reset_after(rnn) else "reset_before"
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
    said = rnn.config.get("reset_after") if kind == "GRU" and rnn.has_config else None
    if isinstance(said, bool) and variant in ("reset_after", "reset_before") \
            and said != (variant == "reset_after"):
        raise LoadError(f"{where}: GRU {rnn.module} says reset_after={said} but its bias "
                        f"{list(shape)} is that of reset_after={not said}",
                        "the file is inconsistent; re-save the model")
    return variant


def _reset_after(rnn: KerasRNN) -> bool:
    """A bias-less GRU's reset_after: its config, else the default of its Keras version."""
    said = rnn.config.get("reset_after") if rnn.has_config else None
    return said if isinstance(said, bool) else not _keras2_before_2_3(rnn.version)


def run_activations(rnn: KerasRNN, kind: str, variant: str,
                    where: str) -> tuple[str, str, tuple[str, ...]]:
    """(nonlinearity, nonlinearity_source, notes): what the cell runs, as the file says.

    With a layer config: its ``activation`` (and ``recurrent_activation`` for gated cells),
    source ``"config"``; a name rnngrad does not run is a LoadError naming the layer. Without
    one: cuDNN weights ran cuDNN's fixed sigmoid/tanh (source ``"cell"``); otherwise the
    defaults of the file's Keras version, source ``"default"``, with a note.
    """
    gated = kind != "SimpleRNN"
    if (rnn.class_name or "").startswith("CuDNN"):  # cuDNN's cells have fixed activations
        return "sigmoid/tanh", "cell", ()
    if rnn.has_config:
        keys = ("recurrent_activation", "activation") if gated else ("activation",)
        missing = [key for key in keys if key not in rnn.config]
        defaults = {"activation": "tanh", "recurrent_activation": _default_recurrent(rnn.version)}
        names = [keras_activation(rnn.config.get(key, defaults[key]), rnn, key, where)
                 for key in keys]
        if not missing:
            return "/".join(names), "config", ()
        return "/".join(names), "default", (
            f"{rnn.module}: its layer config names no {' or '.join(missing)}: assumed "
            f"{', '.join(defaults[key] for key in missing)}, the default of Keras "
            f"{rnn.version or '3'}",)
    if not gated:
        return "tanh", "default", (f"{rnn.module}: no layer config in the file: assumed "
                                   "activation tanh (SimpleRNN's default)",)
    if variant == "cudnn":
        return "sigmoid/tanh", "cell", ()
    recurrent = keras_activation(_default_recurrent(rnn.version), rnn, "recurrent_activation",
                                 where)
    return f"{recurrent}/tanh", "default", (
        f"{rnn.module}: no layer config in the file: assumed activation tanh and "
        f"recurrent_activation {recurrent} (the defaults of Keras {rnn.version or '3'}; "
        "Keras ≤ 2.2 defaulted to hard_sigmoid, later versions to sigmoid)",)


def _default_recurrent(version: str) -> str:
    """Keras' default ``recurrent_activation`` (a Keras name) for the file's version."""
    return "hard_sigmoid" if _keras2_before_2_3(version) else "sigmoid"


def _keras2_before_2_3(version: str) -> bool:
    major, minor = _major_minor(version)
    return major is not None and (major, minor or 0) < (2, 3)


def _major_minor(version: str) -> tuple[int | None, int | None]:
    numbers = re.findall(r"\d+", version or "")
    major = int(numbers[0]) if numbers else None
    return major, int(numbers[1]) if len(numbers) > 1 else None


def keras_activation(value: Any, rnn: KerasRNN, key: str, where: str) -> str:
    """rnngrad's name for a Keras activation in a layer config, or a LoadError.

    ``hard_sigmoid`` depends on the Keras version: clip(0.2 x + 0.5, 0, 1) before Keras 3,
    clip(x/6 + 1/2, 0, 1) (relu6(x + 3)/6) from Keras 3 on. ``None`` and ``linear`` are the
    identity (Keras' ``activations.get(None)``).
    """
    name = _activation_name(value)
    if name == "hard_sigmoid":
        major, _ = _major_minor(rnn.version)
        if major is None:
            raise LoadError(f"{where}: layer {rnn.module} uses {key} hard_sigmoid but the file "
                            "names no Keras version, and hard_sigmoid changed in Keras 3",
                            "re-save the model with its Keras version (model.save)")
        return "hard_sigmoid" if major >= 3 else "hard_sigmoid_0.2"
    mapped = KERAS_ACTIVATIONS.get(name)
    if mapped is None:
        raise LoadError(f"{where}: layer {rnn.module} uses {key} {name!r}, which rnngrad's "
                        "cells do not run",
                        f"rnngrad runs {', '.join(sorted(KERAS_ACTIVATIONS))} and hard_sigmoid")
    return mapped


# Keras' activation names (keras.activations) -> rnngrad's (rnngrad.cells.activations).
KERAS_ACTIVATIONS = {"tanh": "tanh", "sigmoid": "sigmoid", "relu": "relu", "linear": "identity",
                     "none": "identity", "softsign": "softsign", "softplus": "softplus",
                     "elu": "elu", "selu": "selu", "swish": "silu", "silu": "silu",
                     "relu6": "relu6", "gelu": "gelu"}


def _activation_name(value: Any) -> str:
    if isinstance(value, dict):  # Keras 3 may serialise {"class_name": ..., "config": "tanh"}
        inner = value.get("config")
        value = inner if isinstance(inner, str) else value.get("class_name", "")
    if value is None:
        return "none"
    return str(value).rsplit(".", 1)[-1].lower()


def _config_notes(rnn: KerasRNN, kind: str) -> tuple[str, ...]:
    """What a layer config says (or does not) that deserves saying."""
    notes = []
    if kind == "GRU" and rnn.bias_shape is None and not isinstance(
            rnn.config.get("reset_after") if rnn.has_config else None, bool):
        notes.append(f"{rnn.module}: a GRU without biases whose file does not say reset_after: "
                     f"assumed reset_after={_reset_after(rnn)} (the default of Keras "
                     f"{rnn.version or '3'})")
    if rnn.has_config and rnn.config.get("stateful") is True:
        notes.append(f"{rnn.module}: a stateful layer; rnngrad starts every probe from the "
                     "zero state, as after reset_states()")
    if rnn.reversed_output:
        notes.append(f"{rnn.module}: go_backwards: the layer reads the sequence last step "
                     "first and returns its outputs in that order (lags count in its own time)")
    return tuple(notes)


def _kind_text(kind: str, variant: str, rnn: KerasRNN) -> str:
    name = rnn.class_name or kind
    text = {"cudnn": f"{name} with cuDNN weights (bias {rnn.bias_shape and rnn.bias_shape[0]} = "
                     "input + recurrent biases)",
            "reset_after": f"{name}(reset_after=True) = PyTorch GRU",
            "reset_before": f"{name}(reset_after=False): reset gate before the recurrent "
                            "matmul (cell gru_reset_before)"}.get(variant, name)
    if rnn.bias_shape is None:
        text += ", use_bias=False"
    return f"{text}{', go_backwards' if rnn.reversed_output else ''}"


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
