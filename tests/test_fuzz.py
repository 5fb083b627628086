"""Property-based fuzzing of the replay parser and of map bytes -> simulator -> observations.

The invariant everywhere: either the documented error (``ReplayFormatError`` /
``MapFormatError``) whose message starts with the source's name, or a valid result (bounded
sizes, observations of the configured shapes); never another exception, a hang or unbounded
memory. The default run is small and deterministic (``derandomize=True``, a few seconds); the
``slow`` variants run the same properties far longer. Mutations of real replays use
``../shared/data`` when present and always the shipped sample corpus.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st
from mapkit import build_map

from torchrl_bc.obs import ObservationBuilder, ObservationConfig
from torchrl_bc.replay import format as fmt
from torchrl_bc.replay.format import Replay, ReplayFormatError, parse_replay, read_replay
from torchrl_bc.resources import SAMPLE_CORPUS
from torchrl_bc.sim import MapFormatError, Simulator
from torchrl_bc.sim.mapdata import MAX_ENTITIES, TILES_AT

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared" / "data").resolve()
SOURCE = "fuzzed.replay"
TICKS = 90  # per example: enough to move, collide and trigger entities

FAST = settings(max_examples=40, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LONG = settings(max_examples=1500, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@lru_cache(maxsize=1)
def real_replays() -> tuple[Replay, ...]:
    """The sample corpus, plus the shared human and entity replays when ../shared/data exists."""
    files = sorted(SAMPLE_CORPUS.glob("*.replay"))
    if SHARED.is_dir():
        files += sorted((SHARED / "replays").glob("*.replay"))
        files += sorted((SHARED / "entity_replays").glob("*.replay"))
    return tuple(read_replay(f, allow_short_inputs=True) for f in files)


def _note(outcome: str) -> None:
    """Count outcomes (``--hypothesis-show-statistics``) to keep the strategies balanced."""
    if currently_in_test_context():
        event(outcome)


@lru_cache(maxsize=1)
def _builder() -> ObservationBuilder:
    return ObservationBuilder(ObservationConfig())  # every modality, the graph included


def check_map(data: bytes, inputs: np.ndarray) -> bool:
    """The map invariant; True when the map was valid (and simulated and observed)."""
    try:
        sim = Simulator(data, source=SOURCE)
    except MapFormatError as exc:
        assert str(exc).startswith(f"{SOURCE}: "), str(exc)
        _note("map refused")
        return False
    _note("map simulated")
    assert len(sim.map.entities) <= MAX_ENTITIES
    builder = _builder()
    builder.bind(sim)
    first = builder.observe(sim)
    for byte in inputs[:TICKS].tolist():
        if sim.done:
            break
        sim.tick_input(byte)
    last = builder.observe(sim)
    assert first.keys() == last.keys()
    assert last["player_frame"].shape == (1, 84, 84)
    assert last["global_view"].shape == (1, 100, 176)
    assert last["graph_entity_state"].shape[0] <= MAX_ENTITIES
    return True


def check_bytes(payload: bytes) -> Replay | None:
    """The parser invariant for one file's bytes."""
    try:
        rep = parse_replay(payload, SOURCE, allow_short_inputs=True)
    except ReplayFormatError as exc:
        assert str(exc).startswith(f"{SOURCE}: "), str(exc)
        _note("file refused")
        return None
    _note("file parsed")
    assert fmt.MIN_MAP_LEN <= len(rep.map_data) <= fmt.MAX_MAP_LEN
    assert rep.n_ticks <= fmt.MAX_INPUTS and rep.inputs.max(initial=0) <= fmt.MAX_INPUT
    return rep


# -- strategies ----------------------------------------------------------------------------------
def _flip(data: bytes, flips: list[tuple[int, int]], lo: int) -> bytes:
    out = bytearray(data)
    for pos, bit in flips:
        out[lo + pos % (len(out) - lo)] ^= 1 << bit
    return bytes(out)


@st.composite
def flipped_real_maps(draw: st.DrawFn) -> tuple[bytes, np.ndarray]:
    """A real replay's map with 1..12 bit flips, mostly in the tiles and the entity area."""
    reps = real_replays()
    rep = reps[draw(st.integers(0, len(reps) - 1))]
    lo = draw(st.sampled_from([0, TILES_AT, 1150, 1230]))
    flips = draw(st.lists(st.tuples(st.integers(0, 2**16), st.integers(0, 7)),
                          min_size=1, max_size=12))
    return _flip(rep.map_data, flips, lo), rep.inputs


_record = st.tuples(st.integers(0, 40), *[st.integers(0, 255)] * 4)


