"""The one dataset object: a prepared folder opened as a TorchRL ``TensorDictReplayBuffer``.

Shaped like TorchRL's ``BaseDatasetExperienceReplay``: the buffer's storage is the memory-mapped
store (:class:`~torchrl_bc.data.sampling.StepStorage`, read-only), opened once per run. The
split and the step filters (``min_agreement``, ``skip_idle_start``) run once, at open; each
epoch only swaps in the cached sampler of its kind (uniform, action-balanced, level-grouped) and
gives it a generator seeded by (seed, epoch, rank), so DDP ranks draw different samples and a
resumed run draws what an uninterrupted one would. ``prepare`` writes such a folder and training
opens it through :func:`~torchrl_bc.data.source.open_dataset`.

A batch holds the keys listed in :mod:`torchrl_bc.data.sampling`; the expert label is renamed
:data:`EXPERT_KEY` so it can never be confused with the actor's own sampled ``action``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tensordict import TensorDict
from torchrl.data import TensorDictReplayBuffer

from torchrl_bc.data.manifest import StoreCorruptError, check_store, read_manifest, row_path
from torchrl_bc.data.sampling import (
    LevelGroupedSampler,
    StepSampler,
    StepStorage,
    action_balance_weights,
)
from torchrl_bc.data.split import SPLITS
from torchrl_bc.obs.config import registered_keys
from torchrl_bc.replay.actions import N_ACTIONS
from torchrl_bc.sim.level import Level

__all__ = ["EXPERT_KEY", "BCDataset", "LevelInfo"]

EXPERT_KEY = "expert_action"


@dataclass(frozen=True)
class LevelInfo:
    """One distinct, un-mirrored level with a winning demo: a row of the dataset's level list
    (its split and a replay file; :meth:`BCDataset.eval_levels` turns it into a ``Level``)."""

    name: str
    level_hash: str
    split: str  # train | val
    demo_ticks: int  # shortest winning demo on this level
    file: Path  # a replay file of it (its map data is read on demand)

    @property
    def map_data(self) -> bytes:
        from torchrl_bc.replay.format import read_replay

        return read_replay(self.file).map_data


class BCDataset(TensorDictReplayBuffer):
    """A prepared dataset (the ``out_dir`` of ``build_dataset``), memory-mapped and sampled.

    Opening never executes code from the store: it is first checked against the file list and
    sizes the manifest recorded at commit (a planted ``other.pickle`` is an unexpected file, so
    the open is refused with :class:`~torchrl_bc.data.manifest.StoreCorruptError`), and loaded
    with ``allow_pickle=False`` regardless. ``verify=True`` also re-hashes every byte.
    ``sample(n)`` draws uniformly from the training rows; :meth:`train_batches` is the epoch
    form the trainer uses.
    """

    def __init__(self, path: str | Path, *, min_agreement: int = 0,
                 skip_idle_start: bool = False, verify: bool = False,
                 change_weight: float = 1.0) -> None:
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        check_store(self.path, self.manifest, full=verify)
        store_dir = self.path / self.manifest["store"]
        try:
            store = TensorDict.load_memmap(store_dir, allow_pickle=False)
        except RuntimeError as exc:  # tensordict's refusal of pickled nodes, among others
            raise StoreCorruptError(f"{store_dir}: cannot be loaded safely: {exc}") from exc
        self.steps: TensorDict = store["steps"]
        self.episodes: TensorDict = store["episodes"]
        self.level_table: TensorDict | None = store.get("levels", None)
        rows = self.manifest["episodes"]
        if len(rows) != self.episodes.batch_size[0]:
            raise ValueError(f"{self.path}: manifest lists {len(rows)} episodes, store holds "
                             f"{self.episodes.batch_size[0]}")
        self.episode_split = torch.tensor([SPLITS.index(r["split"]) for r in rows],
                                          dtype=torch.int8)
        self.store_keys = list(self.steps.keys(include_nested=True, leaves_only=True))
        self._np = {k: self.steps.get(k).numpy() for k in self.store_keys}
        self._n_ent = (self.level_table["n_entities"].clone()
                       if self.level_table is not None else None)
        #: what training batches carry (the label renamed :data:`EXPERT_KEY` on the way out)
        self.keys = [k for k in registered_keys() if k in self.store_keys] + ["action"]
        self.rows = {s: self.select(s, min_agreement=min_agreement,
                                    skip_idle_start=skip_idle_start) for s in ("train", "val")}
        if self.rows["train"].numel() == 0:
            raise ValueError(f"{self.path}: no training steps (every level in validation?)")
        self._samplers: dict[tuple[bool, int], StepSampler] = {}
        #: ``sample_weight`` of steps whose label changes (1: batches carry no weights)
        self.change_weight = float(change_weight)
        self._step_weight = None if self.change_weight == 1.0 else np.where(
            self.label_changes().numpy(), np.float32(self.change_weight), np.float32(1.0))
        #: per episode, 1 for a recorded (human) demo: what ``demo_style`` carries in batches
        self.human_demo: np.ndarray | None = None
        #: the share of training batches drawn from human demos (0: by step count)
        self.human_share = 0.0
        super().__init__(storage=StepStorage(self, keys=self.keys),
                         sampler=self._sampler_for(False, 0), collate_fn=_identity)
        totals = self.manifest["totals"]
        self.summary: dict[str, Any] = {
            "train_steps": self.n_steps("train"), "val_steps": self.n_steps("val"),
            "levels": totals["levels"], "episodes": totals["episodes"],
            "skipped": {Path(s["file"]).name: s["reason"] for s in self.manifest["skipped"]},
        }

    # -- sizes and tables ----------------------------------------------------------------------
    def n_steps(self, split: str | None = None) -> int:
        """Steps of ``split`` that pass the filters; every stored step when None."""
        return int(self.steps.batch_size[0]) if split is None else int(self.rows[split].numel())

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

    def _level_graph(self, i: int) -> dict[str, Any]:
        lv = self.level_table
        n0, n1 = int(lv["node_ptr"][i]), int(lv["node_ptr"][i + 1])
        e0, e1 = int(lv["edge_ptr"][i]), int(lv["edge_ptr"][i + 1])
        out: dict[str, Any] = {k: lv[k][n0:n1] for k in ("node_type", "node_kind", "node_pos")}
        out["edge_index"] = lv["edge_index"][:, e0:e1]
        out["edge_type"] = lv["edge_type"][e0:e1]
        out["n_entities"] = int(lv["n_entities"][i])
        out["cell_to_node"] = lv["cell_to_node"][i]
        return out

    @cached_property
    def level_graphs(self) -> list[dict[str, Any]] | None:
        """Every level's static graph in ``graph_level`` order (the mappings
        ``models.LevelGraph.from_static`` reads); None without the graph modality."""
        if self.level_table is None:
            return None
        return [self._level_graph(i) for i in range(int(self.level_table["n_entities"].shape[0]))]

    @cached_property
    def levels(self) -> list[LevelInfo]:
        """The distinct un-mirrored levels of the train and val splits, each with its shortest
        winning demo."""
        best: dict[str, LevelInfo] = {}
        for ep in self.manifest["episodes"]:
            if ep["mirrored"] or not ep["success"] or ep["split"] not in ("train", "val"):
                continue
            old = best.get(ep["level_hash"])
            if old is None or ep["ticks"] < old.demo_ticks:
                best[ep["level_hash"]] = LevelInfo(ep["id"], ep["level_hash"], ep["split"],
                                                   int(ep["ticks"]), row_path(ep))
        return sorted(best.values(), key=lambda lv: lv.name)

    def has_levels(self, split: str) -> bool:
        """Whether ``split`` holds a level with a winning demo (without reading any map)."""
        return any(lv.split == split for lv in self.levels)

    def eval_levels(self, split: str, exclude: Sequence[Path] = ()) -> list[Level]:
        """The winnable levels of ``split`` as the one level record closed-loop evaluation and
        DAgger play (map data read now, the shortest demo giving the episode cap); without
        those whose demo lies under a folder in ``exclude`` (generated levels, say)."""
        skip = [p.resolve() for p in exclude]
        return [Level(lv.name, lv.map_data, lv.demo_ticks) for lv in self.levels
                if lv.split == split
                and not any(lv.file.resolve().is_relative_to(p) for p in skip)]

    def action_counts(self, split: str = "train") -> torch.Tensor:
        labels = self.steps["action"][self.rows[split]]
        return torch.bincount(labels.long(), minlength=N_ACTIONS).double()

    def mark_planner_demos(self, folders: Sequence[Path]) -> int:
        """Set each episode's ``demo_style``: 0 when its file lies under one of ``folders``
        (the generated corpora, whose demos the planner made), 1 for a recorded replay.
        Returns how many episodes are human ones. Batches carry ``demo_style`` only after
        this: the dataset cannot tell a corpus from a replay folder itself."""
        roots = [Path(p).resolve() for p in folders]
        flags = [not any(row_path(ep).resolve().is_relative_to(r) for r in roots)
                 for ep in self.manifest["episodes"]]
        self.human_demo = np.asarray(flags, dtype=np.float32)
        return int(self.human_demo.sum())

    def share_human_demos(self, share: float) -> tuple[int, int]:
        """Draw ``share`` of each training batch from the human demos' steps and the rest
        from the planner's (``mark_planner_demos`` first; 0: every step alike, the default).
        Returns the training steps of each kind, (human, planner); a share of a kind with no
        steps is refused."""
        if self.human_demo is None:
            raise ValueError(f"{self.path}: share_human_demos needs mark_planner_demos first")
        human = self._human_train_rows()
        counts = (int(human.sum()), int((~human).sum()))
        if share > 0 and 0 in counts:
            raise ValueError(f"{self.path}: data.human_share {share} needs both human and "
                             f"planner demos among the training steps; they hold {counts[0]} "
                             f"human and {counts[1]} planner steps")
        self.human_share = float(share)
        self._samplers.clear()
        return counts

    def _human_train_rows(self) -> np.ndarray:
        """Per training row (``rows["train"]`` order), whether it comes from a human demo."""
        return self.human_demo[np.take(self._np["episode"], self.rows["train"].numpy())] > 0

    # -- selection (run once, at open) ---------------------------------------------------------
    def select(self, split: str | None = "train", *, min_agreement: int = 0,
               skip_idle_start: bool = False) -> torch.Tensor:
        """Store rows of ``split`` (all when None) that pass the filters (int64, ascending).

        ``skip_idle_start`` drops each episode's leading NOOP steps: humans wait a moment after
        spawning, and a policy cloned on that wait sees an unchanging observation, keeps
        waiting, and never starts.
        """
        keep = torch.ones(self.n_episodes, dtype=torch.bool)
        if split is not None:
            keep &= self.episode_split == SPLITS.index(split)
        rows = keep[self.steps["episode"]]
        if min_agreement > 0:
            rows &= self.steps["label_agreement"] >= min_agreement
        if skip_idle_start:
            rows &= ~self.idle_start_mask()
        return torch.nonzero(rows).flatten()

    def label_changes(self) -> torch.Tensor:
        """True on both sides of every label change within an episode: the first step of the
        new action and the last of the old one. These are the decisions (a jump pressed or let
        go, a turn) among long runs of one held input; weighting both sides alike sharpens
        when to act without pulling the decision earlier or later."""
        action, episode = self.steps["action"], self.steps["episode"]
        edge = (action[1:] != action[:-1]) & (episode[1:] == episode[:-1])
        changed = torch.zeros(action.shape[0], dtype=torch.bool)
        changed[1:] |= edge
        changed[:-1] |= edge
        return changed

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
    def gather(self, index: torch.Tensor, *, keys: Sequence[Any] | None = None) -> TensorDict:
        """The batch for store rows ``index`` [B] (see :mod:`.sampling` for the keys).

        ``np.take`` on the memmaps: torch's advanced indexing is ~20x slower here when it
        competes for threads with training.
        """
        idx = index.reshape(-1).numpy()
        out = TensorDict({}, [idx.shape[0]])
        for key in keys if keys is not None else self.store_keys:
            out.set(key, torch.from_numpy(np.take(self._np[key], idx, axis=0)))
        out.set("index", torch.from_numpy(idx.copy()))
        level = torch.from_numpy(np.take(self._np["level"], idx))
        if self._step_weight is not None:
            out.set("sample_weight", torch.from_numpy(np.take(self._step_weight, idx)))
        if "demo_style" in out.keys():
            if self.human_demo is None:
                raise ValueError(f"{self.path}: batches carry demo_style, and no call to "
                                 f"mark_planner_demos said which demos are human ones")
            episode = np.take(self._np["episode"], idx)
            out.set("demo_style", torch.from_numpy(self.human_demo[episode][:, None]))
        if "graph_entity_state" in out.keys() and self._n_ent is not None:
            m = max(1, int(self._n_ent[level].max())) if idx.shape[0] else 1
            out.set("graph_entity_state", out.get("graph_entity_state")[:, :m].contiguous())
        if "graph_ninja_node" in out.keys():
            out.set("graph_ninja_node", out.get("graph_ninja_node").long())
            out.set("graph_level", level[:, None])
        return out

    def _sampler_for(self, balanced: bool, levels_per_batch: int) -> StepSampler:
        """The training sampler of this kind, built once (weights and level tables included)."""
        kind = (bool(balanced), int(levels_per_batch))
        if kind not in self._samplers:
            rows = self.rows["train"]
            weights = action_balance_weights(self.steps["action"][rows]) if balanced else None
            if self.human_share > 0:  # (share_human_demos checked both kinds have steps)
                human = torch.from_numpy(self._human_train_rows())
                base = torch.ones(len(rows), dtype=torch.float64) if weights is None \
                    else weights.double()
                mass = torch.where(human, base, 0.0).sum(), torch.where(human, 0.0, base).sum()
                weights = base * torch.where(human, self.human_share / mass[0],
                                             (1 - self.human_share) / mass[1])
            if levels_per_batch > 0:
                levels = torch.from_numpy(np.take(self._np["level"], rows.numpy())).long()
                self._samplers[kind] = LevelGroupedSampler(rows, levels, levels_per_batch,
                                                           weights)
            else:
                self._samplers[kind] = StepSampler(rows, weights)
        return self._samplers[kind]

    def _finish(self, td: TensorDict) -> TensorDict:
        td.rename_key_("action", EXPERT_KEY)
        return td.exclude("index")

    def steps_per_epoch(self, batch_size: int, world: int = 1, cap: int = 0) -> int:
        n = math.ceil(self.n_steps("train") / (batch_size * world))
        return max(1, min(n, cap) if cap else n)

    def train_batches(self, epoch: int, batch_size: int, seed: int, *, balanced: bool = False,
                      levels_per_batch: int = 0, rank: int = 0, world: int = 1,
                      cap: int = 0) -> Iterator[TensorDict]:
        """One epoch of training batches, ``steps_per_epoch`` of them per rank so all ranks
        step together, drawn with a generator seeded by (seed, epoch, rank).
        ``levels_per_batch`` > 0 draws each batch (each rank's, under DDP) from at most that
        many levels, so graph encoders see few distinct level graphs per step."""
        sampler = self._sampler_for(balanced, levels_per_batch)
        key = hashlib.sha256(f"{seed}:{epoch}:{rank}".encode()).digest()[:7]
        generator = torch.Generator().manual_seed(int.from_bytes(key, "little"))
        for _ in range(self.steps_per_epoch(batch_size, world, cap)):
            sampler.generator = generator  # per draw: interleaved epochs keep their streams
            self.set_sampler(sampler)
            yield self._finish(self.sample(batch_size))

    def val_batches(self, batch_size: int) -> Iterator[TensorDict]:
        """Every validation step once, in store order."""
        rows = self.rows["val"]
        for a in range(0, rows.numel(), batch_size):
            yield self._finish(self.gather(rows[a:a + batch_size], keys=self.keys))

    def sample_batch(self, n: int = 64) -> TensorDict:
        """The first ``n`` validation steps (training steps without a validation split)."""
        rows = self.rows["val"] if self.rows["val"].numel() else self.rows["train"]
        return self._finish(self.gather(rows[:n], keys=self.keys))


def _identity(x: Any) -> Any:
    return x
