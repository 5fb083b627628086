"""Benchmark observation generation over replays: frames/s, peak memory, graph bytes per frame.

Runs every replay through ``ReplayExecutor`` (simulation + every observation, end to end) at
``frame_skip`` 1 and 4 with all modalities, and once without images for comparison with the
reference (270-320 frames/s without images, ~22 with); then the generalist recipe's vector
inputs alone and with the opt-in ``surroundings``, ``progress``, ``hazards`` and
``path_ahead`` added (their cost per frame). Episodes are dropped after counting, so resident
memory should stay flat; the script prints how much it grew over the second half of the
replays.

    python scripts/bench_obs.py [REPLAY_DIR] [--limit N]

Ends with one ``name: value`` line per figure.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from torchrl_bc.obs import ObservationConfig, clear_level_cache
from torchrl_bc.replay.executor import ReplayExecutor
from torchrl_bc.replay.format import ReplayFormatError, read_replay

DEFAULT_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "replays"


def _rss_mb() -> float:
    """Current resident set size in MB (Linux /proc), falling back to the peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(replays: list, config: ObservationConfig) -> dict[str, float]:
    """Execute every replay once; returns frames, seconds, graph bytes and memory growth."""
    clear_level_cache()
    executor = ReplayExecutor(config)
    frames = 0
    step_graph_bytes = 0
    static_bytes: dict[str, int] = {}
    rss_after_warmup = None
    warmup = len(replays) // 2  # growth from the middle to the end would mean a leak
    start = time.perf_counter()
    for i, (rid, replay) in enumerate(replays):
        episode = executor.execute(replay, rid)
        frames += episode.n_steps
        if episode.static_graph is not None:
            static_bytes[episode.level_hash] = episode.static_graph.nbytes
            step_graph_bytes += sum(episode.obs[k].nbytes for k in episode.obs
                                    if k.startswith("graph_"))
        del episode
        if i + 1 == warmup:
            rss_after_warmup = _rss_mb()
    seconds = time.perf_counter() - start
    rss_end = _rss_mb()
    return {
        "frames": frames,
        "seconds": seconds,
        "fps": frames / seconds,
        "static_graph_bytes": sum(static_bytes.values()),
        "levels": len(static_bytes),
        "step_graph_bytes": step_graph_bytes,
        "rss_growth_mb": rss_end - (rss_after_warmup or rss_end),
    }


def _jit_off_fps(replay_dir: Path, limit: int) -> float:
    """Frames/s at frame_skip 4 with every modality, the same code run with the JIT off
    (a subprocess with NUMBA_DISABLE_JIT=1) on the first ``limit`` replays."""
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    cmd = [sys.executable, __file__, str(replay_dir), "--limit", str(limit), "--fs4-only"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("fps_all_modalities_fs4:"):
            return float(line.split(":")[1])
    raise RuntimeError(f"no fps line in the JIT-off run: {out[-500:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("replay_dir", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N replays")
    parser.add_argument("--jit-off-replays", type=int, default=8,
                        help="replays re-run with NUMBA_DISABLE_JIT=1 for the speed-up figure "
                             "(0 skips it)")
    parser.add_argument("--fs4-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    paths = sorted(args.replay_dir.glob("*.replay"))
    if args.limit:
        paths = paths[: args.limit]
    replays = []
    for p in paths:
        try:
            replays.append((p.stem, read_replay(p)))
        except ReplayFormatError as exc:
            print(f"skip {exc}", file=sys.stderr)
    if not replays:
        print(f"no readable replays in {args.replay_dir}", file=sys.stderr)
        return 2
    rss0 = _rss_mb()
    figures: dict[str, float] = {"replays": len(replays)}
    for fs in (4,) if args.fs4_only else (1, 4):
        r = run(replays, ObservationConfig(frame_skip=fs))
        print(f"frame_skip={fs}, all modalities: {r['frames']} frames in {r['seconds']:.2f} s, "
              f"{r['levels']} levels", file=sys.stderr)
        figures[f"fps_all_modalities_fs{fs}"] = round(r["fps"], 1)
        figures[f"frames_fs{fs}"] = r["frames"]
        figures[f"rss_growth_second_half_mb_fs{fs}"] = round(r["rss_growth_mb"], 1)
        per_frame = (r["static_graph_bytes"] + r["step_graph_bytes"]) / max(r["frames"], 1)
        figures[f"graph_bytes_per_frame_fs{fs}"] = round(per_frame, 1)
        figures[f"static_graph_bytes_per_frame_fs{fs}"] = round(
            r["static_graph_bytes"] / max(r["frames"], 1), 1)
        if fs == 1:
            figures["static_graph_bytes_per_level"] = round(
                r["static_graph_bytes"] / max(r["levels"], 1))
    if args.fs4_only:
        print(f"fps_all_modalities_fs4: {figures['fps_all_modalities_fs4']}")
        return 0
    no_img = ObservationConfig(frame_skip=1, modalities=("game_state", "action_mask", "graph"))
    r = run(replays, no_img)
    figures["fps_no_images_fs1"] = round(r["fps"], 1)
    # The generalist recipe's inputs, then with each opt-in vector modality added: what one
    # costs per frame is the difference of the runs' seconds per frame.
    base = ("game_state", "objective", "action_mask")
    per_frame_us = {}
    for extra in ((), ("surroundings",), ("surroundings", "progress"), ("hazards",),
                  ("path_ahead",)):
        cfg = ObservationConfig(frame_skip=1, modalities=(*base, *extra),
                                state_zero=("x", "y", "elapsed"))
        r = run(replays, cfg)
        name = "_".join(("generalist", *extra))
        figures[f"fps_{name}_fs1"] = round(r["fps"], 1)
        per_frame_us[extra[-1] if extra else ""] = 1e6 / r["fps"]
    figures["surroundings_us_per_frame"] = round(per_frame_us["surroundings"]
                                                 - per_frame_us[""], 1)
    figures["progress_us_per_frame"] = round(per_frame_us["progress"]
                                             - per_frame_us["surroundings"], 1)
    figures["hazards_us_per_frame"] = round(per_frame_us["hazards"] - per_frame_us[""], 1)
    figures["path_ahead_us_per_frame"] = round(per_frame_us["path_ahead"] - per_frame_us[""], 1)
    if args.jit_off_replays:
        off = _jit_off_fps(args.replay_dir, args.jit_off_replays)
        figures["fps_all_modalities_fs4_jit_off"] = round(off, 1)
        figures["jit_speedup_fs4"] = round(figures["fps_all_modalities_fs4"] / off, 1)
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    figures["rss_before_mb"] = round(rss0, 1)
    for name, value in figures.items():
        print(f"{name}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
