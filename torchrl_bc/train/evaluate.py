"""Closed-loop evaluation: roll the policy out in the simulator and count wins.

Open-loop accuracy says little about whether a cloned policy finishes levels (compounding
errors), so this is the metric checkpoints are selected on. Levels run in lockstep in one
TorchRL env, :class:`~torchrl_bc.env.torchrl_env.LevelsEnv` (one compiled call steps them all;
the observations are the ``NppEnv`` ones byte for byte), and the ``ProbabilisticActor`` acts
on them, one batched forward per step, greedy or sampled via ``set_exploration_type``; each
episode is capped at ``tick_factor`` x the demo length (or ``max_ticks`` without a demo), so a
bad policy costs at most that.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np
import torch
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.modules import ProbabilisticActor

from torchrl_bc.env.slots import LevelSlots
from torchrl_bc.env.torchrl_env import LevelsEnv
from torchrl_bc.models import level_graphs_on
from torchrl_bc.models.policy import without_log_prob
from torchrl_bc.obs import ObservationConfig
from torchrl_bc.replay.actions import actions_to_inputs
from torchrl_bc.sim.level import Level, map_hash

__all__ = ["MOVE_PX", "STUCK_TICKS", "LevelScan", "Rollout", "SkipReason", "SkippedFile",
           "StillTracker", "acting", "death_kind_of", "discover_levels", "family_success",
           "rollout_levels", "save_episode_replays", "scan_levels", "summarise"]


#: A timed-out episode is ``stuck`` when its ninja stayed within ``MOVE_PX`` of one point for
#: its last ``STUCK_TICKS`` ticks, or the last half of its cap when that is shorter (a demo's
#: length, under the 2x-demo caps): a greedy policy at a fixed point, not a slow one.
MOVE_PX = 6.0
STUCK_TICKS = 300


@dataclass(frozen=True)
class Rollout:
    name: str
    won: bool
    died: bool
    ticks: int
    demo_ticks: int
    cap: int
    still_ticks: int | None = None  # at the end: ticks since the ninja last moved MOVE_PX
    death_cause: str = ""  # what killed it when it died (layout.DEATH_CAUSES), else ""
    #: the input byte of every tick played (``rollout_levels(keep_inputs=True)``), so the
    #: episode can be saved as a replay and watched; None when not kept
    inputs: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def outcome(self) -> str:
        """``won``, ``died``, ``stuck`` (timed out standing still, see ``STUCK_TICKS``) or
        ``timeout`` (any other; also every timeout when ``still_ticks`` was not tracked)."""
        if self.won:
            return "won"
        if self.died:
            return "died"
        if self.still_ticks is not None and self.still_ticks >= min(STUCK_TICKS, self.cap // 2):
            return "stuck"
        return "timeout"


class StillTracker:
    """Ticks since each slot's ninja last moved ``MOVE_PX`` from where it stood; ``update``
    after every step (every ``frame_skip`` ticks), so a stall is counted to within one step."""

    def __init__(self, slots: LevelSlots) -> None:
        self.anchor = slots.positions
        self.since = slots.frames.astype(np.int64)

    def update(self, slots: LevelSlots) -> None:
        pos = slots.positions
        moved = np.hypot(*(pos - self.anchor).T) >= MOVE_PX
        self.anchor[moved] = pos[moved]
        self.since[moved] = slots.frames[moved]

    def still(self, slots: LevelSlots) -> np.ndarray:
        return slots.frames.astype(np.int64) - self.since


@contextmanager
def acting(seed: int | None, devices: Sequence[torch.device] = ()) -> Iterator[None]:
    """How a policy acts inside the block: greedy (the distribution's mode,
    ``ExplorationType.DETERMINISTIC``) when ``seed`` is None, else sampled (``RANDOM``) under
    torch's RNG forked and seeded with ``seed``, and restored afterwards, so a sampled run is
    reproducible and leaves the caller's RNG untouched. Acting builds no autograd graph."""
    mode = ExplorationType.DETERMINISTIC if seed is None else ExplorationType.RANDOM
    with torch.no_grad(), torch.random.fork_rng(devices=list(devices)), \
            set_exploration_type(mode):
        if seed is not None:
            torch.manual_seed(seed)
        yield


