"""The pieces of a BC run, one ``make_*`` factory each (as TorchRL's sota-implementations do).

:func:`torchrl_bc.train.loop.train` (behind ``pretrain`` and ``scripts/train_bc.py``) builds a
run from these and nothing else: the dataset, the ``ProbabilisticActor``, its loss, the
optimiser and schedule, the logger, and the closed-loop level sets (each played in a TorchRL
``LevelsEnv`` by :func:`~torchrl_bc.train.evaluate.rollout_levels`).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch
from torchrl.modules import ProbabilisticActor

from torchrl_bc.data import BCDataset, open_dataset
from torchrl_bc.data.manifest import row_path
from torchrl_bc.models import LevelGraph, ObsSpec, actor_extractor, build_actor
from torchrl_bc.models.policy import as_level_graphs
from torchrl_bc.resources import default_replay_dirs
from torchrl_bc.sim.level import Level
from torchrl_bc.train import distributed as D
from torchrl_bc.train.config import RunConfig
from torchrl_bc.train.logging import RunLogger
from torchrl_bc.train.loss import MaskedBCLoss
from torchrl_bc.train.metrics import class_weights

__all__ = ["corpus_folders", "lr_lambda", "make_actor", "make_dataset", "make_eval_levels",
           "make_logger", "make_loss", "make_optimizer", "train_level_graphs"]


def make_dataset(cfg: RunConfig, out_dir: Path, info: D.DistInfo | None = None,
                 verbose: bool = True) -> BCDataset:
    """The run's :class:`~torchrl_bc.data.BCDataset` through the one door,
    :func:`~torchrl_bc.data.open_dataset`: rank 0 builds (or updates) it, the other ranks open
    it after a barrier.

    Every entry of ``data.replays`` must exist and hold replays, or be the one prepared dataset
    folder (a typo is an error, never a silent switch to other data); only an empty
    ``data.replays`` means the shipped corpus.
    """
    dirs = list(cfg.data.replays) or [str(p) for p in default_replay_dirs()]
    root = cfg.data.cache_root(out_dir)
    main = info is None or info.main
    if main:
        data = open_dataset(dirs, cfg.observation, cfg.data, root=root, verbose=verbose)
    if info is not None:
        D.barrier(info)
    if not main:
        data = open_dataset(dirs, cfg.observation, cfg.data, root=root, build=False,
                            verbose=False)
    if cfg.observation.has("demo_style") or cfg.data.human_share > 0:
        human = data.mark_planner_demos(corpus_folders(cfg, data))
        if verbose and main and cfg.observation.has("demo_style"):
            print(f"data: demo_style 1 on {human} recorded (human) episodes, 0 on the "
                  f"{data.n_episodes - human} planner-made ones", file=sys.stderr)
    if cfg.data.human_share > 0:
        n_human, n_planner = data.share_human_demos(cfg.data.human_share)
        if verbose and main:
            print(f"data: {cfg.data.human_share:g} of each batch from the {n_human:,} human "
                  f"demo steps ({n_human / (n_human + n_planner):.1%} of the training steps), "
                  f"the rest from the {n_planner:,} planner ones", file=sys.stderr)
    return data


def corpus_folders(cfg: RunConfig, data: BCDataset) -> list[Path]:
    """The generated corpora (``make-corpus`` folders: planner demos) among ``data.replays``
    and the folders the dataset's levels came from (a prepared dataset keeps its sources)."""
    from torchrl_bc.levels.corpus import is_corpus
    from torchrl_bc.resources import replay_source

    dirs = list(cfg.data.replays) or [str(p) for p in default_replay_dirs()]
    folders = {*map(replay_source, dirs), *(row_path(ep).parent
                                            for ep in data.manifest["episodes"])}
    return sorted(p for p in folders if is_corpus(p))


def make_actor(cfg: RunConfig, level_graphs: list[LevelGraph] | None = None,
               device: torch.device | str = "cpu") -> ProbabilisticActor:
    """The actor of ``cfg`` (observations -> masked categorical over the 6 actions), with the
    training levels' graphs (:func:`train_level_graphs`) attached for graph architectures."""
    actor = build_actor(cfg.architecture, ObsSpec.from_observation_config(cfg.observation))
    if level_graphs:
        actor_extractor(actor).set_level_graphs(level_graphs)
    return actor.to(device)


def train_level_graphs(cfg: RunConfig, data: BCDataset) -> list[LevelGraph]:
    """The dataset's level graphs (what ``graph_level`` indexes); none without the graph."""
    return as_level_graphs(data.level_graphs) if cfg.architecture.uses("graph") else []


def make_loss(cfg: RunConfig, actor: ProbabilisticActor, data: BCDataset) -> MaskedBCLoss:
    """Masked BC over ``actor`` with the configured entropy bonus, label smoothing and (from the
    dataset's action counts) class weights."""
    tc = cfg.train
    weights = class_weights(data.action_counts()) if tc.class_weights else None
    loss = MaskedBCLoss(actor, entropy_coef=tc.entropy_coef, label_smoothing=tc.label_smoothing,
                        class_weights=weights)
    return loss.to(next(actor.parameters()).device)


def lr_lambda(warmup: int, total: int, min_ratio: float):
    """Linear warm-up over ``warmup`` steps, then cosine from 1 to ``min_ratio`` at ``total``."""
    def f(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return f


def make_optimizer(cfg: RunConfig, actor: ProbabilisticActor, steps_per_epoch: int
                   ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over the actor, stepped by a warm-up + cosine schedule over the whole run."""
    tc = cfg.train
    opt = torch.optim.AdamW(actor.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lr_lambda(tc.warmup, tc.epochs * steps_per_epoch, tc.min_lr_ratio))
    return opt, sched


def make_logger(cfg: RunConfig, out_dir: Path, enabled: bool = True) -> RunLogger:
    """W&B through TorchRL's ``get_logger`` (offline by default), plots and console lines."""
    return RunLogger(out_dir, cfg.logging.wandb, cfg.logging.project,
                     cfg.logging.run_name or Path(out_dir).name, cfg.to_dict(),
                     enabled=enabled, plots=cfg.logging.plots)


def _spread(levels: list[Level], n: int) -> list[Level]:
    """``n`` levels evenly spread over the list (deterministic), all when n is 0 or larger."""
    if n <= 0 or n >= len(levels):
        return levels
    idx = np.linspace(0, len(levels) - 1, n).round().astype(int)
    return [levels[i] for i in idx]


def make_eval_levels(cfg: RunConfig, data: BCDataset) -> dict[str, list[Level]]:
    """The closed-loop level sets per split: ``eval.val_levels`` held-out levels and
    ``eval.train_levels`` training levels (0: none), evenly spread."""
    ec = cfg.eval

    return {"val": _spread(data.eval_levels("val"), ec.val_levels),
            "train": _spread(data.eval_levels("train"), ec.train_levels) if ec.train_levels
            else []}
