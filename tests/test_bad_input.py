"""Bad input never crashes a batch, never executes code, never exhausts memory (issue 12 §3).

Map defects are one ``MapFormatError`` naming the file; only regular files of bounded size are
read; a dataset store never unpickles anything; damaged stores and cache entries are detected
and rebuilt; non-UTF-8 file names survive into strict UTF-8 JSON.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from mapkit import build_map, floor_row

from torchrl_bc.cli import main
from torchrl_bc.data.build import build_dataset
from torchrl_bc.data.manifest import (
    StoreCorruptError,
    read_manifest,
    row_path,
    store_index,
    write_manifest,
)
from torchrl_bc.obs import ObservationBuilder, ObservationConfig
from torchrl_bc.replay import format as fmt
from torchrl_bc.replay.format import ReplayFormatError, read_replay, write_replay
from torchrl_bc.resources import SAMPLE_CORPUS
from torchrl_bc.sim import MapFormatError, Simulator, mapdata, parse_map

CORPUS = SAMPLE_CORPUS
CFG = ObservationConfig()
TILE_BYTE = mapdata.TILES_AT + 5 + 42 * 3  # column 5, row 3


def _corridor(name: str = "corridor-0"):
    return read_replay(CORPUS / f"{name}.replay")


def _bad_tile_replay(path: Path, tid: int = 200) -> Path:
    rep = _corridor()
    data = bytearray(rep.map_data)
    data[TILE_BYTE] = tid
    write_replay(path, bytes(data), rep.inputs, True)
    return path


def _build(src: Path, out: Path, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("verbose", False)
    return build_dataset([src], kw.pop("config", CFG), out, **kw)


def _copy(dst: Path, names: list[str]) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(CORPUS / f"{name}.replay", dst / f"{name}.replay")
    return dst


# -- map data ------------------------------------------------------------------------------------
@pytest.mark.parametrize("tid", [38, 146, 255])
def test_tile_without_shape_is_a_map_error_naming_source_and_cell(tid: int) -> None:
    data = bytearray(build_map(floor_row(14), spawn=(20, 58)))
    data[TILE_BYTE] = tid
    with pytest.raises(MapFormatError) as exc:
        parse_map(bytes(data), "lvl.replay")
    msg = str(exc.value)
    assert msg.startswith("lvl.replay: tile id ")
    assert f"tile id {tid} at column 5, row 3 (byte {TILE_BYTE})" in msg


def test_glitched_tiles_stay_legal_and_drawable() -> None:
    """Ids 34..37 are empty in the reference; the simulator and every modality accept them."""
    tiles = floor_row(14) | {(x, 10): 34 + x % 4 for x in range(42)}
    sim = Simulator(build_map(tiles, spawn=(20, 58)))
    builder = ObservationBuilder(CFG)
    builder.bind(sim)
    obs = builder.observe(sim)
    assert obs["player_frame"].shape == (1, 84, 84)


def test_spawn_outside_the_level_is_refused() -> None:
    edge = build_map(floor_row(14), spawn=(mapdata.MAX_SPAWN_X, mapdata.MAX_SPAWN_Y))
    assert parse_map(edge).spawn_x == 176  # the rectangle's edge is still inside
    for spawn in [(177, 50), (50, 101), (255, 255)]:
        with pytest.raises(MapFormatError, match=r"^m: ninja spawn .* outside the level"):
            parse_map(build_map(floor_row(14), spawn=spawn), "m")


def test_entity_cap() -> None:
    mine = (1, 60, 58, 0, 0)
    ok = build_map(floor_row(14), spawn=(20, 58), records=[mine] * (mapdata.MAX_ENTITIES - 1))
    assert len(parse_map(ok).entities) == mapdata.MAX_ENTITIES  # the ninja's record counts
    with pytest.raises(MapFormatError, match=f"more than {mapdata.MAX_ENTITIES} entity"):
        parse_map(ok + bytes(mine), "m")
    # 5,000 extra entities cannot even reach the map parser inside a replay file
    big = build_map(floor_row(14), spawn=(20, 58), records=[mine] * 5000)
    payload = struct.pack("<III", 1, len(big), 1) + b"\x01" + big + b"\x00"
    with pytest.raises(ReplayFormatError, match="map_len=26235, more than"):
        fmt.parse_replay(payload, "x.replay")


def test_replay_limits_agree_with_the_map_format() -> None:
    assert fmt.MAX_MAP_LEN == mapdata.MAX_MAP_LEN
    assert fmt.MIN_MAP_LEN == mapdata.MIN_MAP_LEN
    from torchrl_bc.sim.constants import MAX_TICKS

    assert fmt.MAX_INPUTS >= 10 * MAX_TICKS
    assert fmt.MAX_REPLAY_BYTES == 13 + fmt.MAX_MAP_LEN + fmt.MAX_INPUTS


def test_too_many_inputs_declared_is_refused_before_allocating() -> None:
    rep = _corridor()
    payload = bytearray(fmt.encode_replay(rep.map_data, rep.inputs))
    payload[8:12] = (2**32 - 1).to_bytes(4, "little")
    with pytest.raises(ReplayFormatError, match="n_inputs=4294967295, more than"):
        fmt.parse_replay(bytes(payload), "x.replay", allow_short_inputs=True)


# -- what gets read ------------------------------------------------------------------------------
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.replay"
    os.mkfifo(fifo)
    result: list[BaseException | object] = []
    worker = threading.Thread(target=lambda: result.append(_catch(read_replay, fifo)),
                              daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # unblock the reader before failing, so the test process can exit
        with open(fifo, "wb"):
            pass
        pytest.fail("read_replay blocked on a FIFO")
    assert isinstance(result[0], ReplayFormatError)
    assert str(result[0]) == f"{fifo}: not a regular file (a FIFO); refusing to read it"


def _catch(fn, *args):
    try:
        return fn(*args)
    except Exception as exc:
        return exc


def test_link_to_dev_zero_and_huge_file_are_refused_unread(tmp_path: Path) -> None:
    zero = tmp_path / "zero.replay"
    zero.symlink_to("/dev/zero")
    with pytest.raises(ReplayFormatError, match=r"not a regular file \(a device\)"):
        read_replay(zero)
    huge = tmp_path / "huge.replay"
    with huge.open("wb") as fh:  # sparse: costs no disk
        fh.truncate(3 * 2**30)
    with pytest.raises(ReplayFormatError, match=rf"3221225472 bytes, more than the "
                                                rf"{fmt.MAX_REPLAY_BYTES}"):
        read_replay(huge)
    (tmp_path / "dir.replay").mkdir()
    with pytest.raises(ReplayFormatError, match=r"not a regular file \(a directory\)"):
        read_replay(tmp_path / "dir.replay")
    link = tmp_path / "link.replay"  # a link to a regular replay is fine
    link.symlink_to(CORPUS / "corridor-0.replay")
    assert read_replay(link) == _corridor()


# -- commands ------------------------------------------------------------------------------------
def test_render_reports_a_map_error_in_one_line(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    bad = _bad_tile_replay(tmp_path / "bad.replay")
    assert main(["render", str(bad), "--out", str(tmp_path / "x.gif")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {bad}: tile id 200 at column 5")
    assert not (tmp_path / "x.gif").exists()


def test_trace_and_verify_go_on_after_a_map_error(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    src = _copy(tmp_path / "replays", ["corridor-0"])
    bad = _bad_tile_replay(src / "bad.replay")
    os.mkfifo(src / "pipe.replay")
    out = tmp_path / "traces"
    code = main(["trace", str(bad), str(src / "pipe.replay"), str(src / "corridor-0.replay"),
                 "--out-dir", str(out)])
    err = capsys.readouterr().err.splitlines()
    assert code == 1 and (out / "corridor-0.npz").is_file()
    assert any(line.startswith(f"ERROR {bad}: bad map data:") and "tile id 200" in line
               for line in err)
    assert any(line.startswith(f"ERROR {src / 'pipe.replay'}: not a regular file")
               for line in err)
    assert not any("Traceback" in line for line in err)
    golden = tmp_path / "golden"
    golden.mkdir()
    for stem in ("bad", "corridor-0", "pipe"):
        shutil.copy(out / "corridor-0.npz", golden / f"{stem}.npz")
    code = main(["verify", str(src), "--golden", str(golden)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert "OK corridor-0" in lines
    assert any(line.startswith("ERROR bad: bad map data:") for line in lines)
    assert any(line.startswith("ERROR pipe: not a regular file") for line in lines)
    assert lines[-1] == "verified: 1 exact, 0 differ, 2 errors"


def test_build_skips_every_kind_of_bad_file(tmp_path: Path) -> None:
    src = _copy(tmp_path / "replays", ["corridor-0", "corridor-40"])
    _bad_tile_replay(src / "bad-tile.replay")
    os.mkfifo(src / "pipe.replay")
    (src / "zero.replay").symlink_to("/dev/zero")
    with (src / "huge.replay").open("wb") as fh:
        fh.truncate(3 * 2**30)
    res = _build(src, tmp_path / "ds")
    m = res.manifest
    assert sorted(e["id"] for e in m["episodes"]) == ["corridor-0", "corridor-40"]
    reasons = {Path(s["file"]).name: (s["kind"], s["reason"]) for s in m["skipped"]}
    assert reasons["bad-tile.replay"][0] == "map_error"
    assert "tile id 200 at column 5, row 3" in reasons["bad-tile.replay"][1]
    assert reasons["pipe.replay"] == ("format", "format error: not a regular file (a FIFO); "
                                      "refusing to read it")
    assert reasons["zero.replay"][0] == "format" and "a device" in reasons["zero.replay"][1]
    assert "3221225472 bytes" in reasons["huge.replay"][1]


def test_a_replay_that_crashes_its_worker_is_skipped(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Even an unexpected exception in one job is one skipped file, not a dead build."""
    import torchrl_bc.data.build as build

    src = _copy(tmp_path / "replays", ["corridor-0", "corridor-40"])
    real = build.run_job

    def flaky(job):
        if job.replay_id == "corridor-40":
            raise IndexError("simulated bug")
        return real(job)

    monkeypatch.setattr(build, "run_job", flaky)
    m = _build(src, tmp_path / "ds").manifest
    assert [e["id"] for e in m["episodes"]] == ["corridor-0"]
    assert m["skipped"] == [{"file": str(src / "corridor-40.replay"), "kind": "error",
                             "reason": "error: IndexError: simulated bug"}]
    monkeypatch.setattr(build, "run_job", real)  # a later build retries it
    assert sorted(_build(src, tmp_path / "ds").simulated) == ["corridor-40"]


