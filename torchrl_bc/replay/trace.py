"""Run replays through the simulator and compare the per-tick result with golden traces.

A trace is the ground truth the whole pipeline leans on: if our simulator drifts from the
reference by one bit, demonstrations stop reaching the exit. Comparison is therefore bitwise on
floats and reports the first diverging tick, which is where debugging starts. The :class:`Trace`
record itself is the simulator's (``torchrl_bc.sim.Trace``), re-exported here.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from torchrl_bc.io import atomic_write_bytes
from torchrl_bc.replay.actions import INPUT_TO_HOR, INPUT_TO_JUMP
from torchrl_bc.replay.format import Replay, ReplayFormatError
from torchrl_bc.sim.trace import Trace

__all__ = [
    "STATE_DEAD",
    "STATE_DYING",
    "STATE_WON",
    "Comparison",
    "Trace",
    "compare_trace",
    "load_trace",
    "save_trace",
    "simulate_replay",
]

STATE_DEAD, STATE_DYING, STATE_WON = 6, 7, 8
_TRACE_KEYS = ("pos", "vel", "state", "win_frame", "death_frame")


def _coerce_trace(obj: Any) -> Trace:
    """Normalise a trace-like object or mapping (e.g. a loaded npz) into a :class:`Trace`."""
    get = obj.get if isinstance(obj, Mapping) else lambda k, d=None: getattr(obj, k, d)
    entities = get("entities", None)
    return Trace(
        pos=np.asarray(get("pos"), dtype=np.float64).reshape(-1, 2),
        vel=np.asarray(get("vel"), dtype=np.float64).reshape(-1, 2),
        state=np.asarray(get("state"), dtype=np.int8).reshape(-1),
        win_frame=int(get("win_frame", -1)),
        death_frame=int(get("death_frame", -1)),
        entities=None if entities is None else np.asarray(entities, dtype=np.float64),
    )


def simulate_replay(replay: Replay, record_entities: bool = False) -> Trace:
    """Simulate ``replay`` from a fresh simulator; stops after the winning or killing tick.

    Map defects the simulator detects are re-raised as :class:`ReplayFormatError` so callers
    handle every bad file one way.
    """
    from torchrl_bc.sim import MapFormatError, Simulator  # the sim is heavy; import on use

    try:
        sim = Simulator(replay.map_data)
        if hasattr(sim, "run_inputs"):
            return _coerce_trace(sim.run_inputs(replay.inputs, record_entities=record_entities))
        return _step_through(sim, replay.inputs, record_entities)
    except MapFormatError as exc:
        raise ReplayFormatError(replay.source, f"bad map data: {exc}") from exc


def _step_through(sim: Any, inputs: np.ndarray, record_entities: bool) -> Trace:
    """Tick the simulator input by input, recording state after each tick."""
    n = int(inputs.shape[0])
    pos = np.empty((n, 2), np.float64)
    vel = np.empty((n, 2), np.float64)
    state = np.empty(n, np.int8)
    ents: list[np.ndarray] = []
    hors, jumps = INPUT_TO_HOR[inputs].tolist(), INPUT_TO_JUMP[inputs].tolist()
    win_frame = death_frame = -1
    t = 0
    for t in range(n):
        sim.tick(hors[t], jumps[t])
        ninja = sim.ninja
        pos[t] = (ninja.xpos, ninja.ypos)
        vel[t] = (ninja.xspeed, ninja.yspeed)
        state[t] = ninja.state
        if record_entities:
            ents.append(np.asarray(sim.entity_table(), dtype=np.float64))
        if state[t] == STATE_WON:
            win_frame = t + 1
            break
        if state[t] in (STATE_DEAD, STATE_DYING):
            death_frame = t + 1
            break
    length = t + 1 if n else 0
    entities = None
    if record_entities:
        entities = np.stack(ents) if ents else np.empty((0, 0, 5), np.float64)
    return Trace(pos[:length], vel[:length], state[:length], win_frame, death_frame, entities)


def save_trace(trace: Trace, path: str | os.PathLike[str]) -> Path:
    """Atomically write ``trace`` as an npz with the same keys as the golden files."""
    arrays: dict[str, np.ndarray] = {
        "pos": np.asarray(trace.pos, np.float64),
        "vel": np.asarray(trace.vel, np.float64),
        "state": np.asarray(trace.state, np.int8),
        "win_frame": np.asarray(trace.win_frame, np.int64),
        "death_frame": np.asarray(trace.death_frame, np.int64),
    }
    if trace.entities is not None:
        arrays["entities"] = np.asarray(trace.entities, np.float64)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_trace(path: str | os.PathLike[str]) -> Trace:
    """Load a trace npz (ours or golden; extra golden keys are ignored)."""
    with np.load(path) as npz:
        missing = [k for k in _TRACE_KEYS if k not in npz.files]
        if missing:
            raise ValueError(f"{path}: not a trace, missing {', '.join(missing)}")
        return _coerce_trace({k: npz[k] for k in npz.files})


@dataclass(frozen=True)
class Comparison:
    """Result of comparing a trace against a golden one.

    ``tick`` is the 1-based tick of the first divergence (None when exact or when only a
    scalar field differs without a tick of its own); ``ours`` / ``golden`` are the values there.
    """

    exact: bool
    field: str | None = None
    tick: int | None = None
    ours: Any = None
    golden: Any = None

    def describe(self) -> str:
        if self.exact:
            return "exact"
        where = f"tick {self.tick}: " if self.tick is not None else ""
        return f"{where}{self.field} ours={_fmt(self.ours)} golden={_fmt(self.golden)}"


def _fmt(value: Any) -> str:
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":  # repr round-trips, so the printed value is the exact bits
            return "(" + ", ".join(repr(float(x)) for x in value.reshape(-1)) + ")"
        return str(value.tolist())
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return str(value)


def _bits_equal(a: np.ndarray, b: np.ndarray, nan_equal: bool) -> np.ndarray:
    """Per-element bitwise float64 equality (so -0.0 != 0.0); optionally NaN == any NaN."""
    a = np.ascontiguousarray(a, np.float64)
    b = np.ascontiguousarray(b, np.float64)
    same = a.view(np.uint64) == b.view(np.uint64)
    if nan_equal:
        same |= np.isnan(a) & np.isnan(b)
    return same


def _first_bad_tick(eq: np.ndarray) -> int | None:
    """First row index where a per-element equality array has a False, or None."""
    rows = eq.reshape(eq.shape[0], -1).all(axis=1) if eq.ndim > 1 else eq
    bad = np.flatnonzero(~rows)
    return int(bad[0]) if bad.size else None


def compare_trace(
    trace: Trace, golden: Trace | str | os.PathLike[str], *, entities: bool = True
) -> Comparison:
    """Compare ``trace`` with ``golden`` (a Trace or an npz path); report the first divergence.

    Per-tick fields are checked over the common length in order pos, vel, state, entities (when
    both have them and ``entities`` is true); the earliest tick wins. Then length, win_frame and
    death_frame.
    """
    gold = golden if isinstance(golden, Trace) else load_trace(golden)
    n = min(trace.ticks, gold.ticks)
    candidates: list[tuple[int, int, str, np.ndarray, np.ndarray, np.ndarray]] = []
    per_tick: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = [
        ("pos", trace.pos[:n], gold.pos[:n], _bits_equal(trace.pos[:n], gold.pos[:n], False)),
        ("vel", trace.vel[:n], gold.vel[:n], _bits_equal(trace.vel[:n], gold.vel[:n], False)),
        ("state", trace.state[:n], gold.state[:n], trace.state[:n] == gold.state[:n]),
    ]
    if entities and trace.entities is not None and gold.entities is not None:
        ours_e, gold_e = trace.entities, gold.entities
        if ours_e.shape[1:] != gold_e.shape[1:]:
            return Comparison(False, "entities shape", None, ours_e.shape, gold_e.shape)
        per_tick.append(
            ("entities", ours_e[:n], gold_e[:n], _bits_equal(ours_e[:n], gold_e[:n], True))
        )
    for order, (name, ours, gold_v, eq) in enumerate(per_tick):
        t = _first_bad_tick(eq)
        if t is not None:
            candidates.append((t, order, name, ours, gold_v, eq))
    if candidates:
        t, _, name, ours, gold_v, eq = min(candidates, key=lambda c: (c[0], c[1]))
        if name == "entities":
            row = int(np.flatnonzero(~eq[t].all(axis=-1))[0])
            return Comparison(False, f"entities[{row}]", t + 1, ours[t, row], gold_v[t, row])
        ours_v, gold_val = ours[t], gold_v[t]
        if name == "state":
            ours_v, gold_val = int(ours_v), int(gold_val)
        return Comparison(False, name, t + 1, ours_v, gold_val)
    if trace.ticks != gold.ticks:
        return Comparison(False, "length", n + 1, trace.ticks, gold.ticks)
    for name in ("win_frame", "death_frame"):
        ours_f, gold_f = getattr(trace, name), getattr(gold, name)
        if ours_f != gold_f:
            happened = [f for f in (ours_f, gold_f) if f > 0]
            return Comparison(False, name, min(happened) if happened else None, ours_f, gold_f)
    return Comparison(True)
