"""``torchrl-bc solve``: plan a winning input sequence for one map and save it as a replay."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from torchrl_bc.levels.planner import DEFAULT_BUDGET_S, STYLES, solve_map
from torchrl_bc.replay.format import ReplayFormatError, read_replay, write_replay
from torchrl_bc.sim.mapdata import MapFormatError, read_map_file

HELP = "plan a winning input sequence for a map and write it as a v1 replay"
DESCRIPTION = """\
MAP is raw map data or a replay file (its map is used). The planner searches macro-actions
over the simulator (default physics: closed doors do not block, as in the reference) and
writes a v1 replay whose re-simulation wins on its last input. Prints one line:
  solved N ticks in S s (E expansions, T ticks searched/s)
or 'unsolved: reason'. Exit code 0 only when solved."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("map", type=Path, metavar="MAP", help="map-data file or .replay")
    parser.add_argument("--out", type=Path, required=True, help="replay file to write")
    parser.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S,
                        help=f"search time budget in seconds (default {DEFAULT_BUDGET_S:g})")
    parser.add_argument("--style", choices=sorted(STYLES), default="shortest",
                        help="shortest: fine macros; human: longer held inputs, fewer changes")


def _map_bytes(path: Path) -> bytes:
    """Map data of a replay or a map file; both readers refuse non-regular or oversized files."""
    if path.suffix == ".replay":
        return read_replay(path).map_data
    return read_map_file(path)


def run(args: argparse.Namespace) -> int:
    try:
        data = _map_bytes(args.map)
    except (OSError, ReplayFormatError, MapFormatError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = solve_map(data, budget_s=args.budget_s, style=args.style, source=str(args.map))
    if not result.solved:
        print(f"unsolved: {result.reason} ({result.expansions} expansions, "
              f"{result.ticks_per_s:.0f} ticks searched/s)")
        return 1
    write_replay(args.out, data, result.inputs, True)
    print(f"solved {result.inputs.size} ticks in {result.seconds:.2f} s "
          f"({result.expansions} expansions, {result.ticks_per_s:.0f} ticks searched/s)")
    return 0
