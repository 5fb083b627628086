"""``torchrl-bc verify``: check simulated replays bit-for-bit against golden traces."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from torchrl_bc.commands import add_replay_reading_options
from torchrl_bc.io import text
from torchrl_bc.replay.format import ReplayFormatError, read_replay
from torchrl_bc.replay.trace import compare_trace, load_trace, simulate_replay

HELP = "compare simulated replays with golden traces, bit for bit"
DESCRIPTION = """\
For every REPLAY_DIR/*.replay that has GOLDEN_DIR/<stem>.npz, simulate it and print one of
  OK <stem>
  DIFF <stem> tick N: FIELD ours=... golden=...   (first diverging tick, 1-based)
  ERROR <stem>: reason
then 'verified: N exact, M differ, K errors'. Floats are compared bitwise. The exit code is 0
only if every replay matched exactly."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("replay_dir", type=Path, metavar="REPLAY_DIR", help="directory of .replay")
    parser.add_argument("--golden", required=True, type=Path, help="directory of golden <stem>.npz")
    add_replay_reading_options(parser, "also compare the per-tick entity table")


def _verify_one(path: Path, golden: Path, args: argparse.Namespace) -> tuple[str, str]:
    """Return (status, line) for one replay; status is 'ok', 'diff' or 'error'."""
    stem = path.stem
    try:
        replay = read_replay(path, allow_short_inputs=args.allow_short)
        gold = load_trace(golden)
        trace = simulate_replay(replay, record_entities=args.entities)
    except ReplayFormatError as exc:
        return "error", f"ERROR {stem}: {exc.defect}"
    except Exception as exc:
        return "error", f"ERROR {stem}: {type(exc).__name__}: {exc}"
    result = compare_trace(trace, gold, entities=args.entities)
    if result.exact:
        return "ok", f"OK {stem}"
    return "diff", f"DIFF {stem} {result.describe()}"


def run(args: argparse.Namespace) -> int:
    if not args.replay_dir.is_dir():
        print(f"error: {args.replay_dir} is not a directory", file=sys.stderr)
        return 2
    pairs = []
    missing = 0
    for path in sorted(args.replay_dir.glob("*.replay")):
        golden = args.golden / f"{path.stem}.npz"
        if golden.is_file():
            pairs.append((path, golden))
        else:
            missing += 1
    if missing:
        print(f"skipping {missing} replays without a golden trace", file=sys.stderr)
    if not pairs:
        print("error: no replay with a golden trace to verify", file=sys.stderr)
        return 2
    counts = {"ok": 0, "diff": 0, "error": 0}
    for path, golden in tqdm(pairs, desc="verify", unit="replay", file=sys.stderr):
        status, line = _verify_one(path, golden, args)
        counts[status] += 1
        tqdm.write(text(line), file=sys.stdout)  # names may not be UTF-8
    print(f"verified: {counts['ok']} exact, {counts['diff']} differ, {counts['error']} errors")
    return 0 if counts["ok"] == len(pairs) else 1
