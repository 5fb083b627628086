"""Rasterising a level: tile shapes once per level, entities and the ninja per frame.

Tiles never change, so each level's tile layer is rasterised once (exact shapes, 4x4
supersampled, so slopes and quarter pipes appear as shapes with anti-aliased edges) and then
block-averaged to each scale. Per frame only a slice is copied and a handful of small stamps is
written with numpy, which keeps a frame to tens of microseconds.

Intensity legend (uint8): tiles are 0..``TILE_VALUE`` by coverage; every entity class has its
own value above that (see ``VALUES``) and a shape (disc, square or segment); the ninja is 255.
"""

from __future__ import annotations

import numpy as np

from torchrl_bc.obs.draw import stamp_disc, stamp_square
from torchrl_bc.obs.draw import stamp_line as _stamp_line
from torchrl_bc.sim.tiles import ARCS, DIAGONALS, FIRST_EMPTY_ID, N_TILE_IDS

__all__ = [
    "LEVEL_H",
    "LEVEL_W",
    "NINJA_VALUE",
    "PALETTE",
    "TILE_MIRROR",
    "TILE_VALUE",
    "VALUES",
    "downsample",
    "level_coverage",
    "stamp_disc",
    "stamp_line",
    "stamp_square",
    "tile_coverage",
]

LEVEL_W, LEVEL_H = 1056, 600
TILE_PX = 24
TILE_VALUE = 96
NINJA_VALUE = 255
_SS = 4  # supersamples per pixel side

#: Intensity per drawn thing. Distinct values so a model (and the palette) can tell them apart.
VALUES: dict[str, int] = {
    "mine_safe": 112,
    "bounce_block": 120,
    "one_way": 130,
    "exit_closed": 140,
    "boost_pad": 150,
    "door": 160,
    "door_switch": 170,
    "launch_pad": 180,
    "gold": 190,
    "thwump": 200,
    "mine_toggling": 205,
    "shove_thwump": 210,
    "exit_switch": 215,
    "exit_open": 230,
    "mini_drone": 235,
    "zap_drone": 240,
    "death_ball": 245,
    "mine_deadly": 250,
    "ninja": NINJA_VALUE,
}


