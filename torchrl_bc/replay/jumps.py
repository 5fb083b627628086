"""Release jump where holding it does nothing, so a demo's jumps are labelled where they start.

A jump fires on a fresh press only. Players and the planner often hold the key long after a
jump has ended, or press it early, so a demo holds jump for ticks on end while nothing happens,
then lets go for a single tick and presses again: the jump. Cloned, that is a rare one-tick
"release" label among many "hold" labels in the same states, which a greedy policy never
picks; it keeps holding, never jumps, and walks off the platform it should have jumped from.

:func:`release_stale_jumps` clears the jump bit wherever the demo stays exactly the same
without it: for every run of ticks with jump held, the longest tail of the run that can be let
go without changing a single tick of the ninja's trajectory (position, velocity and state, to
the bit, as :func:`~torchrl_bc.replay.trace.compare_trace` checks goldens) or its outcome.
Jumps then read "no jump ... jump": the press is where the jump starts. Only tails are
cleared: a hold that ends earlier would make the next tick's press a fresh one.
"""

from __future__ import annotations

import numpy as np

from torchrl_bc.replay.format import Replay
from torchrl_bc.replay.trace import compare_trace
from torchrl_bc.sim.trace import Trace

__all__ = ["JUMP_BIT", "release_from", "release_stale_jumps"]

JUMP_BIT = 1  # input byte bit 0: jump (bit 1 right, bit 2 left)


def _runs(jump: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (first, last) tick of each maximal run of held jump."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], jump.astype(np.int8), [0]])))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def release_from(sim, inputs: np.ndarray) -> np.ndarray:
    """``inputs`` (played from ``sim``'s current state) with jump released wherever holding it
    changed nothing; ``sim`` is left where it started. Used on whole demos and on planner plans
    from a snapshot (DAgger labels).

    Each run of held jump is tried from its whole length down (a binary search over where the
    released tail starts, each candidate re-simulated from the run's first tick and compared
    with the original trace tick for tick), and the result is checked once more end to end;
    the inputs come back unchanged if that check fails.
    """
    inputs = np.asarray(inputs, np.uint8)
    start = sim.snapshot()
    ref = sim.run_inputs(inputs)
    n = ref.ticks  # ticks simulated (the trace stops at a win or a death)

    def same(trace: Trace, a: int) -> bool:
        """Whether ``trace``, played from tick ``a``, is the reference's tail, bit for bit."""
        def after(frame: int) -> int:
            return frame - a if frame > 0 else frame

        tail = Trace(ref.pos[a:], ref.vel[a:], ref.state[a:], after(ref.win_frame),
                     after(ref.death_frame))
        return compare_trace(trace, tail, entities=False).exact

    out = inputs.copy()
    sim.restore(start)
    at = 0  # the tick ``sim`` stands at, following ``out`` (the same trajectory as ``inputs``)
    for a, b in _runs((inputs[:n] & JUMP_BIT) != 0):
        sim.advance_inputs(out[at:a])
        at = a
        snap = sim.snapshot()
        lo, hi = a, b + 1  # release [c, b] for the smallest c in [lo, hi) that keeps it the same
        while lo < hi:
            c = (lo + hi) // 2
            trial = out[a:].copy()
            trial[c - a:b + 1 - a] &= ~np.uint8(JUMP_BIT)
            sim.restore(snap)
            if same(sim.run_inputs(trial), a):
                hi = c
            else:
                lo = c + 1
        out[lo:b + 1] &= ~np.uint8(JUMP_BIT)
        sim.restore(snap)
    sim.restore(start)
    ok = same(sim.run_inputs(out), 0)  # the searches assume each release leaves the others
    sim.restore(start)  # alone; if together they do not, keep the inputs as they were
    return out if ok else inputs.copy()


def release_stale_jumps(replay: Replay) -> tuple[Replay, int]:
    """``(replay with jump released wherever holding it changed nothing, ticks released)``;
    ``(replay, 0)`` when nothing can be released or the map does not load."""
    from torchrl_bc.sim import MapFormatError, Simulator

    if not replay.n_ticks:
        return replay, 0
    try:
        sim = Simulator(replay.map_data)
    except (MapFormatError, ValueError):
        return replay, 0
    out = release_from(sim, replay.inputs)
    released = int(np.count_nonzero(out != np.asarray(replay.inputs)))
    if not released:
        return replay, 0
    out.setflags(write=False)
    src = f"{replay.source}#jumps" if replay.source else "#jumps"
    return Replay(map_data=replay.map_data, inputs=out, success=replay.success,
                  version=replay.version, source=src), released
