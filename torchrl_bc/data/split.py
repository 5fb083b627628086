"""Train / validation split by level content hash, never by frame.

Frames of one level are strongly correlated, so a frame-level split would leak the validation
levels into training. Levels are ordered by ``sha256(seed:level_hash)`` and the first
``round(val_fraction * n_levels)`` go to validation: fixed for a seed, independent of file names
and order, and adding a level moves at most that level. Mirrored episodes follow their source
level (a mirrored map is the same level to a human).

``val_replay_fraction`` additionally holds out whole replays *of training levels* as
``val_replay``: it measures fit to unseen demonstrations of seen levels, which the level split
cannot.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["SPLITS", "assign_splits"]

SPLITS: tuple[str, ...] = ("train", "val", "val_replay")


def _rank(seed: int, tag: str, value: str) -> bytes:
    return hashlib.sha256(f"{seed}:{tag}:{value}".encode()).digest()


def assign_splits(source_levels: Sequence[str], replays: Sequence[str], *,
                  val_fraction: float = 0.15, val_replay_fraction: float = 0.0,
                  seed: int = 0) -> list[str]:
    """Split name per episode, given each episode's source level hash and source replay hash."""
    if len(source_levels) != len(replays):
        raise ValueError("source_levels and replays must have one entry per episode")
    for name, frac in (("val_fraction", val_fraction),
                       ("val_replay_fraction", val_replay_fraction)):
        if not 0.0 <= frac < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {frac}")
    levels = sorted(set(source_levels), key=lambda h: _rank(seed, "level", h))
    n_val = round(val_fraction * len(levels))
    if val_fraction > 0 and n_val == 0 and len(levels) > 1:
        n_val = 1  # a requested validation set is never silently empty
    val_levels = set(levels[:n_val])
    out = ["val" if lv in val_levels else "train" for lv in source_levels]
    if val_replay_fraction > 0:
        train_replays = sorted({r for r, s in zip(replays, out, strict=True) if s == "train"},
                               key=lambda r: _rank(seed, "replay", r))
        held = set(train_replays[:round(val_replay_fraction * len(train_replays))])
        out = ["val_replay" if s == "train" and r in held else s
               for r, s in zip(replays, out, strict=True)]
    return out
