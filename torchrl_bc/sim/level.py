"""The one level record: a map with what evaluation and RL need to know about it.

Closed-loop evaluation (``train.evaluate``), the SB3 environments and the generated suites all
hand levels around as :class:`Level`; its :meth:`Level.cap` is the one episode-length rule.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

__all__ = ["DEFAULT_MAX_TICKS", "Level", "map_hash"]

#: The metric's episode cap (ticks, 60 Hz) when no demo gives a tighter one: crossval,
#: DAgger's rollouts, the benches and the PPO scripts' evaluations all cap at it.
DEFAULT_MAX_TICKS = 1200


def map_hash(map_data: bytes) -> str:
    """sha256 hex digest of a map's bytes: a level's identity in splits, folds, checkpoints'
    ``val_levels`` and reports, whatever its file is called."""
    return hashlib.sha256(map_data).hexdigest()


@dataclass(frozen=True)
class Level:
    """A level: its name, map data, the length of its shortest winning demo (0 when none is
    known) and, for generated levels, the family it comes from (for per-family success)."""

    name: str
    map_data: bytes = field(repr=False)
    demo_ticks: int = 0
    family: str = ""

    @property
    def content_hash(self) -> str:
        """:func:`map_hash` of the map data."""
        return map_hash(self.map_data)

    def cap(self, tick_factor: float, max_ticks: int) -> int:
        """Episode length: ``tick_factor`` x the demo (at least 1 tick), never above
        ``max_ticks``; ``max_ticks`` when no demo is known or ``tick_factor`` is not positive."""
        if self.demo_ticks > 0 and tick_factor > 0:
            return max(1, min(max_ticks, math.ceil(tick_factor * self.demo_ticks)))
        return max_ticks
