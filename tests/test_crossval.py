"""Level-disjoint cross-validation on a tiny config: 2 folds over six short sample levels.

The central property: no level (nor its mirror image) is both trained on and scored as
held-out by one fold's policy, checked against the dataset each fold actually trained on.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from torchrl_bc.cli import main as cli_main
from torchrl_bc.levels.corpus import SAMPLE_CORPUS
from torchrl_bc.replay.endings import DEATH_KINDS
from torchrl_bc.replay.format import read_replay
from torchrl_bc.replay.mirror import mirror_map
from torchrl_bc.train.crossval import assign_folds, level_group, scan_human_levels, wilson_interval

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six short sample levels of different families, one duplicated under a second name, one
    unreadable file and one replay that does not win."""
    src = sorted(SAMPLE_CORPUS.glob("*.replay"), key=lambda p: p.stat().st_size)
    picked: dict[str, Path] = {}
    for p in src:
        picked.setdefault(p.stem.split("-")[0], p)
    out = tmp_path_factory.mktemp("cv_corpus")
    chosen = list(picked.values())[:6]
    for p in chosen:
        shutil.copy(p, out / p.name)
    shutil.copy(chosen[0], out / "zz-duplicate.replay")  # same level, second file
    (out / "broken.replay").write_bytes(b"\x01\x00\x00\x00garbage")
    from torchrl_bc.replay.format import write_replay

    rep = read_replay(chosen[1])  # a truncated demo of a new map: never wins
    raw = bytearray(rep.map_data)
    raw[0] ^= 1  # header byte: the simulator ignores it, but the map hash differs
    write_replay(out / "loser.replay", bytes(raw), rep.inputs[:5], False)
    return out


def test_folds_are_balanced_deterministic_and_seeded() -> None:
    groups = [f"g{i}" for i in range(11)]
    a = assign_folds(groups, 3, seed=0)
    assert a == assign_folds(list(reversed(groups)), 3, seed=0)
    sizes = sorted(list(a.values()).count(k) for k in range(3))
    assert sizes == [3, 4, 4]
    assert a != assign_folds(groups, 3, seed=1)
    with pytest.raises(ValueError, match="exceeds"):
        assign_folds(groups[:2], 3)
    with pytest.raises(ValueError, match=">= 2"):
        assign_folds(groups, 1)


def test_a_level_and_its_mirror_share_a_group() -> None:
    data = read_replay(next(SAMPLE_CORPUS.glob("gaps-*.replay"))).map_data
    assert level_group(data) == level_group(mirror_map(data))
    other = read_replay(next(SAMPLE_CORPUS.glob("corridor-*.replay"))).map_data
    assert level_group(data) != level_group(other)


def test_scan_ignores_the_output_directory_inside_the_data(tmp_path: Path) -> None:
    src = next(SAMPLE_CORPUS.glob("corridor-*.replay"))
    shutil.copy(src, tmp_path / src.name)
    links = tmp_path / "cv" / "fold-0" / "replays"
    links.mkdir(parents=True)
    (links / src.name).symlink_to(tmp_path / src.name)
    assert len(scan_human_levels([tmp_path]).levels[0].files) == 2
    (level,) = scan_human_levels([tmp_path], exclude=tmp_path / "cv").levels
    assert level.files == (str(tmp_path / src.name),)


def test_wilson_interval_brackets_the_rate() -> None:
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and 0.2 < hi < 0.35
    lo, hi = wilson_interval(5, 10)
    assert lo < 0.5 < hi and hi - 0.5 == pytest.approx(0.5 - lo)
    lo, hi = wilson_interval(30, 100)
    assert (round(lo, 3), round(hi, 3)) == (0.219, 0.396)  # textbook values


