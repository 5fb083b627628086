"""``torchrl-bc trace``: simulate replays and write one trace npz per replay."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from torchrl_bc.commands import add_replay_reading_options
from torchrl_bc.io import text
from torchrl_bc.replay.format import ReplayFormatError, read_replay
from torchrl_bc.replay.trace import save_trace, simulate_replay

HELP = "simulate replays and write per-tick traces (npz)"
DESCRIPTION = """\
Run each replay through the simulator from a fresh start and write OUT_DIR/<stem>.npz with
pos, vel, state, win_frame, death_frame (and entities with --entities). Simulation stops after
the tick that wins or kills. A bad replay is reported with its reason and skipped; the exit code
is 1 if any replay failed."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("replays", nargs="+", type=Path, metavar="REPLAY", help="replay files")
    parser.add_argument("--out-dir", required=True, type=Path, help="directory for the npz files")
    add_replay_reading_options(parser, "also record the entity table every tick")


def run(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.replays:
        try:
            replay = read_replay(path, allow_short_inputs=args.allow_short)
            trace = simulate_replay(replay, record_entities=args.entities)
        except ReplayFormatError as exc:  # map defects arrive as this too, naming the file
            failed += 1
            print(f"ERROR {text(str(exc))}", file=sys.stderr)
            continue
        except Exception as exc:
            failed += 1
            print(text(f"ERROR {path}: {type(exc).__name__}: {exc}"), file=sys.stderr)
            continue
        out = save_trace(trace, args.out_dir / f"{path.stem}.npz")
        print(f"wrote {text(out)} ({trace.ticks} ticks, win {trace.win_frame}, "
              f"death {trace.death_frame})")
    if failed:
        print(f"{failed} of {len(args.replays)} replays failed", file=sys.stderr)
    return 1 if failed else 0
