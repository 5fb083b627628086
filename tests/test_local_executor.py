"""The local executor survives dying worker processes the way the Ray one does.

A worker that dies breaks a ``ProcessPoolExecutor``; the executor reruns the items that were in
flight (each alone, so a death is charged to the item that caused it), and an item that kills
its worker every time ends as :class:`WorkerLost`, never as a wrong result or a stopped map.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

from torchrl_bc.executors import LocalExecutor, WorkerLost


def _square_but_die(item: int, *, marker: Path, on: int, always: bool) -> int:
    """``item ** 2``; the worker exits hard (as if killed) on item ``on``: once, or always."""
    if item == on and (always or not marker.exists()):
        marker.write_text("died")
        os._exit(1)
    if item == 5:
        raise ValueError("five is the item's own error")
    return item * item


def _run(executor: LocalExecutor, fn, n: int) -> dict[int, tuple]:
    out = {}
    for i, result, error in executor.map(fn, list(range(n)), progress=False):
        assert i not in out, f"item {i} reported twice"
        out[i] = (result, error)
    return out


def test_a_dying_worker_is_retried(tmp_path: Path) -> None:
    fn = functools.partial(_square_but_die, marker=tmp_path / "died", on=3, always=False)
    out = _run(LocalExecutor(workers=2), fn, 12)
    assert (tmp_path / "died").exists()  # the worker really died once
    assert sorted(out) == list(range(12))
    assert {i: r for i, (r, e) in out.items() if e is None} == \
        {i: i * i for i in range(12) if i != 5}
    assert isinstance(out[5][1], ValueError)  # the function's own error: reported, not retried


def test_an_item_that_always_kills_its_worker_is_lost_alone(tmp_path: Path) -> None:
    fn = functools.partial(_square_but_die, marker=tmp_path / "died", on=2, always=True)
    out = _run(LocalExecutor(workers=2, max_retries=2), fn, 8)
    assert sorted(out) == list(range(8))
    assert isinstance(out[2][1], WorkerLost) and "died 3 times" in str(out[2][1])
    # items in flight beside it were rerun on their own and are not charged with its deaths
    assert {i: r for i, (r, e) in out.items() if e is None} == \
        {i: i * i for i in range(8) if i not in (2, 5)}


def _record_pid_and_sleep(item: int, *, folder: Path) -> int:
    (folder / f"{os.getpid()}.pid").write_text(str(item))
    import time

    time.sleep(60)
    return item


def test_workers_exit_when_the_driver_is_killed(tmp_path: Path) -> None:
    """A killed driver leaves no workers running its items on (they would for minutes)."""
    import signal
    import subprocess
    import sys
    import time

    driver = subprocess.Popen([sys.executable, "-c", (
        "import functools, pathlib, tests.test_local_executor as t\n"
        "from torchrl_bc.executors import LocalExecutor\n"
        f"fn = functools.partial(t._record_pid_and_sleep, folder=pathlib.Path({str(tmp_path)!r}))\n"
        "list(LocalExecutor(workers=2).map(fn, [0, 1, 2, 3], progress=False))\n")],
        cwd=Path(__file__).parents[1])
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("*.pid"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    pids = [int(p.stem) for p in tmp_path.glob("*.pid")]
    assert len(pids) == 2, "the workers never started"
    driver.send_signal(signal.SIGKILL)
    driver.wait()

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"  # zombies are gone

    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in pids), "workers outlived their driver"


def test_make_corpus_commits_nothing_when_a_worker_is_lost(tmp_path: Path,
                                                            monkeypatch) -> None:
    """A lost worker is no verdict on a level: no manifest (the commit point), an error that
    names the seed, and the next run makes the whole corpus."""
    import torchrl_bc.levels.corpus as corpus

    class LosesSeed1(LocalExecutor):
        def map(self, fn, items, **kw):
            for i, result, error in super().map(fn, items, **kw):
                yield (i, None, WorkerLost("its worker process died 4 times")) \
                    if items[i][0] == 1 else (i, result, error)

    with pytest.raises(RuntimeError, match=r"seeds \[1\]"):
        corpus.make_corpus(tmp_path / "c", 3, seed=0, progress=False, executor=LosesSeed1(1))
    assert not (tmp_path / "c" / corpus.MANIFEST).exists()
    entries = corpus.make_corpus(tmp_path / "c", 3, seed=0, progress=False)
    assert [e.seed for e in entries] == [0, 1, 2]
    assert "unsolved" not in corpus.load_manifest(tmp_path / "c")
