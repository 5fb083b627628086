"""SB3 features extractor around the very same ``MultimodalExtractor`` the BC actor uses.

The wrapped module keeps its own ``state_dict`` keys under ``.extractor``, so BC weights move
into SB3 with a prefix change only. SB3 hands every key over as float32 (``preprocess_obs`` with
``normalize_images=False``: ``FrameCNN`` divides by 255 itself); the padded level graphs are
turned back into the extractor's level-bank input here: each distinct ``graph_key`` is unpadded
once into a :class:`~torchrl_bc.models.LevelGraph` and registered in the extractor's
``LevelGraphBank``, and ``graph_level`` then indexes the bank. That is the extractor's own
sparse path (distinct levels encoded once per batch, node embeddings cached during no-grad
rollouts), so PPO runs exactly the BC computation.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from torchrl_bc.models import ArchitectureConfig, LevelGraph, MultimodalExtractor, ObsSpec
from torchrl_bc.models.extractor import dense_keys
from torchrl_bc.sb3.spaces import GRAPH_PAD_KEYS, GraphPadding

__all__ = ["ACTIVATION_FNS", "SB3MultimodalExtractor", "policy_kwargs_spec",
           "resolve_policy_kwargs"]

ACTIVATION_FNS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU,
                                              "tanh": nn.Tanh, "elu": nn.ELU}
_EXTRACTOR_PATH = "torchrl_bc.sb3.extractor.SB3MultimodalExtractor"


class SB3MultimodalExtractor(BaseFeaturesExtractor):
    """``BaseFeaturesExtractor`` whose only parameters are a ``MultimodalExtractor``'s.

    Constructor kwargs are plain dicts (``architecture``, ``obs_spec``, ``graph_padding``) so
    they can be stored in an export and loaded with ``weights_only=True``.
    """

    def __init__(self, observation_space: gym.spaces.Dict, architecture: dict[str, Any],
                 obs_spec: dict[str, Any], graph_padding: dict[str, int] | None = None,
                 max_bank_levels: int = 4096) -> None:
        cfg = ArchitectureConfig.from_dict(dict(architecture))
        super().__init__(observation_space, cfg.features_dim)
        self.cfg = cfg
        self.spec = ObsSpec.from_dict(dict(obs_spec))
        self.padding = GraphPadding.from_dict(graph_padding) if graph_padding else None
        missing = [k for k in self._needed_keys() if k not in observation_space.spaces]
        if missing:
            raise ValueError(f"observation space lacks {missing}, which architecture "
                             f"{cfg.name!r} reads")
        self.extractor = MultimodalExtractor(cfg, self.spec)
        self.max_bank_levels = max_bank_levels
        self._bank_index: dict[tuple[int, int, int], int] = {}

    def _needed_keys(self) -> list[str]:
        keys = dense_keys(self.cfg)
        if self.cfg.uses("graph"):
            keys += ["graph_ninja_node", "graph_entity_state", *GRAPH_PAD_KEYS]
        return keys

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        obs = {k: observations[k] for k in dense_keys(self.cfg)}
        if self.cfg.uses("graph"):
            obs["graph_level"] = self._bank_levels(observations)
            obs["graph_ninja_node"] = observations["graph_ninja_node"].reshape(-1).long()
            obs["graph_entity_state"] = observations["graph_entity_state"]
        return self.extractor(obs)

    def _bank_levels(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """Bank index of each sample's level, registering levels not seen before."""
        keys = observations["graph_key"].reshape(-1, 3).long()
        uniq, inverse = torch.unique(keys, dim=0, return_inverse=True)
        uniq_keys = [tuple(int(v) for v in row) for row in uniq.tolist()]
        new = [k for k in uniq_keys if k not in self._bank_index]
        if new and len(self._bank_index) + len(new) > self.max_bank_levels:
            # Generated-level streams would grow the bank forever; start over (not model state).
            self._bank_index.clear()
            self.extractor.set_level_graphs([])
            new = uniq_keys
        if new:
            first = {}
            for i, row in enumerate(keys.tolist()):
                first.setdefault(tuple(row), i)
            for k in new:
                self._bank_index[k] = self.extractor.graph_bank.append(
                    self._unpad(observations, first[k]))
        ids = torch.tensor([self._bank_index[k] for k in uniq_keys], dtype=torch.int64,
                           device=keys.device)
        return ids.index_select(0, inverse)

    @staticmethod
    def _unpad(observations: dict[str, torch.Tensor], i: int) -> LevelGraph:
        n, e, m = (int(v) for v in observations["graph_sizes"][i].tolist())
        return LevelGraph.from_static({
            "node_type": observations["graph_node_type"][i, :n],
            "node_kind": observations["graph_node_kind"][i, :n],
            "node_pos": observations["graph_node_pos"][i, :n],
            "edge_index": observations["graph_edge_index"][i, :, :e],
            "edge_type": observations["graph_edge_type"][i, :e],
            "n_entities": m,
        })


def policy_kwargs_spec(arch: ArchitectureConfig, obs_spec: ObsSpec,
                       padding: GraphPadding | None, share_features_extractor: bool = True
                       ) -> dict[str, Any]:
    """Plain-typed policy kwargs (class and activation by name), as stored in an export."""
    return {
        "features_extractor_class": _EXTRACTOR_PATH,
        "features_extractor_kwargs": {
            "architecture": arch.to_dict(),
            "obs_spec": obs_spec.to_dict(),
            "graph_padding": padding.to_dict() if padding is not None else None,
        },
        "net_arch": {"pi": list(arch.head_hidden), "vf": list(arch.value_hidden)},
        "activation_fn": arch.activation,
        "share_features_extractor": bool(share_features_extractor),
        "normalize_images": False,
    }


def resolve_policy_kwargs(spec: dict[str, Any]) -> dict[str, Any]:
    """Stored (plain) policy kwargs -> what ``PPO(..., policy_kwargs=...)`` takes."""
    out = dict(spec)
    if out.get("features_extractor_class") != _EXTRACTOR_PATH:
        raise ValueError(f"policy_kwargs.features_extractor_class is "
                         f"{out.get('features_extractor_class')!r}, expected {_EXTRACTOR_PATH!r}")
    out["features_extractor_class"] = SB3MultimodalExtractor
    out["features_extractor_kwargs"] = dict(out["features_extractor_kwargs"])
    out["net_arch"] = {k: list(v) for k, v in out["net_arch"].items()}
    act = out["activation_fn"]
    if act not in ACTIVATION_FNS:
        raise ValueError(f"policy_kwargs.activation_fn {act!r} is not one of "
                         f"{sorted(ACTIVATION_FNS)}")
    out["activation_fn"] = ACTIVATION_FNS[act]
    return out
