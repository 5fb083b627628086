"""The BC-vs-scratch comparison: its statistics, and ``scripts/train_and_compare.py`` end to end."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from torchrl_bc.resources import SAMPLE_CORPUS
from torchrl_bc.sb3.stats import bootstrap_ci, iqm, is_flat, plateau_index, steps_to_reach

REPO = Path(__file__).resolve().parents[1]
CORPUS = SAMPLE_CORPUS


def _script(name: str = "train_and_compare"):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- interquartile mean -------------------------------------------------------------------------
def test_iqm_drops_a_quarter_at_each_end() -> None:
    assert iqm([4, 1, 3, 2]) == 2.5  # middle of 1..4
    assert iqm([0, 0, 0.5, 1, 1, 1, 100, -100]) == pytest.approx(np.mean([0, 0.5, 1, 1]))
    assert iqm([1, 2, 3]) == 2.0  # under four scores: nothing dropped
    assert iqm([[1, 2], [3, 100]]) == 2.5  # runs x tasks: the middle half of all scores
    with pytest.raises(ValueError, match="no scores"):
        iqm([])


# -- bootstrap interval -------------------------------------------------------------------------
def test_bootstrap_interval_is_seeded_and_holds_the_estimate() -> None:
    x = np.random.default_rng(1).normal(0.5, 0.1, size=10)
    lo, hi = bootstrap_ci(x, seed=3)
    assert lo < iqm(x) < hi
    assert (lo, hi) == bootstrap_ci(x, seed=3)
    assert (lo, hi) != bootstrap_ci(x, seed=4)


def test_bootstrap_interval_covers_the_true_iqm_about_95_percent() -> None:
    """Normal(0.3, 0.1) is symmetric, so its population IQM is its mean, 0.3."""
    rng = np.random.default_rng(0)
    trials, hits = 300, 0
    for t in range(trials):
        lo, hi = bootstrap_ci(rng.normal(0.3, 0.1, size=25), reps=1000, seed=t)
        hits += lo <= 0.3 <= hi
    assert 0.88 <= hits / trials <= 0.99, hits / trials
    # and a 50% interval covers far less often: the level is not ignored
    hits50 = sum(lo <= 0.3 <= hi for lo, hi in (
        bootstrap_ci(rng.normal(0.3, 0.1, size=25), confidence=0.5, reps=1000, seed=t)
        for t in range(100)))
    assert 0.3 <= hits50 / 100 <= 0.7, hits50


def test_bootstrap_is_stratified_by_task() -> None:
    """Task 0 always scores 0 and task 1 always 1: a stratified resample keeps half of each,
    so the IQM never moves; pooling the runs would let it range over [0, 1]."""
    scores = np.array([[0.0, 1.0]] * 6)
    assert bootstrap_ci(scores, seed=0) == (0.5, 0.5)
    with pytest.raises(ValueError, match="runs x tasks"):
        bootstrap_ci(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0, 2.0], confidence=1.5)


# -- steps to reach -----------------------------------------------------------------------------
def test_steps_to_reach() -> None:
    steps = [0, 100, 200, 300]
    assert steps_to_reach(steps, [0.1, 0.3, 0.6, 0.5], 0.5) == 200
    assert steps_to_reach(steps, [0.1, 0.3, 0.6, 0.5], 0.1) == 0
    assert steps_to_reach(steps, [0.1, 0.3, 0.6, 0.5], 0.7) is None
    assert steps_to_reach(steps, [None, None, 0.7, 0.9], 0.7) == 200
    assert steps_to_reach([0, 1], [0.1, 1 / 3], 1 - 2 / 3) == 1  # float noise is no miss
    with pytest.raises(ValueError, match="same length"):
        steps_to_reach([0, 1], [0.5], 0.5)


# -- plateau rule -------------------------------------------------------------------------------
def test_plateau_rule() -> None:
    rising = [0.1 * i for i in range(10)]
    assert not is_flat(rising, 3, 0.05) and plateau_index(rising, 3, 0.05) is None
    flat_after = [0.0, 0.2, 0.4, 0.5, 0.52, 0.5, 0.51, 0.5]
    # flat once the last 3 gain at most 0.05 over the best before them and stay near the best
    assert plateau_index(flat_after, 3, 0.05) == 6  # at 5, 0.52 still beat 0.4 by > 0.05
    assert is_flat(flat_after, 3, 0.05)
    assert not is_flat(flat_after, 3, 0.01)  # 0.52 -> 0.5 is more than 0.01 below the best
    fell = [0.0, 0.6, 0.6, 0.3, 0.3, 0.3]  # collapsed from its best: not a plateau
    assert not is_flat(fell, 3, 0.05)
    assert not is_flat([0.5, 0.5, 0.5], 3, 0.0)  # nothing before the window
    assert is_flat([0.5, 0.5, 0.5, 0.5], 3, 0.0)
    with pytest.raises(ValueError, match="window"):
        is_flat([0.0] * 5, 1, 0.1)
    with pytest.raises(ValueError, match="tol"):
        plateau_index([0.0], 3, -0.1)


# -- the multiplier's wording -------------------------------------------------------------------
def test_ratio_says_what_kind_of_number_it_is() -> None:
    ratio = _script().ratio
    base = {"bc_budget": 1000, "first_eval": 100, "scratch_budget": 20000,
            "scratch_plateau": True}
    assert ratio({**base, "bc_steps": 200, "scratch_steps": 4000}) == {"value": 20.0,
                                                                       "kind": "measured"}
    r = ratio({**base, "bc_steps": 0, "scratch_steps": 4000})
    assert r["value"] == 40.0 and r["kind"].startswith("lower bound")
    r = ratio({**base, "bc_steps": 200, "scratch_steps": None})
    assert r["value"] == 100.0 and "(plateau)" in r["kind"]
    r = ratio({**base, "bc_steps": 200, "scratch_steps": None, "scratch_plateau": False})
    assert "no plateau" in r["kind"]
    assert ratio({**base, "bc_steps": None, "scratch_steps": 10})["value"] is None
    assert "no training" in ratio({**base, "bc_steps": 0, "scratch_steps": 0})["kind"]


# -- the script ---------------------------------------------------------------------------------
def test_evaluation_schedule_is_even_then_geometric(tmp_path) -> None:
    script = _script()
    args = script.parse_args(["--replay-data-dir", str(tmp_path), "--bc-steps", "100000"])
    nxt = script.make_schedule(args)
    assert nxt(0) == 16_384 and nxt(98_304) == 98_304 + 16_384  # even up to --bc-steps
    assert nxt(114_688) == 114_688 + 50_000  # then at least --bc-steps/2 apart
    assert nxt(8_000_000) == 9_000_000  # and 1/8 of the steps so far
    steps = [0]
    while steps[-1] < 10_000_000:
        steps.append(nxt(steps[-1]))
    assert 40 <= len(steps) <= 60  # a 10M-step scratch run: about 50 evaluations, not 200
    args = script.parse_args(["--replay-data-dir", str(tmp_path), "--bc-steps", "100000",
                              "--eval-growth", "0"])
    assert script.make_schedule(args)(8_000_000) == 8_050_000


def test_fine_tune_scripts_share_the_ppo_defaults(tmp_path) -> None:
    """``finetune_ppo.py`` trains PPO as ``train_and_compare.py`` does by default, and its
    default is the comparison's ``DEFAULT_FINETUNE`` variant (warm-up and KL on or off)."""
    from torchrl_bc.sb3.ppo import (
        FINETUNE_DEVICE,
        FINETUNE_KL,
        FINETUNE_N_ENVS,
        FINETUNE_PPO,
        FINETUNE_WARMUP_STEPS,
    )

    script = _script()
    compare = script.parse_args(["--replay-data-dir", str(tmp_path)])
    finetune = _script("finetune_ppo").parse_args(["ckpt.pt", "--levels", str(tmp_path)])
    assert compare.n_envs == finetune.n_envs == FINETUNE_N_ENVS
    assert compare.device == finetune.device == FINETUNE_DEVICE == "cpu"
    # both evaluate at the headline metric's caps (crossval's), whatever PPO trains under
    from torchrl_bc.sim.level import DEFAULT_MAX_TICKS

    assert compare.eval_max_ticks == finetune.eval_max_ticks == DEFAULT_MAX_TICKS
    assert compare.eval_tick_factor == finetune.eval_tick_factor == 2.0
    names = {"n_steps": "n_steps", "batch_size": "batch_size",
             "n_epochs": "n_epochs", "learning_rate": "lr", "gamma": "gamma",
             "ent_coef": "ent_coef"}
    for key, value in FINETUNE_PPO.items():
        assert getattr(compare, names[key]) == value, key
        assert getattr(finetune, names[key]) == value, key
    assert FINETUNE_N_ENVS * FINETUNE_PPO["n_steps"] % FINETUNE_PPO["batch_size"] == 0
    assert (compare.kl_coef, compare.kl_updates) == tuple(FINETUNE_KL.values())
    assert compare.warmup_steps == FINETUNE_WARMUP_STEPS
    from_bc, kl, warm = script.VARIANTS[script.DEFAULT_FINETUNE]
    assert from_bc and (finetune.kl_coef > 0) == kl
    assert finetune.warmup_steps == (FINETUNE_WARMUP_STEPS if warm else 0)


