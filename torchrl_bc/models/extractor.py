"""``MultimodalExtractor``: observation dict -> features, shared by the BC actor and SB3.

A plain ``nn.Module`` taking a mapping of tensors, so the SB3 features-extractor adapter can wrap
the very same module (same parameters, same ``state_dict`` keys) without TensorDict.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from torchrl_bc.models.config import ArchitectureConfig
from torchrl_bc.models.encoders import make_encoder
from torchrl_bc.models.fusion import make_fusion
from torchrl_bc.models.graph import GraphEncoder, LevelGraphBank, PackedGraphs
from torchrl_bc.models.spec import GRAPH_KEYS, ObsSpec
from torchrl_bc.obs.modalities import dense_modalities

__all__ = ["MultimodalExtractor", "dense_keys", "extractor_in_keys"]


def dense_keys(cfg: ArchitectureConfig) -> list[str]:
    """The dense (one array per sample) modalities ``cfg`` encodes; each key is its name."""
    dense = dense_modalities()
    return [m for m in cfg.modalities if m in dense]


def extractor_in_keys(cfg: ArchitectureConfig) -> list[str]:
    """Observation keys the extractor reads for ``cfg`` (TensorDict in_keys)."""
    keys = dense_keys(cfg)
    if cfg.uses("graph"):
        keys += list(GRAPH_KEYS)
    return keys


class MultimodalExtractor(nn.Module):
    """Encode each enabled modality, fuse to ``features_dim``.

    ``forward(obs)`` accepts any leading batch shape (``[]`` for a single env step, ``[B]``,
    ``[T, B]``): the batch shape is read from one dense modality and flattened internally.
    In eval mode under ``torch.no_grad()`` the static graph part is cached per level.
    """

    def __init__(self, cfg: ArchitectureConfig, obs_spec: ObsSpec | None = None) -> None:
        super().__init__()
        spec = obs_spec or ObsSpec()
        if spec.n_actions != cfg.n_actions:
            raise ValueError(f"n_actions differs: architecture {cfg.n_actions}, "
                             f"observation spec {spec.n_actions}")
        self.cfg, self.spec = cfg, spec
        self.encoders = nn.ModuleDict()
        # Registry order (the config's canonical order): state_dict keys and fusion order.
        dense = dense_modalities()
        for name in cfg.modalities:
            if name == "graph":
                self.encoders[name] = GraphEncoder(cfg, spec)
            elif name in dense:
                self.encoders[name] = make_encoder(name, cfg, spec.dense_shape(name))
        dims = [enc.out_dim for enc in self.encoders.values()]
        self.fusion = make_fusion(cfg.fusion, dims, cfg.features_dim, cfg.activation,
                                  cfg.fusion_dim, cfg.fusion_heads, cfg.dropout)
        self.features_dim = cfg.features_dim
        self.in_keys = extractor_in_keys(cfg)
        self.graph_bank = LevelGraphBank()
        self.node_cache_levels = 256
        self._node_cache: OrderedDict[int, torch.Tensor] = OrderedDict()
        self._cache_version: tuple = ()

    def set_level_graphs(self, graphs: Sequence[Any]) -> None:
        """Attach the level list that ``graph_level`` indexes (replaces any previous list)."""
        self.graph_bank = LevelGraphBank(graphs)
        self._node_cache.clear()

    def _batch_shape(self, obs: Mapping[str, torch.Tensor]) -> torch.Size:
        for key in self.encoders:
            if key != "graph" and key in obs:
                return obs[key].shape[:-len(self.spec.dense_shape(key))]
        level = obs["graph_level"]
        return level.shape[:-1] if level.ndim and level.shape[-1] == 1 else level.shape

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        batch = self._batch_shape(obs)
        n = batch.numel()
        embeddings = []
        for name, enc in self.encoders.items():
            if name == "graph":
                embeddings.append(self._encode_graph(enc, obs, n))
            else:
                x = obs[name]
                embeddings.append(enc(x.reshape(n, *x.shape[len(batch):])))
        return self.fusion(embeddings).reshape(*batch, self.features_dim)

    def _encode_graph(self, enc: GraphEncoder, obs: Mapping[str, torch.Tensor],
                      n: int) -> torch.Tensor:
        level = obs["graph_level"].reshape(n).long()
        ninja = obs["graph_ninja_node"].reshape(n).long()
        ent = obs["graph_entity_state"] if "graph_entity_state" in obs else None
        if ent is not None:
            ent = ent.reshape(n, *ent.shape[-2:])
        if "graph_node_ptr" in obs:
            return enc(PackedGraphs.from_dict(obs), level, ninja, ent)
        ids, local = self.graph_bank.distinct(level)
        packed = self.graph_bank.pack(ids, level.device)
        node_emb = None
        if not self.training and not torch.is_grad_enabled():
            node_emb = self._cached_node_embeddings(enc, ids, level.device)
        return enc(packed, local, ninja, ent, node_emb=node_emb)

    def _cached_node_embeddings(self, enc: GraphEncoder, ids: list[int],
                                device: torch.device) -> torch.Tensor:
        """Per-level static node embeddings, reused across inference calls.

        Closed-loop rollouts step one level for hundreds of steps; re-running message passing on
        its ~3k-node graph each step would dominate. The cache is keyed on the parameters'
        identity and in-place version counters (optimiser steps and ``load_state_dict`` bump
        them), so it can never serve embeddings of older weights.
        """
        version = (str(device), *((id(p), p._version) for p in enc.parameters()))
        if version != self._cache_version:
            self._node_cache.clear()
            self._cache_version = version
        missing = [i for i in ids if i not in self._node_cache]
        if missing:
            h = enc.encode_nodes(self.graph_bank.pack(missing, device))
            sizes = [self.graph_bank.get(i, device).num_nodes for i in missing]
            for i, part in zip(missing, h.split(sizes), strict=True):
                self._node_cache[i] = part
        for i in ids:
            self._node_cache.move_to_end(i)
        while len(self._node_cache) > self.node_cache_levels:
            self._node_cache.popitem(last=False)
        return torch.cat([self._node_cache[i] for i in ids])
