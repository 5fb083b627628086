"""The compact replay file format (v0 legacy and v1).

Layouts (all integers little-endian):

* v1: ``<III`` version=1, map_len, n_inputs; one success byte (0/1); ``map_len`` bytes of map
  data; ``n_inputs`` input bytes.
* v0: ``<II`` map_len, n_inputs; map data; inputs. No success byte: v0 files are successful.

The first uint32 tells them apart: a small number (< 256) is a version, anything larger is a v0
map length (real maps are >= 1235 bytes).

Every defect raises :class:`ReplayFormatError` naming the file and the defect, so a corpus scan can
report and skip bad files instead of dying on an ``IndexError`` deep in the simulator.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from torchrl_bc.io import FileRejectedError, atomic_write_bytes, read_regular_file

__all__ = [
    "CURRENT_VERSION",
    "MAX_INPUT",
    "MAX_INPUTS",
    "MAX_MAP_LEN",
    "MAX_REPLAY_BYTES",
    "MIN_MAP_LEN",
    "Replay",
    "ReplayFormatError",
    "encode_replay",
    "parse_replay",
    "read_replay",
    "write_replay",
]

CURRENT_VERSION = 1
#: Largest valid input byte (bit0 jump, bit1 right, bit2 left).
MAX_INPUT = 7
#: Smallest map that holds its fixed layout: 184 header bytes, 42x23 tile bytes (184..1149), 40
#: uint16 entity counts (1150..1229) and the 5-byte ninja record (1230..1234) whose spawn x/y sit at
#: 1231/1232. Entity records follow from 1235. We deliberately do not demand that the record area
#: be a whole number of 5-byte records: real maps carry trailing bytes (3 of the shared human
#: replays and 72 of the 120 entity replays have map lengths that are not 1235 + 5k), and deeper
#: entity validation is the simulator's job (``MapFormatError``).
MIN_MAP_LEN = 1235
#: Longest map data accepted: the fixed layout plus ``torchrl_bc.sim.mapdata.MAX_ENTITIES``
#: (1024) records of at most 10 bytes. Kept equal to ``mapdata.MAX_MAP_LEN`` (a test checks it)
#: without importing the simulator package, which the warm dataset path must not load.
MAX_MAP_LEN = MIN_MAP_LEN + 10 * 1024
#: Most input bytes accepted: one hour at 60 Hz, 10.8x the 20000-tick episode limit
#: (``sim.constants.MAX_TICKS``); the longest shared human replay has 1848.
MAX_INPUTS = 60 * 60 * 60
#: Largest replay file read at all: v1 header and flag (13 bytes) + MAX_MAP_LEN + MAX_INPUTS,
#: about 227 KB. :func:`read_replay` checks the size before reading, so a 3 GB file or a link to
#: ``/dev/zero`` costs nothing.
MAX_REPLAY_BYTES = 13 + MAX_MAP_LEN + MAX_INPUTS
#: First uint32 values below this are format versions; larger ones are v0 map lengths.
_VERSION_LIMIT = 256

_V0_HEADER = struct.Struct("<II")
_V1_HEADER = struct.Struct("<III")


class ReplayFormatError(ValueError):
    """A replay file is malformed; the message names the file and what is wrong with it."""

    def __init__(self, source: str | os.PathLike[str] | None, defect: str) -> None:
        self.source = None if source is None else str(source)
        self.defect = defect
        super().__init__(f"{self.source or '<bytes>'}: {defect}")


@dataclass(frozen=True, eq=False)
class Replay:
    """One parsed replay. ``inputs`` is a read-only uint8 array, one byte per 60 Hz tick."""

    map_data: bytes
    inputs: np.ndarray
    success: bool
    version: int
    source: str | None = None

    @cached_property
    def content_hash(self) -> str:
        """sha256 of the canonical v1 encoding, so v0 and v1 copies of one replay hash equal."""
        return hashlib.sha256(encode_replay(self.map_data, self.inputs, self.success)).hexdigest()

    @property
    def n_ticks(self) -> int:
        return int(self.inputs.shape[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Replay):
            return NotImplemented
        return (
            self.map_data == other.map_data
            and self.success == other.success
            and self.version == other.version
            and np.array_equal(self.inputs, other.inputs)
        )

    def __hash__(self) -> int:
        return hash(self.content_hash)

    def __repr__(self) -> str:
        return (
            f"Replay(v{self.version}, map_len={len(self.map_data)}, n_inputs={self.n_ticks}, "
            f"success={self.success}, source={self.source!r})"
        )


def _as_inputs(
    inputs: np.ndarray | bytes | bytearray | list[int], source: str | None
) -> np.ndarray:
    """Validate and freeze an input sequence as a 1-D uint8 array."""
    arr = np.asarray(inputs if not isinstance(inputs, bytes | bytearray) else bytearray(inputs))
    if arr.ndim != 1:
        raise ReplayFormatError(source, f"inputs must be 1-D, got shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() > MAX_INPUT):
        bad = int(np.flatnonzero((arr < 0) | (arr > MAX_INPUT))[0])
        raise ReplayFormatError(
            source, f"input byte {int(arr[bad])} at tick {bad} is out of range 0..{MAX_INPUT}"
        )
    out = arr.astype(np.uint8, copy=True)
    out.setflags(write=False)
    return out


def _check_map(map_data: bytes, source: str | None) -> None:
    if len(map_data) < MIN_MAP_LEN:
        raise ReplayFormatError(
            source,
            f"map data is {len(map_data)} bytes, too short for its entity records "
            f"(need at least {MIN_MAP_LEN}: tiles, entity counts and the ninja record)",
        )


def parse_replay(
    data: bytes, source: str | os.PathLike[str] | None = None, *, allow_short_inputs: bool = False
) -> Replay:
    """Parse replay bytes; ``source`` only labels errors and the result.

    ``allow_short_inputs`` reproduces the reference reader on files whose input area is shorter
    than declared (it slices what is there). Two shared human replays lost a header byte and need
    this to be read at all; by default such a file is rejected because its fields are shifted.
    """
    src = None if source is None else str(source)
    size = len(data)
    if size == 0:
        raise ReplayFormatError(src, "empty file")
    if size < 4:
        raise ReplayFormatError(src, f"truncated header: {size} bytes, need at least 8")
    (first,) = struct.unpack_from("<I", data, 0)
    if first < _VERSION_LIMIT:
        if first != CURRENT_VERSION:
            raise ReplayFormatError(src, f"unsupported replay version {first}")
        need = _V1_HEADER.size + 1
        if size < need:
            raise ReplayFormatError(src, f"truncated v1 header: {size} bytes, need {need}")
        version, map_len, n_inputs = _V1_HEADER.unpack_from(data, 0)
        flag = data[_V1_HEADER.size]
        if flag > 1:
            raise ReplayFormatError(src, f"success flag is {flag}, expected 0 or 1")
        success = bool(flag)
        offset = need
    else:
        if size < _V0_HEADER.size:
            raise ReplayFormatError(src, f"truncated v0 header: {size} bytes, need 8")
        map_len, n_inputs = _V0_HEADER.unpack_from(data, 0)
        version, success, offset = 0, True, _V0_HEADER.size

    if map_len > MAX_MAP_LEN:
        raise ReplayFormatError(
            src, f"header declares map_len={map_len}, more than the {MAX_MAP_LEN} bytes a map "
            "may hold"
        )
    if n_inputs > MAX_INPUTS:
        raise ReplayFormatError(
            src, f"header declares n_inputs={n_inputs}, more than the {MAX_INPUTS} allowed"
        )
    expected = offset + map_len + n_inputs
    if size > expected:
        raise ReplayFormatError(
            src,
            f"{size - expected} trailing byte(s): header declares map_len={map_len}, "
            f"n_inputs={n_inputs} ({expected} bytes) but the file has {size}",
        )
    if size < expected:
        short = expected - size
        if not allow_short_inputs or size < offset + map_len:
            raise ReplayFormatError(
                src,
                f"file is {short} byte{'s' if short != 1 else ''} short: header declares "
                f"map_len={map_len}, n_inputs={n_inputs} ({expected} bytes)"
                f" but the file has {size}",
            )
    map_data = bytes(data[offset : offset + map_len])
    _check_map(map_data, src)
    inputs = _as_inputs(np.frombuffer(data, np.uint8, offset=offset + map_len), src)
    return Replay(map_data=map_data, inputs=inputs, success=success, version=version, source=src)


def read_bounded(path: str | os.PathLike[str], limit: int = MAX_REPLAY_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (see
    :func:`torchrl_bc.io.read_regular_file`), else :class:`ReplayFormatError`."""
    try:
        return read_regular_file(path, limit)
    except FileRejectedError as exc:
        raise ReplayFormatError(path, exc.defect) from exc


