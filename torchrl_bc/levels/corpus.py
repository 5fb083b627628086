"""Solved-level corpora: replays of planner solutions plus a manifest.

``make_corpus`` generates levels seed by seed (families cycle, so every family is present),
writes each solution as a v1 replay and a ``manifest.json`` describing every level. The split
is by level and is a pure function of the seed, so regenerating a corpus reproduces it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from torchrl_bc.executors import Executor, WorkerLost, make_executor, report
from torchrl_bc.io import atomic_write_bytes
from torchrl_bc.replay.format import encode_replay, read_replay
from torchrl_bc.resources import SAMPLE_CORPUS  # shipped package data; re-exported here
from torchrl_bc.sim import SIM_VERSION, Simulator

from .generator import (
    CORPUS_FAMILIES,
    DIFFICULTY,
    FAMILIES,
    GENERATOR_VERSION,
    generate_level,
    pick_family,
)
from .suites import HELD_OUT_SEED_START

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


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


def band_of(seed: int, families: tuple[str, ...] = FAMILIES) -> str:
    """Bands cycle over blocks of len(families) seeds: simple, medium, simple, hard, ..."""
    return ("simple", "medium", "simple", "hard", "medium")[(seed // len(families)) % 5]


def check_families(families: tuple[str, ...]) -> None:
    """A corpus cycles over at least one family, each once, all from ``CORPUS_FAMILIES``."""
    bad = sorted(set(families) - set(CORPUS_FAMILIES))
    if bad or not families or len(set(families)) != len(families):
        raise ValueError(f"corpus families must be distinct names from {list(CORPUS_FAMILIES)} "
                         f"(suite-only families stay out of training), got {list(families)}")


def _solve_seed(task: tuple[int, str, float, tuple[str, ...]]) -> tuple[dict[str, Any], bytes]:
    """Worker side: generate and solve one seed; the entry's fields and the replay's bytes.

    Pure function of ``task``, so the driver's files are the same bytes wherever it ran.
    """
    s, style, val_fraction, families = task
    level = generate_level(s, pick_family(s, families), band=band_of(s, families), style=style)
    payload = encode_replay(level.map_data, level.solution, True)
    return {"level_id": level.level_id, "family": level.family, "seed": s,
            "difficulty": round(level.difficulty, 4), "attempt": level.attempt,
            "file": f"{level.level_id}.replay", "content_hash": level.content_hash,
            "replay_hash": hashlib.sha256(payload).hexdigest(),
            "n_ticks": int(level.solution.size), "split": split_of(s, val_fraction)}, payload


def make_corpus(out: str | Path, n_levels: int, seed: int = 0, val_fraction: float = 0.15,
                style: str = "human", progress: bool = True, *, workers: int = 1,
                executor: str | Executor = "local", ray_address: str | None = None,
                families: tuple[str, ...] = FAMILIES) -> list[CorpusEntry]:
    """Generate and solve ``n_levels`` levels from seeds ``seed, seed+1, ...``, seed ``s`` of
    family ``families[s % len(families)]`` (any of ``CORPUS_FAMILIES``; default ``FAMILIES``).

    Levels are solved by ``executor`` (``local`` processes or ``ray`` tasks, see
    :mod:`torchrl_bc.executors`); this process writes each replay atomically as it arrives and
    the manifest last (the commit point), in seed order, so the bytes do not depend on the
    executor or the worker count. A seed whose every candidate defeats the planner's
    expansion budget is reported on one line, listed under ``unsolved`` and left out. A seed
    whose worker process kept dying (:class:`~torchrl_bc.executors.WorkerLost`, after the
    executor's retries) is no verdict on the level: then no manifest is written and a
    ``RuntimeError`` names the seeds, so a re-run makes them (the replays written so far are
    final bytes and are simply rewritten).
    """
    if seed + n_levels > HELD_OUT_SEED_START:
        raise ValueError(f"corpus seeds must stay below {HELD_OUT_SEED_START} (held out for "
                         "evaluation suites)")
    families = tuple(families)
    check_families(families)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(executor, str):
        executor = make_executor(executor, workers=workers, address=ray_address,
                                 preload=["torchrl_bc.levels.corpus", "torchrl_bc.levels.planner"])
    tasks = [(s, style, val_fraction, families) for s in range(seed, seed + n_levels)]
    found: dict[int, CorpusEntry] = {}
    unsolved: list[dict[str, Any]] = []
    lost: list[int] = []
    for i, result, error in executor.map(_solve_seed, tasks, desc="make-corpus", unit="level",
                                         progress=progress):
        s = tasks[i][0]
        if isinstance(error, WorkerLost):
            report(f"make-corpus: seed {s} ({pick_family(s, families)}-{s}) not made: {error}")
            lost.append(s)
            continue
        if error is not None:
            reason = f"{type(error).__name__}: {error}".splitlines()[0]
            level_id = f"{pick_family(s, families)}-{s}"
            report(f"make-corpus: seed {s} ({level_id}) left out: {reason}")
            unsolved.append({"seed": s, "level_id": level_id, "reason": reason})
            continue
        fields, payload = result
        atomic_write_bytes(out / fields["file"], payload)
        found[s] = CorpusEntry(**fields)
    if lost:
        raise RuntimeError(f"{len(lost)} level(s) not made because their worker process died "
                           f"(seeds {sorted(lost)[:10]}{' ...' if len(lost) > 10 else ''}); "
                           f"no manifest written, run the same command again")
    entries = [found[s] for s in sorted(found)]
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "generator_version": GENERATOR_VERSION,
        "sim_version": SIM_VERSION,
        "families": list(families),
        "bands": {k: list(v) for k, v in DIFFICULTY.items()},
        "seed": seed,
        "n_levels": n_levels,
        "val_fraction": val_fraction,
        "style": style,
        "levels": [e.__dict__ for e in entries],
    }
    if unsolved:  # only then, so a complete corpus keeps its bytes
        manifest["unsolved"] = sorted(unsolved, key=lambda u: u["seed"])
    atomic_write_bytes(out / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())
    return entries


def load_manifest(corpus: str | Path = SAMPLE_CORPUS) -> dict:
    return json.loads((Path(corpus) / MANIFEST).read_text())


def is_corpus(folder: str | Path) -> bool:
    """Whether ``folder`` was made by :func:`make_corpus` (generated levels with planner demos,
    like the shipped corpus and ``data.generated``) rather than holding recorded replays: its
    manifest names the generator."""
    try:
        return "generator_version" in load_manifest(folder)
    except (OSError, ValueError, TypeError):  # no manifest, or not a corpus's JSON object
        return False


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
