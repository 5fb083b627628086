"""progress: episode-memory counters by hand, executor == env, and memory resumed with a
snapshot (what DAgger's relabelling relies on)."""

from __future__ import annotations

import numpy as np
import pytest
from mapkit import build_map, floor_row
from replaykit import executor_and_env

from torchrl_bc.env import NppEnv
from torchrl_bc.levels.labels import LabelTask, label_episode
from torchrl_bc.obs import ObservationBuilder, ObservationConfig
from torchrl_bc.resources import SAMPLE_CORPUS
from torchrl_bc.sim import Simulator

CFG = ObservationConfig(modalities=("game_state", "objective", "progress", "action_mask"),
                        frame_skip=1)
# Floor under the spawn; the switch 90 px right of the ninja, its exit door further right.
SWITCH_RIGHT = build_map(floor_row(12), spawn=(30, 50),
                         records=[(3, 70, 50, 0, 0), (4, 45, 50, 0, 0)])
NOOP, RIGHT, LEFT = 0, 2, 4  # input bytes


def _run(inputs: list[int]) -> np.ndarray:
    sim = Simulator(SWITCH_RIGHT)
    builder = ObservationBuilder(CFG)
    out = [builder.observe(sim)["progress"]]
    for b in inputs:
        sim.tick_input(b)
        out.append(builder.observe(sim)["progress"])
    return np.stack(out)


def test_counters_grow_while_standing_still() -> None:
    p = _run([NOOP] * 90)
    assert p.dtype == np.float32 and p.shape == (91, 3)
    t = np.arange(91, dtype=np.float32)
    assert np.allclose(p[:, 0], t / 300) and np.allclose(p[:, 1], t / 600)
    assert (p[:, 2] == 0).all()


def test_counters_stay_low_while_running_at_the_switch() -> None:
    p = _run([RIGHT] * 25)
    # From rest the first 6 px take about 16 ticks; then, faster, both counters keep
    # restarting (each time the ninja moves 6 px, 6 px closer to the switch).
    assert p[:20, 0].max() < 20 / 300 and (p[:, 0] == 0).sum() >= 3
    assert p[-8:, 0].max() <= 6 / 300 and p[-8:, 1].max() <= 6 / 600
    assert (p[:, 2] == 0).all()


def test_backtracking_and_no_progress_when_running_away() -> None:
    p = _run([LEFT] * 60)
    assert p[-1, 0] < 12 / 300  # moving, so not stalled
    assert p[-1, 1] == pytest.approx(60 / 600)  # but never closer to the switch
    assert p[-1, 2] > 0.3  # and more than 90 px further along the path than at the start


def test_new_episode_forgets() -> None:
    env = NppEnv(SWITCH_RIGHT, CFG)
    env.reset()
    for a in [1] * 30 + [0] * 60:  # run away from the switch (LEFT), then stand
        obs, *_ = env.step(a)
    assert obs["progress"][1] > 0.1 and obs["progress"][2] > 0.1
    obs, _ = env.reset()
    assert obs["progress"].tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("same_level", [True, False])
def test_slots_start_every_episode_afresh(same_level: bool) -> None:
    """The batched env's per-slot builders forget when a slot starts a level (a new one or
    the same one again), as a fresh ``NppEnv`` episode does."""
    from torchrl_bc.env.slots import LevelSlots

    other = build_map(floor_row(12), spawn=(60, 50), records=[(3, 10, 50, 0, 0),
                                                              (4, 20, 50, 0, 0)])
    slots = LevelSlots([SWITCH_RIGHT, other], 1, CFG)
    slots.load(0, 0)
    slots.observe()
    for _ in range(30):
        slots.step(np.array([1]), 1)  # LEFT: away from the switch
        slots.observe()
    for _ in range(60):
        slots.step(np.array([0]), 1)
        moved = slots.observe()["progress"][0]
    assert moved[1] > 0.1 and moved[2] > 0.1
    level = 0 if same_level else 1
    slots.load(0, level)
    fresh, _ = NppEnv([SWITCH_RIGHT, other][level], CFG).reset()
    assert slots.observe()["progress"][0].tobytes() == fresh["progress"].tobytes()
    assert fresh["progress"].tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("name", ["corridor-0", "switch_first-5"])
def test_executor_matches_env(name: str) -> None:
    ep, env_obs = executor_and_env(SAMPLE_CORPUS / f"{name}.replay", CFG)
    for t, obs in enumerate(env_obs):
        assert obs["progress"].tobytes() == ep.obs["progress"][t].tobytes(), t
    assert ep.won and ep.obs["progress"][:, 0].max() > 0  # the counters did move


def test_memory_resumes_with_its_snapshot() -> None:
    """A state restored from a snapshot, with the memory taken with it, observes as the
    original episode did; without the memory the counters restart."""
    sim = Simulator(SWITCH_RIGHT)
    student = ObservationBuilder(CFG)
    for _ in range(120):
        student.observe(sim)
        sim.tick_input(NOOP)
    seen = student.observe(sim)["progress"]
    snap, memory = sim.snapshot(), student.memory
    assert seen[0] == pytest.approx(120 / 300)
    other = Simulator(SWITCH_RIGHT)
    resumed = ObservationBuilder(CFG)
    resumed.observe(other)
    other.restore(snap)
    resumed.memory = memory
    assert resumed.observe(other)["progress"].tobytes() == seen.tobytes()
    fresh = ObservationBuilder(CFG)
    assert fresh.observe(other)["progress"][0] == 0.0
    # The planner's relabelling labels the student's state with the student's counters.
    task = LabelTask("switch-right", SWITCH_RIGHT, [(120, snap, 0, memory)], CFG, horizon=4,
                     max_expansions=4000, budget_s=None)
    res = label_episode(task)
    assert res.solved == 1 and res.pairs[0][0]["progress"].tobytes() == seen.tobytes()
