"""Graph encoders (HGT and GAT) over sparse, per-level static graphs, in plain torch.

Graph input contract
====================
The level graph is static per level (``torchrl_bc.obs.graph.StaticGraph``) and only a few values
change per step, so a batch never carries a graph per sample. Instead:

**Static part, one per distinct level** (:class:`LevelGraph`, built from a ``StaticGraph`` or a
mapping with the same field names by :meth:`LevelGraph.from_static`):

* ``node_type`` int [N] (0 cell, 1 entity), ``node_kind`` int [N] (sim entity type id, -1 for a
  cell), ``node_pos`` float32 [N, 2] (x / 1056, y / 600);
* ``edge_index`` int [2, E] (source, target; undirected relations stored both ways),
  ``edge_type`` int [E];
* entity nodes are the **last** ``n_entities`` nodes, in ``sim.entities`` order.

**Per-sample part** (leading batch dims ``[*B]``, flattened inside):

* ``graph_level`` int [*B] or [*B, 1]: index of the sample's level in the level list;
* ``graph_ninja_node`` int [*B] or [*B, 1]: local node index (within that level) under the ninja;
* ``graph_entity_state`` float32 [*B, M, S] (optional): per-entity dynamic state, rows in entity
  order, zero-padded to any ``M``; rows past the level's ``n_entities`` are ignored.

The level list reaches the model in one of two ways:

1. a :class:`LevelGraphBank` attached to the extractor (``extractor.set_level_graphs(graphs)``);
   ``graph_level`` indexes it. This keeps every TensorDict entry batch-leading, as TorchRL needs.
2. explicitly, as the packed union of ``L`` levels in the same dict (keys of
   :meth:`PackedGraphs.to_dict`: ``graph_node_type``, ``graph_node_kind``, ``graph_node_pos``,
   ``graph_edge_index`` (already offset into the union), ``graph_edge_type``, ``graph_node_ptr``
   [L+1], ``graph_n_entities`` [L]); ``graph_level`` then indexes these ``L`` levels. For plain
   dict callers such as the SB3 adapter.

The encoder runs once over the disjoint union of the distinct levels of a batch (no dense
padding), then gathers, per sample: the ninja's node embedding, the level's mean node embedding,
and an attention pool over entity nodes combined with their dynamic state (queried by the ninja
embedding). Dynamic state enters only after message passing, which is what lets each level be
encoded once per batch whatever its samples' entity states are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from torchrl_bc.models.config import ArchitectureConfig
from torchrl_bc.models.encoders import activation, mlp
from torchrl_bc.models.spec import ObsSpec

__all__ = [
    "GATLayer",
    "GraphEncoder",
    "HGTLayer",
    "LevelGraph",
    "LevelGraphBank",
    "PackedGraphs",
    "pack_graphs",
    "scatter_softmax",
]


def _as_tensor(x: Any, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(dtype)
    return torch.from_numpy(np.array(x)).to(dtype)  # a copy: obs arrays are read-only


@dataclass(frozen=True)
class LevelGraph:
    """One level's static graph as torch tensors (see the module docstring)."""

    node_type: torch.Tensor
    node_kind: torch.Tensor
    node_pos: torch.Tensor
    edge_index: torch.Tensor
    edge_type: torch.Tensor
    n_entities: int

    @classmethod
    def from_static(cls, g: Any) -> LevelGraph:
        """From an ``obs.StaticGraph`` (or any object/mapping with the same field names)."""
        get = g.__getitem__ if isinstance(g, Mapping) else lambda k: getattr(g, k)
        out = cls(
            node_type=_as_tensor(get("node_type"), torch.int64),
            node_kind=_as_tensor(get("node_kind"), torch.int64),
            node_pos=_as_tensor(get("node_pos"), torch.float32),
            edge_index=_as_tensor(get("edge_index"), torch.int64).reshape(2, -1),
            edge_type=_as_tensor(get("edge_type"), torch.int64),
            n_entities=int(get("n_entities")),
        )
        out.validate()
        return out

    @property
    def num_nodes(self) -> int:
        return int(self.node_type.shape[0])

    def validate(self) -> None:
        n = self.num_nodes
        if self.node_kind.shape != (n,) or self.node_pos.ndim != 2 or self.node_pos.shape[0] != n:
            raise ValueError("LevelGraph: node_type, node_kind and node_pos must have N rows")
        if self.edge_type.shape != (self.edge_index.shape[1],):
            raise ValueError("LevelGraph: edge_type must have one entry per edge")
        if self.edge_index.numel() and (int(self.edge_index.min()) < 0
                                        or int(self.edge_index.max()) >= n):
            raise ValueError(f"LevelGraph: edge_index out of range for {n} nodes")
        if not 0 <= self.n_entities <= n:
            raise ValueError(f"LevelGraph: n_entities {self.n_entities} not in [0, {n}]")

    def to(self, device: torch.device | str) -> LevelGraph:
        return LevelGraph(self.node_type.to(device), self.node_kind.to(device),
                          self.node_pos.to(device), self.edge_index.to(device),
                          self.edge_type.to(device), self.n_entities)


