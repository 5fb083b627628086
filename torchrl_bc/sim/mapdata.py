"""Map data: the level layout that replays and generated levels carry.

Layout (offsets in bytes): 184 header bytes; 42x23 tile ids at 184..1149 (x fastest); entity
counts as uint16 at 1150 + 2*type; the ninja record at 1230 (spawn x/y at 1231/1232, in
6-pixel units); then entity records of 5 bytes [type, x, y, orientation, mode]. An exit door's
switch is the record 5*exit_count bytes after it; locked and trap doors keep their switch
coordinates in the following record (9 or 10 bytes in all).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

TILES_AT = 184
TILES_END = 1150
COUNTS_AT = 1150
EXIT_COUNT_AT = 1156
DEATH_BALL_COUNT_AT = 1200
NINJA_AT = 1230
ENTITIES_AT = 1235
MIN_MAP_LEN = ENTITIES_AT


class MapFormatError(ValueError):
    """Map data that cannot describe a level; the message names the source and the defect."""


@dataclass(frozen=True)
class EntityRecord:
    """One entity as stored in map data (coordinates still in 6-pixel units)."""

    type: int
    x: int
    y: int
    orientation: int
    mode: int
    offset: int  # byte offset of the record in the map data
    switch_x: int = 0  # exit, locked and trap doors: their switch position
    switch_y: int = 0


@dataclass(frozen=True)
class MapData:
    raw: bytes
    tiles: tuple[int, ...]  # 42*23 ids, x fastest
    spawn_x: int
    spawn_y: int
    entities: tuple[EntityRecord, ...]  # from byte 1230; the ninja's own record (type 0) first
    death_ball_count: int

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


def parse_map(data: bytes | bytearray | memoryview | list[int], source: str = "<map>") -> MapData:
    """Parse map data, walking the entity records the way the reference loader does."""
    raw = bytes(data)
    n = len(raw)
    if n < MIN_MAP_LEN:
        raise MapFormatError(
            f"{source}: map data is {n} bytes, shorter than the {MIN_MAP_LEN} bytes that hold "
            "the tiles, entity counts and ninja spawn"
        )
    exit_count = raw[EXIT_COUNT_AT]
    records: list[EntityRecord] = []
    i = NINJA_AT
    while i < n and i + 4 < n:
        etype, x, y, orient, mode = raw[i : i + 5]
        sx = sy = 0
        if etype == 3:
            j = i + 5 * exit_count
            if j + 2 >= n:
                raise MapFormatError(
                    f"{source}: exit door at byte {i} has no switch record "
                    f"(expected at byte {j}, map data is {n} bytes)"
                )
            sx, sy = raw[j + 1], raw[j + 2]
        elif etype in (6, 8):
            if i + 7 >= n:
                raise MapFormatError(
                    f"{source}: door at byte {i} is missing its switch coordinates"
                )
            sx, sy = raw[i + 6], raw[i + 7]
        records.append(EntityRecord(etype, x, y, orient, mode, i, sx, sy))
        if etype in (6, 8):
            wide = i + 9 < n and raw[i + 7] != 0 and raw[i + 8] == 0 and raw[i + 9] == 0
            i += 10 if wide else 9
        else:
            i += 5
    return MapData(
        raw=raw,
        tiles=tuple(raw[TILES_AT:TILES_END]),
        spawn_x=raw[NINJA_AT + 1],
        spawn_y=raw[NINJA_AT + 2],
        entities=tuple(records),
        death_ball_count=raw[DEATH_BALL_COUNT_AT],
    )