def test_finetune_script_end_to_end(tmp_path, capsys) -> None:
    """A BC checkpoint in, critic warmed, PPO on the training levels, held-out evaluations on
    schedule, an export that loads, and ``success_rate:`` last."""
    levels = tmp_path / "levels"
    levels.mkdir()
    for name in LEVELS:
        shutil.copy(CORPUS / f"{name}.replay", levels)
    bench = _script("bench_rl")
    (tmp_path / "bc.yaml").write_text(BC_CONFIG)
    bench.untrained_export(tmp_path / "bc.yaml", tmp_path)
    out = tmp_path / "ft"
    argv = [str(tmp_path / "untrained.pt"), "--levels", str(levels), "--holdout", "0.34",
            "--timesteps", "512", "--eval-every", "256", "--n-envs", "4", "--n-steps", "64",
            "--batch-size", "64", "--n-epochs", "1", "--warmup-steps", "3000",
            "--max-ticks", "300", "--no-progress", "--out", str(out)]
    assert _script("finetune_ppo").main(argv) == 0
    stdout = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("critic warmed on 3000 BC steps") for line in stdout)
    assert stdout[-1].startswith("success_rate: ")
    report = json.loads((out / "eval.json").read_text())
    # 2 held out, and (the untrained checkpoint records no BC validation levels) 1 of the
    # other 4 set aside for validation, named as such: PPO trains on neither
    assert len(report["held_out_levels"]) == 2 and len(report["train_levels"]) == 3
    assert len(report["val_levels"]) == 1 and "records no validation levels" in report[
        "validation"]
    names = [*report["held_out_levels"], *report["train_levels"], *report["val_levels"]]
    assert len(set(names)) == 6
    history = report["history"]
    assert history[0]["step"] == 0 and len(history) >= 3 and report["timesteps"] >= 512
    # the policy returned is the best on validation, the earliest on ties
    best = max(row["val"] for row in history)
    assert report["selected"] == next(row for row in history if row["val"] == best)
    assert any(line.startswith("selected the policy of step ") for line in stdout)
    assert float(stdout[-1].split(": ")[1]) == pytest.approx(report["selected"]["heldout"],
                                                             abs=1e-4)
    assert report["final"]["success"] == pytest.approx(report["selected"]["heldout"])
    from torchrl_bc.sb3 import load_export

    tuned = load_export(out / "finetuned_sb3.pt")
    assert tuned["critic"] == "warmed"
    assert (out / "ppo_log" / "progress.csv").stat().st_size > 0


