"""``build_dataset``: replay files -> cached episodes -> one memory-mapped store + manifest.

Stages, each cheap to skip when its inputs are unchanged:

1. parse every ``.replay`` file (bad files are reported with their reason and skipped) and
   de-duplicate by canonical content hash;
2. simulate only replays whose cache key (see :mod:`torchrl_bc.data.cache`) has no entry, in a
   process pool; workers write their entries themselves, so no frames cross process borders;
3. consolidate the used episodes into one ``TensorDict`` memmap store (:mod:`.store`), unless
   the store for exactly these entries already exists;
4. split by level and write ``manifest.json`` (:mod:`.manifest`), the commit point: a store is
   only ever used through the manifest that names it, and the manifest records every store
   file's size and sha256.

Bad input never stops a build: unreadable or malformed files, map errors and even a worker that
fails on one replay are listed in the manifest's ``skipped`` with their reason. Damage is
detected and repaired: every ``prepare`` re-hashes each store file whose size or stamps
changed since commit (``verify`` re-hashes them all; see :mod:`.manifest`); a mismatch, or
``force``, rewrites the store from the cache, replacing the damaged directory. Before a store is
written each cache entry it uses is checked against its recorded checksum; damaged entries are
dropped and simulated again. Temp files and directories left by killed runs are removed.

The warm path (nothing changed) imports neither torch nor the simulator kernels' callers, which
is what keeps a re-run under two seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from torchrl_bc.data.cache import (
    DATA_VERSION,
    STALE_TEMP_SECONDS,
    STORE_VERSION,
    CacheCorruptError,
    EpisodeCache,
    episode_key,
    obs_signature_hash,
)
from torchrl_bc.data.manifest import (
    STORE_PREFIX,
    StoreCorruptError,
    build_manifest,
    check_store,
    read_manifest,
    store_index,
    summary_table,
    write_manifest,
)
from torchrl_bc.data.split import assign_splits
from torchrl_bc.obs.config import ObservationConfig
from torchrl_bc.replay.format import ReplayFormatError, read_replay

__all__ = ["BuildResult", "build_dataset", "find_replays"]



@dataclass
class BuildResult:
    """What a build did; ``simulated`` lists the replay ids that had to be (re-)simulated."""

    out_dir: Path
    manifest: dict[str, Any]
    simulated: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    store_written: bool = False
    seconds: float = 0.0


@dataclass
class _Job:
    path: str
    replay_id: str
    key: str
    mirror_key: str | None
    config: ObservationConfig
    cache_dir: str
    trim_idle: bool = False
    replay_hash: str = ""  # what the parent read; a file changed since must not be cached
    release_jumps: bool = False


def find_replays(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Every ``.replay`` under the given directories (recursively) or the paths themselves.

    A named path that exists but is no regular file (a FIFO, a dangling link) is kept, so the
    reader reports it as a skipped file instead of the whole build failing.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(q for q in sorted(p.rglob("*.replay")) if not q.is_dir())
        elif p.exists() or p.is_symlink():
            files.append(p)
        else:
            raise FileNotFoundError(f"replay path {p} does not exist")
    return files


# -- worker side -------------------------------------------------------------------------------
_EXECUTORS: dict[ObservationConfig, Any] = {}


def _episode_entry(ep: Any, rid: str, path: str, replay_hash: str,
                   sig: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Metadata and arrays of one executed episode (arrays None when it is unusable)."""
    from torchrl_bc.replay.actions import N_ACTIONS

    meta: dict[str, Any] = {
        "replay_id": rid, "file": path, "replay_hash": replay_hash, "mirrored": ep.mirrored,
        "level_hash": ep.level_hash, "n_inputs": ep.n_inputs, "end_frame": ep.end_frame,
        "won": ep.won, "success": ep.success, "data_version": DATA_VERSION,
    }
    if ep.desynced:
        return meta | {"status": "desynced", "reason": ep.desync_reason}, None
    counts = [int(c) for c in np.bincount(ep.actions, minlength=N_ACTIONS)[:N_ACTIONS]]
    ents = ep.obs["graph_entity_state"].shape[1] if "graph_entity_state" in ep.obs else 0
    meta |= {"status": "ok", "reason": "", "n_steps": ep.n_steps, "n_ticks": int(ep.ticks.sum()),
             "action_counts": counts, "n_entities": int(ents), "graph_sig": None}
    arrays = dict(ep.obs)
    arrays |= {"actions": ep.actions, "agreement": ep.agreement, "ticks": ep.ticks,
               "rewards": ep.rewards, "terminated": ep.terminated, "truncated": ep.truncated}
    if ep.static_graph is not None:
        meta["graph_sig"] = sig
    return meta, arrays


