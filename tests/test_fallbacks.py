"""No silent fallbacks: wrong data paths, missing validation levels, unreadable or unwinnable
level files, config lookup from another directory and envs without an observation config are
each refused or reported, never papered over."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from torchrl_bc.levels.corpus import SAMPLE_CORPUS
from torchrl_bc.replay.format import read_replay, write_replay
from torchrl_bc.train.config import DataConfig, load_config

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny.yaml"
SHORT_SHARED = ("20251022_151333_train_simple_100001.replay",
                "20251023_095301_train_complex_100001.replay")


def _replays(n: int) -> list[Path]:
    return sorted(SAMPLE_CORPUS.glob("*.replay"), key=lambda p: p.stat().st_size)[:n]


# -- --data / data.replays ----------------------------------------------------------------------
def test_missing_or_empty_data_dir_is_an_error(tmp_path: Path) -> None:
    from torchrl_bc.train.factories import make_dataset

    good = tmp_path / "good"
    good.mkdir()
    shutil.copy(_replays(1)[0], good)
    empty = tmp_path / "empty"
    empty.mkdir()
    for dirs, name in (([tmp_path / "typo"], "typo"), ([good, tmp_path / "typo2"], "typo2"),
                       ([empty], "empty")):
        cfg = load_config(TINY, [f"data.replays={[str(d) for d in dirs]!r}",
                                 f"data.cache_dir={str(tmp_path / 'cache')!r}"])
        with pytest.raises(FileNotFoundError, match=name):
            make_dataset(cfg, tmp_path / "run", verbose=False)
    assert not (tmp_path / "cache").exists()  # refused before anything was built


def test_shipped_corpus_is_the_default_only_without_data() -> None:
    from torchrl_bc.data import data_dir_problem, is_prepared
    from torchrl_bc.resources import default_replay_dirs

    assert DataConfig().replays == ()
    assert default_replay_dirs() == [SAMPLE_CORPUS]
    assert data_dir_problem(SAMPLE_CORPUS) is None
    assert not is_prepared(SAMPLE_CORPUS)  # a corpus manifest is not a prepared dataset
    assert "does not exist" in data_dir_problem("no/such/dir")
    import torchrl_bc.data as data

    for module in Path(data.__file__).parent.glob("*.py"):  # the data stage picks no data
        text = module.read_text()
        assert "SAMPLE_CORPUS" not in text and "sample_corpus" not in text, module
        assert "shared/data" not in text and "\"shared\"" not in text, module
        assert "parents[" not in text, module  # no checkout-relative paths


# -- best.pt without validation levels ----------------------------------------------------------
class _Data:
    """The two questions ``selection_metric`` asks of a dataset."""

    def __init__(self, val_levels: int, val_steps: int, train_levels: int = 3) -> None:
        self.counts = {"val": val_levels, "train": train_levels}
        self.val_steps = val_steps

    def has_levels(self, split: str) -> bool:
        return self.counts[split] > 0

    def n_steps(self, split: str) -> int:
        return self.val_steps if split == "val" else 100


def test_selection_metric_without_validation_levels() -> None:
    from torchrl_bc.train.loop import selection_metric

    cfg = load_config(TINY, ["train.early_stop.metric=val/closed_loop_success"])
    assert selection_metric(cfg, _Data(2, 50)) == ("val/closed_loop_success", None)
    metric, note = selection_metric(cfg, _Data(0, 0))
    assert metric == "train/closed_loop_success"
    assert "no validation levels" in note and "val/closed_loop_success" in note
    none = load_config(TINY, ["train.early_stop.metric=val/closed_loop_success",
                              "eval.train_levels=0"])
    assert selection_metric(none, _Data(0, 0))[0] == "train/nll"
    nll = load_config(TINY, ["train.early_stop.metric=val/nll"])
    assert selection_metric(nll, _Data(0, 0))[0] == "train/nll"
    assert selection_metric(nll, _Data(0, 10)) == ("val/nll", None)


# -- level discovery ----------------------------------------------------------------------------
@pytest.fixture()
def level_dir(tmp_path: Path) -> Path:
    """Two winnable levels, one losing demo of a third, one of a won level, and junk."""
    d = tmp_path / "levels"
    (d / "sub").mkdir(parents=True)
    a, b, c = _replays(3)
    shutil.copy(a, d)
    shutil.copy(b, d / "sub")
    rep = read_replay(c)
    write_replay(d / "loses.replay", rep.map_data, rep.inputs[: rep.n_ticks // 2])
    rep_a = read_replay(a)
    write_replay(d / "a_again_loses.replay", rep_a.map_data, np.zeros(3, np.uint8))
    (d / "junk.replay").write_bytes(b"\x01\x00\x00")
    (d / "empty.replay").write_bytes(b"")
    (d / "notes.txt").write_text("ignored: not a level file")
    return d


def test_scan_names_every_skipped_file(level_dir: Path) -> None:
    from torchrl_bc.train.evaluate import SkipReason, scan_levels

    scan = scan_levels(level_dir)
    assert len(scan.levels) == 2  # a losing demo of a won level does not remove it
    assert all(lv.demo_ticks > 0 for lv in scan.levels)
    reasons = {Path(s.path).name: s.reason for s in scan.skipped}
    assert reasons == {"loses.replay": SkipReason.NOT_WINNABLE,
                       "junk.replay": SkipReason.UNREADABLE,
                       "empty.replay": SkipReason.UNREADABLE}
    report = scan.report()
    assert report[0] == "levels: 2 evaluated, 3 file(s) skipped"
    assert any("loses.replay: not a winnable level" in line for line in report)
    assert any("empty.replay: unreadable (empty file)" in line for line in report)


def test_discover_and_resolve_report_skips_on_stderr(level_dir, capsys) -> None:
    from torchrl_bc.sb3.env import resolve_levels
    from torchrl_bc.train.evaluate import discover_levels

    assert len(discover_levels(str(level_dir))) == 2
    err = capsys.readouterr().err
    assert err.count("skipping level") == 3 and "junk.replay: truncated header" in err
    assert "loses.replay: not a winnable level" in err
    assert len(resolve_levels(level_dir)) == 2
    err = capsys.readouterr().err
    assert "3 file(s) skipped" in err and "loses.replay: not a winnable level" in err


def test_only_unwinnable_files_is_an_error(tmp_path: Path) -> None:
    from torchrl_bc.train.evaluate import scan_levels

    rep = read_replay(_replays(1)[0])
    write_replay(tmp_path / "dies.replay", rep.map_data, rep.inputs[:2])
    with pytest.raises(FileNotFoundError, match=r"no winnable level.*dies.replay"):
        scan_levels(tmp_path)


def test_one_byte_short_shared_replays_are_not_winnable(shared_data: Path, tmp_path) -> None:
    from torchrl_bc.train.evaluate import SkipReason, scan_levels

    for name in SHORT_SHARED:
        shutil.copy(shared_data / "replays" / name, tmp_path)
    shutil.copy(_replays(1)[0], tmp_path)
    scan = scan_levels(tmp_path)
    assert len(scan.levels) == 1
    assert sorted(Path(s.path).name for s in scan.skipped) == sorted(SHORT_SHARED)
    for s in scan.skipped:
        assert s.reason is SkipReason.NOT_WINNABLE and "1 byte short" in s.detail


def test_evaluate_output_counts_levels_and_skips(level_dir, tmp_path, capsys) -> None:
    from torchrl_bc.cli import main

    ckpt = _fake_checkpoint(tmp_path / "best.pt")
    assert main(["evaluate", str(ckpt), "--levels", str(level_dir), "--tick-factor",
                 "0.2"]) == 0
    out = capsys.readouterr().out
    assert "levels: 2 evaluated, 3 file(s) skipped" in out
    assert "skipped: " + str(level_dir / "junk.replay") + ": unreadable" in out
    assert "of 2 episodes on 2 levels" in out
    assert out.strip().splitlines()[-1].startswith("success_rate: ")


def _fake_checkpoint(path: Path) -> Path:
    """An untrained BC checkpoint of the tiny config, in the trainer's format."""
    from torchrl_bc.models import ObsSpec
    from torchrl_bc.train.checkpoint import FORMAT
    from torchrl_bc.train.factories import make_actor

    cfg = load_config(TINY)
    actor = make_actor(cfg)
    torch.save({"format": FORMAT, "model": actor.state_dict(), "epoch": 1,
                "config": cfg.to_dict(), "obs_signature": cfg.observation.signature(),
                "obs_spec": ObsSpec.from_observation_config(cfg.observation).to_dict(),
                "frame_skip": cfg.observation.frame_skip, "manifest_hash": "x",
                "versions": {}, "history": [], "best_score": None, "bad_evals": 0,
                "metric": "val/nll"}, path)
    return path