def test_finetune_validation_levels_and_why(tmp_path) -> None:
    """BC's validation levels come out of PPO's levels; otherwise a named share is set aside,
    with the reason in the line the script prints."""
    from torchrl_bc.sb3 import resolve_levels

    mod = _script("finetune_ppo")
    levels = resolve_levels([CORPUS / f"{name}.replay" for name in LEVELS])
    hashes = [lv.content_hash for lv in levels]
    args = mod.parse_args(["x.pt", "--levels", "unused", "--val-fraction", "0.34"])

    def run(recorded):
        return mod._validation(args, {"source": {"val_levels": recorded}}, levels)

    rest, val, why = run(hashes[:2])
    assert [lv.name for lv in val] == [lv.name for lv in levels[:2]] and len(rest) == 4
    assert why.startswith("BC's validation levels")
    for recorded, reason in ((None, "records no validation levels"),
                             (["0" * 64], "none of BC's validation levels"),
                             (hashes, "every level of --levels is one of BC's")):
        rest, val, why = run(recorded)
        assert len(val) == 2 and len(rest) == 4 and reason in why, why
    args.val_fraction = 1.5  # a bad value is named by its own flag
    with pytest.raises(ValueError, match="--val-fraction must be in"):
        run(None)
    args.select = "last"
    assert run(hashes[:2]) == (levels, [], "none")


