"""PyTorch Lightning callback: the gradient monitor and the online clipper in ``Trainer.fit``.

    from rnngrad.lightning import RnngradCallback
    trainer = Trainer(callbacks=[RnngradCallback(every=100, clip="autoclip")])

After each backward pass the callback records ‖∇θ‖ (and every ``every`` steps the per-lag
profile, ρ, γσ_max and λ_1) through the trainer's logger; before each optimiser step it clips
with a :class:`~rnngrad.train.clipper.Clipper` when ``clip`` names a rule (or is one). Its
state (the clipper's statistics) is saved in checkpoints, so a resumed run continues. Needs
``pip install 'rnngrad[lightning]'`` (the ``lightning`` package; ``pytorch_lightning`` works
too).
"""

from __future__ import annotations

from typing import Any

from rnngrad.train.clipper import Clipper
from rnngrad.train.monitor import GradientMonitor
from rnngrad.train.sinks import scalars

try:
    from lightning.pytorch import Callback
except ImportError:  # the older package name
    try:
        from pytorch_lightning import Callback
    except ImportError:
        raise ImportError("rnngrad.lightning needs PyTorch Lightning: "
                          "pip install 'rnngrad[lightning]'") from None

__all__ = ["RnngradCallback"]


class RnngradCallback(Callback):
    """Monitor (and clip) a LightningModule's recurrent gradients (see the module doc).

    ``every``, ``lags``, ``probe``, ``lyapunov_every``: as :class:`GradientMonitor`; ``clip``: None,
    a rule name for :class:`Clipper` (``"pascanu"``, ``"autoclip"``) or a ``Clipper``. Don't
    combine ``clip`` with ``Trainer(gradient_clip_val=...)``.
    """

    def __init__(self, *, every: int = 100, lags: str | None = None, probe: Any = None,
                 lyapunov_every: int | None = None,
                 clip: str | Clipper | None = None) -> None:
        super().__init__()
        self.monitor_options = {"every": every, "probe": probe, "lyapunov_every": lyapunov_every,
                                **({"lags": lags} if lags is not None else {})}
        self.clipper = Clipper(clip) if isinstance(clip, str) else clip
        self.monitor: GradientMonitor | None = None
        self._trainer: Any = None

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        """Start a :class:`GradientMonitor` on the module, logging through the trainer's logger."""
        self._trainer = trainer
        self.monitor = GradientMonitor(pl_module, log=self._log, **self.monitor_options)

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        """Record ‖∇θ‖ of this optimiser step (:meth:`GradientMonitor.step`; the profile when
        it is due), then clip with the clipper, if any, and log the threshold used.

        This hook, not ``on_after_backward``, sees the gradient the optimiser will use: after
        all ``accumulate_grad_batches`` backward passes, and unscaled under AMP (Lightning
        unscales before calling it)."""
        if self.monitor is not None:
            self.monitor.step()
        if self.clipper is None:
            return
        threshold, _ = self.clipper.clip_(pl_module.parameters())
        if threshold is not None:
            self._log({"step": self.clipper.steps, "clip_threshold": threshold})

    def _log(self, record: dict[str, Any]) -> None:
        logger = getattr(self._trainer, "logger", None)
        if logger is None:
            return
        metrics = {f"rnngrad/{name}": value for name, value in scalars(record)
                   if value is not None}
        logger.log_metrics(metrics, step=self._trainer.global_step)

    def state_dict(self) -> dict[str, Any]:
        """The clipper's statistics (None without a clipper), saved in checkpoints."""
        return {"clipper": self.clipper.state_dict() if self.clipper is not None else None}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the clipper's statistics from a checkpoint, so a resumed run continues them."""
        if self.clipper is not None and state_dict.get("clipper") is not None:
            self.clipper.load_state_dict(state_dict["clipper"])