# -- SB3 loading --------------------------------------------------------------------------------
def test_load_into_refuses_env_without_config(tmp_path) -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from torchrl_bc.sb3 import ExportMismatch, export_checkpoint, load_into
    from torchrl_bc.sb3.env import PaddedNppEnv, obs_config_of, resolve_levels
    from torchrl_bc.sb3.load import make_sb3_policy_kwargs

    export = export_checkpoint(_fake_checkpoint(tmp_path / "best.pt"))
    config, padding = obs_config_of(export)
    levels = resolve_levels([read_replay(_replays(1)[0]).map_data])

    class NoConfig(PaddedNppEnv):
        def __init__(self) -> None:
            super().__init__(levels, config, padding)
            del self.config  # an env that cannot say what observations it builds

    env = DummyVecEnv([NoConfig])
    model = PPO("MultiInputPolicy", env, policy_kwargs=make_sb3_policy_kwargs(export),
                n_steps=16, batch_size=16, device="cpu")
    with pytest.raises(ExportMismatch, match="does not expose an observation `config`"):
        load_into(model, export)
    env.close()
    env = DummyVecEnv([lambda: PaddedNppEnv(levels, config, padding)])
    model = PPO("MultiInputPolicy", env, policy_kwargs=make_sb3_policy_kwargs(export),
                n_steps=16, batch_size=16, device="cpu")
    load_into(model, export)  # the same env with its config loads
    env.close()