def test_configs_default_follows_the_script_not_the_cwd(tmp_path, monkeypatch) -> None:
    script = _script()
    monkeypatch.chdir(tmp_path)  # no configs/ here
    assert script.CONFIGS == REPO / "configs"
    args = script.parse_args(["--replay-data-dir", str(tmp_path), "--out", str(tmp_path / "o")])
    script.check_args(args)  # configs/mlp.yaml is found beside the script
    args = script.parse_args(["--replay-data-dir", str(tmp_path), "--bc-steps", "1000",
                              "--scratch-max-steps", "5000"])  # below 20 x 1000
    with pytest.raises(ValueError, match="below scratch's minimum"):
        script.check_args(args)
    args = script.parse_args(["--replay-data-dir", str(tmp_path), "--architecture", "nope"])
    with pytest.raises(FileNotFoundError, match=r"nope\.yaml"):
        script.check_args(args)


def test_library_holds_no_recipe() -> None:
    """The comparison's orchestration lives in the script; sb3/ keeps reusable pieces."""
    assert not (REPO / "torchrl_bc" / "sb3" / "compare.py").exists()
    for path in (REPO / "torchrl_bc").rglob("*.py"):
        assert 'Path("configs")' not in path.read_text(), path


BC_CONFIG = """\
architecture: {preset: mlp, state_hidden: [32], state_dim: 32, features_dim: 32,
               head_hidden: [32], value_hidden: [32]}
observation: {frame_skip: 1, modalities: [game_state, action_mask]}
data: {val_fraction: 0.25, mirror: false}
train: {epochs: 1, max_steps_per_epoch: 8, batch_size: 64,
        early_stop: {metric: train/nll, patience: 0}}
eval: {train_levels: 1, sampled: false}
logging: {wandb: disabled, plots: false}
"""
LEVELS = ("corridor-0", "corridor-8", "corridor-16", "gaps-1", "gaps-17", "switch_first-5")


