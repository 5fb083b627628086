"""Planner: find per-tick inputs that win a level, by best-first search over the simulator.

Search nodes are simulator states reached by macro-actions (one of the 6 actions held for k
ticks). Children are lazy: a child stores only (parent, action, k); its state is recomputed
from the parent's snapshot when it is popped, which keeps memory at one snapshot per expanded
node with live children. States are deduplicated by a bucket of (position, velocity, ninja
state, goal stage, jump held). The priority is weighted A*: ticks so far plus ``weight`` times
the flood-fill distance to the current goal (the exit switch, then its door) in ticks.

Doors follow the project's default physics (``solid_doors=False``, as in the reference the
human replays were recorded with): closed locked doors do not block the ninja, so the planner
does not need their switches. Pass ``solid_doors=True`` to plan for the N++ rule instead.
"""

from __future__ import annotations

import heapq
import itertools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from torchrl_bc.replay.actions import ACTION_TO_INPUT
from torchrl_bc.sim import SimSnapshot, Simulator
from torchrl_bc.sim import entities as E
from torchrl_bc.sim.constants import DEAD, DYING, WON

from .distance import DistanceMap
from .rejoin import DemoRejoin

#: Search parameters per style. "human" holds actions longer and pays for each change.
STYLES: dict[str, dict] = {
    "shortest": {"durations": (3, 6, 12), "weight": 2.0, "change_cost": 0.0},
    "human": {"durations": (6, 12, 24), "weight": 2.5, "change_cost": 6.0},
}
DEFAULT_BUDGET_S = 30.0
SPEED = 3.0  # px per tick used to turn path length into ticks


@dataclass
class PlanResult:
    """Outcome of one search; ``inputs`` ends exactly on the winning tick when ``solved``."""

    solved: bool
    inputs: np.ndarray
    ticks_searched: int
    expansions: int
    seconds: float
    reason: str = ""

    @property
    def ticks_per_s(self) -> float:
        return self.ticks_searched / max(self.seconds, 1e-9)


class _Node:
    """An expanded search state; ``inputs`` is the macro that led here from ``parent``."""

    __slots__ = ("action", "cost", "g", "inputs", "parent", "pending", "snap")

    def __init__(self, parent: _Node | None, action: int, inputs: bytes, g: int,
                 cost: float) -> None:
        self.parent = parent
        self.action = action
        self.inputs = inputs
        self.g = g
        self.cost = cost
        self.snap: SimSnapshot | None = None
        self.pending = 0  # children still waiting in the heap


