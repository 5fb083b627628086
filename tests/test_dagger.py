"""DAgger with the planner as expert: plans from snapshots, planner labels, a 2-round loop,
and the expert rejoining a level's winning demo (dagger.rejoin_demo)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from torchrl_bc.levels.planner import Planner
from torchrl_bc.levels.rejoin import DemoRejoin
from torchrl_bc.obs import ObservationBuilder
from torchrl_bc.replay.actions import INPUT_TO_ACTION
from torchrl_bc.replay.format import read_replay
from torchrl_bc.resources import SAMPLE_CORPUS
from torchrl_bc.sim import Simulator
from torchrl_bc.sim.constants import WON
from torchrl_bc.sim.level import Level
from torchrl_bc.train import ConfigError, load_config
from torchrl_bc.train.dagger import DaggerRound, _Episode, label_failures

ROOT = Path(__file__).parents[1]
CORPUS = SAMPLE_CORPUS
LEVELS = ("corridor-0", "switch_first-5", "gaps-1")


def _config(tmp_path: Path, levels: Path):
    path = tmp_path / "dagger.yaml"
    path.write_text(yaml.safe_dump({
        "architecture": {"preset": "mlp", "modalities": ["game_state", "local_view",
                                                         "objective"],
                         "state_hidden": [16], "state_dim": 16, "local_channels": [4, 8],
                         "local_dim": 16, "objective_hidden": [8], "objective_dim": 8,
                         "features_dim": 16, "head_hidden": [16], "value_hidden": [16]},
        "observation": {"frame_skip": 1, "state_zero": ["elapsed"],
                        "modalities": ["game_state", "local_view", "objective", "action_mask"]},
        "data": {"replays": [str(levels)], "val_fraction": 0.0, "mirror": False,
                 "cache_dir": str(tmp_path / "cache")},
        "train": {"epochs": 1, "batch_size": 32, "max_steps_per_epoch": 2, "warmup": 0,
                  "early_stop": {"metric": "train/nll", "patience": 0}},
        "eval": {"train_levels": 1, "sampled": False},
        "dagger": {"rounds": 2, "levels": 3, "label_every": 40, "queries_per_level": 2,
                   "horizon": 8, "max_expansions": 400, "steps": 4,
                   "max_ticks": 150},
        "logging": {"wandb": "disabled", "plots": False},
    }))
    return load_config(path)


def _three_levels(folder: Path) -> Path:
    """``folder`` holding copies of the ``LEVELS`` replays of the sample corpus."""
    folder.mkdir()
    for name in LEVELS:
        (folder / f"{name}.replay").write_bytes((CORPUS / f"{name}.replay").read_bytes())
    return folder


def test_planner_plans_from_a_snapshot() -> None:
    rep = read_replay(CORPUS / "corridor-0.replay")
    sim = Simulator(rep.map_data)
    for b in rep.inputs[:40].tolist():
        sim.tick_input(b)
    snap = sim.snapshot()
    res = Planner(rep.map_data, style="human").solve(10.0, max_expansions=2000, start=snap,
                                                     last_input=int(rep.inputs[39]))
    assert res.solved and len(res.inputs) > 0
    sim.restore(snap)
    for b in res.inputs.tolist():
        sim.tick_input(b)
    assert sim.ninja.state == WON  # wins from the snapshot, on the last input


def test_labels_are_the_planners_actions(tmp_path: Path) -> None:
    cfg = _config(tmp_path, CORPUS)
    rep = read_replay(CORPUS / "corridor-0.replay")
    sim = Simulator(rep.map_data)
    snaps = []
    for t, b in enumerate([0] * 30 + [4] * 30):  # idle, then run left: away from the exit
        if t % 20 == 0:
            snaps.append((t, sim.snapshot(), 0 if t <= 30 else 4, None))
        sim.tick_input(b)
    ep = _Episode(Level("corridor-0", rep.map_data), won=False, steps=60, snaps=snaps)
    stats = DaggerRound(1)
    pairs = label_failures([ep], cfg, stats)
    assert stats.failed == 1 and stats.queries == 2 and stats.solved == 2
    assert len(pairs) == stats.labels == 2 * (cfg.dagger.horizon + 1)
    # The latest snapshot is queried first; its labels are that plan's first actions, and the
    # observations are those of the states along the plan.
    t, snap, last, _ = snaps[-1]
    plan = Planner(rep.map_data, style="human").solve(
        math.inf, max_expansions=cfg.dagger.max_expansions, start=snap, last_input=last)
    h = cfg.dagger.horizon + 1
    assert [a for _, a in pairs[:h]] == INPUT_TO_ACTION[plan.inputs[:h]].tolist()
    check = Simulator(rep.map_data)
    check.restore(snap)
    builder = ObservationBuilder(cfg.observation)
    builder.bind(check)
    for i in range(h):
        o = builder.observe(check)
        assert all(np.array_equal(o[k], pairs[i][0][k]) for k in o)
        check.tick_input(int(plan.inputs[i]))


def test_planner_budget_is_expansions_only_by_default(tmp_path: Path) -> None:
    """No wall-clock cap unless asked: labels then depend on the level and the expansion
    budget, never on how fast or busy the machine is."""
    cfg = _config(tmp_path, CORPUS)
    assert cfg.dagger.budget_s is None
    capped = load_config(ROOT / "configs" / "generalist.yaml", ["dagger.budget_s=2.5"])
    assert capped.dagger.budget_s == 2.5
    with pytest.raises(ConfigError, match=r"dagger\.budget_s"):
        load_config(ROOT / "configs" / "generalist.yaml", ["dagger.budget_s=fast"])


def test_dagger_loop_two_rounds(tmp_path: Path) -> None:
    from torchrl_bc.train import pretrain
    from torchrl_bc.train.checkpoint import load_checkpoint

    cfg = _config(tmp_path, _three_levels(tmp_path / "levels"))
    cfg = dataclasses.replace(cfg, dagger=dataclasses.replace(cfg.dagger, keep_rounds=True))
    torch.manual_seed(0)
    best = pretrain(cfg, tmp_path / "run", verbose=False)
    rounds = json.loads((tmp_path / "run" / "dagger.json").read_text())
    assert [r["round"] for r in rounds] == [1, 2]
    # The untrained student fails, the planner is queried and its labels aggregate.
    assert rounds[0]["failed"] > 0 and rounds[0]["queries"] > 0 and rounds[0]["solved"] > 0
    assert rounds[0]["labels"] > 0 and rounds[0]["aggregate"] == rounds[0]["labels"]
    assert rounds[1]["aggregate"] == rounds[0]["aggregate"] + rounds[1]["labels"]
    assert rounds[1]["aggregate"] > rounds[0]["aggregate"]
    last = load_checkpoint(tmp_path / "run" / "dagger_last.pt")
    assert last["dagger_round"] == 2 and len(last["dagger"]) == 2
    # The weights moved: retraining on the aggregate happened.
    first = load_checkpoint(tmp_path / "run" / "last.pt")
    assert any(not torch.equal(first["model"][k], last["model"][k]) for k in first["model"])
    # No validation level (val_fraction 0): every round ties with BC, and ties go to the later
    # round, so best.pt is the last round's policy.
    assert load_checkpoint(best)["dagger_round"] == 2
    assert all(torch.equal(load_checkpoint(best)["model"][k], last["model"][k])
               for k in last["model"])
    # dagger.keep_rounds: each round's policy stays, the last one being dagger_last.pt's.
    kept = [load_checkpoint(tmp_path / "run" / f"dagger_round{r}.pt") for r in (1, 2)]
    assert [k["dagger_round"] for k in kept] == [1, 2]
    assert all(torch.equal(kept[1]["model"][k], last["model"][k]) for k in last["model"])
    assert any(not torch.equal(kept[0]["model"][k], last["model"][k]) for k in last["model"])


def test_dagger_ema_rolls_out_and_saves_the_average_of_the_trained_weights(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torch.optim.swa_utils import AveragedModel

    from torchrl_bc.train import pretrain
    from torchrl_bc.train.checkpoint import load_checkpoint

    cfg = _config(tmp_path, _three_levels(tmp_path / "levels"))
    decay = 0.6
    cfg = dataclasses.replace(cfg, dagger=dataclasses.replace(cfg.dagger, ema=decay))
    seen: list[dict[str, torch.Tensor]] = []  # the trained actor's weights after each step
    update = AveragedModel.update_parameters

    def record(self, model):
        seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return update(self, model)

    monkeypatch.setattr(AveragedModel, "update_parameters", record)
    torch.manual_seed(0)
    pretrain(cfg, tmp_path / "run", verbose=False)
    assert len(seen) == cfg.dagger.rounds * cfg.dagger.steps  # one update per optimiser step
    expected = dict(seen[0])  # the first update copies, then each one blends in the new step
    for step in seen[1:]:
        expected = {k: decay * expected[k] + (1 - decay) * step[k] for k in expected}
    saved = load_checkpoint(tmp_path / "run" / "dagger_last.pt")["model"]
    assert not list((tmp_path / "run").glob("dagger_round*.pt"))  # keep_rounds is off
    assert set(saved) == set(expected)
    for k, v in saved.items():
        torch.testing.assert_close(v, expected[k], rtol=1e-5, atol=1e-6)
    # The average is not the last step's weights, which is what the run saves without ema.
    assert any(not torch.allclose(saved[k], seen[-1][k]) for k in saved)


def test_dagger_average_last_saves_the_mean_of_the_last_rounds(tmp_path: Path) -> None:
    from torchrl_bc.train import pretrain
    from torchrl_bc.train.checkpoint import load_checkpoint

    cfg = _config(tmp_path, _three_levels(tmp_path / "levels"))
    cfg = dataclasses.replace(cfg, dagger=dataclasses.replace(
        cfg.dagger, rounds=3, average_last=2, keep_rounds=True))
    torch.manual_seed(0)
    best = load_checkpoint(pretrain(cfg, tmp_path / "run", verbose=False))["model"]
    r2, r3 = (load_checkpoint(tmp_path / "run" / f"dagger_round{r}.pt")["model"] for r in (2, 3))
    moved = [k for k in best if best[k].is_floating_point() and not torch.equal(r2[k], r3[k])]
    assert moved  # the rounds differ, so the mean is neither of them
    for k in best:
        expected = (r2[k] + r3[k]) / 2 if best[k].is_floating_point() else r3[k]
        torch.testing.assert_close(best[k], expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match=r"dagger\.average_last"):
        dataclasses.replace(cfg, dagger=dataclasses.replace(cfg.dagger, average_last=4))


def test_dagger_ema_is_checked(tmp_path: Path) -> None:
    cfg = _config(tmp_path, CORPUS)
    for bad in (-0.1, 1.0):
        with pytest.raises(ConfigError, match=r"dagger\.ema must be in \[0, 1\)"):
            dataclasses.replace(cfg, dagger=dataclasses.replace(cfg.dagger, ema=bad))


def test_dagger_levels_from_replays_leaves_out_the_generated_levels(tmp_path: Path,
                                                                    capsys) -> None:
    """``dagger.levels_from: replays`` rolls out (and selects) on recorded replays' levels only,
    leaving out the folders ``make-corpus`` made (``data.generated``, the shipped corpus);
    ``all`` keeps them. With no recorded replay, DAgger says so and runs no round."""
    import dataclasses
    import shutil

    from torchrl_bc.levels.corpus import MANIFEST, is_corpus
    from torchrl_bc.train.dagger import dagger_levels, run_dagger
    from torchrl_bc.train.factories import make_dataset

    mine = _three_levels(tmp_path / "mine")
    generated = tmp_path / "corpus"  # a make-corpus folder: its manifest names the generator
    generated.mkdir()
    for name in ("gaps-17", "corridor-8"):
        (generated / f"{name}.replay").write_bytes((CORPUS / f"{name}.replay").read_bytes())
    shutil.copy(CORPUS / MANIFEST, generated / MANIFEST)
    assert is_corpus(generated) and is_corpus(CORPUS) and not is_corpus(mine)
    (mine / MANIFEST).write_text("[1, 2]")  # a stray manifest.json is no corpus
    assert not is_corpus(mine)
    cfg = _config(tmp_path, mine)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(
        cfg.data, replays=(str(mine), str(generated))))
    data = make_dataset(cfg, tmp_path / "run", verbose=False)

    def names(levels: list[Level]) -> list[str]:
        return sorted(lv.name for lv in levels)

    train_all, _ = dagger_levels(cfg, data, verbose=False)
    assert names(train_all) == sorted([*LEVELS, "gaps-17", "corridor-8"])
    only = dataclasses.replace(cfg, dagger=dataclasses.replace(cfg.dagger,
                                                               levels_from="replays"))
    train_mine, val = dagger_levels(only, data, verbose=False)
    assert names(train_mine) == sorted(LEVELS)
    assert val == []  # val_fraction 0: nothing to select on, said so, not an error
    # The dataset built from both folders, given as data.replays itself (a prepared dataset):
    # its levels still point at their source folders, so the generated ones stay out.
    prepared = dataclasses.replace(only, data=dataclasses.replace(
        only.data, replays=(str(data.path),)))
    reopened = make_dataset(prepared, tmp_path / "run3", verbose=False)
    assert reopened.path == data.path
    assert names(dagger_levels(prepared, reopened, verbose=False)[0]) == sorted(LEVELS)
    corpus_only = dataclasses.replace(only, data=dataclasses.replace(
        only.data, replays=(str(generated),)))
    out = tmp_path / "run2"
    data = make_dataset(corpus_only, out, verbose=False)
    assert dagger_levels(corpus_only, data, verbose=False) == ([], [])
    capsys.readouterr()
    assert run_dagger(corpus_only, out, data, tmp_path / "never-read.pt") == []
    assert "no training level comes from a recorded replay" in capsys.readouterr().err
    assert not (out / "dagger.json").exists()


def test_timeout_queries_spread_over_a_timed_out_rollout_and_not_a_death() -> None:
    """``latest`` queries a failed rollout's last snapshots; ``spread`` queries a timed-out
    one evenly from its latest snapshot back towards its start; a death keeps the latest."""
    from torchrl_bc.train.dagger import query_snapshots

    snaps = [(30 * k, None, 0, None) for k in range(40)]  # steps 0, 30, ..., 1170
    timeout = _Episode(Level("x", b""), steps=1200, snaps=snaps)
    death = dataclasses.replace(timeout, died=True)

    def steps(ep: _Episode, spread: bool) -> list[int]:
        return [s for s, *_ in query_snapshots(ep, 6, spread)]

    assert steps(timeout, False) == steps(death, True) == [1170, 1140, 1110, 1080, 1050, 1020]
    assert steps(timeout, True) == [1170, 990, 780, 570, 390, 180]
    short = dataclasses.replace(timeout, snaps=snaps[:4])
    assert steps(short, True) == [90, 60, 30, 0]  # fewer snapshots than queries: all of them
    with pytest.raises(ConfigError, match=r"dagger\.timeout_queries must be latest\|spread"):
        load_config(raw={"architecture": {"preset": "mlp"},
                         "dagger": {"timeout_queries": "even"}})


def test_dagger_levels_from_is_checked(tmp_path: Path) -> None:
    from torchrl_bc.configfile import ConfigError

    bad = r"dagger\.levels_from must be all\|replays, got .generated."
    with pytest.raises(ConfigError, match=bad):
        load_config(raw={"architecture": {"preset": "mlp"},
                         "dagger": {"levels_from": "generated"}})


def test_student_rollouts_keep_the_progress_memory_with_each_snapshot() -> None:
    """Each snapshot carries the builder's episode memory at that state, so relabelling
    resumes the student's ``progress`` counters rather than restarting them."""
    from torchrl_bc.models import ArchitectureConfig, ObsSpec, build_actor
    from torchrl_bc.obs import ObservationConfig
    from torchrl_bc.train.config import RunConfig
    from torchrl_bc.train.dagger import _student_rollouts

    obs = ObservationConfig(modalities=("game_state", "objective", "progress", "action_mask"),
                            frame_skip=1)
    arch = ArchitectureConfig.from_dict({"preset": "mlp", "modalities": [
        "game_state", "objective", "progress"], "state_hidden": [16], "state_dim": 16,
        "features_dim": 16, "head_hidden": [16]})
    torch.manual_seed(0)
    actor = build_actor(arch, ObsSpec.from_observation_config(obs))
    cfg = RunConfig(architecture=arch, observation=obs)
    rep = read_replay(CORPUS / "gaps-1.replay")
    grad_on: list[bool] = []
    hook = actor.register_forward_pre_hook(lambda *_: grad_on.append(torch.is_grad_enabled()))
    (ep,) = _student_rollouts(actor, [Level("gaps-1", rep.map_data)], cfg, every=25)
    hook.remove()
    assert grad_on and not any(grad_on)  # acting() turns autograd off for the rollouts
    assert len(ep.snaps) >= 3
    for step, snap, _, memory in ep.snaps:
        assert memory is not None and memory.frame == snap.frame == step


