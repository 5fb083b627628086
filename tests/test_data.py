"""Dataset build: bad input, de-duplication, content-addressed cache, interrupted builds."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from torchrl_bc.data.build import build_dataset
from torchrl_bc.data.manifest import read_manifest
from torchrl_bc.obs import ObservationConfig
from torchrl_bc.replay.format import read_replay, write_replay
from torchrl_bc.resources import SAMPLE_CORPUS

CORPUS = SAMPLE_CORPUS
SHORT = ["corridor-40", "corridor-0", "corridor-16", "corridor-56", "corridor-48", "corridor-8"]
CFG = ObservationConfig()


def _copy(dst: Path, names: list[str]) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(CORPUS / f"{name}.replay", dst / f"{name}.replay")
    return dst


def _build(replays: Path, out: Path, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("verbose", False)
    return build_dataset([replays], kw.pop("config", CFG), out, **kw)


def test_bad_files_are_listed_and_skipped(tmp_path: Path) -> None:
    src = _copy(tmp_path / "replays", SHORT[:2])
    good = (src / "corridor-40.replay").read_bytes()
    (src / "truncated.replay").write_bytes(good[:-30])
    (src / "random.replay").write_bytes(os.urandom(3000))
    (src / "empty.replay").write_bytes(b"")
    shutil.copy(src / "corridor-0.replay", src / "zz-copy.replay")
    res = _build(src, tmp_path / "ds")
    m = read_manifest(tmp_path / "ds")
    assert [e["id"] for e in m["episodes"]] == ["corridor-0", "corridor-40"]
    reasons = {Path(s["file"]).name: (s["kind"], s["reason"]) for s in m["skipped"]}
    assert reasons["empty.replay"] == ("format", "format error: empty file")
    assert reasons["truncated.replay"][0] == "format" and "30 bytes short" in \
        reasons["truncated.replay"][1]
    assert reasons["random.replay"][0] == "format"
    assert reasons["zz-copy.replay"] == ("duplicate", "duplicate of corridor-0.replay (same "
                                         "content hash)")
    assert m["totals"]["used_replays"] == 2 and m["totals"]["skipped"] == 4
    assert sorted(res.simulated) == ["corridor-0", "corridor-40"]


def test_desynced_replay_is_skipped_with_reason(tmp_path: Path) -> None:
    src = _copy(tmp_path / "replays", SHORT[:1])
    rep = read_replay(CORPUS / "corridor-0.replay")
    write_replay(src / "cut.replay", rep.map_data, rep.inputs[:50], True)
    write_replay(src / "extra.replay", rep.map_data, [*list(rep.inputs), 0, 0, 0], True)
    _build(src, tmp_path / "ds")
    skipped = {Path(s["file"]).name: s for s in read_manifest(tmp_path / "ds")["skipped"]}
    assert skipped["cut.replay"]["kind"] == "desynced"
    assert "never reached the exit" in skipped["cut.replay"]["reason"]
    assert "inputs left over" in skipped["extra.replay"]["reason"]


def test_rerun_touch_and_frame_skip(tmp_path: Path) -> None:
    src = _copy(tmp_path / "replays", SHORT[:3])
    out = tmp_path / "ds"
    first = _build(src, out)
    assert len(first.simulated) == 3 and first.store_written
    # The store directory is as readable as the folder it sits in (both made as mkdir makes).
    (store,) = [p for p in out.iterdir() if p.name.startswith("store-")]
    assert stat.S_IMODE(store.stat().st_mode) == stat.S_IMODE(out.stat().st_mode)
    again = _build(src, out)
    assert again.simulated == [] and not again.store_written
    assert again.manifest["manifest_hash"] == first.manifest["manifest_hash"]
    # Same content rewritten (v1 re-encode, new mtime): still nothing to simulate.
    write_replay(src / "corridor-0.replay", read_replay(src / "corridor-0.replay"))
    assert _build(src, out).simulated == []
    # Edit one replay: only it is simulated again.
    rep = read_replay(src / "corridor-16.replay")
    write_replay(src / "corridor-16.replay", rep.map_data, rep.inputs, success=False)
    edited = _build(src, out)
    assert edited.simulated == ["corridor-16"] and edited.store_written
    assert next(e for e in edited.manifest["episodes"] if e["id"] == "corridor-16")["success"] \
        is False
    # A different frame_skip changes every key.
    fs2 = _build(src, out, config=ObservationConfig(frame_skip=2))
    assert sorted(fs2.simulated) == sorted(SHORT[:3])
    assert fs2.manifest["totals"]["steps"] > first.manifest["totals"]["steps"]
    assert len([p for p in out.iterdir() if p.name.startswith("store-")]) == 1


def test_warm_rerun_hashes_only_restamped_store_files(tmp_path: Path, monkeypatch) -> None:
    from torchrl_bc.data import manifest as mf

    src = _copy(tmp_path / "replays", SHORT[:2])
    out = tmp_path / "ds"
    store = out / _build(src, out).manifest["store"]
    hashed: list[str] = []
    real = mf._sha256_file
    monkeypatch.setattr(mf, "_sha256_file", lambda p: hashed.append(p.name) or real(p))
    assert not _build(src, out).store_written and hashed == []  # stamps unchanged: no hash
    n_files = len(read_manifest(out)["store_files"])
    assert not _build(src, out, verify=True).store_written and len(hashed) == n_files
    # touched (same bytes, new stamps): hashed once, passes, and the new stamps are recorded
    frames = store / "steps" / "player_frame.memmap"
    os.utime(frames, ns=(time.time_ns(), time.time_ns()))
    hashed.clear()
    assert not _build(src, out).store_written and hashed == ["player_frame.memmap"]
    hashed.clear()
    assert not _build(src, out).store_written and hashed == []
    # a flipped byte whose mtime is set back still changed the ctime: caught, store rewritten
    good = frames.read_bytes()
    st = frames.stat()
    frames.write_bytes(good[:100] + bytes([good[100] ^ 0xFF]) + good[101:])
    os.utime(frames, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _build(src, out).store_written and frames.read_bytes() == good


_CHILD = """
import sys
from torchrl_bc.data.build import build_dataset
from torchrl_bc.obs import ObservationConfig
if __name__ == "__main__":
    build_dataset([sys.argv[1]], ObservationConfig(), sys.argv[2], workers=int(sys.argv[3]),
                  progress=False, verbose=False)
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_killed_build_resumes(tmp_path: Path, workers: int) -> None:
    src = _copy(tmp_path / "replays", SHORT)
    out = tmp_path / "ds"
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    proc = subprocess.Popen([sys.executable, str(script), str(src), str(out), str(workers)],
                            start_new_session=True)
    entries = out / "cache" / "episodes"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if entries.is_dir() and any(p.suffix == ".json" for p in entries.iterdir()):
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the build and its workers, mid-flight
    proc.wait()
    done = {json.loads(p.read_text())["replay_id"] for p in entries.glob("*.json")}
    assert done, "the child wrote no entry before it was killed"
    (out / ".tmp-store-left").mkdir(exist_ok=True)  # what a kill during consolidation leaves
    res = _build(src, out)
    assert set(res.simulated) == set(SHORT) - done
    m = read_manifest(out)
    assert sorted(e["id"] for e in m["episodes"]) == sorted(SHORT)
    assert not (out / ".tmp-store-left").exists()
    clean = _build(src, tmp_path / "clean")
    assert clean.manifest["manifest_hash"] == m["manifest_hash"]


