"""Write the small, deterministic sample checkpoints in ``sample_models/``.

Usage (from the repository root)::

    python sample_models/make_samples.py                  # all samples (trains one LSTM, ~1 min CPU)
    python sample_models/make_samples.py --skip-training  # all but adding_task_lstm.safetensors
    python sample_models/make_samples.py --only elman_vanishing lstm_2layer

Every sample is built by its own function, which seeds the global torch RNG itself, so a
sample does not depend on which others were built before it. Tensor names are exactly what
``nn.Module.state_dict()`` produces for the wrapper modules below (``rnn.weight_hh_l0``,
``encoder.weight_hh_l0_reverse``, ``decoder.cell.weight_hh``, ...). Weights are float32 as
PyTorch creates them, except ``elman_orthogonal.safetensors`` which is float64 throughout so
that its recurrent matrix is orthogonal to ~1e-15.

Determinism: same PyTorch/numpy versions -> byte-identical files (checked with sha256sum).
``torch.save`` output depends on the file's stem (it names the zip's top folder after it),
and ``np.savez`` stamps the current time into its zip entries, so the ``.npz`` is written by
``save_npz`` below with a fixed timestamp instead; safetensors writes its metadata keys in a
random order, so ``with_sorted_metadata`` sorts them. Training runs a fixed number of steps on
one thread with deterministic algorithms. Another CPU type or PyTorch build may still change
the last bits of the trained weights (and that file's sha256); another PyTorch version may
also change the default initialisation that the untrained samples start from.

See README.md next to this file for what each sample is meant to exercise.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save
from torch import nn

OUT_DIR = Path(__file__).resolve().parent

# Adding problem (Hochreiter & Schmidhuber 1997; Le, Jaitly & Hinton 2015).
ADDING_SEQ_LEN = 100
ADDING_HIDDEN = 32
ADDING_BATCH = 64
ADDING_STEPS = 3000
ADDING_LR = 1e-2
ADDING_LR_DROP_AT = 2500  # lr x 0.1 for the last 500 steps: settles the final MSE
ADDING_EVAL_SIZE = 10000


# --------------------------------------------------------------------------- wrappers


class ElmanModel(nn.Module):
    """A bare ``nn.RNN`` under the name ``rnn`` (keys ``rnn.weight_hh_l0``, ...)."""

    def __init__(self, rnn: nn.RNN) -> None:
        super().__init__()
        self.rnn = rnn


class LstmClassifier(nn.Module):
    """``encoder`` = 2-layer LSTM(16 -> 24), ``head`` = Linear(24 -> 5)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.LSTM(16, 24, num_layers=2)
        self.head = nn.Linear(24, 5)


class BiGruEncoder(nn.Module):
    """``encoder`` = bidirectional GRU(10 -> 20), batch-first."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.GRU(10, 20, bidirectional=True, batch_first=True)


class AddingLstm(nn.Module):
    """LSTM(2 -> H) read out by Linear(H -> 1) at the last step."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(2, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.RNN(6, 12)


class Decoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.GRUCell(12, 12)


class TwoModules(nn.Module):
    """Embedding(50, 6) -> ``encoder.rnn`` = RNN(6 -> 12) -> ``decoder.cell`` = GRUCell(12, 12)."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(50, 6)
        self.encoder = Encoder()
        self.decoder = Decoder()


# --------------------------------------------------------------------------- helpers


def state_dict_of(module: nn.Module) -> dict[str, torch.Tensor]:
    """Detached, contiguous copies of a module's state dict, in its key order."""
    return {k: v.detach().contiguous().clone() for k, v in module.state_dict().items()}


def save_safetensors(module: nn.Module, path: Path, metadata: dict[str, str] | None = None) -> None:
    path.write_bytes(with_sorted_metadata(save(state_dict_of(module), metadata=metadata)))


def with_sorted_metadata(data: bytes) -> bytes:
    """Rewrite a safetensors header with its ``__metadata__`` keys sorted.

    safetensors keeps the metadata in a Rust HashMap, so with two or more keys their order in
    the header, and hence the file's bytes, changes from run to run. Tensor entries (already
    in a fixed order) and the data section are kept as they are; the header is re-padded with
    spaces to a multiple of 8 bytes, as safetensors itself does.
    """
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data[8 + length :]


