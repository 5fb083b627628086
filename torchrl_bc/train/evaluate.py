"""Closed-loop evaluation: roll the policy out in ``NppEnv`` and count wins.

Open-loop accuracy says little about whether a cloned policy finishes levels (compounding
errors), so this is the metric checkpoints are selected on. Levels run in lockstep, one env
each, with one batched policy forward per step; each episode is capped at ``tick_factor`` x the
demo length (or ``max_ticks`` without a demo), so a bad policy costs at most that.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from torchrl_bc.env.npp_env import NppEnv
from torchrl_bc.obs import ObservationConfig
from torchrl_bc.train.metrics import masked_logits
from torchrl_bc.train.model import LogitsNet, level_graphs_on

__all__ = ["EvalLevel", "Rollout", "discover_levels", "family_success", "rollout_levels",
           "summarise"]


@dataclass(frozen=True)
class EvalLevel:
    name: str
    map_data: bytes
    demo_ticks: int = 0  # 0: no demo known
    family: str = ""  # generated suites: the level family, for per-family success

    def cap(self, tick_factor: float, max_ticks: int) -> int:
        if self.demo_ticks > 0:
            return max(1, min(max_ticks, math.ceil(tick_factor * self.demo_ticks)))
        return max_ticks


@dataclass(frozen=True)
class Rollout:
    name: str
    won: bool
    died: bool
    ticks: int
    demo_ticks: int
    cap: int


def _collate(obs_list: list[dict[str, np.ndarray]], levels: list[int], keys: Sequence[str],
             device: torch.device) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for k in keys:
        if k == "graph_level":
            out[k] = torch.tensor(levels, dtype=torch.int64, device=device)[:, None]
            continue
        arrays = [o[k] for o in obs_list]
        if k == "graph_entity_state":
            m = max(1, max(a.shape[0] for a in arrays))
            arrays = [np.pad(a, ((0, m - a.shape[0]), (0, 0))) for a in arrays]
        arr = np.stack(arrays)
        if k == "graph_ninja_node":
            arr = arr.astype(np.int64)
        out[k] = torch.from_numpy(arr).to(device)
    return out


@torch.no_grad()
def rollout_levels(net: LogitsNet, levels: Sequence[EvalLevel], obs_config: ObservationConfig,
                   *, greedy: bool = True, generator: torch.Generator | None = None,
                   tick_factor: float = 2.0, max_ticks: int = 5000, batch: int = 128,
                   restore_graphs: Sequence | None = None, record: int | None = None,
                   record_scale: int = 2) -> tuple[list[Rollout], list[np.ndarray]]:
    """One episode per level; returns the rollouts and, if ``record`` is a level index, the RGB
    frames of that level's episode (for a GIF)."""
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    results: list[Rollout] = []
    frames: list[np.ndarray] = []
    try:
        for start in range(0, len(levels), batch):
            chunk = list(levels[start:start + batch])
            rec = None if record is None or not start <= record < start + len(chunk) \
                else record - start
            res, fr = _rollout_chunk(net, chunk, obs_config, greedy, generator, tick_factor,
                                     max_ticks, restore_graphs, rec, record_scale, device)
            results.extend(res)
            frames.extend(fr)
    finally:
        net.train(was_training)
    return results, frames


def _rollout_chunk(net: LogitsNet, levels: list[EvalLevel], obs_config: ObservationConfig,
                   greedy: bool, generator: torch.Generator | None, tick_factor: float,
                   max_ticks: int, restore_graphs: Sequence | None, record: int | None,
                   record_scale: int, device: torch.device
                   ) -> tuple[list[Rollout], list[np.ndarray]]:
    caps = [lv.cap(tick_factor, max_ticks) for lv in levels]
    envs = [NppEnv(lv.map_data, obs_config, max_ticks=cap, render_scale=record_scale)
            for lv, cap in zip(levels, caps, strict=True)]
    obs = [env.reset()[0] for env in envs]
    graphs = [env.static_graph for env in envs] if obs_config.has("graph") else []
    keys = [*net.in_keys, "action_mask"] if obs_config.has("action_mask") else net.in_keys
    active = list(range(len(envs)))
    outcome: dict[int, tuple[bool, bool, int]] = {}
    frames: list[np.ndarray] = []
    if record is not None:
        frames.append(envs[record].render())
    with level_graphs_on(net, graphs, restore_graphs):
        while active:
            batch = _collate([obs[i] for i in active], active, keys, device)
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
                if i == record:
                    frames.append(envs[i].render())
                if term or trunc:
                    outcome[i] = (bool(info["won"]), bool(info["died"]), int(info["frame"]))
                else:
                    still.append(i)
            active = still
    results = [Rollout(lv.name, *outcome[i], lv.demo_ticks, caps[i])
               for i, lv in enumerate(levels)]
    return results, frames


