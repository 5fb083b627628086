"""The ``progress`` observation: how long the ninja has been stuck, the one thing a memoryless
policy cannot see.

A greedy policy without memory that reaches a state where its best action leaves the state
unchanged (pressing into a wall, standing still) sees the same input every tick and stays there
until the time limit. These counters change while it is stuck, so a policy can learn, from
DAgger's planner labels at such states, to act differently once it has been stuck for a while:

- ticks since the ninja was last ``STALL_RADIUS`` px or more from where it stood (the anchor);
- ticks since the path length to the current objective last fell ``PROGRESS_STEP`` px below
  its best this stage (catches cycles: jumping back and forth without getting closer);
- how far the path length is above that best (backtracking).

They are episode memory, kept in the observation builder (:class:`Memory`) and updated once per
simulator tick observed; a new episode (a new simulator, or time running backwards) starts them
afresh, and DAgger's relabelling restores the student's memory with its snapshot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["N_PROGRESS", "PROGRESS_STEP", "STALL_RADIUS", "Memory", "progress_features",
           "update_memory"]

N_PROGRESS = 3
#: Movement (px) that resets the stall counter, and path progress (px) that counts as progress.
STALL_RADIUS, PROGRESS_STEP = 6.0, 6.0
#: Ticks at which each counter saturates at 1, and px of backtracking that reads as 1.
_STALL_TICKS, _PROGRESS_TICKS, _BACKTRACK_PX = 300.0, 600.0, 300.0


@dataclass(frozen=True)
class Memory:
    """What ``progress`` remembers of the episode so far (immutable: safe to store with a
    snapshot)."""

    frame: int  # the tick it was last updated at
    stage: int
    anchor_x: float
    anchor_y: float
    anchor_frame: int
    best: float  # best path length this stage (inf: none finite yet)
    best_frame: int


def update_memory(mem: Memory | None, frame: int, x: float, y: float, stage: int,
                  dist: float) -> Memory:
    """The memory after observing tick ``frame`` (idempotent within a tick; a tick before
    the memory's own starts a new one)."""
    if mem is None or frame < mem.frame:
        return Memory(frame, stage, x, y, frame, dist, frame)
    if frame == mem.frame:
        return mem
    ax, ay, af = mem.anchor_x, mem.anchor_y, mem.anchor_frame
    if math.hypot(x - ax, y - ay) >= STALL_RADIUS:
        ax, ay, af = x, y, frame
    best, bf = mem.best, mem.best_frame
    if stage != mem.stage or (math.isfinite(dist) and not dist > best - PROGRESS_STEP):
        best, bf = dist, frame
    return Memory(frame, stage, ax, ay, af, best, bf)


def progress_features(mem: Memory, dist: float) -> np.ndarray:
    """float32 [N_PROGRESS]: the stall and no-progress counters (1 = saturated) and the
    backtracking above the stage's best path length (0 when either length is not finite)."""
    back = dist - mem.best if math.isfinite(dist) and math.isfinite(mem.best) else 0.0
    return np.array([min((mem.frame - mem.anchor_frame) / _STALL_TICKS, 1.0),
                     min((mem.frame - mem.best_frame) / _PROGRESS_TICKS, 1.0),
                     min(max(back / _BACKTRACK_PX, 0.0), 1.0)], np.float32)