@st.composite
def synthetic_maps(draw: st.DrawFn) -> bytes:
    """Random tiles, spawn, entity records and ragged tails; legal tiles and spawn unless
    ``wild`` (then any byte), so that both outcomes are common."""
    wild = draw(st.integers(0, 3)) == 0
    top = 255 if wild else 37
    tiles = draw(st.dictionaries(st.tuples(st.integers(0, 41), st.integers(0, 22)),
                                 st.integers(0, top), max_size=60))
    spawn = (draw(st.integers(0, 255 if wild else 176)),
             draw(st.integers(0, 255 if wild else 100)))
    records = draw(st.lists(_record, max_size=30))
    data = bytearray(build_map(tiles, spawn=spawn, records=records))
    counts = draw(st.lists(st.tuples(st.integers(1150, 1229), st.integers(0, 255)), max_size=4))
    for pos, value in counts:  # entity counts (the exit count steers the switch lookup)
        data[pos] = value
    tail = draw(st.binary(max_size=12))
    return bytes(data) + tail


@st.composite
def replay_files(draw: st.DrawFn) -> bytes:
    """Files with a plausible header (v0 or v1) whose fields and body may lie."""
    reps = real_replays()
    rep = reps[draw(st.integers(0, len(reps) - 1))]
    body = rep.map_data + rep.inputs.tobytes()
    lie = draw(st.integers(0, 5))  # 0: the truth; else which field lies
    map_len, n_inputs = len(rep.map_data), rep.n_ticks
    version, flag = 1, 1
    if lie == 1:
        map_len = draw(st.one_of(st.integers(0, 3000), st.integers(0, 2**32 - 1)))
    elif lie == 2:
        n_inputs = draw(st.one_of(st.integers(0, 3000), st.integers(0, 2**32 - 1)))
    elif lie == 3:
        version, flag = draw(st.sampled_from([0, 2, 255])), draw(st.integers(0, 255))
    elif lie == 4:
        body = body[: draw(st.integers(0, len(body)))]
    elif lie == 5:
        body += draw(st.binary(min_size=1, max_size=8))
    if draw(st.booleans()):
        head = struct.pack("<III", version, map_len, n_inputs) + bytes([flag])
    else:
        head = struct.pack("<II", map_len, n_inputs)
    return head + body


# -- properties ----------------------------------------------------------------------------------
@FAST
@given(st.binary(max_size=2048))
def test_parser_on_arbitrary_bytes(payload: bytes) -> None:
    check_bytes(payload)


@FAST
@given(replay_files())
def test_parser_on_lying_headers(payload: bytes) -> None:
    rep = check_bytes(payload)
    if rep is not None:  # a parsed file is also a map the pipeline handles
        check_map(rep.map_data, rep.inputs)


@FAST
@given(flipped_real_maps())
def test_bit_flipped_real_maps(case: tuple[bytes, np.ndarray]) -> None:
    data, inputs = case
    check_map(data, inputs)
    check_bytes(fmt.encode_replay(data, inputs))  # and as a whole file


@FAST
@given(synthetic_maps())
def test_synthetic_maps(data: bytes) -> None:
    check_map(data, np.array([2, 2, 3, 3, 0, 4, 5, 1] * 12, np.uint8))


def test_real_replays_stay_valid() -> None:
    """The fuzz seeds themselves pass, so the properties above do start from valid maps."""
    assert all(check_map(r.map_data, r.inputs) for r in real_replays())


def test_bad_tiles_are_the_common_map_error() -> None:
    """A flipped tile byte whose id has no shape is refused (it used to be an IndexError)."""
    rep = real_replays()[0]
    data = _flip(rep.map_data, [(0, 7)], TILES_AT)  # tile id + 128: never a shape
    assert not check_map(data, rep.inputs)


@pytest.mark.slow
@LONG
@given(st.binary(max_size=4096))
def test_parser_on_arbitrary_bytes_long(payload: bytes) -> None:
    check_bytes(payload)


@pytest.mark.slow
@LONG
@given(replay_files())
def test_parser_on_lying_headers_long(payload: bytes) -> None:
    rep = check_bytes(payload)
    if rep is not None:
        check_map(rep.map_data, rep.inputs)


@pytest.mark.slow
@LONG
@given(flipped_real_maps())
def test_bit_flipped_real_maps_long(case: tuple[bytes, np.ndarray]) -> None:
    check_map(*case)


@pytest.mark.slow
@LONG
@given(synthetic_maps())
def test_synthetic_maps_long(data: bytes) -> None:
    check_map(data, np.array([2, 2, 3, 3, 0, 4, 5, 1] * 12, np.uint8))
