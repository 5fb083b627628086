"""surroundings and hazards: hand-checked rays and hazards, and the replay executor equal to the
env."""

from __future__ import annotations

import numpy as np
import pytest
from mapkit import build_map, floor_row
from replaykit import executor_and_env

from torchrl_bc.models import ObsSpec
from torchrl_bc.models.config import ArchitectureConfig
from torchrl_bc.models.extractor import MultimodalExtractor
from torchrl_bc.obs import ObservationBuilder, ObservationConfig
from torchrl_bc.obs.surroundings import (
    HAZARD_REACH,
    N_HAZARD_VALUES,
    N_RAYS,
    N_SURROUNDINGS,
    RAY_REACH,
)
from torchrl_bc.resources import SAMPLE_CORPUS
from torchrl_bc.sim import Simulator

CFG = ObservationConfig(modalities=("game_state", "objective", "surroundings", "action_mask"),
                        frame_skip=1)
RIGHT, DOWN, LEFT, UP = 0, N_RAYS // 4, N_RAYS // 2, 3 * N_RAYS // 4
# Floor under the spawn (world y 312; the ninja stands at about (180, 302)); an exit far right.
FLOOR = floor_row(12)
EXIT = [(3, 150, 50, 0, 0), (4, 140, 50, 0, 0)]  # a door, then its switch


def _surroundings(map_data: bytes) -> np.ndarray:
    obs = ObservationBuilder(CFG).observe(Simulator(map_data))["surroundings"]
    assert obs.shape == (N_SURROUNDINGS,) and obs.dtype == np.float32
    return obs


def test_rays_by_hand() -> None:
    open_floor = _surroundings(build_map(FLOOR, spawn=(30, 50), records=EXIT))
    rays = open_floor[:N_RAYS]
    # About 10 px of air under the ninja's centre (its radius), none above, left or right.
    assert 0.05 < rays[DOWN] < 0.15
    assert rays[UP] == rays[LEFT] == rays[RIGHT] == 1.0
    assert ((rays >= 0) & (rays <= 1)).all()
    # A wall one tile thick at tile column 10 (world x 240..264): 60 px right of the centre.
    wall = {(9, y): 1 for y in range(0, 12)}
    walled = _surroundings(build_map(FLOOR | wall, spawn=(30, 50), records=EXIT))[:N_RAYS]
    assert walled[RIGHT] * RAY_REACH == pytest.approx(57.0, abs=3.0)
    assert walled[LEFT] == walled[UP] == 1.0 and walled[DOWN] == rays[DOWN]
    # Rays that leave the level read its border as solid: a ninja in the top-left corner.
    corner = _surroundings(build_map(floor_row(1), spawn=(6, 4), records=EXIT))[:N_RAYS]
    assert corner[UP] < 0.3 and corner[LEFT] < 0.3


def test_hazards_nearest_first_and_safe_mines_left_out() -> None:
    mine_near = (1, 40, 50, 0, 0)  # deadly toggle mine, 60 px right of the ninja
    mine_far = (1, 20, 40, 0, 0)  # deadly, 60 px left and 60 px up
    safe = (21, 32, 50, 0, 0)  # a mine in its safe state, 12 px right: not a hazard
    beyond = (1, 70, 50, 0, 0)  # 240 px right: out of reach
    obs = _surroundings(build_map(FLOOR, spawn=(30, 50),
                                  records=[*EXIT, beyond, mine_far, safe, mine_near]))
    hz = obs[N_RAYS:].reshape(3, 3)
    ninja_y = 300  # spawn row 50 * 6 px (the ninja rests within 3 px of it)
    assert hz[0, 2] == 1.0 and hz[0, 0] * HAZARD_REACH == pytest.approx(60.0, abs=1e-3)
    assert hz[1, 2] == 1.0 and hz[1, 0] * HAZARD_REACH == pytest.approx(-60.0, abs=1e-3)
    assert hz[1, 1] * HAZARD_REACH == pytest.approx(240 - ninja_y, abs=3.0)
    assert hz[2].tolist() == [0.0, 0.0, 0.0]  # the safe one and the distant one left out


