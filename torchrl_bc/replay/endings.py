"""How a lost episode died, read from its trace: the question behind most held-out losses.

Crossval's death causes say *what* killed the ninja (a mine, an impact); this says what the
ninja was doing: running into it on the ground (with or without a jump it could not fire),
landing on it, or falling after it ran off an edge or jumped. A policy that runs off the edges
a human jumped from needs other help than one that jumps and misses.
"""

from __future__ import annotations

import numpy as np

from torchrl_bc.replay.actions import INPUT_TO_JUMP
from torchrl_bc.sim import constants as C
from torchrl_bc.sim.trace import Trace

__all__ = ["DEATH_KINDS", "death_kind"]

#: What :func:`death_kind` returns, and what each means.
DEATH_KINDS: dict[str, str] = {
    "on_ground_jump_held": "died running or standing, holding a jump held since before it "
                           "landed (a jump fires only on a fresh press)",
    "on_ground": "died running or standing, without pressing jump",
    "landed": "died on a floor or wall it had reached less than the window before",
    "ran_off": "died in the air after leaving a floor or wall without jumping",
    "jumped": "died in the air after jumping (a buffered jump included)",
    "never_landed": "died before ever touching a floor or wall",
}

_GROUND = np.array([C.STATE_NAMES.index(s) for s in ("immobile", "running", "sliding")])
_SURFACE = np.array([*_GROUND, C.STATE_NAMES.index("wall_sliding")])
_JUMPING = C.STATE_NAMES.index("jumping")


def death_kind(trace: Trace, inputs: np.ndarray, window: int = 20) -> str | None:
    """One of :data:`DEATH_KINDS` for an episode that died, None for one that did not.

    ``inputs`` are the bytes played (one a tick, as long as the trace or longer); ``window`` is
    how many ticks on the ground before the death count as running into it rather than
    landing on it.
    """
    if trace.death_frame <= 0:
        return None
    states = np.asarray(trace.state)[:trace.death_frame - 1]  # up to the tick before dying
    on = np.flatnonzero(np.isin(states, _SURFACE))
    # A jump's first tick: a jump buffered in the air fires on the tick the ninja touches a
    # floor or wall, which then never reads as standing on it.
    jumping = states == _JUMPING
    takeoffs = np.flatnonzero(jumping & ~np.concatenate([[False], jumping[:-1]]))
    last = int(on[-1]) if on.size else -1
    if last < len(states) - 1:  # in the air when it died: how it left its last surface
        if takeoffs.size and takeoffs[-1] > last:
            return "jumped"
        return "ran_off" if last >= 0 else "never_landed"
    grounded = np.isin(states, _GROUND)
    if len(states) < window or not grounded[-window:].all():
        return "landed"
    held = INPUT_TO_JUMP[np.asarray(inputs, np.uint8)[len(states) - window:len(states)]]
    return "on_ground_jump_held" if held.all() else "on_ground"
