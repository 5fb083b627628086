"""Reward shaping for PPO fine-tuning: progress along the level's shortest path.

A win-only reward is sparse: PPO fine-tuning from a BC policy mostly hears about the levels it
already finishes. :class:`ObjectiveProgress` adds, on every step, how much nearer (in px of
path length, from the per-level distance field the ``objective`` observation already carries)
the ninja came to its current objective, a bonus when it opens the exit (the objective moves
from the switch to the door), and a penalty for dying. Within one objective the progress terms
telescope to (start - end) path length, so looping earns nothing. It wraps any SB3 VecEnv whose
observations include ``objective`` and reads only them, so the simulator's own reward (what
BC datasets and evaluation record) stays the win-only one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from torchrl_bc.obs.objective import PATH_LENGTH_SCALE

__all__ = ["ObjectiveProgress", "Shaping", "require_objective"]

#: The most path length one step can gain or lose, in px: the ninja moves at most a few px a
#: tick, so a larger change is the field's edge (no finite path from a cell), not progress.
_MAX_GAIN = 16.0


@dataclass(frozen=True)
class Shaping:
    """Weights of the shaped reward terms (all 0: the env's own reward unchanged)."""

    per_px: float = 0.0          # reward per px of path length gained toward the objective
    switch_bonus: float = 0.0    # once, on the step the exit opens
    death_penalty: float = 0.0   # subtracted on the step the ninja dies

    def __post_init__(self) -> None:
        for name in ("per_px", "switch_bonus", "death_penalty"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"shaping.{name} must be finite and >= 0, got {value}")

    @property
    def active(self) -> bool:
        return bool(self.per_px or self.switch_bonus or self.death_penalty)


def require_objective(names: Any) -> None:
    """Refuse observations (names, or a Dict space's ``spaces``) without ``objective``, the
    input the shaped reward reads."""
    if "objective" not in names:
        raise ValueError("the shaped reward reads the `objective` observation, which this "
                         "policy's observations do not include")


class ObjectiveProgress(VecEnvWrapper):
    """Adds :class:`Shaping`'s terms to a VecEnv's rewards (``info["shaping"]`` holds the
    episode's shaped total at its end; ``info["episode"]`` keeps the env's own return)."""

    def __init__(self, venv: VecEnv, shaping: Shaping) -> None:
        require_objective(getattr(venv.observation_space, "spaces", {}))
        super().__init__(venv)
        self.shaping = shaping
        self._prev = np.zeros((venv.num_envs, 2), np.float64)
        self._total = np.zeros(venv.num_envs, np.float64)

    def reset(self) -> Any:
        obs = self.venv.reset()
        self._prev = obs["objective"][:, :2].astype(np.float64)
        self._total[:] = 0.0
        return obs

    def step_wait(self) -> Any:
        obs, rewards, dones, infos = self.venv.step_wait()
        nxt = obs["objective"][:, :2].astype(np.float64)  # (stage, path length) from here on
        now, died = nxt.copy(), np.zeros(len(dones), bool)
        ended = np.flatnonzero(dones).tolist()
        for i in ended:  # the step's own end state, not the next episode's start
            now[i] = infos[i]["terminal_observation"]["objective"][:2]
            died[i] = bool(infos[i].get("died"))
        s = self.shaping
        same = now[:, 0] == self._prev[:, 0]
        gain = np.clip((self._prev[:, 1] - now[:, 1]) * PATH_LENGTH_SCALE, -_MAX_GAIN, _MAX_GAIN)
        extra = np.where(same, s.per_px * gain, 0.0)
        extra += np.where(~same & (now[:, 0] > self._prev[:, 0]), s.switch_bonus, 0.0)
        extra -= s.death_penalty * died
        self._total += extra
        for i in ended:
            infos[i]["shaping"] = float(self._total[i])
            self._total[i] = 0.0
        self._prev = nxt
        return obs, (rewards + extra).astype(np.float32), dones, infos
