"""Random sticky-input play: the floor any policy must beat, and the yardstick suites are
calibrated with (a random player should fare about as badly on generated levels as on human
ones).

Each episode holds a uniformly random action (one of the six the policies choose from) for a
uniformly random 4..20 ticks, then draws again, up to the episode cap. Inputs are drawn from a
generator seeded by (seed, map hash, episode), so a level's result does not depend on which
other levels are scored with it or in what order.
"""

from __future__ import annotations

import hashlib

import numpy as np

from torchrl_bc.replay.actions import ACTION_TO_INPUT
from torchrl_bc.sim import Simulator

__all__ = ["HOLD_TICKS", "random_wins", "sticky_inputs"]

#: Inclusive range of ticks one random action is held for.
HOLD_TICKS = (4, 20)


def sticky_inputs(n: int, rng: np.random.Generator, hold: tuple[int, int] = HOLD_TICKS
                  ) -> np.ndarray:
    """``n`` input bytes made of random actions held for random durations."""
    out = np.empty(n, np.uint8)
    i = 0
    while i < n:
        k = int(rng.integers(hold[0], hold[1] + 1))
        out[i:i + k] = ACTION_TO_INPUT[int(rng.integers(0, len(ACTION_TO_INPUT)))]
        i += k
    return out


def random_wins(map_data: bytes, cap: int, episodes: int = 4, seed: int = 0,
                source: str = "<map>") -> list[bool]:
    """Win (True) or not for each of ``episodes`` random sticky episodes of at most ``cap``
    ticks on one level."""
    digest = hashlib.sha256(bytes(map_data)).digest()
    tag = int.from_bytes(digest[:8], "little")
    wins = []
    for ep in range(episodes):
        rng = np.random.default_rng([seed, tag, ep])
        trace = Simulator(map_data, source=source).run_inputs(sticky_inputs(cap, rng))
        wins.append(trace.win_frame > 0)
    return wins
