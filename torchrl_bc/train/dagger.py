"""DAgger with the planner as the expert: label the states the student visits, retrain.

BC only ever sees the expert's states, so a cloned policy that drifts off them meets states it
was never taught and its errors compound. Each round here rolls the current student out
greedily on training levels (never validation ones), and on every episode it fails, restores
the simulator at states it visited and asks the planner (:class:`~torchrl_bc.levels.Planner`,
``solve(start=snapshot)``) for a winning input sequence from there. The state gets the plan's
first action as its label, and the first ``horizon`` steps of the plan are labelled too: they
show how to recover from where the student went wrong. Labels are aggregated over rounds and
mixed with the demonstrations in every batch (human demos stay in); ``best.pt`` is replaced
whenever success on the held-out (validation) levels is at least the best so far (ties go to
the later round, which learnt from more labels). ``dagger.levels_from: replays`` keeps both
the rollouts and that selection to recorded replays, off generated corpora.

Oracle cost is reported as planner queries and labelled steps per round (``dagger.json``).

Each round ends by writing ``dagger_state.pt`` (weights, optimiser, RNGs, the aggregated labels):
a resumed run continues after the last finished round and ends bit-identical to an uninterrupted
one, and ``dagger.rounds`` may be raised on resume to add rounds to a finished run.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tensordict import TensorDict
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torchrl.modules import ProbabilisticActor

from torchrl_bc.data import EXPERT_KEY, BCDataset
from torchrl_bc.env.npp_env import NppEnv
from torchrl_bc.io import atomic_write_bytes
from torchrl_bc.progress import progress_bar, progress_write
from torchrl_bc.replay.actions import ACTION_TO_INPUT
from torchrl_bc.sim.level import Level
from torchrl_bc.train.checkpoint import (
    CheckpointMismatch,
    get_rng_state,
    load_checkpoint,
    read_torch_file,
    resume_diff,
    save_checkpoint,
    set_rng_state,
)
from torchrl_bc.train.config import RunConfig
from torchrl_bc.train.evaluate import acting, rollout_levels, summarise
from torchrl_bc.train.factories import corpus_folders, make_actor
from torchrl_bc.train.loss import MaskedBCLoss

__all__ = ["STATE_FILE", "DaggerRound", "dagger_levels", "label_failures", "query_snapshots",
           "run_dagger"]

#: What a run needs to continue after its last finished round (``--resume``).
STATE_FILE = "dagger_state.pt"
_STATE_FORMAT = "torchrl_bc.dagger_state/1"


@dataclass
class DaggerRound:
    """What one round cost and bought."""

    round: int
    rollouts: int = 0
    failed: int = 0
    queries: int = 0  # planner calls
    solved: int = 0  # calls that returned a plan
    rejoined: int = 0  # of those, plans that ended in the level's demo (dagger.rejoin_demo)
    labels: int = 0  # labelled steps added this round
    aggregate: int = 0  # labelled steps after aggregation
    train_success: float = 0.0  # of the rolled-out training levels, before retraining (with
    # dagger.rollout: sampled, of the sampled episodes)
    val_success: float = 0.0  # held-out levels, after retraining
    best: bool = False
    seconds: float = 0.0
    plan_seconds: float = 0.0


@dataclass
class _Episode:
    level: Level
    won: bool = False
    died: bool = False
    steps: int = 0
    # (step, snapshot, input held, the observation builder's episode memory at that state)
    snaps: list[tuple[int, Any, int, Any]] = field(default_factory=list)


def _collate(obs: list[dict[str, np.ndarray]], keys: list[str]) -> TensorDict:
    return TensorDict({k: torch.from_numpy(np.stack([o[k] for o in obs])) for k in keys},
                      batch_size=[len(obs)])


def _student_rollouts(actor: ProbabilisticActor, levels: list[Level], cfg: RunConfig,
                      every: int, seed: int = 0) -> list[_Episode]:
    """Episodes in lockstep (one batched forward per step), keeping a snapshot of the
    simulator every ``every`` steps together with the input byte held before it and the
    observation builder's episode memory (``progress``), which the relabelling resumes. Each
    episode is capped at ``dagger.max_ticks``, and at ``dagger.tick_factor`` x the level's demo
    when that is set: a win slower than the metric allows is a failure to label.

    Actions are the policy's most likely ones, or with ``dagger.rollout: sampled`` drawn from
    its distribution by torch's generator, forked and seeded with ``seed``
    (:func:`~torchrl_bc.train.evaluate.acting`): its state is put back afterwards, so the rest
    of the run draws the same numbers either way."""
    obs_cfg = cfg.observation
    dc = cfg.dagger
    envs = [NppEnv(lv.map_data, obs_cfg, max_ticks=lv.cap(dc.tick_factor, dc.max_ticks))
            for lv in levels]
    eps = [_Episode(lv) for lv in levels]
    obs = [env.reset()[0] for env in envs]
    last = [0] * len(envs)
    keys = list(actor.in_keys)
    active = list(range(len(envs)))
    actor.eval()
    with acting(seed if dc.rollout == "sampled" else None):
        while active:
            for i in active:
                if eps[i].steps % every == 0:
                    eps[i].snaps.append((eps[i].steps, envs[i].sim.snapshot(), last[i],
                                         envs[i].builder.memory))
            batch = _collate([obs[i] for i in active], keys)
            actions = actor(batch).get("action").tolist()
            still = []
            for i, a in zip(active, actions, strict=True):
                obs[i], _, term, trunc, info = envs[i].step(int(a))
                last[i] = int(ACTION_TO_INPUT[a])
                eps[i].steps += 1
                if term or trunc:
                    eps[i].won = bool(info["won"])
                    eps[i].died = bool(info["died"])
                else:
                    still.append(i)
            active = still
    return eps


def query_snapshots(ep: _Episode, n: int, spread: bool) -> list[tuple[int, Any, int, Any]]:
    """The snapshots of a failed episode to query, latest first: the last ``n``, or with
    ``spread`` on an episode that ran out of time (not a death), ``n`` evenly spaced over its
    whole length, ending at the latest. A death's mistake lies near its end; a timeout's may
    lie anywhere, and the last ``n`` snapshots of a long one cover only its tail."""
    snaps = ep.snaps[::-1]
    if not spread or ep.died or len(snaps) <= n:
        return snaps[:n]
    return [snaps[j * len(snaps) // n] for j in range(n)]


def label_failures(episodes: list[_Episode], cfg: RunConfig, stats: DaggerRound,
                   demos: dict[str, bytes] | None = None
                   ) -> list[tuple[dict[str, np.ndarray], int]]:
    """Planner labels at the snapshots of failed episodes: (observation, expert action) pairs.

    Each failed episode gets at most ``queries_per_level`` queries, chosen by
    :func:`query_snapshots`; see :func:`~torchrl_bc.levels.labels.label_episode`. Episodes are
    labelled on ``dagger.executor`` (``local`` with ``dagger.workers`` processes, or ``ray``),
    with the same labels in the same order either way. ``demos`` (level name to a winning
    demo's inputs) lets the planner finish by rejoining a level's demo.
    """
    from torchrl_bc.levels.labels import LabelTask, dagger_executor, label_tasks

    dc = cfg.dagger
    tasks = []
    for ep in episodes:
        stats.rollouts += 1
        if ep.won:
            continue
        stats.failed += 1
        snaps = query_snapshots(ep, dc.queries_per_level, dc.timeout_queries == "spread")
        if snaps:
            tasks.append(LabelTask(ep.level.name, ep.level.map_data, snaps, cfg.observation,
                                   dc.horizon, dc.max_expansions, dc.budget_s,
                                   cfg.data.release_jumps,
                                   (demos or {}).get(ep.level.name, b"")))
    out: list[tuple[dict[str, np.ndarray], int]] = []
    for res in label_tasks(tasks, dagger_executor(dc.executor, dc.n_workers(), dc.ray_address)):
        out += res.pairs
        stats.queries += res.queries
        stats.solved += res.solved
        stats.rejoined += res.rejoined
        stats.plan_seconds += res.plan_seconds
    stats.labels = len(out)
    return out


def _to_td(pairs: list[tuple[dict[str, np.ndarray], int]], keys: list[str]) -> TensorDict:
    td = TensorDict({k: torch.from_numpy(np.stack([o[k] for o, _ in pairs])) for k in keys},
                    batch_size=[len(pairs)])
    td[EXPERT_KEY] = torch.tensor([a for _, a in pairs], dtype=torch.int64)
    return td


def _spread(levels: list[Level], n: int, offset: int, seed: int) -> list[Level]:
    """``n`` training levels, a different slice of one seeded shuffle each round, so rounds
    cover more levels and human and generated levels mix (names sort them apart)."""
    if n <= 0 or n >= len(levels):
        return levels
    order = np.random.default_rng(seed).permutation(len(levels))
    return [levels[order[(offset * n + i) % len(levels)]] for i in range(n)]


def _log(msg: str, verbose: bool) -> None:
    if verbose:
        progress_write(msg)


def dagger_levels(cfg: RunConfig, data: BCDataset, verbose: bool = True
                  ) -> tuple[list[Level], list[Level]]:
    """The training levels DAgger rolls out on and the validation levels that select
    ``best.pt``: all of them, or with ``dagger.levels_from: replays`` only those of recorded
    replays, leaving out every level whose demo lies in a folder made by ``make-corpus`` (the
    ``data.generated`` levels and the shipped corpus), whether ``data.replays`` names that
    folder or a prepared dataset built from it (its levels keep their source files).
    Crossval showed why: DAgger on generated levels raised generated-level success, not
    success on unseen human levels; on the human training levels it raised the latter
    (docs/BC_PRETRAINING.md, section 8).
    With no recorded replay among the training levels there is nothing to roll out: both
    lists are empty and :func:`run_dagger` says so and skips its rounds.
    """
    if cfg.dagger.levels_from == "all":
        return data.eval_levels("train"), data.eval_levels("val")
    corpora = corpus_folders(cfg, data)
    train_levels = data.eval_levels("train", exclude=corpora)
    if not train_levels:
        _log(f"dagger: dagger.levels_from is replays, and no training level comes from a "
             f"recorded replay (data.replays holds only generated corpora: "
             f"{[str(p) for p in corpora]}): no DAgger rounds", verbose)
        return [], []
    val_levels = data.eval_levels("val", exclude=corpora)
    if not val_levels:
        val_levels = data.eval_levels("val")
        _log(f"dagger: no validation level comes from a recorded replay; best.pt is selected "
             f"on all {len(val_levels)} validation levels instead", verbose)
    return train_levels, val_levels


def _demo_inputs(data: BCDataset, levels: list[Level]) -> dict[str, bytes]:
    """Each level's shortest winning demo as input bytes from the spawn, by level name (the
    file it was recorded in, untrimmed: what :class:`~torchrl_bc.levels.rejoin.DemoRejoin`
    replays)."""
    from torchrl_bc.replay.format import read_replay

    names = {lv.name for lv in levels}
    return {lv.name: read_replay(lv.file).inputs.tobytes() for lv in data.levels
            if lv.name in names}


def run_dagger(cfg: RunConfig, out_dir: str | Path, data: BCDataset, checkpoint: str | Path,
               verbose: bool = True, resume: bool = False,
               progress: bool = True) -> list[DaggerRound]:
    """``cfg.dagger.rounds`` rounds starting from ``checkpoint`` (the BC ``best.pt``).

    Writes ``dagger.json`` (per-round costs and success), ``dagger_last.pt`` (with
    ``dagger.keep_rounds``, every round's as ``dagger_round<r>.pt`` too), ``dagger_state.pt``
    and a copy of the BC checkpoint as ``bc_best.pt``; overwrites ``best.pt`` whenever held-out
    success is at least the best so far (the BC best included; ties go to the later round), or
    with ``dagger.average_last`` once, at the end, with the average of the last rounds.

    ``resume`` continues from ``dagger_state.pt`` after its last round, starting from
    ``bc_best.pt`` (``best.pt`` may already hold a round's policy); the caller passes it only
    when BC itself trained nothing new. Without it any earlier state is discarded.
    ``progress`` draws a bar over the rounds (rate, ETA) on a terminal, with or without
    ``verbose``'s per-round lines: a round takes minutes on a laptop.
    """
    dc, tc, ec = cfg.dagger, cfg.train, cfg.eval
    out = Path(out_dir)
    train_levels, val_levels = dagger_levels(cfg, data, verbose)
    if not train_levels:
        return []
    demos = _demo_inputs(data, train_levels) if dc.rejoin_demo else None
    bc_copy, state_path = out / "bc_best.pt", out / STATE_FILE
    state = _read_state(state_path, cfg) if resume and state_path.is_file() else None
    if state is not None and not bc_copy.is_file():
        raise CheckpointMismatch(f"{state_path}: DAgger state without the {bc_copy.name} it "
                                 f"started from; pass --overwrite to start again")
    if resume and bc_copy.is_file():
        checkpoint = bc_copy
    else:
        state_path.unlink(missing_ok=True)  # a fresh start: an older run's state is stale
        # Keep the BC policy: best.pt may be replaced below, and BC vs DAgger is worth comparing.
        atomic_write_bytes(bc_copy, Path(checkpoint).read_bytes())
    ckpt = load_checkpoint(checkpoint)
    actor = make_actor(cfg)
    actor.load_state_dict(ckpt["model"])
    if cfg.architecture.uses("graph"):
        raise ValueError("DAgger supports dense modalities only (no graph); "
                         f"architecture {cfg.architecture.name!r} uses the graph")
    keys = [k for k in data.keys if k != "action"]
    # The policy rolled out, scored and saved: the trained actor itself, or with dagger.ema an
    # average of its recent weights, which smooths the constant-rate optimiser's last steps.
    ema = AveragedModel(actor, multi_avg_fn=get_ema_multi_avg_fn(dc.ema), use_buffers=True) \
        if dc.ema > 0 else None
    policy = actor if ema is None else ema.module

    def val_success(model: torch.nn.Module) -> float:
        if not val_levels:
            return 0.0
        res, _ = rollout_levels(model, val_levels, cfg.observation, greedy=True,
                                tick_factor=ec.tick_factor, max_ticks=ec.max_ticks)
        return summarise(res, "")["success"]

    rounds: list[DaggerRound] = []
    aggregate: TensorDict | None = None
    # dagger.average_last: an equal-weight average of the last rounds' policies (SWA over
    # rounds) becomes best.pt. Each round's retraining moves the policy by as much as a seed
    # does, and 3-5 recorded validation levels choose among rounds by chance. The window holds
    # those rounds' weights until the end, so that rounds added on resume slide it.
    window: list[dict[str, torch.Tensor]] = []
    opt = torch.optim.AdamW(actor.parameters(), lr=dc.lr, weight_decay=tc.weight_decay)
    g = torch.Generator().manual_seed(tc.seed * 104729 + 17)
    if state is None:
        best = val_success(policy)
        _log(f"dagger: start from {checkpoint}: held-out success {best:.3f} "
             f"({len(val_levels)} levels); rolling out on {len(train_levels)} training levels "
             f"(dagger.levels_from: {dc.levels_from})", verbose)
    else:
        rounds = [DaggerRound(**r) for r in state["rounds"]]
        if len(rounds) > dc.rounds:
            raise CheckpointMismatch(f"{state_path} holds {len(rounds)} DAgger rounds, more "
                                     f"than dagger.rounds={dc.rounds}")
        actor.load_state_dict(state["actor"])
        opt.load_state_dict(state["optimizer"])
        g.set_state(state["generator"])
        set_rng_state(state["rng"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        if state["aggregate"] is not None:
            aggregate = TensorDict(state["aggregate"], batch_size=[rounds[-1].aggregate])
        window, best = list(state["window"]), float(state["best"])
        _log(f"dagger: resuming from {state_path} after round {len(rounds)} of {dc.rounds}",
             verbose)
    bar = progress_bar(total=dc.rounds, initial=len(rounds), desc="dagger rounds",
                       unit="round", enabled=progress)
    for r in range(len(rounds), dc.rounds):
        t0 = time.perf_counter()
        stats = DaggerRound(r + 1)
        levels = _spread(train_levels, dc.levels, r, tc.seed)
        eps = _student_rollouts(policy, levels, cfg, dc.label_every, seed=tc.seed * 7919 + r)
        stats.train_success = sum(e.won for e in eps) / max(len(eps), 1)
        pairs = label_failures(eps, cfg, stats, demos)
        if pairs:
            new = _to_td(pairs, keys)
            aggregate = new if aggregate is None else torch.cat([aggregate, new])
        stats.aggregate = 0 if aggregate is None else aggregate.batch_size[0]
        if aggregate is not None and dc.steps > 0:
            _retrain(actor, opt, data, aggregate, cfg, r, g, ema)
        stats.val_success = val_success(policy)
        if dc.average_last:
            window = [*window, _weights(policy)][-dc.average_last:]
        # Ties go to the later round: it was trained on every earlier label and more. A few
        # validation levels rarely separate rounds (crossval fold 0: every round tied BC),
        # while the last round won more held-out human levels than BC in every fold.
        if not dc.average_last and stats.val_success >= best:
            best = stats.val_success
            stats.best = True
            save_checkpoint(out / "best.pt", _payload(ckpt, policy, r + 1, [*rounds, stats]))
        stats.seconds = time.perf_counter() - t0
        rounds.append(stats)
        payload = _payload(ckpt, policy, r + 1, rounds)
        save_checkpoint(out / "dagger_last.pt", payload)
        if dc.keep_rounds:
            save_checkpoint(out / f"dagger_round{r + 1}.pt", payload)
        atomic_write_bytes(out / "dagger.json",
                           (json.dumps([asdict(s) for s in rounds], indent=1) + "\n").encode())
        # Written last: a run killed before this line redoes the round, with the same bytes.
        save_checkpoint(state_path, {
            "format": _STATE_FORMAT, "config": cfg.to_dict(), "rounds": _round_dicts(rounds),
            "actor": _weights(actor), "optimizer": opt.state_dict(),
            "generator": g.get_state(), "rng": get_rng_state(),
            "ema": None if ema is None else ema.state_dict(),
            "aggregate": None if aggregate is None else aggregate.to_dict(),
            "window": window, "best": best})
        _log(f"dagger round {r + 1}/{dc.rounds}: train-level success {stats.train_success:.3f}"
             f" ({stats.failed}/{stats.rollouts} failed), {stats.queries} planner queries "
             f"({stats.solved} solved{f', {stats.rejoined} by the demo' if demos else ''}, "
             f"{stats.plan_seconds:.0f} s), +{stats.labels} labels "
             f"(aggregate {stats.aggregate}), held-out success {stats.val_success:.3f}"
             f"{' (best)' if stats.best else ''}, {stats.seconds:.0f} s", verbose)
        bar.update(1)
        bar.set_postfix(train=f"{stats.train_success:.2f}", val=f"{stats.val_success:.2f}",
                        labels=stats.aggregate)
    bar.close()
    if dc.average_last:
        need = min(dc.average_last, dc.rounds)
        if len(window) < need:
            raise CheckpointMismatch(f"{state_path} kept the weights of the last {len(window)} "
                                     f"rounds; dagger.average_last={dc.average_last} needs {need}")
        swa = AveragedModel(policy, use_buffers=True)
        member = copy.deepcopy(policy)
        for weights in window[-need:]:
            member.load_state_dict(weights)
            swa.update_parameters(member)  # the first call copies, later ones average in
        success = val_success(swa.module)
        save_checkpoint(out / "best.pt", _payload(ckpt, swa.module, dc.rounds, rounds))
        _log(f"dagger: best.pt is the average of the last {need} rounds' policies: "
             f"held-out success {success:.3f}", verbose)
    return rounds


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _round_dicts(rounds: list[DaggerRound]) -> list[dict[str, Any]]:
    """Plain Python values (numpy scalars are not loadable under ``weights_only``)."""
    return [{k: (float(v) if isinstance(v, float) else v) for k, v in asdict(s).items()}
            for s in rounds]


def _read_state(path: Path, cfg: RunConfig) -> dict[str, Any]:
    """``dagger_state.pt``, refused (one line) when damaged or made under another config
    (beyond :data:`~torchrl_bc.train.config.RESUMABLE_KEYS`: more rounds may be asked for)."""
    state = read_torch_file(path, "DAgger state")
    keys = ("config", "rounds", "actor", "optimizer", "generator", "rng", "ema", "aggregate",
            "window", "best")
    if not isinstance(state, dict) or state.get("format") != _STATE_FORMAT \
            or any(k not in state for k in keys):
        raise CheckpointMismatch(f"{path} is not a DAgger state ({_STATE_FORMAT})")
    diff = resume_diff(state["config"], cfg)
    if diff:
        raise CheckpointMismatch(f"{path} does not match this run: " + "; ".join(diff))
    return state


def _retrain(actor: ProbabilisticActor, opt: torch.optim.Optimizer, data: BCDataset,
             aggregate: TensorDict, cfg: RunConfig, r: int, g: torch.Generator,
             ema: AveragedModel | None = None) -> None:
    """``dagger.steps`` optimiser steps on batches mixing demos and aggregated labels; ``ema``
    (when given) averages the weights after every step."""
    dc, tc = cfg.dagger, cfg.train
    n_agg = max(1, round(tc.batch_size * dc.mix)) if dc.mix > 0 else 0
    n_demo = tc.batch_size - n_agg
    demos = data.train_batches(10_000 + r, max(n_demo, 1), tc.seed,
                               balanced=cfg.data.balance_actions, cap=dc.steps) \
        if n_demo > 0 else None
    loss_module = MaskedBCLoss(actor, entropy_coef=tc.entropy_coef,
                               label_smoothing=tc.label_smoothing)
    actor.train()
    for step in range(dc.steps):
        parts = []
        if n_agg:
            idx = torch.randint(0, aggregate.batch_size[0], (n_agg,), generator=g)
            parts.append(aggregate[idx])
        if demos is not None:
            batch = next(demos, None)
            if batch is None:  # the demo epoch ran out: start the next one
                demos = data.train_batches(20_000 + r * 1000 + step, n_demo, tc.seed,
                                           balanced=cfg.data.balance_actions, cap=dc.steps)
                batch = next(demos)
            weighted = "sample_weight" in batch.keys()  # the demos' decision weights
            if weighted and parts:  # aggregate[idx] is a fresh copy: its labels weigh 1
                parts[0].set("sample_weight", torch.ones(n_agg))
            parts.append(batch.select(*aggregate.keys(), *(["sample_weight"] * weighted)))
        batch = torch.cat(parts) if len(parts) > 1 else parts[0]
        loss = sum(v for k, v in loss_module(batch).items() if k.startswith("loss_"))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if tc.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(actor.parameters(), tc.grad_clip)
        opt.step()
        if ema is not None:
            ema.update_parameters(actor)
    actor.eval()


def _payload(ckpt: dict[str, Any], actor: torch.nn.Module, r: int,
             rounds: list[DaggerRound]) -> dict[str, Any]:
    """The BC checkpoint with the DAgger weights: same format, so evaluate/export load it."""
    out = dict(ckpt)
    out["model"] = _weights(actor)
    out["dagger"] = _round_dicts(rounds)
    out["dagger_round"] = r
    return out
