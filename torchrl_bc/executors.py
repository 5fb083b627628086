"""Where per-item work runs: this machine's processes (``local``) or a Ray cluster (``ray``).

Corpus generation, dataset builds and DAgger labelling all map one pure function over
independent items (a seed, a replay, a failed episode). An :class:`Executor` runs that map and
streams ``(index, result, error)`` back to the driver as items finish, with a progress bar
(rate and ETA) on the driver. The driver alone commits outputs (replay files, cache entries,
manifests) through the project's atomic writes, so a result is either whole on disk or absent
whichever executor produced it, and the bytes do not depend on where the work ran.

``local`` is the ``ProcessPoolExecutor`` path (``forkserver``; in-process when one worker).

Both executors retry an item whose worker process died (killed, out of memory) up to
``max_retries`` times; when that is spent the item's error is a :class:`WorkerLost`, so callers
can tell a lost worker (run it again later) from an error the function raised (the item's own
verdict, e.g. a level the planner cannot solve, which is never retried).

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
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from torchrl_bc.progress import progress_bar

__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "RayExecutor", "WorkerLost", "make_executor",
           "report"]

#: Names accepted by ``--executor`` and config keys.
EXECUTORS = ("local", "ray")

Outcome = tuple[int, Any, BaseException | None]


class WorkerLost(RuntimeError):
    """An item's worker process died on every attempt (infrastructure, not the item's own
    error): nothing of it was committed, and running it again may well succeed."""


class Executor(Protocol):
    name: str

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *, desc: str = "",
            unit: str = "it", progress: bool = True) -> Iterator[Outcome]:
        """Yield ``(index, result, None)`` or ``(index, None, error)`` per item, as they end."""
        ...


def _exit_with(driver: int, poll_s: float = 0.5) -> None:
    """Worker initialiser: a daemon thread ends this process once ``driver`` is gone."""
    import threading
    import time

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            try:
                os.kill(driver, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:  # alive, owned by someone else
                pass

    threading.Thread(target=watch, name="exit-with-driver", daemon=True).start()


class LocalExecutor:
    """Processes on this machine: in the caller when ``workers <= 1``, else a forkserver pool.

    A worker that dies breaks the whole pool, taking down every item then in flight. Those
    items are run again one at a time in a pool of their own, so a death is charged only to the
    item that caused it; an item whose worker dies ``max_retries + 1`` times is reported as
    :class:`WorkerLost`. The other items continue in a fresh pool.

    ``preload`` names modules the forkserver imports once, so workers start warm. At most
    ``2 * workers`` items are in flight, so a 100k-item map does not hold 100k futures.
    Workers exit within a second or so of the driver process dying (killed, Ctrl-C), instead
    of finishing their items for nobody: their parent is the forkserver, not the driver.
    """

    name = "local"

    def __init__(self, workers: int = 1, preload: Sequence[str] = (),
                 max_retries: int = 3) -> None:
        self.workers = max(1, int(workers))
        self.preload = list(preload)
        self.max_retries = max_retries

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
            todo = deque(range(len(items)))
            while todo:
                suspects: list[int] = []
                with ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx,
                                         initializer=_exit_with, initargs=(os.getpid(),)) as pool:
                    for out in self._run_pool(pool, fn, items, todo, suspects):
                        bar.update()
                        yield out
                for i in suspects:  # each alone: a death now is its own
                    bar.update()
                    yield self._run_alone(ctx, fn, i, items[i])

    def _run_pool(self, pool: ProcessPoolExecutor, fn: Callable[[Any], Any],
                  items: Sequence[Any], todo: deque[int], suspects: list[int]
                  ) -> Iterator[Outcome]:
        """Run ``todo`` on ``pool`` until it is empty or the pool breaks; the items in flight
        when it broke go to ``suspects``."""
        pending: dict[Any, int] = {}
        while (todo and not suspects) or pending:
            while todo and not suspects and len(pending) < 2 * self.workers:
                i = todo.popleft()
                try:
                    pending[pool.submit(fn, items[i])] = i
                except BrokenProcessPool:
                    suspects.append(i)
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                i = pending.pop(fut)
                exc = fut.exception()
                if isinstance(exc, BrokenProcessPool):
                    suspects.append(i)
                else:
                    yield (i, None, exc) if exc is not None else (i, fut.result(), None)
        suspects.sort()

    def _run_alone(self, ctx: Any, fn: Callable[[Any], Any], i: int, item: Any) -> Outcome:
        """``item`` in a one-worker pool of its own, again while its worker dies (at most
        ``max_retries`` more times: the death that made it a suspect counts)."""
        for _ in range(self.max_retries):
            with ProcessPoolExecutor(max_workers=1, mp_context=ctx, initializer=_exit_with,
                                     initargs=(os.getpid(),)) as pool:
                try:
                    return i, pool.submit(fn, item).result(), None
                except BrokenProcessPool:
                    continue
                except Exception as exc:
                    return i, None, exc
        return i, None, WorkerLost(f"its worker process died {self.max_retries + 1} times")


class RayExecutor:
    """Ray tasks (see the module docstring for why tasks); a worker death is retried
    ``max_retries`` times (then :class:`WorkerLost`), an exception from ``fn`` is returned as
    the item's error."""

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
                        out = (i, None, WorkerLost(f"{type(exc).__name__}: {exc}"))
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
