"""Jump released where holding it does nothing: the same trajectory, to the bit, and jump labels
that start where the jumps do."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from mapkit import build_map, floor_row

from torchrl_bc.data.build import build_dataset
from torchrl_bc.data.manifest import read_manifest
from torchrl_bc.obs import ObservationConfig
from torchrl_bc.replay.format import Replay, read_replay, write_replay
from torchrl_bc.replay.jumps import JUMP_BIT, release_stale_jumps
from torchrl_bc.resources import SAMPLE_CORPUS
from torchrl_bc.sim import Simulator

# A flat floor: the switch to the right of the spawn, the door further right.
FLOOR = build_map(floor_row(14), spawn=(20, 58), records=[(3, 150, 58, 0, 0), (4, 100, 58, 0, 0)])
RIGHT, JUMP_RIGHT = 2, 2 | JUMP_BIT


def _same_play(a: Replay, b: Replay) -> bool:
    ta = Simulator(a.map_data).run_inputs(a.inputs)
    tb = Simulator(b.map_data).run_inputs(b.inputs)
    return (ta.win_frame, ta.death_frame) == (tb.win_frame, tb.death_frame) and \
        np.array_equal(ta.pos, tb.pos) and np.array_equal(ta.vel, tb.vel) and \
        np.array_equal(ta.state, tb.state)


def test_a_stale_hold_is_released_and_the_jump_press_kept() -> None:
    """Jump held from spawn (the ninja is still falling onto the floor, so nothing fires), let
    go for one tick, pressed again: the jump. Released, the demo runs without jump up to the
    press, keeps jump while it lifts the ninja, and plays the same to the bit."""
    inputs = np.array([JUMP_RIGHT] * 30 + [RIGHT] + [JUMP_RIGHT] * 40 + [RIGHT] * 300,
                      np.uint8)
    demo = Replay(map_data=FLOOR, inputs=inputs, success=True, version=1, source="floor")
    trace = Simulator(FLOOR).run_inputs(inputs)
    assert trace.win_frame > 0 and trace.pos[:, 1].min() < trace.pos[0, 1] - 20  # it jumped
    out, released = release_stale_jumps(demo)
    assert _same_play(demo, out) and out.source == "floor#jumps"
    jump = (out.inputs & JUMP_BIT) != 0
    assert not jump[:31].any()  # the stale hold, and the release tick, as they were
    # pressed where the jump starts, and held while holding lifts the ninja (released there,
    # the jump would end early and the trajectory differ)
    assert jump[31] and jump[32:40].all()
    assert released == int(np.count_nonzero(out.inputs != inputs)) >= 30
    assert release_stale_jumps(out) == (out, 0)  # nothing left to release


def test_nothing_to_release_leaves_the_replay_alone() -> None:
    demo = Replay(map_data=FLOOR, inputs=np.full(200, RIGHT, np.uint8), success=True, version=1)
    assert release_stale_jumps(demo) == (demo, 0)
    empty = dataclasses.replace(demo, inputs=np.zeros(0, np.uint8))
    assert release_stale_jumps(empty) == (empty, 0)


def test_every_corpus_demo_plays_the_same_after_release() -> None:
    released = 0
    for f in sorted(SAMPLE_CORPUS.glob("*.replay")):
        demo = read_replay(f)
        out, k = release_stale_jumps(demo)
        assert _same_play(demo, out), f.name
        assert Simulator(out.map_data).run_inputs(out.inputs).win_frame == out.n_ticks
        assert (out.inputs & ~np.uint8(JUMP_BIT) == demo.inputs & ~np.uint8(JUMP_BIT)).all()
        released += k
    assert released > 100  # the planner holds jump long after its jumps end


def test_dataset_build_with_released_jumps_records_and_keys_it(tmp_path: Path) -> None:
    src = tmp_path / "replays"
    src.mkdir()
    inputs = np.array([JUMP_RIGHT] * 30 + [RIGHT] + [JUMP_RIGHT] * 40 + [RIGHT] * 300,
                      np.uint8)
    n = Simulator(FLOOR).run_inputs(inputs).win_frame
    write_replay(src / "floor.replay", FLOOR, inputs[:n], success=True)
    cfg = ObservationConfig(modalities=("game_state", "action_mask"))
    kw = dict(progress=False, verbose=False, cache_dir=tmp_path / "cache")
    build_dataset([src], cfg, tmp_path / "plain", **kw)
    build_dataset([src], cfg, tmp_path / "jumps", release_jumps=True, **kw)
    plain = read_manifest(tmp_path / "plain")
    jumps = read_manifest(tmp_path / "jumps")
    assert jumps["episodes"][0]["jump_ticks_released"] >= 30
    assert "jump_ticks_released" not in plain["episodes"][0]
    assert jumps["episodes"][0]["key"] != plain["episodes"][0]["key"]
    assert jumps["episodes"][0]["ticks"] == plain["episodes"][0]["ticks"] == n
    assert jumps["config"]["data"]["release_jumps"] is True
    assert "release_jumps" not in plain["config"]["data"]  # older manifests read the same


def test_dagger_labels_release_the_plans_stale_jumps() -> None:
    """The planner's plan from a student's state, labelled with released jumps: the same
    states (the trajectory is unchanged), the same directions, jump only where it was."""
    from torchrl_bc.levels.labels import LabelTask, label_episode
    from torchrl_bc.replay.actions import ACTION_TO_INPUT

    cfg = ObservationConfig(modalities=("game_state", "action_mask"))
    released = 0
    for name in ("shaft-10", "gaps-1", "slopes-3"):
        demo = read_replay(SAMPLE_CORPUS / f"{name}.replay")
        sim = Simulator(demo.map_data)
        sim.advance_inputs(demo.inputs[:40])
        snap = [(40, sim.snapshot(), int(demo.inputs[39]), None)]
        got = [label_episode(LabelTask(name, demo.map_data, snap, cfg, 60, 4000, None, rel))
               for rel in (False, True)]
        assert got[0].solved == got[1].solved == 1
        assert len(got[0].pairs) == len(got[1].pairs)
        (o0, _), (o1, _) = got[0].pairs[0], got[1].pairs[0]  # the student's own state
        assert {k: v.tobytes() for k, v in o0.items()} == {k: v.tobytes() for k, v in o1.items()}
        for (_, a0), (_, a1) in zip(got[0].pairs, got[1].pairs, strict=True):
            i0, i1 = int(ACTION_TO_INPUT[a0]), int(ACTION_TO_INPUT[a1])
            assert i1 & ~JUMP_BIT == i0 & ~JUMP_BIT and (i1 & JUMP_BIT) <= (i0 & JUMP_BIT)
            released += i1 != i0
    assert released > 0
