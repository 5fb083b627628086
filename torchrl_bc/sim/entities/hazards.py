"""Moving hazards: zap drones, mini drones and death balls."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..constants import NINJA_RADIUS
from ..geometry import is_empty_column, is_empty_row, nearest_point, overlap_circles
from .base import Entity

if TYPE_CHECKING:
    from ..simulator import Simulator

_floor = math.floor
_sqrt = math.sqrt

DIR_VECTORS = ((1, 0), (0, 1), (-1, 0), (0, -1))
# Turn preference per drone mode, as offsets added to the current direction (mod 4).
TURN_ORDER = ((1, 0, 3, 2), (3, 0, 1, 2), (0, 1, 3, 2), (0, 3, 1, 2))


class Drone(Entity):
    """Patrols from grid cell to grid cell, choosing turns by its mode; deadly on contact."""

    movable = True
    logical = True
    radius = 7.5
    grid_step = 24
    speed = 8 / 7

    def __init__(self, group: int, index: int, x: int, y: int, orientation: int,
                 mode: int) -> None:
        super().__init__(group, index, x, y)
        if not 0 <= orientation < 8:
            raise ValueError(f"drone orientation {orientation} is not in 0..7")
        if not 0 <= mode < 4:
            raise ValueError(f"drone mode {mode} is not in 0..3")
        self.dir = orientation // 2
        self.orientation = orientation
        self.mode = mode
        self.xtarget = self.xpos
        self.ytarget = self.ypos

    def move(self, sim: Simulator) -> None:
        vx, vy = DIR_VECTORS[self.dir]
        xs = self.speed * vx
        ys = self.speed * vy
        dx = self.xtarget - self.xpos
        dy = self.ytarget - self.ypos
        dist = _sqrt(dx**2 + dy**2)
        if dist < 1e-06 or dx * (self.xtarget - (self.xpos + xs)) + dy * (
            self.ytarget - (self.ypos + ys)
        ) < 0:
            self.xpos = self.xtarget
            self.ypos = self.ytarget
            if self._choose_next(sim):
                rest = self.speed - dist
                vx, vy = DIR_VECTORS[self.dir]
                self.xpos += rest * vx
                self.ypos += rest * vy
        else:
            self.xpos += xs
            self.ypos += ys
            self.grid_move(sim)

    def _choose_next(self, sim: Simulator) -> bool:
        for turn in TURN_ORDER[self.mode]:
            d = (self.dir + turn) % 4
            if self._try_direction(sim, d):
                self.dir = d
                return True
        return False

    def _try_direction(self, sim: Simulator, d: int) -> bool:
        xdir, ydir = DIR_VECTORS[d]
        xt = self.xpos + self.grid_step * xdir
        yt = self.ypos + self.grid_step * ydir
        r = self.radius
        if not ydir:
            cx = _floor((self.xpos + xdir * r) / 12)
            cx_target = _floor((xt + xdir * r) / 12)
            cy1 = _floor((self.ypos - r) / 12)
            cy2 = _floor((self.ypos + r) / 12)
            while cx != cx_target:
                if not is_empty_column(sim.ver_edges, cx, cy1, cy2, xdir):
                    return False
                cx += xdir
        else:
            cy = _floor((self.ypos + ydir * r) / 12)
            cy_target = _floor((yt + ydir * r) / 12)
            cx1 = _floor((self.xpos - r) / 12)
            cx2 = _floor((self.xpos + r) / 12)
            while cy != cy_target:
                if not is_empty_row(sim.hor_edges, cx1, cx2, cy, ydir):
                    return False
                cy += ydir
        self.xtarget = xt
        self.ytarget = yt
        return True

    def logical_collision(self, sim: Simulator):
        ninja = sim.ninja
        if ninja.is_valid_target() and overlap_circles(
            self.xpos, self.ypos, self.radius, ninja.xpos, ninja.ypos, NINJA_RADIUS
        ):
            ninja.kill("drone")
        return None


class ZapDrone(Drone):
    kind = 14


class MiniDrone(Drone):
    kind = 26
    radius = 4.0
    grid_step = 12
    speed = 1.3


class DeathBall(Entity):
    """Homes in on the ninja, bounces off tiles and pushes other death balls away."""

    kind = 25
    thinkable = True
    logical = True
    radius = 5
    tile_radius = 8
    acceleration = 0.04
    max_speed = 0.85
    drag_max_speed = 0.9
    drag_no_target = 0.95

    def __init__(self, group: int, index: int, x: int, y: int) -> None:
        super().__init__(group, index, x, y)
        self.xspeed = 0
        self.yspeed = 0

    def think(self, sim: Simulator) -> None:
        ninja = sim.ninja
        if not ninja.is_valid_target():
            self.xspeed *= self.drag_no_target
            self.yspeed *= self.drag_no_target
        else:
            dx = ninja.xpos - self.xpos
            dy = ninja.ypos - self.ypos
            dist = _sqrt(dx**2 + dy**2)
            if dist > 0:
                dx /= dist
                dy /= dist
            self.xspeed += dx * self.acceleration
            self.yspeed += dy * self.acceleration
            speed = _sqrt(self.xspeed**2 + self.yspeed**2)
            if speed > self.max_speed:
                new_speed = (speed - self.max_speed) * self.drag_max_speed
                if new_speed <= 0.01:
                    new_speed = 0
                new_speed += self.max_speed
                self.xspeed = self.xspeed / speed * new_speed
                self.yspeed = self.yspeed / speed * new_speed
        x_old = self.xpos
        y_old = self.ypos
        self.xpos += self.xspeed
        self.ypos += self.yspeed
        t = sim.segments.sweep(x_old, y_old, self.xspeed, self.yspeed, self.tile_radius * 0.5)
        self.xpos = x_old + t * self.xspeed
        self.ypos = y_old + t * self.yspeed
        sum_x = 0
        sum_y = 0
        r2 = self.tile_radius
        for _ in range(16):
            x = self.xpos
            y = self.ypos
            segs = sim.segments.region(x - r2, y - r2, x + r2, y + r2)
            side, a, b = nearest_point(segs, x, y, r2)
            if side == 0:
                break
            dx = x - a
            dy = y - b
            dist = _sqrt(dx**2 + dy**2)
            depth = r2 - dist * side
            if depth < 1e-07:
                break
            if dist == 0:
                return
            ux = dx / dist
            uy = dy / dist
            self.xpos += ux * depth
            self.ypos += uy * depth
            sum_x += ux
            sum_y += uy
        norm = _sqrt(sum_x**2 + sum_y**2)
        if norm > 0:
            nx = sum_x / norm
            ny = sum_y / norm
            dot = self.xspeed * nx + self.yspeed * ny
            if dot < 0:
                speed = _sqrt(self.xspeed**2 + self.yspeed**2)
                bounce = 1 if speed <= 1.35 else 2
                self.xspeed -= nx * dot * bounce
                self.yspeed -= ny * dot * bounce
        if self.index + 1 < sim.map.death_ball_count:
            for other in sim.by_group[self.group][self.index + 1:]:
                dx = self.xpos - other.xpos
                dy = self.ypos - other.ypos
                dist = _sqrt(dx**2 + dy**2)
                if dist < 16:
                    dx = dx / dist * 4
                    dy = dy / dist * 4
                    self.xspeed += dx
                    self.yspeed += dy
                    other.xspeed -= dx
                    other.yspeed -= dy
        self.grid_move(sim)

    def logical_collision(self, sim: Simulator):
        ninja = sim.ninja
        if ninja.is_valid_target() and overlap_circles(
            self.xpos, self.ypos, self.radius, ninja.xpos, ninja.ypos, NINJA_RADIUS
        ):
            dx = self.xpos - ninja.xpos
            dy = self.ypos - ninja.ypos
            dist = _sqrt(dx**2 + dy**2)
            self.xspeed += dx / dist * 10
            self.yspeed += dy / dist * 10
            ninja.kill("death_ball")
        return None