def summarise(rollouts: Sequence[Rollout], prefix: str) -> dict[str, float]:
    """Success rate, death rate, and episode length / demo length over the wins."""
    if not rollouts:
        return {}
    wins = [r for r in rollouts if r.won]
    out = {f"{prefix}success": len(wins) / len(rollouts),
           f"{prefix}death": sum(r.died for r in rollouts) / len(rollouts)}
    ratios = [r.ticks / r.demo_ticks for r in wins if r.demo_ticks > 0]
    if ratios:
        out[f"{prefix}length_ratio"] = float(np.mean(ratios))
    return out


def family_success(levels: Sequence[EvalLevel], rollouts: Sequence[Rollout]
                   ) -> dict[str, tuple[int, int]]:
    """(wins, episodes) per level family, for levels that carry one (generated suites)."""
    family = {lv.name: lv.family for lv in levels}
    out: dict[str, tuple[int, int]] = {}
    for r in rollouts:
        fam = family.get(r.name, "")
        if fam:
            w, n = out.get(fam, (0, 0))
            out[fam] = (w + int(r.won), n + 1)
    return dict(sorted(out.items()))


def discover_levels(spec: str) -> list[EvalLevel]:
    """A suite name (``torchrl_bc.levels.suites``) or a directory searched recursively for
    ``*.map`` (raw map data) and ``*.replay`` files; each distinct level (map hash) once, with
    the shortest winning demo length found for it (else the length of a non-winning replay,
    else none)."""
    from torchrl_bc.levels.suites import SUITES, load_suite

    path = Path(spec)
    name = spec.removeprefix("suite:")
    if spec.startswith("suite:") or (not path.exists() and spec in SUITES):
        if name not in SUITES:
            raise FileNotFoundError(f"--levels {spec!r}: no such suite ({sorted(SUITES)})")
        return [EvalLevel(lv.level_id, lv.map_data, int(lv.solution.size), lv.family)
                for lv in load_suite(name)]
    if not path.is_dir():
        raise FileNotFoundError(f"--levels {spec!r} is neither a directory nor a suite "
                                f"({sorted(SUITES)})")
    from torchrl_bc.replay.format import ReplayFormatError, read_replay
    from torchrl_bc.sim import Simulator

    found: dict[str, tuple[EvalLevel, bool]] = {}
    for f in sorted(path.rglob("*")):
        if f.suffix not in (".map", ".replay") or not f.is_file():
            continue
        demo, won = 0, False
        if f.suffix == ".replay":
            try:  # a replay that lost bytes of its inputs still names its level
                rep = read_replay(f, allow_short_inputs=True)
            except ReplayFormatError:
                continue
            data = rep.map_data
            won = Simulator(data, source=str(f)).run_inputs(rep.inputs).win_frame == rep.n_ticks
            demo = rep.n_ticks  # a defective demo's length still caps its level (2x)
        else:
            data = f.read_bytes()
        h = hashlib.sha256(data).hexdigest()
        old = found.get(h)
        better = old is None or (won, -demo if demo else -10**9) > (
            old[1], -old[0].demo_ticks if old[0].demo_ticks else -10**9)
        if better:
            found[h] = (EvalLevel(old[0].name if old else f.stem, data, demo), won)
    if not found:
        raise FileNotFoundError(f"no *.map or *.replay files under {path}")
    return [lv for lv, _ in found.values()]
