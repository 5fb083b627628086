"""BC training end to end on a tiny dataset (6 sample-corpus replays, the tiny architecture).

Runs are capped at a few optimiser steps per epoch and two or three rollout levels, so the whole
file stays around a minute on two CPU cores while exercising every stage: prepare, train,
checkpoint, resume, evaluate, determinism, refusal of mismatches, and DDP.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from torchrl_bc.cli import main as cli_main
from torchrl_bc.levels.corpus import SAMPLE_CORPUS
from torchrl_bc.replay.endings import DEATH_KINDS
from torchrl_bc.train.checkpoint import CheckpointMismatch, check_compatible, load_checkpoint
from torchrl_bc.train.config import load_config
from torchrl_bc.train.loop import train
from torchrl_bc.train.pipeline import pretrain

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six short sample-corpus replays of different families."""
    src = sorted(SAMPLE_CORPUS.glob("*.replay"), key=lambda p: p.stat().st_size)
    picked = {}
    for p in src:
        picked.setdefault(p.stem.split("-")[0], p)
    out = tmp_path_factory.mktemp("corpus")
    for p in list(picked.values())[:6]:
        shutil.copy(p, out / p.name)
    return out


@pytest.fixture(scope="module")
def base(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    cache = tmp_path_factory.mktemp("bc_data")
    return [f"data.replays=[{str(corpus)!r}]", f"data.cache_dir={str(cache)!r}",
            "data.workers=1", "data.mirror=false", "data.val_fraction=0.34",
            "train.batch_size=16", "train.max_steps_per_epoch=3", "train.threads=1",
            "eval.train_levels=2", "eval.val_levels=2", "eval.sampled=false",
            "eval.tick_factor=1.0", "logging.wandb=disabled"]


def _cfg(base: list[str], *extra: str):
    return load_config(TINY, [*base, *extra])


def _losses(history: list[dict]) -> list[tuple[float, float]]:
    return [(h["train/loss"], h["val/nll"]) for h in history]


def test_end_to_end_prepare_train_resume_evaluate(base, tmp_path, capsys):
    out = tmp_path / "run"
    best = pretrain(_cfg(base, "train.epochs=2"), out, device="cpu", verbose=False)
    assert best == out / "best.pt" and (out / "last.pt").is_file()
    assert {p.name for p in (out / "plots").iterdir()} >= {"loss.png", "success.png",
                                                           "confusion.png"}
    ckpt = load_checkpoint(out / "last.pt")  # weights_only=True inside
    assert ckpt["epoch"] == 2 and len(ckpt["history"]) == 2
    for key in ("model", "optimizer", "scheduler", "rng", "config", "obs_signature",
                "manifest_hash", "versions", "frame_skip"):
        assert key in ckpt
    assert "val/closed_loop_success" in ckpt["history"][-1]
    assert "val/precision/JUMP" in ckpt["history"][-1]

    # Resume with a larger epoch budget continues from epoch 2.
    res = train(_cfg(base, "train.epochs=3"), out, device="cpu", resume=True, verbose=False)
    assert [h["epoch"] for h in res.history] == [1, 2, 3]
    assert _losses(res.history)[:2] == _losses(ckpt["history"])

    capsys.readouterr()
    eps = tmp_path / "episodes"
    rc = cli_main(["evaluate", str(out / "best.pt"), "--levels", str(base[0].split("'")[1]),
                   "--tick-factor", "1.0", "--save-replays", str(eps)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert rc == 0
    assert f"replays: 6 episodes written to {eps}" in lines
    assert len(list(eps.glob("*.replay"))) == 6
    assert lines[-1].startswith("success_rate: ")
    assert 0.0 <= float(lines[-1].split()[-1]) <= 1.0
    assert "levels: 6" in "\n".join(lines)
    wins = int(next(ln for ln in lines if ln.startswith("wins: ")).split()[1])
    losses = next(ln for ln in lines if ln.startswith("losses: ")).split()
    # "losses: D died, S stuck (...), T other timeouts": the three add up to the episodes lost
    died, stuck, other = int(losses[1]), int(losses[3]), int(losses[-3])
    assert died + stuck + other == 6 - wins
    # "deaths by cause: mine 2, impact 1" whenever any died, adding up to the deaths
    causes = [ln for ln in lines if ln.startswith("deaths by cause: ")]
    assert len(causes) == (died > 0)
    if died:
        counts = causes[0].removeprefix("deaths by cause: ").split(", ")
        assert sum(int(c.split()[-1]) for c in counts) == died
    # and "deaths by what the ninja was doing: ran_off 2, ..." likewise
    kinds = [ln.split(": ", 1)[1] for ln in lines
             if ln.startswith("deaths by what the ninja was doing: ")]
    assert len(kinds) == (died > 0)
    if died:
        counts = [c.split() for c in kinds[0].split(", ")]
        assert all(k in DEATH_KINDS for k, _ in counts)
        assert sum(int(n) for _, n in counts) == died
    assert "val/closed_loop_stuck" in ckpt["history"][-1]


@pytest.mark.cuda
def test_cuda_run_bf16_then_cpu_evaluate(base, tmp_path, capsys, exact_float32):
    """The GPU recipe end to end: train and resume on CUDA under bf16 autocast, then load the
    checkpoint on a CPU-only side (evaluate, SB3 export) with the same distribution."""
    from torchrl_bc.models import ObsSpec, actor_extractor
    from torchrl_bc.models.synthetic import synthetic_batch, synthetic_level_graph
    from torchrl_bc.sb3 import export_checkpoint, load_export
    from torchrl_bc.train.checkpoint import load_policy

    out = tmp_path / "run"
    cfg = _cfg(base, "train.epochs=2", "train.amp=true")
    res = train(cfg, out, device="cuda", verbose=False)
    assert all(torch.isfinite(torch.tensor(pair)).all() for pair in _losses(res.history))
    res = train(_cfg(base, "train.epochs=3", "train.amp=true"), out, device="cuda",
                resume=True, verbose=False)
    assert [h["epoch"] for h in res.history] == [1, 2, 3]
    ckpt = load_checkpoint(out / "last.pt")
    assert all(t.device.type == "cpu" for t in ckpt["model"].values())
    assert "cuda" in ckpt["rng"]

    cpu, _, _ = load_policy(out / "last.pt")
    gpu, _, _ = load_policy(out / "last.pt", device="cuda")
    graphs = [synthetic_level_graph(i, rows=12, cols=20, n_entities=2 + i) for i in range(2)]
    for actor in (cpu, gpu):
        actor.eval()
        actor_extractor(actor).set_level_graphs(graphs)
    td = synthetic_batch(ObsSpec.from_observation_config(cfg.observation), graphs, 8)
    with torch.no_grad():
        torch.testing.assert_close(gpu.get_dist(td.clone().cuda()).probs.cpu(),
                                   cpu.get_dist(td.clone()).probs, atol=2e-5, rtol=1e-4)

    capsys.readouterr()
    rc = cli_main(["evaluate", str(out / "best.pt"), "--levels", str(base[0].split("'")[1]),
                   "--tick-factor", "1.0", "--device", "cpu"])
    assert rc == 0 and "success_rate: " in capsys.readouterr().out
    export_checkpoint(out / "best.pt", tmp_path / "export.pt")
    assert load_export(tmp_path / "export.pt")["policy_state_dict"]


def test_same_seed_same_losses_and_exact_resume(base, tmp_path):
    cfg = _cfg(base, "train.epochs=2", "eval.val_levels=1", "eval.train_levels=0")
    a = train(cfg, tmp_path / "a", device="cpu", verbose=False)
    b = train(cfg, tmp_path / "b", device="cpu", verbose=False, stop_after_epochs=1)
    assert len(b.history) == 1 and b.start_epoch == 0
    b = train(cfg, tmp_path / "b", device="cpu", resume=True, verbose=False)
    assert b.start_epoch == 1 and a.start_epoch == 0
    assert _losses(a.history) == _losses(b.history)  # bit-identical floats
    wa = load_checkpoint(tmp_path / "a" / "last.pt")["model"]
    wb = load_checkpoint(tmp_path / "b" / "last.pt")["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    c = train(_cfg(base, "train.epochs=1", "train.seed=1", "eval.val_levels=1",
                   "eval.train_levels=0"), tmp_path / "c", device="cpu", verbose=False)
    assert _losses(c.history)[0] != _losses(a.history)[0]


def test_mismatched_config_is_refused_by_name(base, tmp_path):
    cfg = _cfg(base, "train.epochs=1", "eval.val_levels=1", "eval.train_levels=0")
    train(cfg, tmp_path, device="cpu", verbose=False)
    with pytest.raises(CheckpointMismatch, match=r"train\.lr"):
        train(_cfg(base, "train.epochs=2", "train.lr=0.5", "eval.val_levels=1",
                   "eval.train_levels=0"), tmp_path, device="cpu", resume=True, verbose=False)
    ckpt = load_checkpoint(tmp_path / "last.pt")
    with pytest.raises(CheckpointMismatch, match=r"observation\.frame_skip"):
        check_compatible(ckpt, _cfg(base, "observation.frame_skip=2"))
    with pytest.raises(CheckpointMismatch, match=r"architecture\.graph_layers"):
        check_compatible(ckpt, _cfg(base, "architecture.graph_layers=2"))
    check_compatible(ckpt, _cfg(base, "train.lr=0.5"))  # a load only needs model + obs to match
    ckpt["obs_signature"]["obs_version"] = "0"
    with pytest.raises(CheckpointMismatch, match="obs_version"):
        check_compatible(ckpt)


def test_checkpoint_from_before_a_new_key_still_matches(base, tmp_path):
    cfg = _cfg(base, "train.epochs=1", "eval.val_levels=1", "eval.train_levels=0")
    train(cfg, tmp_path, device="cpu", verbose=False)
    ckpt = load_checkpoint(tmp_path / "last.pt")
    # as written before these keys existed: absent means their default
    del ckpt["config"]["data"]["levels_per_batch"]
    del ckpt["config"]["architecture"]["state_fourier"]
    check_compatible(ckpt, cfg, resume=True)
    check_compatible(ckpt, cfg)
    with pytest.raises(CheckpointMismatch, match=r"data\.levels_per_batch"):
        check_compatible(ckpt, _cfg(base, "train.epochs=1", "eval.val_levels=1",
                                    "eval.train_levels=0", "data.levels_per_batch=2"),
                         resume=True)
    with pytest.raises(CheckpointMismatch, match=r"architecture\.state_fourier"):
        check_compatible(ckpt, _cfg(base, "architecture.state_fourier=2"))


def test_ddp_two_cpu_processes(base, tmp_path):
    # Build the dataset here so the two ranks only open it.
    from torchrl_bc.train.factories import make_dataset

    make_dataset(_cfg(base), tmp_path, verbose=False)
    out = tmp_path / "ddp"
    args = ["--override", *base, "train.max_steps_per_epoch=2", "eval.val_levels=1",
            "eval.train_levels=0"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(REPO / "scripts" / "train_bc.py"), "--config", str(TINY), "--epochs", "1",
         "--device", "cpu", "--out", str(out), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["epoch"] == 1 and (out / "best.pt").is_file()
    assert proc.stdout.count("best: ") == 1  # only rank 0 reports and writes


def test_best_without_validation_levels_is_selected_on_training_levels(base, tmp_path, capsys):
    """No validation levels: best.pt follows the training-level success, and says so, rather
    than staying at epoch 1 because val/closed_loop_success is never measured."""
    cfg = _cfg(base, "train.epochs=3", "data.val_fraction=0.0", "eval.train_levels=3",
               "train.early_stop.metric=val/closed_loop_success")
    res = train(cfg, tmp_path, device="cpu", verbose=False)
    assert res.metric == "train/closed_loop_success"
    assert "no validation levels" in capsys.readouterr().err
    assert all("val/closed_loop_success" not in h for h in res.history)
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["metric"] == "train/closed_loop_success"
    keys = [(h["train/closed_loop_success"], -h["train/nll"]) for h in res.history]
    want = max(range(len(keys)), key=lambda i: (keys[i], -i))  # the first best epoch
    assert best["epoch"] == want + 1
    assert res.best_metric == keys[want][0]


def test_training_into_an_existing_run_is_refused(base, tmp_path):
    from torchrl_bc.train.loop import RunExists

    cfg = _cfg(base, "train.epochs=1", "eval.val_levels=1", "eval.train_levels=0")
    train(cfg, tmp_path, device="cpu", verbose=False)
    before = (tmp_path / "best.pt").read_bytes()
    with pytest.raises(RunExists, match="--overwrite"):
        train(cfg, tmp_path, device="cpu", verbose=False)
    with pytest.raises(RunExists):
        pretrain(cfg, tmp_path, device="cpu", verbose=False)
    assert (tmp_path / "best.pt").read_bytes() == before
    train(cfg, tmp_path, device="cpu", verbose=False, overwrite=True)


def test_best_on_a_metric_never_measured_is_said(base, tmp_path, capsys):
    """A length ratio needs a win; with 1-tick episodes there is none, and the run says that
    best.pt is then only the first epoch instead of presenting it as the best."""
    cfg = _cfg(base, "train.epochs=2", "eval.val_levels=1", "eval.train_levels=0",
               "eval.tick_factor=0.001", "train.early_stop.metric=val/closed_loop_length_ratio")
    res = train(cfg, tmp_path, device="cpu", verbose=False)
    assert res.best_metric is None
    assert all("val/closed_loop_length_ratio" not in h for h in res.history)
    err = capsys.readouterr().err
    assert "val/closed_loop_length_ratio was never measured" in err and "first epoch" in err


def _train_bc_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_bc", REPO / "scripts" / "train_bc.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_train_bc_opens_a_prepared_folder(base, corpus, tmp_path, capsys):
    """`torchrl-bc prepare` writes a dataset that `train_bc.py --data DIR` trains on as is;
    one prepared for other observations or another split is refused in one line."""
    from torchrl_bc.data.manifest import read_manifest

    cfg_file = tmp_path / "prep.yaml"
    cfg_file.write_text("observation:\n  frame_skip: 4\n  modalities: [player_frame, "
                        "global_view, game_state, action_mask, graph]\n"
                        "data: {val_fraction: 0.34, mirror: false, workers: 1}\n")
    ds = tmp_path / "prepared"
    assert cli_main(["prepare", "--replays", str(corpus), "--config", str(cfg_file),
                     "--out", str(ds), "--quiet"]) == 0
    cache = tmp_path / "cache"
    args = ["--config", str(TINY), "--data", str(ds), "--epochs", "1", "--device", "cpu",
            "--override", *base, f"data.cache_dir={str(cache)!r}",
            "train.max_steps_per_epoch=2", "eval.val_levels=1", "eval.train_levels=0"]
    script = _train_bc_script()
    assert script.main([*args, "--out", str(tmp_path / "run")]) == 0
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["manifest_hash"] == read_manifest(ds)["manifest_hash"]
    assert not cache.exists()  # nothing re-simulated or rebuilt
    capsys.readouterr()
    for extra, field in (("observation.frame_skip=2", "observation.frame_skip"),
                         ("data.val_fraction=0.15", "data.val_fraction"),
                         ("data.mirror=true", "data.mirror"),
                         ("data.release_jumps=true", "data.release_jumps")):
        assert script.main([*args, extra, "--out", str(tmp_path / field)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(ds) in err[0] and field in err[0], err
    # mixed with replay folders: refused, not silently merged
    assert script.main([*args[:2], "--data", str(ds), str(corpus), *args[4:],
                        "--out", str(tmp_path / "mixed")]) == 1
    assert "must be the only data source" in capsys.readouterr().err
