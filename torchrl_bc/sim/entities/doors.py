"""Doors: a segment on a cell edge plus a trigger (the door itself or a switch)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..constants import MAP_UNITS, NINJA_RADIUS
from ..geometry import clamp_cell, overlap_circles
from ..tiles import make_linear
from .base import Entity

if TYPE_CHECKING:
    from ..simulator import Simulator

DOOR_HALF_LENGTH = 12
_DIAG = math.sqrt(2) / 2
ORIENTATION_VECTORS = (
    (1, 0), (_DIAG, _DIAG), (0, 1), (-_DIAG, _DIAG),
    (-1, 0), (-_DIAG, -_DIAG), (0, -1), (_DIAG, -_DIAG),
)


def orientation_vector(orientation: int) -> tuple[float, float]:
    if not 0 <= orientation < 8:
        raise ValueError(f"orientation {orientation} is not in 0..7")
    return ORIENTATION_VECTORS[orientation]


class Door(Entity):
    """Common door geometry.

    The door's segment sits on the edge of the cell behind its position along the
    orientation and adds to two half-tile grid edges while closed. After construction the
    entity's position is the trigger's (its switch, or the door itself for regular doors).
    """

    logical = True

    def __init__(self, group: int, index: int, x: int, y: int, orientation: int,
                 sw_x: int, sw_y: int, sim: Simulator) -> None:
        super().__init__(group, index, x, y)
        self.closed = True
        self.orientation = orientation
        self.vertical = orientation in (0, 4)
        vx, vy = orientation_vector(orientation)
        cell = clamp_cell(
            math.floor((self.xpos - DOOR_HALF_LENGTH * vx) / 24),
            math.floor((self.ypos - DOOR_HALF_LENGTH * vy) / 24),
        )
        hx = 2 * (cell[0] + 1)
        hy = 2 * (cell[1] + 1)
        if self.vertical:
            self.segment = make_linear(self.xpos, self.ypos - DOOR_HALF_LENGTH,
                                       self.xpos, self.ypos + DOOR_HALF_LENGTH, oriented=False)
            self.edges = ((hx, hy - 2), (hx, hy - 1))
            self.edge_grid = sim.ver_edges
        else:
            self.segment = make_linear(self.xpos - DOOR_HALF_LENGTH, self.ypos,
                                       self.xpos + DOOR_HALF_LENGTH, self.ypos, oriented=False)
            self.edges = ((hx - 2, hy), (hx - 1, hy))
            self.edge_grid = sim.hor_edges
        for ex, ey in self.edges:
            self.edge_grid[ex][ey] += 1
        self.segment_cell = cell
        sim.door_cells[cell[0]][cell[1]].append(self)
        self.xpos = sw_x * MAP_UNITS
        self.ypos = sw_y * MAP_UNITS
        self.cell = clamp_cell(math.floor(self.xpos / 24), math.floor(self.ypos / 24))

    def set_closed(self, closed: bool) -> None:
        self.closed = closed
        step = 1 if closed else -1
        for ex, ey in self.edges:
            self.edge_grid[ex][ey] += step

    def touches_ninja(self, sim: Simulator) -> bool:
        ninja = sim.ninja
        return overlap_circles(self.xpos, self.ypos, self.radius, ninja.xpos, ninja.ypos,
                               NINJA_RADIUS)


class RegularDoor(Door):
    """Opens while the ninja is near and closes 5 ticks after it leaves."""

    kind = 5
    thinkable = True
    radius = 10

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.open_timer = 0

    def think(self, sim: Simulator) -> None:
        if not self.closed:
            self.open_timer += 1
            if self.open_timer > 5:
                self.set_closed(True)

    def logical_collision(self, sim: Simulator):
        if self.touches_ninja(sim):
            self.set_closed(False)
            self.open_timer = 0
        return None


class LockedDoor(Door):
    """Opens for good when its switch is touched."""

    kind = 6
    radius = 5

    def logical_collision(self, sim: Simulator):
        if self.touches_ninja(sim):
            sim.ninja.doors_opened += 1
            self.set_closed(False)
            self.active = False
        return None


class TrapDoor(Door):
    """Starts open and closes for good when its switch is touched."""

    kind = 8
    radius = 5

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.set_closed(False)

    def logical_collision(self, sim: Simulator):
        if self.touches_ninja(sim):
            self.set_closed(True)
            self.active = False
        return None