def save_npz(arrays: dict[str, np.ndarray], path: Path) -> None:
    """Like ``np.savez`` (stored, one ``NAME.npy`` per array) but with a fixed zip timestamp."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            zf.writestr(info, buffer.getvalue())


def set_recurrent_matrix(param: nn.Parameter, matrix: torch.Tensor) -> None:
    """Overwrite a ``weight_hh`` parameter in place, keeping its dtype."""
    with torch.no_grad():
        param.copy_(matrix.to(param.dtype))


def rescaled_to_sigma_max(matrix: torch.Tensor, sigma_max: float) -> torch.Tensor:
    """``matrix`` scaled (in float64) so that its largest singular value is ``sigma_max``."""
    m = matrix.detach().double()
    return m * (sigma_max / torch.linalg.matrix_norm(m, ord=2))


def seeded_orthogonal(n: int) -> torch.Tensor:
    """Q of the QR of a Gaussian matrix (float64), signs fixed so diag(R) > 0 (Haar-distributed)."""
    q, r = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def nonnegative_with_spectral_radius(n: int, rho: float) -> torch.Tensor:
    """|G| for a Gaussian G, scaled (float64) to spectral radius ``rho``.

    Perron-Frobenius: the leading eigenvalue of a positive matrix is real and its eigenvector
    is positive, so once a ReLU state lies in the positive orthant every unit stays active and
    the step Jacobian is exactly W_hh: per-lag norms grow like rho**lag.
    """
    a = torch.randn(n, n, dtype=torch.float64).abs()
    radius = np.abs(np.linalg.eigvals(a.numpy())).max()
    return a * (rho / radius)


# --------------------------------------------------------------------------- samples


def make_elman_vanishing(out_dir: Path) -> Path:
    """tanh RNN(8, 32) with sigma_max(W_hh) = 0.5: gamma * sigma_max < 1, vanishing guaranteed."""
    torch.manual_seed(1)
    model = ElmanModel(nn.RNN(8, 32, nonlinearity="tanh"))
    w = model.rnn.weight_hh_l0
    set_recurrent_matrix(w, rescaled_to_sigma_max(w, 0.5))
    path = out_dir / "elman_vanishing.safetensors"
    save_safetensors(model, path)
    return path


def make_elman_exploding(out_dir: Path) -> Path:
    """ReLU RNN(8, 32) with a nonnegative W_hh of spectral radius 1.1: per-lag norms grow."""
    torch.manual_seed(2)
    model = ElmanModel(nn.RNN(8, 32, nonlinearity="relu"))
    set_recurrent_matrix(model.rnn.weight_hh_l0, nonnegative_with_spectral_radius(32, 1.1))
    path = out_dir / "elman_exploding.safetensors"
    save_safetensors(model, path, metadata={"nonlinearity": "relu"})
    return path


def make_elman_orthogonal(out_dir: Path) -> Path:
    """tanh RNN(8, 32), float64, W_hh exactly orthogonal: gamma * sigma_max = 1 (the edge)."""
    torch.manual_seed(3)
    model = ElmanModel(nn.RNN(8, 32, nonlinearity="tanh", dtype=torch.float64))
    set_recurrent_matrix(model.rnn.weight_hh_l0, seeded_orthogonal(32))
    path = out_dir / "elman_orthogonal.safetensors"
    save_safetensors(model, path)
    return path


def make_lstm_2layer(out_dir: Path) -> Path:
    """Training-style checkpoint dict around a 2-layer LSTM + Linear head (default init)."""
    torch.manual_seed(4)
    model = LstmClassifier()
    checkpoint = {"model_state_dict": model.state_dict(), "epoch": 7, "optimizer": "adam"}
    path = out_dir / "lstm_2layer.pt"
    torch.save(checkpoint, path)
    return path


def make_gru_bidirectional(out_dir: Path) -> Path:
    """Bidirectional GRU(10, 20) (default init): keys with and without ``_reverse``."""
    torch.manual_seed(5)
    path = out_dir / "gru_bidirectional.safetensors"
    save_safetensors(BiGruEncoder(), path)
    return path


def make_elman_relu_npz(out_dir: Path) -> Path:
    """ReLU RNN(4, 16) (default init) as bare numpy arrays: ``weight_hh_l0``, ... (no prefix)."""
    torch.manual_seed(7)
    rnn = nn.RNN(4, 16, nonlinearity="relu")
    path = out_dir / "elman_relu_npz.npz"
    save_npz({k: v.numpy() for k, v in state_dict_of(rnn).items()}, path)
    return path


def make_two_modules(out_dir: Path) -> Path:
    """Two recurrences in one file (``encoder.rnn.*`` and ``decoder.cell.*``) plus an embedding."""
    torch.manual_seed(8)
    path = out_dir / "two_modules.safetensors"
    save_safetensors(TwoModules(), path)
    return path


# Pascanu, Mikolov & Bengio (2013), Sec. 2.3, eq. (8) (the seed's Fig. 4): one sigmoid unit
# x_t = w σ(x_(t−1)) + b, no input, x_0 = 0.5, 50 steps, E_50 = (σ(x_50) − 0.7)², at w = 5,
# b = −2.6, where the unit is bistable and E_50 has its wall. The file carries its own map
# (the leaky rate cell at α = 1 with φ = sigmoid is exactly this recurrence) and [probe].
PASCANU_W, PASCANU_B = 5.0, -2.6
PASCANU_MAP = """\
# Pascanu, Mikolov & Bengio (2013), Sec. 2.3: x_t = w sigmoid(x_(t-1)) + b, no input
[[recurrence]]
name = "unit"
recurrent = "w"
bias = "b"
nonlinearity = "sigmoid"
leak = 1.0

