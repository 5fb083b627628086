"""Tiny map-data builder for simulator unit tests (independent of torchrl_bc.levels)."""

from __future__ import annotations

MAP_LEN_BASE = 1235


def build_map(
    tiles: dict[tuple[int, int], int] | None = None,
    spawn: tuple[int, int] = (10, 10),
    records: list[tuple[int, ...]] | None = None,
) -> bytes:
    """Map data with the given inner tiles {(x, y): id} (x 0..41, y 0..22, empty elsewhere),
    ninja spawn (6 px units) and raw entity records (5 or more bytes each, concatenated)."""
    buf = bytearray(MAP_LEN_BASE)
    for (x, y), tid in (tiles or {}).items():
        buf[184 + x + 42 * y] = tid
    recs = records or []
    exits = sum(1 for r in recs if r[0] == 3)
    buf[1156] = exits
    buf[1200] = sum(1 for r in recs if r[0] == 25)
    buf[1230:1235] = bytes([0, spawn[0], spawn[1], 1, 0])
    for r in recs:
        buf += bytes(r)
    return bytes(buf)


def floor_row(y: int, x0: int = 0, x1: int = 41, tid: int = 1) -> dict[tuple[int, int], int]:
    return {(x, y): tid for x in range(x0, x1 + 1)}
