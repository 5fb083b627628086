"""Configs build on ``configs/base.yaml``; shipped data is found from any working directory.

``base:`` names a file relative to the config's own folder; the two are deep-merged (the
config's own value wins; lists and preset names are replaced whole), unknown keys are still
refused by name, and a base chain that comes back to a file in it is refused. The shipped corpus
is package data: configs name it ``package:sample_corpus`` and :func:`replay_source` finds it
through ``importlib.resources``, whatever the working directory.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import pytest

from torchrl_bc.commands.prepare import read_config
from torchrl_bc.configfile import ConfigError, deep_merge, read_config_file
from torchrl_bc.data.source import data_dir_problem
from torchrl_bc.resources import (
    PACKAGE_PREFIX,
    SAMPLE_CORPUS,
    SAMPLE_CORPUS_SOURCE,
    default_replay_dirs,
    packaged,
    replay_source,
)
from torchrl_bc.train.config import load_config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"

#: The shipped configs as written before base.yaml existed (commit fe4a0e2), comments dropped.
#: Each must still expand to the same RunConfig; the one intended change is data.replays, which
#: named the checkout's data/sample_corpus from the working directory and now names the corpus
#: shipped in the package.
BEFORE: dict[str, dict] = {
    "cnn": {
        "architecture": "cnn",
        "observation": {"frame_skip": 4, "modalities": ["player_frame", "global_view", "game_state",
            "action_mask"]},
        "data": {"replays": ["data/sample_corpus"], "val_fraction": 0.15, "balance_actions": True,
            "mirror": True},
        "train": {"epochs": 30, "batch_size": 256, "lr": 0.0003, "weight_decay": 0.0001, "warmup":
            500, "grad_clip": 1.0, "entropy_coef": 0.001, "label_smoothing": 0.0, "early_stop":
            {"metric": "val/closed_loop_success", "patience": 5}, "eval_every": 2, "seed": 0},
        "logging": {"wandb": "offline", "project": "torchrl-bc"},
    },
    "gat": {
        "architecture": "gat",
        "observation": {"frame_skip": 4, "modalities": ["player_frame", "global_view", "game_state",
            "action_mask", "graph"]},
        "data": {"replays": ["data/sample_corpus"], "val_fraction": 0.15, "balance_actions": True,
            "levels_per_batch": 4, "mirror": True},
        "train": {"epochs": 30, "batch_size": 256, "lr": 0.0003, "weight_decay": 0.0001, "warmup":
            500, "grad_clip": 1.0, "entropy_coef": 0.001, "label_smoothing": 0.0, "early_stop":
            {"metric": "val/closed_loop_success", "patience": 5}, "eval_every": 2, "seed": 0},
        "logging": {"wandb": "offline", "project": "torchrl-bc"},
    },
    "hgt": {
        "architecture": "hgt",
        "observation": {"frame_skip": 4, "modalities": ["player_frame", "global_view", "game_state",
            "action_mask", "graph"]},
        "data": {"replays": ["data/sample_corpus"], "val_fraction": 0.15, "balance_actions": True,
            "levels_per_batch": 4, "mirror": True},
        "train": {"epochs": 30, "batch_size": 256, "lr": 0.0003, "weight_decay": 0.0001, "warmup":
            500, "grad_clip": 1.0, "entropy_coef": 0.001, "label_smoothing": 0.0, "early_stop":
            {"metric": "val/closed_loop_success", "patience": 5}, "eval_every": 2, "seed": 0},
        "logging": {"wandb": "offline", "project": "torchrl-bc"},
    },
    "mlp": {
        "architecture": {"preset": "mlp", "state_hidden": [128, 128], "state_dim": 128,
            "state_fourier": 8, "features_dim": 128, "head_hidden": [128]},
        "observation": {"frame_skip": 1, "modalities": ["game_state", "action_mask"]},
        "data": {"replays": ["data/sample_corpus"], "val_fraction": 0.15, "balance_actions": False,
            "mirror": False, "trim_idle_start": True, "skip_idle_start": False},
        "train": {"epochs": 80, "batch_size": 256, "lr": 0.001, "weight_decay": 0.0, "warmup": 200,
            "grad_clip": 1.0, "entropy_coef": 0.001, "label_smoothing": 0.0,
            "early_stop": {"metric": "val/closed_loop_success", "patience": 0}, "eval_every": 20,
            "seed": 0},
        "logging": {"wandb": "offline", "project": "torchrl-bc"},
    },
    "generalist": {
        "architecture": {"preset": "mlp", "modalities": ["game_state", "objective"],
            "state_hidden": [256, 256], "state_dim": 256, "state_fourier": 8,
            "features_dim": 256, "head_hidden": [256], "value_hidden": [128]},
        "observation": {"frame_skip": 1, "modalities": ["game_state", "objective",
            "action_mask"], "state_zero": ["x", "y", "elapsed"]},
        "data": {"replays": ["data/sample_corpus"], "generated": 1000, "generated_seed": 0,
            "val_fraction": 0.1, "balance_actions": False, "mirror": True, "trim_idle_start": True,
            "skip_idle_start": True},
        "train": {"epochs": 10, "max_steps_per_epoch": 800, "batch_size": 256, "lr": 0.001,
            "weight_decay": 0.0, "warmup": 200, "grad_clip": 1.0, "entropy_coef": 0.001,
            "label_smoothing": 0.0,
            "early_stop": {"metric": "val/closed_loop_success", "patience": 0}, "eval_every": 2,
            "seed": 0},
        "eval": {"tick_factor": 2.0, "max_ticks": 1200, "val_levels": 60, "train_levels": 16,
            "sampled": False},
        "dagger": {"rounds": 10, "average_last": 5, "levels_from": "replays", "levels": 64,
            "label_every": 30, "queries_per_level": 6, "horizon": 30, "max_expansions": 3000,
            "steps": 600, "mix": 0.5, "lr": 0.0003, "max_ticks": 1200, "tick_factor": 2.0,
            "workers": 0},
        "logging": {"wandb": "offline", "project": "torchrl-bc"},
    },
    "tiny": {
        "architecture": "tiny",
        "observation": {"frame_skip": 4, "modalities": ["player_frame", "global_view", "game_state",
            "action_mask", "graph"]},
        "data": {"replays": ["data/sample_corpus"], "val_fraction": 0.15, "balance_actions": True,
            "mirror": True},
        "train": {"epochs": 2, "batch_size": 32, "lr": 0.001, "weight_decay": 0.0, "warmup": 0,
            "grad_clip": 1.0, "entropy_coef": 0.0, "label_smoothing": 0.0, "early_stop": {"metric":
            "val/nll", "patience": 0}, "eval_every": 1, "seed": 0},
        "logging": {"wandb": "offline", "project": "torchrl-bc"},
    },
}


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_merged_config_equals_the_config_before_base_yaml(name: str) -> None:
    before = {k: dict(v) if isinstance(v, dict) else v for k, v in BEFORE[name].items()}
    assert before["data"]["replays"] == ["data/sample_corpus"]
    before["data"] = {**before["data"], "replays": [SAMPLE_CORPUS_SOURCE]}
    now = load_config(CONFIGS / f"{name}.yaml")
    assert now == load_config(raw=before)
    assert now.to_dict() == load_config(raw=before).to_dict()


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_every_config_names_the_base(name: str) -> None:
    text = (CONFIGS / f"{name}.yaml").read_text()
    assert "\nbase: base.yaml\n" in text
    assert "replays:" not in text  # said once, in base.yaml


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def test_deep_merge_child_wins_and_replaces_lists() -> None:
    base = {"a": {"x": 1, "y": [1, 2], "z": {"k": 1, "m": 2}}, "b": "preset", "c": 3}
    child = {"a": {"y": [3], "z": {"m": 5}}, "b": {"preset": "mlp"}, "d": 4}
    assert deep_merge(base, child) == {"a": {"x": 1, "y": [3], "z": {"k": 1, "m": 5}},
                                       "b": {"preset": "mlp"}, "c": 3, "d": 4}
    assert base["a"]["z"] == {"k": 1, "m": 2}  # inputs untouched


def test_base_is_relative_to_the_config_not_the_cwd(tmp_path, monkeypatch) -> None:
    _write(tmp_path / "shared", "common.yaml",
           "train: {epochs: 7, lr: 2.0e-3, early_stop: {metric: val/nll, patience: 3}}\n"
           "logging: {wandb: disabled}\n")
    cfg = _write(tmp_path / "cfgs", "run.yaml",
                 "base: ../shared/common.yaml\narchitecture: tiny\n"
                 "train: {epochs: 3, early_stop: {patience: 0}}\n")
    monkeypatch.chdir(tmp_path / "shared")  # a cwd where "../shared/common.yaml" is wrong
    run = load_config(cfg)
    assert (run.train.epochs, run.train.lr) == (3, 2.0e-3)
    assert (run.train.early_stop.metric, run.train.early_stop.patience) == ("val/nll", 0)
    assert run.logging.wandb == "disabled"


def test_base_chain_and_overrides(tmp_path) -> None:
    _write(tmp_path, "a.yaml", "train: {epochs: 5, seed: 1}\n")
    _write(tmp_path, "b.yaml", "base: a.yaml\ntrain: {seed: 2}\n")
    cfg = _write(tmp_path, "c.yaml", "base: b.yaml\narchitecture: tiny\n")
    run = load_config(cfg, ["train.seed=9"])
    assert (run.train.epochs, run.train.seed) == (5, 9)
    assert "base" not in read_config_file(cfg)


@pytest.mark.parametrize(("files", "start", "message"), [
    ({"a.yaml": "base: a.yaml\n"}, "a.yaml", "makes a cycle"),
    ({"a.yaml": "base: b.yaml\n", "b.yaml": "base: a.yaml\narchitecture: tiny\n"}, "a.yaml",
     "makes a cycle"),
    ({"a.yaml": "base: nope.yaml\narchitecture: tiny\n"}, "a.yaml", "'nope.yaml'.*does not exist"),
    ({"a.yaml": "base: [x.yaml]\n"}, "a.yaml", "base must name one config file"),
    ({"a.yaml": "base: b.yaml\n", "b.yaml": "- 1\n"}, "a.yaml",
     "b.yaml: a config must be a mapping"),
    ({"a.yaml": "base: b.yaml\n", "b.yaml": "x: [\n"}, "a.yaml", "b.yaml is not valid YAML"),
])
def test_bad_base_is_one_error_naming_the_file(tmp_path, files, start, message) -> None:
    for name, text in files.items():
        _write(tmp_path, name, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(tmp_path / start)
    assert str(tmp_path) in str(info.value)


def test_unknown_key_in_a_base_is_named(tmp_path) -> None:
    _write(tmp_path, "base.yaml", "train: {lrr: 1.0e-3}\n")
    cfg = _write(tmp_path, "run.yaml", "base: base.yaml\narchitecture: tiny\n")
    with pytest.raises(ConfigError, match=r"train\.lrr"):
        load_config(cfg)


def test_prepare_reads_the_merged_config(tmp_path) -> None:
    _write(tmp_path, "base.yaml", "observation: {frame_skip: 2}\ndata: {mirror: true}\n")
    cfg = _write(tmp_path, "run.yaml", "base: base.yaml\nobservation: {modalities: [game_state]}\n")
    obs, data = read_config(cfg)
    assert (obs.frame_skip, obs.modalities) == (2, ("game_state",))
    assert data.mirror is True and data.replays == ()  # none given: the shipped corpus
    assert read_config(CONFIGS / "gat.yaml")[1].replays == (SAMPLE_CORPUS_SOURCE,)


def test_the_shipped_corpus_is_package_data() -> None:
    found = Path(os.fspath(resources.files("torchrl_bc") / "sample_corpus"))
    assert SAMPLE_CORPUS == packaged("sample_corpus") == replay_source(SAMPLE_CORPUS_SOURCE)
    assert SAMPLE_CORPUS == found and SAMPLE_CORPUS.is_relative_to(REPO / "torchrl_bc")
    assert len(list(SAMPLE_CORPUS.glob("*.replay"))) == 64
    assert (SAMPLE_CORPUS / "manifest.json").is_file()
    # Declared as package data, so a non-editable install carries it.
    import tomllib

    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    globs = meta["tool"]["setuptools"]["package-data"]["torchrl_bc"]
    assert all(any(p.match(g) for g in globs) for p in SAMPLE_CORPUS.iterdir()
               if not p.name.startswith("."))


def test_replay_source_keeps_user_paths_and_refuses_unknown_names() -> None:
    assert replay_source("my/replays") == Path("my/replays")  # the user's path, as given
    assert replay_source(Path("/abs/dir")) == Path("/abs/dir")
    with pytest.raises(ValueError, match="package:nope: no such packaged data"):
        replay_source(PACKAGE_PREFIX + "nope")
    assert "no such packaged data" in data_dir_problem(PACKAGE_PREFIX + "nope")


def test_configured_corpus_resolves_from_any_cwd(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no configs/ and no data/ here
    run = load_config(CONFIGS / "tiny.yaml")
    assert run.data.replays == (SAMPLE_CORPUS_SOURCE,)
    assert data_dir_problem(SAMPLE_CORPUS_SOURCE) is None
    assert [replay_source(p) for p in run.data.replays] == [SAMPLE_CORPUS]
    assert default_replay_dirs() == [SAMPLE_CORPUS]


def test_tiny_trains_from_another_cwd(tmp_path, monkeypatch) -> None:
    """From a folder with no configs/ or data/: the config's ``package:sample_corpus`` is the data
    (all 64 levels), and the run lands where ``out`` says, relative to that folder."""
    from torchrl_bc.train.checkpoint import load_checkpoint
    from torchrl_bc.train.pipeline import pretrain

    work = tmp_path / "elsewhere"
    work.mkdir()
    monkeypatch.chdir(work)
    cfg = load_config(CONFIGS / "tiny.yaml", [
        "train.epochs=1", "train.max_steps_per_epoch=2", "train.threads=1", "data.workers=1",
        "data.mirror=false", "eval.train_levels=1", "eval.val_levels=1", "eval.sampled=false",
        "eval.tick_factor=1.0", "logging.wandb=disabled", "logging.plots=false"])
    best = pretrain(cfg, Path("run"), device="cpu", verbose=False)
    assert best.resolve() == work / "run" / "best.pt" and best.is_file()
    ckpt = load_checkpoint(work / "run" / "last.pt")
    assert ckpt["config"]["data"]["replays"] == [SAMPLE_CORPUS_SOURCE]
    assert sorted(p.name for p in work.iterdir()) == [".bc_data", "run"]
