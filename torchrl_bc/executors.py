"""Where per-item work runs: this machine's processes (``local``) or a Ray cluster (``ray``).

Corpus generation, dataset builds and DAgger labelling all map one pure function over
independent items (a seed, a replay, a failed episode). An :class:`Executor` runs that map and
streams ``(index, result, error)`` back to the driver as items finish, with a progress bar
(rate and ETA) on the driver. The driver alone commits outputs (replay files, cache entries,
manifests) through the project's atomic writes, so a result is either whole on disk or absent
whichever executor produced it, and the bytes do not depend on where the work ran.

``local`` is the ``ProcessPoolExecutor`` path (``forkserver``; in-process when one worker).

``ray`` runs each item as a Ray *task*, not through Ray Data ``map_batches`` with an actor
pool: the items are few and coarse (0.1-1 s of planner or simulator time each), tasks stream
results back with ``ray.wait`` in completion order, Ray retries a task whose worker process
died (``max_retries``) while an exception raised by the function itself is reported, never
retried (``retry_exceptions=False``: a level the planner cannot solve fails the same way every
time), and Ray reuses worker processes between tasks of one function, so the simulator's
compiled kernels and module-level caches stay warm as they would in an actor. Ray Data would
add pyarrow/pandas to the extra and an ordering and batching layer these maps do not need.

The cluster is the one named by ``address`` or, failing that, by ``RAY_ADDRESS`` (Ray's own
convention); with neither, a private Ray instance with ``workers`` CPUs starts on this
machine. Nothing here imports a ``torchrl_bc`` package: every package may use it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from torchrl_bc.progress import progress_bar

__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "RayExecutor", "make_executor", "report"]

#: Names accepted by ``--executor`` and config keys.
EXECUTORS = ("local", "ray")

Outcome = tuple[int, Any, BaseException | None]


class Executor(Protocol):
    name: str

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *, desc: str = "",
            unit: str = "it", progress: bool = True) -> Iterator[Outcome]:
        """Yield ``(index, result, None)`` or ``(index, None, error)`` per item, as they end."""
        ...


class LocalExecutor:
    """Processes on this machine: in the caller when ``workers <= 1``, else a forkserver pool.

    No retries: a worker that dies breaks the pool, and every item not yet finished is
    returned with that error (use ``ray`` where workers may be lost).

    ``preload`` names modules the forkserver imports once, so workers start warm. A pool is
    created per :meth:`map` call and at most ``2 * workers`` items are in flight, so a 100k-item
    map does not hold 100k futures.
    """

    name = "local"

    def __init__(self, workers: int = 1, preload: Sequence[str] = ()) -> None:
        self.workers = max(1, int(workers))
        self.preload = list(preload)

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *, desc: str = "",
            unit: str = "it", progress: bool = True) -> Iterator[Outcome]:
        with progress_bar(total=len(items), desc=desc, unit=unit, enabled=progress) as bar:
            if self.workers <= 1 or len(items) <= 1:
                for i, item in enumerate(items):
                    try:
                        out: Outcome = (i, fn(item), None)
                    except Exception as exc:
                        out = (i, None, exc)
                    bar.update()
                    yield out
                return
            # forkserver: workers never inherit the parent's torch/OpenMP threads (fork can hang)
            ctx = mp.get_context("forkserver")
            if self.preload:
                ctx.set_forkserver_preload(self.preload)
            with ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx) as pool:
                pending: dict[Any, int] = {}
                nxt = 0
                while nxt < len(items) or pending:
                    while nxt < len(items) and len(pending) < 2 * self.workers:
                        try:
                            pending[pool.submit(fn, items[nxt])] = nxt
                        except BrokenProcessPool as exc:  # a worker died: the pool is gone
                            bar.update()
                            yield nxt, None, exc
                        nxt += 1
                    if not pending:
                        continue
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        i = pending.pop(fut)
                        exc = fut.exception()
                        bar.update()
                        yield (i, None, exc) if exc is not None else (i, fut.result(), None)


class RayExecutor:
    """Ray tasks (see the module docstring for why tasks); a worker death is retried
    ``max_retries`` times, an exception from ``fn`` is returned as the item's error."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int = 1, max_retries: int = 3,
                 in_flight: int | None = None) -> None:
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.workers = max(1, int(workers))
        self.max_retries = max_retries
        self.in_flight = in_flight

    @staticmethod
    def _ray() -> Any:
        try:
            import ray
        except ImportError:
            raise RuntimeError("--executor ray needs Ray: pip install -e '.[ray]'") from None
        return ray

    def connect(self) -> Any:
        """The ``ray`` module, connected: to an already initialised Ray (a test's), to
        ``address``/``RAY_ADDRESS``, or to a new private instance with ``workers`` CPUs."""
        ray = self._ray()
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(num_cpus=self.workers, include_dashboard=False, log_to_driver=False)
        return ray

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *, desc: str = "",
            unit: str = "it", progress: bool = True) -> Iterator[Outcome]:
        ray = self.connect()
        remote = ray.remote(num_cpus=1, max_retries=self.max_retries,
                            retry_exceptions=False)(fn)
        # Enough queued work to keep every CPU busy, without holding all results in the store.
        window = self.in_flight or max(4, 2 * int(ray.cluster_resources().get("CPU", 1)))
        with progress_bar(total=len(items), desc=desc, unit=unit, enabled=progress) as bar:
            pending: dict[Any, int] = {}
            nxt = 0
            while nxt < len(items) or pending:
                while nxt < len(items) and len(pending) < window:
                    pending[remote.remote(items[nxt])] = nxt
                    nxt += 1
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    i = pending.pop(ref)
                    try:
                        out: Outcome = (i, ray.get(ref), None)
                    except ray.exceptions.RayTaskError as exc:  # fn raised: its own error
                        cause = exc.cause if isinstance(exc.cause, BaseException) else exc
                        out = (i, None, cause)
                    except ray.exceptions.RayError as exc:  # worker died max_retries+1 times
                        out = (i, None, exc)
                    bar.update()
                    yield out


def make_executor(name: str, *, workers: int = 1, address: str | None = None,
                  preload: Sequence[str] = ()) -> Executor:
    """The executor called ``name`` (``local`` or ``ray``); ``address`` is Ray's only."""
    if name == "local":
        if address:
            raise ValueError("--ray-address needs --executor ray")
        return LocalExecutor(workers, preload)
    if name == "ray":
        return RayExecutor(address, workers)
    raise ValueError(f"unknown executor {name!r}; choose from {list(EXECUTORS)}")


def report(line: str) -> None:
    """One line on stderr (a skipped or unsolved item), above any progress bar."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)
