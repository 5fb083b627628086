"""``manifest.json``: what a dataset holds and why, written atomically as the build's last step.

It names the store directory it describes, so a reader either sees the previous complete
dataset or the new one. It records the used episodes (steps, ticks, action counts, split), the
skipped files with their reason (``format``, ``duplicate``, ``desynced``, ``map_error``), the
configs, the versions and the split; ``manifest_hash`` (over everything but the timestamp
and the store index) identifies the dataset in checkpoints.

Integrity. ``store_files`` lists every file of the store with its size, sha256 and stamps
(``mtime_ns``, ``ctime_ns``: any write, truncation, replacement or ``touch`` changes the
ctime, which no user call can set back), recorded when the store is committed. Opening a
dataset (:func:`check_store` with ``full=False``) compares the file set and sizes: it costs
one ``stat`` per file and catches truncated or swapped memmaps and planted files (a pickle
above all). ``prepare`` (``full=True, trust_stamps=True``) re-hashes every file whose stamps
changed since commit, and ``prepare --verify`` / ``full=True`` alone re-hash every byte:
sha256 runs at ~1.7 GB/s here, too slow to pay on every warm re-run or training start-up of
a multi-GB store.

File names. The manifest is strict UTF-8 JSON. A name that is not valid UTF-8 (POSIX names are
bytes; Python carries the bad bytes as lone surrogates) is written in ``file`` in the
``backslashreplace`` form (byte 0xE9 becomes the four characters ``\xe9``), readable by any
tool, and the exact bytes go to ``file_bytes`` (hex) so :func:`row_path` can return the
original path. Every other string goes through :func:`text` the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from torchrl_bc.io import atomic_write_bytes, json_safe, text
from torchrl_bc.obs.config import ObservationConfig

__all__ = ["StoreCorruptError", "build_manifest", "check_store", "file_entry", "manifest_hash",
           "read_manifest", "row_path", "store_index", "summary_table", "write_manifest"]

MANIFEST = "manifest.json"
STORE_PREFIX = "store-"  # a store directory's name: the prefix, then 16 hex digits
FORMAT = 1
_CHUNK = 1 << 22


class StoreCorruptError(ValueError):
    """A store on disk no longer matches what its manifest recorded at commit."""


def file_entry(path: str | os.PathLike[str]) -> dict[str, str]:
    """``{"file": text}``, plus ``"file_bytes"`` (hex) when the name is not valid UTF-8."""
    name = os.fspath(path)
    out = {"file": text(name)}
    if out["file"] != name:
        out["file_bytes"] = os.fsencode(name).hex()
    return out


def row_path(row: dict[str, Any]) -> Path:
    """The exact path of a manifest row (episode or skipped file), undoing :func:`file_entry`."""
    if "file_bytes" in row:
        return Path(os.fsdecode(bytes.fromhex(row["file_bytes"])))
    return Path(row["file"])


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _store_files(store: Path) -> dict[str, Path]:
    """Every entry under ``store`` by relative posix path (directories excluded)."""
    return {p.relative_to(store).as_posix(): p for p in sorted(store.rglob("*"))
            if not p.is_dir() or p.is_symlink()}


def _stamps(st: os.stat_result) -> dict[str, int]:
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}


def store_index(store: Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"size", "sha256", "mtime_ns", "ctime_ns"}}`` of a store."""
    return {rel: {**_stamps(p.stat()), "sha256": _sha256_file(p)}
            for rel, p in _store_files(store).items()}