def _store_graph(cache: EpisodeCache, ep: Any, sig: str) -> None:
    g = ep.static_graph
    if g is None or cache.level_path(ep.level_hash, sig).is_file():
        return
    cache.put_level(ep.level_hash, sig, {
        "node_type": g.node_type, "node_kind": g.node_kind, "node_pos": g.node_pos,
        "edge_index": g.edge_index, "edge_type": g.edge_type, "cell_to_node": g.cell_to_node,
        "n_entities": np.array(g.n_entities, np.int64)})


def run_job(job: _Job) -> list[dict[str, Any]]:
    """Simulate one replay (and its mirror) and write the cache entries; returns their metas."""
    from torchrl_bc.replay.executor import ReplayExecutor
    from torchrl_bc.replay.format import read_replay
    from torchrl_bc.replay.mirror import mirror_if_valid
    from torchrl_bc.sim import MapFormatError

    cache = EpisodeCache(job.cache_dir)
    executor = _EXECUTORS.get(job.config)
    if executor is None:
        executor = _EXECUTORS[job.config] = ReplayExecutor(job.config)
    sig = obs_signature_hash(job.config)
    replay = read_replay(job.path)
    if job.replay_hash and replay.content_hash != job.replay_hash:
        raise ValueError(f"{job.path} changed while the dataset was being built")
    base = {"replay_id": job.replay_id, "file": job.path, "replay_hash": replay.content_hash,
            "data_version": DATA_VERSION}
    if job.trim_idle:
        from torchrl_bc.replay.trim import trim_idle_start

        replay, cut = trim_idle_start(replay)
        base["idle_ticks_cut"] = cut
    if job.release_jumps:  # after trimming: the demo as it is then played from tick 0
        from torchrl_bc.replay.jumps import release_stale_jumps

        replay, released = release_stale_jumps(replay)
        base["jump_ticks_released"] = released
    metas = []
    todo = [(job.key, replay, False)]
    if cache.has(job.key):  # only the mirror is missing (mirroring was turned on later)
        todo = [(job.mirror_key, mirror_if_valid(replay), True)] if job.mirror_key else []
        if todo and todo[0][1] is None:
            cache.put(job.mirror_key, base | {
                "replay_id": job.replay_id + "#mirror", "mirrored": True,
                "status": "mirror_rejected",
                "reason": "mirrored replay does not win on re-simulation"})
            todo = []
    while todo:
        key, rep, mirrored = todo.pop(0)
        rid = job.replay_id + ("#mirror" if mirrored else "")
        try:
            ep = executor.execute(rep, rid, mirrored=mirrored)
        except MapFormatError as exc:  # deterministic: cache the verdict
            meta = base | {"replay_id": rid, "mirrored": mirrored, "status": "map_error",
                           "reason": f"map error: {exc}"}
            cache.put(key, meta)
            metas.append(meta | {"key": key})
            break
        meta, arrays = _episode_entry(ep, rid, job.path, base["replay_hash"], sig)
        for k in ("idle_ticks_cut", "jump_ticks_released"):
            if k in base:
                meta[k] = base[k]
        if arrays is not None:
            _store_graph(cache, ep, sig)
        cache.put(key, meta, arrays)
        metas.append(meta | {"key": key})
        if not mirrored and job.mirror_key and arrays is not None:
            flipped = mirror_if_valid(replay)
            if flipped is None:
                meta = base | {"replay_id": rid + "#mirror", "mirrored": True,
                               "status": "mirror_rejected",
                               "reason": "mirrored replay does not win on re-simulation"}
                cache.put(job.mirror_key, meta)
                metas.append(meta | {"key": job.mirror_key})
            else:
                todo.append((job.mirror_key, flipped, True))
    return metas


