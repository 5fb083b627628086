"""The trained module: the TorchRL actor, plus a plain ``nn.Module`` view of its logits.

The checkpoint stores the ``ProbabilisticActor``'s ``state_dict`` (what export and RL load).
Training and rollouts call :class:`LogitsNet`, which shares the actor's parameters but takes a
plain dict and returns logits: DistributedDataParallel wraps it directly, and the loss and the
greedy/sampled action choice work on the masked logits without building distributions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torchrl.modules import ProbabilisticActor

from torchrl_bc.models import ObsSpec, actor_extractor, build_actor
from torchrl_bc.models.config import ArchitectureConfig
from torchrl_bc.models.extractor import MultimodalExtractor
from torchrl_bc.models.graph import LevelGraph
from torchrl_bc.obs import ObservationConfig

__all__ = ["LogitsNet", "build_policy", "level_graphs_on"]


class LogitsNet(nn.Module):
    """``obs dict -> logits``, over the actor's own extractor and head (no copies)."""

    def __init__(self, actor: ProbabilisticActor) -> None:
        super().__init__()
        seq = actor.module[0]
        self.extractor: MultimodalExtractor = actor_extractor(actor)
        self.head: nn.Module = seq.module[1].module
        self.in_keys = list(self.extractor.in_keys)

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.extractor(obs))


def build_policy(arch: ArchitectureConfig, obs: ObservationConfig
                 ) -> tuple[ProbabilisticActor, LogitsNet]:
    actor = build_actor(arch, ObsSpec.from_observation_config(obs))
    return actor, LogitsNet(actor)


def as_level_graphs(graphs: Sequence[Any] | None) -> list[LevelGraph]:
    return [g if isinstance(g, LevelGraph) else LevelGraph.from_static(g) for g in graphs or ()]


@contextmanager
def level_graphs_on(net: LogitsNet, graphs: Sequence[Any], restore: Sequence[Any] | None
                    ) -> Iterator[None]:
    """Temporarily index ``graph_level`` into ``graphs`` (closed-loop levels), then restore."""
    if not net.extractor.cfg.uses("graph"):
        yield
        return
    net.extractor.set_level_graphs(as_level_graphs(graphs))
    try:
        yield
    finally:
        net.extractor.set_level_graphs(as_level_graphs(restore))