_PACKED_KEYS = ("node_type", "node_kind", "node_pos", "edge_index", "edge_type", "node_ptr",
                "n_entities")


@dataclass(frozen=True)
class PackedGraphs:
    """Disjoint union of ``L`` level graphs; ``node_ptr`` [L+1] delimits each level's nodes."""

    node_type: torch.Tensor
    node_kind: torch.Tensor
    node_pos: torch.Tensor
    edge_index: torch.Tensor
    edge_type: torch.Tensor
    node_ptr: torch.Tensor
    n_entities: torch.Tensor

    @property
    def num_levels(self) -> int:
        return int(self.node_ptr.shape[0]) - 1

    @property
    def num_nodes(self) -> int:
        return int(self.node_type.shape[0])

    def node_level(self) -> torch.Tensor:
        """Level index of every node, [N]."""
        counts = self.node_ptr[1:] - self.node_ptr[:-1]
        return torch.repeat_interleave(
            torch.arange(self.num_levels, device=counts.device), counts,
            output_size=self.num_nodes)

    def to_dict(self, prefix: str = "graph_") -> dict[str, torch.Tensor]:
        return {prefix + k: getattr(self, k) for k in _PACKED_KEYS}

    @classmethod
    def from_dict(cls, data: Mapping[str, torch.Tensor], prefix: str = "graph_") -> PackedGraphs:
        missing = [prefix + k for k in _PACKED_KEYS if prefix + k not in data]
        if missing:
            raise KeyError(f"packed graph input lacks {missing}")
        kw = {k: data[prefix + k] for k in _PACKED_KEYS}
        return cls(**{k: v.float() if k == "node_pos" else v.long() for k, v in kw.items()})


def pack_graphs(graphs: Sequence[LevelGraph]) -> PackedGraphs:
    """Concatenate level graphs into one disjoint union (edge indices offset per level)."""
    if not graphs:
        raise ValueError("pack_graphs needs at least one graph")
    sizes = [g.num_nodes for g in graphs]
    offsets = [0]
    for s in sizes:
        offsets.append(offsets[-1] + s)
    device = graphs[0].node_type.device
    return PackedGraphs(
        node_type=torch.cat([g.node_type for g in graphs]),
        node_kind=torch.cat([g.node_kind for g in graphs]),
        node_pos=torch.cat([g.node_pos for g in graphs]),
        edge_index=torch.cat([g.edge_index + o for g, o in zip(graphs, offsets, strict=False)],
                             dim=1),
        edge_type=torch.cat([g.edge_type for g in graphs]),
        node_ptr=torch.tensor(offsets, dtype=torch.int64, device=device),
        n_entities=torch.tensor([g.n_entities for g in graphs], dtype=torch.int64,
                                device=device),
    )