def rollout_levels(actor: ProbabilisticActor, levels: Sequence[Level],
                   obs_config: ObservationConfig, *, greedy: bool = True,
                   generator: torch.Generator | None = None, tick_factor: float = 2.0,
                   max_ticks: int = 5000, batch: int = 512,
                   restore_graphs: Sequence | None = None, record: int | None = None,
                   record_scale: int = 2, keep_inputs: bool = False
                   ) -> tuple[list[Rollout], list[np.ndarray]]:
    """One episode per level, ``batch`` levels at a time in one :class:`LevelsEnv`; returns the
    rollouts and, if ``record`` is a level index, the RGB frames of that level's episode.
    ``keep_inputs`` keeps each episode's per-tick input bytes (:attr:`Rollout.inputs`: one
    byte a tick, at most the cap per level).

    ``batch`` bounds the levels held at once (memory); each step costs one actor call and one
    env step whatever the number of levels playing, so larger chunks amortise that fixed cost
    (greedy outcomes do not depend on it, tests/test_eval_batched.py; sampled draws follow the
    chunks, so a sampled run is reproducible for the same ``batch``).

    Greedy is the distribution's mode, sampled draws from it under torch's RNG seeded from
    ``generator`` (:func:`acting`, which also turns autograd off), so a seeded evaluation is
    reproducible and leaves the caller's RNG untouched.
    """
    device = next(actor.parameters()).device
    was_training = actor.training
    actor.eval()
    results: list[Rollout] = []
    frames: list[np.ndarray] = []
    seed = None if greedy else int(torch.randint(2 ** 62, (1,), generator=generator))
    devices = [device] if device.type == "cuda" else []
    try:
        with acting(seed, devices), without_log_prob(actor):
            for start in range(0, len(levels), batch):
                chunk = list(levels[start:start + batch])
                rec = None if record is None or not start <= record < start + len(chunk) \
                    else record - start
                res, fr = _rollout_chunk(actor, chunk, obs_config, tick_factor, max_ticks,
                                         restore_graphs, rec, record_scale, device,
                                         keep_inputs)
                results.extend(res)
                frames.extend(fr)
    finally:
        actor.train(was_training)
    return results, frames


def _rollout_chunk(actor: ProbabilisticActor, levels: list[Level],
                   obs_config: ObservationConfig, tick_factor: float, max_ticks: int,
                   restore_graphs: Sequence | None, record: int | None, record_scale: int,
                   device: torch.device, keep_inputs: bool = False
                   ) -> tuple[list[Rollout], list[np.ndarray]]:
    """Every level of the chunk in one :class:`LevelsEnv`, stepped with ``env.step`` /
    ``step_mdp``, the actor acting on the levels still playing only.

    Not ``env.rollout``: it would run the policy on finished levels too (wasted forwards, and a
    sampled run's random draws would then depend on how many levels already ended) and keep
    every step's observations (levels x up to 5000 steps of image modalities); evaluation needs
    neither. ``LevelsEnv`` itself works under ``env.rollout`` (tests/test_eval_batched.py).
    """
    caps = [lv.cap(tick_factor, max_ticks) for lv in levels]
    env = LevelsEnv([lv.map_data for lv in levels], caps, obs_config, device=device)
    frames: list[np.ndarray] = []
    td = env.reset()
    still = StillTracker(env.slots)
    if record is not None:
        frames.append(env.slots.render(record, record_scale))
    action = np.zeros(env.n, np.int64)
    played: list[list[np.ndarray]] = [[] for _ in levels]  # per level: (ticks,) input runs
    keys = list(actor.in_keys)
    with level_graphs_on(actor, env.static_graphs, restore_graphs):
        while True:
            playing = env.playing  # as td["done"] says, read without torch ops
            rows = np.flatnonzero(playing)
            if not rows.size:
                break
            obs = td.select(*keys)
            if rows.size < env.n:
                obs = obs[torch.from_numpy(rows).to(device)]
            action[rows] = actor(obs).get("action").cpu().numpy()
            td.set("action", torch.from_numpy(action.copy()).to(device))
            before = env.slots.frames if keep_inputs else None
            # step_mdp(td) would carry nothing more: every key the next step needs is in "next"
            td = env.step(td).get("next")
            if before is not None:
                ran, codes = env.slots.frames - before, actions_to_inputs(action)
                for i in rows[ran[rows] > 0].tolist():
                    played[i].append(np.full(int(ran[i]), codes[i], np.uint8))
            still.update(env.slots)
            if record is not None and playing[record]:
                frames.append(env.slots.render(record, record_scale))
    stalled, causes = still.still(env.slots), env.slots.death_causes
    results = [Rollout(lv.name, *out, lv.demo_ticks, caps[i], int(stalled[i]), causes[i],
                       np.concatenate(played[i] or [np.zeros(0, np.uint8)]) if keep_inputs
                       else None)
               for i, (lv, out) in enumerate(zip(levels, env.outcomes(), strict=True))]
    return results, frames


