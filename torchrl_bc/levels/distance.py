"""Re-export: the distance fields moved to :mod:`torchrl_bc.obs.distance`.

The observation builder reads them (the ``objective`` and ``local_view`` modalities), and obs
sits before levels in the layering, so the code lives there; the planner imports it from here.
"""

from torchrl_bc.obs.distance import (  # noqa: F401
    GRID_H,
    GRID_W,
    JUMP_HEIGHT,
    NX,
    NY,
    STEP,
    TILE,
    DistanceMap,
    solid_pixels,
    tile_mask,
)
