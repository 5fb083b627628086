"""The SB3 observation space: the builder's arrays plus the level graph as fixed-size padding.

SB3 rollout buffers need one fixed shape per key, but a level graph has a level-dependent number
of nodes, edges and entities, and BC batches never carry it per sample. So only here, in the SB3
adapter, each observation also carries its level's static graph zero-padded to
:class:`GraphPadding`, the true sizes (``graph_sizes``) and a 72-bit level key (``graph_key``)
that lets the extractor encode each distinct level of a batch once. Integer arrays use the
narrowest dtype that holds them (rollout buffers store each key in its space's dtype).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from gymnasium import spaces

from torchrl_bc.obs import ObservationConfig
from torchrl_bc.obs.graph import StaticGraph
from torchrl_bc.obs.modalities import observation_spaces
from torchrl_bc.obs.raster import LEVEL_H, LEVEL_W

__all__ = [
    "GRAPH_PAD_KEYS",
    "GraphPadding",
    "level_key",
    "observation_space",
    "pad_entity_state",
    "pad_static_graph",
    "space_diff",
]

#: Keys of the padded static graph, in the order :func:`pad_static_graph` returns them.
GRAPH_PAD_KEYS: tuple[str, ...] = ("graph_node_type", "graph_node_kind", "graph_node_pos",
                                   "graph_edge_index", "graph_edge_type", "graph_sizes",
                                   "graph_key")


@dataclass(frozen=True)
class GraphPadding:
    """Fixed graph sizes of the SB3 observation; part of the export (the space depends on it)."""

    max_nodes: int
    max_edges: int
    max_entities: int

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"GraphPadding.{f.name} must be a positive int, got {value!r}")
        if self.max_nodes > np.iinfo(np.int16).max:
            raise ValueError(f"GraphPadding.max_nodes {self.max_nodes} exceeds int16 edge ids")

    @classmethod
    def for_config(cls, config: ObservationConfig, max_entities: int = 256) -> GraphPadding:
        """Bounds that hold any level: every sub-cell free, every entity linked twice.

        Cells: the full ``rows x cols`` grid. Edges: the 8-neighbourhood of that grid both ways,
        plus ``entity_in_cell`` and ``switch_of`` (at most two directed edges each per entity).
        """
        rows, cols = LEVEL_H // config.graph_cell, LEVEL_W // config.graph_cell
        grid = rows * (cols - 1) + (rows - 1) * cols + 2 * (rows - 1) * (cols - 1)
        return cls(max_nodes=rows * cols + max_entities, max_edges=2 * grid + 4 * max_entities,
                   max_entities=max_entities)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GraphPadding:
        return cls(**data)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def level_key(level_hash: str) -> np.ndarray:
    """Three 24-bit ints from the level hash: exact after SB3 casts observations to float32."""
    digest = hashlib.sha256(level_hash.encode()).hexdigest()
    return np.array([int(digest[i:i + 6], 16) for i in (0, 6, 12)], dtype=np.int32)


def observation_space(config: ObservationConfig, padding: GraphPadding | None = None
                      ) -> spaces.Dict:
    """The Dict space of :func:`torchrl_bc.sb3.make_sb3_env` for ``config``.

    Dense keys are exactly ``NppEnv``'s (the modality registry's); with the graph modality, the
    per-entity rows are padded to ``padding.max_entities`` and the padded static graph is added.
    """
    pad = (padding or GraphPadding.for_config(config)) if config.has("graph") else None
    parts = observation_spaces(config, pad.max_entities if pad else 0)
    if pad is not None:
        n, e = pad.max_nodes, pad.max_edges
        parts["graph_ninja_node"] = spaces.Box(0, n - 1, (1,), np.int32)
        parts["graph_node_type"] = spaces.Box(0, 127, (n,), np.int8)
        parts["graph_node_kind"] = spaces.Box(-1, 32767, (n,), np.int16)
        parts["graph_node_pos"] = spaces.Box(-np.inf, np.inf, (n, 2), np.float32)
        parts["graph_edge_index"] = spaces.Box(0, n - 1, (2, e), np.int16)
        parts["graph_edge_type"] = spaces.Box(0, 127, (e,), np.int8)
        parts["graph_sizes"] = spaces.Box(0, max(n, e), (3,), np.int32)
        parts["graph_key"] = spaces.Box(0, (1 << 24) - 1, (3,), np.int32)
    return spaces.Dict(parts)


def pad_static_graph(graph: StaticGraph, padding: GraphPadding) -> dict[str, np.ndarray]:
    """The padded static-graph arrays of one level (read-only; shared by all its steps)."""
    n, e, m = graph.node_type.shape[0], graph.edge_index.shape[1], graph.n_entities
    if n > padding.max_nodes or e > padding.max_edges or m > padding.max_entities:
        raise ValueError(
            f"level {graph.level_hash[:12]} has {n} nodes, {e} edges, {m} entities; the SB3 "
            f"padding holds {padding.max_nodes}, {padding.max_edges}, {padding.max_entities}")

    def padded(arr: np.ndarray, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        out = np.zeros(shape, dtype)
        out[tuple(slice(0, k) for k in arr.shape)] = arr
        return out

    out = {
        "graph_node_type": padded(graph.node_type, (padding.max_nodes,), np.int8),
        "graph_node_kind": padded(graph.node_kind, (padding.max_nodes,), np.int16),
        "graph_node_pos": padded(graph.node_pos, (padding.max_nodes, 2), np.float32),
        "graph_edge_index": padded(graph.edge_index, (2, padding.max_edges), np.int16),
        "graph_edge_type": padded(graph.edge_type, (padding.max_edges,), np.int8),
        "graph_sizes": np.array([n, e, m], np.int32),
        "graph_key": level_key(graph.level_hash),
    }
    for arr in out.values():
        arr.setflags(write=False)
    return out


def pad_entity_state(state: np.ndarray, padding: GraphPadding) -> np.ndarray:
    out = np.zeros((padding.max_entities, state.shape[1]), np.float32)
    out[: state.shape[0]] = state
    return out


def _describe(space: spaces.Space) -> str:
    if isinstance(space, spaces.Box):
        return f"Box{tuple(space.shape)} {space.dtype}"
    return repr(space)


def space_diff(expected: spaces.Dict, actual: spaces.Dict) -> list[str]:
    """Human-readable differences between two Dict spaces, key by key (empty when equal)."""
    out = []
    for key in sorted(set(expected.spaces) | set(actual.spaces)):
        a, b = expected.spaces.get(key), actual.spaces.get(key)
        if a is None:
            out.append(f"observation key {key!r}: not in the export, present in the env "
                       f"({_describe(b)})")
        elif b is None:
            out.append(f"observation key {key!r}: in the export ({_describe(a)}), missing in "
                       f"the env")
        elif a != b:
            out.append(f"observation key {key!r}: {_describe(a)} (export) vs {_describe(b)} "
                       f"(env)")
    return out