# -- the store never executes code ----------------------------------------------------------------
class _Payload:
    """Unpickling this creates a directory: proof that the pickle ran."""

    def __init__(self, flag: Path) -> None:
        self.flag = str(flag)

    def __reduce__(self):
        return (os.mkdir, (self.flag,))


def _plant_pickle(store: Path, flag: Path) -> None:
    """Make ``steps`` a pickled non-tensor node, the way tensordict loads ``other.pickle``."""
    sub = store / "episodes"
    meta = json.loads((sub / "meta.json").read_text())
    meta["_type"] = "<class 'tensordict.tensorclass.NonTensorData'>"
    (sub / "meta.json").write_text(json.dumps(meta))
    with (sub / "other.pickle").open("wb") as fh:
        pickle.dump({"data": _Payload(flag)}, fh)


def test_planted_pickle_is_never_unpickled(tmp_path: Path) -> None:
    from tensordict import TensorDict

    from torchrl_bc.data import BCDataset

    src = _copy(tmp_path / "replays", ["corridor-0"])
    ds = tmp_path / "ds"
    store = ds / _build(src, ds).manifest["store"]
    flag = tmp_path / "PICKLE_RAN"
    _plant_pickle(store, flag)
    with pytest.raises(StoreCorruptError, match=r"unexpected file\(s\) \['episodes/other"):
        BCDataset(ds)
    assert not flag.exists()
    # An attacker who also rewrote the manifest's index still gets nothing executed.
    m = read_manifest(ds)
    m["store_files"] = store_index(store)
    write_manifest(ds, m)
    with pytest.raises(StoreCorruptError, match="pickle"):
        BCDataset(ds)
    assert not flag.exists()
    # Control: the planted payload is live, so the two refusals above are what protected us.
    with pytest.warns(FutureWarning), pytest.raises(Exception):  # noqa: B017
        TensorDict.load_memmap(store)  # tensordict's default still unpickles
    assert flag.is_dir()


