"""Solved-level corpora: replays of planner solutions plus a manifest.

``make_corpus`` generates levels seed by seed (families cycle, so every family is present),
writes each solution as a v1 replay and a ``manifest.json`` describing every level. The split
is by level and is a pure function of the seed, so regenerating a corpus reproduces it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from torchrl_bc.io import atomic_write_bytes
from torchrl_bc.replay.format import read_replay, write_replay
from torchrl_bc.resources import SAMPLE_CORPUS  # shipped package data; re-exported here
from torchrl_bc.sim import SIM_VERSION, Simulator

from .generator import DIFFICULTY, FAMILIES, GENERATOR_VERSION, generate_level
from .suites import HELD_OUT_SEED_START

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


def default_replay_dirs() -> list[Path]:
    """The shipped sample corpus: what a caller trains or prepares on when no data is given at
    all (never a stand-in for a path that was given but is wrong)."""
    if SAMPLE_CORPUS.is_dir() and any(SAMPLE_CORPUS.glob("*.replay")):
        return [SAMPLE_CORPUS]
    raise FileNotFoundError(f"no replay data given and the shipped sample corpus "
                            f"({SAMPLE_CORPUS}) is missing; pass --data DIR")


@dataclass(frozen=True)
class CorpusEntry:
    level_id: str
    family: str
    seed: int
    difficulty: float
    attempt: int
    file: str
    content_hash: str  # sha256 of the map data
    replay_hash: str  # sha256 of the replay file
    n_ticks: int
    split: str


def split_of(seed: int, val_fraction: float) -> str:
    """Stable per-seed split: hash the seed so neighbouring seeds do not correlate."""
    h = int.from_bytes(hashlib.sha256(f"split:{seed}".encode()).digest()[:8], "little")
    return "val" if h / 2**64 < val_fraction else "train"


def band_of(seed: int) -> str:
    """Bands cycle over blocks of len(FAMILIES) seeds: simple, medium, simple, hard, ..."""
    return ("simple", "medium", "simple", "hard", "medium")[(seed // len(FAMILIES)) % 5]


def make_corpus(out: str | Path, n_levels: int, seed: int = 0, val_fraction: float = 0.15,
                style: str = "human", progress: bool = True) -> list[CorpusEntry]:
    """Generate and solve ``n_levels`` levels from seeds ``seed, seed+1, ...``."""
    if seed + n_levels > HELD_OUT_SEED_START:
        raise ValueError(f"corpus seeds must stay below {HELD_OUT_SEED_START} (held out for "
                         "evaluation suites)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries: list[CorpusEntry] = []
    for s in tqdm(range(seed, seed + n_levels), desc="make-corpus", unit="level",
                  disable=not progress, file=sys.stderr):
        level = generate_level(s, band=band_of(s), style=style)
        name = f"{level.level_id}.replay"
        path = write_replay(out / name, level.map_data, level.solution, True)
        entries.append(CorpusEntry(
            level.level_id, level.family, s, round(level.difficulty, 4), level.attempt, name,
            level.content_hash, hashlib.sha256(path.read_bytes()).hexdigest(),
            int(level.solution.size), split_of(s, val_fraction),
        ))
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "generator_version": GENERATOR_VERSION,
        "sim_version": SIM_VERSION,
        "families": list(FAMILIES),
        "bands": {k: list(v) for k, v in DIFFICULTY.items()},
        "seed": seed,
        "n_levels": n_levels,
        "val_fraction": val_fraction,
        "style": style,
        "levels": [e.__dict__ for e in entries],
    }
    atomic_write_bytes(out / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())
    return entries


def load_manifest(corpus: str | Path = SAMPLE_CORPUS) -> dict:
    return json.loads((Path(corpus) / MANIFEST).read_text())


def check_replay_wins(path: str | Path) -> tuple[bool, str]:
    """True when the replay re-simulates to a win exactly on its last input."""
    replay = read_replay(path)
    trace = Simulator(replay.map_data, source=str(path)).run_inputs(replay.inputs)
    n = replay.n_ticks
    if trace.win_frame != n:
        return False, f"win_frame={trace.win_frame} death_frame={trace.death_frame} n={n}"
    return True, ""


def level_inputs(corpus: str | Path, level_id: str) -> np.ndarray:
    return read_replay(Path(corpus) / f"{level_id}.replay").inputs
