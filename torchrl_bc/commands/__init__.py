"""One module per ``torchrl-bc`` subcommand; each holds argument wiring, not library logic."""

import argparse


def add_replay_reading_options(parser: argparse.ArgumentParser, entities_help: str) -> None:
    """Options shared by the commands that simulate replay files one by one."""
    parser.add_argument("--entities", action="store_true", help=entities_help)
    parser.add_argument(
        "--allow-short",
        action="store_true",
        help="read files whose input area is shorter than declared as the reference reader does",
    )