class LevelGraphBank:
    """The level list that ``graph_level`` indexes; not model state (not in ``state_dict``).

    Keeps one device copy per level so a batch only concatenates tensors already in place.
    """

    def __init__(self, graphs: Sequence[Any] = ()) -> None:
        self._graphs: list[LevelGraph] = []
        self._on_device: dict[tuple[int, str], LevelGraph] = {}
        self.extend(graphs)

    def __len__(self) -> int:
        return len(self._graphs)

    def extend(self, graphs: Sequence[Any]) -> None:
        for g in graphs:
            self.append(g)

    def append(self, graph: Any) -> int:
        """Add a level (``LevelGraph``, ``StaticGraph`` or mapping); returns its index."""
        g = graph if isinstance(graph, LevelGraph) else LevelGraph.from_static(graph)
        self._graphs.append(g)
        return len(self._graphs) - 1

    def get(self, index: int, device: torch.device | str = "cpu") -> LevelGraph:
        key = (index, str(device))
        g = self._on_device.get(key)
        if g is None:
            g = self._graphs[index].to(device)
            self._on_device[key] = g
        return g

    def distinct(self, level: torch.Tensor) -> tuple[list[int], torch.Tensor]:
        """The sorted distinct level ids of ``level`` [B] and each sample's index among them."""
        if len(self._graphs) == 0:
            raise RuntimeError("graph_level given but no level graphs are attached: call "
                               "extractor.set_level_graphs(graphs) first")
        uniq, inverse = torch.unique(level, sorted=True, return_inverse=True)
        ids = uniq.tolist()
        if ids[0] < 0 or ids[-1] >= len(self._graphs):
            raise IndexError(f"graph_level {ids[0] if ids[0] < 0 else ids[-1]} out of range "
                             f"for {len(self._graphs)} attached level graphs")
        return ids, inverse

    def pack(self, ids: Sequence[int], device: torch.device | str = "cpu") -> PackedGraphs:
        return pack_graphs([self.get(i, device) for i in ids])

    def select(self, level: torch.Tensor) -> tuple[PackedGraphs, torch.Tensor]:
        """Pack the distinct levels of ``level`` [B]; returns the union and indices into it."""
        ids, inverse = self.distinct(level)
        return self.pack(ids, level.device), inverse