@pytest.mark.slow
def test_script_end_to_end_on_tiny_budgets(tmp_path, capsys) -> None:
    """Split, BC, exports, 2 seeds of scratch / BC / BC+warm+KL, summary, files, lines."""
    levels = tmp_path / "levels"
    levels.mkdir()
    for name in LEVELS:
        shutil.copy(CORPUS / f"{name}.replay", levels)
    (tmp_path / "bc.yaml").write_text(BC_CONFIG)
    out = tmp_path / "out"
    script = _script()
    argv = ["--replay-data-dir", str(levels), "--heldout-fraction", "0.34", "--suite", "none",
            "--bc-config", str(tmp_path / "bc.yaml"), "--seeds", "0", "1",
            "--variants", "scratch", "bc", "bc_warm_kl", "--finetune", "bc_warm_kl",
            "--bc-steps", "512", "--scratch-factor", "2", "--scratch-max-steps", "2048",
            "--plateau-window", "2", "--eval-every", "256", "--late-eval-every", "512",
            "--n-envs", "4", "--n-steps", "64", "--batch-size", "64", "--n-epochs", "1",
            "--warmup-steps", "4000", "--max-ticks", "300", "--kl-updates", "4",
            "--bootstrap-reps", "200", "--wandb", "disabled", "--out", str(out)]
    assert script.main(argv) == 0
    stdout = capsys.readouterr().out
    assert {p.name for p in out.iterdir()} >= {"results.json", "results.md", "curves.png",
                                              "export.pt", "export_warm.pt", "split", "bc"}
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    results = json.loads((out / "results.json").read_text())
    split = results["split"]
    train = {r["level"] for r in split["train"]}
    held = {r["level"] for r in split["heldout"]}
    assert train and held and not train & held
    # PPO validates on BC's validation levels and trains on the rest of the training levels
    sizes = results["levels"]
    assert list(sizes) == ["train", "val", "heldout"] and sizes["heldout"] == len(held)
    assert sizes["val"] >= 1 and sizes["train"] + sizes["val"] == len(train)
    runs = results["runs"]
    assert sorted((r["variant"], r["seed"]) for r in runs) == sorted(
        (v, s) for v in ("scratch", "bc", "bc_warm_kl") for s in (0, 1))
    for r in runs:
        steps = [row["step"] for row in r["history"]]
        assert steps[0] == 0 and steps == sorted(set(steps))
        best = max(row["val"] for row in r["history"])  # selected: earliest best on val
        assert r["selected"] == next(row for row in r["history"] if row["val"] == best)
        if r["variant"] == "scratch":  # never stops before 2x the BC budget, never past its cap
            assert 1024 <= r["steps"] <= 2048 + 256 and r["min_steps"] == 1024
            assert r["plateau"] or r["steps"] >= 2048
        else:
            assert r["steps"] >= 512 and not r["plateau"]
    bc_runs = [r for r in runs if r["variant"] != "scratch"]
    # every BC variant starts from the same BC policy: identical greedy success at step 0
    assert len({json.dumps(r["history"][0], sort_keys=True) for r in bc_runs}) == 1
    summary = results["summary"]
    assert summary["least_forgetting"] in ("bc", "bc_warm_kl")
    assert summary["finetune"] == "bc_warm_kl"
    # the name: value lines end stdout and agree with results.json
    lines = dict(line.split(": ", 1) for line in stdout.strip().splitlines()[-60:]
                 if ": " in line and not line.startswith("|"))
    assert lines["least_forgetting_variant"] == summary["least_forgetting"]
    assert float(lines["scratch_heldout_final_iqm"]) == pytest.approx(
        summary["variants"]["scratch"]["heldout"]["final"]["iqm"], abs=1e-4)
    assert int(lines["scratch_steps"]) == summary["variants"]["scratch"]["steps"]
    for key in ("bc_policy_heldout_success", "bc_heldout_drop_to_minimum",
                "bc_heldout_selected_minus_bc", "bc_heldout_selected_iqm",
                "heldout_bc_early_ratio", "heldout_scratch_final_ratio"):
        assert key in lines, key
    assert stdout.strip().splitlines()[-1].startswith("heldout_scratch_final_ratio: ")
    md = (out / "results.md").read_text()
    assert "| scratch | 2 |" in md and "Least forgetting: `" in md

    # Runs in parallel worker processes give the same results (the script as users run it).
    par = [*argv[:argv.index("--out")], "--out", str(tmp_path / "par"), "--workers", "2",
           "--bc-checkpoint", str(out / "bc" / "best.pt")]
    par.remove("--bc-config")
    par.remove(str(tmp_path / "bc.yaml"))
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "train_and_compare.py"), *par],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    again = json.loads((tmp_path / "par" / "results.json").read_text())["runs"]
    assert [(r["variant"], r["seed"], r["history"]) for r in again] == [
        (r["variant"], r["seed"], r["history"]) for r in runs]

    # A second run refuses to overwrite; a BC checkpoint that saw a held-out level is refused.
    with pytest.raises(SystemExit) as exc:
        script.main(argv)
    assert exc.value.code == 2
    assert "already holds a comparison" in capsys.readouterr().err
    other = [*argv[:argv.index("--out")], "--out", str(tmp_path / "out2"), "--split-seed", "7",
             "--heldout-fraction", "0.5", "--bc-checkpoint", str(out / "bc" / "best.pt")]
    other.remove("--bc-config")
    other.remove(str(tmp_path / "bc.yaml"))
    assert script.main(other) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "held-out level(s)" in err[0] and "not a held-out test" in err[0]


# -- the evaluation callback --------------------------------------------------------------------
class _FakeModel:
    """What a callback reads from PPO: the step count, the policy, env and logger."""

    def __init__(self) -> None:
        self.num_timesteps = 0
        self.policy = object()
        self.logger = None

    def get_env(self):
        return None