def save_episode_replays(out_dir: str | Path,
                         episodes: Sequence[tuple[Level, Rollout]]) -> list[Path]:
    """Write each (level, rollout kept with ``keep_inputs``) as ``out_dir/<level>.replay``:
    the level's map and the inputs played, flagged won or not, so ``torchrl-bc render`` shows
    what the policy did. Names are made filename-safe; a name seen before (another episode of
    the level, or two levels with one name) gets ``-2``, ``-3``, ... Each file is written
    atomically."""
    from torchrl_bc.replay.format import write_replay

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    paths = []
    for lv, r in episodes:
        if r.name != lv.name:
            raise ValueError(f"rollout {r.name!r} paired with level {lv.name!r}")
        if r.inputs is None:
            raise ValueError(f"rollout {r.name!r} kept no inputs (keep_inputs=False)")
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", r.name).lstrip(".") or "level"
        name, k = stem, 1
        while name in used:
            k += 1
            name = f"{stem}-{k}"
        used.add(name)
        paths.append(write_replay(out / f"{name}.replay", lv.map_data, r.inputs, r.won))
    return paths


def death_kind_of(map_data: bytes, rollout: Rollout) -> str | None:
    """What the ninja was doing when the episode died (``replay.endings.DEATH_KINDS``), read
    from the inputs it played (kept with ``keep_inputs``), re-simulated; None for an episode
    that did not die."""
    if not rollout.died:
        return None
    if rollout.inputs is None:
        raise ValueError(f"rollout {rollout.name!r} kept no inputs (keep_inputs=False)")
    from torchrl_bc.replay.endings import death_kind
    from torchrl_bc.sim import Simulator

    trace = Simulator(map_data, source=rollout.name).run_inputs(rollout.inputs)
    kind = death_kind(trace, rollout.inputs)
    if kind is None:  # the simulator is deterministic: the same inputs must die again
        raise RuntimeError(f"{rollout.name}: the inputs of an episode that died do not die "
                           f"when re-simulated")
    return kind


def summarise(rollouts: Sequence[Rollout], prefix: str) -> dict[str, float]:
    """Success rate, death rate, stuck rate (where tracked: timeouts at a standstill, see
    :attr:`Rollout.outcome`), and episode length / demo length over the wins."""
    if not rollouts:
        return {}
    wins = [r for r in rollouts if r.won]
    out = {f"{prefix}success": len(wins) / len(rollouts),
           f"{prefix}death": sum(r.died for r in rollouts) / len(rollouts)}
    if all(r.still_ticks is not None for r in rollouts):
        out[f"{prefix}stuck"] = sum(r.outcome == "stuck" for r in rollouts) / len(rollouts)
    ratios = [r.ticks / r.demo_ticks for r in wins if r.demo_ticks > 0]
    if ratios:
        out[f"{prefix}length_ratio"] = float(np.mean(ratios))
    return out


class SkipReason(StrEnum):
    """Why a level file is not evaluated: a damaged file, or a level no demo is known to win."""

    UNREADABLE = "unreadable"
    NOT_WINNABLE = "not a winnable level"


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: SkipReason
    detail: str

    def line(self) -> str:
        return f"{self.path}: {self.reason.value} ({self.detail})"


@dataclass(frozen=True)
class LevelScan:
    """What a level directory yields: the levels to evaluate and every file left out, with why.

    The success rate's denominator is ``len(levels)``: levels with a winning demo, plus raw
    ``*.map`` files (``from_maps``), whose winnability no demo vouches for.
    """

    levels: list[Level]
    skipped: list[SkippedFile] = field(default_factory=list)
    from_maps: int = 0

    def report(self) -> list[str]:
        """Human-readable lines: the count, then each skipped file and its reason."""
        out = [f"levels: {len(self.levels)} evaluated"
               + (f" ({self.from_maps} from *.map files without a demo)" if self.from_maps
                  else "") + f", {len(self.skipped)} file(s) skipped"]
        out += [f"skipped: {s.line()}" for s in self.skipped]
        return out


