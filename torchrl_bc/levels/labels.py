"""DAgger's expert: planner labels at failed episodes' states, one episode per task.

Labelling is the expensive, embarrassingly parallel part of a DAgger round: every failed
rollout's snapshots go to the planner independently. Each :class:`LabelTask` carries all a
worker needs (the map bytes, the snapshots, the observation config and the planner's budget),
so it runs the same in this process, in a local pool or as a Ray task
(:mod:`torchrl_bc.executors`); results come back in task order, so the aggregate does not
depend on where or in what order tasks ran. The planner's budget is ``max_expansions``, which
is machine independent; ``budget_s`` adds an optional wall-clock cap, off by default because
with it a slower or busier machine labels fewer states and the run is no longer reproducible.
A query that runs out of budget is never retried; levels where every query did are reported
on one line.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from torchrl_bc.executors import Executor, make_executor, report
from torchrl_bc.obs import ObservationBuilder
from torchrl_bc.obs.config import ObservationConfig
from torchrl_bc.replay.actions import INPUT_TO_ACTION
from torchrl_bc.replay.jumps import release_from
from torchrl_bc.sim import Simulator

__all__ = ["LabelResult", "LabelTask", "dagger_executor", "label_episode", "label_tasks"]

Pair = tuple[dict[str, np.ndarray], int]


@dataclass
class LabelTask:
    """One failed episode: its level and the states to query, each as (step, snapshot, input
    held, the observation builder's episode memory there or None)."""

    name: str
    map_data: bytes
    snaps: list[tuple[int, Any, int, Any]]
    observation: ObservationConfig
    horizon: int
    max_expansions: int
    budget_s: float | None  # None: no wall-clock cap
    release_jumps: bool = False  # label the plan with jump released wherever holding it
    # changes nothing (torchrl_bc.replay.jumps), as data.release_jumps does to demos
    demo: bytes = b""  # a winning demo's inputs from the spawn: the planner may also finish
    # by rejoining it (dagger.rejoin_demo, torchrl_bc.levels.rejoin)


@dataclass
class LabelResult:
    pairs: list[Pair] = field(default_factory=list)
    queries: int = 0
    solved: int = 0
    rejoined: int = 0  # solved queries that ended in the level's demo
    plan_seconds: float = 0.0


def label_episode(task: LabelTask) -> LabelResult:
    """Query the planner at each snapshot; a solved query labels the student's state and the
    next ``horizon`` steps of the plan, acting every ``frame_skip`` ticks with the action of
    the first tick of each step, as the replay executor labels demos."""
    from torchrl_bc.levels.planner import Planner
    from torchrl_bc.levels.rejoin import DemoRejoin

    res = LabelResult()
    try:
        planner = Planner(task.map_data, style="human", source=task.name)
    except ValueError:
        return res
    rejoin = None
    if task.demo:  # raises, naming the level, when the demo does not win
        rejoin = DemoRejoin(task.map_data, np.frombuffer(task.demo, np.uint8), source=task.name)
    k = task.observation.frame_skip
    sim = Simulator(task.map_data, source=task.name)
    builder = ObservationBuilder(task.observation)
    builder.bind(sim)
    budget = math.inf if task.budget_s is None else task.budget_s
    for _, snap, last, memory in task.snaps:
        res.queries += 1
        t0 = time.perf_counter()
        plan = planner.solve(budget, max_expansions=task.max_expansions, start=snap,
                             last_input=last, rejoin=rejoin)
        res.plan_seconds += time.perf_counter() - t0
        if not plan.solved:
            continue
        res.solved += 1
        res.rejoined += int(rejoin is not None and rejoin.joined)
        sim.restore(snap)
        inputs = plan.inputs
        if task.release_jumps:  # the same trajectory; sim is back at the snapshot after it
            inputs = release_from(sim, inputs)
        builder.memory = memory  # the student's, so its state is labelled as it saw it
        for step in range(task.horizon + 1):
            a = step * k
            if a >= len(inputs):
                break
            res.pairs.append((builder.observe(sim), int(INPUT_TO_ACTION[int(inputs[a])])))
            for b in inputs[a:a + k].tolist():
                sim.tick_input(b)
    return res


def label_tasks(tasks: list[LabelTask], executor: Executor,
                progress: bool = True) -> list[LabelResult]:
    """Every task's result, in task order. A task whose worker failed for good (or that
    raised) is reported and counts as no labels; levels with no solved query are named."""
    results = [LabelResult() for _ in tasks]
    for i, res, error in executor.map(label_episode, tasks, desc="dagger labels",
                                      unit="episode", progress=progress):
        if error is not None:
            report(f"dagger: labelling {tasks[i].name} failed: "
                   f"{type(error).__name__}: {error}".splitlines()[0])
            continue
        results[i] = res
    hopeless = [t.name for t, r in zip(tasks, results, strict=True) if r.queries and not r.solved]
    if hopeless:
        t = tasks[0]
        cap = "" if t.budget_s is None else f", {t.budget_s:g} s"
        report(f"dagger: planner budget ({t.max_expansions} expansions{cap}) ran "
               f"out at every queried state of {len(hopeless)} level(s): "
               f"{', '.join(hopeless)}")
    return results


def dagger_executor(executor: str, workers: int, ray_address: str) -> Executor:
    """The executor named by ``dagger.executor``/``workers``/``ray_address``."""
    return make_executor(executor, workers=workers, address=ray_address or None,
                         preload=["torchrl_bc.levels.labels", "torchrl_bc.levels.planner"])
