"""The ``torchrl-bc`` command line: a thin dispatcher over :mod:`torchrl_bc.commands`.

Each subcommand lives in its own module exposing ``HELP``, ``DESCRIPTION``, ``configure(parser)``
and ``run(args) -> int``; this file only wires them up, so adding a command means adding a module
and one name to ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from torchrl_bc import __version__

#: Subcommands in the order ``--help`` lists them (planned: render, prepare, evaluate, solve,
#: make-corpus, export, warmup-critic).
COMMANDS: tuple[str, ...] = ("trace", "verify", "render", "solve", "make-corpus", "prepare",
                             "evaluate", "crossval", "export", "warmup-critic")


def _module_name(command: str) -> str:
    return f"torchrl_bc.commands.{command.replace('-', '_')}"


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with one subparser per command module."""
    parser = argparse.ArgumentParser(
        prog="torchrl-bc",
        description="Behavioural cloning of N++ agents from human replays (TorchRL -> SB3 PPO).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        module = importlib.import_module(_module_name(command))
        cmd_parser = sub.add_parser(
            command,
            help=module.HELP,
            description=module.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.configure(cmd_parser)
        cmd_parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``torchrl-bc`` console script; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
