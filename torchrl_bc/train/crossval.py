"""Level-disjoint K-fold cross-validation: every winnable level scored by a policy that never
saw it.

A success rate on levels the policy trained on says little about what it learned, and a single
held-out split of ~100 human levels leaves a handful of test levels. Here the levels are grouped
(a group is a map together with its mirror image, so duplicates and mirrored copies of one
level always share a fold), the groups are dealt into K folds by a seeded hash, and fold k's
policy is trained on the replays of the other folds only. Its ``best.pt`` is selected on the
internal validation split of those training levels (``data.val_fraction``), never on the
held-out fold; ``select="last"`` uses ``last.pt`` instead. Every level is then rolled out once,
greedily, by the one policy it was held out from, which gives one held-out success rate over
all winnable levels, with a Wilson 95% interval. The same policies' success on their own
training levels and a random sticky-input player on the same levels and caps frame it.

Files that cannot be read, and maps none of whose replays wins (the two one-byte-short shared
replays), are left out of training *and* scoring and listed by name with the reason.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torchrl_bc.io import atomic_write
from torchrl_bc.progress import progress_write
from torchrl_bc.sim.level import DEFAULT_MAX_TICKS, Level, map_hash
from torchrl_bc.train.config import RunConfig

__all__ = ["CrossvalResult", "HumanLevel", "HumanLevelScan", "assign_folds", "crossval",
           "level_group", "scan_human_levels", "wilson_interval"]

SELECT = ("best", "last")


@dataclass(frozen=True)
class HumanLevel:
    """One distinct map with at least one winning demo, and every readable replay of it."""

    name: str  # stem of its first replay file (sorted order)
    map_hash: str
    group: str  # shared by the map and its mirror image
    map_data: bytes = field(repr=False)
    demo_ticks: int  # shortest winning demo
    files: tuple[str, ...]

    def as_level(self) -> Level:
        """The one level record that evaluation plays (its cap from the shortest demo)."""
        return Level(self.name, self.map_data, self.demo_ticks)


@dataclass
class HumanLevelScan:
    levels: list[HumanLevel]
    skipped: list[tuple[str, str]]  # (file, reason)


def level_group(map_data: bytes) -> str:
    """Hash shared by a map and its horizontal mirror (the smaller of the two map hashes)."""
    from torchrl_bc.replay.mirror import mirror_map

    a = map_hash(map_data)
    try:
        b = map_hash(mirror_map(map_data))
    except ValueError:  # a map the mirror cannot parse has no mirror twin to join
        return a
    return min(a, b)


def scan_human_levels(dirs: Sequence[str | Path], exclude: Path | None = None
                      ) -> HumanLevelScan:
    """Read every ``*.replay`` under ``dirs`` (but not under ``exclude``, the output
    directory with its per-fold links), re-simulate it and group files by map.

    A file that cannot be read is skipped with its defect; a map none of whose replays wins
    on its last input is skipped file by file. Nothing is dropped without a reason."""
    from torchrl_bc.data.build import find_replays
    from torchrl_bc.replay.format import ReplayFormatError, read_replay
    from torchrl_bc.sim import MapFormatError, Simulator

    skipped: list[tuple[str, str]] = []
    by_map: dict[str, dict[str, Any]] = {}
    skip_root = Path(os.path.abspath(exclude)) if exclude is not None else None
    for f in find_replays(dirs):
        if skip_root is not None and Path(os.path.abspath(f)).is_relative_to(skip_root):
            continue
        try:
            rep = read_replay(f)
            won = Simulator(rep.map_data, source=str(f)).run_inputs(rep.inputs).win_frame \
                == rep.n_ticks
        except (ReplayFormatError, MapFormatError, ValueError) as exc:
            skipped.append((str(f), f"unreadable: {exc}"))
            continue
        h = map_hash(rep.map_data)
        entry = by_map.setdefault(h, {"name": f.stem, "data": rep.map_data, "files": [],
                                      "demo": 0})
        entry["files"].append(str(f))
        if won and (entry["demo"] == 0 or rep.n_ticks < entry["demo"]):
            entry["demo"] = rep.n_ticks
    levels = []
    for h, e in by_map.items():
        if e["demo"] == 0:
            skipped.extend((f, "no replay of its map wins on re-simulation (not winnable "
                               "as recorded)") for f in e["files"])
            continue
        levels.append(HumanLevel(e["name"], h, level_group(e["data"]), e["data"], e["demo"],
                                 tuple(e["files"])))
    levels.sort(key=lambda lv: (lv.name, lv.map_hash))
    return HumanLevelScan(levels, skipped)


def assign_folds(groups: Sequence[str], k: int, seed: int = 0) -> dict[str, int]:
    """Fold of each group: groups ordered by ``sha256(seed:group)`` and dealt round-robin, so
    fold sizes differ by at most one and the assignment depends only on the seed and the set
    of groups."""
    distinct = sorted(set(groups),
                      key=lambda g: hashlib.sha256(f"{seed}:fold:{g}".encode()).digest())
    if k < 2:
        raise ValueError(f"--folds must be >= 2, got {k}")
    if k > len(distinct):
        raise ValueError(f"--folds {k} exceeds the {len(distinct)} distinct level groups")
    return {g: i % k for i, g in enumerate(distinct)}


def wilson_interval(wins: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (sensible at 0 and n wins too)."""
    if n <= 0:
        return (float("nan"), float("nan"))
    p = wins / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass
class CrossvalResult:
    summary: dict[str, Any]
    rows: list[dict[str, Any]]

    @property
    def heldout_success_rate(self) -> float:
        return float(self.summary["heldout_success_rate"])


def _link_files(levels: Sequence[HumanLevel], dest: Path) -> int:
    """Populate ``dest`` with symlinks to the replays of ``levels`` (nothing else), replacing
    whatever an earlier run left there; returns the number of files."""
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.iterdir():
        if old.is_symlink() or old.suffix == ".replay":
            old.unlink()
    n = 0
    used: set[str] = set()
    for lv in levels:
        for f in lv.files:
            src = Path(f).resolve()
            name = src.name
            if name in used:  # same file name in two data directories
                name = f"{hashlib.sha256(str(src).encode()).hexdigest()[:8]}-{name}"
            used.add(name)
            (dest / name).symlink_to(src)
            n += 1
    return n


def _fold_config(cfg: RunConfig, replays: Path, cache: Path) -> RunConfig:
    """The run config of one fold: its own replays; one episode cache shared by all folds
    (keyed by replay bytes, so each demo is simulated once) unless the config names one."""
    raw = cfg.to_dict()
    raw["data"]["replays"] = [str(replays)]
    if not raw["data"]["cache_dir"]:
        raw["data"]["cache_dir"] = str(cache)
    return RunConfig.from_dict(raw)


def _fmt_s(s: float) -> str:
    s = round(s)
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _say(msg: str) -> None:
    progress_write(msg)


