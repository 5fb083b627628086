"""Sampling a prepared store through TorchRL: the samplers and the read-only storage.

:class:`~torchrl_bc.data.dataset.BCDataset` is a ``TensorDictReplayBuffer`` over
:class:`StepStorage`; ``sample()`` yields a ``TensorDict`` batch [B] in the form the models
expect:

=========================  =====================  ===========================================
key                        dtype, shape           notes
=========================  =====================  ===========================================
``player_frame``           uint8 [B, 1, 84, 84]
``global_view``            uint8 [B, 1, 100, 176]
``game_state``             float32 [B, 39]
``action_mask``            bool [B, 6]
``graph_level``            int64 [B, 1]           row of ``BCDataset.level_graphs``
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

(graph keys only with the graph modality; images only when built; training batches carry the
observation keys and the label only.) ``graph_level`` indexes the dataset-wide level list, which
a trainer attaches once with ``extractor.set_level_graphs(dataset.level_graphs)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tensordict import TensorDict
from torchrl.data.replay_buffers.samplers import Sampler
from torchrl.data.replay_buffers.storages import TensorStorage

if TYPE_CHECKING:
    from torchrl_bc.data.dataset import BCDataset

__all__ = ["LevelGroupedSampler", "StepSampler", "StepStorage", "action_balance_weights"]


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
    Draws come from the buffer's generator when it has one, else from :attr:`generator`
    (seeded by ``seed``; the dataset swaps in a fresh one per epoch).
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
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None

    def _sampleable_count(self, storage: Any, batch_size: int) -> int:
        return int(self.indices.numel())

    def sample(self, storage: Any, batch_size: int) -> tuple[torch.Tensor, dict]:
        g = self._rng if self._rng is not None else self.generator
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
        return {"rng": self.generator.get_state() if self.generator is not None else None}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("rng") is not None and self.generator is not None:
            self.generator.set_state(state_dict["rng"])

    def _empty(self) -> None:
        return

    def dumps(self, path: Any) -> None:  # the index tables are rebuilt from the dataset
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
        g = self._rng if self._rng is not None else self.generator
        k = self.levels_per_batch
        u = torch.rand(k, generator=g, dtype=torch.float64).numpy() * self._level_cdf[-1]
        slot_level = np.minimum(np.searchsorted(self._level_cdf, u, side="right"),
                                self.n_levels - 1)
        lv = slot_level[np.arange(batch_size) * k // max(batch_size, 1)]  # equal slots
        v = torch.rand(batch_size, generator=g, dtype=torch.float64).numpy()
        pos = np.searchsorted(self._step_cdf, self._base[lv] + v * self._mass[lv], side="right")
        pos = np.clip(pos, self._start[lv], self._end[lv] - 1)  # float edges stay in the level
        return self.indices[torch.from_numpy(pos)], {}

    def __repr__(self) -> str:
        kind = "weighted" if self._cdf is not None else "uniform"
        return (f"LevelGroupedSampler({kind}, {self.indices.numel()} steps, {self.n_levels} "
                f"levels, <= {self.levels_per_batch} per batch)")


class StepStorage(TensorStorage):
    """Read-only ``TensorStorage`` over the store whose ``get`` builds model-ready batches."""

    def __init__(self, dataset: BCDataset, *, keys: Sequence[Any] | None = None) -> None:
        n = dataset.n_steps()
        super().__init__(storage=dataset.steps, max_size=n)
        self._len = n
        self.dataset, self.keys = dataset, keys

    def get(self, index: Any) -> TensorDict:
        return self.dataset.gather(torch.as_tensor(index), keys=self.keys)

    def set(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a prepared dataset is read-only; rebuild it with `torchrl-bc prepare`")
