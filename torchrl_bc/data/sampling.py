"""Reading a prepared dataset and sampling it through a TorchRL ``ReplayBuffer``.

:class:`BCDataset` opens the store named by ``manifest.json`` (memory-mapped, nothing is read
until sampled). :meth:`BCDataset.replay_buffer` returns a ``torchrl.data.ReplayBuffer`` whose
``sample()`` yields a ``TensorDict`` batch [B] in the form the models expect:

=========================  =====================  ===========================================
key                        dtype, shape           notes
=========================  =====================  ===========================================
``player_frame``           uint8 [B, 1, 84, 84]   [B, k, 1, 84, 84] when frame-stacked
``global_view``            uint8 [B, 1, 100, 176] idem
``game_state``             float32 [B, 39]        [B, k, 39] when frame-stacked
``action_mask``            bool [B, 6]
``graph_level``            int64 [B, 1]           row of :meth:`BCDataset.level_graphs`
``graph_ninja_node``       int64 [B, 1]           node within that level's graph
``graph_entity_state``     float32 [B, M, 4]      M = most entities of a level in the batch
``action``                 int64 [B]              the label (action of the step's first tick)
``label_agreement``        int8 [B]               ticks of the step that used the label
``ticks``                  int8 [B]               ticks the step covered
``episode``/``level``      int64 [B]              rows of the episode / level tables
``step``                   int64 [B]              t within the episode
``index``                  int64 [B]              row in the store
``done``, ``terminated``,  bool [B, 1]            before the step (always False)
``truncated``
``("next", ...)``          bool [B, 1] / float32  ``done``, ``terminated``, ``truncated``,
                           [B, 1]                 ``reward`` after the step
=========================  =====================  ===========================================

(graph keys only with the graph modality; images only when built.) Frame stacking takes the
``k`` most recent steps of the chosen keys, oldest first, by index arithmetic over the
time-contiguous layout (repeating the episode's first step at its start): nothing is stored
twice. ``graph_level`` indexes the dataset-wide level list, which a trainer attaches once with
``extractor.set_level_graphs(dataset.level_graphs())``; :meth:`BCDataset.batch_level_graphs`
gives the per-batch alternative (local indices and the batch's own graph list).

Gathers use ``np.take`` on the memmaps: torch's advanced indexing is ~20x slower here when it
competes for threads with training.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tensordict import TensorDict
from torchrl.data import ReplayBuffer
from torchrl.data.replay_buffers.samplers import Sampler
from torchrl.data.replay_buffers.storages import TensorStorage

from torchrl_bc.data.manifest import StoreCorruptError, check_store, read_manifest
from torchrl_bc.data.split import SPLITS

__all__ = ["BCDataset", "LevelGroupedSampler", "StepSampler", "StepStorage",
           "action_balance_weights"]

_GRAPH_FIELDS = ("node_type", "node_kind", "node_pos", "edge_index", "edge_type")


def action_balance_weights(actions: torch.Tensor, power: float = 1.0,
                           n_actions: int = 6) -> torch.Tensor:
    """Per-sample weights ``count(action) ** -power``: 1 balances classes exactly, 0 is uniform.

    Human inputs are NOOP/RIGHT-heavy (JUMP is ~3 % of ticks); balancing lets rare classes be
    learned without a weighted loss.
    """
    counts = torch.bincount(actions.long(), minlength=n_actions).double().clamp_min(1.0)
    return counts.pow(-power)[actions.long()]


class StepSampler(Sampler):
    """Samples store rows from a fixed subset, uniformly or by weight, with replacement.

    A Python/torch sampler because torchrl's C++ extension (``PrioritizedSampler``) does not load
    with torch 2.13. Weighted draws invert a cumulative sum by binary search: O(B log n).
    Draws come from the buffer's generator when it has one, else from ``seed``.
    """

    def __init__(self, indices: torch.Tensor, weights: torch.Tensor | None = None,
                 seed: int | None = None) -> None:
        self.indices = torch.as_tensor(indices, dtype=torch.int64)
        if self.indices.numel() == 0:
            raise ValueError("StepSampler: no steps to sample (check the split and filters)")
        self._cdf = None
        if weights is not None:
            if weights.shape != self.indices.shape:
                raise ValueError("StepSampler: one weight per index is needed")
            self._cdf = np.cumsum(weights.double().numpy())
        self._generator = torch.Generator().manual_seed(seed) if seed is not None else None

    def _sampleable_count(self, storage: Any, batch_size: int) -> int:
        return int(self.indices.numel())

    def sample(self, storage: Any, batch_size: int) -> tuple[torch.Tensor, dict]:
        g = self._rng if self._rng is not None else self._generator
        if self._cdf is None:
            pos = torch.randint(self.indices.numel(), (batch_size,), generator=g)
        else:
            u = torch.rand(batch_size, generator=g, dtype=torch.float64).numpy() * self._cdf[-1]
            # numpy, not torch.searchsorted: torch's threaded version takes ~10 ms per call
            # when training holds the cores.
            pos = torch.from_numpy(np.minimum(np.searchsorted(self._cdf, u, side="right"),
                                              len(self._cdf) - 1))
        return self.indices[pos], {}

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self._generator.get_state() if self._generator is not None else None}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("rng") is not None and self._generator is not None:
            self._generator.set_state(state_dict["rng"])

    def _empty(self) -> None:
        return

    def dumps(self, path: Any) -> None:
        return

    def loads(self, path: Any) -> None:
        return

    def __repr__(self) -> str:
        kind = "weighted" if self._cdf is not None else "uniform"
        return f"StepSampler({kind}, {self.indices.numel()} steps)"


class LevelGroupedSampler(StepSampler):
    """A :class:`StepSampler` whose every batch comes from at most ``levels_per_batch`` levels.

    Graph encoders encode each distinct level of a batch once, so their cost grows with the
    number of distinct levels, and uniform draws over ~100 levels make nearly every one distinct.
    The batch is cut into K equal slots; each slot draws a level (with replacement) with
    probability proportional to its mass, the sum of its steps' weights (its step count when
    unweighted, its action-balance weight when balanced), then its steps from that level by
    weight. Every batch position thus has exactly :class:`StepSampler`'s marginal, weights
    included; only steps within a batch become correlated. O(K + B log n) per batch.
    """

    def __init__(self, indices: torch.Tensor, levels: torch.Tensor, levels_per_batch: int,
                 weights: torch.Tensor | None = None, seed: int | None = None) -> None:
        indices = torch.as_tensor(indices, dtype=torch.int64)
        levels = torch.as_tensor(levels, dtype=torch.int64)
        if levels.shape != indices.shape:
            raise ValueError("LevelGroupedSampler: one level per index is needed")
        if levels_per_batch < 1:
            raise ValueError(f"LevelGroupedSampler: levels_per_batch must be >= 1, "
                             f"got {levels_per_batch}")
        if weights is not None and weights.shape != indices.shape:
            raise ValueError("LevelGroupedSampler: one weight per index is needed")
        order = torch.argsort(levels, stable=True)
        super().__init__(indices[order], None if weights is None else weights[order], seed=seed)
        self.levels_per_batch = int(levels_per_batch)
        self.level_ids, counts = torch.unique_consecutive(levels[order], return_counts=True)
        w = np.ones(len(order)) if weights is None else weights[order].double().numpy()
        self._step_cdf = np.cumsum(w)  # over steps sorted by level
        cdf0 = np.concatenate([[0.0], self._step_cdf])
        self._end = np.cumsum(counts.numpy())
        self._start = self._end - counts.numpy()
        self._base = cdf0[self._start]
        self._mass = cdf0[self._end] - self._base
        self._level_cdf = np.cumsum(self._mass)

    @property
    def n_levels(self) -> int:
        return int(self.level_ids.numel())

    def sample(self, storage: Any, batch_size: int) -> tuple[torch.Tensor, dict]:
        g = self._rng if self._rng is not None else self._generator
        k = self.levels_per_batch
        u = torch.rand(k, generator=g, dtype=torch.float64).numpy() * self._level_cdf[-1]
        slot_level = np.minimum(np.searchsorted(self._level_cdf, u, side="right"),
                                self.n_levels - 1)
        lv = slot_level[np.arange(batch_size) * k // max(batch_size, 1)]  # equal slots
        v = torch.rand(batch_size, generator=g, dtype=torch.float64).numpy()
        pos = np.searchsorted(self._step_cdf, self._base[lv] + v * self._mass[lv], side="right")
        pos = np.clip(pos, self._start[lv], self._end[lv] - 1)  # float edges stay in the level
        return self.indices[torch.from_numpy(pos)], {}

    def dumps(self, path: Any) -> None:
        """Saves the generator state (the index tables are rebuilt from the dataset)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), path / "sampler_state.pt")

    def loads(self, path: Any) -> None:
        file = Path(path) / "sampler_state.pt"
        if file.is_file():
            self.load_state_dict(torch.load(file, weights_only=True))

    def __repr__(self) -> str:
        kind = "weighted" if self._cdf is not None else "uniform"
        return (f"LevelGroupedSampler({kind}, {self.indices.numel()} steps, {self.n_levels} "
                f"levels, <= {self.levels_per_batch} per batch)")


