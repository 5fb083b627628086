"""ObservationBuilder: hand-computed pixels, tile shapes, game state, graph, fresh arrays."""

from __future__ import annotations

import numpy as np
import pytest
from mapkit import build_map, floor_row

from torchrl_bc.obs import (
    GAME_STATE_FEATURES,
    N_GAME_STATE,
    ObservationBuilder,
    ObservationConfig,
    clear_level_cache,
)
from torchrl_bc.obs.raster import TILE_MASKS, TILE_MIRROR, TILE_VALUE, VALUES
from torchrl_bc.sim import Simulator
from torchrl_bc.sim.tiles import ARCS, TILE_ORTHO

# Spawn at 6 px units (30, 50) = world (180, 300); crop_scale 2 puts it at crop column 90.
SPAWN = (30, 50)


def _observe(map_data: bytes, config: ObservationConfig | None = None):
    sim = Simulator(map_data)
    builder = ObservationBuilder(config or ObservationConfig())
    builder.bind(sim)
    return sim, builder, builder.observe(sim)


def _wall_map() -> bytes:
    # Inner column x=9 is world cell 10: pixels 240..263, 60 px right of the ninja.
    tiles = {(9, y): 1 for y in range(23)}
    return build_map(tiles, spawn=SPAWN)


def test_shapes_and_dtypes() -> None:
    _, _, obs = _observe(_wall_map())
    assert obs["player_frame"].shape == (1, 84, 84) and obs["player_frame"].dtype == np.uint8
    assert obs["global_view"].shape == (1, 100, 176) and obs["global_view"].dtype == np.uint8
    assert obs["game_state"].shape == (N_GAME_STATE,) == (len(GAME_STATE_FEATURES),)
    assert obs["game_state"].dtype == np.float32
    assert obs["action_mask"].dtype == bool and obs["action_mask"].all()
    assert obs["graph_ninja_node"].dtype == np.int32


def test_ninja_centred_and_wall_on_the_right() -> None:
    _, _, obs = _observe(_wall_map())
    pf = obs["player_frame"][0]
    # Ninja at world (180, 300) -> crop origin (90 - 42, 150 - 42): it covers pixel (42, 42).
    assert pf[42, 42] == VALUES["ninja"]
    # radius 10 px / scale 2 = 5 px: row 42 is ninja from column 37/38 to 46/47, not beyond.
    assert pf[42, 39] == pf[42, 45] == pf[39, 42] == pf[45, 42] == VALUES["ninja"]
    assert pf[42, 49] == 0 and pf[42, 35] == 0
    # The wall spans world x 240..264 -> crop columns 240/2 - 48 = 72 .. 84 (all rows).
    assert (pf[:, 72:84] == TILE_VALUE).all()
    # Left of the ninja is open space (world x 96..170 holds no tiles).
    assert (pf[:, :35] == 0).all()


def test_crop_is_x_columns_y_rows() -> None:
    # A floor below the ninja must appear as rows (bottom), not columns.
    tiles = floor_row(12)  # inner y=12 = world cell 13: 312..335 px, ninja y 300
    _, _, obs = _observe(build_map(tiles, spawn=SPAWN))
    pf = obs["player_frame"][0]
    # World y 312 -> row 312/2 - 108 = 48; 336 -> 60.
    assert (pf[48:60, :] == TILE_VALUE).all()
    assert (pf[:47, :][pf[:47, :] != VALUES["ninja"]] == 0).all()


def test_global_view_far_right_and_entities() -> None:
    # A tile far right (inner x=38 -> world x 936..959) plus gold and a deadly mine.
    tiles = {(38, 5): 1}
    records = [(2, 160, 20, 0, 0), (1, 120, 80, 0, 0)]  # gold at (960,120), mine at (720,480)
    _, _, obs = _observe(build_map(tiles, spawn=SPAWN, records=records))
    gv = obs["global_view"][0]
    assert (gv[24:28, 156:160] == TILE_VALUE).all()  # world x 936..960, y 144..168, / 6
    assert gv[20, 160] == VALUES["gold"]
    assert gv[80, 120] == VALUES["mine_deadly"]
    assert gv[50, 30] == VALUES["ninja"]
    interior = gv[4:96, 108:172]  # x > 642 px, inside the border ring
    assert interior.any()
    assert (gv[:, :4] == TILE_VALUE).all() and (gv[:, -4:] == TILE_VALUE).all()  # border ring


def test_official_level_far_right_not_empty(shared_data) -> None:
    maps = sorted((shared_data / "maps").glob("official_*"))
    assert maps
    for path in maps:
        _, _, obs = _observe(path.read_bytes())
        assert obs["global_view"][0, 4:96, 108:172].any(), path.name


