"""``torchrl-bc make-corpus``: generate levels, solve them, write replays and a manifest."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from torchrl_bc.levels.corpus import make_corpus
from torchrl_bc.levels.planner import STYLES

HELP = "generate and solve procedural levels into a replay corpus with a manifest"
DESCRIPTION = """\
Writes OUT/<family>-<seed>.replay for seeds S..S+N-1 (families cycle) and OUT/manifest.json
(level id, family, seed, content hash, n_ticks, train/val split). Same arguments, same bytes."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--levels", type=int, required=True, help="number of levels")
    parser.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--style", choices=sorted(STYLES), default="human")


def run(args: argparse.Namespace) -> int:
    entries = make_corpus(args.out, args.levels, args.seed, args.val_fraction, args.style)
    fams = Counter(e.family for e in entries)
    splits = Counter(e.split for e in entries)
    ticks = sum(e.n_ticks for e in entries)
    print(f"wrote {len(entries)} levels to {args.out} ({dict(sorted(fams.items()))}; "
          f"{dict(splits)}; {ticks} ticks)")
    return 0
