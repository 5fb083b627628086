"""The batched closed-loop evaluator equals one ``NppEnv`` per level, level for level.

``_reference_rollouts`` is the evaluator as it was before it moved onto ``LevelSlots`` (one
``NppEnv`` per level, per-env observations collated each step); both must give the same
outcome, death and tick count on every level, greedy and sampled.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mapkit import build_map, floor_row

from torchrl_bc.env import NppEnv
from torchrl_bc.models import ArchitectureConfig
from torchrl_bc.obs import ObservationConfig
from torchrl_bc.resources import SAMPLE_CORPUS
from torchrl_bc.train.evaluate import EvalLevel, Rollout, discover_levels, rollout_levels
from torchrl_bc.train.metrics import masked_logits
from torchrl_bc.train.model import build_policy, level_graphs_on

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


def _reference_rollouts(net, levels, cfg, greedy, generator, tick_factor, max_ticks,
                        batch=128):
    """The per-env evaluator (one NppEnv per level), kept here as the specification."""
    out = []
    for start in range(0, len(levels), batch):
        out += _reference_chunk(net, levels[start:start + batch], cfg, greedy, generator,
                                tick_factor, max_ticks)
    return out


@torch.no_grad()
def _reference_chunk(net, levels, cfg, greedy, generator, tick_factor, max_ticks):
    net.eval()
    caps = [lv.cap(tick_factor, max_ticks) for lv in levels]
    envs = [NppEnv(lv.map_data, cfg, max_ticks=cap) for lv, cap in zip(levels, caps, strict=True)]
    obs = [env.reset()[0] for env in envs]
    graphs = [env.static_graph for env in envs] if cfg.has("graph") else []
    keys = [*net.in_keys, "action_mask"] if cfg.has("action_mask") else net.in_keys
    active = list(range(len(envs)))
    outcome = {}
    with level_graphs_on(net, graphs, None):
        while active:
            batch = _collate([obs[i] for i in active], active, keys)
            mask = batch.pop("action_mask", None)
            logits = masked_logits(net(batch), mask)
            if greedy:
                actions = logits.argmax(-1)
            else:
                probs = torch.softmax(logits, -1).cpu()
                actions = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            still = []
            for i, a in zip(active, actions.tolist(), strict=True):
                obs[i], _, term, trunc, info = envs[i].step(a)
                if term or trunc:
                    outcome[i] = (bool(info["won"]), bool(info["died"]), int(info["frame"]))
                else:
                    still.append(i)
            active = still
    return [Rollout(lv.name, *outcome[i], lv.demo_ticks, caps[i]) for i, lv in enumerate(levels)]


def _levels() -> list[EvalLevel]:
    """Corpus levels (demo caps) plus a flat switch-then-exit level a right-leaning policy wins."""
    easy = build_map(floor_row(14), spawn=(20, 58), records=[(3, 90, 58, 0, 0), (4, 40, 58, 0, 0)])
    corpus = discover_levels(str(CORPUS))[:7]
    return [EvalLevel("easy", easy, 0), *corpus, EvalLevel("easy-nodemo", easy, 0)]


def _net(arch: ArchitectureConfig, cfg: ObservationConfig):
    torch.manual_seed(0)
    _, net = build_policy(arch, cfg)
    last = [m for m in net.head.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():  # lean towards RIGHT (2) so that some levels are won
        last.weight.mul_(0.2)
        last.bias.zero_()
        last.bias[2] = 1.5
    return net


@pytest.mark.parametrize("greedy", [True, False])
def test_state_only_evaluator_equals_per_env(greedy):
    cfg = ObservationConfig(modalities=("game_state", "action_mask"), frame_skip=1)
    arch = ArchitectureConfig.from_dict({"preset": "mlp", "state_hidden": [64, 64],
                                         "state_dim": 32, "features_dim": 32,
                                         "head_hidden": [32], "state_fourier": 4})
    net = _net(arch, cfg)
    levels = _levels()
    got, frames = rollout_levels(net, levels, cfg, greedy=greedy,
                                 generator=torch.Generator().manual_seed(3), tick_factor=1.5,
                                 max_ticks=400, batch=4, record=5, record_scale=3)
    want = _reference_rollouts(net, levels, cfg, greedy, torch.Generator().manual_seed(3), 1.5,
                               400, batch=4)
    assert got == want
    assert len(frames) == got[5].ticks + 1  # the start, then one frame per step
    env = NppEnv(levels[5].map_data, cfg, render_scale=3)
    env.reset()
    assert np.array_equal(frames[0], env.render())
    assert not all(r.won for r in got)
    if greedy:
        assert any(r.won for r in got)
        assert any(r.ticks == r.cap and not r.won and not r.died for r in got)  # at the cap


def test_all_modalities_evaluator_equals_per_env():
    """Frames, graph and frame_skip 4 (the last step of a capped episode is shorter)."""
    cfg = ObservationConfig(frame_skip=4)
    net = _net(ArchitectureConfig.from_dict({"preset": "tiny"}), cfg)
    levels = _levels()[:4]
    got, frames = rollout_levels(net, levels, cfg, tick_factor=0.7, max_ticks=150, record=0,
                                 record_scale=4)
    want = _reference_rollouts(net, levels, cfg, True, None, 0.7, 150)
    assert got == want
    assert any(r.cap % 4 and r.ticks == r.cap for r in got)  # a cut-short final step
    assert len(frames) == got[0].ticks // 4 + (got[0].ticks % 4 > 0) + 1
    assert frames[0].shape == (150, 264, 3)
