"""Content-addressed cache of simulated episodes, shared by every dataset built from it.

An entry's key hashes everything that determines its arrays: the replay's canonical content hash,
the observation signature (``frame_skip``, modalities, ``OBS_VERSION``), ``SIM_VERSION``, the
reward config, mirroring and :data:`DATA_VERSION`. Editing a replay or changing any of those
yields a new key, so a stale entry can never be read; an unchanged input hits its old entry and
is never simulated again.

Layout under ``cache_dir``::

    episodes/<key>.npz   arrays of one episode (deflate level 1: frames are mostly flat)
    episodes/<key>.json  its metadata; written last, so it is the entry's commit point
    levels/<level_hash>-<obs_sig>.npz   one level's static graph

Every file is written to a temp name and renamed, so a build killed at any instant leaves either
a whole entry or none. Outcomes that are deterministic but unusable (desynced, map errors) are
cached as metadata only, so re-runs do not simulate them either.

Integrity: the metadata records its own key and the sha256 and size of its npz, so flipped
bytes, a truncated file or an npz swapped in from another entry are detected
(:meth:`EpisodeCache.check`); a level file carries its own name inside (``_id``), and zip CRCs
catch flipped bytes in it. Hashing an entry costs a fraction of decompressing it, so it is
checked every time its arrays are read. A bad entry is dropped and re-simulated by the build.
Entries written before checksums existed count as bad (re-simulated once).
:meth:`EpisodeCache.clean_temp` removes temp files that killed runs left behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from torchrl_bc.io import atomic_write, atomic_write_bytes, json_safe
from torchrl_bc.obs.config import ObservationConfig
from torchrl_bc.obs.reward import RewardConfig

__all__ = ["DATA_VERSION", "STORE_VERSION", "CacheCorruptError", "EpisodeCache", "episode_key",
           "obs_signature_hash"]

#: Temp files (``.<name>.<random>.tmp``, see ``torchrl_bc.io.atomic_write``) older than this are
#: leftovers of killed runs; younger ones may belong to a build running right now.
STALE_TEMP_SECONDS = 3600.0


class CacheCorruptError(ValueError):
    """A cache entry or level file does not match what was recorded when it was written."""

#: Bump when the executor -> entry conversion or the entry layout changes.
DATA_VERSION = "1"
#: Bump when the consolidated store layout changes (part of the store key). Kept here, not in
#: ``store``, so that the warm path never imports torch.
STORE_VERSION = "1"


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def obs_signature_hash(config: ObservationConfig) -> str:
    """Short hash of the observation signature plus the simulator version."""
    from torchrl_bc.sim import SIM_VERSION

    return _sha({"obs": config.signature(), "sim": SIM_VERSION})[:16]


def episode_key(replay_hash: str, config: ObservationConfig, *, mirrored: bool = False,
                reward: RewardConfig | None = None, trim_idle: bool = False,
                release_jumps: bool = False) -> str:
    """Cache key of one (possibly mirrored, idle-trimmed, jump-released) replay under
    ``config``."""
    from torchrl_bc.sim import SIM_VERSION

    content = {"replay": replay_hash, "obs": config.signature(), "sim": SIM_VERSION,
               "reward": asdict(reward or RewardConfig()), "mirrored": mirrored,
               "data": DATA_VERSION}
    if trim_idle:  # only when on, so keys of untrimmed episodes stay what they were
        content["trim_idle"] = True
    if release_jumps:  # likewise
        content["release_jumps"] = True
    return _sha(content)


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Atomic npz with fast deflate (np.savez_compressed has no level knob and is 5x slower)."""

    def write(fh) -> None:
        with zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for name, arr in arrays.items():
                with zf.open(f"{name}.npy", "w", force_zip64=True) as out:
                    np.lib.format.write_array(out, np.asarray(arr, order="C"),
                                              allow_pickle=False)

    atomic_write(path, write)


