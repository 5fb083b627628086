"""The BC policy as a TorchRL ``ProbabilisticActor``, and an optional value operator.

Chain: observation keys -> ``MultimodalExtractor`` -> ``"features"`` -> MLP head -> ``"logits"``
-> ``MaskedCategorical(logits, mask=action_mask)`` -> ``"action"`` (int64 index) and its log-prob.

This one module trains (``torchrl_bc.train.loss.MaskedBCLoss`` scores the expert action under
``actor.get_dist(td)``) and acts (greedy under ``set_exploration_type(DETERMINISTIC)``, sampled
under ``RANDOM``); the checkpoint stores its ``state_dict``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from tensordict.nn import InteractionType, TensorDictModule, TensorDictSequential
from torch import nn
from torchrl.data import Categorical
from torchrl.modules import MaskedCategorical, ProbabilisticActor, ValueOperator

from torchrl_bc.models.config import ArchitectureConfig
from torchrl_bc.models.encoders import mlp
from torchrl_bc.models.extractor import MultimodalExtractor
from torchrl_bc.models.graph import LevelGraph
from torchrl_bc.models.spec import ObsSpec

__all__ = [
    "ACTION_KEY",
    "FEATURES_KEY",
    "LOGITS_KEY",
    "MASK_KEY",
    "ObsDictModule",
    "actor_extractor",
    "actor_head",
    "as_level_graphs",
    "build_actor",
    "build_value",
    "level_graphs_on",
    "without_log_prob",
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


@contextmanager
def without_log_prob(actor: ProbabilisticActor) -> Iterator[None]:
    """The actor acts without writing ``"action_log_prob"`` (closed-loop evaluation only needs
    the action; the log-prob is a cross-entropy per step), then writes it again."""
    module = actor.module[-1]
    before = module.return_log_prob
    module.return_log_prob = False
    try:
        yield
    finally:
        module.return_log_prob = before


def actor_head(actor: ProbabilisticActor) -> nn.Module:
    """The MLP head (``"features"`` -> ``"logits"``) of an actor built by :func:`build_actor`."""
    return actor.module[0].module[1].module


def build_value(cfg: ArchitectureConfig, obs_spec: ObsSpec | None = None,
                extractor: MultimodalExtractor | None = None) -> TensorDictSequential:
    """A value operator writing ``"state_value"``; pass the actor's extractor to share it."""
    spec = obs_spec or ObsSpec()
    extractor = extractor or MultimodalExtractor(cfg, spec)
    head = mlp(cfg.features_dim, cfg.value_hidden, 1, cfg.activation, cfg.dropout)
    return TensorDictSequential(_features_module(extractor),
                                ValueOperator(head, in_keys=[FEATURES_KEY]))


def as_level_graphs(graphs: Sequence[Any] | None) -> list[LevelGraph]:
    """``LevelGraph``s from level graphs or their static dicts (``data.level_graphs``)."""
    return [g if isinstance(g, LevelGraph) else LevelGraph.from_static(g) for g in graphs or ()]


@contextmanager
def level_graphs_on(actor: ProbabilisticActor, graphs: Sequence[Any],
                    restore: Sequence[Any] | None = None) -> Iterator[None]:
    """Index ``graph_level`` into ``graphs`` (e.g. closed-loop levels), then into ``restore``
    (the training levels); nothing for actors without the graph modality."""
    extractor = actor_extractor(actor)
    if not extractor.cfg.uses("graph"):
        yield
        return
    extractor.set_level_graphs(as_level_graphs(graphs))
    try:
        yield
    finally:
        extractor.set_level_graphs(as_level_graphs(restore))