def test_mirrored_episodes_follow_their_source_split(tmp_path: Path) -> None:
    src = _copy(tmp_path / "replays", SHORT[:4])
    res = _build(src, tmp_path / "ds", mirror=True, val_fraction=0.5)
    eps = res.manifest["episodes"]
    mirrors = [e for e in eps if e["mirrored"]]
    assert mirrors, "no mirrored corridor replay still wins"
    by_id = {e["id"]: e for e in eps}
    for e in mirrors:
        src_ep = by_id[e["id"].removesuffix("#mirror")]
        assert e["split"] == src_ep["split"] and e["source_level"] == src_ep["level_hash"]
        assert e["level_hash"] != src_ep["level_hash"]


@pytest.mark.slow
def test_shared_corpus_manifest(shared_data: Path, tmp_path: Path) -> None:
    """The issue's must-show: 127 used episodes, the 2 defective files and the duplicate named."""
    res = build_dataset([shared_data / "replays"], CFG, tmp_path / "ds", workers=2,
                        progress=False, verbose=False)
    m = res.manifest
    assert m["totals"]["files"] == 130 and m["totals"]["used_replays"] == 127
    skipped = {Path(s["file"]).name: s for s in m["skipped"]}
    defective = {"20251022_151333_train_simple_100001.replay",
                 "20251023_095301_train_complex_100001.replay"}
    assert defective <= set(skipped)
    assert all("1 byte short" in skipped[f]["reason"] for f in defective)
    assert [s["kind"] for s in m["skipped"]].count("duplicate") == 1
    used = {Path(e["file"]).name for e in m["episodes"]}
    assert not used & defective
    from torchrl_bc.data import BCDataset

    ds = BCDataset(tmp_path / "ds")
    assert ds.n_steps() == m["totals"]["steps"] == int(ds.episodes["length"].sum())
    warm = build_dataset([shared_data / "replays"], CFG, tmp_path / "ds", progress=False,
                         verbose=False)
    assert warm.simulated == [] and warm.seconds < 2.0


def test_prepare_and_training_read_one_data_config(tmp_path: Path) -> None:
    """``prepare`` reads the ``data`` section into the DataConfig training uses: same defaults,
    same values, unknown or mistyped keys named."""
    from torchrl_bc.commands.prepare import read_config
    from torchrl_bc.data import DataConfig
    from torchrl_bc.train.config import load_config

    cfg = tmp_path / "run.yaml"
    cfg.write_text("architecture: tiny\nobservation: {frame_skip: 2}\n"
                   "data: {replays: some/dir, trim_idle_start: true, val_fraction: 0.2}\n")
    obs, data = read_config(cfg)
    run = load_config(cfg)
    assert data == run.data and obs == run.observation
    assert data.replays == ("some/dir",) and data.trim_idle_start and data.workers == 0
    assert DataConfig().n_workers() == min(4, os.cpu_count() or 1) == data.n_workers()
    for bad, needle in (("{workerz: 2}", "data.workerz"), ("{mirror: 1}", "data.mirror"),
                        ("{workers: -1}", "data.workers")):
        cfg.write_text(f"data: {bad}\n")
        with pytest.raises(ValueError, match=needle):
            read_config(cfg)
