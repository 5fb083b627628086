"""The ``game_state`` vector's layout: its own module so that ``ObservationConfig`` can check
``state_zero`` names against it without importing the builder (which imports the config)."""

from __future__ import annotations

import numpy as np

from torchrl_bc.sim import constants as C

__all__ = ["GAME_STATE_FEATURES", "N_GAME_STATE", "feature_index"]

#: ``game_state`` layout, in order. Each entry is (name, how it is normalised).
GAME_STATE_FEATURES: tuple[tuple[str, str], ...] = (
    ("x", "xpos / 1056 * 2 - 1"),
    ("y", "ypos / 600 * 2 - 1"),
    ("vx", "xspeed / 3.333 (max run speed)"),
    ("vy", "yspeed / 6"),
    *((f"state_{name}", "one-hot of ninja.state") for name in C.STATE_NAMES),
    ("airborne", "0/1"),
    ("walled", "0/1"),
    ("wall_normal", "-1, 0, 1"),
    ("floor_normal_x", "floor_normalized_x (unit vector)"),
    ("floor_normal_y", "floor_normalized_y"),
    ("ceiling_normal_x", "ceiling_normalized_x"),
    ("ceiling_normal_y", "ceiling_normalized_y"),
    ("jump_buffer", "buffer / 5 (-1 = inactive -> -0.2)"),
    ("floor_buffer", "buffer / 5"),
    ("wall_buffer", "buffer / 5"),
    ("launch_pad_buffer", "buffer / 5"),
    ("jump_input_old", "0/1: jump held last tick (jumps fire on a fresh press)"),
    ("jump_duration", "jump_duration / 45"),
    ("gravity", "0 = jump gravity, 1 = fall gravity"),
    ("drag", "0 = slow drag, 1 = regular drag"),
    ("switch_hit", "0/1"),
    ("switch_dx", "(switch x - ninja x) / 1056; 0 when the level has no switch"),
    ("switch_dy", "(switch y - ninja y) / 600"),
    ("switch_dist", "distance / level diagonal"),
    ("exit_dx", "(exit x - ninja x) / 1056"),
    ("exit_dy", "(exit y - ninja y) / 600"),
    ("exit_dist", "distance / level diagonal"),
    ("gold_fraction", "gold collected / gold in level (0 when none)"),
    ("gold_collected", "gold collected / 10"),
    ("elapsed", "ticks elapsed / 20000, the same in replays and the env"),
)
N_GAME_STATE = len(GAME_STATE_FEATURES)


def feature_index(names: tuple[str, ...]) -> np.ndarray:
    """intp positions of the named features (``state_zero``'s), for the builder and the bulk
    observer alike; an empty array when none are named."""
    return np.array([i for i, (name, _) in enumerate(GAME_STATE_FEATURES) if name in names],
                    dtype=np.intp)
