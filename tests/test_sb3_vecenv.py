"""``NppSB3VecEnv`` (make_sb3_env's default) equals ``make_vec_env(PaddedNppEnv)`` step for step,
and trains with SB3's ``PPO`` and sb3-contrib's ``MaskablePPO``."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from torchrl_bc.obs import ObservationConfig
from torchrl_bc.resources import SAMPLE_CORPUS
from torchrl_bc.sb3 import (
    export_checkpoint,
    load_export,
    load_into,
    make_sb3_env,
    make_sb3_policy_kwargs,
    resolve_levels,
)
from torchrl_bc.sb3.vec_env import NppSB3VecEnv

ROOT = Path(__file__).parents[1]
CORPUS = SAMPLE_CORPUS
STATE_ONLY = ("game_state", "action_mask")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def corpus():
    return resolve_levels(CORPUS)


@pytest.fixture(scope="module")
def levels(corpus):
    return corpus[:10]


def _same_steps(a: VecEnv, b: VecEnv, steps: int, seed: int = 0) -> int:
    """Step both with the same random actions; assert equal observations (bytes and dtype),
    rewards, dones and end-of-episode infos. Returns the number of episodes that ended."""
    oa, ob = a.reset(), b.reset()
    rng = np.random.default_rng(seed)
    ended = 0
    for t in range(steps):
        assert list(oa) == list(ob)
        for k in oa:
            assert oa[k].dtype == ob[k].dtype and oa[k].tobytes() == ob[k].tobytes(), (t, k)
        act = rng.integers(6, size=a.num_envs)
        oa, ra, da, ia = a.step(act)
        ob, rb, db, ib = b.step(act)
        assert ra.dtype == rb.dtype and ra.tobytes() == rb.tobytes(), t
        assert np.array_equal(da, db), t
        for x, y in zip(ia, ib, strict=True):
            assert ("terminal_observation" in x) == ("terminal_observation" in y)
            if "terminal_observation" not in x:
                continue
            ended += 1
            for k, v in y["terminal_observation"].items():
                assert np.array_equal(x["terminal_observation"][k], v), k
            for k in ("TimeLimit.truncated", "is_success", "level", "won", "died", "frame",
                      "ticks", "level_hash"):
                assert x[k] == y[k], k
            ex, ey = dict(x["episode"]), dict(y["episode"])
            ex.pop("t"), ey.pop("t")
            assert ex == ey
    return ended


@pytest.mark.parametrize(("frame_skip", "tick_factor", "order"),
                         [(1, 3.0, "random"), (4, 0.7, "random"), (4, 1.0, "cycle")])
def test_state_only_equals_per_env_path(levels, frame_skip, tick_factor, order):
    cfg = ObservationConfig(modalities=STATE_ONLY, frame_skip=frame_skip)
    kw = dict(n_envs=6, seed=5, max_ticks=200, tick_factor=tick_factor, order=order)
    old = make_sb3_env(cfg, levels, vec_env_cls=DummyVecEnv, **kw)
    new = make_sb3_env(cfg, levels, **kw)
    assert isinstance(new, NppSB3VecEnv)
    assert new.observation_space == old.observation_space
    assert _same_steps(new, old, 400 if frame_skip == 1 else 250) >= 6
    assert [lv.name for lv in new.get_attr("level")] == [lv.name for lv in old.get_attr("level")]


def test_all_modalities_equal_per_env_path(levels):
    """Frames and the padded graph go through the per-slot builders; same arrays."""
    cfg = ObservationConfig(frame_skip=4)
    kw = dict(n_envs=3, seed=1, max_ticks=60)
    old = make_sb3_env(cfg, levels[:4], vec_env_cls=DummyVecEnv, **kw)
    new = make_sb3_env(cfg, levels[:4], **kw)
    assert new.observation_space == old.observation_space
    assert _same_steps(new, old, 40) >= 3


def test_memory_modalities_equal_per_env_path(levels):
    """``progress`` (episode memory) restarts with every episode of every slot."""
    cfg = ObservationConfig(modalities=("game_state", "objective", "surroundings", "progress",
                                        "action_mask"), frame_skip=1)
    kw = dict(n_envs=3, seed=2, max_ticks=80)
    old = make_sb3_env(cfg, levels[:4], vec_env_cls=DummyVecEnv, **kw)
    new = make_sb3_env(cfg, levels[:4], **kw)
    assert new.observation_space == old.observation_space
    assert _same_steps(new, old, 200) >= 3


def test_levels_switch_to_larger_ones(levels):
    """A slot that loads a level with more entities than any before widens the arrays."""
    sizes = sorted(levels, key=lambda lv: len(lv.map_data))
    cfg = ObservationConfig(modalities=STATE_ONLY, frame_skip=4)
    kw = dict(n_envs=2, seed=0, max_ticks=40, order="cycle")
    old = make_sb3_env(cfg, sizes, vec_env_cls=DummyVecEnv, **kw)
    new = make_sb3_env(cfg, sizes, **kw)
    assert _same_steps(new, old, 12 * len(sizes), seed=2) >= len(sizes)
    assert new.slots.ei.shape[1] >= max(t.n_ent for t in new.slots._templates.values())


def _mlp_export(tmp_path: Path, overrides: tuple[str, ...] = ()) -> dict:
    """An untrained mlp-config BC checkpoint, exported (the layout is what matters here)."""
    from torchrl_bc.models import ObsSpec
    from torchrl_bc.train import load_config
    from torchrl_bc.train.checkpoint import FORMAT, save_checkpoint, versions
    from torchrl_bc.train.factories import make_actor

    run = load_config(ROOT / "configs" / "mlp.yaml", [
        "architecture={preset: mlp, state_hidden: [32], state_dim: 16, features_dim: 16, "
        "head_hidden: [16]}", *overrides])
    actor = make_actor(run)
    save_checkpoint(tmp_path / "mlp.pt", {
        "format": FORMAT, "model": actor.state_dict(), "epoch": 0, "config": run.to_dict(),
        "obs_signature": run.observation.signature(),
        "obs_spec": ObsSpec.from_observation_config(run.observation).to_dict(),
        "frame_skip": run.observation.frame_skip, "versions": versions()})
    export_checkpoint(tmp_path / "mlp.pt", tmp_path / "mlp_sb3.pt")
    return load_export(tmp_path / "mlp_sb3.pt")


def test_ppo_and_maskable_ppo_train_on_it(levels, tmp_path):
    from sb3_contrib import MaskablePPO
    from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported

    export = _mlp_export(tmp_path)
    env = make_sb3_env(export, levels, n_envs=8, seed=0, max_ticks=40, tick_factor=0.2)
    assert is_masking_supported(env)
    assert get_action_masks(env).shape == (8, 6) and env.action_masks().all()
    for algo in (PPO, MaskablePPO):
        model = algo("MultiInputPolicy", env, policy_kwargs=make_sb3_policy_kwargs(export),
                     n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
        load_into(model, export)  # checks each env's observation config via get_attr
        before = {k: v.clone() for k, v in model.policy.state_dict().items()}
        model.learn(512)
        assert model.num_timesteps >= 512
        after = model.policy.state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before if "action_net" in k)
        assert len(model.ep_info_buffer) > 0  # Monitor-style episode stats reached SB3
        assert {"r", "l", "t"} <= set(model.ep_info_buffer[0])


def test_seeding_and_errors(levels):
    cfg = ObservationConfig(modalities=STATE_ONLY, frame_skip=1)
    a = make_sb3_env(cfg, levels, n_envs=4, seed=7)
    b = make_sb3_env(cfg, levels, n_envs=4, seed=7)
    c = make_sb3_env(cfg, levels, n_envs=4, seed=8)
    names = [[lv.name for lv in env.get_attr("level")] for env in (a, b, c) if env.reset()]
    assert names[0] == names[1] != names[2]
    a.step_async(np.array([0, 1, 2, 6]))
    with pytest.raises(ValueError, match=re.escape("actions must be in 0..5")):
        a.step_wait()
    with pytest.raises(ValueError, match="order"):
        NppSB3VecEnv(levels, cfg, order="sorted")
    assert a.env_is_wrapped(__import__("stable_baselines3").common.monitor.Monitor) == [True] * 4


# the generalist's vector inputs plus hazards: encoders with and without sin/cos octaves
_VECTOR_INPUTS = ("observation.modalities=[game_state, objective, hazards, action_mask]",
                  "architecture.modalities=[game_state, objective, hazards]",
                  "architecture.state_fourier=2")


@pytest.mark.parametrize("overrides", [(), _VECTOR_INPUTS], ids=["mlp", "vector_inputs"])
def test_evaluate_sb3_matches_bc_evaluator(corpus, levels, tmp_path, overrides):
    """The exported policy, played by ``evaluate_sb3``, does what the BC evaluator does."""
    from torchrl_bc.sb3.load import build_sb3_policy
    from torchrl_bc.sb3.vec_env import evaluate_sb3
    from torchrl_bc.train.checkpoint import load_policy
    from torchrl_bc.train.evaluate import rollout_levels

    export = _mlp_export(tmp_path, overrides)
    policy = build_sb3_policy(export)
    policy.load_state_dict(export["policy_state_dict"], strict=True)
    policy.set_training_mode(False)
    actor, cfg, _ = load_policy(tmp_path / "mlp.pt")
    mines = [lv for lv in corpus if lv.name.startswith("mines-")][:4]
    assert len(mines) == 4
    played = [*levels[:6], *mines]  # levels with mines, for hazards
    got = evaluate_sb3(policy, played, cfg.observation, tick_factor=0.5, max_ticks=300,
                       batch=4)
    want, _ = rollout_levels(actor, played, cfg.observation, tick_factor=0.5, max_ticks=300,
                             batch=4)
    assert [(r.name, r.won, r.died, r.ticks, r.cap) for r in got] == \
        [(r.name, r.won, r.died, r.ticks, r.cap) for r in want]


def test_finetune_script(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("finetune_ppo",
                                                  ROOT / "scripts" / "finetune_ppo.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    _mlp_export(tmp_path)
    out = tmp_path / "ft"
    assert mod.main([str(tmp_path / "mlp.pt"), "--levels", str(CORPUS), "--timesteps", "256",
                     "--n-envs", "4", "--n-steps", "32", "--batch-size", "64",
                     "--eval-every", "128", "--max-ticks", "200", "--no-progress",
                     "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("success_rate: ")
    tuned = load_export(out / "finetuned_sb3.pt")
    assert set(tuned["policy_state_dict"]) == set(load_export(tmp_path / "mlp_sb3.pt")
                                                  ["policy_state_dict"])
    import json

    report = json.loads((out / "eval.json").read_text())
    history = report["history"]
    assert [h["step"] for h in history] == [0, 128, 256]  # each policy evaluated once
    assert report["selected"] in history and report["val_levels"]
    assert mod.main([str(tmp_path / "missing.pt"), "--levels", str(CORPUS)]) == 1
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert mod.main([str(tmp_path / "junk.pt"), "--levels", str(CORPUS)]) == 1
    err = capsys.readouterr().err
    assert "junk.pt is not a readable checkpoint or export" in err and len(err.splitlines()) == 1
    # the shaped reward reads `objective`, which this state-only policy lacks; bad weights
    ckpt = str(tmp_path / "mlp.pt")
    assert mod.main([ckpt, "--levels", str(CORPUS), "--progress-reward", "0.001"]) == 1
    err = capsys.readouterr().err
    assert "reads the `objective` observation" in err and len(err.splitlines()) == 1
    assert mod.main([ckpt, "--levels", str(CORPUS), "--death-penalty", "-1"]) == 1
    assert "shaping.death_penalty must be finite and >= 0" in capsys.readouterr().err


def test_parallel_stepping_equals_serial(levels):
    """``parallel=True`` (the simulator's multi-threaded ``step_batch``) steps the same way."""
    cfg = ObservationConfig(modalities=STATE_ONLY, frame_skip=4)
    kw = dict(n_envs=5, tick_factor=0.8, max_ticks=200)
    serial = NppSB3VecEnv(levels, cfg, **kw)
    parallel = NppSB3VecEnv(levels, cfg, parallel=True, **kw)
    serial.seed(3)
    parallel.seed(3)
    assert _same_steps(parallel, serial, 150) >= 5


GENERALIST = ("game_state", "objective", "last_input", "action_mask")


def test_generalist_modalities_are_built_in_bulk(levels):
    """``objective`` and ``last_input`` (with ``state_zero``) are observed for all slots at
    once, byte for byte what the per-env builders give."""
    cfg = ObservationConfig(modalities=GENERALIST, frame_skip=1, state_zero=("x", "y", "elapsed"))
    kw = dict(n_envs=6, seed=3, max_ticks=150, tick_factor=3.0)
    old = make_sb3_env(cfg, levels, vec_env_cls=DummyVecEnv, **kw)
    new = make_sb3_env(cfg, levels, **kw)
    assert new.slots.bulk and new.observation_space == old.observation_space
    assert _same_steps(new, old, 300) >= 6


def test_bulk_objective_in_both_stages_and_without_an_exit(corpus):
    """Slots whose door is open (stage 1) and a level with no exit (all zeros) read what a
    builder bound to the same simulator reads."""
    from mapkit import build_map, floor_row

    from torchrl_bc.env.slots import LevelSlots
    from torchrl_bc.obs import ObservationBuilder
    from torchrl_bc.sim import layout as L

    no_exit = build_map(floor_row(14), spawn=(20, 58))
    cfg = ObservationConfig(modalities=GENERALIST, frame_skip=1, state_zero=("elapsed",))
    levels = [lv.map_data for lv in corpus[:6]] + [no_exit]
    slots = LevelSlots(levels, len(levels), cfg)
    assert slots.bulk
    for i in range(len(levels)):
        slots.load(i, i)
    rng = np.random.default_rng(0)
    stages = set()
    for t in range(60):
        slots.step(rng.integers(6, size=slots.n), 1)
        if t == 30:  # open the doors of half the slots: their objective becomes the door
            for i in range(0, slots.n, 2):
                if slots.exit[i] >= 0:
                    slots.ef[i, slots.exit[i], L.F_FLAG] = 1.0
        got = slots.observe()
        for i in range(slots.n):
            want = ObservationBuilder(cfg).observe(slots.sims[i])
            assert list(want) == list(got)
            for k, v in want.items():
                assert v.dtype == got[k].dtype and v.tobytes() == got[k][i].tobytes(), (t, i, k)
            stages.add(float(got["objective"][i, 0]))
    assert not got["objective"][-1].any()  # the level without an exit
    assert stages == {0.0, 1.0}
