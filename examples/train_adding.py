"""Train a tanh RNN on the adding problem with rnngrad in the loop: the gradient monitor, an
online clipper and Pascanu's Ω.

    python examples/train_adding.py                       # 300 steps, metrics to runs/adding.jsonl
    python examples/train_adding.py --steps 50 --log runs/tb   # TensorBoard (rnngrad[tensorboard])

The data is ``examples/adding_T50.npz`` (256 sequences of the adding problem, length 50,
made by ``rnngrad.train.adding_problem``): each step holds a value in [0, 1) and a marker, and
the target is the sum of the two marked values.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from rnngrad.render import render_text
from rnngrad.train import Clipper, GradientMonitor, omega

DATA = Path(__file__).resolve().parent / "adding_T50.npz"


class AddingRNN(torch.nn.Module):
    def __init__(self, hidden: int = 50) -> None:
        super().__init__()
        self.rnn = torch.nn.RNN(2, hidden, batch_first=True)
        self.fc = torch.nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.rnn(x)[0][:, -1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--omega", type=float, default=0.1, help="weight of Ω in the loss")
    parser.add_argument("--every", type=int, default=50, help="measure the profile every N steps")
    parser.add_argument("--log", default="runs/adding.jsonl",
                        help="a .jsonl or .csv file, or a TensorBoard folder")
    args = parser.parse_args()
    Path(args.log).parent.mkdir(parents=True, exist_ok=True)

    data = np.load(DATA)
    inputs, targets = torch.from_numpy(data["inputs"]), torch.from_numpy(data["targets"])
    torch.manual_seed(0)
    model = AddingRNN()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    monitor = GradientMonitor(model, every=args.every, log=args.log)       # 1
    clipper = Clipper("autoclip")                                           # 2

    batches = torch.Generator().manual_seed(1)
    for step in range(args.steps):
        index = torch.randint(0, len(inputs), (args.batch,), generator=batches)
        x, y = inputs[index], targets[index]
        loss = torch.nn.functional.mse_loss(model(x), y)
        regulariser = omega(model.rnn, x, lambda out: torch.nn.functional.mse_loss(
            model.fc(out[:, -1]), y))                                        # 3
        optimizer.zero_grad()
        (loss + args.omega * regulariser).backward()
        monitor.step()                                                       # ‖∇θ‖, profile
        clipper.clip_(model.parameters())                                    # clip online
        optimizer.step()
        if step % 100 == 0:
            print(f"step {step}: loss {loss.item():.4f}, Ω {regulariser.item():.3f}, "
                  f"clip threshold {clipper.threshold}")
    monitor.close()
    print(render_text(monitor.summary(), "table"))
    print(f"{clipper}; metrics in {args.log}")


if __name__ == "__main__":
    main()