def crossval(cfg: RunConfig, data_dirs: Sequence[str | Path], folds: int, out: str | Path, *,
             fold_seed: int = 0, select: str = "best", device: str = "auto",
             tick_factor: float = 2.0, max_ticks: int = DEFAULT_MAX_TICKS,
             random_episodes: int = 4, train_levels: int = -1, resume: bool = False,
             verbose: bool = False, progress: Callable[[str], None] | None = _say
             ) -> CrossvalResult:
    """Train ``folds`` policies on level-disjoint folds and score every winnable level with
    the policy it was held out from; writes ``per_level.json``, ``per_level.csv`` and
    ``summary.json`` under ``out`` (one ``fold-K/`` run directory per fold, and each held-out
    episode as ``fold-K/heldout/<level>.replay``).

    ``train_levels`` caps the training levels each fold's policy is also scored on
    (-1 = all, 0 = none); ``verbose`` passes the trainer's own log through."""
    from torchrl_bc.levels.random_play import random_wins
    from torchrl_bc.train.checkpoint import load_policy
    from torchrl_bc.train.distributed import resolve_device
    from torchrl_bc.train.evaluate import death_kind_of, rollout_levels, save_episode_replays
    from torchrl_bc.train.pipeline import pretrain

    say = progress or (lambda _msg: None)
    if select not in SELECT:
        raise ValueError(f"select must be one of {SELECT}, got {select!r}")
    out = Path(out)
    t_start = time.perf_counter()
    scan = scan_human_levels([Path(d) for d in data_dirs], exclude=out)
    for f, why in scan.skipped:
        say(f"skipped {Path(f).name}: {why}")
    if not scan.levels:
        raise ValueError(f"no winnable level in {[str(d) for d in data_dirs]}")
    fold_of_group = assign_folds([lv.group for lv in scan.levels], folds, fold_seed)
    fold_of = {lv.map_hash: fold_of_group[lv.group] for lv in scan.levels}
    say(f"crossval: {len(scan.levels)} winnable levels in {len(fold_of_group)} groups, "
        f"{folds} folds, {len(scan.skipped)} files skipped")
    effective = "last" if select == "best" and cfg.data.val_fraction <= 0 else select
    if effective != select:
        say("data.val_fraction is 0: no validation split to select best.pt on, using last.pt")
    dev = resolve_device(device)

    rows: dict[str, dict[str, Any]] = {
        lv.map_hash: {"name": lv.name, "map_hash": lv.map_hash, "group": lv.group,
                      "fold": fold_of[lv.map_hash], "files": len(lv.files),
                      "demo_ticks": lv.demo_ticks,
                      "cap": lv.as_level().cap(tick_factor, max_ticks),
                      "heldout_won": None, "heldout_died": None, "heldout_stuck": None,
                      "heldout_death_cause": None, "heldout_death_kind": None,
                      "heldout_ticks": None,
                      "heldout_won_flat_cap": None, "heldout_won_bc": None,
                      "train_wins": 0, "train_evals": 0}
        for lv in scan.levels}
    per_fold: list[dict[str, Any]] = []
    for k in range(folds):
        t0 = time.perf_counter()
        test = [lv for lv in scan.levels if fold_of[lv.map_hash] == k]
        trained = [lv for lv in scan.levels if fold_of[lv.map_hash] != k]
        fold_dir = out / f"fold-{k}"
        n_files = _link_files(trained, fold_dir / "replays")
        # the held-out levels' own replays, for scoring the fold's policy elsewhere
        # (`evaluate --levels`, `finetune_ppo.py --eval-levels`)
        _link_files(test, fold_dir / "heldout_levels")
        say(f"fold {k + 1}/{folds}: training on {len(trained)} levels ({n_files} replays), "
            f"holding out {len(test)}")
        # The config's whole recipe (its generated levels, BC, its DAgger rounds), as
        # scripts/train_bc.py runs it, on this fold's training replays only.
        best = pretrain(_fold_config(cfg, fold_dir / "replays", out / ".bc_data"),
                        fold_dir / "run", device=device, resume=resume, verbose=verbose)
        # The last DAgger round when one ran (dagger.levels_from: replays runs none on a fold
        # without recorded replays), else the last BC epoch.
        last = fold_dir / "run" / "dagger_last.pt"
        if cfg.dagger.rounds == 0 or not last.is_file():
            last = fold_dir / "run" / "last.pt"
        ckpt = best if effective == "best" else last
        actor, run_cfg, _ = load_policy(ckpt, dev)
        test_levels = [lv.as_level() for lv in test]
        res, _ = rollout_levels(actor, test_levels, run_cfg.observation, greedy=True,
                                tick_factor=tick_factor, max_ticks=max_ticks, keep_inputs=True)
        save_episode_replays(fold_dir / "heldout", list(zip(test_levels, res, strict=True)))
        # The same greedy policy with a flat max_ticks cap (observations do not depend on the
        # cap, so it only lets episodes run on): the wins the demo-relative cap cut short.
        flat = res
        if any(lv.cap(tick_factor, max_ticks) < max_ticks for lv in test_levels):
            flat, _ = rollout_levels(actor, test_levels, run_cfg.observation, greedy=True,
                                     tick_factor=0.0, max_ticks=max_ticks)
        for lv, r, f in zip(test, res, flat, strict=True):
            rows[lv.map_hash].update(heldout_won=r.won, heldout_died=r.died,
                                     heldout_stuck=r.outcome == "stuck", heldout_ticks=r.ticks,
                                     heldout_death_cause=r.death_cause,
                                     heldout_death_kind=death_kind_of(lv.map_data, r),
                                     heldout_won_flat_cap=f.won)
        oracle = _dagger_oracle(cfg, fold_dir / "run", ckpt, test, test_levels, rows, dev,
                                tick_factor, max_ticks)
        scored = trained
        if 0 <= train_levels < len(trained):
            step = len(trained) / max(train_levels, 1)
            scored = [trained[int(i * step)] for i in range(train_levels)]
        tr_wins = 0
        if scored:
            tres, _ = rollout_levels(actor, [lv.as_level() for lv in scored], run_cfg.observation,
                                     greedy=True, tick_factor=tick_factor, max_ticks=max_ticks)
            for lv, r in zip(scored, tres, strict=True):
                rows[lv.map_hash]["train_wins"] += int(r.won)
                rows[lv.map_hash]["train_evals"] += 1
                tr_wins += int(r.won)
        held_wins = sum(r.won for r in res)
        secs = time.perf_counter() - t0
        per_fold.append({"fold": k, "heldout_levels": len(test), "heldout_wins": held_wins,
                         "train_levels_scored": len(scored), "train_wins": tr_wins,
                         "checkpoint": str(ckpt), "dagger": oracle,
                         "seconds": round(secs, 1)})
        elapsed = time.perf_counter() - t_start
        eta = elapsed / (k + 1) * (folds - k - 1)
        say(f"fold {k + 1}/{folds} done in {_fmt_s(secs)}: held-out {held_wins}/{len(test)}, "
            f"training levels {tr_wins}/{len(scored)}; elapsed {_fmt_s(elapsed)}, "
            f"ETA {_fmt_s(eta)}")
    say(f"random baseline: {random_episodes} sticky-input episodes per level")
    for lv in scan.levels:
        row = rows[lv.map_hash]
        wins = random_wins(lv.map_data, row["cap"], random_episodes, fold_seed, lv.name)
        row["random_wins"], row["random_episodes"] = sum(wins), len(wins)
    table = [rows[lv.map_hash] for lv in scan.levels]
    summary = _summary(table, per_fold, scan, folds, fold_seed, effective, select, tick_factor,
                       max_ticks, random_episodes, time.perf_counter() - t_start)
    _write(out, table, summary)
    return CrossvalResult(summary, table)