def _learn(cb, model: _FakeModel, budget: int, rollout: int) -> None:
    """SB3's learn() loop as the callback sees it: rollouts of ``rollout`` steps, step by step."""
    cb.init_callback(model)
    cb.on_training_start({}, {})
    while model.num_timesteps < budget:
        cb.on_rollout_start()
        for _ in range(rollout // 10):
            model.num_timesteps += 10
            if not cb.on_step():
                cb.on_training_end()
                return
        cb.on_rollout_end()
    cb.on_training_end()


@pytest.mark.parametrize("use_stop", [False, True])
def test_heldout_evaluation_schedule_and_stop(monkeypatch, use_stop) -> None:
    from torchrl_bc.sb3 import ppo

    curve = {0: 0.0, 100: 0.2, 200: 0.4, 400: 0.5, 600: 0.5, 800: 0.5, 1000: 0.5}
    seen = []

    def fake_success(policy, levels, *args, **kwargs):
        step = model.num_timesteps
        seen.append((step, tuple(levels)))
        return curve.get(step, -1.0) + (0.1 if levels == ["b"] else 0.0)

    monkeypatch.setattr(ppo, "success_rate", fake_success)
    model = _FakeModel()
    rows = []
    cb = ppo.HeldOutEvaluation(
        {"train": ["a"], "heldout": ["b"]}, config=None, padding=None,
        schedule=lambda s: s + (100 if s < 200 else 200),
        stop=(lambda h: h[-1]["step"] >= 600 and is_flat([r["train"] for r in h], 2, 0.0))
        if use_stop else None, on_eval=rows.append)
    _learn(cb, model, budget=1000, rollout=100)
    steps = [r["step"] for r in cb.history]
    assert rows == cb.history
    # evaluated at step 0, at rollout starts on the schedule, each row on both level sets
    assert [r["heldout"] - r["train"] for r in cb.history] == pytest.approx([0.1] * len(steps))
    assert len(seen) == 2 * len(steps)
    if use_stop:  # flat at 800 (600 and 800 gain nothing on 400's 0.5): stop, no further update
        assert steps == [0, 100, 200, 400, 600, 800] and cb.stopped
        assert model.num_timesteps == 810  # the one step whose on_step said stop
    else:  # the budget ends the run; the end is evaluated once
        assert steps == [0, 100, 200, 400, 600, 800, 1000] and not cb.stopped
    with pytest.raises(ValueError, match="no level sets"):
        ppo.HeldOutEvaluation({}, None, None, lambda s: s + 1)


def test_heldout_evaluation_keeps_the_best_policy_on_validation(monkeypatch) -> None:
    """``select``: the weights of the best validation evaluation, the earliest on ties, are
    kept while training moves on, and ``restore_selected`` puts them back."""
    import torch

    from torchrl_bc.sb3 import ppo

    val = {0: 0.3, 100: 0.2, 200: 0.5, 300: 0.5, 400: 0.1}
    monkeypatch.setattr(ppo, "success_rate", lambda policy, levels, *a, **k:
                        val[model.num_timesteps] if levels == ["v"] else 0.0)
    model = _FakeModel()
    model.policy = torch.nn.Linear(2, 2)

    class Train(ppo.HeldOutEvaluation):  # each rollout changes the weights, as PPO would
        def _on_rollout_end(self) -> None:
            with torch.no_grad():
                model.policy.weight.add_(1.0)

    cb = Train({"heldout": ["h"], "val": ["v"]}, None, None, lambda s: s + 100, select="val")
    _learn(cb, model, budget=400, rollout=100)
    assert [r["step"] for r in cb.history] == [0, 100, 200, 300, 400]
    assert cb.selected == {"step": 200, "heldout": 0.0, "val": 0.5}
    weight_at_200 = cb.selected_state["weight"].clone()
    assert not torch.equal(model.policy.weight, weight_at_200)
    assert cb.restore_selected() == cb.selected
    assert torch.equal(model.policy.weight, weight_at_200)
    with pytest.raises(ValueError, match="selection set 'val'"):
        ppo.HeldOutEvaluation({"heldout": ["h"]}, None, None, lambda s: s + 1, select="val")
    plain = ppo.HeldOutEvaluation({"heldout": ["h"]}, None, None, lambda s: s + 1)
    with pytest.raises(RuntimeError, match="no policy selected"):
        plain.restore_selected()