def test_crossval_two_folds_level_disjoint(corpus: Path, tmp_path: Path, capsys,
                                          monkeypatch) -> None:
    import torchrl_bc.train.pipeline as pipeline

    recipes: list = []  # each fold runs the config's whole recipe (pretrain), on its replays
    real = pipeline.pretrain
    monkeypatch.setattr(pipeline, "pretrain",
                        lambda cfg, *a, **kw: recipes.append(cfg) or real(cfg, *a, **kw))
    out = tmp_path / "cv"
    cache = tmp_path / "bc_data"
    code = cli_main([
        "crossval", "--config", str(TINY), "--data", str(corpus), "--folds", "2",
        "--out", str(out), "--epochs", "1", "--device", "cpu", "--random-episodes", "2",
        "--override", f"data.cache_dir={str(cache)!r}", "data.workers=1", "data.mirror=false",
        "data.val_fraction=0.34", "train.batch_size=16", "train.max_steps_per_epoch=2",
        "train.threads=1", "eval.train_levels=0", "eval.val_levels=1", "eval.sampled=false",
        "logging.wandb=disabled", "logging.plots=false"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert [c.data.replays for c in recipes] == [(str(out / f"fold-{k}" / "replays"),)
                                                 for k in (0, 1)]
    lines = captured.out.strip().splitlines()
    assert lines[-1].startswith("heldout_success_rate: ")
    rate = float(lines[-1].split(": ")[1])
    # both bad files are reported by name, never silently dropped
    assert "broken.replay" in captured.err and "loser.replay" in captured.err

    summary = json.loads((out / "summary.json").read_text())
    rows = json.loads((out / "per_level.json").read_text())
    assert summary["heldout_success_rate"] == pytest.approx(rate, abs=1e-4)
    assert summary["levels"] == 6 == len(rows)  # the duplicate file is the same level
    assert {Path(s["file"]).name for s in summary["skipped"]} == {"broken.replay",
                                                                    "loser.replay"}
    assert summary["checkpoint"] == "best"
    assert summary["dagger_oracle"] is None  # tiny.yaml runs no DAgger round
    assert all(r["heldout_won_bc"] is None for r in rows)
    assert sorted({r["fold"] for r in rows}) == [0, 1]
    assert all(isinstance(r["heldout_won"], bool) for r in rows)
    # stdout names each fold's count, so a log of stdout alone holds the per-fold figures
    per_fold = [f"{sum(r['heldout_won'] for r in rows if r['fold'] == k)}/"
                f"{sum(r['fold'] == k for r in rows)}" for k in (0, 1)]
    assert f"held-out wins per fold: {', '.join(per_fold)}" in lines
    assert sum(r["heldout_won"] for r in rows) == summary["heldout"]["wins"]
    # every loss is one kind: died, stuck (a timeout at a standstill) or another timeout
    assert all(not (r["heldout_won"] and (r["heldout_died"] or r["heldout_stuck"]))
               for r in rows)
    losses = summary["heldout_losses"]
    assert min(losses.values()) >= 0
    assert sum(losses.values()) == len(rows) - summary["heldout"]["wins"]
    assert losses["stuck"] == sum(r["heldout_stuck"] for r in rows)
    causes = summary["heldout_deaths_by_cause"]
    assert sum(causes.values()) == losses["died"]
    assert all(bool(r["heldout_death_cause"]) == bool(r["heldout_died"]) for r in rows)
    # and each death says what the ninja was doing, from its re-simulated inputs
    assert sum(summary["heldout_deaths_by_kind"].values()) == losses["died"]
    assert all((r["heldout_death_kind"] in DEATH_KINDS) == bool(r["heldout_died"])
               for r in rows)
    # a flat cap only lets episodes run on: every win under the demo-relative cap stays a win
    assert all(r["heldout_won_flat_cap"] for r in rows if r["heldout_won"])
    assert summary["heldout_flat_cap"]["wins"] >= summary["heldout"]["wins"]
    # every level is scored on the training side by exactly the one fold that trained on it
    assert all(r["train_evals"] == 1 for r in rows)
    assert all(r["random_episodes"] == 2 for r in rows)
    lo, hi = summary["heldout"]["ci95"]
    assert lo <= rate <= hi
    with (out / "per_level.csv").open() as fh:
        assert [r["name"] for r in csv.DictReader(fh)] == [r["name"] for r in rows]

    for k in (0, 1):
        held = {r["map_hash"] for r in rows if r["fold"] == k}
        held_groups = {r["group"] for r in rows if r["fold"] == k}
        # each held-out episode is saved as a replay of that level, flagged as it ended
        episodes = {read_replay(f) for f in (out / f"fold-{k}" / "heldout").iterdir()}
        assert {hashlib.sha256(e.map_data).hexdigest(): e.success for e in episodes} == \
            {r["map_hash"]: r["heldout_won"] for r in rows if r["fold"] == k}
        assert all(e.n_ticks == r["heldout_ticks"] for e in episodes for r in rows
                   if r["map_hash"] == hashlib.sha256(e.map_data).hexdigest())
        # what the fold's dataset actually holds (manifest of the prepared store)
        run = out / f"fold-{k}" / "run"
        assert (run / "best.pt").is_file()
        manifests = list(cache.glob("ds-*/manifest.json"))
        trained_hashes: set[str] = set()
        for f in (out / f"fold-{k}" / "replays").iterdir():
            trained_hashes.add(hashlib.sha256(read_replay(f).map_data).hexdigest())
        assert trained_hashes and not trained_hashes & held
        assert {hashlib.sha256(read_replay(f).map_data).hexdigest()
                for f in (out / f"fold-{k}" / "heldout_levels").iterdir()} == held
        assert not {level_group(read_replay(f).map_data)
                    for f in (out / f"fold-{k}" / "replays").iterdir()} & held_groups
        used = set()
        for m in manifests:
            man = json.loads(m.read_text())
            files = {Path(e["file"]).parent for e in man["episodes"]}
            if files == {out / f"fold-{k}" / "replays"}:
                used = {e["level_hash"] for e in man["episodes"]}
        assert used and not used & held, f"fold {k} trained on a held-out level"


def test_crossval_reports_dagger_oracle_cost_per_point_gained(corpus: Path,
                                                              tmp_path: Path, capsys) -> None:
    """With DAgger rounds, each fold's BC policy plays the held-out levels too, and the
    planner queries and labels spent are set against the held-out points they bought."""
    import yaml

    cfg = tmp_path / "dagger.yaml"
    cfg.write_text(yaml.safe_dump({
        "base": str(REPO / "configs" / "base.yaml"),
        "architecture": {"preset": "mlp", "modalities": ["game_state", "objective"],
                         "state_hidden": [16], "state_dim": 16, "objective_hidden": [8],
                         "objective_dim": 8, "features_dim": 16, "head_hidden": [16],
                         "value_hidden": [16]},
        "observation": {"frame_skip": 1, "state_zero": ["elapsed"],
                        "modalities": ["game_state", "objective", "action_mask"]},
        "data": {"val_fraction": 0.34, "mirror": False, "workers": 1,
                 "cache_dir": str(tmp_path / "bc_data")},
        "train": {"epochs": 1, "batch_size": 16, "max_steps_per_epoch": 2, "warmup": 0,
                  "threads": 1},
        "eval": {"train_levels": 0, "val_levels": 1, "sampled": False},
        "dagger": {"rounds": 1, "levels": 4, "label_every": 40, "queries_per_level": 2,
                   "horizon": 8, "max_expansions": 400, "steps": 2, "max_ticks": 150},
        "logging": {"wandb": "disabled", "plots": False},
    }))
    out = tmp_path / "cv"
    code = cli_main(["crossval", "--config", str(cfg), "--data", str(corpus), "--folds", "2",
                     "--out", str(out), "--device", "cpu", "--random-episodes", "1"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads((out / "summary.json").read_text())
    rows = json.loads((out / "per_level.json").read_text())
    oracle = summary["dagger_oracle"]
    logs = [json.loads((out / f"fold-{k}" / "run" / "dagger.json").read_text()) for k in (0, 1)]
    assert oracle["queries"] == sum(r["queries"] for log in logs for r in log) > 0
    assert oracle["labels"] == sum(log[-1]["aggregate"] for log in logs)
    assert [f["dagger"]["rounds"] for f in summary["per_fold"]] == [1, 1]
    assert all(isinstance(r["heldout_won_bc"], bool) for r in rows)
    bc_wins = sum(r["heldout_won_bc"] for r in rows)
    assert oracle["heldout_bc"]["wins"] == bc_wins
    assert oracle["points_gained"] == pytest.approx(
        100 * (summary["heldout"]["wins"] - bc_wins) / len(rows))
    if oracle["points_gained"] > 0:
        assert oracle["labels_per_point"] == pytest.approx(
            oracle["labels"] / oracle["points_gained"])
    else:
        assert oracle["labels_per_point"] is None
    assert "DAgger's oracle:" in captured.out
    assert captured.out.strip().splitlines()[-1].startswith("heldout_success_rate: ")


def test_the_metric_cap_is_one_constant() -> None:
    """crossval's CLI, its function and DAgger's rollouts cap at the same DEFAULT_MAX_TICKS."""
    import argparse
    import inspect

    from torchrl_bc.commands import crossval as command
    from torchrl_bc.sim.level import DEFAULT_MAX_TICKS
    from torchrl_bc.train.config import DaggerConfig
    from torchrl_bc.train.crossval import crossval as run

    parser = argparse.ArgumentParser()
    command.configure(parser)
    args = parser.parse_args(["--config", "c.yaml", "--data", "d", "--folds", "2", "--out", "o"])
    assert args.max_ticks == DEFAULT_MAX_TICKS == DaggerConfig().max_ticks
    assert inspect.signature(run).parameters["max_ticks"].default == DEFAULT_MAX_TICKS
