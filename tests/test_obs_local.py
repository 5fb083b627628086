"""local_view / objective: hand-checked values, executor == env, compatibility, SB3 round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mapkit import build_map, floor_row
from replaykit import executor_and_env

from torchrl_bc.obs import GAME_STATE_FEATURES, ObservationBuilder, ObservationConfig
from torchrl_bc.obs.raster import TILE_VALUE, VALUES
from torchrl_bc.resources import SAMPLE_CORPUS
from torchrl_bc.sim import Simulator

ROOT = Path(__file__).parents[1]
CORPUS = SAMPLE_CORPUS
# Floor under the spawn (world y 312), switch 90 px right of the ninja, exit 240 px further.
SWITCH_RIGHT = build_map(floor_row(12), spawn=(30, 50),
                         records=[(3, 70, 50, 0, 0), (4, 45, 50, 0, 0)])
LOCAL = ObservationConfig(modalities=("game_state", "local_view", "objective", "action_mask"),
                          frame_skip=1)


def test_local_view_and_objective_by_hand() -> None:
    sim = Simulator(SWITCH_RIGHT)
    builder = ObservationBuilder(LOCAL)
    obs = builder.observe(sim)
    view, obj = obs["local_view"], obs["objective"]
    assert view.shape == (2, 16, 16) and view.dtype == np.uint8
    assert obj.shape == (8,) and obj.dtype == np.float32
    # The ninja (world 180, ~302) sits in cell 8 of 12 px cells; the floor (y 312..335)
    # fills rows 9 and 10 (world y 312..335) and nothing else is solid.
    assert (view[0, 9:11] == TILE_VALUE).all() and (view[0, :7] == 0).all()
    assert (view[0, 11:] == 0).all()
    # The switch at world x 270 lies 90 px right: 7.5 cells, drawn in column 15.
    assert view[0, 7:9, 15].tolist() == [VALUES["exit_switch"]] * 2
    # Objective: the switch (stage 0), straight to the right, about 75 px of path away.
    assert obj[0] == 0.0
    assert 0.06 < obj[1] < 0.09
    assert obj[2] == pytest.approx(1.0, abs=1e-3) and obj[3] == pytest.approx(0.0, abs=0.05)
    assert obj[4] > 0.9 and obj[6] > 0.9  # both waypoints ahead to the right
    # Channel 1: cells right of the ninja are closer to the switch (< 128), left ones farther.
    row = view[1, 8]
    assert row[12] < 128 < row[4] and (np.diff(row.astype(int)) <= 0).all()
    # Below the floor is out of reach: no finite distance.
    assert (view[1, 11:] == 0).all()


def test_objective_distance_falls_while_running_to_the_switch() -> None:
    sim = Simulator(SWITCH_RIGHT)
    builder = ObservationBuilder(LOCAL)
    dists, stages = [], []
    for _ in range(80):
        o = builder.observe(sim)["objective"]
        dists.append(float(o[1]))
        stages.append(int(o[0]))
        sim.tick_input(2)  # hold right
    first_hit = stages.index(1)
    before = np.array(dists[:first_hit])
    assert 10 < first_hit < 60 and before[0] > 0.06
    # Strictly non-increasing while running at the switch, and it falls by most of the way.
    assert (np.diff(before) <= 1e-6).all() and before[-1] < 0.02
    # After the hit the objective is the exit door, further right: distance jumps up.
    assert dists[first_hit] > 0.15 and stages[-1] == 1


def test_state_zero_blanks_elapsed_only() -> None:
    names = [n for n, _ in GAME_STATE_FEATURES]
    plain = ObservationConfig(modalities=("game_state",))
    zero = ObservationConfig(modalities=("game_state",), state_zero=["elapsed"])
    sims = [Simulator(SWITCH_RIGHT) for _ in range(2)]
    for s in sims:
        for _ in range(30):
            s.tick_input(2)
    a = ObservationBuilder(plain).observe(sims[0])["game_state"]
    b = ObservationBuilder(zero).observe(sims[1])["game_state"]
    i = names.index("elapsed")
    assert a[i] > 0 and b[i] == 0
    assert np.array_equal(np.delete(a, i), np.delete(b, i))
    with pytest.raises(ValueError, match="unknown game_state features"):
        ObservationConfig(state_zero=("tick",))


def test_default_signature_unchanged_by_new_fields() -> None:
    """Datasets and checkpoints made before the new modalities keep their signature."""
    sig = ObservationConfig().signature()
    assert "local_size" not in sig and "state_zero" not in sig
    assert "local_view" not in sig["modalities"]
    assert LOCAL.signature()["local_size"] == 16


@pytest.mark.parametrize("name", ["corridor-0", "switch_first-5"])
def test_executor_matches_env(name: str) -> None:
    ep, env_obs = executor_and_env(CORPUS / f"{name}.replay", LOCAL)
    stages = set()
    for t, obs in enumerate(env_obs):
        for key in ("local_view", "objective", "game_state"):
            assert obs[key].tobytes() == ep.obs[key][t].tobytes(), (key, t)
        stages.add(int(obs["objective"][0]))
    assert stages == {0, 1} and ep.won


def test_export_round_trip(tmp_path: Path) -> None:
    """A BC run over the new modalities exports strictly and SB3 computes the same policy."""
    import yaml
    from stable_baselines3 import PPO

    from torchrl_bc.models import actor_extractor
    from torchrl_bc.sb3 import export_checkpoint, load_export, make_sb3_env, make_sb3_policy_kwargs
    from torchrl_bc.train import load_config, pretrain
    from torchrl_bc.train.checkpoint import load_policy

    levels = tmp_path / "levels"
    levels.mkdir()
    for name in ("corridor-0", "switch_first-5"):
        (levels / f"{name}.replay").write_bytes((CORPUS / f"{name}.replay").read_bytes())
    cfg_path = tmp_path / "local.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "architecture": {"preset": "tiny", "modalities": ["game_state", "local_view",
                                                          "objective"],
                         "local_channels": [4, 8], "local_dim": 8, "objective_hidden": [8],
                         "objective_dim": 8},
        "observation": {"frame_skip": 1, "state_zero": ["elapsed"],
                        "modalities": ["game_state", "local_view", "objective", "action_mask"]},
        "data": {"replays": [str(levels)], "val_fraction": 0.0, "mirror": False,
                 "cache_dir": str(tmp_path / "cache")},
        "train": {"epochs": 1, "batch_size": 32, "max_steps_per_epoch": 4,
                  "early_stop": {"metric": "train/nll", "patience": 0}},
        "eval": {"train_levels": 1},
        "logging": {"wandb": "disabled", "plots": False},
    }))
    ckpt = pretrain(load_config(cfg_path), tmp_path / "run", verbose=False)
    export_checkpoint(ckpt, tmp_path / "export.pt")
    export = load_export(tmp_path / "export.pt")
    env = make_sb3_env(export, [levels / "corridor-0.replay"], n_envs=1)
    assert set(env.observation_space.spaces) == {"game_state", "local_view", "objective",
                                                 "action_mask"}
    model = PPO("MultiInputPolicy", env, policy_kwargs=make_sb3_policy_kwargs(export),
                n_steps=32, batch_size=32, device="cpu")
    model.policy.load_state_dict(export["policy_state_dict"], strict=True)
    obs = env.reset()
    actor, _, _ = load_policy(ckpt)
    actor.eval()
    policy = model.policy
    policy.set_training_mode(False)
    with torch.no_grad():
        obs_t, _ = policy.obs_to_tensor(obs)
        sb3 = policy.get_distribution(obs_t).distribution.probs
        feats = actor_extractor(actor)({k: torch.as_tensor(v) for k, v in obs.items()})
        assert feats.shape == (1, 16)
        from tensordict import TensorDict

        td = TensorDict({k: torch.as_tensor(v) for k, v in obs.items()}, batch_size=[1])
        td["action_mask"] = td["action_mask"].bool()
        bc = actor.get_dist(td).probs
    assert (sb3 - bc).abs().max().item() < 1e-5
    env.close()


def _path_from(obj, x: float, y: float, stage: int = 0) -> list[tuple[float, float]]:
    """Node centres along the field's path from (x, y), 4 lattice hops apart."""
    from torchrl_bc.obs.distance import NY, DistanceMap
    from torchrl_bc.obs.objective import node_centre

    ix, iy = DistanceMap.node_of(x, y)
    node, out = ix * NY + iy, []
    while (nxt := int(obj.near[stage][node])) != node:
        node = nxt
        out.append(node_centre(node))
    return out