def test_student_rollouts_are_capped_at_tick_factor_times_the_demo() -> None:
    """With ``dagger.tick_factor`` a rollout ends at that multiple of the level's demo (the
    evaluation's rule), so a win slower than the metric allows counts as a failure."""
    from dataclasses import replace

    from torchrl_bc.models import ArchitectureConfig, ObsSpec, build_actor
    from torchrl_bc.obs import ObservationConfig
    from torchrl_bc.train.config import DaggerConfig, RunConfig
    from torchrl_bc.train.dagger import _student_rollouts

    obs = ObservationConfig(modalities=("game_state", "action_mask"), frame_skip=1)
    arch = ArchitectureConfig.from_dict({"preset": "mlp", "state_hidden": [16], "state_dim": 16,
                                         "features_dim": 16, "head_hidden": [16]})
    torch.manual_seed(0)
    actor = build_actor(arch, ObsSpec.from_observation_config(obs))
    rep = read_replay(CORPUS / "gaps-1.replay")
    level = Level("gaps-1", rep.map_data, 40)  # a 40-tick demo: capped at 60 ticks with 1.5
    flat = RunConfig(architecture=arch, observation=obs,
                     dagger=DaggerConfig(max_ticks=150))
    capped = replace(flat, dagger=replace(flat.dagger, tick_factor=1.5))
    (long,) = _student_rollouts(actor, [level], flat, every=25)
    (short,) = _student_rollouts(actor, [level], capped, every=25)
    assert not long.won and long.steps == 150 and not long.died
    assert not short.won and short.steps == 60 and not short.died
    with pytest.raises(ConfigError, match=r"dagger\.tick_factor must be >= 0"):
        load_config(raw={"architecture": {"preset": "mlp"}, "dagger": {"tick_factor": -1.0}})


