"""The BC training loop: NLL of the expert action, validation, closed-loop evaluation, checkpoints.

Reproducibility is by construction: batches of epoch ``e`` come from a generator seeded by
(seed, e), sampled rollouts likewise, and the checkpoint holds model, optimiser, scheduler and
global RNG state at the end of an epoch, so a resumed run replays the uninterrupted one exactly.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from torchrl_bc.data import EXPERT_KEY, BCDataset, open_dataset
from torchrl_bc.levels.corpus import default_replay_dirs
from torchrl_bc.progress import progress_bar
from torchrl_bc.train import distributed as D
from torchrl_bc.train.checkpoint import (
    FORMAT,
    check_compatible,
    get_rng_state,
    load_checkpoint,
    save_checkpoint,
    set_rng_state,
    versions,
)
from torchrl_bc.train.config import RunConfig, metric_direction
from torchrl_bc.train.evaluate import EvalLevel, rollout_levels, summarise
from torchrl_bc.train.logging import RunLogger, console_line
from torchrl_bc.train.metrics import (
    ValAccumulator,
    bc_loss,
    class_weights,
    frequency_baseline_nll,
)
from torchrl_bc.train.model import as_level_graphs, build_policy

__all__ = ["RunExists", "TrainResult", "check_out_dir", "configure_threads", "lr_lambda",
           "prepare_data", "selection_metric", "train"]


@dataclass
class TrainResult:
    out_dir: Path
    best: Path
    last: Path
    history: list[dict[str, float]] = field(default_factory=list)
    best_metric: float | None = None
    stopped_early: bool = False
    seconds: float = 0.0
    metric: str = ""  # what best.pt was selected on (see selection_metric)


def configure_threads(threads: int, world: int = 1) -> int:
    """Use the cores without oversubscribing them (each DDP rank gets its share).

    ``OMP_WAIT_POLICY=PASSIVE`` (set by the script before torch loads) stops idle OpenMP
    workers from spinning, which stalled training on busy shared CPUs.
    """
    n = threads or max(1, (os.cpu_count() or 1) // max(world, 1))
    torch.set_num_threads(n)
    return n


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def lr_lambda(warmup: int, total: int, min_ratio: float):
    """Linear warm-up over ``warmup`` steps, then cosine from 1 to ``min_ratio`` at ``total``."""
    def f(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return f


def prepare_data(cfg: RunConfig, out_dir: Path, info: D.DistInfo | None = None,
                 verbose: bool = True) -> BCDataset:
    """Rank 0 builds (or updates) the dataset; the other ranks open it after a barrier.

    Every entry of ``data.replays`` must exist and hold replays, or be the one prepared dataset
    folder (a typo is an error, never a silent switch to other data); only an empty
    ``data.replays`` means the shipped corpus.
    """
    dirs = list(cfg.data.replays) or [str(p) for p in default_replay_dirs()]
    root = Path(cfg.data.cache_dir) if cfg.data.cache_dir else out_dir.parent / ".bc_data"
    main = info is None or info.main
    if main:
        data = open_dataset(dirs, cfg.observation, cfg.data, root=root, verbose=verbose)
    if info is not None:
        D.barrier(info)
    if not main:
        data = open_dataset(dirs, cfg.observation, cfg.data, root=root, build=False,
                            verbose=False)
    return data


def selection_metric(cfg: RunConfig, data: BCDataset) -> tuple[str, str | None]:
    """The metric ``best.pt`` is chosen on and, when it differs from the configured one, why.

    A ``val/`` metric needs validation data: without validation levels (``val_fraction`` 0, or
    too few levels to hold any out) it is never logged, and ``best.pt`` would stay the first
    epoch. Then the same measure on the training levels is used instead, and said so.
    """
    metric = cfg.train.early_stop.metric
    if not metric.startswith("val/"):
        return metric, None
    closed_loop = "closed_loop" in metric
    has_val = bool(data.eval_levels("val")) if closed_loop else data.n_steps("val") > 0
    if has_val:
        return metric, None
    if closed_loop and cfg.eval.train_levels > 0 and data.eval_levels("train"):
        chosen = "train/" + metric.split("/", 1)[1]
    elif metric.split("/", 1)[1] in ("nll", "accuracy", "entropy"):
        chosen = "train/" + metric.split("/", 1)[1]
    else:
        chosen = "train/nll"
    return chosen, (f"no validation levels, so {metric} is never measured: best.pt is selected "
                    f"on {chosen} (training levels) instead")


def _spread(levels: list[EvalLevel], n: int) -> list[EvalLevel]:
    """``n`` levels evenly spread over the list (deterministic), all when n is 0 or larger."""
    if n <= 0 or n >= len(levels):
        return levels
    idx = np.linspace(0, len(levels) - 1, n).round().astype(int)
    return [levels[i] for i in idx]


class _Trainer:
    def __init__(self, cfg: RunConfig, out: Path, info: D.DistInfo, resume: bool,
                 data: BCDataset | None, verbose: bool, stop_after: int | None = None,
                 progress: bool = True) -> None:
        self.cfg, self.out, self.info, self.verbose = cfg, out, info, verbose and info.main
        self.resume = resume
        self.progress = progress and self.verbose
        self.metric = cfg.train.early_stop.metric
        self.data = data
        self.stop_after = stop_after

    def log(self, msg: str) -> None:
        if self.verbose:
            print(msg, file=sys.stderr, flush=True)

    # -- setup ---------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        cfg, info, tc = self.cfg, self.info, self.cfg.train
        t_start = time.perf_counter()
        configure_threads(tc.threads, info.world)
        seed_everything(tc.seed)
        if info.main:
            self.out.mkdir(parents=True, exist_ok=True)
        data = self.data or prepare_data(cfg, self.out, info, self.verbose)
        self.data = data
        self.metric, note = selection_metric(cfg, data)
        if note and info.main:  # said even when not verbose: it changes what best.pt means
            print(f"warning: {note}", file=sys.stderr, flush=True)
        actor, net = build_policy(cfg.architecture, cfg.observation)
        self.train_graphs = as_level_graphs(data.level_graphs) \
            if cfg.architecture.uses("graph") else []
        if self.train_graphs:
            net.extractor.set_level_graphs(self.train_graphs)
        actor.to(info.device)
        self.actor, self.net = actor, net
        opt = torch.optim.AdamW(actor.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        steps = data.steps_per_epoch(tc.batch_size, info.world, tc.max_steps_per_epoch)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lr_lambda(tc.warmup, tc.epochs * steps, tc.min_lr_ratio))
        self.weights = class_weights(data.action_counts()) if tc.class_weights else None
        self.baseline = frequency_baseline_nll(data.action_counts("train"),
                                               data.action_counts("val"))
        start, history, best, bad = 0, [], None, 0
        last_path, best_path = self.out / "last.pt", self.out / "best.pt"
        if self.resume and last_path.is_file():
            ckpt = load_checkpoint(last_path, map_location=info.device)
            check_compatible(ckpt, cfg, data.manifest_hash, resume=True)
            actor.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
            set_rng_state(ckpt["rng"])
            start, history = int(ckpt["epoch"]), list(ckpt["history"])
            best = tuple(ckpt["best_score"]) if ckpt["best_score"] is not None else None
            bad = int(ckpt["bad_evals"])
            self.log(f"resuming from {last_path} after epoch {start}")
        elif self.resume:
            self.log(f"--resume: no {last_path} yet; starting from scratch")
        model = net
        if info.enabled:
            model = DistributedDataParallel(
                net, device_ids=[info.device.index] if info.device.type == "cuda" else None)
        logger = RunLogger(self.out, cfg.logging.wandb, cfg.logging.project,
                           cfg.logging.run_name or self.out.name, cfg.to_dict(),
                           enabled=info.main, plots=cfg.logging.plots)
        self.log(f"train: {cfg.architecture.name} on {info.device} x{info.world}, "
                 f"{sum(p.numel() for p in actor.parameters()):,} params, "
                 f"{data.summary['train_steps']} train / {data.summary['val_steps']} val steps, "
                 f"{steps} batches/epoch; baseline val NLL {self.baseline:.3f}")
        stopped = False
        try:
            for epoch in range(start, tc.epochs):
                t0 = time.perf_counter()
                m: dict[str, Any] = {"epoch": epoch + 1}
                m.update(self.train_epoch(model, opt, sched, epoch))
                is_last = epoch + 1 == tc.epochs
                improved = False
                if info.main:
                    cm = self.validate(m)
                    if (epoch + 1) % tc.eval_every == 0 or is_last:
                        frames = self.closed_loop(m, epoch)
                        gif_every = cfg.eval.gif_every
                        if frames and gif_every and (epoch + 1) % gif_every == 0:
                            logger.gif(frames, epoch + 1)
                        score = self.score(m)
                        if score is not None:
                            improved = best is None or score > best
                            if improved:
                                best = score
                                bad = 0
                            else:
                                bad += 1
                    m["time/epoch_s"] = time.perf_counter() - t0
                    history.append({k: float(v) for k, v in m.items()})
                    payload = self.payload(opt, sched, epoch + 1, history, best, bad)
                    save_checkpoint(last_path, payload)
                    if improved or not best_path.exists():
                        save_checkpoint(best_path, payload)
                    logger.scalars(m, epoch + 1)
                    logger.confusion(cm.numpy(), epoch + 1)
                    logger.plot(history, cm.numpy())
                    self.log(console_line(m, tc.epochs, m["time/epoch_s"]))
                patience = tc.early_stop.patience
                stop = D.broadcast_flag(info, bool(patience and bad >= patience))
                D.barrier(info)
                if stop and not is_last:
                    self.log(f"early stop: {self.metric} did not improve for "
                             f"{patience} evaluations")
                    stopped = True
                    break
                if self.stop_after is not None and epoch + 1 - start >= self.stop_after:
                    break
        finally:
            logger.close()
        if info.main and best is not None:
            ep = next((h["epoch"] for h in history if self.score(h) == best), None)
            self.log(f"best.pt: epoch {int(ep) if ep else '?'} of {len(history)}, "
                     f"{self.metric} = {self._sign() * best[0]:.4f}")
        elif info.main and history:  # e.g. a length ratio with no win to measure it on
            print(f"warning: {self.metric} was never measured, so best.pt is simply the first "
                  f"epoch; use last.pt or select on another train.early_stop.metric",
                  file=sys.stderr, flush=True)
        return TrainResult(self.out, best_path, last_path, history,
                           None if best is None else self._sign() * best[0], stopped,
                           time.perf_counter() - t_start, self.metric)

    # -- pieces --------------------------------------------------------------------------------
    def train_epoch(self, model: torch.nn.Module, opt: torch.optim.Optimizer,
                    sched: torch.optim.lr_scheduler.LRScheduler, epoch: int) -> dict[str, float]:
        tc, info, data = self.cfg.train, self.info, self.data
        device = info.device
        amp = torch.autocast("cuda", dtype=torch.bfloat16) \
            if tc.amp and device.type == "cuda" else nullcontext()
        self.net.train()
        sums: dict[str, float] = {}
        n = 0
        batches = data.train_batches(epoch, tc.batch_size, tc.seed,
                                     balanced=self.cfg.data.balance_actions,
                                     levels_per_batch=self.cfg.data.levels_per_batch,
                                     rank=info.rank, world=info.world,
                                     cap=tc.max_steps_per_epoch)
        bar = progress_bar(batches, total=data.steps_per_epoch(tc.batch_size, info.world,
                                                               tc.max_steps_per_epoch),
                           desc=f"epoch {epoch + 1}/{tc.epochs}", unit="batch",
                           enabled=self.progress)
        for batch in bar:
            batch = batch.to(device, non_blocking=True)
            obs = {k: batch[k] for k in self.net.in_keys}
            with amp:
                logits = model(obs)
            loss, parts = bc_loss(logits, batch.get("action_mask", None), batch[EXPERT_KEY],
                                  entropy_coef=tc.entropy_coef,
                                  label_smoothing=tc.label_smoothing, weights=self.weights)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if tc.grad_clip > 0:
                parts["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.net.parameters(),
                                                                    tc.grad_clip).detach()
            opt.step()
            sched.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            n += 1
            if n % 10 == 0:
                bar.set_postfix(loss=f"{sums['loss'] / n:.3f}", refresh=False)
        bar.close()
        out = {f"train/{k}": v / max(n, 1) for k, v in sums.items()}
        out["train/lr"] = opt.param_groups[0]["lr"]
        return out

    @torch.no_grad()
    def validate(self, m: dict[str, Any]) -> torch.Tensor:
        acc = ValAccumulator(self.cfg.architecture.n_actions)
        self.net.eval()
        size = max(256, self.cfg.train.batch_size)
        for batch in progress_bar(self.data.val_batches(size), desc="validation", unit="batch",
                                  total=-(-self.data.n_steps("val") // size),
                                  enabled=self.progress):
            batch = batch.to(self.info.device)
            logits = self.net({k: batch[k] for k in self.net.in_keys})
            acc.add(logits, batch.get("action_mask", None), batch[EXPERT_KEY])
        self.net.train()
        m.update(acc.result("val/"))
        m["val/baseline_nll"] = self.baseline
        return acc.confusion

    def closed_loop(self, m: dict[str, Any], epoch: int) -> list[np.ndarray]:
        ec, data = self.cfg.eval, self.data
        t0 = time.perf_counter()
        sets = {
            "val": _spread([EvalLevel(lv.name, lv.map_data, lv.demo_ticks)
                            for lv in data.eval_levels("val")], ec.val_levels),
            "train": _spread([EvalLevel(lv.name, lv.map_data, lv.demo_ticks)
                              for lv in data.eval_levels("train")], ec.train_levels)
            if ec.train_levels else [],
        }
        gif_split = "val" if sets["val"] else "train"
        frames: list[np.ndarray] = []
        for split, levels in sets.items():
            if not levels:
                continue
            modes = [("", True)] * ec.greedy + [("sampled_", False)] * ec.sampled
            for tag, greedy in modes:
                g = torch.Generator().manual_seed(self.cfg.train.seed * 7919 + epoch)
                record = 0 if (greedy and split == gif_split and ec.gif_every
                               and (epoch + 1) % ec.gif_every == 0) else None
                res, fr = rollout_levels(self.net, levels, self.cfg.observation, greedy=greedy,
                                         generator=g, tick_factor=ec.tick_factor,
                                         max_ticks=ec.max_ticks,
                                         restore_graphs=self.train_graphs, record=record)
                frames.extend(fr)
                m.update(summarise(res, f"{split}/closed_loop_{tag}"))
        m["time/closed_loop_s"] = time.perf_counter() - t0
        return frames

    def _sign(self) -> float:
        return 1.0 if metric_direction(self.metric, self.cfg.train.early_stop.mode) == "max" \
            else -1.0

    def score(self, m: dict[str, Any]) -> tuple[float, float] | None:
        """Ordering key for "best": the selection metric, ties broken by lower val NLL."""
        if self.metric not in m or not math.isfinite(float(m[self.metric])):
            return None
        tie = -float(m.get("val/nll", m.get("train/nll", 0.0)))
        return (self._sign() * float(m[self.metric]), tie)

    def payload(self, opt: torch.optim.Optimizer, sched: Any, epoch: int,
                history: list[dict[str, float]], best: tuple | None, bad: int) -> dict[str, Any]:
        from torchrl_bc.models import ObsSpec

        cfg = self.cfg
        return {
            "format": FORMAT,
            "model": {k: v.detach().cpu() for k, v in self.actor.state_dict().items()},
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "rng": get_rng_state(),
            "epoch": epoch,
            "config": cfg.to_dict(),
            "obs_signature": cfg.observation.signature(),
            "obs_spec": ObsSpec.from_observation_config(cfg.observation).to_dict(),
            "frame_skip": cfg.observation.frame_skip,
            "manifest_hash": self.data.manifest_hash,
            "versions": versions(),
            "history": history,
            "best_score": None if best is None else list(best),
            "bad_evals": bad,
            "metric": self.metric,
        }


class RunExists(FileExistsError):
    """The output folder already holds a run and neither resume nor overwrite was asked for."""


def check_out_dir(out_dir: str | Path, *, resume: bool = False, overwrite: bool = False) -> None:
    """Refuse to train into a folder that holds another run's checkpoints (or is a file).

    Training from scratch there would replace a possibly better ``best.pt`` in silence, so it
    needs ``resume`` (continue from ``last.pt``) or ``overwrite`` (start again, replacing it).
    On resume, ``last.pt`` must be a readable BC checkpoint (:class:`CheckpointMismatch`).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RunExists(f"--out {out} is a file, not a directory")
    if resume and (out / "last.pt").exists():
        load_checkpoint(out / "last.pt")  # damaged or foreign: one line now, not after data prep
        return  # --resume without last.pt starts afresh (preemptible jobs always pass it)
    found = [n for n in ("best.pt", "last.pt") if (out / n).exists()]
    if found and not overwrite:
        raise RunExists(f"{out} already holds a run ({', '.join(found)}): pass --resume to "
                        f"continue it or --overwrite to replace it")


def train(cfg: RunConfig, out_dir: str | Path, *, device: str = "auto", resume: bool = False,
          data: BCDataset | None = None, verbose: bool = True,
          stop_after_epochs: int | None = None, overwrite: bool = False,
          progress: bool = True) -> TrainResult:
    """Train (or ``resume``) BC for ``cfg``, writing ``best.pt``/``last.pt`` under ``out_dir``.

    ``stop_after_epochs`` ends this call early as if the job were killed there (time-sliced or
    preemptible jobs, resume tests); the schedule still spans ``train.epochs``. Under
    ``torchrun`` every rank calls this; only rank 0 writes. A folder that already holds a run
    needs ``resume`` or ``overwrite`` (:func:`check_out_dir`). ``progress`` draws a per-batch
    bar with rate and ETA on a terminal.
    """
    check_out_dir(out_dir, resume=resume, overwrite=overwrite)
    info = D.setup(device)
    try:
        return _Trainer(cfg, Path(out_dir), info, resume, data, verbose,
                        stop_after_epochs, progress).run()
    finally:
        D.cleanup(info)

