"""Things the ninja touches: toggle mines, gold, exit doors and their switches."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..constants import NINJA_RADIUS
from ..geometry import overlap_circles
from .base import Entity

if TYPE_CHECKING:
    from ..simulator import Simulator

# Toggle mine states: 0 deadly, 1 safe, 2 toggling (ninja on top of a safe mine).
MINE_RADII = {0: 4.0, 1: 3.5, 2: 4.5}


class ToggleMine(Entity):
    """Type 1 starts deadly (state 0); type 21 starts safe (state 1) and arms after the
    ninja steps off it."""

    thinkable = True
    logical = True

    def __init__(self, group: int, index: int, x: int, y: int, state: int) -> None:
        super().__init__(group, index, x, y)
        self.kind = group
        self.radius = MINE_RADII[state]
        self.state = state

    def set_state(self, state: int) -> None:
        self.state = state
        self.radius = MINE_RADII[state]

    def think(self, sim: Simulator) -> None:
        ninja = sim.ninja
        if ninja.is_valid_target():
            touching = overlap_circles(
                self.xpos, self.ypos, self.radius, ninja.xpos, ninja.ypos, NINJA_RADIUS
            )
            if self.state == 1 and touching:
                self.set_state(2)
            elif self.state == 2 and not touching:
                self.set_state(0)
        elif self.state == 2 and ninja.state == 6:
            self.set_state(1)

    def logical_collision(self, sim: Simulator):
        ninja = sim.ninja
        if ninja.is_valid_target() and self.state == 0:
            if overlap_circles(self.xpos, self.ypos, self.radius, ninja.xpos, ninja.ypos,
                               NINJA_RADIUS):
                self.set_state(1)
                ninja.kill("mine")
        return None


class Gold(Entity):
    kind = 2
    logical = True
    radius = 6

    def logical_collision(self, sim: Simulator):
        ninja = sim.ninja
        if ninja.state != 8 and overlap_circles(
            self.xpos, self.ypos, self.radius, ninja.xpos, ninja.ypos, NINJA_RADIUS
        ):
            ninja.gold_collected += 1
            self.active = False
        return None


class ExitDoor(Entity):
    """Wins the level on contact; it only enters the grid once its switch is hit."""

    kind = 3
    logical = True
    radius = 12

    def __init__(self, group: int, index: int, x: int, y: int) -> None:
        super().__init__(group, index, x, y)
        self.switch_hit = False

    def logical_collision(self, sim: Simulator):
        ninja = sim.ninja
        if overlap_circles(self.xpos, self.ypos, self.radius, ninja.xpos, ninja.ypos,
                           NINJA_RADIUS):
            ninja.win()
        return None


class ExitSwitch(Entity):
    kind = 4
    logical = True
    radius = 6

    def __init__(self, group: int, index: int, x: int, y: int, door: ExitDoor) -> None:
        super().__init__(group, index, x, y)
        self.door = door

    def logical_collision(self, sim: Simulator):
        ninja = sim.ninja
        if overlap_circles(self.xpos, self.ypos, self.radius, ninja.xpos, ninja.ypos,
                           NINJA_RADIUS):
            self.active = False
            door = self.door
            sim.grid[door.cell[0]][door.cell[1]].append(door)
            door.switch_hit = True
        return None