def _tile_solid(tid: int, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Solidity of points (px, py) in tile-local pixels for tile id ``tid``."""
    if tid == 0 or tid >= FIRST_EMPTY_ID:
        return np.zeros(px.shape, bool)
    if tid == 1:
        return np.ones(px.shape, bool)
    if 2 <= tid <= 5:  # half tiles: 2 top, 3 right, 4 bottom, 5 left
        return {2: py < 12, 3: px >= 12, 4: py >= 12, 5: px < 12}[tid]
    if tid in DIAGONALS:
        # Tile segments are oriented with the solid side on the negative cross product side
        # (checked against the half-edge tables in tests/test_obs.py).
        x1, y1, x2, y2 = DIAGONALS[tid]
        return (x2 - x1) * (py - y1) - (y2 - y1) * (px - x1) < 0
    cx, cy, _, _, convex = ARCS[tid]
    inside = (px - cx) ** 2 + (py - cy) ** 2 < 24.0**2
    return inside if convex else ~inside


def _tile_masks() -> np.ndarray:
    """[N_TILE_IDS, 24, 24] float32 coverage of every tile id (rows = y, columns = x)."""
    sub = (np.arange(TILE_PX * _SS) + 0.5) / _SS
    py, px = np.meshgrid(sub, sub, indexing="ij")
    out = np.empty((N_TILE_IDS, TILE_PX, TILE_PX), np.float32)
    for tid in range(N_TILE_IDS):
        solid = _tile_solid(tid, px, py).astype(np.float32)
        out[tid] = solid.reshape(TILE_PX, _SS, TILE_PX, _SS).mean(axis=(1, 3))
    return out


TILE_MASKS = _tile_masks()
TILE_MASKS.setflags(write=False)


def _mirror_table() -> np.ndarray:
    """Tile id -> id of its horizontal mirror image, found by comparing rasterised shapes."""
    flat = TILE_MASKS.reshape(N_TILE_IDS, -1)
    table = np.arange(N_TILE_IDS, dtype=np.uint8)
    for tid in range(1, FIRST_EMPTY_ID):
        flipped = TILE_MASKS[tid][:, ::-1].reshape(-1)
        matches = [j for j in range(1, FIRST_EMPTY_ID) if np.array_equal(flat[j], flipped)]
        if len(matches) != 1:
            raise AssertionError(f"tile {tid} has {len(matches)} mirror images")
        table[tid] = matches[0]
    return table


#: Horizontal mirror of each tile id (ids 0 and >= 34 map to themselves: they are empty).
TILE_MIRROR = _mirror_table()
TILE_MIRROR.setflags(write=False)


def tile_coverage(tid: int) -> np.ndarray:
    """Coverage [24, 24] of one tile id (a read-only view)."""
    return TILE_MASKS[tid]


_SCALED_MASKS: dict[int, np.ndarray] = {1: TILE_MASKS}


def level_coverage(tiles: np.ndarray, scale: int = 1) -> np.ndarray:
    """Solid coverage [600 / scale, 1056 / scale] float32 of a [44, 25] (x, y) tile-id grid.

    Downsampling the 38 tile masks once and then gathering them is far cheaper than averaging
    a full-resolution level, which is why ``scale`` must divide the 24 px tile.
    """
    if TILE_PX % scale:
        raise ValueError(f"scale {scale} does not divide the {TILE_PX} px tile")
    masks = _SCALED_MASKS.get(scale)
    if masks is None:
        masks = downsample_stack(TILE_MASKS, scale)
        masks.setflags(write=False)
        _SCALED_MASKS[scale] = masks
    side = TILE_PX // scale
    tiles = np.asarray(tiles, dtype=np.intp)
    ny, nx = tiles.shape[1], tiles.shape[0]
    blocks = masks[tiles.T]  # [25, 44, side, side]: (cell y, cell x, row, col)
    return blocks.transpose(0, 2, 1, 3).reshape(ny * side, nx * side)


def downsample_stack(stack: np.ndarray, scale: int) -> np.ndarray:
    """Block mean of each image in a [N, H, W] stack by an integer factor."""
    n, h, w = stack.shape
    return stack.reshape(n, h // scale, scale, w // scale, scale).mean(axis=(2, 4))


def downsample(cov: np.ndarray, scale: int) -> np.ndarray:
    """Block mean by an integer factor (the world size is a multiple of every scale we use)."""
    if scale == 1:
        return cov.copy()
    h, w = cov.shape
    return cov.reshape(h // scale, scale, w // scale, scale).mean(axis=(1, 3))


def tile_image(cov: np.ndarray) -> np.ndarray:
    """Coverage to uint8 tile intensities."""
    return np.rint(cov * TILE_VALUE).astype(np.uint8)


# -- stamps -------------------------------------------------------------------------------------
# Coordinates are in image pixels (continuous; pixel (i, j) covers [j, j+1) x [i, i+1)).


def stamp_line(img: np.ndarray, ax: float, ay: float, bx: float, by: float, value: int,
               thick: int = 1) -> None:
    """Draw a segment by dense sampling, ``thick`` pixels wide (square brush)."""
    _stamp_line(img, float(ax), float(ay), float(bx), float(by), value, thick)


def _palette() -> np.ndarray:
    """[256, 3] uint8 colours for people: tiles grey, each entity class its own colour."""
    pal = np.zeros((256, 3), np.uint8)
    pal[:] = (255, 0, 255)  # anything unexpected shows up magenta
    ramp = np.arange(TILE_VALUE + 1) / TILE_VALUE
    bg, fg = np.array([236, 232, 222.0]), np.array([70, 74, 84.0])
    pal[: TILE_VALUE + 1] = np.rint(bg + ramp[:, None] * (fg - bg)).astype(np.uint8)
    colours = {
        "mine_safe": (120, 200, 120), "bounce_block": (170, 140, 90), "one_way": (110, 110, 200),
        "exit_closed": (150, 120, 160), "boost_pad": (255, 170, 0), "door": (40, 40, 40),
        "door_switch": (255, 255, 60), "launch_pad": (240, 120, 40), "gold": (230, 190, 20),
        "thwump": (60, 90, 160), "mine_toggling": (255, 140, 140),
        "shove_thwump": (30, 140, 200), "exit_switch": (250, 220, 0),
        "exit_open": (150, 60, 220), "mini_drone": (200, 30, 30), "zap_drone": (220, 40, 40),
        "death_ball": (120, 0, 0), "mine_deadly": (230, 0, 0), "ninja": (0, 0, 0),
    }
    for name, rgb in colours.items():
        pal[VALUES[name]] = rgb
    return pal


#: Colour lookup for :func:`torchrl_bc.obs.builder.ObservationBuilder.render_rgb`.
PALETTE = _palette()
PALETTE.setflags(write=False)
