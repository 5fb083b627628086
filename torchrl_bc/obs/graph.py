"""The level graph for graph encoders (HGT/GAT): built once per level, shared by every step.

Layout (see docs/OBSERVATIONS.md):

* Nodes ``0 .. n_cells-1`` are traversable sub-cells (``graph_cell`` px squares, 12 px by
  default, whose solid coverage is below one half), numbered row-major (y, then x).
* Nodes ``n_cells .. n_cells+n_entities-1`` are the simulator's entities, in ``sim.entities``
  order (type, then load order), placed at their initial position.
* ``edge_index`` int32 [2, E] (source, target) with ``edge_type`` int8 [E]:
  0 ``adjacent`` (sub-cell <-> sub-cell, 8-neighbourhood; a diagonal only when both orthogonal
  neighbours are free, so it never cuts a corner), 1 ``entity_in_cell`` (entity -> the sub-cell
  under its initial position, and back), 2 ``switch_of`` (exit switch -> its exit door,
  and back).
* Per step only ``graph_ninja_node`` (the sub-cell node under the ninja; a solid sub-cell maps
  to its nearest free one) and ``graph_entity_state`` float32 [n_entities, 4] = (x / 1056,
  y / 600, active, status) change. ``status`` is the toggle-mine state / 2, a door's closed flag,
  an exit door's switch-hit flag, and 0 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from torchrl_bc.obs.raster import LEVEL_H, LEVEL_W
from torchrl_bc.sim import entities as E

__all__ = ["EDGE_TYPES", "NODE_TYPES", "StaticGraph", "build_static_graph"]

NODE_TYPES: tuple[str, ...] = ("cell", "entity")
EDGE_TYPES: tuple[str, ...] = ("adjacent", "entity_in_cell", "switch_of")


@dataclass(frozen=True)
class StaticGraph:
    """The per-level part of the graph. Arrays are read-only and shared across steps."""

    level_hash: str
    node_type: np.ndarray  # int8 [N]: 0 cell, 1 entity
    node_pos: np.ndarray  # float32 [N, 2]: centre x / 1056, y / 600
    node_kind: np.ndarray  # int16 [N]: entity kind (sim type id), -1 for cells
    edge_index: np.ndarray  # int32 [2, E]
    edge_type: np.ndarray  # int8 [E]
    cell_to_node: np.ndarray  # int32 [rows, cols]: sub-cell -> free cell node (-1: deep solid)
    n_cells: int
    n_entities: int

    def node_at(self, x: float, y: float, cell: int) -> int:
        """The cell node under world point (x, y); deep inside solid, the nearest free one."""
        rows, cols = self.cell_to_node.shape
        r = min(max(int(y // cell), 0), rows - 1)
        c = min(max(int(x // cell), 0), cols - 1)
        node = int(self.cell_to_node[r, c])
        if node < 0 and self.n_cells:
            pos = self.node_pos[: self.n_cells]
            d = (pos[:, 0] * LEVEL_W - x) ** 2 + (pos[:, 1] * LEVEL_H - y) ** 2
            node = int(np.argmin(d))
        return max(node, 0)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (what a per-level store has to keep)."""
        return sum(a.nbytes for a in (self.node_type, self.node_pos, self.node_kind,
                                      self.edge_index, self.edge_type, self.cell_to_node))