def family_success(levels: Sequence[Level], rollouts: Sequence[Rollout]
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


def discover_levels(spec: str) -> list[Level]:
    """The levels of :func:`scan_levels`; each skipped file is one stderr line naming it and
    the defect, never dropped in silence."""
    scan = scan_levels(spec)
    for s in scan.skipped:
        why = s.detail if s.reason is SkipReason.UNREADABLE else f"{s.reason.value} ({s.detail})"
        print(f"skipping level {s.path}: {why}", file=sys.stderr)
    return scan.levels


def scan_levels(spec: str | Path) -> LevelScan:
    """A suite name (``torchrl_bc.levels.suites``) or a directory searched recursively for
    ``*.map`` (raw map data) and ``*.replay`` files.

    Each distinct level (map hash) counts once, capped by its shortest winning demo. A replay
    file that cannot be read is skipped as ``UNREADABLE``; a level whose only replays do not
    win (a demo that dies, stops short, or whose header lost a byte, shifting every field) is
    skipped as ``NOT_WINNABLE``: it is not a level the policy could be expected to finish.
    """
    from torchrl_bc.levels.suites import SUITES, load_suite

    spec = str(spec)
    path = Path(spec)
    name = spec.removeprefix("suite:")
    if spec.startswith("suite:") or (not path.exists() and spec in SUITES):
        if name not in SUITES:
            raise FileNotFoundError(f"--levels {spec!r}: no such suite ({sorted(SUITES)})")
        return LevelScan([lv.as_level() for lv in load_suite(name)])
    if not path.is_dir():
        raise FileNotFoundError(f"--levels {spec!r} is neither a directory nor a suite "
                                f"({sorted(SUITES)})")
    from torchrl_bc.replay.format import ReplayFormatError, read_replay
    from torchrl_bc.sim import MapFormatError, Simulator
    from torchrl_bc.sim.mapdata import read_map_file

    won_levels: dict[str, Level] = {}
    maps: dict[str, Level] = {}
    losers: dict[str, list[SkippedFile]] = {}
    skipped: list[SkippedFile] = []
    for f in sorted(path.rglob("*")):
        if f.suffix not in (".map", ".replay") or f.is_dir():
            continue
        if f.suffix == ".map":
            try:
                data = read_map_file(f)  # regular, bounded, parseable
            except (OSError, ValueError) as exc:  # MapFormatError is a ValueError
                skipped.append(SkippedFile(str(f), SkipReason.UNREADABLE, _one_line(exc, f)))
                continue
            maps.setdefault(map_hash(data), Level(f.stem, data, 0))
            continue
        defect = ""
        try:
            rep = read_replay(f)
        except ReplayFormatError as exc:
            defect = exc.defect
            try:  # a file that lost bytes may still name a level (the reference reads it)
                rep = read_replay(f, allow_short_inputs=True)
            except ReplayFormatError:
                skipped.append(SkippedFile(str(f), SkipReason.UNREADABLE, defect))
                continue
        try:
            res = Simulator(rep.map_data, source=str(f)).run_inputs(rep.inputs)
        except (MapFormatError, ValueError) as exc:
            skipped.append(SkippedFile(str(f), SkipReason.UNREADABLE, _one_line(exc, f)))
            continue
        h = map_hash(rep.map_data)
        if res.win_frame > 0:  # the demo reaches the exit (its length: the winning tick)
            old = won_levels.get(h)
            if old is None or res.win_frame < old.demo_ticks:
                won_levels[h] = Level(old.name if old else f.stem, rep.map_data,
                                          res.win_frame)
        else:
            why = f"its {rep.n_ticks}-tick demo does not win"
            losers.setdefault(h, []).append(SkippedFile(
                str(f), SkipReason.NOT_WINNABLE, f"{defect}; {why}" if defect else why))
    for h, files in losers.items():
        if h not in won_levels and h not in maps:
            skipped.extend(files)
    levels = list(won_levels.values()) + [lv for h, lv in maps.items() if h not in won_levels]
    if not levels:
        raise FileNotFoundError(f"no winnable level under {path}: "
                                + ("no *.map or *.replay files" if not skipped else
                                   f"{len(skipped)} file(s) skipped, e.g. {skipped[0].line()}"))
    skipped.sort(key=lambda s: s.path)
    return LevelScan(levels, skipped, sum(1 for h in maps if h not in won_levels))


def _one_line(exc: BaseException, path: Path | None = None) -> str:
    """The defect on one line, without the file name the message may start with."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    prefix = f"{path}: "
    return text[len(prefix):] if path is not None and text.startswith(prefix) else text
