"""Map data: the level layout that replays and generated levels carry.

Layout (offsets in bytes): 184 header bytes; 42x23 tile ids at 184..1149 (x fastest); entity
counts as uint16 at 1150 + 2*type; the ninja record at 1230 (spawn x/y at 1231/1232, in
6-pixel units); then entity records of 5 bytes [type, x, y, orientation, mode]. An exit door's
switch is the record 5*exit_count bytes after it; locked and trap doors keep their switch
coordinates in the following record (9 or 10 bytes in all).

:func:`parse_map` refuses, as :class:`MapFormatError` naming the source, everything downstream
code cannot simulate or draw, so that every consumer (simulator, observation builder, data build,
render) gets one error type instead of an ``IndexError`` deep in a raster lookup:

* tile ids outside ``0..N_TILE_IDS-1`` (ids 34..37 are "glitched" but legal: the reference and
  the simulator treat them as empty; anything above has no shape at all, and the reference's
  own tile tables have no entry for it);
* a ninja spawn outside the level rectangle (``0..176`` x ``0..100`` map units, 1056 x 600 px);
* more than :data:`MAX_ENTITIES` entity records, which would otherwise inflate every padded
  per-step entity array of a dataset (the largest real map has 143).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from torchrl_bc.io import FileRejectedError, read_regular_file

from .constants import GRID_H, GRID_W, MAP_UNITS, TILE
from .level import map_hash
from .tiles import N_TILE_IDS

TILES_AT = 184
TILES_END = 1150
COUNTS_AT = 1150
EXIT_COUNT_AT = 1156
DEATH_BALL_COUNT_AT = 1200
NINJA_AT = 1230
ENTITIES_AT = 1235
MIN_MAP_LEN = ENTITIES_AT
#: Most entity records (the ninja's included) a map may hold: 7x the largest real level (143),
#: far above anything N++ builds, small enough that a padded [steps, entities] array stays sane.
MAX_ENTITIES = 1024
#: Longest map data that can hold MAX_ENTITIES records (a door takes up to 10 bytes).
MAX_MAP_LEN = ENTITIES_AT + 10 * MAX_ENTITIES
#: Largest spawn coordinates, in map units: the level rectangle (border ring included).
MAX_SPAWN_X = GRID_W * TILE // MAP_UNITS
MAX_SPAWN_Y = GRID_H * TILE // MAP_UNITS


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
        return map_hash(self.raw)


def parse_map(data: bytes | bytearray | memoryview | list[int], source: str = "<map>") -> MapData:
    """Parse map data, walking the entity records the way the reference loader does."""
    raw = bytes(data)
    n = len(raw)
    if n < MIN_MAP_LEN:
        raise MapFormatError(
            f"{source}: map data is {n} bytes, shorter than the {MIN_MAP_LEN} bytes that hold "
            "the tiles, entity counts and ninja spawn"
        )
    tiles = raw[TILES_AT:TILES_END]
    if max(tiles) >= N_TILE_IDS:
        bad = [i for i, t in enumerate(tiles) if t >= N_TILE_IDS]
        i = bad[0]
        raise MapFormatError(
            f"{source}: tile id {tiles[i]} at column {i % 42}, row {i // 42} (byte "
            f"{TILES_AT + i}) is not a tile (valid ids are 0..{N_TILE_IDS - 1}); "
            f"{len(bad)} bad tile byte{'s' if len(bad) != 1 else ''} in all"
        )
    spawn_x, spawn_y = raw[NINJA_AT + 1], raw[NINJA_AT + 2]
    if spawn_x > MAX_SPAWN_X or spawn_y > MAX_SPAWN_Y:
        raise MapFormatError(
            f"{source}: ninja spawn ({spawn_x}, {spawn_y}) map units lies outside the level "
            f"(0..{MAX_SPAWN_X} x 0..{MAX_SPAWN_Y})"
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
        if len(records) >= MAX_ENTITIES:
            raise MapFormatError(
                f"{source}: more than {MAX_ENTITIES} entity records (the record at byte {i} "
                f"is one too many; map data is {n} bytes)"
            )
        records.append(EntityRecord(etype, x, y, orient, mode, i, sx, sy))
        if etype in (6, 8):
            wide = i + 9 < n and raw[i + 7] != 0 and raw[i + 8] == 0 and raw[i + 9] == 0
            i += 10 if wide else 9
        else:
            i += 5
    return MapData(
        raw=raw,
        tiles=tuple(tiles),
        spawn_x=spawn_x,
        spawn_y=spawn_y,
        entities=tuple(records),
        death_ball_count=raw[DEATH_BALL_COUNT_AT],
    )


def read_map_file(path: str | os.PathLike[str]) -> bytes:
    """Raw map data from a file (regular, at most :data:`MAX_MAP_LEN` bytes, parseable), else a
    :class:`MapFormatError` naming the file; for loaders of ``*.map`` level files."""
    try:
        data = read_regular_file(path, MAX_MAP_LEN)
    except FileRejectedError as exc:
        raise MapFormatError(str(exc)) from exc
    parse_map(data, os.fspath(path))
    return data
