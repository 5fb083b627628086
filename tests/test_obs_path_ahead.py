"""path_ahead: the path's rise over a mine and the drop under it across a pit, by hand; the
executor and the env agree on a corpus level."""

from __future__ import annotations

import numpy as np
from mapkit import build_map, floor_row
from replaykit import executor_and_env

from torchrl_bc.obs import ObservationBuilder, ObservationConfig
from torchrl_bc.obs.objective import N_AHEAD
from torchrl_bc.resources import SAMPLE_CORPUS
from torchrl_bc.sim import Simulator

CFG = ObservationConfig(modalities=("game_state", "objective", "path_ahead", "action_mask"),
                        frame_skip=1)
# Spawn on a floor (world y 312) at x 180; the switch 240 px right, its door 90 px further.
EXIT = [(3, 85, 50, 0, 0), (4, 70, 50, 0, 0)]


def _ahead(map_data: bytes) -> np.ndarray:
    """[rise 48, drop 48, rise 96, drop 96] in px at the spawn."""
    obs = ObservationBuilder(CFG).observe(Simulator(map_data))["path_ahead"]
    assert obs.shape == (N_AHEAD,) and obs.dtype == np.float32
    return obs * 96.0


def test_plain_floor_reads_flat() -> None:
    assert _ahead(build_map(floor_row(12), spawn=(30, 50), records=EXIT)).tolist() == [0.0] * 4


def test_pit_ahead_is_a_drop() -> None:
    """A 3-tile hole in the floor 36 px ahead: the path runs across it, the ground under it
    falls to the bottom of the level (clipped at 96 px), and the path does not rise."""
    floor = {k: v for k, v in floor_row(12).items() if k[0] not in (8, 9, 10)}
    rise48, drop48, rise96, drop96 = _ahead(build_map(floor, spawn=(30, 50), records=EXIT))
    assert rise48 == rise96 == 0.0
    assert drop48 == drop96 == 96.0
    # Past the hole the floor is flat again: standing beyond it reads flat.
    beyond = _ahead(build_map(floor, spawn=(48, 50), records=EXIT))
    assert beyond.tolist() == [0.0] * 4


def test_mine_ahead_is_a_rise() -> None:
    """A toggle mine on the floor 30 px ahead: the path bends over it (the field gives mines a
    berth) and comes down again, so the waypoint 96 px on is level but the rise is not 0."""
    mine = (1, 35, 51, 0, 0)
    rise48, drop48, rise96, drop96 = _ahead(build_map(floor_row(12), spawn=(30, 50),
                                                      records=[*EXIT, mine]))
    assert rise48 >= 12.0 and rise96 >= rise48
    assert drop48 == drop96 == 0.0
    obj = ObservationBuilder(CFG).observe(Simulator(build_map(
        floor_row(12), spawn=(30, 50), records=[*EXIT, mine])))["objective"]
    assert abs(obj[7]) < 0.15  # the far waypoint, 96 px on, is all but level: no hint there


def test_tables_come_with_the_modality() -> None:
    """A config without path_ahead builds no tables; one with it, on a level the first has
    already cached, still gets them (the level cache keys on the modality)."""
    from torchrl_bc.obs import clear_level_cache

    clear_level_cache()
    level = build_map(floor_row(12), spawn=(30, 50), records=[*EXIT, (1, 35, 51, 0, 0)])
    objective_only = ObservationConfig(modalities=("game_state", "objective", "action_mask"),
                                       frame_skip=1)
    plain = ObservationBuilder(objective_only)
    plain.bind(Simulator(level))
    assert plain._level.objective.ahead is None
    assert _ahead(level)[0] >= 12.0


def test_executor_matches_env() -> None:
    ep, env_obs = executor_and_env(SAMPLE_CORPUS / "mines-4.replay", CFG)
    for t, obs in enumerate(env_obs):
        assert obs["path_ahead"].tobytes() == ep.obs["path_ahead"][t].tobytes(), t
    assert ep.obs["path_ahead"][:, 0].any()  # the mines bend the path somewhere
