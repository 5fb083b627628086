"""``manifest.json``: what a dataset holds and why, written atomically as the build's last step.

It names the store directory it describes, so a reader either sees the previous complete
dataset or the new one. It records the used episodes (steps, ticks, action counts, split), the
skipped files with their reason (``format``, ``duplicate``, ``desynced``, ``map_error``), the
configs, the versions and the split; ``manifest_hash`` (over everything but the timestamp)
identifies the dataset in checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from torchrl_bc.obs.config import ObservationConfig
from torchrl_bc.replay.format import atomic_write_bytes

__all__ = ["build_manifest", "manifest_hash", "read_manifest", "summary_table", "write_manifest"]

MANIFEST = "manifest.json"
FORMAT = 1


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
        rows.append({"id": ep["replay_id"], "file": ep["file"], "key": ep["key"],
                     "replay_hash": ep["replay_hash"], "level_hash": ep["level_hash"],
                     "source_level": ep["source_level"], "mirrored": ep["mirrored"],
                     "success": ep["success"], "steps": ep["n_steps"], "ticks": ep["n_ticks"],
                     "actions": counts, "split": split})
        if "idle_ticks_cut" in ep:
            rows[-1]["idle_ticks_cut"] = ep["idle_ticks_cut"]
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
        "skipped": skipped,
    }
    manifest["manifest_hash"] = manifest_hash(manifest)
    manifest["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return manifest


def manifest_hash(manifest: dict[str, Any]) -> str:
    """Hash of the dataset's content and config (not of when or where it was built)."""
    body = {k: v for k, v in manifest.items() if k not in ("created", "manifest_hash")}
    body["config"] = {**body["config"], "data": {k: v for k, v in body["config"]["data"].items()
                                                 if k not in ("cache_dir", "replays")}}
    body["episodes"] = [{k: v for k, v in e.items() if k != "file"} for e in body["episodes"]]
    body["skipped"] = [{**s, "file": Path(s["file"]).name} for s in body["skipped"]]
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    atomic_write_bytes(Path(out_dir) / MANIFEST, json.dumps(manifest, indent=1).encode())


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `torchrl-bc prepare` first")
    return json.loads(path.read_text())


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
