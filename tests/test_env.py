"""NppEnv: level sources, termination, truncation, snapshots, rendering."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mapkit import build_map, floor_row

from torchrl_bc.env import NppEnv
from torchrl_bc.obs import ObservationConfig
from torchrl_bc.sim import constants as C

EXIT_RIGHT = build_map(floor_row(12), spawn=(30, 50),
                       records=[(3, 70, 50, 0, 0), (4, 45, 50, 0, 0)])
MINE_RIGHT = build_map(floor_row(12), spawn=(30, 50), records=[(1, 40, 52, 0, 0)])


def test_reset_sources_and_spaces(tmp_path: Path) -> None:
    path = tmp_path / "level.map"
    path.write_bytes(EXIT_RIGHT)
    obs_bytes, _ = NppEnv(EXIT_RIGHT).reset()
    obs_path, _ = NppEnv(path).reset()
    env = NppEnv(lambda rng: EXIT_RIGHT)
    obs_gen, info = env.reset(seed=3)
    for key in obs_bytes:
        assert np.array_equal(obs_bytes[key], obs_path[key])
        assert np.array_equal(obs_bytes[key], obs_gen[key])
    assert env.observation_space.contains(obs_gen)
    assert env.action_space.n == 6 and info["frame"] == 0
    obs2, _ = env.reset(options={"map_data": MINE_RIGHT})
    assert obs2["graph_entity_state"].shape == (1, 4)
    with pytest.raises(ValueError):
        NppEnv().reset()


def test_win_terminates_with_reward() -> None:
    env = NppEnv(EXIT_RIGHT, ObservationConfig(frame_skip=4))
    env.reset()
    total, steps = 0.0, 0
    while True:
        _, r, term, trunc, info = env.step(2)  # RIGHT
        total += r
        steps += 1
        if term or trunc:
            break
    assert term and not trunc and info["won"] and total == 1.0
    assert info["frame"] <= 4 * steps
    with pytest.raises(RuntimeError):
        env.step(0)


def test_death_terminates() -> None:
    env = NppEnv(MINE_RIGHT, ObservationConfig(frame_skip=4))
    env.reset()
    for _ in range(100):
        _, r, term, _, info = env.step(2)
        if term:
            break
    assert term and info["died"] and r == 0.0  # default death penalty is 0


def test_truncated_at_tick_limit() -> None:
    level = build_map(floor_row(12), spawn=(30, 50))
    assert NppEnv(level).max_ticks == C.MAX_TICKS == 20000
    env = NppEnv(level, ObservationConfig(frame_skip=4), max_ticks=10)  # 10, not 20000 ticks
    env.reset()
    env.step(0)
    env.step(0)
    _, _, term, trunc, info = env.step(0)
    assert trunc and not term and info["ticks"] == 2 and info["frame"] == 10


def test_snapshot_reset_restores_state() -> None:
    env = NppEnv(EXIT_RIGHT, ObservationConfig(frame_skip=1))
    env.reset()
    for _ in range(10):
        env.step(2)
    snap = env.snapshot()
    expected, _, _, _, _ = env.step(5)
    for _ in range(20):
        env.step(1)
    restored, info = env.reset(options={"snapshot": snap})
    assert info["frame"] == 10
    again, _, _, _, _ = env.step(5)
    for key in expected:
        assert np.array_equal(expected[key], again[key]), key
    assert restored["game_state"][-1] == pytest.approx(10 / 20000)


def test_render_rgb() -> None:
    env = NppEnv(EXIT_RIGHT)
    env.reset()
    img = env.render()
    assert img.shape == (600, 1056, 3) and img.dtype == np.uint8
    assert (img[300, 180] == 0).all()  # the ninja is drawn black at its position
    assert len(np.unique(img.reshape(-1, 3), axis=0)) >= 4  # background, tiles, exit, ninja
