"""Compile every simulation kernel once (or load it from numba's disk cache).

The first import in a fresh environment compiles for ~30 s; later processes load the cached
machine code in about a second. :func:`torchrl_bc.env.warmup.warm_up` also compiles the
observation drawing kernels; this one covers the simulator alone, the layer it lives in.
"""

from __future__ import annotations

import numpy as np

from .mapdata import MIN_MAP_LEN


def _blank_map() -> bytes:
    data = bytearray(MIN_MAP_LEN)
    data[1230:1235] = bytes([0, 20, 20, 1, 0])
    return bytes(data)


def warm_up() -> None:
    """Run one tick through every compiled simulator entry point."""
    from .batch import SimBatch
    from .simulator import Simulator

    sim = Simulator(_blank_map())
    sim.tick(0, 0)
    sim.run_inputs(np.zeros(2, np.uint8))
    sim.advance(np.zeros(1), np.zeros(1))
    SimBatch([Simulator(_blank_map())]).step(np.zeros(1, np.int64), 1)
