"""Planner: solves small levels quickly, output wins exactly on its last input."""

from __future__ import annotations

import numpy as np
import pytest

from torchrl_bc.levels.distance import DistanceMap, tile_mask
from torchrl_bc.levels.generator import build_candidate
from torchrl_bc.levels.mapwriter import LevelMap, tile_center
from torchrl_bc.levels.planner import solve_map
from torchrl_bc.sim import Simulator


def _walk_level() -> bytes:
    lm = LevelMap()
    lm.tiles[2:20, 8:11] = 0
    lm.spawn = tile_center(2, 10)
    lm.exits.append((*tile_center(19, 10), *tile_center(10, 10)))
    return lm.to_bytes()


@pytest.mark.parametrize("style", ["shortest", "human"])
def test_planner_solves_small_level(style: str) -> None:
    data = _walk_level()
    res = solve_map(data, budget_s=30, style=style)
    assert res.solved, res.reason
    trace = Simulator(data).run_inputs(res.inputs)
    assert trace.win_frame == res.inputs.size  # wins exactly on the last input
    assert res.ticks_per_s > 0


@pytest.mark.parametrize("family", ["gaps", "mines", "locked_doors"])
def test_planner_solves_generated_families(family: str) -> None:
    data = build_candidate(1, family, 0.3)
    res = solve_map(data, budget_s=60, max_expansions=20000)
    assert res.solved, res.reason
    assert Simulator(data).run_inputs(res.inputs).win_frame == res.inputs.size


def test_no_exit_is_reported_not_raised() -> None:
    lm = LevelMap()
    lm.tiles[2:10, 8:11] = 0
    lm.spawn = tile_center(2, 10)
    res = solve_map(lm.to_bytes(), budget_s=1)
    assert not res.solved and "no exit" in res.reason


def test_tile_masks_and_distance_field() -> None:
    assert tile_mask(1).all() and not tile_mask(0).any()
    assert tile_mask(2)[:12].all() and not tile_mask(2)[12:].any()  # top half
    sim = Simulator(_walk_level())
    dm = DistanceMap(sim.tiles)
    field = dm.field_to(*[v * 6 for v in tile_center(19, 10)], reach=20)
    near = field[dm.node_of(*[v * 6 for v in tile_center(17, 10)])]
    far = field[dm.node_of(*[v * 6 for v in tile_center(3, 10)])]
    assert np.isfinite(far) and far > near
    assert not dm.free[0, 0]  # inside the border


@pytest.mark.slow
def test_planner_solves_shared_test_maps(shared_data) -> None:
    known_hard = {"complex-path-switch-required", "official_004_basics_redux"}
    failed = []
    for path in sorted((shared_data / "maps").iterdir()):
        data = path.read_bytes()
        res = solve_map(data, budget_s=60, source=path.name)
        if "no exit" in res.reason:
            continue
        if not res.solved:
            failed.append(path.name)
        else:
            assert Simulator(data).run_inputs(res.inputs).win_frame == res.inputs.size
    assert set(failed) <= known_hard, failed


def test_solve_cli_writes_winning_replay(tmp_path) -> None:
    from torchrl_bc.cli import main
    from torchrl_bc.replay.format import read_replay

    src = tmp_path / "walk.map"
    src.write_bytes(_walk_level())
    out = tmp_path / "walk.replay"
    assert main(["solve", str(src), "--out", str(out), "--budget-s", "30"]) == 0
    rep = read_replay(out)
    assert rep.version == 1 and rep.success
    assert Simulator(rep.map_data).run_inputs(rep.inputs).win_frame == rep.n_ticks
