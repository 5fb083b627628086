"""One module per ``torchrl-bc`` subcommand; each holds argument wiring, not library logic."""

import argparse
import math
import sys
from pathlib import Path


def add_replay_reading_options(parser: argparse.ArgumentParser, entities_help: str) -> None:
    """Options shared by the commands that simulate replay files one by one."""
    parser.add_argument("--entities", action="store_true", help=entities_help)
    parser.add_argument(
        "--allow-short",
        action="store_true",
        help="read files whose input area is shorter than declared as the reference reader does",
    )


def add_executor_options(parser: argparse.ArgumentParser, workers_default: int | None,
                         workers_help: str = "") -> None:
    """``--workers``, ``--executor local|ray`` and ``--ray-address`` (see torchrl_bc.executors).

    ``workers_default`` None leaves ``--workers`` unset (the command's config decides; say how
    in ``workers_help``)."""
    parser.add_argument("--workers", type=positive_int, default=workers_default,
                        help=f"local worker processes, or the CPUs of a private Ray instance "
                             f"(default {workers_help or workers_default})")
    parser.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="where the per-item work runs (default local; ray needs the "
                             "'ray' extra)")
    parser.add_argument("--ray-address", default=None, metavar="ADDR",
                        help="Ray cluster to join (default: $RAY_ADDRESS, else a private "
                             "instance on this machine); only with --executor ray")


def existing_file(text: str) -> Path:
    """argparse type: a path that must be an existing file (usage + ``error:`` otherwise)."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} is a directory, not a file")
    return path


def existing_dir(text: str) -> Path:
    """argparse type: an existing directory (a typo must not fall back to other data)."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a directory")
    return path


def levels_spec(text: str) -> str:
    """argparse type: an evaluation suite (``suite:NAME``, or ``NAME`` where no such path
    exists) or an existing, non-empty level directory."""
    from torchrl_bc.levels.suites import SUITES

    if text.startswith("suite:"):
        if text.removeprefix("suite:") in SUITES:
            return text
        raise argparse.ArgumentTypeError(f"{text}: no such suite ({', '.join(sorted(SUITES))})")
    path = Path(text)
    if not path.exists() and text in SUITES:
        return text
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text} is neither an existing directory nor a suite "
                                         f"({', '.join(sorted(SUITES))})")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a directory of levels")
    if not any(p.suffix in (".map", ".replay") for p in path.rglob("*")):
        raise argparse.ArgumentTypeError(f"{text} holds no *.map or *.replay files")
    return text


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def one_line(exc: BaseException) -> str:
    """An exception as a single line (library messages may list problems on several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def fail(prog: str, exc: BaseException | str, code: int = 1) -> int:
    """Print ``PROG: error: MESSAGE`` on one line to stderr; return ``code`` (never raises)."""
    msg = exc if isinstance(exc, str) else one_line(exc)
    print(f"{prog}: error: {msg}", file=sys.stderr)
    return code


def output_file(text: str) -> Path:
    """argparse type: a file to write, whose folder exists (not a directory itself)."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory, not a file")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: folder {path.parent} does not exist")
    return path


def output_dir(text: str) -> Path:
    """argparse type: a folder to write into, made if missing (refused before any work when
    the path is a file)."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a directory")
    return path


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (NaN, inf, 0 and negatives are misuse)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def discount(text: str) -> float:
    """argparse type: a discount factor in (0, 1]."""
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value
