"""Observations: one builder over simulator state, shared by replays and the RL environment.

What each modality is (keys, spaces, how it is observed) is declared once in
:mod:`torchrl_bc.obs.modalities`.
"""

from torchrl_bc.obs.builder import (
    GAME_STATE_FEATURES,
    N_ACTIONS,
    N_GAME_STATE,
    ObservationBuilder,
    clear_level_cache,
)
from torchrl_bc.obs.config import OBS_VERSION, ObservationConfig, registered_keys
from torchrl_bc.obs.graph import EDGE_TYPES, NODE_TYPES, StaticGraph
from torchrl_bc.obs.modalities import Modality, modality_names, observation_keys

__all__ = [
    "EDGE_TYPES",
    "GAME_STATE_FEATURES",
    "NODE_TYPES",
    "N_ACTIONS",
    "N_GAME_STATE",
    "OBS_VERSION",
    "Modality",
    "ObservationBuilder",
    "ObservationConfig",
    "StaticGraph",
    "clear_level_cache",
    "modality_names",
    "observation_keys",
    "registered_keys",
]
