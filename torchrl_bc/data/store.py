"""The consolidated episode store: one ``TensorDict`` memmap directory that opens in milliseconds.

Layout (``TensorDict.load_memmap(path)``, batch size ``[]``):

* ``steps`` [N]: every step of every used episode, episode after episode (time-contiguous):
  the observation keys (``player_frame`` uint8 [1,84,84], ``global_view`` uint8 [1,100,176],
  ``game_state`` float32 [39], ``action_mask`` bool [6], ``graph_ninja_node`` int32 [1],
  ``graph_entity_state`` float32 [M, 4] zero-padded to the dataset's largest entity count M),
  ``action`` int64, ``label_agreement`` int8 (ticks of the step that used the label),
  ``ticks`` int8, ``done``/``terminated``/``truncated`` bool [1] (state *before* the step; always
  False, as in a TorchRL rollout), ``("next", "done"|"terminated"|"truncated")`` bool [1] and
  ``("next", "reward")`` float32 [1], ``episode`` / ``level`` int64 (rows of the two tables
  below) and ``step`` int64 (t within the episode).
* ``episodes`` [E]: ``start``, ``length``, ``level``, ``source_level`` (the un-mirrored level,
  which decides the split), ``n_ticks`` int64; ``success``, ``won``, ``mirrored`` bool.
* ``levels`` (only with the graph modality): every level's static graph once, concatenated:
  ``node_type`` int8, ``node_kind`` int16, ``node_pos`` float32 [., 2], ``edge_index`` int32
  [2, .], ``edge_type`` int8, delimited by ``node_ptr`` / ``edge_ptr`` int64 [L+1];
  ``n_entities`` int64 [L]; ``cell_to_node`` int32 [L, rows, cols].

Next observations are not stored (they would double the frames): the next step of row i is
row i+1 unless ``("next", "done")``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tensordict import TensorDict

from torchrl_bc.data.cache import STORE_VERSION, EpisodeCache, obs_signature_hash
from torchrl_bc.io import make_temp_dir
from torchrl_bc.obs.config import ObservationConfig

__all__ = ["STORE_VERSION", "write_store"]

_RENAMED = {"actions": "action", "agreement": "label_agreement", "ticks": "ticks"}


def _template(arrays: dict[str, np.ndarray], max_ent: int) -> TensorDict:
    """A one-row TensorDict with every step key, dtype and per-step shape."""
    row: dict[str, Any] = {}
    for key, arr in arrays.items():
        if key in ("rewards", "terminated", "truncated"):
            continue
        shape = arr.shape[1:]
        if key == "graph_entity_state":
            shape = (max_ent, arr.shape[2])
        name = _RENAMED.get(key, key)
        dtype = torch.int64 if name == "action" else torch.from_numpy(arr[:0]).dtype
        row[name] = torch.zeros((1, *shape), dtype=dtype)
    flag = torch.zeros(1, 1, dtype=torch.bool)
    row |= {"done": flag, "terminated": flag, "truncated": flag,
            "episode": torch.zeros(1, dtype=torch.int64),
            "level": torch.zeros(1, dtype=torch.int64),
            "step": torch.zeros(1, dtype=torch.int64)}
    row["next"] = TensorDict({"done": flag, "terminated": flag, "truncated": flag,
                              "reward": torch.zeros(1, 1)}, [1])
    return TensorDict(row, [1])


def write_store(path: Path, episodes: list[dict[str, Any]], cache: EpisodeCache,
                config: ObservationConfig, tmp_parent: Path) -> None:
    """Consolidate cached episodes into a new store at ``path`` (temp dir, then rename)."""
    level_ids: dict[str, int] = {}
    for ep in episodes:
        for h in (ep["source_level"], ep["level_hash"]):
            level_ids.setdefault(h, len(level_ids))
    lengths = np.array([ep["n_steps"] for ep in episodes], np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    n = int(lengths.sum())
    max_ent = max(1, max(ep["n_entities"] for ep in episodes))
    first = cache.arrays(episodes[0]["key"])
    with_graph = "graph_entity_state" in first

    levels_td = None
    if with_graph:
        sig = obs_signature_hash(config)
        graphs = [cache.level(h, sig) for h in level_ids]
        levels_td = _levels_td(graphs)
    tables = TensorDict({
        "start": torch.from_numpy(starts), "length": torch.from_numpy(lengths),
        "level": torch.tensor([level_ids[ep["level_hash"]] for ep in episodes]),
        "source_level": torch.tensor([level_ids[ep["source_level"]] for ep in episodes]),
        "n_ticks": torch.tensor([ep["n_ticks"] for ep in episodes], dtype=torch.int64),
        "success": torch.tensor([bool(ep["success"]) for ep in episodes]),
        "won": torch.tensor([bool(ep["won"]) for ep in episodes]),
        "mirrored": torch.tensor([bool(ep["mirrored"]) for ep in episodes]),
    }, [len(episodes)])
    parts: dict[str, Any] = {"steps": _template(first, max_ent).expand(n), "episodes": tables}
    if levels_td is not None:
        parts["levels"] = levels_td
    tmp = make_temp_dir(".tmp-store-", tmp_parent)
    try:
        store = TensorDict(parts, []).memmap_like(prefix=tmp)
        store["episodes"].update_(tables)
        if levels_td is not None:
            store["levels"].update_(levels_td)
        steps = store["steps"]
        for i, ep in enumerate(episodes):
            arrays = first if i == 0 else cache.arrays(ep["key"])
            _fill(steps, int(starts[i]), int(lengths[i]), arrays, i,
                  level_ids[ep["level_hash"]])
        del store, steps
        if not path.exists():  # else a concurrent build already wrote this very store
            os.rename(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fill(steps: TensorDict, a: int, t: int, arrays: dict[str, np.ndarray], episode: int,
          level: int) -> None:
    b = a + t
    for key, arr in arrays.items():
        if key in ("rewards", "terminated", "truncated"):
            continue
        dst = steps[_RENAMED.get(key, key)]
        src = torch.from_numpy(np.ascontiguousarray(arr))
        if key == "graph_entity_state":
            dst[a:b, : arr.shape[1]] = src
        else:
            dst[a:b] = src
    term = torch.from_numpy(arrays["terminated"])[:, None]
    trunc = torch.from_numpy(arrays["truncated"])[:, None]
    steps["next", "terminated"][a:b] = term
    steps["next", "truncated"][a:b] = trunc
    steps["next", "done"][a:b] = term | trunc
    steps["next", "reward"][a:b] = torch.from_numpy(arrays["rewards"])[:, None]
    steps["episode"][a:b] = episode
    steps["level"][a:b] = level
    steps["step"][a:b] = torch.arange(t)


def _levels_td(graphs: list[dict[str, np.ndarray]]) -> TensorDict:
    nodes = np.array([len(g["node_type"]) for g in graphs], np.int64)
    edges = np.array([g["edge_index"].shape[1] for g in graphs], np.int64)
    ptr = lambda c: torch.from_numpy(np.concatenate([[0], np.cumsum(c)]).astype(np.int64))  # noqa: E731
    cat = lambda k, axis=0: torch.from_numpy(  # noqa: E731
        np.ascontiguousarray(np.concatenate([g[k] for g in graphs], axis=axis)))
    return TensorDict({
        "node_type": cat("node_type"), "node_kind": cat("node_kind"),
        "node_pos": cat("node_pos"), "edge_index": cat("edge_index", 1),
        "edge_type": cat("edge_type"), "node_ptr": ptr(nodes), "edge_ptr": ptr(edges),
        "n_entities": torch.tensor([int(g["n_entities"].reshape(-1)[0]) for g in graphs],
                                   dtype=torch.int64),
        "cell_to_node": torch.from_numpy(np.stack([g["cell_to_node"] for g in graphs])),
    }, [])
