"""Run logging: W&B (through TorchRL's logger), PNG plots beside the checkpoints, console lines.

W&B is offline by default (no network here; ``wandb sync`` uploads later) and ``disabled``
skips it entirely; the PNG plots and ``history.json`` are written either way, so a run can be
inspected without W&B.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from torchrl_bc.io import atomic_write_bytes
from torchrl_bc.replay.actions import ACTION_NAMES

__all__ = ["RunLogger", "console_line", "wandb_kwargs", "wandb_summary"]


class RunLogger:
    """Scalars, confusion matrices and rollout GIFs to W&B; curves to ``<out>/plots``."""

    def __init__(self, out_dir: Path, mode: str, project: str, run_name: str,
                 config: dict[str, Any], enabled: bool = True, plots: bool = True) -> None:
        self.out = Path(out_dir)
        self.plots = plots and enabled
        self.mode = mode
        self.wandb = None
        self.logger = None
        self.run_dir: Path | None = None
        if not enabled or mode == "disabled":
            return
        os.environ.setdefault("WANDB_SILENT", "true")
        os.environ["WANDB_MODE"] = mode
        try:
            from torchrl.record.loggers import get_logger

            self.logger = get_logger("wandb", logger_name=str(self.out), experiment_name=run_name,
                                     wandb_kwargs=wandb_kwargs(project, mode))
            self.logger.log_hparams(config)
            import wandb

            self.wandb = wandb
            run_dir = getattr(self.logger.experiment, "dir", None)
            # <out>/wandb/offline-run-<date>-<id>/files -> the run folder `wandb sync` takes
            self.run_dir = Path(run_dir).parent if run_dir else None
        except Exception as exc:
            print(f"warning: W&B logging disabled ({type(exc).__name__}: {exc})", file=sys.stderr)
            self.logger = None

    def scalars(self, metrics: dict[str, float], step: int) -> None:
        if self.logger is None:
            return
        self.logger.log_metrics({k: v for k, v in metrics.items()
                                 if isinstance(v, int | float) and np.isfinite(v)}, step=step)

    def confusion(self, cm: np.ndarray, step: int, key: str = "val/confusion") -> None:
        if self.logger is None or self.wandb is None:
            return
        names = list(ACTION_NAMES)
        rows = [[names[i], names[j], int(cm[i, j])] for i in range(len(names))
                for j in range(len(names))]
        table = self.wandb.Table(columns=["expert", "predicted", "count"], data=rows)
        self.logger.experiment.log({key: table}, step=step)

    def gif(self, frames: list[np.ndarray], step: int, name: str = "rollout") -> Path | None:
        """Write ``<out>/gifs/<name>_<step>.gif`` and log it to W&B."""
        if not frames:
            return None
        import imageio.v2 as imageio

        path = self.out / "gifs" / f"{name}_{step:04d}.gif"
        path.parent.mkdir(parents=True, exist_ok=True)
        imageio.mimsave(path, frames[::2] + frames[-1:], duration=1000 / 15, loop=0)
        if self.logger is not None and self.wandb is not None:
            self.logger.experiment.log({f"closed_loop/{name}": self.wandb.Video(
                str(path), format="gif")}, step=step)
        return path

    def plot(self, history: list[dict[str, float]], cm: np.ndarray | None = None) -> None:
        if not self.plots or not history:
            return
        write_plots(self.out / "plots", history, cm)
        atomic_write_bytes(self.out / "history.json", json.dumps(history, indent=1).encode())

    def close(self) -> None:
        """Finish the W&B run and say where it is (and, offline, how to upload it)."""
        if self.logger is None:
            return
        try:
            self.logger.experiment.finish()
        except Exception:
            pass
        self.logger = None
        for line in wandb_summary(self.mode, self.run_dir):
            print(line, file=sys.stderr, flush=True)


def wandb_kwargs(project: str, mode: str) -> dict[str, Any]:
    """What ``torchrl.record.loggers.get_logger("wandb", ...)`` forwards to ``WandbLogger``.

    ``get_logger`` only reads ``wandb_kwargs``: a bare ``project=`` is swallowed and the run
    lands in a project named after the script's folder. ``log_env_packages=False`` keeps the
    whole installed-package list out of the run's config.
    """
    return {"project": project, "offline": mode == "offline", "log_env_packages": False}


def wandb_summary(mode: str, run_dir: Path | None) -> list[str]:
    """Where a finished run's W&B data is, and the command that uploads an offline run."""
    if run_dir is None:
        return []
    if mode == "offline":
        return [f"W&B offline run: {run_dir}", f"upload it with: wandb sync {run_dir}"]
    return [f"W&B run files: {run_dir}"]


_PANELS = (
    ("loss", ("train/nll", "val/nll", "val/baseline_nll")),
    ("accuracy", ("train/accuracy", "val/accuracy")),
    ("success", ("val/closed_loop_success", "val/closed_loop_sampled_success",
                 "train/closed_loop_success", "train/closed_loop_sampled_success")),
    ("entropy", ("train/entropy", "val/entropy")),
)


def write_plots(folder: Path, history: list[dict[str, float]], cm: np.ndarray | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    for name, keys in _PANELS:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        drawn = False
        for key in keys:
            pts = [(h["epoch"], h[key]) for h in history if key in h]
            if pts:
                x, y = zip(*pts, strict=True)
                ax.plot(x, y, marker="o", ms=3, label=key)
                drawn = True
        if drawn:
            ax.set_xlabel("epoch")
            ax.set_title(name)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
            fig.tight_layout()
            fig.savefig(folder / f"{name}.png", dpi=90)
        plt.close(fig)
    if cm is not None:
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.imshow(cm, cmap="Blues")
        names = list(ACTION_NAMES)
        ax.set_xticks(range(len(names)), names, rotation=45, fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("expert")
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=6)
        fig.tight_layout()
        fig.savefig(folder / "confusion.png", dpi=90)
        plt.close(fig)


def console_line(m: dict[str, float], epochs: int, seconds: float) -> str:
    """One concise progress line per epoch."""
    def f(key: str, fmt: str = ".3f") -> str:
        return format(m[key], fmt) if key in m else "-"

    line = (f"epoch {int(m['epoch']):>3}/{epochs}  loss {f('train/loss')}  "
            f"val_nll {f('val/nll')} (base {f('val/baseline_nll')})  val_acc {f('val/accuracy')}")
    if "val/closed_loop_success" in m or "train/closed_loop_success" in m:
        line += (f"  success val {f('val/closed_loop_success', '.2f')} "
                 f"train {f('train/closed_loop_success', '.2f')}")
    return line + f"  lr {f('train/lr', '.1e')}  {seconds:.0f}s"
