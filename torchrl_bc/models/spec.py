"""The observation shapes a model is built for (``obs_spec``), and the keys it reads.

Kept apart from ``torchrl_bc.obs`` so models can be built and tested without a simulator, and so
an SB3 export can carry the spec as a plain dict. ``ObsSpec.from_observation_config`` derives it
from the observation builder's config, which is what training and export should use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from torchrl_bc.sim.actions import N_ACTIONS

__all__ = ["GRAPH_KEYS", "ObsSpec"]

#: Per-sample graph keys in a batch (see ``torchrl_bc.models.graph`` for the contract).
GRAPH_KEYS: tuple[str, ...] = ("graph_level", "graph_ninja_node", "graph_entity_state")
_SHAPE_KEYS = ("player_frame_shape", "global_view_shape", "local_view_shape")
#: Dense vector modalities with a field of their own (older exports carry these names).
_DIM_KEYS = ("game_state_dim", "objective_dim")


@dataclass(frozen=True)
class ObsSpec:
    """Shapes and vocabularies of the observation modalities.

    ``entity_kinds`` is the size of the entity-kind vocabulary (sim type ids are < 32); a kind of
    -1 marks a cell node. ``entity_state_dim`` is the width of ``graph_entity_state`` rows.
    ``extra_shapes`` holds the per-sample shape of every dense modality registered in
    ``torchrl_bc.obs.modalities`` that has no field of its own (``name_shape`` / ``name_dim``);
    :meth:`dense_shape` reads either.
    """

    player_frame_shape: tuple[int, int, int] = (1, 84, 84)
    global_view_shape: tuple[int, int, int] = (1, 100, 176)
    game_state_dim: int = 39
    local_view_shape: tuple[int, int, int] = (2, 16, 16)
    objective_dim: int = 8
    n_actions: int = N_ACTIONS
    node_types: int = 2
    edge_types: int = 3
    entity_kinds: int = 32
    node_pos_dim: int = 2
    entity_state_dim: int = 4
    extra_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()

    def __post_init__(self) -> None:
        extra = self.extra_shapes.items() if isinstance(self.extra_shapes, dict) \
            else self.extra_shapes
        extra = tuple(sorted((str(k), tuple(int(v) for v in shape)) for k, shape in extra))
        bad = [k for k, shape in extra if not shape or min(shape) < 1]
        if bad:
            raise ValueError(f"ObsSpec.extra_shapes has empty or non-positive shapes for {bad}")
        object.__setattr__(self, "extra_shapes", extra)
        for key in _SHAPE_KEYS:
            shape = tuple(int(v) for v in getattr(self, key))
            if len(shape) != 3 or min(shape) < 1:
                raise ValueError(f"ObsSpec.{key} must be (C, H, W) with positive sides, "
                                 f"got {shape}")
            object.__setattr__(self, key, shape)
        for f in fields(self):
            if f.name.endswith("_shape") or f.name == "extra_shapes":
                continue
            value = getattr(self, f.name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"ObsSpec.{f.name} must be a positive int, got {value!r}")

    def _shape_of(self, name: str) -> tuple[int, ...] | None:
        if f"{name}_shape" in _SHAPE_KEYS:
            return getattr(self, f"{name}_shape")
        if f"{name}_dim" in _DIM_KEYS:
            return (getattr(self, f"{name}_dim"),)
        return dict(self.extra_shapes).get(name)

    def has_dense(self, name: str) -> bool:
        """Whether the spec carries a shape for dense modality ``name``."""
        return self._shape_of(name) is not None

    def dense_shape(self, name: str) -> tuple[int, ...]:
        """Per-sample shape of dense modality ``name``."""
        shape = self._shape_of(name)
        if shape is None:
            raise ValueError(f"ObsSpec has no shape for modality {name!r}")
        return shape

    @classmethod
    def from_observation_config(cls, config: Any) -> ObsSpec:
        """The spec the ``torchrl_bc.obs`` builder makes for ``config`` (an ObservationConfig).

        The built-in dense modalities get their shape whether or not ``config`` turns them on
        (older exports carry them all); registered ones without a field only when it does.
        """
        from torchrl_bc.obs import EDGE_TYPES, NODE_TYPES
        from torchrl_bc.obs import modalities as M

        every = replace(config, modalities=M.modality_names())
        spaces = M.observation_spaces(every)
        kwargs: dict[str, Any] = {}
        extra = []
        for name in M.dense_modalities():
            shape = tuple(spaces[name].shape)
            if f"{name}_shape" in _SHAPE_KEYS:
                kwargs[f"{name}_shape"] = shape
            elif f"{name}_dim" in _DIM_KEYS:
                kwargs[f"{name}_dim"] = shape[0]
            elif config.has(name):
                extra.append((name, shape))
        return cls(**kwargs, n_actions=N_ACTIONS, node_types=len(NODE_TYPES),
                   edge_types=len(EDGE_TYPES), extra_shapes=tuple(extra))

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
        extra = out.pop("extra_shapes")
        if extra:  # absent when empty, so specs of the built-in modalities read as before
            out["extra_shapes"] = {k: list(shape) for k, shape in extra}
        return out