def check_store(out_dir: str | Path, manifest: dict[str, Any], *, full: bool = False,
                trust_stamps: bool = False) -> dict[str, dict[str, Any]]:
    """Raise :class:`StoreCorruptError` naming the first defect of the manifest's store.

    Always: the store exists, holds exactly the recorded files (nothing extra, e.g. a planted
    ``other.pickle``), each a regular file of the recorded size. ``full`` also compares every
    file's sha256 (see the module docstring for the cost), except, with ``trust_stamps``, those
    whose stamps are still the ones recorded at commit. Returns the index with the current
    stamps of every file whose content was hashed and matched (a copied store then needs one
    full hash, not one per run).
    """
    name = manifest.get("store")
    if not isinstance(name, str) or not re.fullmatch(STORE_PREFIX + r"[0-9a-f]{16}", name):
        raise StoreCorruptError(f"{Path(out_dir) / MANIFEST}: store name {name!r} is not one "
                                "a build writes")
    store = Path(out_dir) / name
    index = manifest.get("store_files")
    if not store.is_dir():
        raise StoreCorruptError(f"{store}: store directory is missing")
    if index is None:
        raise StoreCorruptError(f"{Path(out_dir) / MANIFEST} records no store checksums "
                                "(written by an older version); run `torchrl-bc prepare` again")
    if not isinstance(index, dict) or not all(
            isinstance(r, dict) and isinstance(r.get("size"), int)
            and isinstance(r.get("sha256"), str) for r in index.values()):
        raise StoreCorruptError(f"{Path(out_dir) / MANIFEST}: malformed store_files index")
    found = _store_files(store)
    extra = sorted(set(found) - set(index))
    if extra:
        raise StoreCorruptError(f"{store}: unexpected file(s) {extra[:3]} not written by the "
                                "build (a store never holds pickles or other extras)")
    checked: dict[str, dict[str, Any]] = {}
    for rel, rec in index.items():
        p = found.get(rel)
        if p is None:
            raise StoreCorruptError(f"{store / rel}: missing from the store")
        if p.is_symlink() or not p.is_file():
            raise StoreCorruptError(f"{store / rel}: not a regular file")
        st = p.stat()
        if st.st_size != rec["size"]:
            raise StoreCorruptError(f"{store / rel}: {st.st_size} bytes, {rec['size']} recorded "
                                    "at commit (truncated or replaced)")
        same = _stamps(st) == {k: rec.get(k) for k in ("size", "mtime_ns", "ctime_ns")}
        if full and not (trust_stamps and same):
            if _sha256_file(p) != rec["sha256"]:
                raise StoreCorruptError(f"{store / rel}: content differs from the checksum "
                                        "recorded at commit (corrupted)")
            rec = {**rec, **_stamps(st)}
        checked[rel] = rec
    return checked