def scatter_softmax(scores: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """Softmax of ``scores`` [E, H] over the groups given by ``index`` [E] (edge targets)."""
    idx = index[:, None].expand_as(scores)
    with torch.no_grad():  # a per-group shift leaves the softmax unchanged; no gradient needed
        peak = scores.new_full((n, scores.shape[1]), -torch.inf)
        peak = peak.scatter_reduce(0, idx, scores, "amax", include_self=True)
    e = (scores - peak.index_select(0, index)).exp()
    denom = scores.new_zeros((n, scores.shape[1])).index_add_(0, index, e)
    return e / denom.index_select(0, index)


def _per_type(mods: nn.ModuleList, h: torch.Tensor, type_index: list[torch.Tensor],
              out_dim: int) -> torch.Tensor:
    """Apply ``mods[t]`` to the nodes of type ``t`` (type-specific projections)."""
    if len(mods) == 1:
        return mods[0](h)
    out = None
    for mod, idx in zip(mods, type_index, strict=True):
        if idx.numel():
            part = mod(h.index_select(0, idx))
            if out is None:  # the projections' dtype: bfloat16 under autocast, not h's float32
                out = part.new_zeros((h.shape[0], out_dim))
            out = out.index_copy(0, idx, part)
    return out if out is not None else h.new_zeros((h.shape[0], out_dim))


class HGTLayer(nn.Module):
    """One heterogeneous graph transformer layer (Hu et al. 2020), without time encoding.

    Node-type-specific K/Q/V and output projections; per-edge-type attention and message
    matrices and a per-edge-type, per-head prior. Relation matrices are applied at node level
    ([R, N, ...], cheap for a handful of edge types) and gathered per edge with one flat index.
    """

    def __init__(self, dim: int, heads: int, node_types: int, edge_types: int, act: str,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.dim, self.heads, self.dk = dim, heads, dim // heads
        self.kqv = nn.ModuleList(nn.Linear(dim, 3 * dim) for _ in range(node_types))
        self.out = nn.ModuleList(nn.Linear(dim, dim) for _ in range(node_types))
        eye = torch.eye(self.dk).expand(edge_types, heads, self.dk, self.dk)
        self.rel_att = nn.Parameter(eye.clone())
        self.rel_msg = nn.Parameter(eye.clone())
        self.rel_prior = nn.Parameter(torch.ones(edge_types, heads))
        self.skip = nn.Parameter(torch.zeros(node_types))  # sigmoid(0) = half new, half old
        self.act = activation(act)
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, h: torch.Tensor, g: PackedGraphs,
                type_index: list[torch.Tensor]) -> torch.Tensor:
        n, heads, dk = h.shape[0], self.heads, self.dk
        k, q, v = _per_type(self.kqv, h, type_index, 3 * self.dim).view(n, 3, heads, dk).unbind(1)
        src, dst = g.edge_index[0], g.edge_index[1]
        flat = g.edge_type * n + src  # row of (relation, source) in the [R * N] tables
        k_rel = torch.einsum("nhd,rhde->rnhe", k, self.rel_att).reshape(-1, heads, dk)
        v_rel = torch.einsum("nhd,rhde->rnhe", v, self.rel_msg).reshape(-1, heads, dk)
        score = (k_rel.index_select(0, flat) * q.index_select(0, dst)).sum(-1)
        score = score * self.rel_prior.index_select(0, g.edge_type) / math.sqrt(dk)
        alpha = self.drop(scatter_softmax(score, dst, n))
        msg = v_rel.index_select(0, flat) * alpha[..., None]
        agg = h.new_zeros((n, heads, dk)).index_add_(0, dst, msg).reshape(n, self.dim)
        new = _per_type(self.out, self.act(agg), type_index, self.dim)
        gate = torch.sigmoid(self.skip).index_select(0, g.node_type)[:, None]
        return self.norm(gate * self.drop(new) + (1 - gate) * h)


class GATLayer(nn.Module):
    """Graph attention (GAT v1) with a learned per-edge-type, per-head attention bias.

    The lighter option: one shared projection; heterogeneity comes from the node-type/kind input
    embeddings and the edge-type bias.
    """

    def __init__(self, dim: int, heads: int, edge_types: int, act: str,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.dim, self.heads, self.dk = dim, heads, dim // heads
        self.lin = nn.Linear(dim, dim, bias=False)
        self.att_src = nn.Parameter(torch.randn(heads, self.dk) / math.sqrt(self.dk))
        self.att_dst = nn.Parameter(torch.randn(heads, self.dk) / math.sqrt(self.dk))
        self.edge_bias = nn.Parameter(torch.zeros(edge_types, heads))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.act = activation(act)
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, h: torch.Tensor, g: PackedGraphs,
                type_index: list[torch.Tensor]) -> torch.Tensor:
        n = h.shape[0]
        z = self.lin(h).view(n, self.heads, self.dk)
        src, dst = g.edge_index[0], g.edge_index[1]
        a_src = (z * self.att_src).sum(-1)
        a_dst = (z * self.att_dst).sum(-1)
        score = (a_src.index_select(0, src) + a_dst.index_select(0, dst)
                 + self.edge_bias.index_select(0, g.edge_type))
        alpha = self.drop(scatter_softmax(nn.functional.leaky_relu(score, 0.2), dst, n))
        msg = z.index_select(0, src) * alpha[..., None]
        agg = h.new_zeros((n, self.heads, self.dk)).index_add_(0, dst, msg).reshape(n, self.dim)
        return self.norm(h + self.drop(self.act(agg + self.bias)))


class GraphEncoder(nn.Module):
    """Static-graph message passing once per distinct level, then per-sample readout."""

    def __init__(self, cfg: ArchitectureConfig, spec: ObsSpec) -> None:
        super().__init__()
        d = cfg.graph_hidden
        self.node_types, self.kinds = spec.node_types, spec.entity_kinds
        self.pos = nn.Linear(spec.node_pos_dim, d)
        self.type_emb = nn.Embedding(spec.node_types, d)
        self.kind_emb = nn.Embedding(spec.entity_kinds + 1, d)  # row 0: cell (kind -1)
        if cfg.graph_encoder == "hgt":
            layers = [HGTLayer(d, cfg.graph_heads, spec.node_types, spec.edge_types,
                               cfg.activation, cfg.dropout) for _ in range(cfg.graph_layers)]
        else:
            layers = [GATLayer(d, cfg.graph_heads, spec.edge_types, cfg.activation,
                               cfg.dropout) for _ in range(cfg.graph_layers)]
        self.layers = nn.ModuleList(layers)
        self.entity_state = mlp(spec.entity_state_dim, (d,), d, cfg.activation)
        self.query = nn.Linear(d, d)
        self.readout = nn.Sequential(nn.Linear(3 * d, cfg.graph_dim), activation(cfg.activation))
        self.hidden = d
        self.out_dim = cfg.graph_dim

    def encode_nodes(self, g: PackedGraphs) -> torch.Tensor:
        """Node embeddings [N, hidden] of the union; depends only on static data."""
        kind = (g.node_kind + 1).clamp(0, self.kinds)
        h = self.pos(g.node_pos) + self.type_emb(g.node_type) + self.kind_emb(kind)
        type_index = [torch.nonzero(g.node_type == t).squeeze(1) for t in range(self.node_types)]
        for layer in self.layers:
            h = layer(h, g, type_index)
        return h

    def forward(self, g: PackedGraphs, level: torch.Tensor, ninja_node: torch.Tensor,
                entity_state: torch.Tensor | None = None,
                node_emb: torch.Tensor | None = None) -> torch.Tensor:
        """``level`` [B] indexes the union's levels, ``ninja_node`` [B] is level-local.

        ``node_emb`` may pass ``encode_nodes(g)`` computed earlier (the eval-time cache).
        """
        h = self.encode_nodes(g) if node_emb is None else node_emb
        start = g.node_ptr.index_select(0, level)
        ninja = h.index_select(0, start + ninja_node)

        counts = (g.node_ptr[1:] - g.node_ptr[:-1]).clamp_min(1).to(h.dtype)
        pooled = h.new_zeros((g.num_levels, self.hidden)).index_add_(0, g.node_level(), h)
        pooled = (pooled / counts[:, None]).index_select(0, level)

        n_ent = g.n_entities.index_select(0, level)
        m = int(entity_state.shape[1]) if entity_state is not None else int(g.n_entities.max())
        if m == 0:
            ents = torch.zeros_like(ninja)
        else:
            slot = torch.arange(m, device=h.device)
            valid = slot[None, :] < n_ent[:, None]  # [B, M]
            first = g.node_ptr.index_select(0, level + 1) - n_ent
            idx = torch.where(valid, first[:, None] + slot[None, :], 0)
            tok = h.index_select(0, idx.reshape(-1)).view(idx.shape[0], m, self.hidden)
            if entity_state is not None:
                tok = tok + self.entity_state(entity_state.to(h.dtype))
            score = (tok @ self.query(ninja)[:, :, None]).squeeze(-1) / math.sqrt(self.hidden)
            score = score.masked_fill(~valid, torch.finfo(score.dtype).min)
            w = torch.softmax(score, dim=-1) * valid  # levels without entities pool to zero
            ents = torch.einsum("bm,bmd->bd", w, tok)
        return self.readout(torch.cat([ninja, pooled, ents], dim=-1))
