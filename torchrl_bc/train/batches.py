"""The training side's one door to the data stage: :func:`load_bc_data` -> :class:`BCData`.

``torchrl_bc.data`` builds the memory-mapped store, manifest and level split
(``build_dataset``) and samples it through a TorchRL ``ReplayBuffer``
(``BCDataset.replay_buffer``). This adapter adds what the loop needs on top: seeded, rank-aware
epochs (a buffer per (seed, epoch, rank), so DDP ranks draw different samples and a resumed run
draws what an uninterrupted one would), full passes for validation, the level graphs that
``graph_level`` indexes, and the distinct levels (map data, demo length) for closed-loop
evaluation. The expert label is renamed ``expert_action`` so it can never be confused with the
actor's own sampled ``action``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from tensordict import TensorDict

from torchrl_bc.obs import ObservationConfig, observation_keys
from torchrl_bc.resources import SAMPLE_CORPUS, replay_source

__all__ = ["EXPERT_KEY", "BCData", "LevelInfo", "check_replay_dirs", "dataset_dir",
           "default_replay_dirs", "load_bc_data", "replay_dir_problem"]

EXPERT_KEY = "expert_action"


@dataclass(frozen=True)
class LevelInfo:
    """One distinct, un-mirrored level with a winning demo, for closed-loop evaluation."""

    name: str
    level_hash: str
    split: str  # train | val
    demo_ticks: int  # shortest winning demo on this level
    file: str  # a replay file of it (its map data is read on demand)

    @property
    def map_data(self) -> bytes:
        from torchrl_bc.replay.format import read_replay

        return read_replay(self.file).map_data


class BCData:
    """A prepared dataset seen through the loop's needs."""

    def __init__(self, path: str | Path, obs: ObservationConfig, min_agreement: int = 0,
                 skip_idle_start: bool = False) -> None:
        from torchrl_bc.data import BCDataset

        self.ds = BCDataset(path)
        self.path = Path(path)
        self.keys = [k for k in observation_keys(obs) if k in self.ds.keys] + ["action"]
        self.min_agreement = min_agreement
        self.skip_idle_start = skip_idle_start
        self.rows = {s: self.ds.select(s, min_agreement=min_agreement,
                                       skip_idle_start=skip_idle_start)
                     for s in ("train", "val")}
        if self.rows["train"].numel() == 0:
            raise ValueError(f"{path}: no training steps (every level in validation?)")
        self.manifest_hash: str = self.ds.manifest_hash
        totals = self.ds.manifest["totals"]
        self.summary: dict[str, Any] = {
            "train_steps": int(self.rows["train"].numel()),
            "val_steps": int(self.rows["val"].numel()),
            "levels": totals["levels"], "episodes": totals["episodes"],
            "skipped": {Path(s["file"]).name: s["reason"] for s in self.ds.manifest["skipped"]},
        }

    n_actions = 6

    @cached_property
    def level_graphs(self) -> list[dict[str, Any]] | None:
        return self.ds.level_graphs() if self.ds.levels is not None else None

    @cached_property
    def levels(self) -> list[LevelInfo]:
        best: dict[str, LevelInfo] = {}
        for ep in self.ds.manifest["episodes"]:
            if ep["mirrored"] or not ep["success"] or ep["split"] not in ("train", "val"):
                continue
            old = best.get(ep["level_hash"])
            if old is None or ep["ticks"] < old.demo_ticks:
                best[ep["level_hash"]] = LevelInfo(ep["id"], ep["level_hash"], ep["split"],
                                                   int(ep["ticks"]), ep["file"])
        return sorted(best.values(), key=lambda lv: lv.name)

    def eval_levels(self, split: str) -> list[LevelInfo]:
        return [lv for lv in self.levels if lv.split == split]

    def n_steps(self, split: str) -> int:
        return int(self.rows[split].numel())

    def action_counts(self, split: str = "train") -> torch.Tensor:
        labels = self.ds.steps["action"][self.rows[split]]
        return torch.bincount(labels.long(), minlength=self.n_actions).double()

    def steps_per_epoch(self, batch_size: int, world: int = 1, cap: int = 0) -> int:
        n = math.ceil(self.n_steps("train") / (batch_size * world))
        return max(1, min(n, cap) if cap else n)

    def _finish(self, td: TensorDict) -> TensorDict:
        td.rename_key_("action", EXPERT_KEY)
        return td.exclude("index")

    def train_batches(self, epoch: int, batch_size: int, seed: int, *, balanced: bool = False,
                      levels_per_batch: int = 0, rank: int = 0, world: int = 1,
                      cap: int = 0) -> Iterator[TensorDict]:
        """One epoch of batches from the data stage's ReplayBuffer, seeded by (seed, epoch,
        rank); ``steps_per_epoch`` batches per rank, so all ranks step together.
        ``levels_per_batch`` > 0 draws each batch (each rank's, under DDP) from at most that
        many levels, so graph encoders see few distinct level graphs per step."""
        buf_seed = int.from_bytes(hashlib.sha256(f"{seed}:{epoch}:{rank}".encode())
                                  .digest()[:7], "little")
        rb = self.ds.replay_buffer("train", batch_size, balance_actions=balanced,
                                   keys=self.keys, min_agreement=self.min_agreement,
                                   skip_idle_start=self.skip_idle_start,
                                   levels_per_batch=levels_per_batch, seed=buf_seed)
        for _ in range(self.steps_per_epoch(batch_size, world, cap)):
            yield self._finish(rb.sample())

    def val_batches(self, batch_size: int) -> Iterator[TensorDict]:
        rows = self.rows["val"]
        for a in range(0, rows.numel(), batch_size):
            yield self._finish(self.ds.gather(rows[a:a + batch_size], keys=self.keys))

    def sample_batch(self, n: int = 64) -> TensorDict:
        """The first ``n`` validation steps (training steps without a validation split)."""
        rows = self.rows["val"] if self.rows["val"].numel() else self.rows["train"]
        return self._finish(self.ds.gather(rows[:n], keys=self.keys))


