"""The action and entity tables of ``torchrl_bc.sim`` agree with the compiled kernel and its users.

The kernel keeps numba-folded ``K_*`` constants and builds entities with their own sizes; these
tests pin both to :mod:`torchrl_bc.sim.entities`, and the replay-byte mapping and the batched
simulator to :mod:`torchrl_bc.sim.actions`.
"""

from __future__ import annotations

import numpy as np
from mapkit import build_map, floor_row

from torchrl_bc.obs.raster import VALUES
from torchrl_bc.replay import actions as RA
from torchrl_bc.sim import INPUT_DECODE, Simulator
from torchrl_bc.sim import actions as A
from torchrl_bc.sim import entities as E
from torchrl_bc.sim import layout as L

_KERNEL_NAMES = {"K_MINE": "mine", "K_GOLD": "gold", "K_EXIT": "exit", "K_SWITCH": "exit_switch",
                 "K_DOOR": "door", "K_LOCKED": "locked_door", "K_TRAP": "trap_door",
                 "K_LAUNCH": "launch_pad", "K_ONEWAY": "one_way", "K_ZAP": "zap_drone",
                 "K_BOUNCE": "bounce_block", "K_THWUMP": "thwump", "K_MINE_SAFE": "mine_safe",
                 "K_BOOST": "boost_pad", "K_BALL": "death_ball", "K_MINI": "mini_drone",
                 "K_SHOVE": "shove_thwump"}


def test_kernel_kind_constants_match_the_table() -> None:
    kernel = {name: getattr(L, name) for name in dir(L) if name.startswith("K_")}
    assert set(kernel) == set(_KERNEL_NAMES)
    assert {E.BY_NAME[_KERNEL_NAMES[k]].id: k for k in kernel} == {v: k for k, v in kernel.items()}
    assert len(E.BY_ID) == len(E.ENTITIES) == len(kernel)
    for kind in E.ENTITIES:
        assert kind.value in VALUES, kind
        assert kind.radius is not None or kind.semi is not None, kind
        assert (kind.draw_order is None) == kind.moving, kind


def test_loaded_entities_have_the_table_sizes() -> None:
    g = 58  # ground level in map units, over the floor of row 14
    records = [(1, 20, g, 0, 0), (2, 30, g, 0, 0), (3, 40, g, 0, 0), (4, 50, g, 0, 0),
               (5, 60, g, 0, 0), (6, 70, g, 0, 0), (7, 80, g, 0, 0), (8, 90, g, 0, 0),
               (9, 100, g, 0, 0), (10, 110, g, 6, 0), (11, 120, 40, 6, 0), (14, 130, 30, 0, 0),
               (17, 140, 30, 0, 0), (20, 150, 30, 0, 0), (21, 160, g, 0, 0),
               (24, 165, g, 0, 0), (25, 60, 20, 0, 0), (26, 100, 20, 0, 0), (28, 40, 20, 0, 0)]
    sim = Simulator(build_map(floor_row(14), spawn=(8, g), records=records))
    seen = set()
    for row in range(sim.ei.shape[0]):
        kind = E.BY_ID[int(sim.ei[row, L.EI_KIND])]
        seen.add(kind.id)
        if kind.radius is not None:
            assert sim.ef[row, L.F_RADIUS] == kind.radius, kind.name
        if kind.semi is not None:
            assert sim.ef[row, L.F_SEMI] == kind.semi, kind.name
    assert seen == set(E.BY_ID)


def test_action_table_drives_replay_bytes_and_the_simulator() -> None:
    assert A.N_ACTIONS == RA.N_ACTIONS == len(RA.ACTION_TO_INPUT) == 6
    assert RA.ACTION_NAMES == A.ACTION_NAMES
    for a, (_, hor, jump) in enumerate(A.ACTIONS):
        byte = int(RA.ACTION_TO_INPUT[a])
        assert INPUT_DECODE[byte] == (hor, jump)
        assert RA.inputs_to_actions(byte) == a == A.action_of(hor, jump)
        assert (A.ACTION_HOR[a], A.ACTION_JUMP[a]) == (hor, jump)
    assert np.array_equal(RA.ACTION_TO_INPUT, [0, 4, 2, 1, 5, 3])  # replay bytes unchanged


def test_one_level_record_and_its_cap_rule() -> None:
    from torchrl_bc.levels.generator import generate_level
    from torchrl_bc.sim.level import Level

    lv = Level("a", b"", demo_ticks=101)
    assert lv.cap(2.0, 5000) == 202 and lv.cap(1.5, 5000) == 152  # ceil(151.5)
    assert lv.cap(100.0, 5000) == 5000 and lv.cap(0.001, 5000) == 1
    assert Level("b", b"").cap(2.0, 777) == 777  # no demo: the limit
    assert lv.cap(0.0, 777) == 777
    gen = generate_level(3, verify=False)
    rec = gen.as_level()
    assert (rec.name, rec.map_data, rec.family) == (gen.level_id, gen.map_data, gen.family)
    assert rec.demo_ticks == gen.solution.size
