"""The BC training recipe: factories, an ``update(td)`` step, validation, closed-loop
evaluation, a checkpoint and a log line each epoch.

:func:`train` reads top to bottom like TorchRL's sota-implementations (``iql_offline.py``): the
run is built from :mod:`torchrl_bc.train.factories` (dataset, ``ProbabilisticActor``, its
:class:`~torchrl_bc.train.loss.MaskedBCLoss`, optimiser, logger, closed-loop levels), each
phase is timed with ``torchrl._utils.timeit`` (``time/*`` in the history) and a bar over the
optimiser steps shows the rate. ``pretrain`` and ``scripts/train_bc.py`` both end up here: one
training path.

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
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tensordict import TensorDictBase
from torch.nn.parallel import DistributedDataParallel
from torchrl._utils import timeit

from torchrl_bc.data import EXPERT_KEY, BCDataset
from torchrl_bc.progress import progress_bar, progress_write
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
from torchrl_bc.train.evaluate import rollout_levels, summarise
from torchrl_bc.train.factories import (
    lr_lambda,
    make_actor,
    make_dataset,
    make_eval_levels,
    make_logger,
    make_loss,
    make_optimizer,
    train_level_graphs,
)
from torchrl_bc.train.logging import console_line
from torchrl_bc.train.metrics import ValAccumulator, frequency_baseline_nll

__all__ = ["RunExists", "TrainResult", "check_out_dir", "checkpoint_payload",
           "configure_threads", "lr_lambda", "make_update", "selection_metric", "train"]


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
    start_epoch: int = 0  # epochs ``last.pt`` held when this call began (a resume's start)


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
    has_val = data.has_levels("val") if closed_loop else data.n_steps("val") > 0
    if has_val:
        return metric, None
    if closed_loop and cfg.eval.train_levels > 0 and data.has_levels("train"):
        chosen = "train/" + metric.split("/", 1)[1]
    elif metric.split("/", 1)[1] in ("nll", "accuracy", "entropy"):
        chosen = "train/" + metric.split("/", 1)[1]
    else:
        chosen = "train/nll"
    return chosen, (f"no validation levels, so {metric} is never measured: best.pt is selected "
                    f"on {chosen} (training levels) instead")


#: The phases timed with ``timeit`` each epoch, logged as ``time/<phase>_s`` (seconds).
_PHASES = ("data", "update", "validate", "closed_loop")


def _log(verbose: bool, msg: str) -> None:
    if verbose:
        progress_write(msg)


def train(cfg: RunConfig, out_dir: str | Path, *, device: str = "auto", resume: bool = False,
          data: BCDataset | None = None, verbose: bool = True,
          stop_after_epochs: int | None = None, overwrite: bool = False,
          progress: bool = True) -> TrainResult:
    """Train (or ``resume``) BC for ``cfg``, writing ``best.pt``/``last.pt`` under ``out_dir``.

    ``stop_after_epochs`` ends this call early as if the job were killed there (time-sliced or
    preemptible jobs, resume tests); the schedule still spans ``train.epochs``. Under
    ``torchrun`` every rank calls this; only rank 0 validates, evaluates, logs and writes. A
    folder that already holds a run needs ``resume`` or ``overwrite`` (:func:`check_out_dir`).
    ``progress`` draws a bar over the optimiser steps with rate and ETA on a terminal, also
    when ``verbose`` is off (crossval trains its folds quietly, not silently).
    """
    check_out_dir(out_dir, resume=resume, overwrite=overwrite)
    info = D.setup(device)
    try:
        return _train(cfg, Path(out_dir), info, resume=resume, data=data,
                      verbose=verbose and info.main, stop_after=stop_after_epochs,
                      progress=progress and info.main)
    finally:
        D.cleanup(info)


def _train(cfg: RunConfig, out: Path, info: D.DistInfo, *, resume: bool, data: BCDataset | None,
           verbose: bool, stop_after: int | None, progress: bool) -> TrainResult:
    tc, ec = cfg.train, cfg.eval
    t_start = time.perf_counter()
    configure_threads(tc.threads, info.world)
    seed_everything(tc.seed)
    if info.main:
        out.mkdir(parents=True, exist_ok=True)

    # -- the run's pieces ------------------------------------------------------------------------
    data = data or make_dataset(cfg, out, info, verbose)
    metric, note = selection_metric(cfg, data)
    if note and info.main:  # said even when not verbose: it changes what best.pt means
        print(f"warning: {note}", file=sys.stderr, flush=True)
    train_graphs = train_level_graphs(cfg, data)
    actor = make_actor(cfg, train_graphs, info.device)
    loss_module = make_loss(cfg, actor, data)
    steps = data.steps_per_epoch(tc.batch_size, info.world, tc.max_steps_per_epoch)
    optim, sched = make_optimizer(cfg, actor, steps)
    eval_levels = make_eval_levels(cfg, data) if info.main else {}
    baseline = frequency_baseline_nll(data.action_counts("train"), data.action_counts("val"))
    sign = 1.0 if metric_direction(metric, tc.early_stop.mode) == "max" else -1.0

    def score(m: dict[str, Any]) -> tuple[float, float] | None:
        """Ordering key for "best": the selection metric, ties broken by lower val NLL."""
        if metric not in m or not math.isfinite(float(m[metric])):
            return None
        return (sign * float(m[metric]), -float(m.get("val/nll", m.get("train/nll", 0.0))))

    start, history, best, bad = 0, [], None, 0
    last_path, best_path = out / "last.pt", out / "best.pt"
    if resume and last_path.is_file():
        ckpt = load_checkpoint(last_path, map_location=info.device)
        check_compatible(ckpt, cfg, data.manifest_hash, resume=True)
        actor.load_state_dict(ckpt["model"])
        optim.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        set_rng_state(ckpt["rng"])
        start, history = int(ckpt["epoch"]), list(ckpt["history"])
        best = tuple(ckpt["best_score"]) if ckpt["best_score"] is not None else None
        bad = int(ckpt["bad_evals"])
        _log(verbose, f"resuming from {last_path} after epoch {start}")
    elif resume:
        _log(verbose, f"--resume: no {last_path} yet; starting from scratch")
    # DDP wraps the loss module: its parameters are the actor's, synced on backward.
    loss_fn = DistributedDataParallel(
        loss_module, device_ids=[info.device.index] if info.device.type == "cuda" else None) \
        if info.enabled else loss_module
    logger = make_logger(cfg, out, enabled=info.main)
    amp = tc.amp and info.device.type == "cuda"
    _log(verbose, f"train: {cfg.architecture.name} on {info.device} x{info.world}, "
         f"{sum(p.numel() for p in actor.parameters()):,} params, "
         f"{data.summary['train_steps']} train / {data.summary['val_steps']} val steps, "
         f"{steps} batches/epoch; baseline val NLL {baseline:.3f}")

    update = make_update(loss_fn, optim, sched, grad_clip=tc.grad_clip, amp=amp)

    @torch.no_grad()
    def validate(m: dict[str, Any]) -> torch.Tensor:
        """Open-loop metrics on the held-out steps, from the actor's own distribution."""
        acc = ValAccumulator(cfg.architecture.n_actions)
        actor.eval()
        size = max(256, tc.batch_size)
        for td in progress_bar(data.val_batches(size), desc="validation", unit="batch",
                               total=-(-data.n_steps("val") // size), enabled=progress):
            td = td.to(info.device)
            acc.add(actor.get_dist(td), td[EXPERT_KEY])
        actor.train()
        m.update(acc.result("val/"))
        m["val/baseline_nll"] = baseline
        return acc.confusion

    def closed_loop(m: dict[str, Any], epoch: int) -> list[np.ndarray]:
        """Success per split in the simulator, greedy and sampled; a GIF's frames if due."""
        gif_split = "val" if eval_levels["val"] else "train"
        gif_due = bool(ec.gif_every) and (epoch + 1) % ec.gif_every == 0
        frames: list[np.ndarray] = []
        for split, levels in eval_levels.items():
            if not levels:
                continue
            for tag, greedy in [("", True)] * ec.greedy + [("sampled_", False)] * ec.sampled:
                g = torch.Generator().manual_seed(tc.seed * 7919 + epoch)
                record = 0 if greedy and split == gif_split and gif_due else None
                res, fr = rollout_levels(actor, levels, cfg.observation, greedy=greedy,
                                         generator=g, tick_factor=ec.tick_factor,
                                         max_ticks=ec.max_ticks, restore_graphs=train_graphs,
                                         record=record)
                frames.extend(fr)
                m.update(summarise(res, f"{split}/closed_loop_{tag}"))
        return frames

    # -- epochs ----------------------------------------------------------------------------------
    stopped = False
    try:
        for epoch in range(start, tc.epochs):
            t0 = time.perf_counter()
            timeit.erase()
            m: dict[str, Any] = {"epoch": epoch + 1}
            actor.train()
            batches = data.train_batches(epoch, tc.batch_size, tc.seed,
                                         balanced=cfg.data.balance_actions,
                                         levels_per_batch=cfg.data.levels_per_batch,
                                         rank=info.rank, world=info.world,
                                         cap=tc.max_steps_per_epoch)
            bar = progress_bar(total=steps, desc=f"epoch {epoch + 1}/{tc.epochs}", unit="step",
                               enabled=progress)
            sums: dict[str, float] = {}
            n = 0
            while True:
                with timeit("data"):
                    td = next(batches, None)
                    if td is None:
                        break
                    td = td.to(info.device, non_blocking=True)
                with timeit("update"):
                    logs = update(td)
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                n += 1
                bar.update(1)
                if n % 10 == 0:
                    bar.set_postfix(loss=f"{sums['loss'] / n:.3f}", refresh=False)
            bar.close()
            m.update({f"train/{k}": v / max(n, 1) for k, v in sums.items()})
            m["train/lr"] = optim.param_groups[0]["lr"]
            is_last = epoch + 1 == tc.epochs
            improved = False
            if info.main:
                with timeit("validate"):
                    cm = validate(m)
                if (epoch + 1) % tc.eval_every == 0 or is_last:
                    with timeit("closed_loop"):
                        frames = closed_loop(m, epoch)
                    if frames:
                        logger.gif(frames, epoch + 1)
                    s = score(m)
                    if s is not None:
                        improved = best is None or s > best
                        best, bad = (s, 0) if improved else (best, bad + 1)
                m.update({f"time/{k}_s": v for k, v in timeit.todict(percall=False).items()
                          if k in _PHASES and v > 0})
                m["time/epoch_s"] = time.perf_counter() - t0
                history.append({k: float(v) for k, v in m.items()})
                payload = checkpoint_payload(cfg, data, actor, optim, sched, epoch + 1, history,
                                             best, bad, metric)
                save_checkpoint(last_path, payload)
                if improved or not best_path.exists():
                    save_checkpoint(best_path, payload)
                logger.scalars(m, epoch + 1)
                logger.confusion(cm.numpy(), epoch + 1)
                logger.plot(history, cm.numpy())
                _log(verbose, console_line(m, tc.epochs, m["time/epoch_s"]))
            patience = tc.early_stop.patience
            stop = D.broadcast_flag(info, bool(patience and bad >= patience))
            D.barrier(info)
            if stop and not is_last:
                _log(verbose, f"early stop: {metric} did not improve for {patience} evaluations")
                stopped = True
                break
            if stop_after is not None and epoch + 1 - start >= stop_after:
                break
    finally:
        logger.close()
    if info.main and best is not None:
        ep = next((h["epoch"] for h in history if score(h) == best), None)
        _log(verbose, f"best.pt: epoch {int(ep) if ep else '?'} of {len(history)}, "
             f"{metric} = {sign * best[0]:.4f}")
    elif info.main and history:  # e.g. a length ratio with no win to measure it on
        print(f"warning: {metric} was never measured, so best.pt is simply the first "
              f"epoch; use last.pt or select on another train.early_stop.metric",
              file=sys.stderr, flush=True)
    return TrainResult(out, best_path, last_path, history,
                       None if best is None else sign * best[0], stopped,
                       time.perf_counter() - t_start, metric, start)


def make_update(loss_fn: torch.nn.Module, optim: torch.optim.Optimizer,
                sched: torch.optim.lr_scheduler.LRScheduler, *, grad_clip: float = 0.0,
                amp: bool = False) -> Callable[[TensorDictBase], dict[str, torch.Tensor]]:
    """``update(td)``: one optimiser step on a batch, returning the detached logs.

    ``loss_fn`` is the :class:`~torchrl_bc.train.loss.MaskedBCLoss` (or DDP around it); the
    training loss is the sum of its ``loss_*`` terms. ``amp``: bfloat16 autocast on CUDA.
    """
    params = [p for group in optim.param_groups for p in group["params"]]

    def update(td: TensorDictBase) -> dict[str, torch.Tensor]:
        with torch.autocast("cuda", dtype=torch.bfloat16) if amp else nullcontext():
            out = loss_fn(td)
        loss = sum(v for k, v in out.items() if k.startswith("loss_"))
        optim.zero_grad(set_to_none=True)
        loss.backward()
        logs = {"loss": loss.detach(), "nll": out["nll"], "entropy": out["entropy"],
                "accuracy": out["accuracy"]}
        if grad_clip > 0:
            logs["grad_norm"] = torch.nn.utils.clip_grad_norm_(params, grad_clip).detach()
        optim.step()
        sched.step()
        return logs

    return update


def checkpoint_payload(cfg: RunConfig, data: BCDataset, actor: torch.nn.Module,
                       optim: torch.optim.Optimizer, sched: Any, epoch: int,
                       history: list[dict[str, float]], best: tuple | None, bad: int,
                       metric: str) -> dict[str, Any]:
    """What ``last.pt`` / ``best.pt`` hold: the actor's ``state_dict`` and all a resume needs."""
    from torchrl_bc.models import ObsSpec

    return {
        "format": FORMAT,
        "model": {k: v.detach().cpu() for k, v in actor.state_dict().items()},
        "optimizer": optim.state_dict(),
        "scheduler": sched.state_dict(),
        "rng": get_rng_state(),
        "epoch": epoch,
        "config": cfg.to_dict(),
        "obs_signature": cfg.observation.signature(),
        "obs_spec": ObsSpec.from_observation_config(cfg.observation).to_dict(),
        "frame_skip": cfg.observation.frame_skip,
        "manifest_hash": data.manifest_hash,
        # the levels held out for validation (content hashes): fine-tuning validates on them
        "val_levels": list(data.manifest["split"]["val_levels"]),
        "versions": versions(),
        "history": history,
        "best_score": None if best is None else list(best),
        "bad_evals": bad,
        "metric": metric,
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