class Planner:
    """Plans one level. Reuse :meth:`solve`; each call searches from the spawn."""

    def __init__(self, map_data: bytes, *, style: str = "shortest", solid_doors: bool = False,
                 source: str = "<map>") -> None:
        if style not in STYLES:
            raise ValueError(f"unknown style {style!r}; choose from {sorted(STYLES)}")
        self.map_data = bytes(map_data)
        self.style = style
        self.params = STYLES[style]
        self.solid_doors = solid_doors
        self.source = source
        self.sim = Simulator(self.map_data, solid_doors=solid_doors, source=source)
        self._prepare_goals()
        self._door = self.door
        self._start: SimSnapshot | None = None

    def _prepare_goals(self) -> None:
        """Pick the exit whose switch-then-door route is shortest and build its two fields.

        Narrow passages (half tiles, one-way platforms) can defeat the default clearance; the
        fields are then rebuilt with less clearance so the heuristic still has a route."""
        sim = self.sim
        hazards = [(e.xpos, e.ypos) for e in sim.entities if e.kind in E.MINES and e.active]
        doors = [e for e in sim.by_group.get(E.EXIT, ()) if e.kind == E.EXIT]
        switches = [e for e in sim.by_group.get(E.EXIT, ()) if e.kind == E.EXIT_SWITCH]
        if not doors:
            raise ValueError(f"{self.source}: the level has no exit door")
        best = None
        for clearance in (9.0, 7.0, 5.0):
            self.dmap = DistanceMap(sim.tiles, hazards, clearance=clearance)
            sx, sy = self.dmap.node_of(sim.ninja.xpos, sim.ninja.ypos)
            for door in doors:
                sw = next(e for e in switches if e.door == door)
                to_switch = self.dmap.field_to(sw.xpos, sw.ypos, sw.radius + 9)
                to_door = self.dmap.field_to(door.xpos, door.ypos, door.radius + 9)
                nx, ny = self.dmap.node_of(sw.xpos, sw.ypos)
                total = to_switch[sx, sy] + to_door[nx, ny]
                if best is None or total < best[0]:
                    best = (total, door, to_switch, to_door)
            if np.isfinite(best[0]):
                break
        total, door, to_switch, to_door = best
        self._door_index = doors.index(door)
        self.reachable = bool(np.isfinite(total))
        nx, ny = self.dmap.node_of(self.door_switch.xpos, self.door_switch.ypos)
        link = float(to_door[nx, ny]) if np.isfinite(to_door[nx, ny]) else 1e6
        big = 1e6
        # Lists of lists: scalar lookups in the inner loop are far faster than numpy indexing.
        self._h = (
            (np.nan_to_num(to_switch, posinf=big) + link).tolist(),
            np.nan_to_num(to_door, posinf=big).tolist(),
        )

    @property
    def door(self) -> Any:
        """The chosen exit door of the current simulator (``reset`` rebuilds entities)."""
        return [e for e in self.sim.by_group[E.EXIT] if e.kind == E.EXIT][self._door_index]

    @property
    def door_switch(self) -> Any:
        door = self.door
        return next(e for e in self.sim.by_group[E.EXIT]
                    if e.kind == E.EXIT_SWITCH and e.door == door)

    def heuristic(self) -> float:
        """Remaining path length in ticks from the current simulator state."""
        n = self.sim.ninja
        x, y = self.dmap.node_of(n.xpos, n.ypos)
        return self._h[1 if self._door.switch_hit else 0][x][y] / SPEED

    def _key(self) -> tuple:
        n = self.sim.ninja
        return (int(n.xpos) >> 2, int(n.ypos) >> 2, round(n.xspeed * 2), round(n.yspeed * 2),
                n.state, self._door.switch_hit, n.jump_input_old)

    def _macro(self, node: _Node, action: int, k: int) -> bytes:
        """Input bytes of a macro; a jump after a held jump on ground or wall starts with one
        released tick so it is a fresh press (the game only jumps on a new press)."""
        byte = int(ACTION_TO_INPUT[action])
        if byte & 1 and node.inputs and node.inputs[-1] & 1:
            n = self.sim.ninja
            if not n.airborn or n.walled:
                return bytes([byte & 6]) + bytes([byte]) * (k - 1)
        return bytes([byte]) * k

    def solve(self, budget_s: float = DEFAULT_BUDGET_S, max_ticks: int = 20000,
              max_expansions: int | None = None, start: SimSnapshot | None = None,
              last_input: int = 0, rejoin: DemoRejoin | None = None) -> PlanResult:
        """Search until a win, the time budget, ``max_expansions`` (a machine-independent
        budget, so acceptance decisions are reproducible) or an exhausted frontier.

        ``start`` searches from a snapshot of this level instead of the spawn (DAgger asks the
        planner what to do from a state the student reached); ``last_input`` is the input byte
        held on the tick before it, so a jump is re-pressed when needed. The inputs returned
        then win from ``start``. ``rejoin`` (a winning demo of this level) also ends the
        search at the first state reached from which the demo's tail wins."""
        t0 = time.perf_counter()
        sim = self.sim
        if start is None:
            sim.reset()
        else:
            sim.restore(start)
        self._door = self.door
        self._start = start
        durations = self.params["durations"]
        cut = set(durations)
        weight = float(self.params["weight"])
        change = float(self.params["change_cost"])
        root = _Node(None, -1, b"" if start is None else bytes([last_input & 7]), 0, 0.0)
        root.snap = sim.snapshot()
        if rejoin is not None:
            rejoin.reset()
            tail = rejoin.join(sim)
            if tail is not None:
                return self._result(tail, 0, 0, t0)
        seen: dict[tuple, float] = {self._key(): 0.0}
        counter = itertools.count()
        # Heap entries are (f, tie, parent, action, k): a lazy child of an expanded parent.
        heap: list[tuple[float, int, _Node | None, int, int]] = [(0.0, 0, None, -1, 0)]
        ticks = expansions = 0
        reason = "frontier exhausted"
        while heap:
            if time.perf_counter() - t0 > budget_s:
                reason = f"budget of {budget_s:g} s spent"
                break
            if max_expansions is not None and expansions >= max_expansions:
                reason = f"budget of {max_expansions} expansions spent"
                break
            _, _, parent, action, k = heapq.heappop(heap)
            if parent is None:
                node = root
            else:
                sim.restore(parent.snap)
                inputs = self._macro(parent, action, k)
                for b in inputs:
                    sim.tick_input(b)
                ticks += k
                cost = parent.cost + k + (change if action != parent.action else 0.0)
                node = _Node(parent, action, inputs, parent.g + k, cost)
                node.snap = sim.snapshot()
                parent.pending -= 1
                if parent.pending == 0:
                    parent.snap = None  # no live child needs it any more
            expansions += 1
            if node.g >= max_ticks:
                continue
            # Each action is simulated once for its longest duration; shorter durations are
            # prefixes of that run, so they cost no extra restore.
            for a in range(6):
                sim.restore(node.snap)
                inputs = self._macro(node, a, durations[-1])
                extra = change if a != node.action else 0.0
                for i, b in enumerate(inputs, 1):
                    sim.tick_input(b)
                    ticks += 1
                    st = sim.ninja.state
                    if st == WON:
                        return self._result(self._path(node) + inputs[:i], ticks, expansions, t0)
                    if st == DEAD or st == DYING:
                        break
                    if i in cut:
                        key = self._key()
                        cost = node.cost + i + extra
                        if seen.get(key, np.inf) <= cost:
                            continue
                        seen[key] = cost
                        if rejoin is not None:
                            tail = rejoin.join(sim)
                            if tail is not None:
                                return self._result(self._path(node) + inputs[:i] + tail,
                                                    ticks, expansions, t0)
                        node.pending += 1
                        f = cost + weight * self.heuristic()
                        heapq.heappush(heap, (f, next(counter), node, a, i))
            if node.pending == 0:
                node.snap = None
        return PlanResult(False, np.zeros(0, np.uint8), ticks, expansions,
                          time.perf_counter() - t0, reason)

    @staticmethod
    def _path(node: _Node) -> bytes:
        """Input bytes from the spawn to ``node``, rebuilt from the parent chain."""
        parts: list[bytes] = []
        while node.parent is not None:
            parts.append(node.inputs)
            node = node.parent
        return b"".join(reversed(parts))

    def _result(self, path: bytes, ticks: int, expansions: int, t0: float) -> PlanResult:
        inputs = np.frombuffer(path, np.uint8).copy()
        if self._start is not None:  # re-simulate from the snapshot
            sim = Simulator(self.map_data, solid_doors=self.solid_doors, source=self.source)
            sim.restore(self._start)
            for b in inputs[:-1].tolist():
                sim.tick_input(b)
                if sim.ninja.state in (WON, DEAD, DYING):
                    break
            ok = sim.ninja.state not in (WON, DEAD, DYING)
            if ok:
                sim.tick_input(int(inputs[-1]))
                ok = sim.ninja.state == WON
            return PlanResult(ok, inputs if ok else np.zeros(0, np.uint8), ticks, expansions,
                              time.perf_counter() - t0,
                              "" if ok else "re-simulation from the start state did not win "
                                            "on the last input")
        trace = Simulator(self.map_data, solid_doors=self.solid_doors,
                          source=self.source).run_inputs(inputs)
        ok = trace.win_frame == len(inputs)
        return PlanResult(ok, inputs if ok else np.zeros(0, np.uint8), ticks, expansions,
                          time.perf_counter() - t0,
                          "" if ok else f"re-simulation did not win on the last input "
                                        f"(win_frame={trace.win_frame}, n={len(inputs)})")


def solve_map(map_data: bytes, *, budget_s: float = DEFAULT_BUDGET_S, style: str = "shortest",
              max_expansions: int | None = None, source: str = "<map>") -> PlanResult:
    """Plan one level from its map data (see :class:`Planner`)."""
    try:
        planner = Planner(map_data, style=style, source=source)
    except ValueError as exc:  # no exit door: nothing to plan for
        return PlanResult(False, np.zeros(0, np.uint8), 0, 0, 0.0, str(exc))
    return planner.solve(budget_s, max_expansions=max_expansions)
