"""``demo_style``: recorded (human) demos carry 1, planner demos and every environment 0;
``data.human_share``: the share of batches drawn from the recorded demos."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from configkit import tiny_config

from torchrl_bc.env import NppEnv
from torchrl_bc.levels.corpus import MANIFEST
from torchrl_bc.obs import ObservationConfig
from torchrl_bc.resources import SAMPLE_CORPUS

HUMAN = ("corridor-0", "switch_first-5", "gaps-1")  # copied into a plain folder: "recorded"
PLANNER = ("gaps-17", "corridor-8")  # copied into a make-corpus folder (its manifest)


def _folders(tmp_path: Path) -> tuple[Path, Path]:
    mine, generated = tmp_path / "mine", tmp_path / "corpus"
    for folder, names in ((mine, HUMAN), (generated, PLANNER)):
        folder.mkdir()
        for name in names:
            shutil.copy(SAMPLE_CORPUS / f"{name}.replay", folder / f"{name}.replay")
    shutil.copy(SAMPLE_CORPUS / MANIFEST, generated / MANIFEST)
    return mine, generated


def _config(tmp_path: Path, replays: list[Path], rounds: int = 0):
    return tiny_config(tmp_path, replays, extra=("demo_style",), rounds=rounds)


def test_batches_mark_recorded_demos_1_and_planner_demos_0(tmp_path: Path) -> None:
    from torchrl_bc.data.manifest import row_path
    from torchrl_bc.train.factories import corpus_folders, make_dataset

    mine, generated = _folders(tmp_path)
    cfg = _config(tmp_path, [mine, generated])
    data = make_dataset(cfg, tmp_path / "run", verbose=False)
    assert corpus_folders(cfg, data) == [generated]
    human = np.array([row_path(ep).parent == mine for ep in data.manifest["episodes"]])
    assert human.sum() == len(HUMAN) and (~human).sum() == len(PLANNER)
    np.testing.assert_array_equal(data.human_demo, human.astype(np.float32))
    # Every training step carries its episode's flag (what the builder stored was 0).
    rows = data.rows["train"]
    batch = data.gather(rows, keys=data.keys)
    episode = data.steps["episode"][rows].long()
    want = torch.from_numpy(human.astype(np.float32))[episode][:, None]
    assert torch.equal(batch["demo_style"], want)
    assert 0 < float(batch["demo_style"].mean()) < 1
    assert float(data.steps["demo_style"].abs().max()) == 0.0
    # A prepared dataset given as data.replays keeps its episodes' source folders.
    prepared = dataclasses.replace(cfg, data=dataclasses.replace(
        cfg.data, replays=(str(data.path),)))
    reopened = make_dataset(prepared, tmp_path / "run2", verbose=False)
    np.testing.assert_array_equal(reopened.human_demo, data.human_demo)


def test_batches_refuse_demo_style_before_the_demos_are_marked(tmp_path: Path) -> None:
    from torchrl_bc.data import BCDataset
    from torchrl_bc.train.factories import make_dataset

    mine, generated = _folders(tmp_path)
    data = make_dataset(_config(tmp_path, [mine, generated]), tmp_path / "run", verbose=False)
    unmarked = BCDataset(data.path)
    with pytest.raises(ValueError, match="no call to mark_planner_demos"):
        unmarked.sample_batch(4)


def test_environments_observe_the_planner_style_and_the_flag_reaches_the_policy() -> None:
    from torchrl_bc.models import ArchitectureConfig, MultimodalExtractor, ObsSpec

    obs_cfg = ObservationConfig(modalities=("game_state", "action_mask", "demo_style"))
    env = NppEnv(SAMPLE_CORPUS / "corridor-0.replay", obs_cfg)
    obs, _ = env.reset(seed=0)
    assert obs["demo_style"].dtype == np.float32 and obs["demo_style"].tolist() == [0.0]
    obs, *_ = env.step(2)
    assert obs["demo_style"].tolist() == [0.0]
    arch = ArchitectureConfig(modalities=("game_state", "demo_style"), state_hidden=(8,),
                              state_dim=8, features_dim=8)
    torch.manual_seed(0)
    ext = MultimodalExtractor(arch, ObsSpec.from_observation_config(obs_cfg))
    state = torch.from_numpy(obs["game_state"])[None]
    planner = ext({"game_state": state, "demo_style": torch.zeros(1, 1)})
    human = ext({"game_state": state, "demo_style": torch.ones(1, 1)})
    assert not torch.equal(planner, human)


def test_dagger_labels_are_planner_style_in_a_mixed_batch(tmp_path: Path) -> None:
    """DAgger's aggregate comes from environment observations (flag 0) and mixes with the
    demos, whose recorded ones keep their 1."""
    from torchrl_bc.train import pretrain
    from torchrl_bc.train.checkpoint import read_torch_file

    mine, generated = _folders(tmp_path)
    cfg = _config(tmp_path, [mine, generated], rounds=1)
    torch.manual_seed(0)
    pretrain(cfg, tmp_path / "run", verbose=False)
    rounds = json.loads((tmp_path / "run" / "dagger.json").read_text())
    assert rounds[0]["labels"] > 0
    state = read_torch_file(tmp_path / "run" / "dagger_state.pt")
    style = state["aggregate"]["demo_style"]
    assert style.shape == (rounds[0]["labels"], 1) and float(style.abs().max()) == 0.0
    # SB3 takes the policy as it is: the env observes the flag (0) and the logits match.
    from stable_baselines3 import PPO
    from tensordict import TensorDict

    from torchrl_bc.sb3 import export_checkpoint, load_export, make_sb3_env, make_sb3_policy_kwargs
    from torchrl_bc.train.checkpoint import load_policy

    export_checkpoint(tmp_path / "run" / "best.pt", tmp_path / "export.pt")
    export = load_export(tmp_path / "export.pt")
    env = make_sb3_env(export, [mine / "corridor-0.replay"], n_envs=1)
    assert "demo_style" in env.observation_space.spaces
    model = PPO("MultiInputPolicy", env, policy_kwargs=make_sb3_policy_kwargs(export),
                n_steps=32, batch_size=32, device="cpu")
    model.policy.load_state_dict(export["policy_state_dict"], strict=True)
    obs = env.reset()
    assert obs["demo_style"].tolist() == [[0.0]]
    actor, _, _ = load_policy(tmp_path / "run" / "best.pt")
    actor.eval()
    model.policy.set_training_mode(False)
    with torch.no_grad():
        obs_t, _ = model.policy.obs_to_tensor(obs)
        sb3 = model.policy.get_distribution(obs_t).distribution.probs
        td = TensorDict({k: torch.as_tensor(v) for k, v in obs.items()}, batch_size=[1])
        td["action_mask"] = td["action_mask"].bool()
        bc = actor.get_dist(td).probs
    assert (sb3 - bc).abs().max().item() < 1e-5
    env.close()


def _human_fraction(data, n_batches: int = 40) -> float:
    """The share of human steps in training batches (their ``demo_style`` flags)."""
    batches = list(data.train_batches(0, 256, 0, cap=n_batches))
    return float(torch.cat([b["demo_style"] for b in batches]).mean())


def test_human_share_draws_that_share_of_the_batches_from_recorded_demos(
        tmp_path: Path) -> None:
    from torchrl_bc.train.factories import make_dataset

    mine, generated = _folders(tmp_path)
    cfg = tiny_config(tmp_path, [mine, generated], extra=("demo_style",), human_share=0.2)
    data = make_dataset(cfg, tmp_path / "run", verbose=False)
    assert data.human_share == 0.2
    human = data.human_demo[data._np["episode"][data.rows["train"].numpy()]] > 0
    by_count = float(human.mean())
    assert abs(by_count - 0.2) > 0.3  # the steps alone are far from the share asked
    assert abs(_human_fraction(data) - 0.2) < 0.03
    assert data.share_human_demos(0.0) == (int(human.sum()), int((~human).sum()))
    assert abs(_human_fraction(data) - by_count) < 0.03  # 0: every step alike again


def test_human_share_is_checked_and_needs_both_kinds_of_demo(tmp_path: Path) -> None:
    from torchrl_bc.train import ConfigError
    from torchrl_bc.train.factories import make_dataset

    mine, _ = _folders(tmp_path)
    for bad in (1.0, -0.1):
        with pytest.raises(ConfigError, match=r"data\.human_share must be in \[0, 1\)"):
            tiny_config(tmp_path, [mine], human_share=bad)
    with pytest.raises(ValueError, match=r"needs both human and planner demos.* 0 planner"):
        make_dataset(tiny_config(tmp_path, [mine], human_share=0.5), tmp_path / "run",
                     verbose=False)
