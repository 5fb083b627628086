"""Turn a replay into a BC episode: observations before each step, labelled with its action.

The simulator is always driven by the human's true per-tick inputs; ``frame_skip`` only picks
where observations are sampled. Step t covers ticks ``[t*k, t*k + k)`` (k = frame_skip, fewer at
the end); its observation is taken *before* those ticks, and its label is the action of the
input at the first of them, so the observation cannot leak the label. ``agreement`` counts how
many of the step's ticks used that same action, which lets training down-weight steps where the
human changed input mid-step.

A replay that never reaches the exit, or still has inputs after the win, is ``desynced``; it is
never used as a success.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from torchrl_bc.obs import ObservationBuilder, ObservationConfig, StaticGraph
from torchrl_bc.obs.reward import RewardConfig
from torchrl_bc.replay.actions import INPUT_TO_HOR, INPUT_TO_JUMP, inputs_to_actions
from torchrl_bc.replay.format import Replay
from torchrl_bc.replay.mirror import mirror_if_valid
from torchrl_bc.sim import Simulator
from torchrl_bc.sim import constants as C

__all__ = ["Episode", "ExecutorStats", "ReplayExecutor"]


@dataclass
class Episode:
    """One replay as plain arrays; index t is step t."""

    replay_id: str
    level_hash: str
    map_data: bytes
    frame_skip: int
    obs: dict[str, np.ndarray]  # each [T, ...]
    actions: np.ndarray  # int64 [T]: label = action of the step's first tick
    agreement: np.ndarray  # int8 [T]: ticks of the step whose action equals the label
    ticks: np.ndarray  # int8 [T]: ticks the step covered (frame_skip, fewer at the end)
    rewards: np.ndarray  # float32 [T]
    terminated: np.ndarray  # bool [T]: won or died during the step
    truncated: np.ndarray  # bool [T]: hit the 20000-tick limit
    success: bool  # the replay file's own flag
    won: bool
    desynced: bool
    desync_reason: str
    end_frame: int  # ticks simulated
    n_inputs: int
    mirrored: bool = False
    static_graph: StaticGraph | None = field(default=None, repr=False)

    @property
    def n_steps(self) -> int:
        return int(self.actions.shape[0])

    @property
    def done(self) -> np.ndarray:
        return self.terminated | self.truncated


@dataclass
class ExecutorStats:
    """Counts over everything an executor has run, for reports and dataset manifests."""

    replays: int = 0
    desynced: int = 0
    mirrored_tried: int = 0
    mirrored_kept: int = 0

    def describe(self) -> str:
        return (f"{self.replays} replays, {self.desynced} desynced; mirrored: "
                f"{self.mirrored_kept} of {self.mirrored_tried} still win")


class ReplayExecutor:
    """Runs replays through the simulator and the shared :class:`ObservationBuilder`."""

    def __init__(self, config: ObservationConfig | None = None,
                 reward: RewardConfig | None = None, *, solid_doors: bool = False) -> None:
        self.config = config or ObservationConfig()
        self.reward = reward or RewardConfig()
        self.solid_doors = solid_doors
        self.builder = ObservationBuilder(self.config)
        self.stats = ExecutorStats()

    def execute(self, replay: Replay, replay_id: str | None = None, *,
                mirrored: bool = False) -> Episode:
        """Simulate ``replay`` with its own inputs and sample an observation every step."""
        fs = self.config.frame_skip
        sim = Simulator(replay.map_data, solid_doors=self.solid_doors,
                        source=str(replay.source or "<replay>"))
        builder = self.builder
        builder.bind(sim)
        inputs = np.asarray(replay.inputs, dtype=np.uint8)
        n = int(inputs.shape[0])
        actions_all = inputs_to_actions(inputs)
        hors = INPUT_TO_HOR[inputs].astype(np.float64)
        jumps = INPUT_TO_JUMP[inputs].astype(np.float64)
        obs_lists: dict[str, list[np.ndarray]] = {}
        labels: list[int] = []
        agree: list[int] = []
        nticks: list[int] = []
        rewards: list[float] = []
        terminated: list[bool] = []
        truncated: list[bool] = []
        k = 0
        while k < n and not sim.done and sim.frame < C.MAX_TICKS:
            for key, value in builder.observe(sim).items():
                obs_lists.setdefault(key, []).append(value)
            end = min(k + fs, n, k + C.MAX_TICKS - sim.frame)
            label = int(actions_all[k])
            j = k + sim.advance(hors[k:end], jumps[k:end])  # stops after a win or death
            labels.append(label)
            agree.append(int(np.count_nonzero(actions_all[k:j] == label)))
            nticks.append(j - k)
            state = sim.ninja.state
            rewards.append(self.reward.step_reward(state, j - k))
            term = sim.done
            terminated.append(term)
            truncated.append(not term and sim.frame >= C.MAX_TICKS)
            k = j

        won = sim.ninja.state == C.WON
        if not won:
            why = "died" if sim.done else "never reached the exit"
            reason = f"{why} after {sim.frame} of {n} ticks"
        elif k < n:
            reason = f"won at tick {sim.frame} with {n - k} inputs left over"
        else:
            reason = ""
        obs = {key: np.stack(vals) for key, vals in obs_lists.items()}
        if not labels:  # an empty replay: keep shapes consistent with the config
            obs = {key: np.zeros((0, *v.shape), v.dtype)
                   for key, v in builder.observe(sim).items()}
        self.stats.replays += 1
        self.stats.desynced += bool(reason)
        return Episode(
            replay_id=replay_id or (Path(replay.source).stem if replay.source else "replay"),
            level_hash=sim.map.content_hash,
            map_data=bytes(replay.map_data),
            frame_skip=fs,
            obs=obs,
            actions=np.array(labels, np.int64),
            agreement=np.array(agree, np.int8),
            ticks=np.array(nticks, np.int8),
            rewards=np.array(rewards, np.float32),
            terminated=np.array(terminated, bool),
            truncated=np.array(truncated, bool),
            success=bool(replay.success),
            won=won,
            desynced=bool(reason),
            desync_reason=reason,
            end_frame=sim.frame,
            n_inputs=n,
            mirrored=mirrored,
            static_graph=builder.static_graph,
        )

    def iter_episodes(self, replays: Iterable[tuple[str, Replay]], *,
                      mirror: bool = False) -> Iterator[Episode]:
        """Episodes for (id, replay) pairs; with ``mirror``, also each mirrored replay that
        re-simulation shows still wins (counted in :attr:`stats`)."""
        for rid, replay in replays:
            episode = self.execute(replay, rid)
            yield episode
            if mirror and not episode.desynced:
                self.stats.mirrored_tried += 1
                flipped = mirror_if_valid(replay)
                if flipped is not None:
                    self.stats.mirrored_kept += 1
                    yield self.execute(flipped, f"{rid}#mirror", mirrored=True)
