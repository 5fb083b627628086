"""Horizontal mirroring of levels and replays, for data augmentation.

The level is flipped about its vertical centre line: tiles move to the mirrored column and take
their mirrored id (found by comparing rasterised shapes, so no hand table can be wrong),
entity x coordinates become ``1056 - x``, orientations are reflected and drone turn preferences
swap handedness. Inputs swap left and right. N++ physics is not exactly symmetric (collision
order, the reference's position nudges), so :func:`mirror_if_valid` keeps a mirrored replay only
when re-simulation still reaches the exit on its last input.
"""

from __future__ import annotations

import numpy as np

from torchrl_bc.obs.raster import TILE_MIRROR
from torchrl_bc.replay.format import Replay
from torchrl_bc.sim import constants as C
from torchrl_bc.sim import entities as E
from torchrl_bc.sim.mapdata import TILES_AT, parse_map

__all__ = ["mirror_if_valid", "mirror_inputs", "mirror_map", "mirror_replay"]

_UNITS_W = C.GRID_W * C.TILE // C.MAP_UNITS  # level width in 6 px map units: 176
_INPUT_MIRROR = np.array([b & 1 | (b & 2) << 1 | (b & 4) >> 1 for b in range(8)], np.uint8)
_DRONE_KINDS = E.kinds(mirror="drone")  # turn preferences swap handedness
_SWITCH_KINDS = E.kinds(mirror="switch")  # the door's switch moves too


def mirror_inputs(inputs: np.ndarray) -> np.ndarray:
    """Swap the left (bit 2) and right (bit 1) input bits; jump stays."""
    return _INPUT_MIRROR[np.asarray(inputs, dtype=np.uint8)]


def mirror_map(map_data: bytes) -> bytes:
    """Map data of the horizontally mirrored level."""
    raw = bytearray(map_data)
    tiles = np.frombuffer(bytes(raw[TILES_AT:TILES_AT + 42 * 23]), np.uint8).reshape(23, 42)
    safe = np.minimum(tiles, len(TILE_MIRROR) - 1)
    mirrored = np.where(tiles < len(TILE_MIRROR), TILE_MIRROR[safe], tiles)[:, ::-1]
    raw[TILES_AT:TILES_AT + 42 * 23] = mirrored.tobytes()
    for rec in parse_map(map_data).entities:
        i = rec.offset
        raw[i + 1] = (_UNITS_W - rec.x) % 256
        raw[i + 3] = (4 - rec.orientation) % 8 if rec.orientation < 8 else rec.orientation
        if rec.type in _DRONE_KINDS:
            raw[i + 4] = rec.mode ^ 1  # modes come in (clockwise, anticlockwise) pairs
        if rec.type in _SWITCH_KINDS:
            raw[i + 6] = (_UNITS_W - rec.switch_x) % 256
    return bytes(raw)


def mirror_replay(replay: Replay) -> Replay:
    """The mirrored replay (not yet checked; see :func:`mirror_if_valid`)."""
    src = f"{replay.source}#mirror" if replay.source else "#mirror"
    return Replay(map_data=mirror_map(replay.map_data), inputs=mirror_inputs(replay.inputs),
                  success=replay.success, version=replay.version, source=src)


def mirror_if_valid(replay: Replay) -> Replay | None:
    """The mirrored replay if re-simulating it wins on its last input, else None."""
    from torchrl_bc.sim import MapFormatError, Simulator

    mirrored = mirror_replay(replay)
    try:
        trace = Simulator(mirrored.map_data).run_inputs(mirrored.inputs)
    except (MapFormatError, ValueError):
        return None
    return mirrored if trace.win_frame == mirrored.n_ticks else None
