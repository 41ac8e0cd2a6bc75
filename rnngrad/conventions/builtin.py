"""Built-in recognition of research checkpoints that have no PyTorch RNN keys.

Recognised only when the file holds no ``weight_hh`` key, in this order:

- mackelab (phase-limit-cycle-RNNs, Pals, Macke & Barak): ``<p>w_rec`` (N × N) or the low-rank
  ``<p>m`` (N × r), ``<p>n`` (r × N) with W = m n / N; ``<p>w_inp`` (I × N) scaled by
  ``<p>w_inp_scale``; x' = (1 − α)x + α(W φ(x) + w_inp_scale · w_inpᵀ u). α = dt/τ and φ come
  from the ``<stem>_params.json`` beside the file (``dt``, ``tau_lims``, ``nonlinearity``);
  without it α = 0.1 and tanh, as in the published models.
- PsychRNN (Basic): ``W_rec`` (N × N), ``W_in`` (N × I), ``b_rec`` (N), with the masks
  ``rec_connectivity``/``input_connectivity`` and, when ``Dale_rec`` is not the identity,
  Dale's law W = |W_rec ∘ mask| Dale_rec; x' = (1 − α)x + α(W relu(x) + W_in u + b_rec).
  dt and τ are not saved with the weights: α = 0.1 (the examples' dt = 10, τ = 100).
- min-char-rnn (Karpathy): ``Wxh`` (H × V), ``Whh`` (H × H), ``bh`` (H × 1); Elman,
  h' = tanh(Wxh x + Whh h + bh).

Each recognition adds a note saying what was assumed and how to override it (``--leak``,
``--activation``, or a ``--map`` file).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from rnngrad.cells import RATE_NONLINEARITIES
from rnngrad.errors import LoadError, OptionError
from rnngrad.io.bundle import WeightBundle
from rnngrad.io.textfiles import read_text
from rnngrad.conventions.mapping import RateMapping, apply

_PYTORCH_RNN = re.compile(r"(^|\.)weight_hh(_l[0-9]+(_reverse)?)?\Z")
MAX_PARAMS_BYTES = 1024 * 1024  # a mackelab <name>_params.json sidecar: a few hundred bytes
OVERRIDE = "override with --leak α, --activation, or a --map FILE.toml"


def recognise(bundle: WeightBundle) -> WeightBundle:
    """``bundle`` with its recurrence described, if it follows a known convention."""
    if bundle.layouts or any(_PYTORCH_RNN.search(name) for name in bundle.tensors):
        return bundle
    for convention in (_mackelab, _psychrnn, _min_char_rnn):
        found = convention(bundle)
        if found is not None:
            mapping, notes = found
            return apply(bundle, (mapping,), notes)
    return bundle


def _square(bundle: WeightBundle, name: str) -> int | None:
    info = bundle.tensors.get(name)
    if info is None or not info.is_float or len(info.shape) != 2 or info.shape[0] != info.shape[1]:
        return None
    return info.shape[0]


def _shape(bundle: WeightBundle, name: str) -> tuple[int, ...] | None:
    info = bundle.tensors.get(name)
    return info.shape if info is not None and info.is_float else None


# --- mackelab -------------------------------------------------------------------------------


def _mackelab(bundle: WeightBundle):
    for name in bundle.tensors:
        match = re.fullmatch(r"(?P<p>(?:.*\.)?)(?P<key>w_rec|m)", name, flags=re.DOTALL)
        if not match:
            continue
        prefix = match["p"]
        size = _mackelab_size(bundle, prefix, match["key"])
        inputs = _shape(bundle, f"{prefix}w_inp")
        if size is None or inputs is None or len(inputs) != 2 or inputs[1] != size:
            continue
        return _mackelab_mapping(bundle, prefix, match["key"], size)
    return None


def _mackelab_size(bundle: WeightBundle, prefix: str, key: str) -> int | None:
    if key == "w_rec":
        return _square(bundle, f"{prefix}w_rec")
    left, right = _shape(bundle, f"{prefix}m"), _shape(bundle, f"{prefix}n")
    if left and right and len(left) == 2 and right == (left[1], left[0]) and left[1] < left[0]:
        return left[0]
    return None


def _mackelab_mapping(bundle: WeightBundle, prefix: str, key: str, size: int):
    params, where = _mackelab_params(bundle)
    alpha, phi = 0.1, "tanh"
    if params is not None:
        alpha, phi = _mackelab_dynamics(bundle, params, where)
        told = f"α = dt/τ = {params['dt']}/{params['tau_lims'][0]} = {alpha:g} and φ = {phi} " \
               f"from {where}"
    else:
        told = ("no *_params.json beside the file: assumed α = 0.1 (dt = 2, τ = 20) and "
                "φ = tanh, as in the published models")
    scale_name = f"{prefix}w_inp_scale"
    common = dict(source="built-in convention mackelab (phase-limit-cycle-RNNs)",
                  name=prefix.rstrip(".") or "rnn", input=f"{prefix}w_inp",
                  input_scale=scale_name if scale_name in bundle.tensors else 1.0,
                  input_orientation="columns", nonlinearity=phi,
                  nonlinearity_source="convention", leak=alpha,
                  leak_source="convention: " + ("params.json" if params else "assumed"))
    if key == "w_rec":
        mapping = RateMapping(recurrent=f"{prefix}w_rec", **common)
        what = f"{prefix}w_rec is W (rows = new state)"
    else:
        mapping = RateMapping(left=f"{prefix}m", right=f"{prefix}n", scale="1/N", **common)
        what = f"W = {prefix}m {prefix}n / N (rank {bundle.tensors[f'{prefix}m'].shape[1]})"
    note = (f"recognised the mackelab convention: x' = (1−α)x + α(W φ(x) + "
            f"w_inp_scale · w_inpᵀ u), {what}, {prefix}w_inp stored (inputs × N); {told}; "
            f"{OVERRIDE}")
    return mapping, (note,)


def _mackelab_params(bundle: WeightBundle) -> tuple[dict | None, str]:
    path = Path(bundle.path)
    stem = path.stem.removesuffix("_state_dict")
    candidate = path.with_name(f"{stem}_params.json")
    if not candidate.exists():
        return None, ""
    try:
        params = json.loads(read_text(candidate, "params file", MAX_PARAMS_BYTES))
    except OptionError as exc:
        raise LoadError(exc.message, "fix or remove the params file, or give a --map file"
                        ) from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise LoadError(f"{candidate}: not readable JSON ({exc})",
                        "fix or remove the params file, or give a --map file") from None
    return (params if isinstance(params, dict) else None), candidate.name


def _mackelab_dynamics(bundle: WeightBundle, params: dict, where: str) -> tuple[float, str]:
    taus, dt, phi = params.get("tau_lims"), params.get("dt"), params.get("nonlinearity", "tanh")
    if params.get("apply_dale"):
        raise LoadError(f"{bundle.path}: {where} says apply_dale, but the Dale mask is not "
                        "saved in the state dict", "describe W with a --map file")
    if not isinstance(taus, list) or len(taus) != 1 or not isinstance(dt, (int, float)):
        raise LoadError(f"{bundle.path}: {where} has tau_lims = {taus!r}, dt = {dt!r}; rnngrad "
                        "supports one τ for all units", "give the leak with --leak α or --map")
    if phi not in RATE_NONLINEARITIES:
        raise LoadError(f"{bundle.path}: {where} has nonlinearity {phi!r}",
                        f"rnngrad's rate cell runs {', '.join(RATE_NONLINEARITIES)}")
    alpha = float(dt) / float(taus[0])
    if not 0 < alpha <= 1:
        raise LoadError(f"{bundle.path}: {where} gives α = dt/τ = {alpha:g}, outside (0, 1]",
                        "give the leak with --leak α")
    return alpha, phi


# --- PsychRNN -------------------------------------------------------------------------------


def _psychrnn(bundle: WeightBundle):
    size = _square(bundle, "W_rec")
    inputs, bias = _shape(bundle, "W_in"), _shape(bundle, "b_rec")
    if size is None or not inputs or len(inputs) != 2 or inputs[0] != size \
            or bias is None or int(np.prod(bias)) != size:
        return None
    masks = {key: key if _shape(bundle, key) == shape else None for key, shape in
             (("rec_connectivity", (size, size)), ("input_connectivity", inputs))}
    dale, dale_note = _psychrnn_dale(bundle, size)
    mapping = RateMapping(
        source="built-in convention PsychRNN (Basic)", name="psychrnn", recurrent="W_rec",
        input="W_in", input_orientation="rows", bias=("b_rec",),
        mask=masks["rec_connectivity"], input_mask=masks["input_connectivity"], dale=dale,
        nonlinearity="relu", nonlinearity_source="convention", leak=0.1,
        leak_source="convention: assumed")
    note = ("recognised the PsychRNN convention: x' = (1−α)x + α(W relu(x) + W_in u + b_rec), "
            "W = W_rec ∘ rec_connectivity (rows = new state); " + dale_note
            + "; PsychRNN keeps dt and τ with the task, not the weights: assumed α = dt/τ = 0.1 "
            "(the examples' dt = 10, τ = 100) and relu (Basic; BasicSigmoid uses sigmoid); "
            + OVERRIDE)
    return mapping, (note,)


def _psychrnn_dale(bundle: WeightBundle, size: int) -> tuple[str | None, str]:
    if _shape(bundle, "Dale_rec") != (size, size):
        return None, "no Dale_rec: no Dale's law"
    if np.array_equal(bundle.array("Dale_rec"), np.eye(size)):
        return None, "Dale_rec is the identity, so no Dale's law (dale_ratio is not read)"
    return "Dale_rec", "Dale's law: W = |W_rec ∘ rec_connectivity| Dale_rec, W_in = |W_in ∘ mask|"


# --- min-char-rnn ---------------------------------------------------------------------------


def _min_char_rnn(bundle: WeightBundle):
    size = _square(bundle, "Whh")
    inputs, bias = _shape(bundle, "Wxh"), _shape(bundle, "bh")
    if size is None or not inputs or len(inputs) != 2 or inputs[0] != size:
        return None
    mapping = RateMapping(
        source="built-in convention min-char-rnn", name="min_char_rnn", recurrent="Whh",
        input="Wxh", input_orientation="rows",
        bias=("bh",) if bias is not None and int(np.prod(bias)) == size else (),
        form="elman", nonlinearity="tanh", nonlinearity_source="convention")
    note = ("recognised the min-char-rnn convention: h' = tanh(Wxh x + Whh h + bh), Whh with "
            "rows = new state; " + OVERRIDE)
    return mapping, (note,)
