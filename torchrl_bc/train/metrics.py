"""Open-loop validation metrics, class weights and the frequency baseline.

Validation reads the actor's own distribution (``actor.get_dist``), as the loss
(:class:`~torchrl_bc.train.loss.MaskedBCLoss`) does: one masking, one NLL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import distributions as D

from torchrl_bc.replay.actions import ACTION_NAMES

__all__ = ["ACTION_NAMES", "ValAccumulator", "class_weights", "frequency_baseline_nll"]


def class_weights(counts: torch.Tensor) -> torch.Tensor:
    """Inverse-frequency weights, mean 1 over the actions present."""
    c = counts.double()
    w = torch.where(c > 0, c.sum() / (c.clamp_min(1) * (c > 0).sum()), torch.zeros_like(c))
    return w.float()


def frequency_baseline_nll(train_counts: torch.Tensor, val_counts: torch.Tensor) -> float:
    """NLL on validation of always predicting the training action frequencies."""
    p = (train_counts.double() + 1) / (train_counts.sum() + len(train_counts))
    total = val_counts.sum()
    if total == 0:
        return float("nan")
    return float(-(val_counts.double() * p.log()).sum() / total)


@dataclass
class ValAccumulator:
    """Streams validation batches into NLL, accuracy, entropy and a confusion matrix."""

    n_actions: int = 6
    nll_sum: float = 0.0
    entropy_sum: float = 0.0
    n: int = 0
    confusion: torch.Tensor = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.confusion is None:
            self.confusion = torch.zeros(self.n_actions, self.n_actions, dtype=torch.int64)

    def add(self, dist: D.Categorical, expert: torch.Tensor) -> None:
        """One batch: the actor's distribution (``actor.get_dist(td)``) and the expert actions."""
        expert = expert.reshape(dist.batch_shape).long()
        self.nll_sum += float(-dist.log_prob(expert).sum())
        self.entropy_sum += float(dist.entropy().sum())
        self.n += int(expert.numel())
        pred = dist.deterministic_sample.reshape(-1)
        expert = expert.reshape(-1)
        flat = (expert * self.n_actions + pred).cpu()
        self.confusion += torch.bincount(flat, minlength=self.n_actions ** 2).view(
            self.n_actions, self.n_actions)

    def result(self, prefix: str = "val/") -> dict[str, float]:
        """Scalars; per-action precision/recall named by action (rows = expert, cols = pred)."""
        if self.n == 0:
            return {}
        cm = self.confusion.double()
        out = {f"{prefix}nll": self.nll_sum / self.n,
               f"{prefix}accuracy": float(cm.diag().sum() / cm.sum()),
               f"{prefix}entropy": self.entropy_sum / self.n}
        for a in range(self.n_actions):
            name = ACTION_NAMES[a] if a < len(ACTION_NAMES) else str(a)
            pred_a, true_a = cm[:, a].sum(), cm[a].sum()
            out[f"{prefix}precision/{name}"] = float(cm[a, a] / pred_a) if pred_a else 0.0
            out[f"{prefix}recall/{name}"] = float(cm[a, a] / true_a) if true_a else 0.0
        return out
