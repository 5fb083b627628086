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
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from torchrl_bc.io import atomic_write
from torchrl_bc.obs.config import ObservationConfig
from torchrl_bc.obs.reward import RewardConfig
from torchrl_bc.replay.format import atomic_write_bytes

__all__ = ["DATA_VERSION", "STORE_VERSION", "EpisodeCache", "episode_key", "obs_signature_hash"]

#: Bump when the executor -> entry conversion or the entry layout changes.
DATA_VERSION = "1"
#: Bump when the consolidated store layout changes (part of the store key). Kept here, not in
#: ``store``, so that the warm path never imports torch.
STORE_VERSION = "1"

#: Arrays of an entry besides the observation keys.
STEP_ARRAYS: tuple[str, ...] = ("actions", "agreement", "ticks", "rewards", "terminated",
                                "truncated")
GRAPH_ARRAYS: tuple[str, ...] = ("node_type", "node_kind", "node_pos", "edge_index", "edge_type",
                                 "cell_to_node")


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def obs_signature_hash(config: ObservationConfig) -> str:
    """Short hash of the observation signature plus the simulator version."""
    from torchrl_bc.sim import SIM_VERSION

    return _sha({"obs": config.signature(), "sim": SIM_VERSION})[:16]


def episode_key(replay_hash: str, config: ObservationConfig, *, mirrored: bool = False,
                reward: RewardConfig | None = None, trim_idle: bool = False) -> str:
    """Cache key of one (possibly mirrored, possibly idle-trimmed) replay under ``config``."""
    from torchrl_bc.sim import SIM_VERSION

    content = {"replay": replay_hash, "obs": config.signature(), "sim": SIM_VERSION,
               "reward": asdict(reward or RewardConfig()), "mirrored": mirrored,
               "data": DATA_VERSION}
    if trim_idle:  # only when on, so keys of untrimmed episodes stay what they were
        content["trim_idle"] = True
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

    def meta(self, key: str) -> dict[str, Any]:
        return json.loads(self.meta_path(key).read_text())

    def arrays(self, key: str) -> dict[str, np.ndarray]:
        with np.load(self.episodes / f"{key}.npz", allow_pickle=False) as z:
            return {name: z[name] for name in z.files}

    def put(self, key: str, meta: dict[str, Any],
            arrays: dict[str, np.ndarray] | None = None) -> None:
        """Store an entry; the arrays first, the metadata (commit point) last."""
        if arrays is not None:
            _write_npz(self.episodes / f"{key}.npz", arrays)
        atomic_write_bytes(self.meta_path(key), json.dumps(meta, sort_keys=True).encode())

    def level_path(self, level_hash: str, sig: str) -> Path:
        return self.levels / f"{level_hash}-{sig}.npz"

    def put_level(self, level_hash: str, sig: str, arrays: dict[str, np.ndarray]) -> None:
        path = self.level_path(level_hash, sig)
        if not path.is_file():
            _write_npz(path, arrays)

    def level(self, level_hash: str, sig: str) -> dict[str, np.ndarray]:
        with np.load(self.level_path(level_hash, sig), allow_pickle=False) as z:
            return {name: z[name] for name in z.files}

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