def _dagger_oracle(cfg: RunConfig, run: Path, ckpt: Path, test: list[HumanLevel],
                   test_levels: list[Level], rows: dict[str, dict[str, Any]],
                   dev: Any, tick_factor: float, max_ticks: int
                   ) -> dict[str, Any] | None:
    """What the fold's DAgger rounds cost (planner queries, labelled steps) and what they bought:
    its BC policy (``bc_best.pt``) plays the held-out levels too. None without DAgger rounds."""
    bc, log = run / "bc_best.pt", run / "dagger.json"
    if cfg.dagger.rounds == 0 or not (bc.is_file() and log.is_file()) or ckpt == bc:
        return None
    from torchrl_bc.train.checkpoint import load_policy
    from torchrl_bc.train.evaluate import rollout_levels

    rounds = json.loads(log.read_text())
    actor, run_cfg, _ = load_policy(bc, dev)
    res, _ = rollout_levels(actor, test_levels, run_cfg.observation, greedy=True,
                            tick_factor=tick_factor, max_ticks=max_ticks)
    for lv, r in zip(test, res, strict=True):
        rows[lv.map_hash]["heldout_won_bc"] = r.won
    return {"rounds": len(rounds), "queries": sum(int(r["queries"]) for r in rounds),
            "labels": int(rounds[-1]["aggregate"]) if rounds else 0,
            "heldout_wins_bc": sum(r.won for r in res)}


def _oracle_summary(per_fold: list[dict[str, Any]], held: dict[str, Any]
                    ) -> dict[str, Any] | None:
    """Oracle labels spent per held-out point gained over BC, over all folds (each fold's
    DAgger is scored against its own BC policy on the same held-out levels)."""
    costs = [f["dagger"] for f in per_fold]
    if not costs or any(c is None for c in costs):
        return None
    bc = _rate(sum(c["heldout_wins_bc"] for c in costs), held["n"])
    points = 100.0 * (held["wins"] - bc["wins"]) / held["n"] if held["n"] else 0.0
    queries, labels = sum(c["queries"] for c in costs), sum(c["labels"] for c in costs)
    return {"queries": queries, "labels": labels, "heldout_bc": bc, "points_gained": points,
            "labels_per_point": labels / points if points > 0 else None,
            "queries_per_point": queries / points if points > 0 else None}


def _rate(wins: int, n: int) -> dict[str, Any]:
    lo, hi = wilson_interval(wins, n)
    return {"rate": wins / n if n else float("nan"), "wins": wins, "n": n, "ci95": [lo, hi]}


