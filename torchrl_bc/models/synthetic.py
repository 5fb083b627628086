"""Synthetic level graphs and observation batches with realistic shapes, for tests and benches.

The graphs mimic ``torchrl_bc.obs.graph``: free sub-cells of a ``rows x cols`` grid joined by
8-neighbour ``adjacent`` edges (no corner cutting), then entity nodes linked to the cell under
them, and one switch -> door pair. Seeded numpy only, so they are identical run to run.
"""

from __future__ import annotations

import numpy as np
import torch
from tensordict import TensorDict

from torchrl_bc.models.graph import LevelGraph
from torchrl_bc.models.spec import ObsSpec
from torchrl_bc.obs.modalities import dense_modalities

__all__ = ["synthetic_batch", "synthetic_level_graph"]


def synthetic_level_graph(seed: int, rows: int = 50, cols: int = 88, free_fraction: float = 0.6,
                          n_entities: int = 20) -> LevelGraph:
    """A level-like graph; the defaults (12 px cells of a 1056x600 level) give ~2.6k nodes."""
    rng = np.random.default_rng(seed)
    # Blocky walls: solid 2x2 tiles, like 24 px tiles over 12 px sub-cells.
    tiles = rng.random(((rows + 1) // 2, (cols + 1) // 2)) < 1 - free_fraction
    free = ~np.kron(tiles, np.ones((2, 2), bool))[:rows, :cols]
    node_of = np.full((rows, cols), -1, np.int64)
    n_cells = int(free.sum())
    node_of[free] = np.arange(n_cells)
    src, dst, typ = [], [], []

    def add(a: np.ndarray, b: np.ndarray, t: int) -> None:
        src.extend((a, b))
        dst.extend((b, a))
        typ.append(np.full(2 * a.size, t, np.int64))

    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        x0, x1 = max(0, -dx), cols - max(0, dx)
        a = free[: rows - dy, x0:x1]
        b = free[dy:, x0 + dx: x1 + dx]
        ok = a & b
        if dy and dx:
            ok &= free[: rows - dy, x0 + dx: x1 + dx] & free[dy:, x0:x1]
        add(node_of[: rows - dy, x0:x1][ok], node_of[dy:, x0 + dx: x1 + dx][ok], 0)
    cells = rng.integers(0, n_cells, n_entities)
    ents = n_cells + np.arange(n_entities)
    if n_entities:
        add(ents, cells, 1)
    if n_entities >= 2:
        add(ents[:1], ents[1:2], 2)
    ys, xs = np.nonzero(free)
    pos = np.concatenate([np.stack([(xs + 0.5) / cols, (ys + 0.5) / rows], 1),
                          rng.random((n_entities, 2))]).astype(np.float32)
    kinds = np.concatenate([np.full(n_cells, -1), rng.integers(1, 29, n_entities)])
    return LevelGraph.from_static({
        "node_type": np.concatenate([np.zeros(n_cells), np.ones(n_entities)]),
        "node_kind": kinds,
        "node_pos": pos,
        "edge_index": np.stack([np.concatenate(src), np.concatenate(dst)]),
        "edge_type": np.concatenate(typ),
        "n_entities": n_entities,
    })


def synthetic_batch(spec: ObsSpec, graphs: list[LevelGraph], batch: int, seed: int = 0,
                    max_entities: int | None = None) -> TensorDict:
    """A TensorDict batch of every modality ``spec`` has a shape for, ``graph_level`` indexing
    ``graphs``.

    ``action_mask`` masks one random action in about half the rows (never all of them), and
    ``expert_action`` is always a legal action.
    """
    g = torch.Generator().manual_seed(seed)
    n_levels = len(graphs)
    m = max_entities if max_entities is not None else max(gr.n_entities for gr in graphs)
    level = torch.randint(0, n_levels, (batch,), generator=g)
    n_cells = torch.tensor([gr.num_nodes - gr.n_entities for gr in graphs])
    ninja = (torch.rand(batch, generator=g) * n_cells[level]).long()
    mask = torch.ones(batch, spec.n_actions, dtype=torch.bool)
    rows = torch.rand(batch, generator=g) < 0.5
    masked = torch.randint(0, spec.n_actions, (batch,), generator=g)
    mask[rows, masked[rows]] = False
    expert = torch.multinomial(mask.float(), 1, generator=g).squeeze(1)
    dense: dict[str, torch.Tensor] = {}
    for name in dense_modalities():
        if not spec.has_dense(name):  # opt-in modalities the spec was not built with
            continue
        shape = (batch, *spec.dense_shape(name))
        if len(shape) == 2:
            dense[name] = torch.randn(*shape, generator=g)
        else:  # pictures and grids are uint8 0..255
            dense[name] = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    return TensorDict({
        **dense,
        "action_mask": mask,
        "graph_level": level[:, None],
        "graph_ninja_node": ninja[:, None],
        "graph_entity_state": torch.rand(batch, m, spec.entity_state_dim, generator=g),
        "expert_action": expert,
    }, batch_size=[batch])
