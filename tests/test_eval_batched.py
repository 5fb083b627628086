"""The batched closed-loop evaluator equals one ``NppEnv`` per level, level for level.

``_reference_rollouts`` is the evaluator as it was before it moved onto ``LevelSlots`` and then
onto the TorchRL ``LevelsEnv`` (one ``NppEnv`` per level, per-env observations collated each
step, the masked logits' argmax or a categorical draw by hand); both must give the same
outcome, death and tick count on every level, greedy and sampled.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from mapkit import build_map, floor_row
from tensordict import TensorDict
from torchrl.envs.utils import ExplorationType, set_exploration_type

from torchrl_bc.env import NppEnv
from torchrl_bc.env.torchrl_env import LevelsEnv
from torchrl_bc.models import ArchitectureConfig, ObsSpec, build_actor, level_graphs_on
from torchrl_bc.obs import ObservationConfig
from torchrl_bc.resources import SAMPLE_CORPUS
from torchrl_bc.sim.level import Level
from torchrl_bc.train.evaluate import MOVE_PX, Rollout, discover_levels, rollout_levels

CORPUS = SAMPLE_CORPUS
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _collate(obs_list, levels, keys):
    out = {}
    for k in keys:
        if k == "graph_level":
            out[k] = torch.tensor(levels, dtype=torch.int64)[:, None]
            continue
        arrays = [o[k] for o in obs_list]
        if k == "graph_entity_state":
            m = max(1, max(a.shape[0] for a in arrays))
            arrays = [np.pad(a, ((0, m - a.shape[0]), (0, 0))) for a in arrays]
        arr = np.stack(arrays)
        if k == "graph_ninja_node":
            arr = arr.astype(np.int64)
        out[k] = torch.from_numpy(arr)
    return out


def _reference_rollouts(actor, levels, cfg, greedy, generator, tick_factor, max_ticks,
                        batch=128):
    """The per-env evaluator (one NppEnv per level), kept here as the specification.

    Sampled draws use torch's RNG seeded from ``generator`` (what ``rollout_levels`` does), one
    draw per level still playing."""
    out = []
    seed = None if greedy else int(torch.randint(2 ** 62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        for start in range(0, len(levels), batch):
            out += _reference_chunk(actor, levels[start:start + batch], cfg, greedy,
                                    tick_factor, max_ticks)
    return out


@torch.no_grad()
def _reference_chunk(actor, levels, cfg, greedy, tick_factor, max_ticks):
    actor.eval()
    net = actor.module[0]  # observations -> features -> logits, no distribution
    caps = [lv.cap(tick_factor, max_ticks) for lv in levels]
    envs = [NppEnv(lv.map_data, cfg, max_ticks=cap) for lv, cap in zip(levels, caps, strict=True)]
    obs = [env.reset()[0] for env in envs]
    graphs = [env.static_graph for env in envs] if cfg.has("graph") else []
    keys = [k for k in net.in_keys if k != "action_mask"]
    active = list(range(len(envs)))
    outcome = {}
    # stillness by hand: where each ninja last stood, and the tick it got there
    anchor = [(env.sim.ninja.xpos, env.sim.ninja.ypos, 0) for env in envs]
    with level_graphs_on(actor, graphs, None):
        while active:
            batch = _collate([obs[i] for i in active], active, [*keys, "action_mask"])
            mask = batch.pop("action_mask")
            logits = net(TensorDict(batch, batch_size=[len(active)]))["logits"]
            logits = logits.masked_fill(~mask, float("-inf"))
            if greedy:
                actions = logits.argmax(-1)
            else:
                actions = torch.distributions.Categorical(logits=logits).sample()
            still = []
            for i, a in zip(active, actions.tolist(), strict=True):
                obs[i], _, term, trunc, info = envs[i].step(a)
                ninja = envs[i].sim.ninja
                ax, ay, _ = anchor[i]
                if math.hypot(ninja.xpos - ax, ninja.ypos - ay) >= MOVE_PX:
                    anchor[i] = (ninja.xpos, ninja.ypos, envs[i].sim.frame)
                if term or trunc:
                    outcome[i] = (bool(info["won"]), bool(info["died"]), int(info["frame"]),
                                  ninja.death_cause)
                else:
                    still.append(i)
            active = still
    return [Rollout(lv.name, *outcome[i][:3], lv.demo_ticks, caps[i],
                    outcome[i][2] - anchor[i][2], outcome[i][3]) for i, lv in enumerate(levels)]


def _levels() -> list[Level]:
    """Corpus levels (demo caps) plus a flat switch-then-exit level a right-leaning policy wins."""
    easy = build_map(floor_row(14), spawn=(20, 58), records=[(3, 90, 58, 0, 0), (4, 40, 58, 0, 0)])
    corpus = discover_levels(str(CORPUS))[:7]
    return [Level("easy", easy, 0), *corpus, Level("easy-nodemo", easy, 0)]


def _actor(arch: ArchitectureConfig, cfg: ObservationConfig):
    torch.manual_seed(0)
    actor = build_actor(arch, ObsSpec.from_observation_config(cfg))
    last = [m for m in actor.module[0].module[1].modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():  # lean towards RIGHT (2) so that some levels are won
        last.weight.mul_(0.2)
        last.bias.zero_()
        last.bias[2] = 1.5
    return actor


@pytest.mark.parametrize("greedy", [True, False])
def test_state_only_evaluator_equals_per_env(greedy):
    cfg = ObservationConfig(modalities=("game_state", "action_mask"), frame_skip=1)
    arch = ArchitectureConfig.from_dict({"preset": "mlp", "state_hidden": [64, 64],
                                         "state_dim": 32, "features_dim": 32,
                                         "head_hidden": [32], "state_fourier": 4})
    actor = _actor(arch, cfg)
    levels = _levels()
    grad_on: list[bool] = []
    hook = actor.register_forward_pre_hook(lambda *_: grad_on.append(torch.is_grad_enabled()))
    got, frames = rollout_levels(actor, levels, cfg, greedy=greedy,
                                 generator=torch.Generator().manual_seed(3), tick_factor=1.5,
                                 max_ticks=400, batch=4, record=5, record_scale=3)
    hook.remove()
    assert grad_on and not any(grad_on)  # the policy acts without building autograd graphs
    want = _reference_rollouts(actor, levels, cfg, greedy, torch.Generator().manual_seed(3), 1.5,
                               400, batch=4)
    assert got == want
    assert len(frames) == got[5].ticks + 1  # the start, then one frame per step
    env = NppEnv(levels[5].map_data, cfg, render_scale=3)
    env.reset()
    assert np.array_equal(frames[0], env.render())
    assert not all(r.won for r in got)
    if greedy:
        one_chunk, _ = rollout_levels(actor, levels, cfg, tick_factor=1.5, max_ticks=400)
        assert one_chunk == got  # greedy outcomes do not depend on the chunk size
        assert any(r.won for r in got)
        assert any(r.ticks == r.cap and not r.won and not r.died for r in got)  # at the cap


def test_all_modalities_evaluator_equals_per_env():
    """Frames, graph and frame_skip 4 (the last step of a capped episode is shorter)."""
    cfg = ObservationConfig(frame_skip=4)
    actor = _actor(ArchitectureConfig.from_dict({"preset": "tiny"}), cfg)
    levels = _levels()[:4]
    got, frames = rollout_levels(actor, levels, cfg, tick_factor=0.7, max_ticks=150, record=0,
                                 record_scale=4)
    want = _reference_rollouts(actor, levels, cfg, True, None, 0.7, 150)
    assert got == want
    assert any(r.cap % 4 and r.ticks == r.cap for r in got)  # a cut-short final step
    assert len(frames) == got[0].ticks // 4 + (got[0].ticks % 4 > 0) + 1
    assert frames[0].shape == (150, 264, 3)


def test_levels_env_under_env_rollout():
    """``env.rollout(policy=actor)`` plays each level once and ends as the evaluator does."""
    cfg = ObservationConfig(modalities=("game_state", "action_mask"), frame_skip=1)
    arch = ArchitectureConfig.from_dict({"preset": "mlp", "state_hidden": [32], "state_dim": 16,
                                         "features_dim": 16, "head_hidden": [16]})
    actor = _actor(arch, cfg)
    levels = _levels()
    want, _ = rollout_levels(actor, levels, cfg, tick_factor=1.5, max_ticks=300)
    env = LevelsEnv([lv.map_data for lv in levels], [r.cap for r in want], cfg)
    with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
        traj = env.rollout(1000, policy=actor, break_when_any_done=False,
                           break_when_all_done=True)
    assert traj.batch_size[0] == len(levels)
    final = traj[:, -1]["next"]
    assert final["done"].all()
    causes = env.slots.death_causes
    got = [Rollout(lv.name, *out, lv.demo_ticks, r.cap, r.still_ticks, causes[i])
           for i, (lv, out, r) in enumerate(zip(levels, env.outcomes(), want, strict=True))]
    assert got == want
    assert final["won"].squeeze(-1).tolist() == [r.won for r in want]
    assert final["ticks"].squeeze(-1).tolist() == [r.ticks for r in want]
    assert any(r.won for r in want) and not all(r.won for r in want)


def test_memory_modalities_evaluator_equals_per_env():
    """``progress`` is episode memory in each slot's builder: a slot that starts its next
    level (or the same level again) must start it afresh, as a new ``NppEnv`` episode does."""
    cfg = ObservationConfig(modalities=("game_state", "objective", "surroundings", "progress",
                                        "action_mask"), frame_skip=1)
    arch = ArchitectureConfig.from_dict({"preset": "mlp", "modalities": [
        "game_state", "objective", "surroundings", "progress"], "state_hidden": [32],
        "state_dim": 16, "features_dim": 16, "head_hidden": [16]})
    actor = _actor(arch, cfg)
    levels = _levels()
    got, _ = rollout_levels(actor, levels, cfg, tick_factor=1.5, max_ticks=300, batch=3)
    want = _reference_rollouts(actor, levels, cfg, True, None, 1.5, 300, batch=3)
    assert got == want and any(r.won for r in got)


def test_still_tracker_counts_a_standstill_and_outcome_names_it():
    """A ninja standing on a flat floor for 400 ticks is stuck; one running to and fro is not."""
    from torchrl_bc.env.slots import LevelSlots
    from torchrl_bc.train.evaluate import STUCK_TICKS, StillTracker

    level = build_map(floor_row(14), spawn=(60, 58), records=[(3, 150, 58, 0, 0),
                                                               (4, 100, 58, 0, 0)])
    cfg = ObservationConfig(modalities=("game_state", "action_mask"), frame_skip=1)
    slots = LevelSlots([level], 2, cfg)
    for i in range(2):
        slots.load(i, 0, 400)
    still = StillTracker(slots)
    for t in range(400):
        slots.step(np.array([0, 2 if t // 60 % 2 == 0 else 1]), 1)  # NOOP; RIGHT, LEFT, ...
        still.update(slots)
    stalled = still.still(slots)
    assert slots.frames.tolist() == [400, 400]
    assert stalled[0] >= STUCK_TICKS and stalled[1] < 10
    base = dict(name="x", won=False, died=False, ticks=400, demo_ticks=0, cap=400)
    assert Rollout(**base, still_ticks=int(stalled[0])).outcome == "stuck"
    assert Rollout(**base, still_ticks=int(stalled[1])).outcome == "timeout"
    assert Rollout(**base).outcome == "timeout"  # not tracked: never called stuck
    short = {**base, "ticks": 100, "cap": 100}  # a short cap: still for half of it is stuck
    assert Rollout(**short, still_ticks=50).outcome == "stuck"
    assert Rollout(**short, still_ticks=49).outcome == "timeout"
    assert Rollout(**{**base, "died": True}, still_ticks=400).outcome == "died"


def test_rollouts_name_what_killed_the_ninja():
    """A deadly mine between the spawn and the exit: a right-leaning policy dies of it, and the
    rollout says so; a win carries no cause."""
    cfg = ObservationConfig(modalities=("game_state", "action_mask"), frame_skip=1)
    arch = ArchitectureConfig.from_dict({"preset": "mlp", "state_hidden": [32], "state_dim": 16,
                                         "features_dim": 16, "head_hidden": [16]})
    actor = _actor(arch, cfg)
    mined = build_map(floor_row(14), spawn=(20, 58), records=[(1, 40, 58, 0, 0),
                                                               (3, 90, 58, 0, 0),
                                                               (4, 60, 58, 0, 0)])
    levels = [Level("mined", mined, 0), _levels()[0]]
    got, _ = rollout_levels(actor, levels, cfg, max_ticks=300)
    assert (got[0].outcome, got[0].death_cause) == ("died", "mine")
    assert got[1].won and got[1].death_cause == ""
    assert got == _reference_rollouts(actor, levels, cfg, True, None, 2.0, 300)


@pytest.mark.parametrize("frame_skip", [1, 4])
def test_kept_inputs_replay_each_episode_exactly(frame_skip, tmp_path):
    """``keep_inputs`` gives one input byte per tick played, and the saved replays, simulated
    from the map alone, end as the episodes did: the same win, death and tick count."""
    from torchrl_bc.replay.format import read_replay
    from torchrl_bc.sim import Simulator
    from torchrl_bc.train.evaluate import save_episode_replays

    cfg = ObservationConfig(modalities=("game_state", "action_mask"), frame_skip=frame_skip)
    arch = ArchitectureConfig.from_dict({"preset": "mlp", "state_hidden": [32],
                                         "state_dim": 16, "features_dim": 16,
                                         "head_hidden": [16]})
    actor = _actor(arch, cfg)
    mined = build_map(floor_row(14), spawn=(20, 58),
                      records=[(1, 60, 58, 0, 0), (3, 90, 58, 0, 0), (4, 40, 58, 0, 0)])
    levels = [*_levels(), Level("mined", mined, 0)]  # a mine on the way to the switch
    got, _ = rollout_levels(actor, levels, cfg, tick_factor=1.3, max_ticks=301, batch=4,
                            keep_inputs=True)
    plain, _ = rollout_levels(actor, levels, cfg, tick_factor=1.3, max_ticks=301)
    assert got == plain and plain[0].inputs is None  # keeping them changes nothing else
    assert {"won", "died", "stuck"} <= {r.outcome for r in got}
    paths = save_episode_replays(tmp_path / "eps", list(zip(levels, got, strict=True)))
    assert (paths[0].name, paths[-1].name) == ("easy.replay", "mined.replay")
    for r, lv, path in zip(got, levels, paths, strict=True):
        assert r.inputs.shape == (r.ticks,) and r.inputs.dtype == np.uint8
        rep = read_replay(path)
        assert rep.map_data == lv.map_data and rep.success == r.won
        assert np.array_equal(rep.inputs, r.inputs)
        trace = Simulator(rep.map_data).run_inputs(rep.inputs)
        assert (trace.win_frame == r.ticks) == r.won
        assert (trace.death_frame > 0) == r.died
        assert trace.ticks == r.ticks
    # two levels of one name: each file holds its own level's map
    other = Level("easy", levels[1].map_data, 0)
    again = save_episode_replays(tmp_path / "eps2", [(levels[0], got[0]), (other, got[0])])
    assert [p.name for p in again] == ["easy.replay", "easy-2.replay"]
    assert [read_replay(p).map_data for p in again] == [levels[0].map_data, other.map_data]