# -- damaged stores and cache entries ------------------------------------------------------------
def _flip(path: Path, at: int = -10) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_damaged_store_is_refused_then_rebuilt(tmp_path: Path) -> None:
    from torchrl_bc.data import BCDataset

    src = _copy(tmp_path / "replays", ["corridor-0", "corridor-40"])
    ds = tmp_path / "ds"
    first = _build(src, ds)
    store = ds / first.manifest["store"]
    frames = store / "steps" / "player_frame.memmap"
    good = frames.read_bytes()
    _flip(frames, len(good) // 2)
    BCDataset(ds)  # sizes only: a flipped byte passes the cheap open check ...
    with pytest.raises(StoreCorruptError, match=re.escape("player_frame.memmap: content differs")):
        BCDataset(ds, verify=True)  # ... and is caught by the full one
    again = _build(src, ds)  # prepare re-hashes and rewrites it from the cache
    assert again.store_written and again.simulated == []
    assert frames.read_bytes() == good
    BCDataset(ds, verify=True)
    # truncated memmap: refused at open, whatever the mode
    with frames.open("r+b") as fh:
        fh.truncate(len(good) - 7)
    with pytest.raises(StoreCorruptError, match=rf"{len(good) - 7} bytes, {len(good)} recorded"):
        BCDataset(ds)
    assert _build(src, ds).store_written and frames.read_bytes() == good
    # a forced rebuild replaces the store even when the manifest's checksums were faked
    _flip(frames, 100)
    m = read_manifest(ds)
    m["store_files"] = store_index(store)
    write_manifest(ds, m)
    assert not _build(src, ds).store_written  # the fake passes every check ...
    assert _build(src, ds, force=True).store_written  # ... but --force replaces it
    assert frames.read_bytes() == good


def test_damaged_cache_entries_are_simulated_again(tmp_path: Path) -> None:
    from torchrl_bc.data import BCDataset

    src = _copy(tmp_path / "replays", ["corridor-0", "corridor-40", "corridor-16"])
    ds = tmp_path / "ds"
    first = _build(src, ds)
    keys = {e["id"]: e["key"] for e in first.manifest["episodes"]}
    entries = ds / "cache" / "episodes"
    ref = BCDataset(ds)
    expect = {i: ref.episode(i)["action"].clone() for i in range(ref.n_episodes)}
    del ref
    _flip(entries / f"{keys['corridor-0']}.npz")  # flipped bytes
    a, b = entries / f"{keys['corridor-40']}.npz", entries / f"{keys['corridor-16']}.npz"
    tmp = a.read_bytes()
    a.write_bytes(b.read_bytes())  # swapped files
    b.write_bytes(tmp)
    res = _build(src, ds, force=True)
    assert sorted(res.simulated) == ["corridor-0", "corridor-16", "corridor-40"]
    ds2 = BCDataset(ds, verify=True)
    for i, actions in expect.items():
        assert np.array_equal(ds2.episode(i)["action"], actions)
    # garbage metadata: that entry is simulated again, the others are not
    (entries / f"{keys['corridor-16']}.json").write_bytes(b"\xff{not json")
    assert _build(src, ds).simulated == ["corridor-16"]
    # swapped level graphs: every episode of both levels is simulated again
    levels = sorted((ds / "cache" / "levels").glob("*.npz"))
    assert len(levels) == 3
    tmp = levels[0].read_bytes()
    levels[0].write_bytes(levels[1].read_bytes())
    levels[1].write_bytes(tmp)
    assert len(_build(src, ds, force=True).simulated) == 2
    BCDataset(ds, verify=True)


def test_garbage_manifest_is_refused_then_rewritten(tmp_path: Path) -> None:
    from torchrl_bc.data import BCDataset

    src = _copy(tmp_path / "replays", ["corridor-0"])
    ds = tmp_path / "ds"
    _build(src, ds)
    (ds / "manifest.json").write_bytes(b"[1, 2")
    with pytest.raises(ValueError, match=r"manifest.json: not a manifest"):
        BCDataset(ds)
    res = _build(src, ds)
    assert res.store_written and res.simulated == []
    BCDataset(ds, verify=True)


def test_leftover_temp_files_are_cleaned(tmp_path: Path) -> None:
    src = _copy(tmp_path / "replays", ["corridor-0"])
    ds = tmp_path / "ds"
    _build(src, ds)
    old = time.time() - 2 * 3600
    stale = [ds / "cache" / "episodes" / ".abc.npz.x1.tmp", ds / ".manifest.json.x2.tmp",
             ds / "cache" / "levels" / ".lvl.npz.x3.tmp"]
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"partial")
        os.utime(p, (old, old))
    fresh = ds / "cache" / "episodes" / ".live.npz.x4.tmp"  # a concurrent build's, keep it
    fresh.write_bytes(b"in flight")
    (ds / ".tmp-store-killed").mkdir()
    _build(src, ds)
    assert not any(p.exists() for p in stale)
    assert fresh.exists() and not (ds / ".tmp-store-killed").exists()