def test_tile_shapes_match_ortho_tables() -> None:
    # The simulator puts an orthogonal segment on every boundary half edge that its solid
    # shape covers; the raster must be solid along exactly those half edges (arcs excepted).
    for tid in range(1, 34):
        if tid in ARCS:
            continue
        m, ortho = TILE_MASKS[tid], TILE_ORTHO[tid]
        halves = {0: m[0, :12], 1: m[0, 12:], 4: m[-1, :12], 5: m[-1, 12:],
                  6: m[:12, 0], 7: m[12:, 0], 10: m[:12, -1], 11: m[12:, -1]}
        for k, line in halves.items():
            assert (line.mean() > 0.5) == bool(ortho[k]), (tid, k)
    assert TILE_MASKS[3][:, 20].all() and not TILE_MASKS[3][:, 3].any()  # right half
    assert TILE_MASKS[6][1, 1] == 1 and TILE_MASKS[6][22, 22] == 0  # top-left solid
    assert TILE_MASKS[10][2, 2] == 1 and TILE_MASKS[10][23, 23] == 0  # convex, corner (0,0)
    assert TILE_MASKS[14][2, 2] == 1 and TILE_MASKS[14][20, 20] == 0  # concave pipe


def test_mirror_table_is_an_involution() -> None:
    assert (TILE_MIRROR[TILE_MIRROR] == np.arange(len(TILE_MIRROR))).all()
    for tid in range(len(TILE_MIRROR)):
        assert np.array_equal(TILE_MASKS[TILE_MIRROR[tid]], TILE_MASKS[tid][:, ::-1])
    assert TILE_MIRROR[3] == 5 and TILE_MIRROR[6] == 7


def test_game_state_features() -> None:
    records = [(3, 100, 50, 0, 0), (4, 60, 50, 0, 0)]  # exit (600, 300), switch (360, 300)
    sim, builder, obs = _observe(build_map(floor_row(12), spawn=SPAWN, records=records))
    names = [n for n, _ in GAME_STATE_FEATURES]
    gs = dict(zip(names, obs["game_state"].tolist(), strict=True))
    assert gs["x"] == pytest.approx(180 / 1056 * 2 - 1)
    assert gs["state_immobile"] == 1 and sum(v for k, v in gs.items()
                                             if k.startswith("state_")) == 1
    assert gs["switch_dx"] == pytest.approx(180 / 1056) and gs["switch_dy"] == 0
    assert gs["exit_dx"] == pytest.approx(420 / 1056)
    assert gs["elapsed"] == 0
    for _ in range(50):
        sim.tick(1, 0)
    gs2 = builder.observe(sim)["game_state"]
    assert gs2[names.index("elapsed")] == pytest.approx(50 / 20000)
    assert np.abs(gs2).max() <= 1.5


def test_observations_are_fresh_arrays() -> None:
    sim, builder, first = _observe(_wall_map())
    keep = {k: v.copy() for k, v in first.items()}
    second = builder.observe(sim)
    for k in first:
        assert first[k] is not second[k]
        second[k][...] = 0 if second[k].dtype != bool else False
        assert np.array_equal(first[k], keep[k]), k


def test_graph_is_static_per_level_and_sparse() -> None:
    clear_level_cache()
    records = [(2, 60, 40, 0, 0), (3, 100, 50, 0, 0), (4, 60, 50, 0, 0)]
    map_data = build_map(floor_row(12), spawn=SPAWN, records=records)
    sim_a, builder_a, obs = _observe(map_data)
    _, builder_b, _ = _observe(map_data)
    g = builder_a.static_graph
    assert g is builder_b.static_graph  # one copy per level, shared
    n = len(g.node_type)
    assert g.edge_index.shape[0] == 2 and g.edge_index.max() < n
    assert g.edge_type.shape == (g.edge_index.shape[1],)
    assert set(np.unique(g.edge_type).tolist()) == {0, 1, 2}
    assert g.n_entities == len(sim_a.entities) == 3  # gold, exit door, its switch
    node = int(obs["graph_ninja_node"][0])
    x, y = g.node_pos[node] * np.array([1056, 600])
    assert abs(x - 180) <= 12 and abs(y - 300) <= 12
    es = obs["graph_entity_state"]
    assert es.shape == (3, 4)
    gold = next(i for i, e in enumerate(sim_a.entities) if e.kind == 2)
    assert es[gold, 2] == 1  # active
    # No node of a solid sub-cell: the floor row (world y 312..335) holds no cell node.
    cells = g.node_pos[: g.n_cells] * np.array([1056, 600])
    assert not ((cells[:, 1] > 312) & (cells[:, 1] < 336)).any()


def test_level_cache_is_bounded() -> None:
    clear_level_cache()
    from torchrl_bc.obs import builder as builder_mod

    cfg = ObservationConfig(static_cache_levels=3)
    for i in range(6):
        _observe(build_map({(i, 3): 1}, spawn=SPAWN), cfg)
    assert len(builder_mod._LEVELS) == 3


def test_last_input_is_the_action_taken_on_the_step_before() -> None:
    """``last_input`` reads the ninja's held input: zeros at spawn, then each step's action."""
    from torchrl_bc.env import NppEnv
    from torchrl_bc.sim.actions import ACTION_HOR, ACTION_JUMP

    cfg = ObservationConfig(frame_skip=1, modalities=("game_state", "last_input", "action_mask"))
    env = NppEnv(_wall_map(), cfg)
    obs, _ = env.reset()
    assert obs["last_input"].tolist() == [0.0, 0.0]
    for a in [2, 2, 0, 5, 1, 4, 3, 3]:
        obs, *_ = env.step(a)
        assert obs["last_input"].tolist() == [ACTION_HOR[a], ACTION_JUMP[a]]
