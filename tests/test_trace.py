"""Trace recording, saving and comparison, with a stand-in simulator (no physics needed)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from torchrl_bc.replay.format import ReplayFormatError, encode_replay, parse_replay
from torchrl_bc.replay.trace import (
    Trace,
    compare_trace,
    load_trace,
    save_trace,
    simulate_replay,
)


def _trace(n: int = 5, with_entities: bool = False, **kw: object) -> Trace:
    t = np.arange(n, dtype=np.float64)
    ents = np.stack([np.stack([t, t + 1], axis=1)] * 5, axis=2) if with_entities else None
    fields: dict[str, object] = dict(
        pos=np.stack([t * 0.1, t * 0.2], axis=1),
        vel=np.stack([t * 0.3, -t], axis=1),
        state=np.zeros(n, np.int8),
        win_frame=-1,
        death_frame=-1,
        entities=ents,
    )
    fields.update(kw)
    return Trace(**fields)  # type: ignore[arg-type]


def test_identical_traces_are_exact() -> None:
    result = compare_trace(_trace(with_entities=True), _trace(with_entities=True))
    assert result.exact and result.describe() == "exact"


def test_first_diverging_tick_and_values() -> None:
    ours = _trace()
    vel = ours.vel.copy()
    vel[3, 1] = np.nextafter(vel[3, 1], 1.0)  # one ulp
    pos = ours.pos.copy()
    pos[4, 0] += 1.0
    result = compare_trace(_trace(vel=vel, pos=pos), ours)
    assert not result.exact
    assert (result.field, result.tick) == ("vel", 4)  # 1-based: index 3 is tick 4
    assert result.ours[1] != result.golden[1]
    assert result.describe() == (
        "tick 4: vel ours=(0.8999999999999999, -2.9999999999999996) "
        "golden=(0.8999999999999999, -3.0)"
    )


def test_pos_wins_ties_and_negative_zero_differs() -> None:
    pos = _trace().pos.copy()
    pos[0, 0] = -0.0
    vel = _trace().vel.copy()
    vel[0, 0] = 5.0
    result = compare_trace(_trace(pos=pos, vel=vel), _trace())
    assert (result.field, result.tick) == ("pos", 1)


def test_state_divergence() -> None:
    state = np.zeros(5, np.int8)
    state[2] = 3
    result = compare_trace(_trace(state=state), _trace())
    assert (result.field, result.tick, result.ours, result.golden) == ("state", 3, 3, 0)


def test_length_and_frames() -> None:
    result = compare_trace(_trace(4), _trace(5))
    assert (result.field, result.tick, result.ours, result.golden) == ("length", 5, 4, 5)
    result = compare_trace(_trace(win_frame=5), _trace())
    assert (result.field, result.tick, result.ours, result.golden) == ("win_frame", 5, 5, -1)
    result = compare_trace(_trace(death_frame=2), _trace(death_frame=3))
    assert (result.field, result.tick) == ("death_frame", 2)


def test_entities_compared_with_nan_padding_equal() -> None:
    gold = _trace(with_entities=True)
    ents = gold.entities.copy()  # type: ignore[union-attr]
    ents[:, 1, :] = np.nan
    assert compare_trace(_trace(entities=ents), _trace(entities=ents.copy())).exact
    ours = ents.copy()
    ours[2, 0, 3] = 9.0
    result = compare_trace(_trace(entities=ours), _trace(entities=ents))
    assert (result.field, result.tick) == ("entities[0]", 3)
    assert result.ours[3] == 9.0
    assert compare_trace(_trace(entities=ours), _trace(entities=ents), entities=False).exact
    assert compare_trace(_trace(entities=ours), _trace()).exact  # golden has none


def test_entity_shape_mismatch() -> None:
    result = compare_trace(_trace(with_entities=True), _trace(entities=np.zeros((5, 3, 5))))
    assert not result.exact and result.field == "entities shape"


def test_save_load_round_trip_and_keys(tmp_path: Path) -> None:
    trace = _trace(with_entities=True, win_frame=5)
    path = save_trace(trace, tmp_path / "out" / "x.npz")
    with np.load(path) as npz:
        assert sorted(npz.files) == sorted(
            ["pos", "vel", "state", "win_frame", "death_frame", "entities"]
        )
        assert npz["state"].dtype == np.int8 and npz["win_frame"] == 5
    assert compare_trace(trace, path).exact
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.npz"]
    save_trace(_trace(), tmp_path / "y.npz")
    with np.load(tmp_path / "y.npz") as npz:
        assert "entities" not in npz.files
    assert load_trace(tmp_path / "y.npz").entities is None


def test_compare_against_golden_file_layout(shared_data: Path) -> None:
    path = next(iter(sorted((shared_data / "golden" / "entity_replays").glob("*.npz"))))
    gold = load_trace(path)
    assert gold.entities is not None and gold.entities.shape[0] == gold.ticks
    assert compare_trace(gold, path).exact


# --- simulate_replay with a stand-in simulator -----------------------------------------------


class _FakeNinja:
    xpos = ypos = xspeed = yspeed = 0.0
    state = 0


class _FakeSim:
    """Moves by (hor, jump) each tick; wins at x == 3, dies at y == 2."""

    def __init__(self, map_data: bytes, solid_doors: bool = False) -> None:
        if map_data[0] == 0xFF:
            raise _FakeMapError("bad tiles")
        self.ninja = _FakeNinja()

    def tick(self, hor: int, jump: int) -> None:
        n = self.ninja
        n.xspeed, n.yspeed = float(hor), float(jump)
        n.xpos += hor
        n.ypos += jump
        n.state = 8 if n.xpos >= 3 else 6 if n.ypos >= 2 else 1

    def entity_table(self) -> np.ndarray:
        return np.array([[1.0, self.ninja.xpos, 0.0, 1.0, 0.0]])


class _FakeMapError(ValueError):
    pass


@pytest.fixture
def fake_sim(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("torchrl_bc.sim")
    module.Simulator = _FakeSim  # type: ignore[attr-defined]
    module.MapFormatError = _FakeMapError  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchrl_bc.sim", module)


def _replay(inputs: list[int], first: int = 0) -> object:
    return parse_replay(encode_replay(bytes([first]) + bytes(1244), inputs), "fake.replay")


@pytest.mark.usefixtures("fake_sim")
def test_simulate_stops_at_win() -> None:
    trace = simulate_replay(_replay([2, 2, 2, 2, 2]), record_entities=True)  # type: ignore[arg-type]
    assert trace.ticks == 3 and trace.win_frame == 3 and trace.death_frame == -1
    assert trace.pos[:, 0].tolist() == [1.0, 2.0, 3.0]
    assert trace.state.tolist() == [1, 1, 8]
    assert trace.entities is not None and trace.entities.shape == (3, 1, 5)


@pytest.mark.usefixtures("fake_sim")
def test_simulate_stops_at_death_and_decodes_inputs() -> None:
    trace = simulate_replay(_replay([4, 7, 1, 1]))  # type: ignore[arg-type]
    assert trace.death_frame == 3 and trace.win_frame == -1 and trace.ticks == 3
    assert trace.pos.tolist() == [[-1.0, 0.0], [-1.0, 1.0], [-1.0, 2.0]]
    assert trace.entities is None


@pytest.mark.usefixtures("fake_sim")
def test_simulate_runs_to_end_of_inputs() -> None:
    trace = simulate_replay(_replay([0, 0]))  # type: ignore[arg-type]
    assert trace.ticks == 2 and trace.win_frame == trace.death_frame == -1
    assert simulate_replay(_replay([])).ticks == 0  # type: ignore[arg-type]


@pytest.mark.usefixtures("fake_sim")
def test_simulator_map_errors_become_format_errors() -> None:
    with pytest.raises(ReplayFormatError, match=re.escape("fake.replay: bad map data")):
        simulate_replay(_replay([0], first=0xFF))  # type: ignore[arg-type]


@pytest.mark.usefixtures("fake_sim")
def test_run_inputs_is_preferred_when_available(monkeypatch: pytest.MonkeyPatch) -> None:
    def run_inputs(self: _FakeSim, inputs: np.ndarray, record_entities: bool = False) -> object:
        return types.SimpleNamespace(
            pos=[[9.0, 9.0]], vel=[[0.0, 0.0]], state=[8], win_frame=1, death_frame=-1
        )

    monkeypatch.setattr(_FakeSim, "run_inputs", run_inputs, raising=False)
    trace = simulate_replay(_replay([0, 0]))  # type: ignore[arg-type]
    assert trace.pos.tolist() == [[9.0, 9.0]] and trace.win_frame == 1
    assert trace.state.dtype == np.int8 and trace.entities is None


# --- the real simulator against golden traces (slow; needs torchrl_bc.sim) ----------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["replays", "entity_replays"])
def test_real_simulator_matches_golden(shared_data: Path, kind: str) -> None:
    pytest.importorskip("torchrl_bc.sim", reason="simulator not available yet")
    from torchrl_bc.cli import main

    args = ["verify", str(shared_data / kind), "--golden", str(shared_data / "golden" / kind)]
    args += ["--allow-short"] + (["--entities"] if kind == "entity_replays" else [])
    assert main(args) == 0