# -- file names that are not UTF-8 ---------------------------------------------------------------
def test_non_utf8_names_give_strict_utf8_manifest(tmp_path: Path) -> None:
    src = tmp_path / "replays"
    src.mkdir()
    raw = os.fsencode(src) + b"/caf\xe9.replay"
    try:
        name = os.fsdecode(raw)
        shutil.copy(CORPUS / "corridor-0.replay", name)
    except (OSError, UnicodeError) as exc:
        pytest.skip(f"this filesystem cannot hold a non-UTF-8 name: {exc}")
    bad = os.fsdecode(os.fsencode(src) + b"/bad\xff.replay")
    _bad_tile_replay(Path(bad))
    _build(src, tmp_path / "ds")
    payload = (tmp_path / "ds" / "manifest.json").read_bytes()
    m = json.loads(payload.decode("utf-8", errors="strict"))

    def strings(obj):
        if isinstance(obj, str):
            yield obj
        elif isinstance(obj, dict):
            for k, v in obj.items():
                yield k
                yield from strings(v)
        elif isinstance(obj, list):
            for v in obj:
                yield from strings(v)

    for s in strings(m):
        s.encode("utf-8", errors="strict")  # no lone surrogates anywhere
    ep = m["episodes"][0]
    assert ep["file"].endswith("/caf\\xe9.replay")
    assert row_path(ep) == Path(name) and row_path(ep).is_file()
    skipped = m["skipped"][0]
    assert skipped["kind"] == "map_error" and skipped["file"].endswith("/bad\\xff.replay")
    assert row_path(skipped) == Path(bad)
    assert "\\xff" in skipped["reason"]  # the map error names the file, escaped too
    cache_meta = next((tmp_path / "ds" / "cache" / "episodes").glob("*.json")).read_bytes()
    json.loads(cache_meta.decode("utf-8", errors="strict"))


