"""ReplayExecutor: executor == NppEnv byte for byte, no label leakage, labels, desyncs, mirrors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mapkit import build_map, floor_row

from torchrl_bc.env import NppEnv
from torchrl_bc.obs import ObservationBuilder, ObservationConfig
from torchrl_bc.replay.actions import inputs_to_actions
from torchrl_bc.replay.executor import ReplayExecutor
from torchrl_bc.replay.format import Replay, ReplayFormatError, read_replay
from torchrl_bc.replay.mirror import mirror_if_valid, mirror_inputs, mirror_map
from torchrl_bc.sim import Simulator

EXIT_RIGHT = build_map(floor_row(12), spawn=(30, 50),
                       records=[(3, 70, 50, 0, 0), (4, 45, 50, 0, 0)])


def _replays(shared: Path, every: int = 1) -> list[tuple[str, Replay]]:
    out = []
    for p in sorted((shared / "replays").glob("*.replay"))[::every]:
        try:
            out.append((p.stem, read_replay(p)))
        except ReplayFormatError:
            continue
    return out


def _check_against_env(replay: Replay, frame_skip: int) -> int:
    """Executor observations equal NppEnv driven by the same ticks; returns steps checked."""
    cfg = ObservationConfig(frame_skip=frame_skip)
    ep = ReplayExecutor(cfg).execute(replay)
    env = NppEnv(replay.map_data, cfg)
    obs, _ = env.reset()
    actions = inputs_to_actions(replay.inputs)
    k = 0
    for t in range(ep.n_steps):
        for key, value in obs.items():
            assert value.tobytes() == ep.obs[key][t].tobytes(), (key, t)
        chunk = replay.inputs[k:k + frame_skip]
        assert ep.actions[t] == actions[k]  # label = action at the first tick of the step
        if (actions[k:k + len(chunk)] == ep.actions[t]).all() and len(chunk) == frame_skip:
            obs, reward, term, trunc, info = env.step(int(ep.actions[t]))  # the policy API
        else:
            obs, reward, term, trunc, info = env.step_ticks(chunk)  # tick-level hook
        assert reward == ep.rewards[t] and term == ep.terminated[t] and trunc == ep.truncated[t]
        k += info["ticks"]
    assert term == ep.won or ep.desynced
    return ep.n_steps


@pytest.mark.parametrize("frame_skip", [1, 4])
def test_executor_matches_env_subset(shared_data: Path, frame_skip: int) -> None:
    for _, replay in _replays(shared_data, every=25):
        assert _check_against_env(replay, frame_skip) > 0


@pytest.mark.slow
@pytest.mark.parametrize("frame_skip", [1, 4])
def test_executor_matches_env_all(shared_data: Path, frame_skip: int) -> None:
    for _, replay in _replays(shared_data):
        _check_against_env(replay, frame_skip)


def test_observation_does_not_depend_on_own_input() -> None:
    # Two replays identical up to tick 8, different from tick 8 on (step 2 at frame_skip 4).
    a = np.array([2] * 8 + [2] * 8, np.uint8)
    b = np.array([2] * 8 + [5] * 8, np.uint8)
    ex = ReplayExecutor(ObservationConfig(frame_skip=4))
    ea = ex.execute(Replay(EXIT_RIGHT, a, True, 1))
    eb = ex.execute(Replay(EXIT_RIGHT, b, True, 1))
    for key in ea.obs:
        assert np.array_equal(ea.obs[key][:3], eb.obs[key][:3]), key  # steps 0..2
    # The input of step 2 does show in step 3's observation (the state did change).
    assert not np.array_equal(ea.obs["game_state"][3], eb.obs["game_state"][3])
    assert ea.actions[2] != eb.actions[2]
    # And the step-t observation is the state after exactly t * frame_skip ticks.
    sim = Simulator(EXIT_RIGHT)
    builder = ObservationBuilder(ObservationConfig(frame_skip=4))
    for byte in a[:8]:
        sim.tick_input(int(byte))
    assert np.array_equal(builder.observe(sim)["game_state"], ea.obs["game_state"][2])


def test_labels_agreement_win_and_desync() -> None:
    inputs = np.array([2, 2, 3, 2] + [2] * 200, np.uint8)
    ep = ReplayExecutor(ObservationConfig(frame_skip=4)).execute(Replay(EXIT_RIGHT, inputs,
                                                                          True, 1))
    assert ep.actions[0] == 2 and ep.agreement[0] == 3 and ep.ticks[0] == 4
    assert ep.won and ep.terminated[-1] and ep.rewards[-1] == 1.0 and ep.rewards[:-1].sum() == 0
    assert ep.desynced and "left over" in ep.desync_reason  # inputs continue after the win
    exact = inputs[: ep.end_frame]
    ep2 = ReplayExecutor(ObservationConfig(frame_skip=4)).execute(Replay(EXIT_RIGHT, exact,
                                                                           True, 1))
    assert ep2.won and not ep2.desynced
    short = ReplayExecutor().execute(Replay(EXIT_RIGHT, exact[:-5], True, 1))
    assert short.desynced and not short.won and not short.terminated.any()


def test_static_graph_shared_between_episodes_of_a_level() -> None:
    ex = ReplayExecutor(ObservationConfig(frame_skip=1))
    inputs = np.full(30, 2, np.uint8)
    e1 = ex.execute(Replay(EXIT_RIGHT, inputs, True, 1))
    e2 = ex.execute(Replay(EXIT_RIGHT, inputs[:20], True, 1))
    assert e1.static_graph is e2.static_graph
    per_step = e1.obs["graph_entity_state"][0].nbytes + e1.obs["graph_ninja_node"][0].nbytes
    assert per_step <= 64  # 2 entities: 2 x 4 floats + the node index
    assert e1.static_graph.nbytes > 50 * per_step  # static data is not repeated per step


def test_mirror_roundtrip_and_survivors(shared_data: Path) -> None:
    ex = ReplayExecutor(ObservationConfig(frame_skip=4))
    replays = _replays(shared_data, every=16)
    for _, r in replays:
        assert mirror_map(mirror_map(r.map_data)) == r.map_data
        assert np.array_equal(mirror_inputs(mirror_inputs(r.inputs)), r.inputs)
    episodes = list(ex.iter_episodes(replays, mirror=True))
    assert ex.stats.mirrored_tried == len(replays)
    assert ex.stats.mirrored_kept >= 1
    mirrored = [e for e in episodes if e.mirrored]
    assert len(mirrored) == ex.stats.mirrored_kept
    assert all(e.won and not e.desynced for e in mirrored)
    assert "still win" in ex.stats.describe()


def test_mirror_flips_picture_and_inputs() -> None:
    assert mirror_inputs(np.arange(8, dtype=np.uint8)).tolist() == [0, 1, 4, 5, 2, 3, 6, 7]
    cfg = ObservationConfig(modalities=("global_view",))
    b = ObservationBuilder(cfg)
    tiles = {(3, 5): 3, (10, 7): 6, (20, 9): 1}
    m = build_map(tiles, spawn=(88, 50))  # spawn on the centre line
    gv = b.observe(Simulator(m))["global_view"][0]
    gm = ObservationBuilder(cfg).observe(Simulator(mirror_map(m)))["global_view"][0]
    assert np.array_equal(gv[:, ::-1], gm)
    assert mirror_if_valid(Replay(m, np.zeros(5, np.uint8), True, 1)) is None  # no win