# -- parent side -------------------------------------------------------------------------------
def _failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def _run_jobs(jobs: list[_Job], workers: int, progress: bool, executor: str = "local",
              ray_address: str | None = None) -> dict[str, str]:
    """Run the jobs; returns ``{replay_id: reason}`` for jobs that raised (nothing cached)."""
    from torchrl_bc.executors import make_executor

    if executor != "local":  # workers that may share no disk: see torchrl_bc.data.remote
        from torchrl_bc.data.remote import run_jobs_detached

        return run_jobs_detached(run_job, jobs, make_executor(executor, workers=workers,
                                                              address=ray_address),
                                 jobs[0].cache_dir, progress)
    # Local workers write straight into the cache. Preloading this module lets each forkserver
    # worker start without re-importing the stack; longest first, so the pool does not end
    # waiting on one long replay.
    local = make_executor("local", workers=workers,
                          preload=["torchrl_bc.data.build", "torchrl_bc.replay.executor"])
    jobs = sorted(jobs, key=lambda j: -os.path.getsize(j.path))
    failed: dict[str, str] = {}
    for i, _, error in local.map(run_job, jobs, desc="simulating", unit="replay",
                                 progress=progress):
        if error is not None:
            failed[jobs[i].replay_id] = _failure(error)
    return failed


def _store_key(keys: list[str], config: ObservationConfig) -> str:
    payload = json.dumps([STORE_VERSION, config.signature(), keys]).encode()
    return hashlib.sha256(payload).hexdigest()[:16]


def _clean_out_dir(out: Path, keep: str) -> None:
    """Remove superseded stores, temp dirs of killed builds (never the store in use) and stale
    temp files (a killed manifest write)."""
    now = time.time()
    for path in out.iterdir():
        if path.is_dir() and (path.name.startswith(STORE_PREFIX) or path.name.startswith(".tmp"))\
                and path.name != keep:
            shutil.rmtree(path, ignore_errors=True)
        elif path.name.startswith(".") and path.name.endswith(".tmp") and path.is_file():
            try:
                if now - path.stat().st_mtime > STALE_TEMP_SECONDS:
                    path.unlink()
            except FileNotFoundError:
                pass


def _meta_or_none(cache: EpisodeCache, key: str) -> dict[str, Any] | None:
    """The entry's metadata, or None (after dropping it) when it is absent or corrupt."""
    if not cache.has(key):
        return None
    try:
        return cache.meta(key)
    except CacheCorruptError as exc:
        print(f"cache: {exc}; simulating it again", file=sys.stderr)
        cache.drop(key)
        return None


def _damaged_entries(cache: EpisodeCache, episodes: list[dict[str, Any]],
                     config: ObservationConfig) -> set[str]:
    """Keys of used entries whose arrays or level graph fail their checksums (then dropped)."""
    bad: set[str] = set()
    sig = obs_signature_hash(config)
    levels_bad: set[str] = set()
    levels_ok: set[str] = set()
    for ep in episodes:
        try:
            cache.check(ep["key"])
        except CacheCorruptError as exc:
            print(f"cache: {exc}; simulating it again", file=sys.stderr)
            bad.add(ep["key"])
        h = ep["level_hash"]
        if ep.get("graph_sig") and h not in levels_ok and h not in levels_bad:
            try:
                cache.level(h, sig)
                levels_ok.add(h)
            except CacheCorruptError as exc:
                print(f"cache: {exc}; simulating its level again", file=sys.stderr)
                levels_bad.add(h)
                cache.level_path(h, sig).unlink(missing_ok=True)
    for ep in episodes:  # every entry of a level whose graph is gone must re-create it
        if ep["level_hash"] in levels_bad:
            bad.add(ep["key"])
    for key in bad:
        cache.drop(key)
    return bad


def _replace_store(path: Path, reason: str) -> None:
    """Move a damaged (or force-rebuilt) store out of the way, so a rewrite replaces it."""
    print(f"store {path.name}: {reason}; rewriting it from the cache", file=sys.stderr)
    if path.exists():
        trash = path.with_name(f".tmp-old-{path.name}-{os.getpid()}")
        os.rename(path, trash)
        shutil.rmtree(trash, ignore_errors=True)


