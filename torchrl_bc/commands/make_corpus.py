"""``torchrl-bc make-corpus``: generate levels, solve them, write replays and a manifest."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from torchrl_bc.commands import add_executor_options
from torchrl_bc.levels.corpus import check_families, make_corpus
from torchrl_bc.levels.generator import CORPUS_FAMILIES, FAMILIES
from torchrl_bc.levels.planner import STYLES

HELP = "generate and solve procedural levels into a replay corpus with a manifest"
DESCRIPTION = """\
Writes OUT/<family>-<seed>.replay for seeds S..S+N-1 (families cycle) and OUT/manifest.json
(level id, family, seed, content hash, n_ticks, train/val split). Same arguments, same bytes,
whichever --executor (local processes or Ray tasks, see docs/SCALE_OUT.md) and --workers.
A seed the planner cannot solve within its budget is reported and listed as unsolved.
--families picks the families seeds cycle over (default: the eight of the shipped corpus;
`platforms` is a ninth, one-tile floating platforms over mines, as in human medium levels)."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--levels", type=int, required=True, help="number of levels")
    parser.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--style", choices=sorted(STYLES), default="human")
    parser.add_argument("--families", type=_families, default=FAMILIES, metavar="A,B,...",
                        help=f"families to cycle over, comma-separated: any of "
                             f"{len(CORPUS_FAMILIES)} (default: the shipped corpus's "
                             f"{len(FAMILIES)})")
    add_executor_options(parser, workers_default=1)


def _families(text: str) -> tuple[str, ...]:
    families = tuple(f.strip() for f in text.split(",") if f.strip())
    try:
        check_families(families)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return families


def run(args: argparse.Namespace) -> int:
    if args.ray_address and args.executor != "ray":
        print("make-corpus: --ray-address needs --executor ray", file=sys.stderr)
        return 2
    try:
        entries = make_corpus(args.out, args.levels, args.seed, args.val_fraction, args.style,
                              workers=args.workers, executor=args.executor,
                              ray_address=args.ray_address, families=args.families)
    except (RuntimeError, ValueError) as exc:
        print(f"make-corpus: {exc}", file=sys.stderr)
        return 1
    fams = Counter(e.family for e in entries)
    splits = Counter(e.split for e in entries)
    ticks = sum(e.n_ticks for e in entries)
    print(f"wrote {len(entries)} levels to {args.out} ({dict(sorted(fams.items()))}; "
          f"{dict(splits)}; {ticks} ticks)")
    return 0
