"""The BC policy as a TorchRL ``ProbabilisticActor``, and an optional value operator.

Chain: observation keys -> ``MultimodalExtractor`` -> ``"features"`` -> MLP head -> ``"logits"``
-> ``MaskedCategorical(logits, mask=action_mask)`` -> ``"action"`` (int64 index) and its log-prob.

The NLL of an expert action is ``-actor.get_dist(td).log_prob(expert_action)``; the training side
computes it (with entropy bonus / label smoothing) from ``"logits"`` or the distribution.
TorchRL 0.14.1 has ``torchrl.objectives.BCLoss``, but it cannot take this actor directly: with
an integer expert action it runs the actor and feeds whatever the actor wrote at ``"action"``
(here the *sampled* index) to ``cross_entropy``. :func:`bc_loss_module` gives it a view of the
same parameters that writes the masked logits at ``"action"`` instead, which BCLoss then scores
with cross-entropy against the expert index (= the masked NLL).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict import TensorDictBase
from tensordict.nn import InteractionType, TensorDictModule, TensorDictSequential
from torch import nn
from torchrl.data import Categorical
from torchrl.modules import MaskedCategorical, ProbabilisticActor, ValueOperator
from torchrl.objectives import BCLoss

from torchrl_bc.models.config import ArchitectureConfig
from torchrl_bc.models.encoders import mlp
from torchrl_bc.models.extractor import MultimodalExtractor
from torchrl_bc.models.spec import ObsSpec

__all__ = [
    "ACTION_KEY",
    "FEATURES_KEY",
    "LOGITS_KEY",
    "MASK_KEY",
    "ObsDictModule",
    "actor_extractor",
    "build_actor",
    "bc_loss_module",
    "build_value",
    "nll_loss",
]

FEATURES_KEY = "features"
LOGITS_KEY = "logits"
MASK_KEY = "action_mask"
ACTION_KEY = "action"


class ObsDictModule(nn.Module):
    """Positional tensors (TensorDictModule calling convention) -> dict -> extractor."""

    def __init__(self, extractor: MultimodalExtractor, keys: Sequence[str]) -> None:
        super().__init__()
        self.extractor = extractor
        self.keys = list(keys)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.extractor(dict(zip(self.keys, tensors, strict=True)))


def _features_module(extractor: MultimodalExtractor) -> TensorDictModule:
    keys = extractor.in_keys
    return TensorDictModule(ObsDictModule(extractor, keys), in_keys=keys,
                            out_keys=[FEATURES_KEY])


def build_actor(cfg: ArchitectureConfig, obs_spec: ObsSpec | None = None,
                extractor: MultimodalExtractor | None = None) -> ProbabilisticActor:
    """Extractor -> head -> masked categorical; samples by default, mode under DETERMINISTIC.

    Reach the extractor with :func:`actor_extractor` (e.g. to attach level graphs or to hand it
    to the SB3 adapter).
    """
    spec = obs_spec or ObsSpec()
    extractor = extractor or MultimodalExtractor(cfg, spec)
    head = mlp(cfg.features_dim, cfg.head_hidden, cfg.n_actions, cfg.activation, cfg.dropout)
    net = TensorDictSequential(
        _features_module(extractor),
        TensorDictModule(head, in_keys=[FEATURES_KEY], out_keys=[LOGITS_KEY]),
    )
    return ProbabilisticActor(
        net,
        in_keys={"logits": LOGITS_KEY, "mask": MASK_KEY},
        out_keys=[ACTION_KEY],
        spec=Categorical(cfg.n_actions),
        distribution_class=MaskedCategorical,
        return_log_prob=True,
        default_interaction_type=InteractionType.RANDOM,
    )


def actor_extractor(actor: ProbabilisticActor) -> MultimodalExtractor:
    """The ``MultimodalExtractor`` inside an actor built by :func:`build_actor`."""
    for module in actor.modules():
        if isinstance(module, MultimodalExtractor):
            return module
    raise ValueError("actor has no MultimodalExtractor")


def build_value(cfg: ArchitectureConfig, obs_spec: ObsSpec | None = None,
                extractor: MultimodalExtractor | None = None) -> TensorDictSequential:
    """A value operator writing ``"state_value"``; pass the actor's extractor to share it."""
    spec = obs_spec or ObsSpec()
    extractor = extractor or MultimodalExtractor(cfg, spec)
    head = mlp(cfg.features_dim, cfg.value_hidden, 1, cfg.activation, cfg.dropout)
    return TensorDictSequential(_features_module(extractor),
                                ValueOperator(head, in_keys=[FEATURES_KEY]))


def nll_loss(actor: ProbabilisticActor, td: TensorDictBase,
             expert_key: str = "expert_action") -> torch.Tensor:
    """Mean NLL of the expert action under the (masked) policy distribution."""
    dist = actor.get_dist(td)
    return -dist.log_prob(td.get(expert_key).reshape(td.batch_size)).mean()


class _MaskLogits(nn.Module):
    """Illegal actions get the most negative finite logit (cross-entropy then ignores them)."""

    def forward(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return logits.masked_fill(~mask.bool(), torch.finfo(logits.dtype).min)


def bc_loss_module(actor: ProbabilisticActor, loss_function=None) -> BCLoss:
    """TorchRL ``BCLoss`` over the actor's parameters, reading the expert index at ``"action"``.

    ``loss_function(masked_logits, expert_action)`` may replace plain cross-entropy (e.g. to add
    label smoothing); it must return per-sample losses.
    """
    logits_view = TensorDictSequential(
        actor.module[0],
        TensorDictModule(_MaskLogits(), in_keys=[LOGITS_KEY, MASK_KEY], out_keys=[ACTION_KEY]),
    )
    return BCLoss(logits_view, loss_function=loss_function or "cross_entropy")