def build_dataset(replay_dirs: Sequence[str | os.PathLike[str]], obs_config: ObservationConfig,
                  out_dir: str | os.PathLike[str], *, workers: int = 1, mirror: bool = False,
                  val_fraction: float = 0.15, val_replay_fraction: float = 0.0,
                  split_seed: int = 0, cache_dir: str | os.PathLike[str] | None = None,
                  progress: bool = True, prune: bool = False,
                  verbose: bool = True, trim_idle: bool = False, release_jumps: bool = False,
                  force: bool = False, verify: bool = False, executor: str = "local",
                  ray_address: str | None = None) -> BuildResult:
    """Build (or bring up to date) the dataset in ``out_dir``; see the module docstring.

    ``trim_idle`` cuts each demo's idle opening where it can still win (see
    :mod:`torchrl_bc.replay.trim`), so states are those of a player acting from tick 0.
    ``release_jumps`` releases jump wherever holding it changes nothing
    (:mod:`torchrl_bc.replay.jumps`), so each jump's label starts where the jump does.

    ``cache_dir`` defaults to ``out_dir/cache``; point several datasets at one cache to share
    simulated episodes. ``prune`` deletes cache entries this build does not use. ``force``
    rewrites the store from the cache even when the manifest says it is current; ``verify``
    re-hashes every store file, not only those whose stamps changed since commit.
    ``executor`` ``"ray"`` simulates on Ray tasks (``ray_address`` or ``RAY_ADDRESS``); the
    cache, store and manifest are byte for byte those of the local path.
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = EpisodeCache(cache_dir if cache_dir is not None else out / "cache")
    cache.clean_temp()
    files = find_replays(replay_dirs)
    stems = [f.stem for f in files]
    skipped: list[dict[str, str]] = []
    seen: dict[str, str] = {}
    replays: list[tuple[Path, str, str]] = []  # (path, id, content hash)
    for f in files:
        rid = f.stem if stems.count(f.stem) == 1 else f"{f.parent.name}/{f.stem}"
        try:
            replay = read_replay(f)  # regular files of bounded size only
        except ReplayFormatError as exc:
            skipped.append({"file": str(f), "kind": "format",
                            "reason": f"format error: {exc.defect}"})
            continue
        h = replay.content_hash
        if h in seen:
            skipped.append({"file": str(f), "kind": "duplicate",
                            "reason": f"duplicate of {seen[h]} (same content hash)"})
            continue
        seen[h] = f.name
        replays.append((f, rid, h))

    keys: dict[str, tuple[str, str | None]] = {}
    for _f, rid, h in replays:
        key = episode_key(h, obs_config, trim_idle=trim_idle, release_jumps=release_jumps)
        mkey = episode_key(h, obs_config, mirrored=True, trim_idle=trim_idle,
                           release_jumps=release_jumps) if mirror else None
        keys[rid] = (key, mkey)
    failed: dict[str, str] = {}
    simulated: list[str] = []

    def simulate(only: set[str] | None = None) -> None:
        jobs: list[_Job] = []
        for f, rid, h in replays:
            if rid in failed or (only is not None and rid not in only):
                continue
            key, mkey = keys[rid]
            meta = _meta_or_none(cache, key)
            mmeta = _meta_or_none(cache, mkey) if mkey is not None else None
            if meta is None or (mkey is not None and mmeta is None and meta["status"] == "ok"):
                jobs.append(_Job(str(f), rid, key, mkey, obs_config, str(cache.root), trim_idle,
                                 h, release_jumps))
        if jobs:
            failed.update(_run_jobs(jobs, workers, progress, executor, ray_address))
        simulated.extend(j.replay_id for j in jobs if j.replay_id not in simulated)

    def collect() -> tuple[list[dict[str, Any]], list[dict[str, str]], int]:
        episodes: list[dict[str, Any]] = []
        bad: list[dict[str, str]] = []
        rejected = 0
        for f, rid, _ in replays:
            key, mkey = keys[rid]
            meta = None if rid in failed else _meta_or_none(cache, key)
            if meta is None:
                why = failed.get(rid, "no cache entry after simulation")
                bad.append({"file": str(f), "kind": "error", "reason": f"error: {why}"})
                continue
            if meta["status"] != "ok":
                kind = "desynced" if meta["status"] == "desynced" else "map_error"
                bad.append({"file": str(f), "kind": kind, "reason": f"{kind}: {meta['reason']}"})
                continue
            episodes.append(meta | {"key": key, "file": str(f), "replay_id": rid})
            if mkey is not None:
                mmeta = _meta_or_none(cache, mkey)
                if mmeta is not None and mmeta["status"] == "ok":
                    episodes.append(mmeta | {"key": mkey, "file": str(f), "source_level":
                                             meta["level_hash"], "replay_id": rid + "#mirror"})
                else:
                    rejected += 1
        for ep in episodes:
            ep.setdefault("source_level", ep["level_hash"])
        return episodes, bad, rejected

    simulate()
    episodes, bad_entries, mirror_rejected = collect()
    store_key = _store_key([e["key"] for e in episodes], obs_config)
    store_name = STORE_PREFIX + store_key
    old = _read_old_manifest(out)
    store_path = out / store_name
    store_written = False
    index = None
    if old and old.get("store") == store_name and store_path.is_dir() and not force:
        try:
            index = check_store(out, old, full=True, trust_stamps=not verify)
        except StoreCorruptError as exc:
            _replace_store(store_path, str(exc))
    elif store_path.exists():
        _replace_store(store_path, "forced rebuild" if force else "not committed by a manifest")
    if index is None:
        damaged = _damaged_entries(cache, episodes, obs_config)
        if damaged:
            redo = {rid for rid, pair in keys.items() if damaged & set(pair)}
            simulate(redo)
            episodes, bad_entries, mirror_rejected = collect()
            store_key = _store_key([e["key"] for e in episodes], obs_config)
            store_name = STORE_PREFIX + store_key
            store_path = out / store_name
        if not episodes:
            raise ValueError("no usable episodes: every replay was skipped "
                             f"({len(skipped) + len(bad_entries)} files); see the reasons "
                             "above")
        from torchrl_bc.data.store import write_store

        write_store(store_path, episodes, cache, obs_config, tmp_parent=out)
        index = store_index(store_path)
        store_written = True
    skipped += bad_entries
    splits = assign_splits([e["source_level"] for e in episodes],
                           [e["replay_hash"] for e in episodes], val_fraction=val_fraction,
                           val_replay_fraction=val_replay_fraction, seed=split_seed)
    manifest = build_manifest(
        store=store_name, episodes=episodes, splits=splits, skipped=skipped,
        files=len(files), mirror_rejected=mirror_rejected, config=obs_config,
        data={"replays": [str(p) for p in replay_dirs], "mirror": mirror, "trim_idle": trim_idle,
              **({"release_jumps": True} if release_jumps else {}),
              "val_fraction": val_fraction, "val_replay_fraction": val_replay_fraction,
              "split_seed": split_seed, "cache_dir": str(cache.root)})
    manifest["store_files"] = index
    write_manifest(out, manifest)
    _clean_out_dir(out, store_name)
    if prune:
        cache.prune({k for pair in keys.values() for k in pair if k})
    result = BuildResult(out, manifest, simulated, [r for _, r, _ in replays
                                                    if r not in set(simulated)],
                         store_written, time.perf_counter() - t0)
    if verbose:
        print(summary_table(manifest), file=sys.stderr)
        print(f"simulated {len(simulated)} replay(s), {len(result.cached)} from cache, store "
              f"{'written' if store_written else 'unchanged'}, {result.seconds:.1f} s",
              file=sys.stderr)
    return result


def _read_old_manifest(out: Path) -> dict[str, Any] | None:
    """The previous manifest, or None when absent or unreadable (then the store is rewritten)."""
    if not (out / "manifest.json").is_file():
        return None
    try:
        old = read_manifest(out)
    except (OSError, ValueError) as exc:
        print(f"{out / 'manifest.json'}: unreadable ({exc}); rewriting the dataset",
              file=sys.stderr)
        return None
    return old if isinstance(old, dict) else None
