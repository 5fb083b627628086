"""The BC objective: a TorchRL ``LossModule`` over the ``ProbabilisticActor`` that acts.

TorchRL's ``BCLoss`` scores ``-actor.get_dist(td).log_prob(expert)``, which is this loss's
``loss_bc`` without options; it has no label smoothing, class weights or entropy bonus, so this
small subclass of ``LossModule`` adds them on the same distribution. Every quantity (the NLL,
the smoothing term, the entropy, the greedy action for accuracy) comes from the actor's own
``MaskedCategorical``: there is one masking and one NLL, shared with acting and validation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule
from tensordict.utils import NestedKey
from torch import distributions as D
from torchrl.objectives import LossModule

from torchrl_bc.data import EXPERT_KEY

__all__ = ["MaskedBCLoss", "legal_mask"]


def legal_mask(dist: D.Categorical) -> torch.Tensor:
    """The legal actions of a (masked) categorical: finite log-probabilities."""
    return torch.isfinite(dist.logits)


class MaskedBCLoss(LossModule):
    """Masked behavioural cloning over a ``ProbabilisticActor(MaskedCategorical)``.

    ``forward(td)`` returns ``loss_bc`` (the expert NLL, optionally label-smoothed over the legal
    actions and reweighted per expert action) and, with ``entropy_coef``, ``loss_entropy``
    (``-entropy_coef * entropy``); their sum is the training loss. ``nll`` (plain, unweighted),
    ``accuracy`` (greedy action = expert) and ``entropy`` come detached, for logging.
    ``class_weights`` (one per action) is a buffer, so it follows ``.to(device)``.
    """

    @dataclass
    class _AcceptedKeys:
        """``expert_action``: the expert's integer action (never ``"action"``, the actor's own)."""

        expert_action: NestedKey = EXPERT_KEY

    default_keys = _AcceptedKeys
    tensor_keys: _AcceptedKeys
    out_keys = ("loss_bc", "loss_entropy", "nll", "accuracy", "entropy")

    def __init__(self, actor_network: TensorDictModule, *, entropy_coef: float = 0.0,
                 label_smoothing: float = 0.0,
                 class_weights: torch.Tensor | None = None) -> None:
        super().__init__()
        # The actor itself, not a functional copy: its parameters are the ones DDP syncs, the
        # optimiser steps and the checkpoint stores.
        self.actor_network = actor_network
        self.entropy_coef = float(entropy_coef)
        self.label_smoothing = float(label_smoothing)
        self.register_buffer("class_weights",
                             None if class_weights is None else class_weights.float())

    def _forward_value_estimator_keys(self, **kwargs) -> None:
        pass

    def _dist(self, tensordict: TensorDictBase) -> D.Categorical:
        """``actor.get_dist(td)``, with the logits in float32 (under bf16 autocast the head
        emits bf16; the NLL, smoothing and entropy are taken in float32)."""
        actor = self.actor_network
        params = actor.get_dist_params(tensordict)
        for key in actor.dist_params_keys:
            value = params.get(key)
            if value.is_floating_point() and value.dtype != torch.float32:
                params.set(key, value.float())
        return actor.build_dist_from_params(params)

    def forward(self, tensordict: TensorDictBase) -> TensorDict:
        dist = self._dist(tensordict)
        expert = tensordict.get(self.tensor_keys.expert_action).reshape(dist.batch_shape).long()
        nll = -dist.log_prob(expert)
        per_sample = nll
        if self.label_smoothing > 0:
            legal = legal_mask(dist)
            smooth = -dist.logits.masked_fill(~legal, 0.0).sum(-1) / legal.sum(-1).clamp_min(1)
            per_sample = (1 - self.label_smoothing) * nll + self.label_smoothing * smooth
        w = tensordict.get("sample_weight", None)  # the dataset's per-step weights
        w = None if w is None else w.reshape(dist.batch_shape).float()
        if self.class_weights is not None:
            cw = self.class_weights[expert]
            w = cw if w is None else w * cw
        loss_bc = per_sample.mean() if w is None else (per_sample * w).sum() / w.sum()
        entropy = dist.entropy().mean()
        out = {"loss_bc": loss_bc}
        if self.entropy_coef:
            out["loss_entropy"] = -self.entropy_coef * entropy
        out.update(nll=nll.mean().detach(), entropy=entropy.detach(),
                   accuracy=(dist.deterministic_sample == expert).float().mean())
        return TensorDict(out, batch_size=[])