# x_0 = 0.5, 50 steps, E_50 = (sigmoid(x_50) - 0.7)^2
[probe]
batch = 1
steps = 50
burn_in = 0
initial_state = 0.5
loss = "squared"
targets = 0.7
"""


def make_pascanu_unit(out_dir: Path) -> Path:
    """The single-unit model of Pascanu et al. (2013), float64, with its map in the metadata."""
    tensors = {"w": torch.tensor([[PASCANU_W]], dtype=torch.float64),
               "b": torch.tensor([PASCANU_B], dtype=torch.float64)}
    path = out_dir / "pascanu_unit.safetensors"
    path.write_bytes(with_sorted_metadata(save(tensors, metadata={"rnngrad.map": PASCANU_MAP})))
    return path


# --------------------------------------------------------------------------- adding task


def adding_batch(generator: torch.Generator, batch: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs (batch, seq_len, 2): [U(0,1) value, marker with exactly two 1s]; target: marked sum."""
    values = torch.rand(batch, seq_len, generator=generator)
    positions = torch.rand(batch, seq_len, generator=generator).argsort(dim=1)[:, :2]
    markers = torch.zeros(batch, seq_len).scatter_(1, positions, 1.0)
    target = (values * markers).sum(dim=1, keepdim=True)
    return torch.stack([values, markers], dim=-1), target


def train_adding_lstm() -> tuple[AddingLstm, float, float]:
    """Train with Adam for a fixed number of steps; return (model, eval MSE, baseline MSE)."""
    torch.manual_seed(6)
    model = AddingLstm(ADDING_HIDDEN)
    optimizer = torch.optim.Adam(model.parameters(), lr=ADDING_LR)
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, [ADDING_LR_DROP_AT], gamma=0.1)
    train_gen = torch.Generator().manual_seed(61)
    for _ in range(ADDING_STEPS):
        x, y = adding_batch(train_gen, ADDING_BATCH, ADDING_SEQ_LEN)
        loss = nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    x_eval, y_eval = adding_batch(torch.Generator().manual_seed(62), ADDING_EVAL_SIZE, ADDING_SEQ_LEN)
    with torch.no_grad():
        mse = nn.functional.mse_loss(model(x_eval), y_eval).item()
    baseline = nn.functional.mse_loss(torch.ones_like(y_eval), y_eval).item()
    return model, mse, baseline


def make_adding_task_lstm(out_dir: Path) -> Path:
    """LSTM(2, 32) + Linear(32, 1) trained on the adding problem (fixed steps, seeded)."""
    wall, cpu = time.perf_counter(), time.process_time()
    model, mse, baseline = train_adding_lstm()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"  adding task: {ADDING_STEPS} steps in {wall:.1f} s wall / {cpu:.1f} s CPU, "
          f"eval MSE {mse:.3e} (predict-1.0 baseline {baseline:.4f})")
    metadata = {
        "task": "adding",
        "seq_len": str(ADDING_SEQ_LEN),
        "final_mse": f"{mse:.6e}",
        "baseline_mse": f"{baseline:.6f}",
        "train_steps": str(ADDING_STEPS),
        "batch_size": str(ADDING_BATCH),
        "optimizer": f"adam lr={ADDING_LR} (x0.1 at step {ADDING_LR_DROP_AT})",
    }
    path = out_dir / "adding_task_lstm.safetensors"
    save_safetensors(model, path, metadata=metadata)
    return path


# --------------------------------------------------------------------------- driver

QUICK_SAMPLES: dict[str, Callable[[Path], Path]] = {
    "elman_vanishing": make_elman_vanishing,
    "elman_exploding": make_elman_exploding,
    "elman_orthogonal": make_elman_orthogonal,
    "lstm_2layer": make_lstm_2layer,
    "gru_bidirectional": make_gru_bidirectional,
    "elman_relu_npz": make_elman_relu_npz,
    "two_modules": make_two_modules,
    "pascanu_unit": make_pascanu_unit,
}
TRAINED_SAMPLES: dict[str, Callable[[Path], Path]] = {
    "adding_task_lstm": make_adding_task_lstm,
}
ALL_SAMPLES = {**QUICK_SAMPLES, **TRAINED_SAMPLES}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-training", action="store_true",
                        help="do not (re)train adding_task_lstm.safetensors; leave it as it is")
    parser.add_argument("--only", nargs="+", choices=sorted(ALL_SAMPLES), metavar="NAME",
                        help=f"build only these samples: {', '.join(ALL_SAMPLES)}")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR,
                        help="where to write the files (default: this script's folder)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # One intra-op thread: results do not depend on the machine's core count, and on a busy
    # 2-core machine two OpenMP threads spin-wait and run 5-10x slower than one.
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    names = args.only or list(ALL_SAMPLES)
    if args.skip_training:
        names = [n for n in names if n not in TRAINED_SAMPLES]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = ALL_SAMPLES[name](args.out_dir)
        print(f"{path.name:34s} {path.stat().st_size:8d} B  sha256 {sha256_of(path)}")


if __name__ == "__main__":
    main()
