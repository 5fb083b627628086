"""The ninja: integration, collision response and the input-driven state machine."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from . import constants as C
from .geometry import closest_point as _closest
from .geometry import nearest_point

if TYPE_CHECKING:
    from .simulator import Simulator

_sqrt = math.sqrt
R = C.NINJA_RADIUS

# Exact positions at which the reference nudges a vanishing x offset off zero during tile
# depenetration (a fix for specific level geometry that recorded data depends on).
_NUDGE_LEFT = (50.51197510492316, 49.23232124849253)
_NUDGE_RIGHT = 49.153536108584795


class Ninja:
    """Ninja state. Every field is a plain number, so a snapshot is a shallow copy."""

    __slots__ = (
        "xpos", "ypos", "xspeed", "yspeed", "xpos_old", "ypos_old", "xspeed_old", "yspeed_old",
        "applied_gravity", "applied_drag", "state", "airborn", "airborn_old", "walled",
        "wall_normal", "hor_input", "jump_input", "jump_input_old", "jump_duration",
        "jump_buffer", "floor_buffer", "wall_buffer", "launch_pad_buffer",
        "floor_normalized_x", "floor_normalized_y", "ceiling_normalized_x",
        "ceiling_normalized_y", "floor_count", "ceiling_count", "floor_normal_x",
        "floor_normal_y", "ceiling_normal_x", "ceiling_normal_y", "is_crushable", "x_crush",
        "y_crush", "crush_len", "xlp_boost_normalized", "ylp_boost_normalized",
        "gold_collected", "doors_opened", "death_cause",
    )

    def __init__(self, x: float, y: float) -> None:
        self.xpos = x
        self.ypos = y
        self.xspeed = 0
        self.yspeed = 0
        self.xpos_old = 0
        self.ypos_old = 0
        self.xspeed_old = 0
        self.yspeed_old = 0
        self.applied_gravity = C.GRAVITY_FALL
        self.applied_drag = C.DRAG_REGULAR
        self.state = C.IMMOBILE
        self.airborn = False
        self.airborn_old = False
        self.walled = False
        self.wall_normal = 0
        self.hor_input = 0
        self.jump_input = 0
        self.jump_input_old = 0
        self.jump_duration = 0
        self.jump_buffer = -1
        self.floor_buffer = -1
        self.wall_buffer = -1
        self.launch_pad_buffer = -1
        self.floor_normalized_x = 0
        self.floor_normalized_y = -1
        self.ceiling_normalized_x = 0
        self.ceiling_normalized_y = 1
        self.floor_count = 0
        self.ceiling_count = 0
        self.floor_normal_x = 0
        self.floor_normal_y = 0
        self.ceiling_normal_x = 0
        self.ceiling_normal_y = 0
        self.is_crushable = False
        self.x_crush = 0
        self.y_crush = 0
        self.crush_len = 0
        self.xlp_boost_normalized = 0
        self.ylp_boost_normalized = 0
        self.gold_collected = 0
        self.doors_opened = 0
        self.death_cause = ""

    def copy(self) -> Ninja:
        other = Ninja.__new__(Ninja)
        for name in Ninja.__slots__:
            setattr(other, name, getattr(self, name))
        return other

    # -- queries -----------------------------------------------------------------------------
    def is_valid_target(self) -> bool:
        return self.state not in (C.DEAD, C.WON, C.DISABLED)

    @property
    def won(self) -> bool:
        return self.state == C.WON

    @property
    def died(self) -> bool:
        return self.state in (C.DEAD, C.DYING)

    # -- events from entities --------------------------------------------------------------
    def win(self) -> None:
        if self.state < 6:
            if self.state == C.JUMPING:
                self.applied_gravity = C.GRAVITY_FALL
            self.state = C.WON

    def kill(self, cause: str) -> None:
        if self.state < 6:
            self.death_cause = cause
            if self.state == C.JUMPING:
                self.applied_gravity = C.GRAVITY_FALL
            self.state = C.DYING

    # -- physics phases ----------------------------------------------------------------------
    def integrate(self) -> None:
        self.xspeed *= self.applied_drag
        self.yspeed *= self.applied_drag
        self.yspeed += self.applied_gravity
        self.xpos_old = self.xpos
        self.ypos_old = self.ypos
        self.xpos += self.xspeed
        self.ypos += self.yspeed

    def pre_collision(self) -> None:
        self.xspeed_old = self.xspeed
        self.yspeed_old = self.yspeed
        self.floor_count = 0
        self.ceiling_count = 0
        self.floor_normal_x = 0
        self.floor_normal_y = 0
        self.ceiling_normal_x = 0
        self.ceiling_normal_y = 0
        self.is_crushable = False
        self.x_crush = 0
        self.y_crush = 0
        self.crush_len = 0

    def collide_vs_objects(self, sim: Simulator, nearby: list) -> None:
        """Physical pushes from solid entities (one-ways, bounce blocks, thwumps)."""
        for ent in nearby:
            if not ent.physical:
                continue
            depen = ent.physical_collision(sim)
            if not depen:
                continue
            nx, ny, length = depen[0], depen[1], depen[2]
            pop_x = nx * length
            pop_y = ny * length
            self.xpos += pop_x
            self.ypos += pop_y
            kind = ent.kind
            if kind != 17:
                self.x_crush += pop_x
                self.y_crush += pop_y
                self.crush_len += length
            if kind == 20:
                self.is_crushable = True
            if kind in (17, 20, 28):
                self.xspeed += pop_x
                self.yspeed += pop_y
            if kind == 11:
                along = self.xspeed * ny - self.yspeed * nx
                self.xspeed = along * ny
                self.yspeed = along * (-nx)
            if ny >= -0.0001:
                self.ceiling_count += 1
                self.ceiling_normal_x += nx
                self.ceiling_normal_y += ny
            else:
                self.floor_count += 1
                self.floor_normal_x += nx
                self.floor_normal_y += ny

    def collide_vs_tiles(self, sim: Simulator) -> None:
        """Sweep to the first contact, then push out of overlapping segments (32 passes)."""
        query = sim.segments
        dx = self.xpos - self.xpos_old
        dy = self.ypos - self.ypos_old
        t = query.sweep(self.xpos_old, self.ypos_old, dx, dy, R * 0.5)
        x = self.xpos_old + t * dx
        y = self.ypos_old + t * dy
        segs = query.region(x - R, y - R, x + R, y + R)
        xs = self.xspeed
        ys = self.yspeed
        for _ in range(32):
            side, a, b = nearest_point(segs, x, y, R)
            if side == 0:
                break
            ox = x - a
            oy = y - b
            if abs(ox) <= 0.0000001:
                ox = 0
                if x in _NUDGE_LEFT:
                    ox = -(2**-47)
                if x == _NUDGE_RIGHT:
                    ox = 2**-47
            dist_sq = ox * ox + oy * oy
            if dist_sq < 1e-16:
                break
            dist = _sqrt(dist_sq)
            depth = R - dist * side
            if depth < 0.0000001:
                break
            inv = 1.0 / dist
            ux = ox * inv
            uy = oy * inv
            px = ux * depth
            py = uy * depth
            x += px
            y += py
            self.x_crush += px
            self.y_crush += py
            self.crush_len += depth
            if xs * ox + ys * oy < 0:
                cross = xs * oy - ys * ox
                inv_sq = inv * inv
                xs = cross * inv_sq * oy
                ys = cross * inv_sq * (-ox)
            if oy >= -0.0001:
                self.ceiling_count += 1
                self.ceiling_normal_x += ux
                self.ceiling_normal_y += uy
            else:
                self.floor_count += 1
                self.floor_normal_x += ux
                self.floor_normal_y += uy
        self.xpos = x
        self.ypos = y
        self.xspeed = xs
        self.yspeed = ys

    def post_collision(self, sim: Simulator) -> None:
        """Logical entity contacts, wall detection, floor/ceiling normals and deaths."""
        wall_normal = 0
        for ent in sim.entities_near(self.xpos, self.ypos):
            if not ent.logical:
                continue
            res = ent.logical_collision(sim)
            if not res:
                continue
            if ent.kind == 10:
                xboost = res[0] * 2 / 3
                yboost = res[1] * 2 / 3
                self.xpos += xboost
                self.ypos += yboost
                self.xspeed = xboost
                self.yspeed = yboost
                self.floor_count = 0
                self.floor_buffer = -1
                scalar = _sqrt(xboost**2 + yboost**2)
                self.xlp_boost_normalized = xboost / scalar
                self.ylp_boost_normalized = yboost / scalar
                self.launch_pad_buffer = 0
                if self.state == C.JUMPING:
                    self.applied_gravity = C.GRAVITY_FALL
                self.state = C.FALLING
            else:
                wall_normal += res
        rad = R + 0.1
        x = self.xpos
        y = self.ypos
        for seg in sim.segments.region(x - rad, y - rad, x + rad, y + rad):
            _, a, b = _closest(seg, x, y)
            dx = x - a
            dy = y - b
            dist = _sqrt(dx**2 + dy**2)
            if abs(dy) < 0.00001 and 0 < dist <= rad:
                wall_normal += dx / dist

        self.airborn_old = self.airborn
        self.airborn = True
        self.walled = False
        if wall_normal:
            self.walled = True
            self.wall_normal = wall_normal / abs(wall_normal)

        if self.floor_count > 0:
            self.airborn = False
            scalar = _sqrt(self.floor_normal_x**2 + self.floor_normal_y**2)
            if scalar == 0:
                self.floor_normalized_x = 0
                self.floor_normalized_y = -1
            else:
                self.floor_normalized_x = self.floor_normal_x / scalar
                self.floor_normalized_y = self.floor_normal_y / scalar
            if self.state != C.WON and self.airborn_old:
                impact = -(
                    self.floor_normalized_x * self.xspeed_old
                    + self.floor_normalized_y * self.yspeed_old
                )
                if impact > C.MAX_SURVIVABLE_IMPACT - 4 / 3 * abs(self.floor_normalized_y):
                    self.xspeed = self.xspeed_old
                    self.yspeed = self.yspeed_old
                    self.kill("impact")
        if self.ceiling_count > 0:
            scalar = _sqrt(self.ceiling_normal_x**2 + self.ceiling_normal_y**2)
            if scalar == 0:
                self.ceiling_normalized_x = 0
                self.ceiling_normalized_y = 1
            else:
                self.ceiling_normalized_x = self.ceiling_normal_x / scalar
                self.ceiling_normalized_y = self.ceiling_normal_y / scalar
            if self.state != C.WON:
                impact = -(
                    self.ceiling_normalized_x * self.xspeed_old
                    + self.ceiling_normalized_y * self.yspeed_old
                )
                if impact > C.MAX_SURVIVABLE_IMPACT - 4 / 3 * abs(self.ceiling_normalized_y):
                    self.xspeed = self.xspeed_old
                    self.yspeed = self.yspeed_old
                    self.kill("impact")
        if self.is_crushable and self.crush_len > 0:
            squeeze = _sqrt(self.x_crush**2 + self.y_crush**2) / self.crush_len
            if squeeze < C.MIN_SURVIVABLE_CRUSHING:
                self.kill("crush")

    # -- jumps -------------------------------------------------------------------------------
    def floor_jump(self) -> None:
        self.jump_buffer = -1
        self.floor_buffer = -1
        self.launch_pad_buffer = -1
        self.state = C.JUMPING
        self.applied_gravity = C.GRAVITY_JUMP
        nx = self.floor_normalized_x
        if nx == 0:
            jx = 0
            jy = C.JUMP_FLOOR_Y
        else:
            ny = self.floor_normalized_y
            if self.xspeed * nx >= 0:  # moving downhill (or still)
                if self.xspeed * self.hor_input >= 0:
                    jx = C.JUMP_SLOPE_DOWNHILL_X * nx
                    jy = C.JUMP_SLOPE_DOWNHILL_Y * ny
                else:
                    jx = 0
                    jy = C.JUMP_SLOPE_UPHILL_Y
            elif self.xspeed * self.hor_input > 0:  # uphill, pressing forward
                jx = 0
                jy = C.JUMP_SLOPE_UPHILL_Y
            else:  # uphill otherwise: jump perpendicular to the slope
                self.xspeed = 0
                jx = C.JUMP_SLOPE_PERP_X * nx
                jy = C.JUMP_SLOPE_PERP_Y * ny
        if self.yspeed > 0:
            self.yspeed = 0
        self.xspeed += jx
        self.yspeed += jy
        self.xpos += jx
        self.ypos += jy
        self.jump_duration = 0

    def wall_jump(self) -> None:
        if self.hor_input * self.wall_normal < 0 and self.state == C.WALL_SLIDING:
            jx = C.JUMP_WALL_SLIDE_X
            jy = C.JUMP_WALL_SLIDE_Y
        else:
            jx = C.JUMP_WALL_REGULAR_X
            jy = C.JUMP_WALL_REGULAR_Y
        self.state = C.JUMPING
        self.applied_gravity = C.GRAVITY_JUMP
        if self.xspeed * self.wall_normal < 0:
            self.xspeed = 0
        if self.yspeed > 0:
            self.yspeed = 0
        self.xspeed += jx * self.wall_normal
        self.yspeed += jy
        self.xpos += jx * self.wall_normal
        self.ypos += jy
        self.jump_buffer = -1
        self.wall_buffer = -1
        self.launch_pad_buffer = -1
        self.jump_duration = 0

    def launch_pad_jump(self) -> None:
        self.floor_buffer = -1
        self.wall_buffer = -1
        self.jump_buffer = -1
        self.launch_pad_buffer = -1
        scalar = 2 * abs(self.xlp_boost_normalized) + 2
        if scalar == 2:
            scalar = C.LAUNCH_PAD_JUMP_SCALAR
        self.xspeed += self.xlp_boost_normalized * scalar * C.LAUNCH_PAD_JUMP_FACTOR
        self.yspeed += self.ylp_boost_normalized * scalar * C.LAUNCH_PAD_JUMP_FACTOR

    # -- state machine -----------------------------------------------------------------------
    def think(self) -> None:
        """Apply this tick's inputs: buffers, jumps, running, friction and wall sliding."""
        new_jump = bool(self.jump_input) and self.jump_input_old == 0
        self.jump_input_old = self.jump_input

        if -1 < self.launch_pad_buffer < 3:
            self.launch_pad_buffer += 1
        else:
            self.launch_pad_buffer = -1
        in_lp_buffer = -1 < self.launch_pad_buffer < 4
        if -1 < self.jump_buffer < 5:
            self.jump_buffer += 1
        else:
            self.jump_buffer = -1
        in_jump_buffer = -1 < self.jump_buffer < 5
        if -1 < self.wall_buffer < 5:
            self.wall_buffer += 1
        else:
            self.wall_buffer = -1
        in_wall_buffer = -1 < self.wall_buffer < 5
        if -1 < self.floor_buffer < 5:
            self.floor_buffer += 1
        else:
            self.floor_buffer = -1
        in_floor_buffer = -1 < self.floor_buffer < 5

        if new_jump and self.airborn:
            self.jump_buffer = 0
        if self.walled:
            self.wall_buffer = 0
        if not self.airborn:
            self.floor_buffer = 0

        state = self.state
        if state in (C.DEAD, C.DISABLED):
            return
        if state == C.DYING:
            self.state = C.DEAD
            return
        if state == C.WON:
            self.applied_drag = C.DRAG_REGULAR if self.airborn else C.DRAG_SLOW
            return
        if not self.airborn:
            self._think_grounded(new_jump, in_jump_buffer)
        else:
            self._think_airborne(new_jump, in_jump_buffer, in_wall_buffer, in_floor_buffer,
                                 in_lp_buffer)

    def _think_grounded(self, new_jump: bool, in_jump_buffer: bool) -> None:
        hor = self.hor_input
        xspeed_new = self.xspeed + C.GROUND_ACCEL * hor
        if abs(xspeed_new) < C.MAX_HOR_SPEED:
            self.xspeed = xspeed_new
        if self.state > 2:
            if self.state == C.JUMPING:
                self.applied_gravity = C.GRAVITY_FALL
            self.state = C.SLIDING if self.xspeed * hor <= 0 else C.RUNNING
        if in_jump_buffer or new_jump:
            self.floor_jump()
            return
        fnx = self.floor_normalized_x
        fny = self.floor_normalized_y
        if self.state == C.SLIDING:
            projection = abs(self.yspeed * fnx - self.xspeed * fny)
            if hor * projection * self.xspeed > 0:
                self.state = C.RUNNING
                return
            if projection < 0.1 and fnx == 0:
                self.state = C.IMMOBILE
                return
            if self.yspeed < 0 and fnx != 0:
                speed = _sqrt(self.xspeed**2 + self.yspeed**2)
                fric = abs(self.xspeed * (1 - C.FRICTION_GROUND) * fny)
                fric2 = speed - fric * fny**2
                self.xspeed = self.xspeed / speed * fric2
                self.yspeed = self.yspeed / speed * fric2
                return
            self.xspeed *= C.FRICTION_GROUND
            return
        if self.state == C.RUNNING:
            projection = abs(self.yspeed * fnx - self.xspeed * fny)
            if hor * projection * self.xspeed > 0:
                if hor * fnx >= 0:
                    return
                if abs(xspeed_new) < C.MAX_HOR_SPEED:
                    boost = C.GROUND_ACCEL / 2 * hor
                    self.xspeed += boost * fny * fny
                    self.yspeed += boost * fny * -fnx
                return
            self.state = C.SLIDING
            return
        # immobile
        if hor:
            self.state = C.RUNNING
            return
        projection = abs(self.yspeed * fnx - self.xspeed * fny)
        if projection < 0.1:
            self.xspeed *= C.FRICTION_GROUND_SLOW
            return
        self.state = C.SLIDING

    def _think_airborne(self, new_jump: bool, in_jump_buffer: bool, in_wall_buffer: bool,
                        in_floor_buffer: bool, in_lp_buffer: bool) -> None:
        hor = self.hor_input
        xspeed_new = self.xspeed + C.AIR_ACCEL * hor
        if abs(xspeed_new) < C.MAX_HOR_SPEED:
            self.xspeed = xspeed_new
        if self.state < 3:
            self.state = C.FALLING
            return
        if self.state == C.JUMPING:
            self.jump_duration += 1
            if not self.jump_input or self.jump_duration > C.MAX_JUMP_DURATION:
                self.applied_gravity = C.GRAVITY_FALL
                self.state = C.FALLING
                return
        if in_jump_buffer or new_jump:
            if self.walled or in_wall_buffer:
                self.wall_jump()
                return
            if in_floor_buffer:
                self.floor_jump()
                return
            if in_lp_buffer and new_jump:
                self.launch_pad_jump()
                return
        if not self.walled:
            if self.state == C.WALL_SLIDING:
                self.state = C.FALLING
        elif self.state == C.WALL_SLIDING:
            if hor * self.wall_normal <= 0:
                self.yspeed *= C.FRICTION_WALL
            else:
                self.state = C.FALLING
        elif self.yspeed > 0 and hor * self.wall_normal < 0:
            if self.state == C.JUMPING:
                self.applied_gravity = C.GRAVITY_FALL
            self.state = C.WALL_SLIDING

