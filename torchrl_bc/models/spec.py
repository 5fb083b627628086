"""The observation shapes a model is built for (``obs_spec``), and the keys it reads.

Kept apart from ``torchrl_bc.obs`` so models can be built and tested without a simulator, and so
an SB3 export can carry the spec as a plain dict. ``ObsSpec.from_observation_config`` derives it
from the observation builder's config, which is what training and export should use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["GRAPH_KEYS", "ObsSpec"]

#: Per-sample graph keys in a batch (see ``torchrl_bc.models.graph`` for the contract).
GRAPH_KEYS: tuple[str, ...] = ("graph_level", "graph_ninja_node", "graph_entity_state")
_SHAPE_KEYS = ("player_frame_shape", "global_view_shape", "local_view_shape")


@dataclass(frozen=True)
class ObsSpec:
    """Shapes and vocabularies of the observation modalities.

    ``entity_kinds`` is the size of the entity-kind vocabulary (sim type ids are < 32); a kind of
    -1 marks a cell node. ``entity_state_dim`` is the width of ``graph_entity_state`` rows.
    """

    player_frame_shape: tuple[int, int, int] = (1, 84, 84)
    global_view_shape: tuple[int, int, int] = (1, 100, 176)
    game_state_dim: int = 39
    local_view_shape: tuple[int, int, int] = (2, 16, 16)
    objective_dim: int = 8
    n_actions: int = 6
    node_types: int = 2
    edge_types: int = 3
    entity_kinds: int = 32
    node_pos_dim: int = 2
    entity_state_dim: int = 4

    def __post_init__(self) -> None:
        for key in _SHAPE_KEYS:
            shape = tuple(int(v) for v in getattr(self, key))
            if len(shape) != 3 or min(shape) < 1:
                raise ValueError(f"ObsSpec.{key} must be (C, H, W) with positive sides, "
                                 f"got {shape}")
            object.__setattr__(self, key, shape)
        for f in fields(self):
            if f.name.endswith("_shape"):
                continue
            value = getattr(self, f.name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"ObsSpec.{f.name} must be a positive int, got {value!r}")

    @classmethod
    def from_observation_config(cls, config: Any) -> ObsSpec:
        """The spec the ``torchrl_bc.obs`` builder makes for ``config`` (an ObservationConfig)."""
        from torchrl_bc.obs import EDGE_TYPES, N_ACTIONS, N_GAME_STATE, NODE_TYPES
        from torchrl_bc.obs.config import LOCAL_CHANNELS, N_OBJECTIVE
        from torchrl_bc.obs.raster import LEVEL_H, LEVEL_W

        size = config.player_frame_size
        scale = config.global_scale
        return cls(
            player_frame_shape=(1, size, size),
            global_view_shape=(1, LEVEL_H // scale, LEVEL_W // scale),
            game_state_dim=N_GAME_STATE,
            local_view_shape=(LOCAL_CHANNELS, config.local_size, config.local_size),
            objective_dim=N_OBJECTIVE,
            n_actions=N_ACTIONS,
            node_types=len(NODE_TYPES),
            edge_types=len(EDGE_TYPES),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObsSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown ObsSpec key(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in _SHAPE_KEYS:
            out[key] = list(out[key])
        return out