def read_replay(path: str | os.PathLike[str], *, allow_short_inputs: bool = False) -> Replay:
    """Read (see :func:`read_bounded`) and parse one replay file (see :func:`parse_replay`)."""
    return parse_replay(read_bounded(path), path, allow_short_inputs=allow_short_inputs)


def encode_replay(
    map_data: bytes,
    inputs: np.ndarray | bytes | list[int],
    success: bool = True,
    *,
    version: int = CURRENT_VERSION,
) -> bytes:
    """Serialise a replay. v1 is the default; v0 exists for tests and can only store successes."""
    map_data = bytes(map_data)
    _check_map(map_data, None)
    arr = _as_inputs(inputs, None)
    if version == CURRENT_VERSION:
        head = _V1_HEADER.pack(version, len(map_data), arr.size) + bytes([int(bool(success))])
    elif version == 0:
        if not success:
            raise ValueError("v0 replays cannot record a failure; write v1")
        head = _V0_HEADER.pack(len(map_data), arr.size)
    else:
        raise ValueError(f"unknown replay version {version}")
    return head + map_data + arr.tobytes()


def write_replay(
    path: str | os.PathLike[str],
    replay: Replay | bytes,
    inputs: np.ndarray | bytes | list[int] | None = None,
    success: bool = True,
) -> Path:
    """Atomically write a v1 replay, from a :class:`Replay` or from (map_data, inputs, success).

    Atomic (temp file in the same directory, then ``os.replace``) because corpora and caches
    trust any replay file that exists.
    """
    if isinstance(replay, Replay):
        if inputs is not None:
            raise TypeError("pass either a Replay or map_data + inputs, not both")
        payload = encode_replay(replay.map_data, replay.inputs, replay.success)
    else:
        if inputs is None:
            raise TypeError("inputs are required when writing from map data")
        payload = encode_replay(replay, inputs, success)
    path = Path(path)
    atomic_write_bytes(path, payload)
    return path
