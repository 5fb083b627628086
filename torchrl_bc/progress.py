"""Progress bars for the long steps (training epochs, critic warm-up), with rate and ETA.

Bars go to stderr and only when it is a terminal: a log file or CI output would otherwise fill
with carriage-return frames. Under pytest they are off too (``PYTEST_CURRENT_TEST``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

__all__ = ["progress_bar", "progress_enabled", "progress_write"]


def progress_enabled(requested: bool = True) -> bool:
    """Whether a bar would be drawn: requested, stderr is a TTY, and not under pytest."""
    if not requested or "PYTEST_CURRENT_TEST" in os.environ:
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress_bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
                 unit: str = "it", enabled: bool = True, leave: bool = False,
                 **kwargs: Any) -> tqdm:
    """A ``tqdm`` bar on stderr (rate and ETA), disabled when :func:`progress_enabled` is not."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, leave=leave,
                disable=not progress_enabled(enabled), dynamic_ncols=True, **kwargs)


def progress_write(msg: str) -> None:
    """One log line on stderr that leaves a drawn bar whole: tqdm clears the bar, writes the
    line and redraws the bar below it (a plain ``print`` would land in the middle of a bar's
    frame). Without a bar it is a plain line."""
    tqdm.write(msg, file=sys.stderr)
    sys.stderr.flush()
