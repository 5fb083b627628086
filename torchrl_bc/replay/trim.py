"""Start a demonstration where the human starts playing.

Human demos open with ~12 idle ticks (a median; up to 43) while the player gets ready. A
policy acting from tick 0 never sees those ticks' states, and cloning the idle labels makes it
wait at spawn. Dropping the idle *labels* alone still trains on states recorded 12 ticks late
(elapsed time, drones and thwumps already moved), which the policy never meets either. So the
idle inputs are cut from the replay itself and the rest is re-simulated from tick 0, keeping
the longest cut that still wins on its last input.
"""

from __future__ import annotations

import numpy as np

from torchrl_bc.replay.format import Replay

__all__ = ["idle_prefix", "trim_idle_start"]


def idle_prefix(inputs: np.ndarray) -> int:
    """Number of leading ticks with no key held."""
    held = np.flatnonzero(np.asarray(inputs) != 0)
    return int(held[0]) if held.size else len(inputs)


def trim_idle_start(replay: Replay) -> tuple[Replay, int]:
    """``(replay with the longest idle opening cut that still wins, ticks cut)``.

    Some of the wait is often needed (the ninja landing at spawn, a drone passing), so cuts
    are tried from the whole idle opening down to one tick; ``(replay, 0)`` when none wins
    exactly on its last input.
    """
    from torchrl_bc.sim import MapFormatError, Simulator

    try:
        sim = Simulator(replay.map_data)
    except (MapFormatError, ValueError):
        return replay, 0
    start = sim.snapshot()
    for k in range(min(idle_prefix(replay.inputs), replay.n_ticks - 1), 0, -1):
        sim.restore(start)
        if sim.run_inputs(replay.inputs[k:]).win_frame == replay.n_ticks - k:
            inputs = np.array(replay.inputs[k:], np.uint8)
            inputs.setflags(write=False)
            src = f"{replay.source}#trim{k}" if replay.source else f"#trim{k}"
            return Replay(map_data=replay.map_data, inputs=inputs, success=replay.success,
                          version=replay.version, source=src), k
    return replay, 0
