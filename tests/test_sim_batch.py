"""SimBatch steps many simulators in one compiled call and matches stepping them one by one."""

from __future__ import annotations

import numpy as np
from mapkit import build_map, floor_row

from torchrl_bc.sim import Simulator
from torchrl_bc.sim.batch import ACTION_HOR, ACTION_JUMP, SimBatch


def _levels() -> list[bytes]:
    a = build_map(floor_row(14), spawn=(20, 58), records=[(1, 60, 58, 0, 0), (2, 40, 58, 0, 0)])
    b = build_map(floor_row(14) | {(12, 13): 8, (20, 10): 1}, spawn=(30, 50),
                  records=[(14, 80, 30, 0, 2), (17, 50, 45, 0, 0), (25, 100, 30, 0, 0),
                           (3, 150, 58, 0, 0), (4, 120, 58, 0, 0)])
    return [a, b, a, b, b]


def test_batch_matches_individual_simulators() -> None:
    maps = _levels()
    batched = [Simulator(m) for m in maps]
    single = [Simulator(m) for m in maps]
    batch = SimBatch(batched)
    rng = np.random.default_rng(0)
    for _ in range(120):
        actions = rng.integers(0, 6, len(maps))
        ran = batch.step(actions, 4)
        for i, (sim, a) in enumerate(zip(single, actions, strict=True)):
            n = 0 if sim.done else sim.advance(np.full(4, ACTION_HOR[a]),
                                               np.full(4, ACTION_JUMP[a]))
            assert ran[i] == n
            assert sim.ninja_state.tobytes() == batched[i].ninja_state.tobytes()
            assert sim.entity_table().tobytes() == batched[i].entity_table().tobytes()
        for i in np.flatnonzero(batch.states >= 6):  # finished envs restart in place
            batched[i].reset()
            single[i].reset()


def test_batched_simulators_keep_working_alone() -> None:
    sims = [Simulator(m) for m in _levels()]
    batch = SimBatch(sims)
    batch.step(np.full(len(sims), 2), 10)
    snap = sims[1].snapshot()
    x = sims[1].ninja.xpos
    sims[1].tick(1, 0)  # a single simulator still ticks its own (batched) state
    assert batch.nin[1, 0] == sims[1].ninja.xpos != x
    sims[1].restore(snap)
    assert batch.nin[1, 0] == x


def test_autoreset_in_kernel_matches_resetting_from_python() -> None:
    maps = _levels()
    auto = SimBatch([Simulator(m) for m in maps])
    manual_sims = [Simulator(m) for m in maps]
    manual = SimBatch(manual_sims)
    rng = np.random.default_rng(3)
    n_ended = 0
    for _ in range(150):
        actions = rng.integers(0, 6, len(maps))
        ran_auto = auto.step(actions, 4, autoreset=True)
        ran_manual = manual.step(actions, 4)
        assert (ran_auto == ran_manual).all()
        ended = np.flatnonzero(manual.states >= 6)
        assert (np.flatnonzero(auto.ended) == ended).all()
        assert (auto.ended[ended] == manual.states[ended]).all()
        for i in ended:
            manual_sims[i].reset()
        n_ended += len(ended)
        assert auto.nin.tobytes() == manual.nin.tobytes()
        assert auto.ef.tobytes() == manual.ef.tobytes()
        assert auto.ei.tobytes() == manual.ei.tobytes()
        assert auto.hor.tobytes() == manual.hor.tobytes()
    assert n_ended > 0  # the check above covered real restarts


def test_autoreset_puts_door_edges_back() -> None:
    # running right: touch the locked door's switch (opens it) and the trap door's switch
    # (closes it), pass a regular door, then die on a mine; restarts must restore the edges
    door_map = build_map(floor_row(14), spawn=(20, 58), records=[
        (6, 50, 58, 0, 0), (7, 30, 58, 0, 0), (8, 70, 58, 0, 0), (9, 35, 58, 0, 0),
        (5, 90, 58, 0, 0), (1, 120, 58, 0, 0)])
    auto = SimBatch([Simulator(door_map)])
    start_ver = auto.ver.copy()
    manual_sim = Simulator(door_map)
    edges_moved = restarts = 0
    for _ in range(200):
        auto.step(np.array([2]), 4, autoreset=True)
        manual_sim.advance(np.full(4, 1.0), np.zeros(4))
        if not np.array_equal(manual_sim.ver_edges, start_ver[0]):
            edges_moved += 1
        if manual_sim.done:
            assert auto.ended[0] == manual_sim.ninja.state
            manual_sim.reset()
            restarts += 1
        assert auto.ver[0].tobytes() == manual_sim.ver_edges.tobytes()
        assert auto.nin[0].tobytes() == manual_sim.ninja_state.tobytes()
    assert restarts >= 2 and edges_moved > 0
