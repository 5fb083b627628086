"""Dataset-build jobs on an executor whose workers share no disk with the driver (Ray).

The local pool's workers write cache entries straight into the cache (:func:`.build.run_job`).
A Ray worker may sit on another machine, so here each job travels with its replay's bytes, runs
the very same job function (:func:`.build.run_job`, handed in by the builder, which this module
does not import) against a private scratch cache, and returns the files it
wrote; the driver then writes them into the real cache through the atomic writes, arrays
before the metadata that commits an entry. A worker killed midway therefore leaves nothing in
the cache (its scratch directory dies with it) and Ray runs the task again. The files are the
same bytes the local path writes: only the ``file`` field, which names the replay, is set back
from the scratch copy to the driver's path.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from torchrl_bc.data.cache import EpisodeCache
from torchrl_bc.executors import Executor
from torchrl_bc.io import atomic_write_bytes
from torchrl_bc.replay.format import read_bounded

__all__ = ["run_jobs_detached"]

#: (job function, job, replay bytes, metadata bytes of an entry the driver already has, or None)
_Task = tuple[Callable[[Any], Any], Any, bytes, bytes | None]


def _run_detached(task: _Task) -> list[tuple[str, bytes]]:
    """Worker side: run one job in a scratch cache; its files as (path in cache, bytes),
    in commit order (level graphs, then arrays, then metadata)."""
    run_job, job, replay_bytes, have_meta = task
    with tempfile.TemporaryDirectory(prefix="torchrl_bc-job-") as tmp:
        root = Path(tmp) / "cache"
        copy = Path(tmp) / Path(job.path).name
        copy.write_bytes(replay_bytes)
        scratch = EpisodeCache(root)
        if have_meta is not None:  # only the mirror is missing: let run_job see the base entry
            atomic_write_bytes(scratch.meta_path(job.key), have_meta)
        run_job(replace(job, path=str(copy), cache_dir=str(root)))
        files = []
        for path in sorted(root.rglob("*"), key=lambda p: (p.suffix == ".json", str(p))):
            if not path.is_file() or path.name.startswith("."):
                continue
            if path.suffix == ".json" and path.stem == job.key and have_meta is not None:
                continue  # the driver's own entry, sent along above
            data = path.read_bytes()
            if path.suffix == ".json":
                data = _own_path(data, str(copy), job.path)
            files.append((str(path.relative_to(root)), data))
        return files


def _own_path(data: bytes, scratch: str, original: str) -> bytes:
    """Metadata bytes with ``file`` naming the driver's replay, serialised as
    :meth:`EpisodeCache.put` does (sorted keys, UTF-8), so the bytes match the local path's."""
    meta = json.loads(data.decode("utf-8"))
    if meta.get("file") != scratch:
        return data
    meta["file"] = original
    return json.dumps(meta, sort_keys=True, ensure_ascii=False).encode("utf-8")


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def run_jobs_detached(run_job: Callable[[Any], Any], jobs: list[Any], executor: Executor,
                      cache_root: str | Path, progress: bool) -> dict[str, str]:
    """Run ``run_job`` on each build job on ``executor`` and commit their entries into the
    cache at ``cache_root``; ``{replay_id: reason}`` for jobs that failed (nothing committed)."""
    cache = EpisodeCache(cache_root)
    tasks: list[_Task] = []
    failed: dict[str, str] = {}
    for job in jobs:
        try:
            replay_bytes = read_bounded(job.path)
        except (OSError, ValueError) as exc:  # gone or changed since it was listed
            failed[job.replay_id] = _reason(exc)
            continue
        have = cache.meta_path(job.key).read_bytes() if cache.has(job.key) else None
        tasks.append((run_job, job, replay_bytes, have))
    tasks.sort(key=lambda t: -len(t[2]))  # longest first: the map does not end on one
    for i, files, error in executor.map(_run_detached, tasks, desc="simulating", unit="replay",
                                        progress=progress):
        if error is not None:
            failed[tasks[i][1].replay_id] = _reason(error)
            continue
        for rel, data in files:
            target = cache.root / rel
            if rel.startswith("levels") and target.is_file():
                continue  # a level graph another job committed (same bytes)
            atomic_write_bytes(target, data)
    return failed
