"""BC loss on masked logits, and the open-loop validation metrics.

The loss works on the policy's masked logits (the same masking ``MaskedCategorical`` applies), so
NLL here equals ``-actor.get_dist(td).log_prob(expert)``. Label smoothing spreads its mass over
the legal actions only, and class weights rescale each sample by its expert action's weight.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from torchrl_bc.replay.actions import ACTION_NAMES

__all__ = ["ACTION_NAMES", "ValAccumulator", "bc_loss", "class_weights", "frequency_baseline_nll",
           "masked_logits"]


def masked_logits(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    logits = logits.float()
    if mask is None:
        return logits
    return logits.masked_fill(~mask.bool(), torch.finfo(logits.dtype).min)


def bc_loss(logits: torch.Tensor, mask: torch.Tensor | None, expert: torch.Tensor, *,
            entropy_coef: float = 0.0, label_smoothing: float = 0.0,
            weights: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss and its parts (``nll`` is always the plain, unweighted NLL, for logging)."""
    z = masked_logits(logits, mask)
    logp = torch.log_softmax(z, dim=-1)
    expert = expert.reshape(-1).long()
    nll = -logp.gather(1, expert[:, None]).squeeze(1)
    per_sample = nll
    if label_smoothing > 0:
        legal = torch.ones_like(logp, dtype=torch.bool) if mask is None else mask.bool()
        smooth = -(logp.masked_fill(~legal, 0.0).sum(1)) / legal.sum(1).clamp_min(1)
        per_sample = (1 - label_smoothing) * nll + label_smoothing * smooth
    if weights is not None:
        w = weights.to(per_sample.device)[expert]
        loss = (per_sample * w).sum() / w.sum()
    else:
        loss = per_sample.mean()
    p = logp.exp()
    entropy = -(p * logp.masked_fill(p == 0, 0.0)).sum(1).mean()
    if entropy_coef:
        loss = loss - entropy_coef * entropy
    acc = (z.argmax(1) == expert).float().mean()
    return loss, {"loss": loss.detach(), "nll": nll.mean().detach(),
                  "entropy": entropy.detach(), "accuracy": acc.detach()}


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

    def add(self, logits: torch.Tensor, mask: torch.Tensor | None, expert: torch.Tensor) -> None:
        z = masked_logits(logits, mask)
        logp = torch.log_softmax(z, dim=-1)
        expert = expert.reshape(-1).long()
        self.nll_sum += float(-logp.gather(1, expert[:, None]).sum())
        p = logp.exp()
        self.entropy_sum += float(-(p * logp.masked_fill(p == 0, 0.0)).sum())
        self.n += int(expert.numel())
        pred = z.argmax(1)
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