class EpisodeCache:
    """Read and write cache entries under one directory (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.episodes = self.root / "episodes"
        self.levels = self.root / "levels"

    def meta_path(self, key: str) -> Path:
        return self.episodes / f"{key}.json"

    def has(self, key: str) -> bool:
        return self.meta_path(key).is_file()

    def npz_path(self, key: str) -> Path:
        return self.episodes / f"{key}.npz"

    def meta(self, key: str) -> dict[str, Any]:
        """The entry's metadata; :class:`CacheCorruptError` if unreadable or another key's."""
        path = self.meta_path(key)
        try:
            meta = json.loads(path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CacheCorruptError(f"{path}: unreadable cache metadata ({exc})") from exc
        if not isinstance(meta, dict) or "status" not in meta:
            raise CacheCorruptError(f"{path}: not cache metadata")
        if meta.get("key", key) != key:
            raise CacheCorruptError(f"{path}: holds the entry of key {meta['key']!r}")
        return meta

    def check(self, key: str) -> None:
        """Raise :class:`CacheCorruptError` unless the entry is whole and its own."""
        meta = self.meta(key)
        if meta["status"] != "ok":
            return
        if "npz_sha256" not in meta:
            raise CacheCorruptError(f"{self.meta_path(key)}: entry predates checksums")
        self._npz_bytes(key, meta)

    def _npz_bytes(self, key: str, meta: dict[str, Any]) -> bytes:
        path = self.npz_path(key)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CacheCorruptError(f"{path}: cannot read ({exc.strerror or exc})") from exc
        want = meta.get("npz_sha256")
        if want is not None and (len(data) != meta.get("npz_size")
                                 or hashlib.sha256(data).hexdigest() != want):
            raise CacheCorruptError(f"{path}: {len(data)} bytes whose sha256 differs from the "
                                    "one recorded with the entry (corrupted or swapped)")
        return data

    def arrays(self, key: str) -> dict[str, np.ndarray]:
        """The entry's arrays, checked against the recorded checksum first."""
        data = self._npz_bytes(key, self.meta(key))
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                return {name: z[name] for name in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise CacheCorruptError(f"{self.npz_path(key)}: unreadable ({exc})") from exc

    def put(self, key: str, meta: dict[str, Any],
            arrays: dict[str, np.ndarray] | None = None) -> None:
        """Store an entry; the arrays first, the metadata (commit point) last."""
        meta = {**meta, "key": key}
        if arrays is not None:
            path = self.npz_path(key)
            _write_npz(path, arrays)
            data = path.read_bytes()  # just written: served from the page cache
            meta |= {"npz_sha256": hashlib.sha256(data).hexdigest(), "npz_size": len(data)}
        payload = json.dumps(json_safe(meta), sort_keys=True, ensure_ascii=False)
        atomic_write_bytes(self.meta_path(key), payload.encode("utf-8"))

    def drop(self, key: str) -> None:
        """Delete an entry (metadata first, so a half-deleted entry is simply absent)."""
        self.meta_path(key).unlink(missing_ok=True)
        self.npz_path(key).unlink(missing_ok=True)

    def level_path(self, level_hash: str, sig: str) -> Path:
        return self.levels / f"{level_hash}-{sig}.npz"

    def put_level(self, level_hash: str, sig: str, arrays: dict[str, np.ndarray]) -> None:
        path = self.level_path(level_hash, sig)
        if not path.is_file():
            ident = np.frombuffer(f"{level_hash}-{sig}".encode(), np.uint8)
            _write_npz(path, {**arrays, "_id": ident})

    def level(self, level_hash: str, sig: str) -> dict[str, np.ndarray]:
        """A level's static graph; :class:`CacheCorruptError` if damaged or another level's."""
        path = self.level_path(level_hash, sig)
        try:
            with np.load(path, allow_pickle=False) as z:
                out = {name: z[name] for name in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise CacheCorruptError(f"{path}: unreadable level graph ({exc})") from exc
        ident = out.pop("_id", None)
        if ident is None or ident.tobytes() != f"{level_hash}-{sig}".encode():
            raise CacheCorruptError(f"{path}: holds another level's graph (or predates ids)")
        return out

    def clean_temp(self, older_than: float = STALE_TEMP_SECONDS) -> int:
        """Delete temp files of killed runs (older than ``older_than`` seconds); the count."""
        removed = 0
        now = time.time()
        for folder in (self.episodes, self.levels):
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if path.name.startswith(".") and path.name.endswith(".tmp"):
                    try:
                        if now - path.lstat().st_mtime > older_than:
                            path.unlink()
                            removed += 1
                    except FileNotFoundError:  # a concurrent build committed or removed it
                        pass
        return removed

    def prune(self, keep: set[str]) -> int:
        """Delete episode entries whose key is not in ``keep`` (and stray temp files)."""
        removed = 0
        if not self.episodes.is_dir():
            return 0
        for path in self.episodes.iterdir():
            key = path.name.split(".")[0]
            if path.name.startswith(".") or key not in keep:
                path.unlink(missing_ok=True)
                removed += path.suffix == ".json"
        return removed