def _versions() -> dict[str, str]:
    from importlib import metadata

    from torchrl_bc import __version__
    from torchrl_bc.data.cache import DATA_VERSION, STORE_VERSION
    from torchrl_bc.obs.config import OBS_VERSION
    from torchrl_bc.sim import SIM_VERSION

    out = {"torchrl_bc": __version__, "sim": SIM_VERSION, "obs": OBS_VERSION,
           "data": DATA_VERSION, "store": STORE_VERSION}
    for pkg in ("torch", "torchrl", "tensordict"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def build_manifest(*, store: str, episodes: list[dict[str, Any]], splits: list[str],
                   skipped: list[dict[str, str]], files: int, mirror_rejected: int,
                   config: ObservationConfig, data: dict[str, Any]) -> dict[str, Any]:
    from torchrl_bc.replay.actions import ACTION_NAMES

    rows = []
    totals: Counter[str] = Counter()
    levels: dict[str, str] = {}
    for ep, split in zip(episodes, splits, strict=True):
        counts = dict(zip(ACTION_NAMES, ep["action_counts"], strict=True))
        rows.append({"id": ep["replay_id"], **file_entry(ep["file"]), "key": ep["key"],
                     "replay_hash": ep["replay_hash"], "level_hash": ep["level_hash"],
                     "source_level": ep["source_level"], "mirrored": ep["mirrored"],
                     "success": ep["success"], "steps": ep["n_steps"], "ticks": ep["n_ticks"],
                     "actions": counts, "split": split})
        for k in ("idle_ticks_cut", "jump_ticks_released"):
            if k in ep:
                rows[-1][k] = ep[k]
        totals.update(counts)
        levels.setdefault(ep["source_level"], split)
    split_counts = {s: {"episodes": sum(1 for x in splits if x == s),
                        "steps": sum(r["steps"] for r in rows if r["split"] == s),
                        "levels": len({r["source_level"] for r in rows if r["split"] == s})}
                    for s in ("train", "val", "val_replay")}
    manifest = {
        "format": FORMAT,
        "store": store,
        "config": {"observation": config.signature(), "data": data},
        "versions": _versions(),
        "totals": {"files": files, "used_replays": sum(not r["mirrored"] for r in rows),
                   "episodes": len(rows), "skipped": len(skipped),
                   "mirror_rejected": mirror_rejected, "steps": sum(r["steps"] for r in rows),
                   "ticks": sum(r["ticks"] for r in rows), "levels": len(levels),
                   "actions": {a: totals[a] for a in ACTION_NAMES}},
        "split": {"by": "level", "seed": data["split_seed"],
                  "val_fraction": data["val_fraction"],
                  "val_replay_fraction": data["val_replay_fraction"], "counts": split_counts,
                  "val_levels": sorted(h for h, s in levels.items() if s == "val")},
        "episodes": rows,
        "skipped": [{**s, **file_entry(s["file"])} for s in skipped],
    }
    manifest = json_safe(manifest)
    manifest["manifest_hash"] = manifest_hash(manifest)
    manifest["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return manifest


def manifest_hash(manifest: dict[str, Any]) -> str:
    """Hash of the dataset's content and config (not of when or where it was built)."""
    body = {k: v for k, v in manifest.items()
            if k not in ("created", "manifest_hash", "store_files")}
    body["config"] = {**body["config"], "data": {k: v for k, v in body["config"]["data"].items()
                                                 if k not in ("cache_dir", "replays")}}
    body["episodes"] = [{k: v for k, v in e.items() if k != "file"} for e in body["episodes"]]
    body["skipped"] = [{**s, "file": Path(s["file"]).name} for s in body["skipped"]]
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    """Atomically write strict UTF-8 JSON (any leftover undecodable text is escaped)."""
    payload = json.dumps(json_safe(manifest), indent=1, ensure_ascii=False).encode("utf-8")
    atomic_write_bytes(Path(out_dir) / MANIFEST, payload)


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `torchrl-bc prepare` first")
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a manifest ({exc}); run `torchrl-bc prepare` again") \
            from exc
    if not isinstance(manifest, dict) or not {"store", "episodes"} <= manifest.keys():
        raise ValueError(f"{path}: not a manifest; run `torchrl-bc prepare` again")
    return manifest


def summary_table(manifest: dict[str, Any]) -> str:
    """A short human-readable report: totals, split, action mix and every skipped file."""
    t = manifest["totals"]
    lines = [f"{'files':<16}{t['files']:>8}", f"{'used replays':<16}{t['used_replays']:>8}",
             f"{'episodes':<16}{t['episodes']:>8}  (incl. mirrored; "
             f"{t['mirror_rejected']} mirrors rejected)",
             f"{'skipped':<16}{t['skipped']:>8}", f"{'levels':<16}{t['levels']:>8}",
             f"{'steps':<16}{t['steps']:>8}", f"{'ticks':<16}{t['ticks']:>8}", "",
             f"{'split':<12}{'levels':>8}{'episodes':>10}{'steps':>9}"]
    for name, c in manifest["split"]["counts"].items():
        if c["episodes"] or name != "val_replay":
            lines.append(f"{name:<12}{c['levels']:>8}{c['episodes']:>10}{c['steps']:>9}")
    steps = max(1, t["steps"])
    lines += ["", "actions  " + "  ".join(f"{a} {n / steps:.1%}" for a, n in t["actions"].items())]
    if manifest["skipped"]:
        lines += ["", "skipped files:"]
        lines += [f"  {Path(s['file']).name}: {s['reason']}" for s in manifest["skipped"]]
    return "\n".join(lines)
