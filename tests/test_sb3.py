"""SB3 hand-off: exact BC -> PPO transfer, refused loads, end to end, MaskablePPO, warm-up."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv
from tensordict import TensorDict

from torchrl_bc.models import ArchitectureConfig, preset
from torchrl_bc.obs import ObservationConfig
from torchrl_bc.resources import SAMPLE_CORPUS
from torchrl_bc.sb3 import (
    ExportMismatch,
    export_checkpoint,
    load_export,
    load_into,
    make_sb3_env,
    make_sb3_policy_kwargs,
    resolve_levels,
    write_export,
)
from torchrl_bc.sb3.critic import value_operator_from_export
from torchrl_bc.sb3.env import PaddedNppEnv
from torchrl_bc.sb3.spaces import GraphPadding, level_key, observation_space

ROOT = Path(__file__).parents[1]
CORPUS = SAMPLE_CORPUS
LEVEL_FILES = ("corridor-0", "gaps-1", "switch_first-5")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def level_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("levels")
    for name in LEVEL_FILES:
        shutil.copy(CORPUS / f"{name}.replay", d)
    return d


@pytest.fixture(scope="module")
def levels(level_dir):
    return resolve_levels(level_dir)


@pytest.fixture(scope="module")
def bc_ckpt(tmp_path_factory, level_dir) -> Path:
    """A real (tiny, few-step) BC run, so the checkpoint format is the trainer's own."""
    from torchrl_bc.train import load_config, pretrain

    out = tmp_path_factory.mktemp("bc")
    cfg = load_config(ROOT / "configs" / "tiny.yaml", [
        f"data.replays=[{str(level_dir)!r}]", "train.epochs=1", "train.max_steps_per_epoch=8",
        "logging.wandb=disabled", "logging.plots=false", "data.val_fraction=0.0",
        "data.mirror=false", "eval.train_levels=1", f"data.cache_dir={str(out / 'cache')!r}"])
    return pretrain(cfg, out / "run", verbose=False)