def test_sampled_rollouts_draw_from_the_policy_reproducibly_and_leave_the_global_rng() -> None:
    """``dagger.rollout: sampled`` draws each action from the student's distribution: the same
    seed plays the same episode, another seed another one, greedy ignores the seed, and the
    global generator the rest of the run draws from is left as it was."""
    from dataclasses import replace

    from torchrl_bc.models import ArchitectureConfig, ObsSpec, build_actor
    from torchrl_bc.obs import ObservationConfig
    from torchrl_bc.train.config import DaggerConfig, RunConfig
    from torchrl_bc.train.dagger import _student_rollouts

    obs = ObservationConfig(modalities=("game_state", "action_mask"), frame_skip=1)
    arch = ArchitectureConfig.from_dict({"preset": "mlp", "state_hidden": [16], "state_dim": 16,
                                         "features_dim": 16, "head_hidden": [16]})
    torch.manual_seed(0)
    actor = build_actor(arch, ObsSpec.from_observation_config(obs))  # near-uniform: strays
    rep = read_replay(CORPUS / "gaps-1.replay")
    level = Level("gaps-1", rep.map_data)
    greedy = RunConfig(architecture=arch, observation=obs, dagger=DaggerConfig(max_ticks=120))
    sampled = replace(greedy, dagger=replace(greedy.dagger, rollout="sampled"))

    def inputs(cfg: RunConfig, seed: int) -> list[int]:
        (ep,) = _student_rollouts(actor, [level], cfg, every=1, seed=seed)
        return [held for _, _, held, _ in ep.snaps]

    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, b, c = inputs(sampled, 1), inputs(sampled, 1), inputs(sampled, 2)
    assert torch.equal(torch.get_rng_state(), before)
    assert a == b and a != c and len(set(a)) >= 4
    g1, g2 = inputs(greedy, 1), inputs(greedy, 2)
    assert g1 == g2 and g1 != a  # greedy ignores the seed
    assert torch.equal(torch.get_rng_state(), before)
    with pytest.raises(ConfigError, match=r"dagger\.rollout must be greedy\|sampled"):
        load_config(raw={"architecture": {"preset": "mlp"}, "dagger": {"rollout": "noisy"}})
    with pytest.raises(ConfigError, match=r"dagger\.mix must be in \[0, 1\], got 1\.5"):
        load_config(raw={"architecture": {"preset": "mlp"}, "dagger": {"mix": 1.5}})


