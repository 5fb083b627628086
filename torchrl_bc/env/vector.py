"""``NppVectorEnv``: N levels stepped together through :class:`~torchrl_bc.sim.batch.SimBatch`.

One compiled, multi-threaded call advances every environment's ``frame_skip`` ticks, then the
shared :class:`~torchrl_bc.obs.ObservationBuilder` observes each one, so observations are
byte-identical to :class:`~torchrl_bc.env.NppEnv` on the same level and actions. Finished
environments restart in the same step (gymnasium's same-step autoreset); their last observation
is in ``info["final_obs"]``. ``graph_entity_state`` is zero-padded to the largest level.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from torchrl_bc.env.npp_env import LevelSource, NppEnv, _load_map
from torchrl_bc.obs import ObservationBuilder, ObservationConfig
from torchrl_bc.obs.reward import RewardConfig
from torchrl_bc.sim import Simulator
from torchrl_bc.sim import constants as C
from torchrl_bc.sim.actions import ACTION_HOR, ACTION_JUMP, N_ACTIONS
from torchrl_bc.sim.batch import SimBatch
from torchrl_bc.sim.layout import M_FRAME

__all__ = ["NppVectorEnv"]


class NppVectorEnv(gym.vector.VectorEnv):
    """One environment per level source; actions are the 6 discrete N++ actions."""

    metadata: ClassVar[dict[str, Any]] = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(self, levels: list[LevelSource], config: ObservationConfig | None = None,
                 reward: RewardConfig | None = None, *, solid_doors: bool = False,
                 max_ticks: int = C.MAX_TICKS, seed: int | None = None) -> None:
        if not levels:
            raise ValueError("NppVectorEnv needs at least one level")
        self.config = config or ObservationConfig()
        self.reward_config = reward or RewardConfig()
        self.max_ticks = max_ticks
        rng = np.random.default_rng(seed)
        self.sims = [Simulator(_load_map(lv, rng), solid_doors=solid_doors) for lv in levels]
        self.batch = SimBatch(self.sims)
        self.builders = [ObservationBuilder(self.config) for _ in self.sims]
        self.num_envs = len(self.sims)
        self.n_entities = max(len(s.entities) for s in self.sims)
        single = NppEnv(config=self.config)._space(self.n_entities)
        self.single_observation_space = single
        self.observation_space = batch_space(single, self.num_envs)
        self.single_action_space = spaces.Discrete(N_ACTIONS)
        self.action_space = spaces.MultiDiscrete([N_ACTIONS] * self.num_envs)

    def _observe(self, i: int) -> dict[str, np.ndarray]:
        obs = self.builders[i].observe(self.sims[i])
        ent = obs.get("graph_entity_state")
        if ent is not None and ent.shape[0] < self.n_entities:
            pad = np.zeros((self.n_entities, ent.shape[1]), ent.dtype)
            pad[: ent.shape[0]] = ent
            obs["graph_entity_state"] = pad
        return obs

    def _stack(self, per_env: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        return {k: np.stack([o[k] for o in per_env]) for k in per_env[0]}

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict]:
        super().reset(seed=seed)
        for sim, builder in zip(self.sims, self.builders, strict=True):
            sim.reset()
            builder.bind(sim)
        return self._stack([self._observe(i) for i in range(self.num_envs)]), {}

    def step(self, actions: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray,
                                                 np.ndarray, dict]:
        actions = np.asarray(actions, np.int64)
        if actions.shape != (self.num_envs,) or actions.min() < 0 or actions.max() >= N_ACTIONS:
            raise ValueError(f"expected {self.num_envs} actions in 0..{N_ACTIONS - 1}")
        fs = self.config.frame_skip
        frames = self.batch.misc[:, M_FRAME].copy()
        short = np.flatnonzero(frames + fs > self.max_ticks)
        full = np.ones(self.num_envs, bool)
        full[short] = False
        ran = np.zeros(self.num_envs, np.int64)
        if full.all():
            ran[:] = self.batch.step(actions, fs)
        else:  # envs near the tick limit step alone with fewer ticks (rare)
            for i in range(self.num_envs):
                n = max(min(fs, self.max_ticks - int(frames[i])), 0)
                a = actions[i]
                ran[i] = self.sims[i].advance(np.full(n, ACTION_HOR[a]),
                                              np.full(n, ACTION_JUMP[a]))
        states = self.batch.states
        rewards = np.array([self.reward_config.step_reward(int(s), int(n))
                            for s, n in zip(states, ran, strict=True)], np.float64)
        terminated = np.isin(states, (C.DEAD, C.DYING, C.WON))
        truncated = ~terminated & (self.batch.misc[:, M_FRAME] >= self.max_ticks)
        per_env = [self._observe(i) for i in range(self.num_envs)]
        info: dict[str, Any] = {"ticks": ran, "won": states == C.WON}
        done = np.flatnonzero(terminated | truncated)
        if done.size:
            finished = set(done.tolist())
            info["final_obs"] = np.array([per_env[i] if i in finished else None
                                          for i in range(self.num_envs)], dtype=object)
            for i in done:
                self.sims[i].reset()
                self.builders[i].bind(self.sims[i])
                per_env[i] = self._observe(int(i))
        return self._stack(per_env), rewards, terminated, truncated, info
