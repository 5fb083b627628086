"""The ``ray`` executor: the same bytes as the local path, retries after a worker dies, and a
level the planner cannot solve reported once. A private Ray instance with 2 CPUs is started
here; without Ray the module skips, except under CI (``CI`` set), where ``make test`` installs
the ``ray`` extra and a missing Ray is a failure."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from torchrl_bc.executors import LocalExecutor, RayExecutor, make_executor
from torchrl_bc.resources import SAMPLE_CORPUS

ROOT = Path(__file__).parents[1]
CORPUS = SAMPLE_CORPUS
N_LEVELS = 4


@pytest.fixture(scope="module")
def ray_instance():
    try:
        import ray
    except ImportError:
        reason = "ray is not installed (pip install -e '.[ray]')"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, and make test installs the ray extra")
        pytest.skip(reason)
    saved = os.environ.pop("RAY_ADDRESS", None)  # never join someone else's cluster here
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
    if saved is not None:
        os.environ["RAY_ADDRESS"] = saved


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


class _Wrapped(RayExecutor):
    """A Ray executor that runs ``wrap(fn)`` instead of ``fn`` (to inject failures)."""

    def __init__(self, wrap: Any) -> None:
        super().__init__(workers=2)
        self.wrap = wrap

    def map(self, fn, items, **kw):  # type: ignore[no-untyped-def]
        return super().map(self.wrap(fn), items, **kw)


def _die_once(marker: Path, when: Any):
    """``wrap`` for :class:`_Wrapped`: the worker process exits hard (no exception, no
    cleanup: as if killed) the first time it meets an item where ``when(item)``; the marker
    file records that it happened."""

    def wrap(fn):
        def run(item):
            if when(item) and not marker.exists():
                marker.write_text("died")
                os._exit(1)
            return fn(item)
        return run
    return wrap


@pytest.fixture(scope="module")
def local_corpus(tmp_path_factory) -> Path:
    from torchrl_bc.levels.corpus import make_corpus

    out = tmp_path_factory.mktemp("local") / "corpus"
    make_corpus(out, N_LEVELS, seed=0, progress=False, workers=2)
    return out


def test_make_corpus_cli_on_ray_is_byte_identical(ray_instance, local_corpus: Path,
                                                  tmp_path: Path) -> None:
    from torchrl_bc.cli import main

    out = tmp_path / "corpus"
    assert main(["make-corpus", "--levels", str(N_LEVELS), "--out", str(out),
                 "--executor", "ray", "--workers", "2"]) == 0
    assert _tree(out) == _tree(local_corpus)
    assert len(json.loads((out / "manifest.json").read_text())["levels"]) == N_LEVELS


def test_a_killed_corpus_worker_is_retried_and_nothing_is_half_written(
        ray_instance, local_corpus: Path, tmp_path: Path) -> None:
    from torchrl_bc.levels.corpus import make_corpus

    marker = tmp_path / "died"
    out = tmp_path / "corpus"
    make_corpus(out, N_LEVELS, seed=0, progress=False,
                executor=_Wrapped(_die_once(marker, lambda task: task[0] == 2)))
    assert marker.read_text() == "died"  # the task's first worker really died
    assert _tree(out) == _tree(local_corpus)  # retried; no temp file or partial replay left


def test_a_level_the_planner_cannot_solve_is_reported_not_retried(
        ray_instance, tmp_path: Path, capsys) -> None:
    from torchrl_bc.levels.corpus import load_manifest, make_corpus

    calls = tmp_path / "calls"
    calls.mkdir()

    def starve_seed_1(fn):
        def run(task):
            import torchrl_bc.levels.generator as gen

            if task[0] != 1:
                return fn(task)
            (calls / str(os.getpid())).write_text("called")
            budget, gen.ACCEPT_EXPANSIONS = gen.ACCEPT_EXPANSIONS, 1  # no plan fits
            try:
                return fn(task)
            finally:
                gen.ACCEPT_EXPANSIONS = budget
        return run

    entries = make_corpus(tmp_path / "c", 3, seed=0, progress=False,
                          executor=_Wrapped(starve_seed_1))
    assert [e.seed for e in entries] == [0, 2]
    man = load_manifest(tmp_path / "c")
    assert [u["level_id"] for u in man["unsolved"]] == ["gaps-1"]
    assert "no solvable gaps level for seed 1" in man["unsolved"][0]["reason"]
    assert len(list(calls.iterdir())) == 1  # one attempt: an exception is not retried
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if "gaps-1" in line] == [
        "make-corpus: seed 1 (gaps-1) left out: RuntimeError: no solvable gaps level for seed 1"
        " in 12 attempts"]


def _build_twice(replays: Path, out: Path, executor: str) -> None:
    """Build without, then with, mirroring: the second build simulates only the mirrors."""
    from torchrl_bc.data.build import build_dataset
    from torchrl_bc.obs import ObservationConfig

    cfg = ObservationConfig(modalities=("game_state", "local_view", "objective", "graph",
                                        "action_mask"))
    for mirror in (False, True):
        build_dataset([replays], cfg, out, workers=2, mirror=mirror, progress=False,
                      verbose=False, executor=executor)


def _without_created(tree: dict[str, bytes]) -> dict[str, Any]:
    """The tree with the manifest parsed and its time stamps dropped (the creation time and
    each store file's mtime/ctime: file system metadata, the only fields allowed to differ
    between two builds; sizes and sha256 stay)."""
    man = json.loads(tree["manifest.json"])
    man.pop("created")
    for entry in man.get("store_files", {}).values():
        entry.pop("mtime_ns")
        entry.pop("ctime_ns")
    return tree | {"manifest.json": man}


def test_prepare_on_ray_is_byte_identical(ray_instance, tmp_path: Path) -> None:
    replays = tmp_path / "replays"
    replays.mkdir()
    for name in ("corridor-0", "gaps-1", "shaft-2"):
        shutil.copy(CORPUS / f"{name}.replay", replays)
    (replays / "broken.replay").write_bytes(b"\x01\x00")  # reported as skipped on both paths
    out = tmp_path / "dataset"  # the same path both times: the manifest names it
    _build_twice(replays, out, "local")
    local = _tree(out)
    shutil.rmtree(out)
    _build_twice(replays, out, "ray")
    ray_tree = _tree(out)
    assert any(k.startswith("cache/episodes/") and k.endswith(".npz") for k in ray_tree)
    assert sorted(ray_tree) == sorted(local)
    assert _without_created(ray_tree) == _without_created(local)
    man = json.loads(ray_tree["manifest.json"])
    assert [s["file"] for s in man["skipped"]] == [str(replays / "broken.replay")]


def test_a_killed_build_worker_is_retried(ray_instance, tmp_path: Path) -> None:
    from torchrl_bc.data.build import _run_jobs
    from torchrl_bc.data.remote import run_jobs_detached

    replays = tmp_path / "replays"
    replays.mkdir()
    shutil.copy(CORPUS / "corridor-0.replay", replays)
    out = tmp_path / "dataset"
    _build_twice(replays, out, "local")
    local = _tree(out)
    shutil.rmtree(out)
    marker = tmp_path / "died"
    executor = _Wrapped(_die_once(marker, lambda task: True))

    import torchrl_bc.data.build as build

    def run_jobs(jobs, workers, progress, executor_name="local", ray_address=None):
        assert executor_name == "ray"
        return run_jobs_detached(build.run_job, jobs, executor, jobs[0].cache_dir, progress)

    build._run_jobs = run_jobs
    try:
        _build_twice(replays, out, "ray")
    finally:
        build._run_jobs = _run_jobs
    assert marker.read_text() == "died"
    assert _without_created(_tree(out)) == _without_created(local)


def _failed_episodes():
    from torchrl_bc.replay.format import read_replay
    from torchrl_bc.sim.level import Level
    from torchrl_bc.train.dagger import _Episode

    eps = []
    for name in ("corridor-0", "gaps-1"):
        rep = read_replay(CORPUS / f"{name}.replay")
        from torchrl_bc.sim import Simulator

        sim = Simulator(rep.map_data)
        snaps = []
        for t, b in enumerate([0] * 20 + [4] * 20):  # idle, then run left
            if t % 20 == 0:
                snaps.append((t, sim.snapshot(), 0 if t <= 20 else 4, None))
            sim.tick_input(b)
        eps.append(_Episode(Level(name, rep.map_data), won=False, steps=40, snaps=snaps))
    return eps


def test_dagger_labels_on_ray_match_local(ray_instance) -> None:
    from torchrl_bc.levels.labels import LabelTask, label_tasks
    from torchrl_bc.obs import ObservationConfig

    obs = ObservationConfig(frame_skip=1, state_zero=("elapsed",),
                            modalities=("game_state", "local_view", "objective", "action_mask"))
    # budget_s far above what 400 expansions take: the expansion cap decides, as in CI
    tasks = [LabelTask(ep.level.name, ep.level.map_data, ep.snaps[::-1], obs, 8, 400, 1e6)
             for ep in _failed_episodes()]
    local = label_tasks(tasks, LocalExecutor(1), progress=False)
    remote = label_tasks(tasks, RayExecutor(workers=2), progress=False)
    assert sum(r.solved for r in local) >= 2 and sum(len(r.pairs) for r in local) > 0
    for a, b in zip(local, remote, strict=True):
        assert (a.queries, a.solved, len(a.pairs)) == (b.queries, b.solved, len(b.pairs))
        for (oa, la), (ob, lb) in zip(a.pairs, b.pairs, strict=True):
            assert la == lb and sorted(oa) == sorted(ob)
            assert all(oa[k].dtype == ob[k].dtype and np.array_equal(oa[k], ob[k]) for k in oa)


def test_executor_choice_errors() -> None:
    with pytest.raises(ValueError, match="--ray-address needs --executor ray"):
        make_executor("local", address="10.0.0.1:6379")
    with pytest.raises(ValueError, match="unknown executor 'spark'"):
        make_executor("spark")


def test_ray_missing_is_one_clear_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(RuntimeError, match=r"^--executor ray needs Ray: pip install -e "
                                           r"'\.\[ray\]'$"):
        RayExecutor(workers=1).connect()


def test_dagger_executor_config_is_checked(tmp_path: Path) -> None:
    from torchrl_bc.train.config import ConfigError, load_config

    cfg = ROOT / "configs" / "tiny.yaml"
    assert load_config(cfg, ["dagger.executor=ray"]).dagger.executor == "ray"
    with pytest.raises(ConfigError, match=re.escape("dagger.executor must be local|ray, got")):
        load_config(cfg, ["dagger.executor=spark"])
    assert load_config(cfg, ["dagger.workers=0"]).dagger.n_workers() >= 1  # one per CPU
    bad = r"dagger\.rounds and dagger\.workers must be >= 0, got \d+ and -1"
    with pytest.raises(ConfigError, match=bad):
        load_config(cfg, ["dagger.workers=-1"])
    with pytest.raises(ConfigError,
                       match=re.escape("dagger.ray_address needs dagger.executor: ray")):
        load_config(cfg, ["dagger.ray_address=10.0.0.1:6379"])