def _models_equal(a: Path, b: Path) -> bool:
    from torchrl_bc.train.checkpoint import load_checkpoint

    ma, mb = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    return set(ma) == set(mb) and all(torch.equal(ma[k], mb[k]) for k in ma)


def _count_rollouts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A one-item list counting the rounds that roll the student out from now on."""
    from torchrl_bc.train import dagger as D

    count, rollouts = [0], D._student_rollouts

    def counted(*args, **kwargs):
        count[0] += 1
        return rollouts(*args, **kwargs)

    monkeypatch.setattr(D, "_student_rollouts", counted)
    return count


def test_dagger_resume_continues_after_the_last_finished_round(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchrl_bc.train import dagger as D
    from torchrl_bc.train import pretrain

    cfg = _config(tmp_path, _three_levels(tmp_path / "levels"))
    cfg = dataclasses.replace(cfg, dagger=dataclasses.replace(cfg.dagger, rounds=3,
                                                              average_last=2))
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    pretrain(cfg, whole, verbose=False)

    retrain = D._retrain

    def killed_in_round_three(*args, **kwargs):
        if args[5] == 2:  # r, the round index
            raise KeyboardInterrupt
        return retrain(*args, **kwargs)

    monkeypatch.setattr(D, "_retrain", killed_in_round_three)
    with pytest.raises(KeyboardInterrupt):
        pretrain(cfg, cut, verbose=False)
    assert len(json.loads((cut / "dagger.json").read_text())) == 2
    monkeypatch.setattr(D, "_retrain", retrain)
    played = _count_rollouts(monkeypatch)
    pretrain(cfg, cut, resume=True, verbose=False)
    assert played == [1]  # round 3's student rollouts only
    # Rounds 1-2 were not rerun: the resumed run wrote round 3 only, and ends where the
    # uninterrupted one did, the average of rounds 2-3 included.
    rounds = [json.loads((d / "dagger.json").read_text()) for d in (whole, cut)]
    strip = [[{k: v for k, v in r.items() if k not in ("seconds", "plan_seconds")} for r in rs]
             for rs in rounds]
    assert strip[0] == strip[1] and len(strip[0]) == 3
    for name in ("bc_best.pt", "dagger_last.pt", "best.pt"):
        assert _models_equal(whole / name, cut / name), name
    assert not _models_equal(whole / "best.pt", whole / "dagger_last.pt")


def test_dagger_resume_adds_rounds_to_a_finished_run_and_keeps_its_bc_policy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchrl_bc.train import pretrain
    from torchrl_bc.train.checkpoint import CheckpointMismatch

    cfg = _config(tmp_path, _three_levels(tmp_path / "levels"))
    two = dataclasses.replace(cfg, dagger=dataclasses.replace(cfg.dagger, rounds=2,
                                                              average_last=1))
    three = dataclasses.replace(cfg, dagger=dataclasses.replace(cfg.dagger, rounds=3,
                                                                average_last=1))
    grown, straight = tmp_path / "grown", tmp_path / "straight"
    pretrain(two, grown, verbose=False)
    bc = (grown / "bc_best.pt").read_bytes()
    # Resuming a finished run reruns nothing: best.pt (a DAgger policy by now) is not taken
    # for the BC policy, whose copy stays as it was.
    played = _count_rollouts(monkeypatch)
    pretrain(two, grown, resume=True, verbose=False)
    assert played == [0]
    assert (grown / "bc_best.pt").read_bytes() == bc
    assert len(json.loads((grown / "dagger.json").read_text())) == 2
    # A state written before a config key existed resumes as that key's default (the old
    # behaviour); a changed value is refused, naming the key.
    state = torch.load(grown / "dagger_state.pt", weights_only=True)
    del state["config"]["dagger"]["timeout_queries"]
    torch.save(state, grown / "dagger_state.pt")
    spread = dataclasses.replace(three, dagger=dataclasses.replace(three.dagger,
                                                                   timeout_queries="spread"))
    with pytest.raises(CheckpointMismatch, match=r"dagger\.timeout_queries: 'latest'"):
        pretrain(spread, grown, resume=True, verbose=False)
    # Where the planner runs may change on resume too: the labels are the same bytes.
    three = dataclasses.replace(three, dagger=dataclasses.replace(three.dagger, workers=2))
    pretrain(three, grown, resume=True, verbose=False)
    assert played == [1]
    pretrain(three, straight, verbose=False)
    assert (grown / "bc_best.pt").read_bytes() == bc
    assert len(json.loads((grown / "dagger.json").read_text())) == 3
    for name in ("dagger_last.pt", "best.pt"):
        assert _models_equal(grown / name, straight / name), name
    # A damaged state file is one line naming it, not a traceback from deep inside torch.
    state = grown / "dagger_state.pt"
    state.write_bytes(state.read_bytes()[:100])
    with pytest.raises(CheckpointMismatch, match=r"dagger_state\.pt"):
        pretrain(three, grown, resume=True, verbose=False)


def test_dagger_labels_do_not_depend_on_the_planner_processes(tmp_path: Path) -> None:
    """Two planner processes label the same states with the same actions as one, so the run
    ends with the same weights; ``dagger.workers: 0`` means one process per CPU."""
    import os

    from torchrl_bc.train import pretrain

    cfg = _config(tmp_path, _three_levels(tmp_path / "levels"))
    assert dataclasses.replace(cfg.dagger, workers=0).n_workers() == (os.cpu_count() or 1)
    runs = {}
    for workers in (1, 2):
        c = dataclasses.replace(cfg, dagger=dataclasses.replace(cfg.dagger, rounds=1,
                                                                workers=workers))
        pretrain(c, tmp_path / f"w{workers}", verbose=False)
        runs[workers] = json.loads((tmp_path / f"w{workers}" / "dagger.json").read_text())
    assert runs[1][0]["labels"] > 0
    assert [(r["queries"], r["solved"], r["labels"]) for r in runs[1]] == \
        [(r["queries"], r["solved"], r["labels"]) for r in runs[2]]
    assert _models_equal(tmp_path / "w1" / "dagger_last.pt", tmp_path / "w2" / "dagger_last.pt")


# -- rejoining the demo (dagger.rejoin_demo) ------------------------------------------------
REJOIN_LEVEL = "gaps-1"


def _state_off_the_demo(t: int, extra: list[int]) -> tuple[bytes, np.ndarray, Simulator]:
    """The level's map, its demo and a simulator after ``t`` demo ticks and ``extra`` inputs."""
    rep = read_replay(SAMPLE_CORPUS / f"{REJOIN_LEVEL}.replay")
    sim = Simulator(rep.map_data)
    for b in rep.inputs[:t].tolist() + extra:
        sim.tick_input(b)
    return rep.map_data, rep.inputs, sim


