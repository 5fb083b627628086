"""``NppSB3VecEnv``: a native SB3 ``VecEnv`` over :class:`~torchrl_bc.env.slots.LevelSlots`.

``DummyVecEnv``/``SubprocVecEnv`` over one Python ``PaddedNppEnv`` per env pay Python (and IPC)
per env and step; here one compiled call advances every env and the observations are built in
bulk. Behaviour is ``make_vec_env(PaddedNppEnv, ...)``'s, step for step: env ``i`` draws its
levels from a generator seeded ``seed + i`` at the first reset (or cycles through them), caps
each episode at ``tick_factor`` x the level's demo, ends it on win/death (terminated) or at the
cap (truncated), and restarts at once. At an episode's end its info carries what SB3's
``Monitor`` and ``DummyVecEnv`` would put there: ``terminal_observation``, ``episode``
(``r``, ``l``, ``t``, ``is_success``), ``TimeLimit.truncated``, plus ``is_success``, ``level``,
``won``, ``died``, ``frame``, ``ticks``, ``level_hash``. Infos of steps that do not end an
episode are empty (building 64 dicts per step would cost more than the simulation).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from torchrl_bc.env.slots import LevelSlots
from torchrl_bc.obs import ObservationConfig
from torchrl_bc.obs.reward import RewardConfig
from torchrl_bc.sb3.spaces import GraphPadding, observation_space, pad_static_graph
from torchrl_bc.sim import constants as C
from torchrl_bc.sim.actions import N_ACTIONS
from torchrl_bc.sim.layout import M_FRAME

__all__ = ["NppSB3VecEnv", "evaluate_sb3"]


class _EnvView:
    """What ``get_attr``/``env_method`` see as env ``i`` (``PaddedNppEnv``'s public surface)."""

    def __init__(self, vec: NppSB3VecEnv, i: int) -> None:
        self._vec, self._i = vec, i

    @property
    def config(self) -> ObservationConfig:
        return self._vec.config

    @property
    def level(self):
        return self._vec.current_level(self._i)

    @property
    def levels(self) -> list:
        return self._vec.levels

    @property
    def render_mode(self) -> str:
        return "rgb_array"

    def action_masks(self) -> np.ndarray:
        return np.ones(N_ACTIONS, dtype=bool)  # every action is legal in every state

    def render(self) -> np.ndarray:
        return self._vec.slots.render(self._i)


class NppSB3VecEnv(VecEnv):
    """``n_envs`` N++ envs over ``levels`` (``Level``s), stepped in one compiled call."""

    def __init__(self, levels: Sequence[Any], config: ObservationConfig,
                 padding: GraphPadding | None = None, reward: RewardConfig | None = None, *,
                 n_envs: int = 1, tick_factor: float = 3.0, max_ticks: int = 5000,
                 order: str = "random", solid_doors: bool = False,
                 parallel: bool = False) -> None:
        if order not in ("random", "cycle"):
            raise ValueError(f"order must be 'random' or 'cycle', got {order!r}")
        if n_envs < 1:
            raise ValueError(f"n_envs must be >= 1, got {n_envs}")
        self.levels = list(levels)
        if not self.levels:
            raise ValueError("no levels given")
        self.config = config
        self.padding = (padding or GraphPadding.for_config(config)) if config.has("graph") \
            else None
        self.reward_config = reward or RewardConfig()
        self.tick_factor, self.max_ticks, self.order = tick_factor, max_ticks, order
        self.slots = LevelSlots([lv.map_data for lv in self.levels], n_envs, config,
                                solid_doors=solid_doors, parallel=parallel)
        self._caps = [lv.cap(tick_factor, max_ticks) for lv in self.levels]
        self._views = [_EnvView(self, i) for i in range(n_envs)]
        self._rngs: list[np.random.Generator | None] = [None] * n_envs
        self._next = [0] * n_envs
        self._returns = np.zeros(n_envs, np.float64)
        self._lengths = np.zeros(n_envs, np.int64)
        self._t_start = time.time()
        self._actions: np.ndarray | None = None
        self._static: dict[str, dict[str, np.ndarray]] = {}
        space = observation_space(config, self.padding)
        self._dtypes = {k: s.dtype for k, s in space.spaces.items()}
        super().__init__(n_envs, space, spaces.Discrete(N_ACTIONS))

    # -- levels ------------------------------------------------------------------------------
    def current_level(self, i: int):
        """Env ``i``'s level (None before the first reset)."""
        k = int(self.slots.level_of[i])
        return self.levels[k] if k >= 0 else None

    def _pick(self, i: int) -> int:
        if self.order == "cycle":
            k = self._next[i] % len(self.levels)
            self._next[i] += 1
            return k
        if self._rngs[i] is None:  # gymnasium seeds an unseeded env's generator from entropy
            self._rngs[i], _ = seeding.np_random(None)
        return int(self._rngs[i].integers(len(self.levels)))

    def _restart(self, i: int) -> None:
        k = self._pick(i)
        self.slots.load(i, k, self._caps[k])
        self._returns[i] = 0.0
        self._lengths[i] = 0

    # -- observations ------------------------------------------------------------------------
    def _observe(self, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        raw = self.slots.observe(rows)
        out = {k: v if v.dtype == self._dtypes[k] else v.astype(self._dtypes[k])
               for k, v in raw.items() if k != "graph_entity_state"}
        if self.padding is not None:
            idx = range(self.num_envs) if rows is None else np.asarray(rows).tolist()
            ent = np.zeros((len(idx), self.padding.max_entities, 4), np.float32)
            src = raw["graph_entity_state"]
            ent[:, : src.shape[1]] = src
            out["graph_entity_state"] = ent
            statics = [self._static_graph(int(i)) for i in idx]
            for key in statics[0]:
                out[key] = np.stack([s[key] for s in statics])
        return {k: out[k] for k in self.observation_space.spaces}

    def _static_graph(self, i: int) -> dict[str, np.ndarray]:
        graph = self.slots.builders[i].static_graph
        static = self._static.get(graph.level_hash)
        if static is None:
            if len(self._static) >= 256:
                self._static.clear()
            static = self._static[graph.level_hash] = pad_static_graph(graph, self.padding)
        return static

    # -- VecEnv API --------------------------------------------------------------------------
    def reset(self) -> dict[str, np.ndarray]:
        for i in range(self.num_envs):
            if self._seeds[i] is not None:
                self._rngs[i], _ = seeding.np_random(self._seeds[i])
            self._restart(i)
            self.reset_infos[i] = {"level": self.current_level(i).name}
        self._reset_seeds()
        self._reset_options()
        return self._observe()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs)

    def step_wait(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict]]:
        actions = self._actions.astype(np.int64)
        if actions.min() < 0 or actions.max() >= N_ACTIONS:
            raise ValueError(f"actions must be in 0..{N_ACTIONS - 1}, got {actions.tolist()}")
        slots = self.slots
        ran = slots.step(actions, self.config.frame_skip)
        states = slots.states
        rc = self.reward_config  # RewardConfig.step_reward, vectorised with the same ops
        rewards = -rc.tick_penalty * ran
        won = states == C.WON
        died = (states == C.DEAD) | (states == C.DYING)
        rewards[won] += rc.win
        rewards[died] -= rc.death_penalty
        self._returns += rewards
        self._lengths += 1
        terminated = won | died
        frames = slots.misc[:, M_FRAME]
        truncated = ~terminated & (frames >= slots.caps)
        done = terminated | truncated
        obs = self._observe()
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        ended = np.flatnonzero(done)
        if ended.size:
            now = time.time()
            for i in ended.tolist():
                lv = self.current_level(i)
                success = bool(won[i])
                infos[i] = {
                    "frame": int(frames[i]), "won": success, "died": bool(died[i]),
                    "level_hash": slots.sims[i].map.content_hash, "ticks": int(ran[i]),
                    "is_success": success, "level": lv.name,
                    "episode": {"r": round(float(self._returns[i]), 6),
                                "l": int(self._lengths[i]), "t": round(now - self._t_start, 6),
                                "is_success": success},
                    "TimeLimit.truncated": bool(truncated[i]),
                    "terminal_observation": {k: v[i].copy() for k, v in obs.items()},
                }
                self._restart(i)
                self.reset_infos[i] = {"level": self.current_level(i).name}
            fresh = self._observe(ended)
            for k, v in fresh.items():
                obs[k][ended] = v
        return obs, rewards.astype(np.float32), done, infos

    def action_masks(self) -> np.ndarray:
        """[n_envs, 6] bool: every action is legal (sb3-contrib's ``MaskablePPO`` asks)."""
        return np.ones((self.num_envs, N_ACTIONS), dtype=bool)

    def close(self) -> None:
        return None

    def _views_of(self, indices: VecEnvIndices) -> list[_EnvView]:
        return [self._views[i] for i in self._get_indices(indices)]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        if not hasattr(self, "_views"):  # VecEnv.__init__ asks for render_mode early
            raise AttributeError(attr_name)
        return [getattr(v, attr_name) for v in self._views_of(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        if attr_name in ("tick_factor", "max_ticks"):
            setattr(self, attr_name, value)
            self._caps = [lv.cap(self.tick_factor, self.max_ticks) for lv in self.levels]
            return
        raise AttributeError(f"NppSB3VecEnv cannot set {attr_name!r} per env")

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        return [getattr(v, method_name)(*method_args, **method_kwargs)
                for v in self._views_of(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        from stable_baselines3.common.monitor import Monitor

        # the episode statistics Monitor would add are in the infos already
        return [wrapper_class is Monitor] * len(self._get_indices(indices))

    def get_images(self) -> list[np.ndarray]:
        return [self.slots.render(i) for i in range(self.num_envs)]


def evaluate_sb3(policy: Any, levels: Sequence[Any], config: ObservationConfig,
                 padding: GraphPadding | None = None, *, deterministic: bool = True,
                 tick_factor: float = 2.0, max_ticks: int = 5000, batch: int = 256) -> list:
    """One episode per level with an SB3 policy (``policy.predict``), all levels of a chunk
    stepped in one compiled call; finished levels drop out of the batch. Returns
    :class:`~torchrl_bc.train.evaluate.Rollout` per level (``summarise`` gives the rates)."""
    from torchrl_bc.train.evaluate import Rollout, StillTracker

    out: list = []
    for start in range(0, len(levels), batch):
        chunk = list(levels[start:start + batch])
        env = NppSB3VecEnv(chunk, config, padding, n_envs=len(chunk), tick_factor=tick_factor,
                           max_ticks=max_ticks)
        slots = env.slots
        for i in range(len(chunk)):
            slots.load(i, i, env._caps[i])
        active = np.arange(len(chunk), dtype=np.int64)
        actions = np.zeros(len(chunk), np.int64)
        outcome: dict[int, tuple[bool, bool, int]] = {}
        still = StillTracker(slots)
        while active.size:
            chosen, _ = policy.predict(env._observe(active), deterministic=deterministic)
            actions[active] = np.asarray(chosen).reshape(-1)
            slots.step(actions, config.frame_skip)
            still.update(slots)
            active = slots.retire_ended(active, outcome)
        stalled, causes = still.still(slots), slots.death_causes
        out += [Rollout(lv.name, *outcome[i], lv.demo_ticks, env._caps[i], int(stalled[i]),
                        causes[i])
                for i, lv in enumerate(chunk)]
    return out
