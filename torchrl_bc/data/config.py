"""The ``data`` section of a run config: the one set of defaults ``prepare`` and training share.

Torch-free, so ``torchrl-bc prepare`` reads it without importing the models.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

__all__ = ["DataConfig"]


@dataclass(frozen=True)
class DataConfig:
    """Where the demonstrations come from and how they are split and sampled."""

    replays: tuple[str, ...] = ()  # replay folders, or one prepared dataset folder; empty = the
    # caller's default (the shipped sample corpus), else each must exist
    val_fraction: float = 0.15  # held out by level (content hash), never by frame
    balance_actions: bool = False  # sample inversely to action frequency
    levels_per_batch: int = 0  # draw each batch from <= this many levels; 0 = plain sampling
    mirror: bool = False  # add mirrored episodes that still win
    min_agreement: int = 0  # drop steps whose label held for fewer ticks than this
    change_weight: float = 1.0  # loss weight of the two steps either side of each label
    # change in a demo (a decision: a jump, a turn); 1 = every step alike
    skip_idle_start: bool = True  # drop each demo's leading NOOP steps (see BCDataset.select)
    trim_idle_start: bool = False  # re-simulate demos without their idle opening (replay.trim)
    release_jumps: bool = False  # release jump wherever holding it changes nothing, in demos
    # and DAgger's planner labels, so a jump's label starts where the jump does (replay.jumps)
    split_seed: int = 0
    cache_dir: str = ""  # prepared datasets + episode cache; "" = <out>/../.bc_data
    workers: int = 0  # simulation processes when preparing; 0 = min(4, CPUs)
    human_share: float = 0.0  # > 0: this share of each demo batch is drawn from recorded
    # (human) demos, the rest from the planner's (data.generated, make-corpus folders); 0: every
    # training step alike, so a few human levels beside many generated ones are a few percent
    generated: int = 0  # procedural levels solved by the planner and added (0 = none)
    generated_seed: int = 0  # first generator seed of those levels
    generated_families: tuple[str, ...] = ()  # the families those levels cycle over; empty =
    # the generator's corpus default (torchrl_bc.levels.generator.FAMILIES)

    def cache_root(self, out_dir: str | os.PathLike[str]) -> Path:
        """Where a run writing to ``out_dir`` keeps prepared datasets, the episode cache and its
        generated levels: ``cache_dir``, else ``<out_dir>/../.bc_data`` (shared by sibling runs)."""
        return Path(self.cache_dir) if self.cache_dir else Path(out_dir).parent / ".bc_data"

    def generated_dir(self, out_dir: str | os.PathLike[str]) -> Path | None:
        """The folder of the ``generated`` planner-solved levels a run writing to ``out_dir``
        uses (None when ``generated`` is 0), made once and shared through the cache."""
        if self.generated <= 0:
            return None
        name = f"generated-{self.generated}-{self.generated_seed}"
        if self.generated_families:  # the default's name stays what it always was
            tag = hashlib.sha256(",".join(self.generated_families).encode()).hexdigest()[:8]
            name += f"-f{tag}"
        return self.cache_root(out_dir) / name

    def n_workers(self) -> int:
        """Simulation processes: ``workers``, or min(4, CPUs) when it is 0."""
        return self.workers or min(4, os.cpu_count() or 1)

    @classmethod
    def from_mapping(cls, raw: Any) -> DataConfig:
        """A ``data:`` mapping read from YAML, each key type-checked; an unknown or mistyped
        key is a ``ValueError`` naming it (``data.key``)."""
        if not isinstance(raw, dict):
            raise ValueError(f"data must be a mapping, got {raw!r}")
        types = {f.name: type(f.default) for f in fields(cls)}
        unknown = sorted(set(raw) - set(types))
        if unknown:
            raise ValueError(f"unknown key(s) {[f'data.{k}' for k in unknown]}; "
                             f"known in data: {sorted(types)}")
        out: dict[str, Any] = {}
        for key, value in raw.items():
            want = types[key]
            if want is tuple:
                value = [value] if isinstance(value, str) else value
                ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
                value = tuple(value) if ok else value
            elif want is float:
                ok = isinstance(value, int | float) and not isinstance(value, bool)
            elif want is int:
                ok = isinstance(value, int) and not isinstance(value, bool)
            else:
                ok = isinstance(value, want)
            if not ok:
                raise ValueError(f"data.{key} must be a {want.__name__}, got {value!r}")
            out[key] = value
        if out.get("workers", 0) < 0:
            raise ValueError(f"data.workers must be >= 0, got {out['workers']}")
        return cls(**out)
