"""The six policy actions, named once: index, name, and the (horizontal, jump) input each holds.

Everything that turns an action into simulator input (the env, the batched slots, ``SimBatch``,
the planner) and everything sized by the action count (spaces, masks, model heads) reads this
table. The replay-byte mapping lives in ``torchrl_bc.replay.actions`` and is built from it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ACTIONS", "ACTION_HOR", "ACTION_JUMP", "ACTION_NAMES", "N_ACTIONS", "action_of"]

#: (name, horizontal in {-1, 0, 1}, jump in {0, 1}) of each action, in index order.
ACTIONS: tuple[tuple[str, int, int], ...] = (
    ("NOOP", 0, 0),
    ("LEFT", -1, 0),
    ("RIGHT", 1, 0),
    ("JUMP", 0, 1),
    ("LEFT+JUMP", -1, 1),
    ("RIGHT+JUMP", 1, 1),
)
ACTION_NAMES: tuple[str, ...] = tuple(name for name, _, _ in ACTIONS)
N_ACTIONS = len(ACTIONS)
#: Horizontal / jump input of each action, float64 as the kernel takes them.
ACTION_HOR = np.array([h for _, h, _ in ACTIONS], np.float64)
ACTION_JUMP = np.array([j for _, _, j in ACTIONS], np.float64)
ACTION_HOR.setflags(write=False)
ACTION_JUMP.setflags(write=False)


def action_of(hor: int, jump: int) -> int:
    """The action holding (``hor``, ``jump``)."""
    for a, (_, h, j) in enumerate(ACTIONS):
        if h == hor and j == jump:
            return a
    raise ValueError(f"no action holds hor={hor}, jump={jump}")