class StepStorage(TensorStorage):
    """Read-only ``TensorStorage`` over the store whose ``get`` builds model-ready batches."""

    def __init__(self, dataset: BCDataset, *, frame_stack: int = 1,
                 stack_keys: Sequence[str] = ("player_frame",),
                 keys: Sequence[Any] | None = None) -> None:
        n = dataset.n_steps
        super().__init__(storage=dataset.steps, max_size=n)
        self._len = n
        self.dataset, self.frame_stack, self.stack_keys = dataset, frame_stack, tuple(stack_keys)
        self.keys = keys

    def get(self, index: Any) -> TensorDict:
        return self.dataset.gather(torch.as_tensor(index), keys=self.keys,
                                   frame_stack=self.frame_stack, stack_keys=self.stack_keys)

    def set(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a prepared dataset is read-only; rebuild it with `torchrl-bc prepare`")


class BCDataset:
    """A prepared dataset (``out_dir`` of ``build_dataset``), memory-mapped.

    Opening never executes code from the store: it is first checked against the file list and
    sizes the manifest recorded at commit (a planted ``other.pickle`` is an unexpected file, so
    the open is refused with :class:`~torchrl_bc.data.manifest.StoreCorruptError`), and loaded
    with ``allow_pickle=False`` regardless. ``verify=True`` also re-hashes every byte (slow on
    big stores; ``prepare`` does it on every run).
    """

    def __init__(self, path: str | Path, *, verify: bool = False) -> None:
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        check_store(self.path, self.manifest, full=verify)
        store = self.path / self.manifest["store"]
        try:
            self.store = TensorDict.load_memmap(store, allow_pickle=False)
        except RuntimeError as exc:  # tensordict's refusal of pickled nodes, among others
            raise StoreCorruptError(f"{store}: cannot be loaded safely: {exc}") from exc
        self.steps: TensorDict = self.store["steps"]
        self.episodes: TensorDict = self.store["episodes"]
        self.levels: TensorDict | None = self.store.get("levels", None)
        rows = self.manifest["episodes"]
        if len(rows) != self.episodes.batch_size[0]:
            raise ValueError(f"{self.path}: manifest lists {len(rows)} episodes, store holds "
                             f"{self.episodes.batch_size[0]}")
        self.episode_split = torch.tensor([SPLITS.index(r["split"]) for r in rows],
                                          dtype=torch.int8)
        self.keys = list(self.steps.keys(include_nested=True, leaves_only=True))
        self._np = {k: self.steps.get(k).numpy() for k in self.keys}
        self._n_ent = (self.levels["n_entities"].clone() if self.levels is not None else None)

    # -- sizes and tables ----------------------------------------------------------------------
    @property
    def n_steps(self) -> int:
        return int(self.steps.batch_size[0])

    @property
    def n_episodes(self) -> int:
        return int(self.episodes.batch_size[0])

    @property
    def manifest_hash(self) -> str:
        return self.manifest["manifest_hash"]

    def episode(self, i: int) -> TensorDict:
        """Episode ``i`` as a TensorDict with leading time dim (a view on the store)."""
        a, n = int(self.episodes["start"][i]), int(self.episodes["length"][i])
        return self.steps[a:a + n]

    def level_graph(self, i: int) -> dict[str, Any]:
        """Level ``i``'s static graph (the mapping ``models.LevelGraph.from_static`` reads)."""
        if self.levels is None:
            raise ValueError("this dataset was built without the graph modality")
        lv = self.levels
        n0, n1 = int(lv["node_ptr"][i]), int(lv["node_ptr"][i + 1])
        e0, e1 = int(lv["edge_ptr"][i]), int(lv["edge_ptr"][i + 1])
        out: dict[str, Any] = {k: lv[k][n0:n1] for k in ("node_type", "node_kind", "node_pos")}
        out["edge_index"] = lv["edge_index"][:, e0:e1]
        out["edge_type"] = lv["edge_type"][e0:e1]
        out["n_entities"] = int(lv["n_entities"][i])
        out["cell_to_node"] = lv["cell_to_node"][i]
        return out

    def level_graphs(self) -> list[dict[str, Any]]:
        """Every level's graph, in ``graph_level`` order."""
        n = 0 if self.levels is None else int(self.levels["n_entities"].shape[0])
        return [self.level_graph(i) for i in range(n)]

    def batch_level_graphs(self, batch: TensorDict) -> tuple[torch.Tensor, list[dict[str, Any]]]:
        """Per-batch form: ``graph_level`` renumbered into the batch's distinct levels
        [B, 1], and those levels' graphs (each level once)."""
        uniq, local = torch.unique(batch["graph_level"].reshape(-1), return_inverse=True)
        return local[:, None], [self.level_graph(int(i)) for i in uniq]

    # -- selection -----------------------------------------------------------------------------
    def select(self, split: str | None = "train", *, min_agreement: int = 0,
               only_successful: bool = False, top_fraction: float = 1.0,
               mirrored: bool = True, skip_idle_start: bool = False) -> torch.Tensor:
        """Store rows that pass the split and filters (int64, ascending).

        ``top_fraction`` keeps that fraction of the split's episodes with the fewest ticks
        ("BC-N%": shorter demonstrations of a level are the better ones); ``mirrored=False``
        drops mirrored augmentation episodes. ``skip_idle_start`` drops each episode's leading
        NOOP steps: humans wait a moment after spawning, and a policy cloned on that wait sees
        an unchanging observation, keeps waiting, and never starts.
        """
        ep = self.episodes
        keep = torch.ones(self.n_episodes, dtype=torch.bool)
        if split is not None:
            keep &= self.episode_split == SPLITS.index(split)
        if only_successful:
            keep &= ep["success"] & ep["won"]
        if not mirrored:
            keep &= ~ep["mirrored"]
        if top_fraction < 1.0:
            if not 0.0 < top_fraction <= 1.0:
                raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
            cand = torch.nonzero(keep).flatten()
            order = cand[torch.argsort(ep["n_ticks"][cand], stable=True)]
            keep = torch.zeros_like(keep)
            keep[order[:math.ceil(top_fraction * len(order))]] = True
        rows = keep[self.steps["episode"]]
        if min_agreement > 0:
            rows &= self.steps["label_agreement"] >= min_agreement
        if skip_idle_start:
            rows &= ~self.idle_start_mask()
        return torch.nonzero(rows).flatten()

    def idle_start_mask(self) -> torch.Tensor:
        """True for steps before their episode's first non-NOOP action."""
        episode = self.steps["episode"].long()
        step = self.steps["step"].long()
        acting = self.steps["action"] != 0
        big = torch.iinfo(torch.int64).max
        first = torch.full((self.n_episodes,), big, dtype=torch.int64)
        first.scatter_reduce_(0, episode[acting], step[acting], reduce="amin")
        return step < first[episode]

    # -- batches -------------------------------------------------------------------------------
    def gather(self, index: torch.Tensor, *, keys: Sequence[Any] | None = None,
               frame_stack: int = 1, stack_keys: Sequence[str] = ("player_frame",)) -> TensorDict:
        """The batch for store rows ``index`` [B] (see the module docstring for keys)."""
        idx = index.reshape(-1).numpy()
        b = idx.shape[0]
        stacked = None
        if frame_stack > 1:
            start = idx - self._np["step"][idx]
            back = np.arange(frame_stack - 1, -1, -1, dtype=np.int64)
            stacked = np.maximum(idx[:, None] - back[None], start[:, None]).reshape(-1)
        out = TensorDict({}, [b])
        for key in keys if keys is not None else self.keys:
            arr = self._np[key]
            if stacked is not None and key in stack_keys:
                val = np.take(arr, stacked, axis=0).reshape(b, frame_stack, *arr.shape[1:])
            else:
                val = np.take(arr, idx, axis=0)
            out.set(key, torch.from_numpy(val))
        out.set("index", torch.from_numpy(idx.copy()))
        level = torch.from_numpy(np.take(self._np["level"], idx))
        if "graph_entity_state" in out.keys() and self._n_ent is not None:
            m = max(1, int(self._n_ent[level].max())) if b else 1
            out.set("graph_entity_state", out.get("graph_entity_state")[:, :m].contiguous())
        if "graph_ninja_node" in out.keys():
            out.set("graph_ninja_node", out.get("graph_ninja_node").long())
            out.set("graph_level", level[:, None])
        return out

    def replay_buffer(self, split: str = "train", batch_size: int = 256, *,
                      balance_actions: bool = False, balance_power: float = 1.0,
                      frame_stack: int = 1, stack_keys: Sequence[str] = ("player_frame",),
                      keys: Sequence[Any] | None = None, min_agreement: int = 0,
                      only_successful: bool = False, top_fraction: float = 1.0,
                      mirrored: bool = True, skip_idle_start: bool = False,
                      levels_per_batch: int = 0, seed: int | None = 0) -> ReplayBuffer:
        """A TorchRL ``ReplayBuffer`` sampling ``split`` with replacement (see ``select``).

        ``levels_per_batch`` > 0 draws each batch from at most that many levels
        (:class:`LevelGroupedSampler`), bounding the graph encoder's per-batch work.
        """
        rows = self.select(split, min_agreement=min_agreement, only_successful=only_successful,
                           top_fraction=top_fraction, mirrored=mirrored,
                           skip_idle_start=skip_idle_start)
        weights = None
        if balance_actions:
            weights = action_balance_weights(self.steps["action"][rows], balance_power)
        if levels_per_batch > 0:
            sampler: StepSampler = LevelGroupedSampler(
                rows, torch.from_numpy(np.take(self._np["level"], rows.numpy())).long(),
                levels_per_batch, weights, seed=seed)
        else:
            sampler = StepSampler(rows, weights, seed=seed)
        return ReplayBuffer(storage=StepStorage(self, frame_stack=frame_stack,
                                                stack_keys=stack_keys, keys=keys),
                            sampler=sampler,
                            batch_size=batch_size, collate_fn=_identity)

    def iter_batches(self, split: str = "val", batch_size: int = 256,
                     **select: Any) -> Iterator[TensorDict]:
        """Every selected step once, in store order (for validation losses)."""
        frame_stack = select.pop("frame_stack", 1)
        stack_keys = select.pop("stack_keys", ("player_frame",))
        keys = select.pop("keys", None)
        rows = self.select(split, **select)
        for a in range(0, rows.numel(), batch_size):
            yield self.gather(rows[a:a + batch_size], keys=keys, frame_stack=frame_stack,
                              stack_keys=stack_keys)


def _identity(x: Any) -> Any:
    return x
