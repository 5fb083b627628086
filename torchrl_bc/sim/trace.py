"""Per-tick traces of a simulation, in the layout of the reference's golden files."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Trace:
    """Ninja trajectory; index t holds the state after tick t+1.

    ``win_frame``/``death_frame`` are 1-based tick counts (-1 = never). ``entities`` is
    [T, E, 5] of (type, x, y, active, state) when recorded.
    """

    pos: np.ndarray
    vel: np.ndarray
    state: np.ndarray
    win_frame: int
    death_frame: int
    entities: np.ndarray | None = None

    @property
    def ticks(self) -> int:
        return int(self.state.shape[0])