def _nearest_free(node_of: np.ndarray, rounds: int = 3) -> np.ndarray:
    """Give solid sub-cells next to free space the node of a free neighbour (4-way dilation).

    A ninja's centre is never deeper than a few pixels into a solid sub-cell, so a few rounds
    cover every reachable case; cells left at -1 are resolved on demand by
    :meth:`StaticGraph.node_at`.
    """
    out = node_of.copy()
    for _ in range(rounds):
        grown = out.copy()
        for dst, src in (((slice(None, -1), slice(None)), (slice(1, None), slice(None))),
                         ((slice(1, None), slice(None)), (slice(None, -1), slice(None))),
                         ((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
                         ((slice(None), slice(1, None)), (slice(None), slice(None, -1)))):
            g, o = grown[dst], out[src]
            take = (g < 0) & (o >= 0)
            g[take] = o[take]
        out = grown
    return out.astype(np.int32)


def build_static_graph(level_hash: str, coverage: np.ndarray, cell: int,
                       entities: list) -> StaticGraph:
    """Build the static graph from the level's coverage and its freshly loaded entities.

    ``coverage`` is the solid fraction per ``cell`` px sub-cell ([600/cell, 1056/cell]) or
    per pixel ([600, 1056]), which is then averaged down to sub-cells.
    """
    rows, cols = LEVEL_H // cell, LEVEL_W // cell
    if coverage.shape == (rows, cols):
        cov = coverage
    else:
        cov = coverage.reshape(rows, cell, cols, cell).mean(axis=(1, 3))
    free = cov < 0.5
    n_cells = int(free.sum())
    node_of = np.full((rows, cols), -1, np.int64)
    node_of[free] = np.arange(n_cells)

    src: list[np.ndarray] = []
    dst: list[np.ndarray] = []
    typ: list[np.ndarray] = []

    def add(a: np.ndarray, b: np.ndarray, t: int) -> None:
        # Undirected relations are stored as both directed edges (what message passing wants).
        src.extend((a, b))
        dst.extend((b, a))
        typ.append(np.full(2 * a.size, t, np.int8))

    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        y0, y1 = 0, rows - dy
        x0, x1 = max(0, -dx), cols - max(0, dx)
        a = free[y0:y1, x0:x1]
        b = free[y0 + dy:y1 + dy, x0 + dx:x1 + dx]
        ok = a & b
        if dy and dx:  # no corner cutting
            ok &= free[y0:y1, x0 + dx:x1 + dx] & free[y0 + dy:y1 + dy, x0:x1]
        add(node_of[y0:y1, x0:x1][ok], node_of[y0 + dy:y1 + dy, x0 + dx:x1 + dx][ok], 0)

    cell_to_node = _nearest_free(node_of)
    n_ent = len(entities)
    ent_nodes = n_cells + np.arange(n_ent)
    ex = np.array([e.xpos for e in entities], np.float64)
    ey = np.array([e.ypos for e in entities], np.float64)
    if n_ent:
        r = np.clip((ey // cell).astype(np.intp), 0, rows - 1)
        c = np.clip((ex // cell).astype(np.intp), 0, cols - 1)
        under = cell_to_node[r, c].astype(np.int64)
        placed = under >= 0  # an entity embedded deep in solid gets no cell edge
        add(ent_nodes[placed], under[placed], 1)
        index = {id(e): i for i, e in enumerate(entities)}
        pairs = [(index[id(e)], index[id(e.door)]) for e in entities
                 if e.kind == E.EXIT_SWITCH and id(getattr(e, "door", None)) in index]
        if pairs:
            p = np.array(pairs, np.int64)
            add(n_cells + p[:, 0], n_cells + p[:, 1], 2)

    ys, xs = np.nonzero(free)
    cell_pos = np.stack([(xs + 0.5) * cell / LEVEL_W, (ys + 0.5) * cell / LEVEL_H], axis=1)
    ent_pos = np.stack([ex / LEVEL_W, ey / LEVEL_H], axis=1) if n_ent else np.zeros((0, 2))
    edge_index = (np.stack([np.concatenate(src), np.concatenate(dst)]).astype(np.int32)
                  if src else np.zeros((2, 0), np.int32))
    graph = StaticGraph(
        level_hash=level_hash,
        node_type=np.concatenate([np.zeros(n_cells, np.int8), np.ones(n_ent, np.int8)]),
        node_pos=np.concatenate([cell_pos, ent_pos]).astype(np.float32),
        node_kind=np.concatenate([np.full(n_cells, -1, np.int16),
                                  np.array([e.kind for e in entities], np.int16)]),
        edge_index=edge_index,
        edge_type=np.concatenate(typ) if typ else np.zeros(0, np.int8),
        cell_to_node=cell_to_node,
        n_cells=n_cells,
        n_entities=n_ent,
    )
    for arr in (graph.node_type, graph.node_pos, graph.node_kind, graph.edge_index,
                graph.edge_type, graph.cell_to_node):
        arr.setflags(write=False)
    return graph