def default_replay_dirs() -> list[Path]:
    """The shipped sample corpus: the data when none is given at all (never a stand-in for a
    path that was given but is wrong)."""
    if SAMPLE_CORPUS.is_dir() and any(SAMPLE_CORPUS.glob("*.replay")):
        return [SAMPLE_CORPUS]
    raise FileNotFoundError(f"no replay data given and the shipped sample corpus "
                            f"({SAMPLE_CORPUS}) is missing; pass --data DIR")


def replay_dir_problem(path: str | Path) -> str | None:
    """Why ``path`` (a folder, a file or ``package:NAME``) cannot serve as replay data (missing,
    empty, not a replay), else None."""
    try:
        p = replay_source(path)
    except ValueError as exc:
        return str(exc)
    if not p.exists():
        where = "" if p.is_absolute() else f" (relative to {Path.cwd()})"
        return f"replay directory {str(path)!r} does not exist{where}"
    if p.is_file():
        return None if p.suffix == ".replay" else \
            f"{str(path)!r} is a file, not a directory of *.replay files"
    if not p.is_dir():
        return f"{str(path)!r} is not a directory"
    if next(p.rglob("*.replay"), None) is None:
        return f"replay directory {str(path)!r} holds no *.replay files"
    return None


def check_replay_dirs(paths: Sequence[str | Path]) -> list[Path]:
    """Every given replay directory, each checked; the first bad one is an error naming it."""
    for path in paths:
        problem = replay_dir_problem(path)
        if problem:
            raise FileNotFoundError(problem)
    return [replay_source(p) for p in paths]


def dataset_dir(root: Path, replay_dirs: Sequence[str | Path], obs: ObservationConfig,
                **data_kw: Any) -> Path:
    """One prepared dataset per (replay dirs, observation signature, split/mirror settings)."""
    key = json.dumps([sorted(str(Path(d).resolve()) for d in replay_dirs), obs.signature(),
                      data_kw], sort_keys=True)
    return root / f"ds-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def load_bc_data(replay_dirs: Sequence[str | Path], obs: ObservationConfig, *, root: str | Path,
                 val_fraction: float = 0.15, mirror: bool = False, split_seed: int = 0,
                 min_agreement: int = 0, skip_idle_start: bool = False, workers: int = 0,
                 build: bool = True, verbose: bool = True, trim_idle: bool = False) -> BCData:
    """Build (or bring up to date, which is fast when nothing changed) and open the dataset.

    Datasets live in ``root/ds-<hash>`` and share the episode cache ``root/episodes`` (keyed by
    replay bytes and observation signature), so runs over the same observations simulate once.
    ``build=False`` only opens it (DDP ranks other than 0).
    """
    root = Path(root)
    extra = {"trim_idle": True} if trim_idle else {}  # absent when off: older dirs still match
    path = dataset_dir(root, replay_dirs, obs, val_fraction=val_fraction, mirror=mirror,
                       split_seed=split_seed, **extra)
    if build:
        from torchrl_bc.data import build_dataset

        build_dataset(replay_dirs, obs, path, workers=workers or min(4, os.cpu_count() or 1),
                      mirror=mirror, val_fraction=val_fraction, split_seed=split_seed,
                      cache_dir=root / "episodes", progress=verbose, verbose=verbose,
                      trim_idle=trim_idle)
    return BCData(path, obs, min_agreement=min_agreement, skip_idle_start=skip_idle_start)
