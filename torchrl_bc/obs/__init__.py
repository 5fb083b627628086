"""Observations: one builder over simulator state, shared by replays and the RL environment."""

from torchrl_bc.obs.builder import (
    GAME_STATE_FEATURES,
    N_ACTIONS,
    N_GAME_STATE,
    ObservationBuilder,
    clear_level_cache,
)
from torchrl_bc.obs.config import ALL_MODALITIES, OBS_VERSION, ObservationConfig
from torchrl_bc.obs.graph import EDGE_TYPES, NODE_TYPES, StaticGraph

__all__ = [
    "ALL_MODALITIES",
    "EDGE_TYPES",
    "GAME_STATE_FEATURES",
    "NODE_TYPES",
    "N_ACTIONS",
    "N_GAME_STATE",
    "OBS_VERSION",
    "ObservationBuilder",
    "ObservationConfig",
    "StaticGraph",
    "clear_level_cache",
]
