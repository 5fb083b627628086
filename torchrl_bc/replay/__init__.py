"""Replay files: the compact format, input/action mapping, and simulator traces."""

from torchrl_bc.replay.actions import (
    ACTION_NAMES,
    N_ACTIONS,
    action_to_input,
    actions_to_inputs,
    decode_input,
    encode_input,
    inputs_to_actions,
)
from torchrl_bc.replay.format import (
    Replay,
    ReplayFormatError,
    encode_replay,
    parse_replay,
    read_replay,
    write_replay,
)

__all__ = [
    "ACTION_NAMES",
    "N_ACTIONS",
    "Replay",
    "ReplayFormatError",
    "action_to_input",
    "actions_to_inputs",
    "decode_input",
    "encode_input",
    "encode_replay",
    "inputs_to_actions",
    "parse_replay",
    "read_replay",
    "write_replay",
]