def _summary(table: list[dict[str, Any]], per_fold: list[dict[str, Any]], scan: HumanLevelScan,
             folds: int, fold_seed: int, effective: str, select: str, tick_factor: float,
             max_ticks: int, random_episodes: int, seconds: float) -> dict[str, Any]:
    held = _rate(sum(bool(r["heldout_won"]) for r in table), len(table))
    trained = _rate(sum(r["train_wins"] for r in table), sum(r["train_evals"] for r in table))
    rnd = _rate(sum(r["random_wins"] for r in table), sum(r["random_episodes"] for r in table))
    died = sum(bool(r["heldout_died"]) for r in table)
    stuck = sum(bool(r["heldout_stuck"]) for r in table)
    causes = Counter(r["heldout_death_cause"] for r in table if r["heldout_died"])
    kinds = Counter(r["heldout_death_kind"] for r in table if r["heldout_died"])
    return {
        "heldout_success_rate": held["rate"], "heldout": held,
        "heldout_losses": {"died": died, "stuck": stuck,
                           "timeout": held["n"] - held["wins"] - died - stuck},
        "heldout_deaths_by_cause": dict(causes.most_common()),
        "heldout_deaths_by_kind": dict(kinds.most_common()),
        "heldout_flat_cap": _rate(sum(bool(r["heldout_won_flat_cap"]) for r in table),
                                  len(table)),
        "dagger_oracle": _oracle_summary(per_fold, held),
        "training_level_success": trained, "random_sticky_success": rnd,
        "levels": len(table), "groups": len({r["group"] for r in table}), "folds": folds,
        "fold_seed": fold_seed, "checkpoint": effective, "checkpoint_requested": select,
        "selection": "best.pt on the fold's own training levels' validation split"
                     if effective == "best" else "last.pt (no selection)",
        "tick_factor": tick_factor, "max_ticks": max_ticks, "random_episodes": random_episodes,
        "per_fold": per_fold,
        "skipped": [{"file": f, "reason": why} for f, why in scan.skipped],
        "seconds": round(seconds, 1),
    }


CSV_FIELDS = ("name", "fold", "heldout_won", "heldout_died", "heldout_stuck",
              "heldout_death_cause", "heldout_death_kind", "heldout_ticks",
              "heldout_won_flat_cap", "heldout_won_bc", "cap", "demo_ticks", "train_wins",
              "train_evals", "random_wins", "random_episodes", "files", "map_hash", "group")


def _write(out: Path, table: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    def text(payload: str) -> Callable[[Any], object]:
        return lambda fh: fh.write(payload.encode())

    atomic_write(out / "per_level.json", text(json.dumps(table, indent=1) + "\n"))
    atomic_write(out / "summary.json", text(json.dumps(summary, indent=1) + "\n"))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(table)
    atomic_write(out / "per_level.csv", text(buf.getvalue()))


def report_lines(summary: dict[str, Any]) -> list[str]:
    """Human-readable result, the held-out rate last (scripts read the last line)."""
    def line(label: str, r: dict[str, Any]) -> str:
        lo, hi = r["ci95"]
        return f"{label}: {r['rate']:.4f} ({r['wins']}/{r['n']}, 95% CI {lo:.3f}-{hi:.3f})"

    held = summary["heldout"]
    return [
        f"levels: {summary['levels']} winnable ({summary['groups']} groups), "
        f"{summary['folds']} folds, checkpoint {summary['checkpoint']}.pt, "
        f"{len(summary['skipped'])} files skipped",
        line("training-level success (policies on their own training levels)",
             summary["training_level_success"]) if summary["training_level_success"]["n"]
        else "training-level success: not measured",
        line("random sticky-input success (same levels and caps)",
             summary["random_sticky_success"]),
        "held-out losses: {died} died, {stuck} stuck (timed out at a standstill), {timeout} "
        "other timeouts".format(**summary["heldout_losses"]),
        "held-out deaths by cause: " + (", ".join(
            f"{c} {k}" for c, k in summary["heldout_deaths_by_cause"].items()) or "none"),
        "held-out deaths by what the ninja was doing: " + (", ".join(
            f"{c} {k}" for c, k in summary["heldout_deaths_by_kind"].items()) or "none"),
        line(f"held-out success with a flat {summary['max_ticks']}-tick cap (slow wins count)",
             summary["heldout_flat_cap"]),
        *_oracle_lines(summary.get("dagger_oracle"), line),
        "held-out wins per fold: " + ", ".join(
            f"{f['heldout_wins']}/{f['heldout_levels']}" for f in summary["per_fold"]),
        line("held-out success", held),
        f"heldout_success_rate: {held['rate']:.4f}",
    ]


def _oracle_lines(oracle: dict[str, Any] | None, line: Callable[[str, dict], str]) -> list[str]:
    """The report's lines on BC's held-out rate and DAgger's oracle cost (none without it)."""
    if oracle is None:
        return []
    per = (f"{oracle['labels_per_point']:.0f} labels ({oracle['queries_per_point']:.0f} queries) "
           f"per point gained" if oracle["labels_per_point"] is not None else "no point gained")
    return [line("held-out success of the folds' BC policies (before DAgger)",
                 oracle["heldout_bc"]),
            f"DAgger's oracle: {oracle['queries']} planner queries, {oracle['labels']} labelled "
            f"steps over all folds, {oracle['points_gained']:+.1f} held-out points over BC: "
            f"{per}"]
