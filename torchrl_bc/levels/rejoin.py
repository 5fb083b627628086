"""Rejoin a winning demo: a second way for the planner to finish a DAgger query.

On a recorded level a winning input sequence is known. From a state close to where that demo
was at some tick (the same objective stage, a few px and px/tick away), playing the demo's
inputs from that tick on often still wins. The planner tries it at the states its search
reaches (:meth:`~torchrl_bc.levels.planner.Planner.solve`, ``rejoin=``), so a query on a level
too hard for its own search within budget can end in the demo instead of going unlabelled:
those are the levels and states where the student fails most.
"""

from __future__ import annotations

import numpy as np

from torchrl_bc.sim import Simulator
from torchrl_bc.sim.constants import DEAD, DYING, WON

__all__ = ["DemoRejoin"]

CELL = 8  # px: the demo's states are indexed on this grid


class DemoRejoin:
    """A winning demo's states, indexed by place, and the test of finishing with its tail.

    ``radius`` (px) and ``speed`` (px/tick) bound how far a state may be from a demo state to
    be tried; ``max_tries`` caps the tail simulations per :meth:`reset` (one planner query)."""

    def __init__(self, map_data: bytes, inputs: np.ndarray, *, radius: float = 6.0,
                 speed: float = 1.0, max_tries: int = 200, source: str = "<demo>") -> None:
        self.inputs = bytes(np.asarray(inputs, np.uint8))
        self.radius, self.speed, self.max_tries = radius, speed, max_tries
        sim = Simulator(map_data, source=source)
        states, won = [], False
        for b in self.inputs:  # states[t]: the state before input t, where its tail starts
            n = sim.ninja
            states.append((n.xpos, n.ypos, n.xspeed, n.yspeed, sim.switch_hit))
            sim.tick_input(b)
            if sim.ninja.state == WON:
                won = True
                break
            if sim.ninja.state in (DEAD, DYING):
                break
        if not won:
            raise ValueError(f"{source}: the demo given to rejoin does not win from the spawn")
        self.states = states
        self.cells: dict[tuple[int, int, bool], list[int]] = {}
        for t in range(len(self.states) - 1, -1, -1):  # latest first: the shortest tail wins
            x, y, _, _, stage = self.states[t]
            self.cells.setdefault((int(x) // CELL, int(y) // CELL, stage), []).append(t)
        self.reset()

    def reset(self) -> None:
        """Start a new query's budget of tries."""
        self.tries = 0
        self.joined = False  # whether the last query ended in the demo
        self._tried: set[tuple[int, int, int, int, int]] = set()

    def join(self, sim: Simulator) -> bytes | None:
        """The demo's inputs that win from ``sim``'s state, or None; ``sim`` is left as it
        was. Only demo states within ``radius`` and ``speed`` are tried, latest first, each at
        most once per (demo tick, 1 px cell, rounded speed) of the query."""
        if self.tries >= self.max_tries:
            return None
        n = sim.ninja
        x, y, vx, vy = n.xpos, n.ypos, n.xspeed, n.yspeed
        stage = sim.switch_hit
        cx, cy = int(x) // CELL, int(y) // CELL
        cands: list[int] = []
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                cands += self.cells.get((cx + dx, cy + dy, stage), ())
        r2 = self.radius * self.radius
        for t in sorted(cands, reverse=True):
            sx, sy, svx, svy, _ = self.states[t]
            if ((sx - x) ** 2 + (sy - y) ** 2 > r2 or abs(svx - vx) > self.speed
                    or abs(svy - vy) > self.speed):
                continue
            key = (t, int(x), int(y), round(vx * 2), round(vy * 2))
            if key in self._tried:
                continue
            self._tried.add(key)
            self.tries += 1
            tail = self._play(sim, t)
            if tail is not None:
                self.joined = True
                return tail
            if self.tries >= self.max_tries:
                return None
        return None

    def _play(self, sim: Simulator, t: int) -> bytes | None:
        snap = sim.snapshot()
        out = None
        for i, b in enumerate(self.inputs[t:], 1):
            sim.tick_input(b)
            st = sim.ninja.state
            if st == WON:
                out = self.inputs[t:t + i]
                break
            if st in (DEAD, DYING):
                break
        sim.restore(snap)
        return out