def _wins_from(sim: Simulator, inputs: bytes | np.ndarray) -> bool:
    snap = sim.snapshot()
    seq = list(inputs)
    for i, b in enumerate(seq, 1):
        sim.tick_input(int(b))
        if sim.ninja.state == WON:
            sim.restore(snap)
            return i == len(seq)  # on the last input, not before
    sim.restore(snap)
    return False


def test_join_returns_a_tail_that_wins_and_leaves_the_state() -> None:
    map_data, demo, sim = _state_off_the_demo(30, [])
    rejoin = DemoRejoin(map_data, demo)
    before = (sim.ninja.xpos, sim.ninja.ypos, sim.ninja.xspeed, sim.frame)
    tail = rejoin.join(sim)
    assert tail is not None and rejoin.joined
    assert (sim.ninja.xpos, sim.ninja.ypos, sim.ninja.xspeed, sim.frame) == before
    assert _wins_from(sim, tail)
    assert tail == demo[30:30 + len(tail)].tobytes()  # on the demo itself: its own tail


def test_join_tries_only_near_demo_states_within_its_budget() -> None:
    map_data, demo, sim = _state_off_the_demo(30, [])
    far = DemoRejoin(map_data, demo, radius=0.0, speed=0.0)
    sim.tick_input(4)  # one tick off the demo: no demo state at distance 0
    assert far.join(sim) is None and far.tries == 0 and not far.joined
    spent = DemoRejoin(map_data, demo, max_tries=0)
    assert spent.join(sim) is None and spent.tries == 0