def test_hazard_radius_keeps_the_path_further_from_mines() -> None:
    """A mine on the floor between the ninja and the switch: the path rises over it, by at
    least ``hazard_radius``; the signature names the radius only when it is not the default."""
    level = build_map(floor_row(12), spawn=(30, 50),
                      records=[(1, 50, 52, 0, 0), (3, 90, 50, 0, 0), (4, 70, 50, 0, 0)])
    gaps = {}
    for radius in (16.0, 24.0):
        cfg = ObservationConfig(modalities=LOCAL.modalities, frame_skip=1, hazard_radius=radius)
        sim = Simulator(level)
        builder = ObservationBuilder(cfg)
        builder.observe(sim)
        mx, my = (float(v) for v in sim.ef[sim.ei[:, 0] == 1][0, :2])
        path = _path_from(builder._level.objective, 180.0, 300.0)
        gaps[radius] = min(np.hypot(px - mx, py - my) for px, py in path)
        assert path[-1][0] > mx + 90  # it reaches the switch (x 420), beyond the mine
    assert 16 <= gaps[16.0] < 24 <= gaps[24.0]
    assert "hazard_radius" not in LOCAL.signature()
    wide = ObservationConfig(modalities=LOCAL.modalities, hazard_radius=24)
    assert wide.signature()["hazard_radius"] == 24.0
    assert "hazard_radius" not in ObservationConfig(hazard_radius=24).signature()  # no fields
    for bad in (-1, 101, "24", True):
        with pytest.raises(ValueError, match="hazard_radius"):
            ObservationConfig(hazard_radius=bad)
