"""The simulator: one level, one ninja, its entities, advanced one 60 Hz tick at a time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import constants as C
from .entities import Entity, build_entities
from .geometry import SegmentQuery, clamp_cell
from .mapdata import MapData, MapFormatError, parse_map
from .ninja import Ninja
from .tiles import build_geometry, full_tile_grid
from .trace import Trace

# input byte -> (horizontal, jump); bit0 jump, bit1 right, bit2 left; left+right cancel.
INPUT_DECODE = tuple(
    ((1 if b & 2 else 0) - (1 if b & 4 else 0), b & 1) for b in range(8)
)


@dataclass(frozen=True)
class SimSnapshot:
    """Opaque copy of every piece of state that changes during a run."""

    frame: int
    payload: Any


class Simulator:
    """Bit-exact N++ simulation of one level.

    ``solid_doors=False`` reproduces the reference, whose tile index is built before door
    segments exist, so closed doors never block the ninja (recorded data depends on this).
    ``solid_doors=True`` makes closed doors block the ninja and death balls, as in N++.
    """

    def __init__(self, map_data: bytes | MapData, *, solid_doors: bool = False,
                 source: str = "<map>") -> None:
        self.map = map_data if isinstance(map_data, MapData) else parse_map(map_data, source)
        self.source = source
        self.solid_doors = solid_doors
        self.tiles = full_tile_grid(self.map.tiles)
        self._geometry = build_geometry(self.tiles)
        self.reset()

    # -- setup -------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the level's start: ninja at spawn, entities freshly loaded."""
        geo = self._geometry
        self.frame = 0
        self.hor_edges = [col[:] for col in geo.hor_edges]
        self.ver_edges = [col[:] for col in geo.ver_edges]
        self.grid: list[list[list[Entity]]] = [[[] for _ in range(C.GRID_H)]
                                               for _ in range(C.GRID_W)]
        self.door_cells: list[list[list[Entity]]] = [[[] for _ in range(C.GRID_H)]
                                                     for _ in range(C.GRID_W)]
        self.by_group: dict[int, list[Entity]] = {}
        self.ninja = Ninja(self.map.spawn_x * C.MAP_UNITS, self.map.spawn_y * C.MAP_UNITS)
        self.entities = build_entities(self.map.entities, self, self.source)
        self.segments = SegmentQuery(geo.cell_segments, geo.cell_bounds,
                                     self.door_cells if self.solid_doors else None)
        self._index_phases()

    def _index_phases(self) -> None:
        self._movers = [e for e in self.entities if e.movable]
        self._thinkers = [e for e in self.entities if e.thinkable]

    # -- stepping ----------------------------------------------------------------------------
    def tick(self, hor: int, jump: int) -> None:
        """Advance one tick: entities move, then think; the ninja integrates, collides with
        entities and tiles in 4 substeps, resolves logical contacts, then reacts to input."""
        self.frame += 1
        ninja = self.ninja
        ninja.hor_input = hor
        ninja.jump_input = jump
        movers = [e for e in self._movers if e.active]
        thinkers = [e for e in self._thinkers if e.active]
        for e in movers:
            e.move(self)
        for e in thinkers:
            e.think(self)
        if ninja.state == C.DISABLED:
            return
        if ninja.state != C.DEAD:
            ninja.integrate()
            ninja.pre_collision()
            nearby = self.entities_near(ninja.xpos, ninja.ypos)
            for _ in range(4):
                ninja.collide_vs_objects(self, nearby)
                ninja.collide_vs_tiles(self)
            ninja.post_collision(self)
        ninja.think()

    def tick_input(self, byte: int) -> None:
        hor, jump = INPUT_DECODE[byte]
        self.tick(hor, jump)

    def entities_near(self, x: float, y: float) -> list[Entity]:
        """Active entities in the 3x3 cells around a point, in the reference's order."""
        cx, cy = clamp_cell(math.floor(x / 24), math.floor(y / 24))
        grid = self.grid
        out: list[Entity] = []
        for gx in range(max(cx - 1, 0), min(cx + 1, C.GRID_W - 1) + 1):
            col = grid[gx]
            for gy in range(max(cy - 1, 0), min(cy + 1, C.GRID_H - 1) + 1):
                for e in col[gy]:
                    if e.active:
                        out.append(e)
        return out

    @property
    def done(self) -> bool:
        return self.ninja.state in (C.DEAD, C.DYING, C.WON)

    def run_inputs(self, inputs: np.ndarray | bytes, record_entities: bool = False) -> Trace:
        """Tick through input bytes until the win, the death or the end of the inputs."""
        data = inputs if isinstance(inputs, bytes) else bytes(np.asarray(inputs, np.uint8))
        n = len(data)
        pos = np.empty((n, 2), np.float64)
        vel = np.empty((n, 2), np.float64)
        state = np.empty(n, np.int8)
        ents = [] if record_entities else None
        win = death = -1
        ninja = self.ninja
        t = 0
        for t in range(n):
            if data[t] > 7:
                raise ValueError(f"{self.source}: input byte {data[t]} at tick {t} is not in 0..7")
            hor, jump = INPUT_DECODE[data[t]]
            self.tick(hor, jump)
            pos[t, 0] = ninja.xpos
            pos[t, 1] = ninja.ypos
            vel[t, 0] = ninja.xspeed
            vel[t, 1] = ninja.yspeed
            s = ninja.state
            state[t] = s
            if ents is not None:
                ents.append(self.entity_table())
            if s == C.WON:
                win = t + 1
                break
            if s == C.DEAD or s == C.DYING:
                death = t + 1
                break
        else:
            t = n - 1
        m = t + 1 if n else 0
        return Trace(
            pos=pos[:m].copy(), vel=vel[:m].copy(), state=state[:m].copy(),
            win_frame=win, death_frame=death,
            entities=np.stack(ents) if ents else (np.zeros((0, len(self.entities), 5))
                                                  if ents is not None else None),
        )

    # -- views ---------------------------------------------------------------------------------
    def entity_table(self) -> np.ndarray:
        """[E, 5] float64 rows (type, x, y, active, state) ordered by type then load order."""
        return np.array(
            [(e.group, e.xpos, e.ypos, 1.0 if e.active else 0.0, e.state) for e in self.entities],
            dtype=np.float64,
        ).reshape(len(self.entities), 5)

    @property
    def switch_hit(self) -> bool:
        exits = [e for e in self.by_group.get(3, ()) if e.kind == 3]
        return any(e.switch_hit for e in exits)

    # -- snapshot / restore --------------------------------------------------------------------
    def snapshot(self) -> SimSnapshot:
        """Copy every changing piece of state; static geometry is shared.

        Entities keep their identity across restores (their fields are copied, not the
        objects), so a snapshot belongs to the simulator that took it.
        """
        payload = (
            self.ninja.copy(),
            [e.__dict__.copy() for e in self.entities],
            [[cell[:] for cell in col] for col in self.grid],
            [col[:] for col in self.hor_edges],
            [col[:] for col in self.ver_edges],
            id(self),
        )
        return SimSnapshot(self.frame, payload)

    def restore(self, snap: SimSnapshot) -> None:
        """Return to a snapshot; the snapshot stays valid for further restores."""
        ninja, fields, grid, hor, ver, owner = snap.payload
        if owner != id(self):
            raise ValueError("snapshot was taken from another Simulator instance")
        self.frame = snap.frame
        self.ninja = ninja.copy()
        for e, f in zip(self.entities, fields, strict=True):
            e.__dict__.update(f)
        for col, saved in zip(self.grid, grid, strict=True):
            for cell, s in zip(col, saved, strict=True):
                cell[:] = s
        for col, saved in zip(self.hor_edges, hor, strict=True):
            col[:] = saved
        for col, saved in zip(self.ver_edges, ver, strict=True):
            col[:] = saved


__all__ = ["Simulator", "SimSnapshot", "MapFormatError", "INPUT_DECODE"]