def test_evaluate_level_discovery_skips_bad_levels(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from torchrl_bc.train.evaluate import discover_levels

    src = _copy(tmp_path / "levels", ["corridor-0"])
    bad = _bad_tile_replay(src / "bad.replay")
    data = bytearray(_corridor().map_data)
    data[mapdata.TILES_AT] = 99
    (src / "bad.map").write_bytes(bytes(data))
    os.mkfifo(src / "pipe.map")
    (src / "good.map").write_bytes(_corridor("corridor-40").map_data)
    levels = discover_levels(str(src))
    assert sorted(lv.name for lv in levels) == ["corridor-0", "good"]
    err = capsys.readouterr().err.splitlines()
    assert sorted(err) == sorted([
        f"skipping level {src / 'bad.map'}: tile id 99 at column 0, row 0 (byte 184) is not a "
        "tile (valid ids are 0..37); 1 bad tile byte in all",
        f"skipping level {bad}: tile id 200 at column 5, row 3 (byte 315) is not a tile (valid "
        "ids are 0..37); 1 bad tile byte in all",
        f"skipping level {src / 'pipe.map'}: not a regular file (a FIFO); refusing to read it",
    ])


def test_trace_and_verify_print_non_utf8_names(tmp_path: Path) -> None:
    """Output with a name that is not UTF-8 must not crash a strict UTF-8 stdout."""
    import subprocess
    import sys

    src = tmp_path / "replays"
    src.mkdir()
    try:
        name = os.fsdecode(os.fsencode(src) + b"/r\xe9.replay")
        shutil.copy(CORPUS / "corridor-0.replay", name)
    except (OSError, UnicodeError) as exc:
        pytest.skip(f"this filesystem cannot hold a non-UTF-8 name: {exc}")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "traces"
    proc = subprocess.run([sys.executable, "-m", "torchrl_bc.cli", "trace", name, "--out-dir",
                           str(out)], capture_output=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert b"r\\xe9.npz (" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "torchrl_bc.cli", "verify", str(src),
                           "--golden", str(out)], capture_output=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert b"OK r\\xe9\n" in proc.stdout


def test_map_file_loaders_refuse_non_regular_files(tmp_path: Path) -> None:
    """The env, the SB3 level list and `solve` read map files through the bounded reader."""
    import subprocess
    import sys

    from torchrl_bc.env.npp_env import _load_map
    from torchrl_bc.sb3.env import resolve_levels
    from torchrl_bc.sim.mapdata import MapFormatError

    fifo = tmp_path / "level.map"
    os.mkfifo(fifo)
    with pytest.raises(MapFormatError, match=re.escape("level.map")):
        _load_map(str(fifo), np.random.default_rng(0))
    with pytest.raises(MapFormatError, match=re.escape("level.map")):
        resolve_levels([str(fifo)])
    out = subprocess.run([sys.executable, "-m", "torchrl_bc.cli", "solve", str(fifo), "--out",
                          str(tmp_path / "x.replay")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "level.map" in out.stderr and "Traceback" not in out.stderr
