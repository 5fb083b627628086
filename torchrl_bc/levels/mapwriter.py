"""Build map data bytes from a small, explicit level description.

The generator describes levels in tiles and pixels; this module owns the byte layout (see
:mod:`torchrl_bc.sim.mapdata`) so nothing else has to know offsets. Records are written in the
order the reference loader expects: the ninja, every exit door, then their switches in the same
order (a door's switch sits ``5 * exit_count`` bytes after it), then the other entities; locked
and trap doors carry their switch in the following 5-byte record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from torchrl_bc.sim import entities as E
from torchrl_bc.sim.mapdata import (
    COUNTS_AT,
    DEATH_BALL_COUNT_AT,
    ENTITIES_AT,
    EXIT_COUNT_AT,
    NINJA_AT,
    TILES_AT,
    TILES_END,
    MapData,
    parse_map,
)

#: Playable tiles (the simulator adds a solid border ring around them).
WIDTH, HEIGHT = 42, 23
UNIT = 6  # pixels per map-data coordinate unit
TILE_PX = 24

# Entity type ids used by the generator, and the switch records of the locked and trap doors.
MINE, GOLD, EXIT, EXIT_SWITCH, LOCKED_DOOR, TRAP_DOOR = (
    E.MINE, E.GOLD, E.EXIT, E.EXIT_SWITCH, E.LOCKED_DOOR, E.TRAP_DOOR)
LOCKED_SWITCH = E.BY_ID[LOCKED_DOOR].switch_record
TRAP_SWITCH = E.BY_ID[TRAP_DOOR].switch_record
#: Record types with their own one-record (5-byte) entry: every kind without a switch record
#: but the exit switch (written after its exit) and the regular door.
SIMPLE_TYPES = frozenset(k.id for k in E.ENTITIES if k.switch_record is None
                         and k.id not in (E.EXIT_SWITCH, E.DOOR))


def tile_center(tx: int, ty: int) -> tuple[int, int]:
    """Map units of the centre of playable tile (tx, ty) (0-based, border excluded)."""
    return ((tx + 1) * TILE_PX + TILE_PX // 2) // UNIT, ((ty + 1) * TILE_PX + TILE_PX // 2) // UNIT


@dataclass
class Door:
    """A locked (6) or trap (8) door on a tile edge plus the switch that operates it."""

    kind: int
    x: int
    y: int
    orientation: int
    switch_x: int
    switch_y: int


@dataclass
class LevelMap:
    """Everything a generated level holds, coordinates in 6-pixel map units.

    ``tiles`` is indexed ``[x, y]`` over the 42x23 playable area (the border is implicit).
    """

    tiles: np.ndarray = field(default_factory=lambda: np.ones((WIDTH, HEIGHT), np.uint8))
    spawn: tuple[int, int] = (0, 0)
    exits: list[tuple[int, int, int, int]] = field(default_factory=list)  # door x,y, switch x,y
    entities: list[tuple[int, int, int, int, int]] = field(default_factory=list)  # type,x,y,o,m
    doors: list[Door] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        """Serialise to map data; parse_map(to_bytes()) describes the same level."""
        if self.tiles.shape != (WIDTH, HEIGHT):
            raise ValueError(f"tiles must be {WIDTH}x{HEIGHT}, got {self.tiles.shape}")
        head = bytearray(ENTITIES_AT)
        head[TILES_AT:TILES_END] = self.tiles.astype(np.uint8).T.tobytes()  # x fastest
        counts = [0] * 40
        counts[0] = 1
        counts[EXIT] = counts[EXIT_SWITCH] = len(self.exits)
        for t, *_ in self.entities:
            counts[t] += 1
        for d in self.doors:
            counts[d.kind] += 1
        for t, c in enumerate(counts):
            head[COUNTS_AT + 2 * t : COUNTS_AT + 2 * t + 2] = c.to_bytes(2, "little")
        assert head[EXIT_COUNT_AT] == len(self.exits) and head[DEATH_BALL_COUNT_AT] == counts[25]
        head[NINJA_AT : NINJA_AT + 5] = bytes([0, *_units(self.spawn), 1, 0])
        body = bytearray()
        for dx, dy, _, _ in self.exits:
            body += bytes([EXIT, *_units((dx, dy)), 0, 0])
        for _, _, sx, sy in self.exits:
            body += bytes([EXIT_SWITCH, *_units((sx, sy)), 0, 0])
        for t, x, y, o, m in self.entities:
            if t not in SIMPLE_TYPES:
                raise ValueError(f"entity type {t} needs a dedicated field")
            body += bytes([t, *_units((x, y)), o, m])
        for d in self.doors:
            if d.kind not in (LOCKED_DOOR, TRAP_DOOR):
                raise ValueError(f"door kind {d.kind} is not a locked (6) or trap (8) door")
            if d.switch_y == 0:
                raise ValueError("a door switch on row 0 cannot be encoded (loader ambiguity)")
            body += bytes([d.kind, *_units((d.x, d.y)), d.orientation, 0])
            body += bytes([d.kind + 1, *_units((d.switch_x, d.switch_y)), 0, 0])
        return bytes(head + body)

    @classmethod
    def from_map(cls, data: bytes | MapData) -> LevelMap:
        """Inverse of :meth:`to_bytes` for the entity kinds the generator writes."""
        m = data if isinstance(data, MapData) else parse_map(data)
        out = cls(tiles=np.frombuffer(bytes(m.tiles), np.uint8).reshape(HEIGHT, WIDTH).T.copy(),
                  spawn=(m.spawn_x, m.spawn_y))
        for e in m.entities:
            if e.type == EXIT:
                out.exits.append((e.x, e.y, e.switch_x, e.switch_y))
            elif e.type in (LOCKED_DOOR, TRAP_DOOR):
                out.doors.append(Door(e.type, e.x, e.y, e.orientation, e.switch_x, e.switch_y))
            elif e.type in SIMPLE_TYPES:
                out.entities.append((e.type, e.x, e.y, e.orientation, e.mode))
        return out


def _units(xy: tuple[int, int]) -> tuple[int, int]:
    x, y = int(xy[0]), int(xy[1])
    if not (0 <= x < 256 and 0 <= y < 256):
        raise ValueError(f"coordinate {xy} does not fit a map-data byte")
    return x, y