@pytest.fixture(scope="module")
def export_path(bc_ckpt, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("export") / "tiny.pt"
    export_checkpoint(bc_ckpt, path)
    return path


def _observations(levels, config: ObservationConfig, padding: GraphPadding, steps: int = 6):
    """Real NppEnv observations on several levels: padded (SB3) and raw (BC) side by side."""
    env = PaddedNppEnv(levels, config, padding, order="cycle")
    rng = np.random.default_rng(0)
    padded, raw, graphs = [], [], []
    for i in range(len(levels)):
        obs, _ = env.reset(seed=i)
        for _ in range(steps):
            padded.append(obs)
            raw.append(env.env.builder.observe(env.env.sim))
            graphs.append(i)
            obs, _, term, trunc, _ = env.step(int(rng.integers(6)))
            if term or trunc:
                break
    statics = []
    for lv in levels:
        env.reset(options={"level": lv})
        statics.append(env.env.static_graph)
    return padded, raw, graphs, statics


def _torchrl_batch(raw, graphs) -> TensorDict:
    m = max(1, max(o["graph_entity_state"].shape[0] for o in raw))
    return TensorDict({
        "player_frame": torch.from_numpy(np.stack([o["player_frame"] for o in raw])),
        "global_view": torch.from_numpy(np.stack([o["global_view"] for o in raw])),
        "game_state": torch.from_numpy(np.stack([o["game_state"] for o in raw])),
        "action_mask": torch.from_numpy(np.stack([o["action_mask"] for o in raw])),
        "graph_level": torch.tensor(graphs)[:, None],
        "graph_ninja_node": torch.from_numpy(
            np.stack([o["graph_ninja_node"] for o in raw]).astype(np.int64)),
        "graph_entity_state": torch.from_numpy(np.stack([
            np.pad(o["graph_entity_state"], ((0, m - o["graph_entity_state"].shape[0]), (0, 0)))
            for o in raw])),
    }, batch_size=[len(raw)])


def _stack(obs_list):
    return {k: np.stack([o[k] for o in obs_list]) for k in obs_list[0]}


# -- the exact hand-off -------------------------------------------------------------------------
def test_exact_handoff(bc_ckpt, export_path, levels):
    from torchrl_bc.train.checkpoint import load_policy

    export = load_export(export_path)
    assert export["critic"] == "fresh" and export["frame_skip"] == 4
    env = make_sb3_env(export, levels)
    model = PPO("MultiInputPolicy", env, policy_kwargs=make_sb3_policy_kwargs(export),
                n_steps=64, batch_size=32, seed=3, device="cpu")
    model.policy.load_state_dict(export["policy_state_dict"], strict=True)
    assert env.observation_space == model.policy.observation_space

    cfg, pad = ObservationConfig(), GraphPadding.from_dict(export["graph_padding"])
    padded, raw, graphs, statics = _observations(levels, cfg, pad)
    assert len(set(graphs)) == len(levels) and len(raw) >= 12
    policy = model.policy
    policy.set_training_mode(False)
    with torch.no_grad():
        obs_t, _ = policy.obs_to_tensor(_stack(padded))
        sb3_probs = policy.get_distribution(obs_t).distribution.probs
        sb3_values = policy.predict_values(obs_t).squeeze(-1)

    actor, _, _ = load_policy(bc_ckpt)
    actor.eval()
    from torchrl_bc.models import actor_extractor

    extractor = actor_extractor(actor)
    extractor.set_level_graphs(statics)
    td = _torchrl_batch(raw, graphs)
    with torch.no_grad():
        bc_probs = actor.get_dist(td.clone()).probs
        critic = value_operator_from_export(export)
        actor_extractor(critic).set_level_graphs(statics)
        bc_values = critic(td.clone())["state_value"].squeeze(-1)
    assert (sb3_probs - bc_probs).abs().max().item() < 1e-5
    assert (sb3_values - bc_values).abs().max().item() < 1e-5
    # Distinct actions are likely (not a degenerate all-equal distribution).
    assert sb3_probs.std(0).max() > 0

    # Training mode (no cache, fresh packing) gives the same distribution.
    policy.set_training_mode(True)
    with torch.no_grad():
        again = policy.get_distribution(obs_t).distribution.probs
    assert (again - bc_probs).abs().max().item() < 1e-5
    env.close()


def test_maskable_ppo_strict_load_and_learn(export_path, levels):
    from sb3_contrib import MaskablePPO

    export = load_export(export_path)
    env = make_sb3_env(export, levels)
    model = MaskablePPO("MultiInputPolicy", env, policy_kwargs=make_sb3_policy_kwargs(export),
                        n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.policy.load_state_dict(export["policy_state_dict"], strict=True)
    load_into(model, export)
    model.learn(32)
    env.close()


@pytest.mark.cuda
def test_cuda_fine_tune_loads_the_same_policy_and_learns(export_path, levels, exact_float32):
    """PPO and MaskablePPO on ``device="cuda"`` take the export strictly and act as on CPU."""
    from sb3_contrib import MaskablePPO

    export = load_export(export_path)
    env = make_sb3_env(export, levels, n_envs=2)
    probs = {}
    for device in ("cpu", "cuda"):
        model = PPO("MultiInputPolicy", env, policy_kwargs=make_sb3_policy_kwargs(export),
                    n_steps=32, batch_size=32, n_epochs=1, seed=0, device=device)
        load_into(model, export)
        model.policy.set_training_mode(False)
        obs_t, _ = model.policy.obs_to_tensor(env.reset())
        with torch.no_grad():
            probs[device] = model.policy.get_distribution(obs_t).distribution.probs.cpu()
    torch.testing.assert_close(probs["cuda"], probs["cpu"], atol=2e-5, rtol=1e-4)
    model = MaskablePPO("MultiInputPolicy", env, policy_kwargs=make_sb3_policy_kwargs(export),
                        n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cuda")
    load_into(model, export)
    model.learn(64)
    assert model.num_timesteps >= 64
    assert all(p.device.type == "cuda" and torch.isfinite(p).all().item()
               for p in model.policy.parameters())
    env.close()


def test_separate_critic_extractor(bc_ckpt, tmp_path, levels):
    export = export_checkpoint(bc_ckpt, tmp_path / "sep.pt", share_features_extractor=False)
    export = load_export(tmp_path / "sep.pt")
    kw = make_sb3_policy_kwargs(export)
    assert kw["share_features_extractor"] is False
    env = make_sb3_env(export, levels)
    model = PPO("MultiInputPolicy", env, policy_kwargs=kw, n_steps=32, batch_size=32,
                device="cpu")
    model.policy.load_state_dict(export["policy_state_dict"], strict=True)
    vf = model.policy.vf_features_extractor.extractor.state_dict()
    pi = model.policy.pi_features_extractor.extractor.state_dict()
    assert all(torch.equal(vf[k], pi[k]) for k in pi)
    env.close()


# -- refused loads ------------------------------------------------------------------------------
def test_refuses_other_architecture(export_path, levels):
    export = load_export(export_path)
    other = replace(preset("tiny"), state_dim=12)
    env = make_sb3_env(export, levels)
    model = PPO("MultiInputPolicy", env, policy_kwargs=make_sb3_policy_kwargs(other),
                n_steps=32, batch_size=32, device="cpu")
    with pytest.raises(ExportMismatch, match=r"architecture.state_dim: 8 .* vs 12"):
        load_into(model, export)
    with pytest.raises(RuntimeError):
        model.policy.load_state_dict(export["policy_state_dict"], strict=True)
    env.close()


def test_refuses_other_observation_spec(export_path, levels):
    export = load_export(export_path)
    kw = make_sb3_policy_kwargs(export)
    # Same shapes, different frame_skip: only the env's config can tell.
    env = make_sb3_env(ObservationConfig(frame_skip=2), levels)
    model = PPO("MultiInputPolicy", env, policy_kwargs=kw, n_steps=32, batch_size=32,
                device="cpu")
    with pytest.raises(ExportMismatch, match=r"env\[0\].observation.frame_skip: 4 .* vs 2"):
        load_into(model, export)
    env.close()
    # Different player frame: the observation space differs and is named.
    small = ObservationConfig(player_frame_size=64)
    env = make_sb3_env(small, levels)
    model = PPO("MultiInputPolicy", env,
                policy_kwargs=make_sb3_policy_kwargs(preset("tiny"), small), n_steps=32,
                batch_size=32, device="cpu")
    with pytest.raises(ExportMismatch, match="observation key 'player_frame'"):
        load_into(model, export)
    env.close()


def test_refuses_tampered_export(export_path, tmp_path):
    good = torch.load(export_path, weights_only=True)

    def tampered(edit) -> Path:
        data = {**good, "policy_state_dict": dict(good["policy_state_dict"])}
        edit(data)
        path = tmp_path / "bad.pt"
        torch.save(data, path)
        return path

    def rename(d):
        sd = d["policy_state_dict"]
        sd["action_net.weights"] = sd.pop("action_net.weight")

    with pytest.raises(ExportMismatch, match=re.escape("missing key 'action_net.weight'")):
        load_export(tampered(rename))
    with pytest.raises(ExportMismatch, match="shape"):
        load_export(tampered(lambda d: d["policy_state_dict"].update(
            {"value_net.weight": torch.zeros(1, 3)})))
    with pytest.raises(ExportMismatch, match="frame_skip: 8"):
        load_export(tampered(lambda d: d.update(frame_skip=8)))
    with pytest.raises(ExportMismatch, match=re.escape("obs_signature.obs_version")):
        load_export(tampered(lambda d: d.update(
            obs_signature={**d["obs_signature"], "obs_version": "0"})))
    with pytest.raises(ExportMismatch, match="lacks key"):
        load_export(tampered(lambda d: d.pop("versions")))
    with pytest.raises(ExportMismatch, match=re.escape("versions.sim")):
        load_export(tampered(lambda d: d.update(versions={**d["versions"], "sim": "0"})))
    with pytest.raises(ExportMismatch, match="not a torchrl_bc SB3 export"):
        load_export(tampered(lambda d: d.update(format="other")))


def test_bc_checkpoint_is_not_an_export(bc_ckpt):
    with pytest.raises(ExportMismatch, match="not a torchrl_bc SB3 export"):
        load_export(bc_ckpt)


# -- end to end ---------------------------------------------------------------------------------
def test_end_to_end_ppo_learns(export_path, levels):
    export = load_export(export_path)
    env = make_sb3_env(export, levels, n_envs=2)  # NppSB3VecEnv
    model = PPO("MultiInputPolicy", env, policy_kwargs=make_sb3_policy_kwargs(export),
                n_steps=64, batch_size=64, n_epochs=2, seed=0, device="cpu")
    load_into(model, export)
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    model.learn(256)
    after = model.policy.state_dict()
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert any(k.startswith("action_net") for k in moved)
    assert any(k.startswith("features_extractor.extractor.encoders.graph") for k in moved)
    assert model.num_timesteps >= 256
    env.close()


def test_kl_pull_logs_to_its_folder_and_leaves_no_temp_folder(export_path, levels, tmp_path,
                                                               monkeypatch):
    """``BCRegularisedPPO`` runs its KL pass, writes PPO's statistics to ``log_dir`` and,
    without one, makes none of SB3's ``SB3-<date>`` folders in the temp dir."""
    import csv
    import tempfile

    from torchrl_bc.sb3 import build_sb3_policy
    from torchrl_bc.sb3.ppo import BCRegularisedPPO

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    export = load_export(export_path)
    bc = build_sb3_policy(export)
    bc.load_state_dict(export["policy_state_dict"], strict=True)
    kw = dict(policy_kwargs=make_sb3_policy_kwargs(export), n_steps=64, batch_size=64,
              n_epochs=1, seed=0, device="cpu")
    for log_dir in (tmp_path / "log", None):
        env = make_sb3_env(export, levels, n_envs=2)
        model = BCRegularisedPPO("MultiInputPolicy", env, bc_policy=bc, reg_coef=1.0,
                                 reg_updates=10, log_dir=log_dir, **kw)
        load_into(model, export)
        model.learn(256)
        env.close()
    rows = list(csv.DictReader((tmp_path / "log" / "progress.csv").open()))
    kls = [float(r["train/bc_kl"]) for r in rows if r.get("train/bc_kl")]
    assert len(kls) >= 1 and all(k >= 0 for k in kls)
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.parametrize("device", [
    "cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_fine_tune_from_export_on_a_device(export_path, levels, tmp_path, device):
    """``from_export(device=...)`` (``finetune_ppo.py --device``): PPO, its BC weights and the
    frozen BC policy of the KL pull all sit on that device, and the pull runs there."""
    import csv

    from torchrl_bc.sb3.ppo import BCRegularisedPPO

    export = load_export(export_path)
    env = make_sb3_env(export, levels, n_envs=2)
    model = BCRegularisedPPO.from_export(export, env, kl_coef=1.0, kl_updates=5,
                                         log_dir=tmp_path, device=device, n_steps=64,
                                         batch_size=64, n_epochs=1, seed=0)
    want = {k: v.to(device) for k, v in export["policy_state_dict"].items()}
    got = model.policy.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)  # the BC weights, on the device
    params = [*model.policy.parameters(), *model.bc_policy.parameters()]
    assert {p.device.type for p in params} == {device}
    model.learn(256)  # SB3 writes a rollout's statistics when the next one starts
    env.close()
    rows = list(csv.DictReader((tmp_path / "progress.csv").open()))
    kls = [float(r["train/bc_kl"]) for r in rows if r.get("train/bc_kl")]
    assert kls and all(k >= 0 for k in kls)


def test_critic_warmup(export_path, levels, tmp_path):
    from torchrl_bc.sb3 import warmup_critic

    export = load_export(export_path)
    warm = warmup_critic(export, levels, steps=400, epochs=30, n_envs=4, max_ticks=120)
    assert warm["critic"] == "warmed" and warm["critic_info"]["episodes"] >= 1
    assert warm["critic_info"]["mse_after"] <= warm["critic_info"]["mse_before"]
    changed = [k for k in export["policy_state_dict"]
               if not torch.equal(export["policy_state_dict"][k], warm["policy_state_dict"][k])]
    assert changed and all(k.startswith(("value_net", "mlp_extractor.value_net")) for k in changed)
    write_export(warm, tmp_path / "warm.pt")
    assert load_export(tmp_path / "warm.pt")["critic"] == "warmed"


def test_bc_validation_levels_travel_to_fine_tuning(bc_ckpt, level_dir, levels, tmp_path):
    """The checkpoint records the levels BC held out (content hashes); the export carries them
    and ``split_validation`` takes exactly those out of PPO's levels."""
    from torchrl_bc.sb3 import split_validation
    from torchrl_bc.train import load_config, pretrain

    cfg = load_config(ROOT / "configs" / "tiny.yaml", [
        f"data.replays=[{str(level_dir)!r}]", "train.epochs=1", "train.max_steps_per_epoch=4",
        "logging.wandb=disabled", "logging.plots=false", "data.val_fraction=0.34",
        "data.mirror=false", "eval.train_levels=0", f"data.cache_dir={str(tmp_path / 'c')!r}"])
    ckpt = pretrain(cfg, tmp_path / "run", verbose=False)
    val = torch.load(ckpt, weights_only=True)["val_levels"]
    hashes = {lv.content_hash: lv.name for lv in levels}
    assert len(val) == 1 and val[0] in hashes
    assert export_checkpoint(ckpt)["source"]["val_levels"] == val
    rest, held = split_validation(levels, val)
    assert [lv.name for lv in held] == [hashes[val[0]]] and len(rest) == 2
    # BC without validation levels records an empty list (not None: "none recorded")
    assert export_checkpoint(bc_ckpt)["source"]["val_levels"] == []


def test_cli_export_and_warmup(bc_ckpt, level_dir, tmp_path, capsys):
    from torchrl_bc.cli import main

    out = tmp_path / "cli.pt"
    assert main(["export", str(bc_ckpt), "--out", str(out)]) == 0
    assert load_export(out)["critic"] == "fresh"
    assert main(["warmup-critic", str(out), "--levels", str(level_dir), "--steps", "200",
                 "--n-envs", "2", "--max-ticks", "120"]) == 0
    assert load_export(out)["critic"] == "warmed"
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:  # a missing path is an argparse error
        main(["export", str(tmp_path / "missing.pt"), "--out", str(out)])
    assert exc.value.code == 2
    assert "does not exist" in capsys.readouterr().err


# -- spaces and padding -------------------------------------------------------------------------
def test_padding_holds_every_shipped_level():
    cfg = ObservationConfig()
    pad = GraphPadding.for_config(cfg)
    env = PaddedNppEnv(resolve_levels(CORPUS), cfg, pad, order="cycle")
    space = observation_space(cfg, pad)
    for _ in range(len(env.levels)):
        obs, _ = env.reset()
        assert space.contains(obs)
        n, e, m = obs["graph_sizes"]
        g = env.env.static_graph
        assert (n, e, m) == (len(g.node_type), g.edge_index.shape[1], g.n_entities)
        assert np.array_equal(obs["graph_edge_index"][:, :e], g.edge_index)


def test_level_key_is_exact_in_float32():
    key = level_key("some level hash")
    assert np.array_equal(key.astype(np.float32).astype(np.int64), key.astype(np.int64))
    assert not np.array_equal(key, level_key("another level hash"))


def test_policy_kwargs_from_architecture_match_bc_heads():
    arch = ArchitectureConfig.from_dict({"preset": "tiny", "head_hidden": [16, 8]})
    kw = make_sb3_policy_kwargs(arch)
    assert kw["net_arch"] == {"pi": [16, 8], "vf": [16]}
    assert kw["normalize_images"] is False
    assert kw["features_extractor_kwargs"]["architecture"]["head_hidden"] == [16, 8]


def test_non_graph_architecture(bc_ckpt, tmp_path, levels):
    """An MLP-only policy exports and loads strictly with a graph-free observation space."""
    from torchrl_bc.train.checkpoint import load_checkpoint, save_checkpoint
    from torchrl_bc.train.factories import make_actor

    ckpt = load_checkpoint(bc_ckpt)
    cfg = dict(ckpt["config"])
    cfg["architecture"] = preset("mlp").to_dict()
    cfg["observation"] = {**cfg["observation"], "modalities": ["game_state", "action_mask"]}
    from torchrl_bc.train import RunConfig

    run = RunConfig.from_dict(cfg)
    actor = make_actor(run)
    save_checkpoint(tmp_path / "mlp.pt", {**ckpt, "config": run.to_dict(),
                                          "obs_signature": run.observation.signature(),
                                          "model": actor.state_dict()})
    export_checkpoint(tmp_path / "mlp.pt", tmp_path / "mlp_export.pt")
    export = load_export(tmp_path / "mlp_export.pt")
    env = make_sb3_env(export, levels, n_envs=1)
    assert set(env.observation_space.spaces) == {"game_state", "action_mask"}
    model = PPO("MultiInputPolicy", env, policy_kwargs=make_sb3_policy_kwargs(export),
                n_steps=32, batch_size=32, device="cpu")
    model.policy.load_state_dict(export["policy_state_dict"], strict=True)
    env.close()


def test_dummy_and_subproc_envs_agree(export_path, levels):
    from stable_baselines3.common.vec_env import SubprocVecEnv

    export = load_export(export_path)
    a = make_sb3_env(export, levels, n_envs=2, seed=5, vec_env_cls=DummyVecEnv)
    b = make_sb3_env(export, levels, n_envs=2, seed=5, vec_env_cls=SubprocVecEnv)
    assert isinstance(b, SubprocVecEnv)
    oa, ob = a.reset(), b.reset()
    for _ in range(3):
        for k in oa:
            assert np.array_equal(oa[k], ob[k]), k
        oa, *_ = a.step(np.array([1, 4]))
        ob, *_ = b.step(np.array([1, 4]))
    a.close()
    b.close()
