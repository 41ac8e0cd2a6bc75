"""Reference numbers for the sample checkpoints, computed independently of rnngrad.

Usage (from the repository root; prints Markdown)::

    python sample_models/measure_samples.py [--max-lag 100] [--no-cross-check]

For every recurrence in every sample this reads the file from disk, rebuilds PyTorch's own
cells (``nn.RNNCell`` / ``nn.LSTMCell`` / ``nn.GRUCell``) in float64 and reports

* spectrum (numpy.linalg): per block of ``weight_hh`` (Elman "hh"; LSTM rows i, f, g, o; GRU
  rows r, z, n) the spectral radius rho, sigma_max and sigma_min; for Elman cells also
  gamma * sigma_max (gamma = 1 for tanh and relu) and the Pascanu et al. (2013) verdict;
* bptt: the spectral norm of d s_T / d s_{T-lag} for each probe sequence, summarised as the
  geometric mean, min and max over the batch. Step Jacobians come from ``torch.func.jacrev``
  of the cell; their product is carried in log space. State s = h (Elman, GRU) or s = [h; c]
  (LSTM, h first). In a stack, layer k is driven by layer k-1's output (forward then reverse
  concatenated); a reverse direction runs over the reversed sequence and counts lags in its
  own direction. Each product is cross-checked against jacrev through the unrolled steps.

Probe: ``np.random.default_rng(0).standard_normal((8, 200, I))`` (batch 8, 200 steps, N(0,1)
inputs, float64), zero initial state, anchor T = the last step (200). The same arrays are
written to ``probes/gaussian_seed0_B8_T200_I{I}.npy`` so ``rnngrad bptt --inputs`` can be run
on exactly these inputs. Also reported: max |h| over a 300-step probe (seed 1), run in the
file's own dtype, to show the forward pass stays finite.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from torch import nn
from torch.func import jacrev, vmap

SAMPLE_DIR = Path(__file__).resolve().parent
PROBE_DIR = SAMPLE_DIR / "probes"
BATCH, STEPS = 8, 200
REPORT_LAGS = (1, 10, 50, 100)
CROSS_CHECK_LAGS = (10, 100)
GATES = {"rnn": ("hh",), "lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}


@dataclass(frozen=True)
class Recurrence:
    """One recurrent module in a sample file. ``suffixless`` marks nn.*Cell (no ``_l0``)."""

    file: str
    prefix: str
    cell: str
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bidirectional: bool = False
    nonlinearity: str = "tanh"
    suffixless: bool = False


RECURRENCES = (
    Recurrence("elman_vanishing.safetensors", "rnn.", "rnn", 8, 32),
    Recurrence("elman_exploding.safetensors", "rnn.", "rnn", 8, 32, nonlinearity="relu"),
    Recurrence("elman_orthogonal.safetensors", "rnn.", "rnn", 8, 32),
    Recurrence("lstm_2layer.pt", "encoder.", "lstm", 16, 24, num_layers=2),
    Recurrence("gru_bidirectional.safetensors", "encoder.", "gru", 10, 20, bidirectional=True),
    Recurrence("adding_task_lstm.safetensors", "lstm.", "lstm", 2, 32),
    Recurrence("elman_relu_npz.npz", "", "rnn", 4, 16, nonlinearity="relu"),
    Recurrence("two_modules.safetensors", "encoder.rnn.", "rnn", 6, 12),
    Recurrence("two_modules.safetensors", "decoder.cell.", "gru", 12, 12, suffixless=True),
)


# --------------------------------------------------------------------------- loading


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a sample, in the file's own dtype (safe loaders only)."""
    if path.suffix == ".safetensors":
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    if path.suffix == ".pt":
        return dict(torch.load(path, weights_only=True)["model_state_dict"])
    with np.load(path, allow_pickle=False) as arrays:
        return {k: torch.from_numpy(arrays[k]) for k in arrays.files}


def cell_params(tensors: dict, rec: Recurrence, layer: int, reverse: bool) -> dict[str, torch.Tensor]:
    suffix = "" if rec.suffixless else f"_l{layer}" + ("_reverse" if reverse else "")
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    return {n: tensors[f"{rec.prefix}{n}{suffix}"] for n in names}


def make_cell(rec: Recurrence, params: dict[str, torch.Tensor], dtype: torch.dtype) -> nn.Module:
    input_size = params["weight_ih"].shape[1]
    if rec.cell == "rnn":
        cell = nn.RNNCell(input_size, rec.hidden_size, nonlinearity=rec.nonlinearity, dtype=dtype)
    elif rec.cell == "lstm":
        cell = nn.LSTMCell(input_size, rec.hidden_size, dtype=dtype)
    else:
        cell = nn.GRUCell(input_size, rec.hidden_size, dtype=dtype)
    cell.load_state_dict({k: v.to(dtype) for k, v in params.items()})
    return cell


