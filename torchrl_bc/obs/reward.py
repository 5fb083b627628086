"""The reward both the replay executor and ``NppEnv`` record, defined once.

Kept deliberately simple: +1 for reaching the exit, ``death_penalty`` (0 by default) for dying
and ``tick_penalty`` (0 by default) per simulated tick. Anything richer belongs in an RL
wrapper; BC only needs the terminal signal, and critic warm-up must see what PPO sees.
"""

from __future__ import annotations

from dataclasses import dataclass

from torchrl_bc.sim import constants as C

__all__ = ["RewardConfig"]


@dataclass(frozen=True)
class RewardConfig:
    win: float = 1.0
    death_penalty: float = 0.0
    tick_penalty: float = 0.0

    def step_reward(self, ninja_state: int, ticks: int) -> float:
        """Reward of one step of ``ticks`` ticks that ended in ``ninja_state``."""
        r = -self.tick_penalty * ticks
        if ninja_state == C.WON:
            r += self.win
        elif ninja_state in (C.DEAD, C.DYING):
            r -= self.death_penalty
        return r
