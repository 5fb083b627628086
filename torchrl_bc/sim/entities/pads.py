"""Launch pads, boost pads and one-way platforms."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..constants import NINJA_RADIUS
from ..geometry import overlap_circles
from .base import Entity
from .doors import orientation_vector

if TYPE_CHECKING:
    from ..simulator import Simulator


class LaunchPad(Entity):
    """Returns a boost when the ninja presses into its face; the ninja applies it."""

    kind = 10
    logical = True
    radius = 6
    boost = 36 / 7

    def __init__(self, group: int, index: int, x: int, y: int, orientation: int) -> None:
        super().__init__(group, index, x, y)
        self.orientation = orientation
        self.normal_x, self.normal_y = orientation_vector(orientation)

    def logical_collision(self, sim: Simulator):
        ninja = sim.ninja
        if not ninja.is_valid_target():
            return None
        if not overlap_circles(self.xpos, self.ypos, self.radius, ninja.xpos, ninja.ypos,
                               NINJA_RADIUS):
            return None
        nx = self.normal_x
        ny = self.normal_y
        if (self.xpos - (ninja.xpos - NINJA_RADIUS * nx)) * nx + (
            self.ypos - (ninja.ypos - NINJA_RADIUS * ny)
        ) * ny >= -0.1:
            yscale = 1
            if ny < 0:
                yscale = 1 - ny
            return (nx * self.boost, ny * self.boost * yscale)
        return None


class BoostPad(Entity):
    """Adds 2 px/tick along the ninja's velocity on the tick it starts touching."""

    kind = 24
    movable = True
    radius = 6

    def __init__(self, group: int, index: int, x: int, y: int) -> None:
        super().__init__(group, index, x, y)
        self.touching = False

    def move(self, sim: Simulator) -> None:
        ninja = sim.ninja
        if not ninja.is_valid_target():
            self.touching = False
            return
        if overlap_circles(self.xpos, self.ypos, self.radius, ninja.xpos, ninja.ypos,
                           NINJA_RADIUS):
            if not self.touching:
                speed = math.sqrt(ninja.xspeed**2 + ninja.yspeed**2)
                if speed > 0:
                    bx = 2 * ninja.xspeed / speed
                    by = 2 * ninja.yspeed / speed
                    ninja.xspeed += bx
                    ninja.yspeed += by
                self.touching = True
        else:
            self.touching = False


class OneWayPlatform(Entity):
    """Solid from its normal side only; also reports walls for wall jumps."""

    kind = 11
    logical = True
    physical = True
    semi_side = 12

    def __init__(self, group: int, index: int, x: int, y: int, orientation: int) -> None:
        super().__init__(group, index, x, y)
        self.orientation = orientation
        self.normal_x, self.normal_y = orientation_vector(orientation)

    def _depenetration(self, sim: Simulator):
        ninja = sim.ninja
        nx = self.normal_x
        ny = self.normal_y
        dx = ninja.xpos - self.xpos
        dy = ninja.ypos - self.ypos
        lateral = dy * nx - dx * ny
        direction = (ninja.yspeed * nx - ninja.xspeed * ny) * lateral
        scale = 0.91 if direction < 0 else 0.51
        if abs(lateral) < scale * NINJA_RADIUS + self.semi_side:
            normal_dist = dx * nx + dy * ny
            if 0 < normal_dist <= NINJA_RADIUS:
                if ninja.xspeed * nx + ninja.yspeed * ny <= 0:
                    old = (ninja.xpos_old - self.xpos) * nx + (ninja.ypos_old - self.ypos) * ny
                    if NINJA_RADIUS - old <= 1.1:
                        return (nx, ny, NINJA_RADIUS - normal_dist, 0)
        return None

    def physical_collision(self, sim: Simulator):
        return self._depenetration(sim)

    def logical_collision(self, sim: Simulator):
        if self._depenetration(sim) and abs(self.normal_x) == 1:
            return self.normal_x
        return None