@pytest.mark.parametrize("name", ["mines-4", "switch_first-5"])
def test_executor_matches_env(name: str) -> None:
    ep, env_obs = executor_and_env(SAMPLE_CORPUS / f"{name}.replay", CFG)
    seen = set()
    for t, obs in enumerate(env_obs):
        assert obs["surroundings"].tobytes() == ep.obs["surroundings"][t].tobytes(), t
        seen.add(obs["surroundings"].tobytes())
    assert ep.won and len(seen) > ep.n_steps // 4  # it changes as the ninja moves


def test_hazards_are_the_surroundings_without_rays() -> None:
    """``hazards`` is surroundings' hazard part alone, step for step, in the executor and the
    env alike, and it sees the corpus level's mines."""
    both = ObservationConfig(modalities=("game_state", "surroundings", "hazards", "action_mask"),
                             frame_skip=1)
    ep, env_obs = executor_and_env(SAMPLE_CORPUS / "mines-4.replay", both)
    assert ep.obs["hazards"].shape == (ep.n_steps, N_HAZARD_VALUES)
    for t, obs in enumerate(env_obs):
        assert obs["hazards"].tobytes() == ep.obs["hazards"][t].tobytes(), t
        assert obs["hazards"].tobytes() == obs["surroundings"][N_RAYS:].tobytes(), t
    assert ep.obs["hazards"][:, 2].any()  # a mine within reach at some step


def test_hazards_encoder_reads_sin_cos_octaves() -> None:
    """A mine 10 px nearer calls for another action: the hazards encoder gets game_state's
    sin/cos octaves (``architecture.state_fourier``), the objective's encoder does not."""
    cfg = ArchitectureConfig(modalities=("game_state", "objective", "hazards"),
                             state_fourier=4)
    spec = ObsSpec.from_observation_config(ObservationConfig(
        modalities=("game_state", "objective", "hazards", "action_mask")))
    ext = MultimodalExtractor(cfg, spec)
    first = {name: next(m for m in enc.modules() if hasattr(m, "in_features")).in_features
             for name, enc in ext.encoders.items()}
    assert first["hazards"] == N_HAZARD_VALUES * (1 + 2 * 4)
    assert first["objective"] == 8


def test_closed_locked_doors_stop_rays_and_open_ones_do_not() -> None:
    """A locked door 60 px right of the ninja reads as a wall until its switch is hit; a
    closed regular door (it opens as the ninja reaches it) and an open trap door never do."""
    def door(kind: int) -> tuple[int, ...]:  # vertical, at world (240, 300); switch 24 px left
        return (kind, 40, 50, 0, 0, 0, 26, 50, 0) if kind != 5 else (kind, 40, 50, 0, 0)

    builder = ObservationBuilder(CFG)
    sim = Simulator(build_map(FLOOR, spawn=(30, 50), records=[*EXIT, door(6)]))
    locked = builder.observe(sim)["surroundings"][:N_RAYS]
    assert locked[RIGHT] * RAY_REACH == pytest.approx(57.0, abs=3.0)
    assert locked[LEFT] == 1.0
    (gate,) = [e for e in sim.entities if e.kind == 6]
    for _ in range(30):  # walk left onto the switch
        sim.tick(-1, 0)
        if not gate.closed:
            break
    assert not gate.closed
    assert builder.observe(sim)["surroundings"][RIGHT] == 1.0
    for kind in (5, 8):
        rays = _surroundings(build_map(FLOOR, spawn=(30, 50), records=[*EXIT, door(kind)]))
        assert rays[RIGHT] == 1.0, kind


def test_signature_names_the_surroundings_version_only_when_on() -> None:
    assert CFG.signature()["surroundings_version"] == 2
    assert "surroundings_version" not in ObservationConfig().signature()
