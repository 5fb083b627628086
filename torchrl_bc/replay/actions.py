"""Input byte <-> (horizontal, jump) <-> discrete action.

An input byte has bit0 jump, bit1 right, bit2 left; left+right cancel to no horizontal input.
The policy acts in the 6-way discrete space of ``torchrl_bc.sim.actions``; bytes 6 and 7 (both
directions held) collapse to NOOP and JUMP because the game sees them that way. Everything is
table lookups, so whole replays convert in one vectorised call.
"""

from __future__ import annotations

import numpy as np

from torchrl_bc.sim.actions import ACTION_NAMES, ACTIONS, N_ACTIONS
from torchrl_bc.sim.simulator import INPUT_DECODE

__all__ = [
    "ACTION_NAMES",
    "ACTION_TO_HOR",
    "ACTION_TO_INPUT",
    "ACTION_TO_JUMP",
    "INPUT_TO_ACTION",
    "INPUT_TO_HOR",
    "INPUT_TO_JUMP",
    "N_ACTIONS",
    "action_to_input",
    "actions_to_inputs",
    "decode_input",
    "encode_input",
    "inputs_to_actions",
]

_JUMP_BIT, _RIGHT_BIT, _LEFT_BIT = 1, 2, 4


#: Horizontal input (-1, 0, 1) and jump (0, 1) of each input byte 0..7: the simulator's decoding.
INPUT_TO_HOR = np.array([h for h, _ in INPUT_DECODE], dtype=np.int8)
INPUT_TO_JUMP = np.array([j for _, j in INPUT_DECODE], dtype=np.int8)
ACTION_TO_HOR = np.array([h for _, h, _ in ACTIONS], dtype=np.int8)
ACTION_TO_JUMP = np.array([j for _, _, j in ACTIONS], dtype=np.int8)
#: Canonical input byte of each action (one direction bit at most).
ACTION_TO_INPUT = np.array([(_RIGHT_BIT if h > 0 else 0) | (_LEFT_BIT if h < 0 else 0) | j
                            for _, h, j in ACTIONS], dtype=np.uint8)
#: Action of each input byte 0..7, found by (hor, jump) so 6 -> NOOP and 7 -> JUMP.
INPUT_TO_ACTION = np.array(
    [
        next(
            a
            for a in range(N_ACTIONS)
            if ACTION_TO_HOR[a] == INPUT_TO_HOR[b] and ACTION_TO_JUMP[a] == INPUT_TO_JUMP[b]
        )
        for b in range(8)
    ],
    dtype=np.int64,
)

for _tab in (INPUT_TO_HOR, INPUT_TO_JUMP, ACTION_TO_INPUT, ACTION_TO_HOR, ACTION_TO_JUMP):
    _tab.setflags(write=False)
INPUT_TO_ACTION.setflags(write=False)


def _check_range(values: np.ndarray, upper: int, what: str) -> None:
    if values.size and (values.min() < 0 or values.max() >= upper):
        raise ValueError(
            f"{what} out of range 0..{upper - 1}: {values[(values < 0) | (values >= upper)][:5]}"
        )


def decode_input(inputs: int | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split input byte(s) into (horizontal in {-1,0,1}, jump in {0,1}) int8 arrays."""
    arr = np.asarray(inputs)
    _check_range(arr, 8, "input byte")
    return INPUT_TO_HOR[arr], INPUT_TO_JUMP[arr]


def encode_input(hor: int | np.ndarray, jump: int | np.ndarray) -> np.ndarray:
    """Build input byte(s) from horizontal and jump; inverse of :func:`decode_input` on 0..5."""
    hor_arr, jump_arr = np.asarray(hor), np.asarray(jump)
    if np.any((hor_arr < -1) | (hor_arr > 1)) or np.any((jump_arr < 0) | (jump_arr > 1)):
        raise ValueError("hor must be in {-1, 0, 1} and jump in {0, 1}")
    right = (hor_arr > 0).astype(np.uint8) * _RIGHT_BIT
    left = (hor_arr < 0).astype(np.uint8) * _LEFT_BIT
    return (right | left | jump_arr.astype(np.uint8)).astype(np.uint8)


def inputs_to_actions(inputs: np.ndarray | int) -> np.ndarray:
    """Map input byte(s) 0..7 to action indices 0..5 (int64, ready for a categorical loss)."""
    arr = np.asarray(inputs)
    _check_range(arr, 8, "input byte")
    return INPUT_TO_ACTION[arr]


def actions_to_inputs(actions: np.ndarray | int) -> np.ndarray:
    """Map action indices 0..5 to their canonical input bytes (uint8)."""
    arr = np.asarray(actions)
    _check_range(arr, N_ACTIONS, "action")
    return ACTION_TO_INPUT[arr]


def action_to_input(action: int | np.ndarray) -> int | np.ndarray:
    """Input byte of one action (an ``int``), or of an array of actions (an array)."""
    out = actions_to_inputs(action)
    return int(out) if out.ndim == 0 else out