# -- run folders, progress, W&B -----------------------------------------------------------------
def test_existing_run_needs_resume_or_overwrite(tmp_path) -> None:
    from torchrl_bc.train.loop import RunExists, check_out_dir

    check_out_dir(tmp_path / "new")
    (tmp_path / "best.pt").write_bytes(b"x")
    with pytest.raises(RunExists, match="--overwrite"):
        check_out_dir(tmp_path)
    check_out_dir(tmp_path, overwrite=True)
    with pytest.raises(RunExists):  # --resume with no last.pt would start afresh over best.pt
        check_out_dir(tmp_path, resume=True)
    _fake_checkpoint(tmp_path / "last.pt")
    check_out_dir(tmp_path, resume=True)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal(monkeypatch) -> None:
    from torchrl_bc import progress

    tty = _Tty()
    monkeypatch.setattr(progress.sys, "stderr", tty)
    assert not progress.progress_enabled()  # under pytest: off
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    assert progress.progress_enabled() and not progress.progress_enabled(False)
    for _ in progress.progress_bar(range(3), desc="epoch 1/2", unit="batch", mininterval=0):
        pass
    assert "epoch 1/2" in tty.getvalue() and "batch/s" in tty.getvalue()
    monkeypatch.setattr(progress.sys, "stderr", io.StringIO())  # a log file: no bar
    assert not progress.progress_enabled()


def test_log_line_leaves_a_drawn_bar_whole(monkeypatch) -> None:
    """A log line written while a bar is drawn (DAgger's per-round lines under its round bar)
    lands on a line of its own, and the bar is drawn again after it."""
    from torchrl_bc import progress

    tty = _Tty()
    monkeypatch.setattr(progress.sys, "stderr", tty)
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    bar = progress.progress_bar(total=4, desc="dagger rounds", unit="round", mininterval=0)
    bar.update(1)
    progress.progress_write("dagger: round 1: 12 of 64 won")
    bar.update(1)
    bar.close()
    lines = tty.getvalue().replace("\r", "\n").split("\n")
    assert "dagger: round 1: 12 of 64 won" in lines  # a whole line, no bar text around it
    at = lines.index("dagger: round 1: 12 of 64 won")
    assert any("dagger rounds" in line and "2/4" in line for line in lines[at + 1:])
    monkeypatch.setattr(progress.sys, "stderr", io.StringIO())  # no terminal: a plain line
    progress.progress_write("plain")
    assert progress.sys.stderr.getvalue() == "plain\n"


def test_wandb_project_and_sync_hint(tmp_path, capsys) -> None:
    from torchrl_bc.train.logging import RunLogger, wandb_kwargs, wandb_summary

    assert wandb_kwargs("my-proj", "offline") == {"project": "my-proj", "offline": True,
                                                  "log_env_packages": False}
    logger = RunLogger(tmp_path, "offline", "my-proj", "run1", {"train": {"lr": 0.1}},
                       plots=False)
    assert logger.logger is not None, capsys.readouterr().err
    run = logger.logger.experiment
    assert run.project == "my-proj"
    assert "env" not in dict(run.config) and dict(run.config)["train"]["lr"] == 0.1
    run_dir = logger.run_dir
    assert run_dir is not None and run_dir.parent == tmp_path / "wandb"
    logger.close()
    err = capsys.readouterr().err
    assert f"wandb sync {run_dir}" in err and run_dir.is_dir()
    assert wandb_summary("offline", None) == []