def step_function(cell: nn.Module, rec: Recurrence):
    """s_t = step(s_{t-1}, x_t) on a flat state (LSTM: s = [h; c], h first). Works batched."""
    if rec.cell != "lstm":
        return lambda s, x: cell(x, s)

    def lstm_step(s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h, c = s[..., : rec.hidden_size], s[..., rec.hidden_size :]
        h_new, c_new = cell(x, (h, c))
        return torch.cat([h_new, c_new], dim=-1)

    return lstm_step


# --------------------------------------------------------------------------- forward pass


@dataclass
class Run:
    """One (layer, direction) driven by its input sequence xs (T, B, I); states (T+1, B, S)."""

    name: str
    step: object
    xs: torch.Tensor
    states: torch.Tensor


def unroll(step, xs: torch.Tensor, state_size: int) -> torch.Tensor:
    states = [torch.zeros(xs.shape[1], state_size, dtype=xs.dtype)]
    with torch.no_grad():
        for x in xs:
            states.append(step(states[-1], x))
    return torch.stack(states)


def run_stack(tensors: dict, rec: Recurrence, inputs: torch.Tensor) -> tuple[list[Run], torch.Tensor]:
    """Run all layers/directions on inputs (B, T, I); return the runs and the top output (B, T, D*H)."""
    state_size = 2 * rec.hidden_size if rec.cell == "lstm" else rec.hidden_size
    layer_input = inputs.transpose(0, 1)  # (T, B, I)
    runs: list[Run] = []
    for layer in range(rec.num_layers):
        outputs = []
        for reverse in (False, True)[: 1 + rec.bidirectional]:
            params = cell_params(tensors, rec, layer, reverse)
            step = step_function(make_cell(rec, params, inputs.dtype), rec)
            xs = layer_input.flip(0) if reverse else layer_input
            states = unroll(step, xs, state_size)
            name = f"{rec.prefix}weight_hh" + ("" if rec.suffixless else f"_l{layer}" + ("_reverse" if reverse else ""))
            runs.append(Run(name, step, xs, states))
            h = states[1:, :, : rec.hidden_size]
            outputs.append(h.flip(0) if reverse else h)
        layer_input = torch.cat(outputs, dim=-1)
    return runs, layer_input.transpose(0, 1)


def check_against_pytorch_module(tensors: dict, rec: Recurrence, inputs: torch.Tensor, output: torch.Tensor) -> None:
    """Oracle: our cell-by-cell stack must reproduce nn.RNN/LSTM/GRU's own output."""
    if rec.suffixless:
        return
    cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[rec.cell]
    kwargs = {"nonlinearity": rec.nonlinearity} if rec.cell == "rnn" else {}
    module = cls(rec.input_size, rec.hidden_size, num_layers=rec.num_layers, batch_first=True,
                 bidirectional=rec.bidirectional, dtype=torch.float64, **kwargs)
    own = {k[len(rec.prefix):]: v.double() for k, v in tensors.items() if k.startswith(rec.prefix)}
    module.load_state_dict(own)
    with torch.no_grad():
        expected, _ = module(inputs)
    torch.testing.assert_close(output, expected, atol=1e-10, rtol=1e-10)


# --------------------------------------------------------------------------- Jacobians


def log10_lag_norms(run: Run, max_lag: int) -> torch.Tensor:
    """(max_lag, B): log10 || d s_T / d s_{T-lag} ||_2 via the product J_T ... J_{T-lag+1}."""
    steps, batch, size = run.states.shape[0] - 1, run.states.shape[1], run.states.shape[2]
    step_jacobian = vmap(jacrev(run.step))
    product = torch.eye(size, dtype=torch.float64).expand(batch, size, size)
    log10_scale = torch.zeros(batch, dtype=torch.float64)
    rows = []
    for lag in range(1, max_lag + 1):
        t = steps - lag + 1  # J_t = d s_t / d s_{t-1}, with s_{t-1} = states[t-1], x_t = xs[t-1]
        product = product @ step_jacobian(run.states[t - 1], run.xs[t - 1])
        norm = torch.linalg.matrix_norm(product, ord=2)
        log10_scale = log10_scale + torch.log10(norm)
        product = product / norm[:, None, None]
        rows.append(log10_scale.clone())
    return torch.stack(rows)


def log10_direct_norm(run: Run, lag: int) -> torch.Tensor:
    """(B,): the same quantity by jacrev through the unrolled steps T-lag+1 .. T (no product)."""
    steps = run.states.shape[0] - 1

    def unrolled(s: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
        for x in xs:
            s = run.step(s, x)
        return s

    xs = run.xs[steps - lag :].transpose(0, 1)  # (B, lag, I)
    jac = vmap(jacrev(unrolled))(run.states[steps - lag], xs)
    return torch.log10(torch.linalg.matrix_norm(jac, ord=2))


# --------------------------------------------------------------------------- reporting


def probe_inputs(input_size: int, seed: int = 0, steps: int = STEPS) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((BATCH, steps, input_size))


def spectrum_rows(tensors: dict, rec: Recurrence, run_names: list[str]) -> list[str]:
    rows = []
    for name in run_names:
        w = tensors[name].double().numpy()
        for i, gate in enumerate(GATES[rec.cell]):
            block = w[i * rec.hidden_size : (i + 1) * rec.hidden_size]
            rho = np.abs(np.linalg.eigvals(block)).max()
            sv = np.linalg.svd(block, compute_uv=False)
            extra = ""
            if rec.cell == "rnn":
                bound = 1.0 * sv[0]
                verdict = "vanishing guaranteed" if bound < 1 else "explosion possible"
                extra = f" | {bound:.10g} | {verdict}"
            else:
                extra = " | – | –"
            rows.append(f"| `{name}` | {gate} | {rho:.10g} | {sv[0]:.10g} | {sv[-1]:.6g}{extra} |")
    return rows


def fmt(log10_values: torch.Tensor) -> str:
    return f"{10 ** log10_values.mean().item():.4g} ({10 ** log10_values.min().item():.3g} .. {10 ** log10_values.max().item():.3g})"


def measure_file(file: str, recs: list[Recurrence], max_lag: int, cross_check: bool) -> list[str]:
    tensors = load_tensors(SAMPLE_DIR / file)
    spec, bptt = [], []
    for rec in recs:
        x = probe_inputs(rec.input_size)
        inputs = torch.from_numpy(x)
        runs, output = run_stack(tensors, rec, inputs)
        check_against_pytorch_module(tensors, rec, inputs, output)
        long_dtype = next(iter(tensors.values())).dtype
        long_runs, _ = run_stack(tensors, rec, torch.from_numpy(probe_inputs(rec.input_size, 1, 300)).to(long_dtype))
        spec += spectrum_rows(tensors, rec, [r.name for r in runs])
        for run, long_run in zip(runs, long_runs):
            logs = log10_lag_norms(run, max_lag)
            cells = [fmt(logs[lag - 1]) for lag in REPORT_LAGS if lag <= max_lag]
            h_max = long_run.states[..., : rec.hidden_size].abs().max().item()
            bptt.append(f"| `{run.name}` | " + " | ".join(cells) + f" | {h_max:.3g} |")
            if cross_check:
                for lag in (l for l in CROSS_CHECK_LAGS if l <= max_lag):
                    diff = (log10_direct_norm(run, lag) - logs[lag - 1]).abs().max().item()
                    assert diff < 1e-8, f"{run.name} lag {lag}: product and direct jacrev differ ({diff:.2e} in log10)"
    head = [f"### {file}", "", "| weight_hh | block | rho | sigma_max | sigma_min | gamma*sigma_max | verdict |",
            "|---|---|---|---|---|---|---|", *spec, ""]
    lag_cols = " | ".join(f"lag {lag}" for lag in REPORT_LAGS if lag <= max_lag)
    head += [f"| recurrence | {lag_cols} | max abs h, 300 steps |",
             "|---" * (2 + sum(lag <= max_lag for lag in REPORT_LAGS)) + "|", *bptt, ""]
    return head


def write_probe_files() -> None:
    PROBE_DIR.mkdir(exist_ok=True)
    for size in sorted({rec.input_size for rec in RECURRENCES}):
        np.save(PROBE_DIR / f"gaussian_seed0_B{BATCH}_T{STEPS}_I{size}.npy", probe_inputs(size))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-lag", type=int, default=100)
    parser.add_argument("--no-cross-check", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    write_probe_files()
    files = dict.fromkeys(rec.file for rec in RECURRENCES)
    for file in files:
        recs = [rec for rec in RECURRENCES if rec.file == file]
        print("\n".join(measure_file(file, recs, args.max_lag, not args.no_cross_check)))


if __name__ == "__main__":
    main()
