"""Replay format: round trips, action mapping, every defect, and the shared corpus."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pytest

from torchrl_bc.replay.actions import (
    ACTION_NAMES,
    INPUT_TO_ACTION,
    action_to_input,
    actions_to_inputs,
    decode_input,
    encode_input,
    inputs_to_actions,
)
from torchrl_bc.replay.format import (
    MIN_MAP_LEN,
    Replay,
    ReplayFormatError,
    encode_replay,
    parse_replay,
    read_replay,
    write_replay,
)

#: The two shared human replays that lost one header byte (their input area is 1 byte short).
SHORT_FILES = {
    "20251022_151333_train_simple_100001.replay",
    "20251023_095301_train_complex_100001.replay",
}


def _map(n: int = 1245, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


INPUTS = np.array([0, 1, 2, 3, 4, 5, 6, 7, 0, 2], np.uint8)


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("success", [True, False])
def test_v1_round_trip(tmp_path: Path, success: bool) -> None:
    path = write_replay(tmp_path / "a.replay", _map(), INPUTS, success)
    replay = read_replay(path)
    assert replay.version == 1
    assert replay.success is success
    assert replay.map_data == _map()
    np.testing.assert_array_equal(replay.inputs, INPUTS)
    assert replay.inputs.dtype == np.uint8 and not replay.inputs.flags.writeable
    assert replay.source == str(path)
    assert path.read_bytes()[:4] == struct.pack("<I", 1)


def test_v0_round_trip_and_rewrite_as_v1(tmp_path: Path) -> None:
    data = encode_replay(_map(), INPUTS, version=0)
    assert struct.unpack_from("<II", data) == (1245, INPUTS.size)
    v0 = parse_replay(data, "legacy.replay")
    assert (v0.version, v0.success) == (0, True)
    v1 = read_replay(write_replay(tmp_path / "b.replay", v0))
    assert v1.version == 1
    assert v1.map_data == v0.map_data and np.array_equal(v1.inputs, v0.inputs)
    assert v1.content_hash == v0.content_hash  # hash is over the canonical v1 encoding
    assert v1 != v0  # versions differ
    assert v1 == read_replay(tmp_path / "b.replay")


def test_content_hash_tracks_content() -> None:
    a = parse_replay(encode_replay(_map(), INPUTS), "a")
    assert len(a.content_hash) == 64
    assert a.content_hash != parse_replay(encode_replay(_map(), INPUTS, False), "a").content_hash
    assert a.content_hash != parse_replay(encode_replay(_map(seed=1), INPUTS), "a").content_hash


def test_write_is_atomic_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "c.replay"
    write_replay(path, _map(), INPUTS)
    write_replay(path, _map(seed=2), INPUTS[:3])
    assert read_replay(path).inputs.size == 3
    assert [p.name for p in path.parent.iterdir()] == ["c.replay"]


def test_write_rejects_bad_fields(tmp_path: Path) -> None:
    with pytest.raises(ReplayFormatError, match="out of range"):
        write_replay(tmp_path / "x.replay", _map(), [0, 8])
    with pytest.raises(ValueError, match="v0"):
        encode_replay(_map(), INPUTS, success=False, version=0)
    with pytest.raises(TypeError):
        write_replay(tmp_path / "x.replay", _map())
    assert not (tmp_path / "x.replay").exists()


def test_empty_inputs_round_trip() -> None:
    replay = parse_replay(encode_replay(_map(), []), "e")
    assert replay.inputs.shape == (0,)


# --- action mapping ----------------------------------------------------------------------------


def test_decode_every_input_byte() -> None:
    hor, jump = decode_input(np.arange(8))
    assert hor.tolist() == [0, 0, 1, 1, -1, -1, 0, 0]
    assert jump.tolist() == [0, 1, 0, 1, 0, 1, 0, 1]
    assert [int(x) for x in decode_input(5)] == [-1, 1]


def test_action_mapping_both_ways() -> None:
    assert ACTION_NAMES == ("NOOP", "LEFT", "RIGHT", "JUMP", "LEFT+JUMP", "RIGHT+JUMP")
    assert actions_to_inputs(np.arange(6)).tolist() == [0, 4, 2, 1, 5, 3]
    assert inputs_to_actions(np.array([0, 4, 2, 1, 5, 3])).tolist() == [0, 1, 2, 3, 4, 5]
    assert int(inputs_to_actions(6)) == ACTION_NAMES.index("NOOP")
    assert int(inputs_to_actions(7)) == ACTION_NAMES.index("JUMP")
    assert INPUT_TO_ACTION.tolist() == [0, 3, 2, 5, 1, 4, 0, 3]
    assert action_to_input(4) == 5 and isinstance(action_to_input(4), int)
    assert inputs_to_actions(INPUTS.reshape(2, 5)).shape == (2, 5)


def test_action_round_trip_preserves_game_input() -> None:
    inputs = np.arange(8)
    back = actions_to_inputs(inputs_to_actions(inputs))
    for a, b in zip(decode_input(inputs), decode_input(back), strict=True):
        np.testing.assert_array_equal(a, b)
    hor, jump = decode_input(np.arange(6))
    assert encode_input(hor, jump).tolist() == list(range(6))


@pytest.mark.parametrize("bad", [8, -1, 255])
def test_action_mapping_rejects_out_of_range(bad: int) -> None:
    with pytest.raises(ValueError):
        inputs_to_actions(np.array([0, bad]))
    with pytest.raises(ValueError):
        actions_to_inputs(np.array([bad if bad != 8 else 6]))


# --- defects -----------------------------------------------------------------------------------


def _v1(map_len: int = 1245, n: int = 4, flag: int = 1, map_bytes: int | None = None) -> bytes:
    body = bytes(map_len if map_bytes is None else map_bytes)
    return struct.pack("<III", 1, map_len, n) + bytes([flag]) + body + bytes(n)


BAD_CASES = {
    "empty": (b"", "empty file"),
    "truncated_header_2": (b"\x01\x00", "truncated header"),
    "truncated_v1_header": (struct.pack("<II", 1, 1245), "truncated v1 header"),
    "v1_missing_flag": (struct.pack("<III", 1, 1245, 0), "truncated v1 header"),
    "truncated_v0_header": (struct.pack("<I", 5000) + b"\x00\x01", "truncated v0 header"),
    "unknown_version": (struct.pack("<III", 7, 1245, 0) + bytes(1246), "unsupported"),
    "bad_flag": (_v1(flag=2), "success flag"),
    "too_short_v1": (_v1()[:-1], "1 byte short"),
    "too_short_map": (_v1()[:900], "short"),
    "trailing_v1": (_v1() + b"\x00\x00", "2 trailing byte"),
    "trailing_v0": (encode_replay(bytes(1245), [1, 2], version=0) + b"\x00", "trailing"),
    "short_v0": (encode_replay(bytes(1245), [1, 2], version=0)[:-2], "short"),
    "input_gt_7": (encode_replay(bytes(1245), [1, 2])[:-1] + b"\x08", "input byte 8 at tick 1"),
    "map_too_short_v1": (_v1(map_len=1234), "too short for its entity records"),
    "map_too_short_v0": (struct.pack("<II", 1000, 0) + bytes(1000), "too short for its entity"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_raises_format_error_naming_file(tmp_path: Path, case: str) -> None:
    data, defect = BAD_CASES[case]
    path = tmp_path / f"case_{case}.replay"
    path.write_bytes(data)
    with pytest.raises(ReplayFormatError) as exc:
        read_replay(path)
    assert path.name in str(exc.value)
    assert defect in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_missing_file_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(ReplayFormatError, match=re.escape("nope.replay")):
        read_replay(tmp_path / "nope.replay")


def test_allow_short_inputs_reads_what_is_there() -> None:
    data = _v1(n=4)[:-1]
    with pytest.raises(ReplayFormatError):
        parse_replay(data, "s")
    replay = parse_replay(data, "s", allow_short_inputs=True)
    assert replay.inputs.size == 3 and len(replay.map_data) == 1245
    with pytest.raises(ReplayFormatError):  # never lets the map itself be cut short
        parse_replay(_v1(n=4)[:-5], "s", allow_short_inputs=True)


def test_map_length_boundary() -> None:
    assert len(parse_replay(_v1(map_len=MIN_MAP_LEN), "ok").map_data) == MIN_MAP_LEN
    # trailing bytes after the last whole 5-byte entity record are legal
    assert len(parse_replay(_v1(map_len=MIN_MAP_LEN + 3), "ok").map_data) == MIN_MAP_LEN + 3


def test_replay_is_frozen() -> None:
    replay = parse_replay(_v1(), "f")
    with pytest.raises(AttributeError):
        replay.success = False  # type: ignore[misc]
    with pytest.raises(ValueError):
        replay.inputs[0] = 3
    assert isinstance(replay, Replay) and "map_len=1245" in repr(replay)


# --- shared corpus -----------------------------------------------------------------------------


def test_all_shared_human_replays_parse(shared_data: Path) -> None:
    files = sorted((shared_data / "replays").glob("*.replay"))
    assert len(files) == 130
    versions = {0: 0, 1: 0}
    for path in files:
        if path.name in SHORT_FILES:
            continue
        replay = read_replay(path)
        versions[replay.version] += 1
        assert replay.inputs.size > 0
    assert versions == {0: 97, 1: 31}
    hashes = {read_replay(p).content_hash for p in files if p.name not in SHORT_FILES}
    assert len(hashes) == len(files) - len(SHORT_FILES) - 1  # one byte-identical duplicate


def test_shared_short_files_are_rejected_then_read_leniently(shared_data: Path) -> None:
    for name in sorted(SHORT_FILES):
        path = shared_data / "replays" / name
        with pytest.raises(ReplayFormatError, match="1 byte short") as exc:
            read_replay(path)
        assert name in str(exc.value)
        replay = read_replay(path, allow_short_inputs=True)
        golden = np.load(shared_data / "golden" / "replays" / f"{path.stem}.npz")
        assert replay.map_data == golden["map_data"].tobytes()
        np.testing.assert_array_equal(replay.inputs, golden["inputs"])


def test_all_shared_entity_replays_parse(shared_data: Path) -> None:
    files = sorted((shared_data / "entity_replays").glob("*.replay"))
    assert len(files) == 120
    for path in files:
        replay = read_replay(path)
        golden = np.load(shared_data / "golden" / "entity_replays" / f"{path.stem}.npz")
        assert replay.version == 1
        assert replay.map_data == golden["map_data"].tobytes()
        np.testing.assert_array_equal(replay.inputs[: golden["inputs"].size], golden["inputs"])


def test_shared_human_replays_match_golden_inputs(shared_data: Path) -> None:
    for path in sorted((shared_data / "replays").glob("*.replay")):
        if path.name in SHORT_FILES:
            continue
        replay = read_replay(path)
        golden = np.load(shared_data / "golden" / "replays" / f"{path.stem}.npz")
        assert replay.map_data == golden["map_data"].tobytes()
        np.testing.assert_array_equal(replay.inputs, golden["inputs"])
