"""Models: architecture config, modality encoders, fusion, the BC actor and value operator."""

from torchrl_bc.models.config import PRESETS, ArchitectureConfig, preset
from torchrl_bc.models.extractor import MultimodalExtractor, extractor_in_keys
from torchrl_bc.models.graph import (
    GraphEncoder,
    LevelGraph,
    LevelGraphBank,
    PackedGraphs,
    pack_graphs,
)
from torchrl_bc.models.policy import (
    ACTION_KEY,
    FEATURES_KEY,
    LOGITS_KEY,
    MASK_KEY,
    actor_extractor,
    build_actor,
    build_value,
    level_graphs_on,
)
from torchrl_bc.models.spec import ObsSpec

__all__ = [
    "ACTION_KEY",
    "FEATURES_KEY",
    "LOGITS_KEY",
    "MASK_KEY",
    "PRESETS",
    "ArchitectureConfig",
    "GraphEncoder",
    "LevelGraph",
    "LevelGraphBank",
    "MultimodalExtractor",
    "ObsSpec",
    "PackedGraphs",
    "actor_extractor",
    "build_actor",
    "build_value",
    "extractor_in_keys",
    "level_graphs_on",
    "pack_graphs",
    "preset",
]