def test_demo_that_does_not_win_is_refused_naming_the_level() -> None:
    map_data, demo, _ = _state_off_the_demo(0, [])
    with pytest.raises(ValueError, match=r"lost\.replay: the demo given to rejoin does not win"):
        DemoRejoin(map_data, demo[: len(demo) // 2], source="lost.replay")


def test_planner_finishes_by_the_demo_where_its_budget_does_not_reach() -> None:
    map_data, demo, sim = _state_off_the_demo(40, [0, 0, 0])  # off the demo by 3 idle ticks
    snap = sim.snapshot()
    planner = Planner(map_data, style="human")
    assert not planner.solve(1e9, max_expansions=3, start=snap).solved
    rejoin = DemoRejoin(map_data, demo)
    res = planner.solve(1e9, max_expansions=3, start=snap, rejoin=rejoin)
    assert res.solved and rejoin.joined
    sim.restore(snap)
    assert _wins_from(sim, res.inputs)
    # A fresh query resets the budget and the flag.
    assert planner.solve(1e9, max_expansions=3, start=snap, rejoin=rejoin).solved
    assert rejoin.tries > 0


def test_label_failures_use_the_demo_and_count_it(tmp_path: Path) -> None:
    cfg = _config(tmp_path, SAMPLE_CORPUS)
    cfg = dataclasses.replace(cfg, dagger=dataclasses.replace(cfg.dagger, max_expansions=3))
    map_data, demo, sim = _state_off_the_demo(40, [0, 0, 0])
    ep = _Episode(Level(REJOIN_LEVEL, map_data), won=False, steps=43,
                  snaps=[(43, sim.snapshot(), 0, None)])
    plain, joined = DaggerRound(1), DaggerRound(1)
    assert label_failures([ep], cfg, plain) == [] and plain.solved == 0
    pairs = label_failures([ep], cfg, joined, {REJOIN_LEVEL: demo.tobytes()})
    assert joined.queries == 1 and joined.solved == joined.rejoined == 1
    assert len(pairs) == joined.labels == cfg.dagger.horizon + 1


def test_dagger_rounds_rejoin_the_training_demos(tmp_path: Path) -> None:
    from torchrl_bc.train import pretrain

    cfg = _config(tmp_path, _three_levels(tmp_path / "levels"))
    cfg = dataclasses.replace(cfg, dagger=dataclasses.replace(
        cfg.dagger, rounds=1, rejoin_demo=True, max_expansions=20))
    torch.manual_seed(0)
    pretrain(cfg, tmp_path / "run", verbose=False)
    (round1,) = json.loads((tmp_path / "run" / "dagger.json").read_text())
    assert round1["failed"] > 0 and 0 < round1["rejoined"] <= round1["solved"]
