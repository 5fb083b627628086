"""Behaviour shared by every entity: identity, grid cell bookkeeping and flags."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..constants import MAP_UNITS
from ..geometry import clamp_cell

if TYPE_CHECKING:
    from ..simulator import Simulator


class Entity:
    """Base entity. Subclasses set the phase flags they take part in.

    ``kind`` is the entity's own type id; ``group`` is the map record type it was loaded
    from (an exit switch belongs to its exit door's group 3). Tick order and the golden
    entity table follow ``group`` then load order.
    """

    kind = -1
    movable = False
    thinkable = False
    logical = False
    physical = False

    def __init__(self, group: int, index: int, x: int, y: int) -> None:
        self.group = group
        self.index = index
        self.xpos = x * MAP_UNITS
        self.ypos = y * MAP_UNITS
        self.active = True
        self.state = 0
        self.cell = clamp_cell(math.floor(self.xpos / 24), math.floor(self.ypos / 24))

    def grid_move(self, sim: Simulator) -> None:
        """Keep the entity listed in the grid cell that holds its centre."""
        cell = clamp_cell(math.floor(self.xpos / 24), math.floor(self.ypos / 24))
        if cell != self.cell:
            sim.grid[self.cell[0]][self.cell[1]].remove(self)
            self.cell = cell
            sim.grid[cell[0]][cell[1]].append(self)

    # Phase hooks; the flags above say which ones the simulator calls.
    def move(self, sim: Simulator) -> None:  # pragma: no cover - overridden
        pass

    def think(self, sim: Simulator) -> None:  # pragma: no cover - overridden
        pass

    def logical_collision(self, sim: Simulator):  # pragma: no cover - overridden
        return None

    def physical_collision(self, sim: Simulator):  # pragma: no cover - overridden
        return None
