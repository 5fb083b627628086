"""Compile every kernel an environment runs (simulator and observation drawing) ahead of time.

The first import in a fresh environment compiles for ~30-45 s; later processes load numba's
cached machine code in about a second. Call :func:`warm_up` before timing-sensitive work such
as spawning vector-env workers. It lives here, above ``sim`` and ``obs``, because it needs both.
"""

from __future__ import annotations

from torchrl_bc.obs.draw import warm_up as warm_up_draw
from torchrl_bc.sim.warmup import warm_up as warm_up_sim

__all__ = ["warm_up"]


def warm_up() -> None:
    """Run every compiled simulator and drawing entry point once."""
    warm_up_sim()
    warm_up_draw()
