"""Square solid entities: bounce blocks, thwumps and shove thwumps."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..constants import NINJA_RADIUS
from ..geometry import (
    is_empty_column,
    is_empty_row,
    overlap_circle_segment,
    overlap_circles,
    square_penetration,
)
from .base import Entity

if TYPE_CHECKING:
    from ..simulator import Simulator

_floor = math.floor


class BounceBlock(Entity):
    """A damped spring: the ninja pushes it and takes part of the push back."""

    kind = 17
    movable = True
    logical = True
    physical = True
    semi_side = 9
    stiffness = 0.02222222222222222
    dampening = 0.98
    strength = 0.2

    def __init__(self, group: int, index: int, x: int, y: int) -> None:
        super().__init__(group, index, x, y)
        self.xspeed = 0
        self.yspeed = 0
        self.xorigin = self.xpos
        self.yorigin = self.ypos

    def move(self, sim: Simulator) -> None:
        self.xspeed *= self.dampening
        self.yspeed *= self.dampening
        self.xpos += self.xspeed
        self.ypos += self.yspeed
        fx = self.stiffness * (self.xorigin - self.xpos)
        fy = self.stiffness * (self.yorigin - self.ypos)
        self.xpos += fx
        self.ypos += fy
        self.xspeed += fx
        self.yspeed += fy
        self.grid_move(sim)

    def physical_collision(self, sim: Simulator):
        ninja = sim.ninja
        pen = square_penetration(self.xpos, self.ypos, ninja.xpos, ninja.ypos,
                                 self.semi_side + NINJA_RADIUS)
        if pen is None:
            return None
        nx, ny, depth, other = pen
        self.xpos -= nx * depth * (1 - self.strength)
        self.ypos -= ny * depth * (1 - self.strength)
        self.xspeed -= nx * depth * (1 - self.strength)
        self.yspeed -= ny * depth * (1 - self.strength)
        return (nx, ny, depth * self.strength, other)

    def logical_collision(self, sim: Simulator):
        ninja = sim.ninja
        pen = square_penetration(self.xpos, self.ypos, ninja.xpos, ninja.ypos,
                                 self.semi_side + NINJA_RADIUS + 0.1)
        return pen[0] if pen else None


class Thwump(Entity):
    """Charges along its axis when the ninja is in its line of sight, then retreats.

    ``state``: 0 resting, 1 charging, -1 retreating to its origin.
    """

    kind = 20
    movable = True
    thinkable = True
    logical = True
    physical = True
    semi_side = 9
    forward_speed = 20 / 7
    backward_speed = 8 / 7

    def __init__(self, group: int, index: int, x: int, y: int, orientation: int) -> None:
        super().__init__(group, index, x, y)
        self.orientation = orientation
        self.horizontal = orientation in (0, 4)
        self.direction = 1 if orientation in (0, 2) else -1
        self.xorigin = self.xpos
        self.yorigin = self.ypos

    def move(self, sim: Simulator) -> None:
        if not self.state:
            return
        speed = self.forward_speed if self.state == 1 else self.backward_speed
        sdir = self.direction * self.state
        if not self.horizontal:
            y_new = self.ypos + speed * sdir
            if self.state == -1 and (y_new - self.yorigin) * (self.ypos - self.yorigin) < 0:
                self.ypos = self.yorigin
                self.state = 0
                return
            cy = _floor((self.ypos + sdir * 11) / 12)
            cy_new = _floor((y_new + sdir * 11) / 12)
            if cy != cy_new:
                cx1 = _floor((self.xpos - 11) / 12)
                cx2 = _floor((self.xpos + 11) / 12)
                if not is_empty_row(sim.hor_edges, cx1, cx2, cy, sdir):
                    self.state = -1
                    return
            self.ypos = y_new
        else:
            x_new = self.xpos + speed * sdir
            if self.state == -1 and (x_new - self.xorigin) * (self.xpos - self.xorigin) < 0:
                self.xpos = self.xorigin
                self.state = 0
                return
            cx = _floor((self.xpos + sdir * 11) / 12)
            cx_new = _floor((x_new + sdir * 11) / 12)
            if cx != cx_new:
                cy1 = _floor((self.ypos - 11) / 12)
                cy2 = _floor((self.ypos + 11) / 12)
                if not is_empty_column(sim.ver_edges, cx, cy1, cy2, sdir):
                    self.state = -1
                    return
            self.xpos = x_new
        self.grid_move(sim)

    def think(self, sim: Simulator) -> None:
        ninja = sim.ninja
        if self.state or not ninja.is_valid_target():
            return
        reach = 2 * (self.semi_side + NINJA_RADIUS)
        d = self.direction
        if not self.horizontal:
            if abs(self.xpos - ninja.xpos) >= reach:
                return
            target = _floor(ninja.ypos / 12)
            cell = _floor((self.ypos - d * 11) / 12)
            c1 = _floor((self.xpos - 11) / 12)
            c2 = _floor((self.xpos + 11) / 12)
            gap = target - cell
            if gap * d < 0:
                return
            i = 0  # steps scanned before the first wall (at most 100)
            while i < 100:
                if not is_empty_row(sim.hor_edges, c1, c2, cell, d):
                    gap = target - cell
                    break
                cell += d
                i += 1
        else:
            if abs(self.ypos - ninja.ypos) >= reach:
                return
            target = _floor(ninja.xpos / 12)
            cell = _floor((self.xpos - d * 11) / 12)
            c1 = _floor((self.ypos - 11) / 12)
            c2 = _floor((self.ypos + 11) / 12)
            gap = target - cell
            if gap * d < 0:
                return
            i = 0  # steps scanned before the first wall (at most 100)
            while i < 100:
                if not is_empty_column(sim.ver_edges, cell, c1, c2, d):
                    gap = target - cell
                    break
                cell += d
                i += 1
        if i > 0 and gap * d <= 0:
            self.state = 1

    def physical_collision(self, sim: Simulator):
        ninja = sim.ninja
        return square_penetration(self.xpos, self.ypos, ninja.xpos, ninja.ypos,
                                  self.semi_side + NINJA_RADIUS)

    def logical_collision(self, sim: Simulator):
        ninja = sim.ninja
        if not ninja.is_valid_target():
            return None
        pen = square_penetration(self.xpos, self.ypos, ninja.xpos, ninja.ypos,
                                 self.semi_side + NINJA_RADIUS + 0.1)
        if pen is None:
            return None
        s = self.semi_side
        if self.horizontal:
            dx = (s + 2) * self.direction
            dy = s - 2
            x1, y1, x2, y2 = self.xpos + dx, self.ypos - dy, self.xpos + dx, self.ypos + dy
        else:
            dx = s - 2
            dy = (s + 2) * self.direction
            x1, y1, x2, y2 = self.xpos - dx, self.ypos + dy, self.xpos + dx, self.ypos + dy
        if overlap_circle_segment(ninja.xpos, ninja.ypos, NINJA_RADIUS + 2, x1, y1, x2, y2):
            ninja.kill("thwump")
        return pen[0]


class ShoveThwump(Entity):
    """Pushed by the ninja from a side, it flies the other way and then returns home.

    ``state``: 0 resting, 1 pushed (armed), 2 flying, 3 returning. Its core kills.
    """

    kind = 28
    thinkable = True
    logical = True
    physical = True
    semi_side = 12
    core_radius = 8

    def __init__(self, group: int, index: int, x: int, y: int) -> None:
        super().__init__(group, index, x, y)
        self.xorigin = self.xpos
        self.yorigin = self.ypos
        self.xdir = 0
        self.ydir = 0
        self.activated = False

    def think(self, sim: Simulator) -> None:
        if self.state == 1:
            if self.activated:
                self.activated = False
                return
            self.state = 2
        if self.state == 3:
            if abs(self.xpos - self.xorigin) + abs(self.ypos - self.yorigin) >= 1:
                self._step(sim, self.xdir, self.ydir, 1)
            else:
                self.xpos = self.xorigin
                self.ypos = self.yorigin
                self.state = 0
        elif self.state == 2:
            self._step(sim, -self.xdir, -self.ydir, 4)

    def _step(self, sim: Simulator, xdir: float, ydir: float, speed: float) -> None:
        if self.ydir == 0:
            x_new = self.xpos + xdir * speed
            cx = _floor(self.xpos / 12)
            if cx != _floor(x_new / 12):
                cy1 = _floor((self.ypos - 8) / 12)
                cy2 = _floor((self.ypos + 8) / 12)
                if not is_empty_column(sim.ver_edges, cx, cy1, cy2, xdir):
                    self.state = 3
                    return
            self.xpos = x_new
        else:
            y_new = self.ypos + ydir * speed
            cy = _floor(self.ypos / 12)
            if cy != _floor(y_new / 12):
                cx1 = _floor((self.xpos - 8) / 12)
                cx2 = _floor((self.xpos + 8) / 12)
                if not is_empty_row(sim.hor_edges, cx1, cx2, cy, ydir):
                    self.state = 3
                    return
            self.ypos = y_new
        self.grid_move(sim)

    def physical_collision(self, sim: Simulator):
        if self.state > 1:
            return None
        ninja = sim.ninja
        pen = square_penetration(self.xpos, self.ypos, ninja.xpos, ninja.ypos,
                                 self.semi_side + NINJA_RADIUS)
        if pen is None:
            return None
        if self.state == 0 or self.xdir * pen[0] + self.ydir * pen[1] >= 0.01:
            return pen
        return None

    def logical_collision(self, sim: Simulator):
        ninja = sim.ninja
        pen = square_penetration(self.xpos, self.ypos, ninja.xpos, ninja.ypos,
                                 self.semi_side + NINJA_RADIUS + 0.1)
        if pen is not None and self.state <= 1:
            nx, ny = pen[0], pen[1]
            if self.state == 0:
                self.activated = True
                if pen[3] > 0.2:
                    self.xdir = nx
                    self.ydir = ny
                    self.state = 1
            elif self.xdir * nx + self.ydir * ny >= 0.01:
                self.activated = True
            else:
                return None
            return nx
        if overlap_circles(ninja.xpos, ninja.ypos, NINJA_RADIUS, self.xpos, self.ypos,
                           self.core_radius):
            ninja.kill("shove_thwump")
        return None
