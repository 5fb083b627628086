"""What the ninja was doing when it died: one scripted death of each kind, read back."""

from __future__ import annotations

import numpy as np

from torchrl_bc.levels.generator import Canvas
from torchrl_bc.replay.actions import action_to_input
from torchrl_bc.replay.endings import death_kind
from torchrl_bc.replay.format import Replay
from torchrl_bc.replay.trace import simulate_replay
from torchrl_bc.sim.actions import action_of

NOOP, RIGHT, JUMP_RIGHT = action_of(0, 0), action_of(1, 0), action_of(1, 1)


def _corridor(mine_x: int, spawn_row: int = 14) -> bytes:
    """A corridor with its floor on row 14, one mine on the floor, the exit at the far end."""
    c = Canvas()
    c.carve(0, 10, 41, 14)
    c.spawn(1, spawn_row)
    c.mine(mine_x, 14, 0, 1)
    c.exit((41, 14), (39, 14))
    return c.lm.to_bytes()


def _pit(spawn: tuple[int, int] = (1, 8)) -> bytes:
    """A hall whose floor ends at column 10 over a deep pit lined with mines."""
    c = Canvas()
    c.carve(0, 2, 41, 8)
    c.carve(10, 9, 41, 22)
    for x in range(10, 42):
        c.mine(x, 22, 0, 1)
    c.spawn(*spawn)
    c.exit((41, 2), (40, 2))
    return c.lm.to_bytes()


def _play(map_data: bytes, actions: list[int]) -> tuple[str | None, int]:
    inputs = np.array([action_to_input(a) for a in actions], np.uint8)
    trace = simulate_replay(Replay(map_data, inputs, False, 1))
    return death_kind(trace, inputs), trace.death_frame


def test_running_into_a_mine_with_and_without_a_stale_jump() -> None:
    assert _play(_corridor(12), [RIGHT] * 400)[0] == "on_ground"
    # jump held from the spawn, while the ninja still falls onto the floor: it never fires,
    # and the ninja runs into the mine holding it
    assert _play(_corridor(16), [JUMP_RIGHT] * 400)[0] == "on_ground_jump_held"


def test_landing_next_to_a_mine() -> None:
    # dropped from three tiles up, the ninja runs 11 ticks on the floor before the mine
    assert _play(_corridor(4, spawn_row=11), [NOOP] * 6 + [RIGHT] * 400)[0] == "landed"
    # the same a tile lower: 21 ticks on the floor, past the 20-tick window
    assert _play(_corridor(4, spawn_row=12), [NOOP] * 6 + [RIGHT] * 400)[0] == "on_ground"


def test_running_off_an_edge_jumping_off_it_and_never_landing() -> None:
    kind, died = _play(_pit(), [RIGHT] * 400)
    assert kind == "ran_off" and died > 0
    # the same run with a jump pressed two ticks before the ninja would leave the edge
    inputs = np.array([action_to_input(RIGHT)] * 400, np.uint8)
    states = simulate_replay(Replay(_pit(), inputs, False, 1)).state
    edge = int(np.flatnonzero(np.isin(states, [0, 1, 2]))[-1])
    assert _play(_pit(), [RIGHT] * (edge - 2) + [JUMP_RIGHT] * 400)[0] == "jumped"
    assert _play(_pit(spawn=(20, 3)), [NOOP] * 400)[0] == "never_landed"
    # jump pressed 3 ticks before the ninja lands on the floor (it falls for 28): buffered, it
    # fires on the landing tick, which never reads as standing, and the jump ends in the pit;
    # pressed 5 ticks before, the buffer runs out, and the ninja runs off the edge holding it
    assert _play(_pit(spawn=(8, 7)), [NOOP] * 25 + [JUMP_RIGHT] * 400)[0] == "jumped"
    assert _play(_pit(spawn=(8, 7)), [NOOP] * 23 + [JUMP_RIGHT] * 400)[0] == "ran_off"


def test_no_kind_without_a_death() -> None:
    kind, died = _play(_corridor(12), [NOOP] * 100)  # stands still until the inputs run out
    assert kind is None and died <= 0


def test_evaluation_reads_the_kind_from_the_inputs_a_rollout_played() -> None:
    from torchrl_bc.train.evaluate import Rollout, death_kind_of

    inputs = np.array([action_to_input(RIGHT)] * 400, np.uint8)
    _, died = _play(_corridor(12), [RIGHT] * 400)
    dead = Rollout("corridor", False, True, died, 200, 400, death_cause="mine", inputs=inputs)
    assert death_kind_of(_corridor(12), dead) == "on_ground"
    timed_out = Rollout("corridor", False, False, 400, 200, 400, inputs=inputs[:50])
    assert death_kind_of(_corridor(12), timed_out) is None
