"""The simulator: one level, one ninja, its entities, advanced one 60 Hz tick at a time.

State lives in flat arrays (``layout``) and every tick is one compiled call (``kernel``).
The attribute views (``sim.ninja.xpos``, ``sim.entities[i].kind``) are for inspection and
tests; hot loops should use :meth:`Simulator.run_inputs` or the arrays themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kernel as K
from . import layout as L
from .build import LevelGeometry, build_entities, build_level
from .constants import GRID_H, GRID_W, MAP_UNITS
from .mapdata import MapData, MapFormatError, parse_map
from .trace import Trace

# input byte -> (horizontal, jump); bit0 jump, bit1 right, bit2 left; left+right cancel.
INPUT_DECODE = tuple(((1 if b & 2 else 0) - (1 if b & 4 else 0), b & 1) for b in range(8))
_HOR_OF = np.array([h for h, _ in INPUT_DECODE], np.float64)
_JUMP_OF = np.array([j for _, j in INPUT_DECODE], np.float64)
_NO_POS = np.zeros((0, 2))
_NO_STATE = np.zeros(0, np.int8)

_NINJA_FIELDS: dict[str, tuple[int, type]] = {
    "xpos": (L.N_X, float), "ypos": (L.N_Y, float),
    "xspeed": (L.N_VX, float), "yspeed": (L.N_VY, float),
    "xpos_old": (L.N_XOLD, float), "ypos_old": (L.N_YOLD, float),
    "xspeed_old": (L.N_VXOLD, float), "yspeed_old": (L.N_VYOLD, float),
    "applied_gravity": (L.N_GRAVITY, float), "applied_drag": (L.N_DRAG, float),
    "state": (L.N_STATE, int), "airborn": (L.N_AIRBORN, bool),
    "airborn_old": (L.N_AIRBORN_OLD, bool), "walled": (L.N_WALLED, bool),
    "wall_normal": (L.N_WALL_NORMAL, float), "hor_input": (L.N_HOR, int),
    "jump_input": (L.N_JUMP, int), "jump_input_old": (L.N_JUMP_OLD, int),
    "jump_duration": (L.N_JUMP_DURATION, int), "jump_buffer": (L.N_JUMP_BUF, int),
    "floor_buffer": (L.N_FLOOR_BUF, int), "wall_buffer": (L.N_WALL_BUF, int),
    "launch_pad_buffer": (L.N_LP_BUF, int),
    "floor_normalized_x": (L.N_FLOOR_NX, float), "floor_normalized_y": (L.N_FLOOR_NY, float),
    "ceiling_normalized_x": (L.N_CEIL_NX, float),
    "ceiling_normalized_y": (L.N_CEIL_NY, float),
    "floor_count": (L.N_FLOOR_COUNT, int), "ceiling_count": (L.N_CEIL_COUNT, int),
    "is_crushable": (L.N_CRUSHABLE, bool), "x_crush": (L.N_XCRUSH, float),
    "y_crush": (L.N_YCRUSH, float), "crush_len": (L.N_CRUSH_LEN, float),
    "xlp_boost_normalized": (L.N_LP_NX, float), "ylp_boost_normalized": (L.N_LP_NY, float),
    "gold_collected": (L.N_GOLD, int), "doors_opened": (L.N_DOORS, int),
}


class NinjaView:
    """Read-only named access to the ninja's state array."""

    __slots__ = ("_a",)

    def __init__(self, arr: np.ndarray) -> None:
        object.__setattr__(self, "_a", arr)

    def __getattr__(self, name: str):
        try:
            col, typ = _NINJA_FIELDS[name]
        except KeyError:
            raise AttributeError(f"ninja has no field {name!r}") from None
        return typ(self._a[col])

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError("the ninja view is read-only; drive the simulator with tick()")

    @property
    def death_cause(self) -> str:
        return L.DEATH_CAUSES[int(self._a[L.N_DEATH_CAUSE])]

    def is_valid_target(self) -> bool:
        return int(self._a[L.N_STATE]) not in (6, 8, 9)

    @property
    def won(self) -> bool:
        return int(self._a[L.N_STATE]) == 8

    @property
    def died(self) -> bool:
        return int(self._a[L.N_STATE]) in (6, 7)


_KIND_NAMES = {
    1: "toggle_mine", 2: "gold", 3: "exit_door", 4: "exit_switch", 5: "regular_door",
    6: "locked_door", 8: "trap_door", 10: "launch_pad", 11: "one_way", 14: "zap_drone",
    17: "bounce_block", 20: "thwump", 21: "toggle_mine", 24: "boost_pad", 25: "death_ball",
    26: "mini_drone", 28: "shove_thwump",
}
_DOORS = (5, 6, 8)


class EntityView:
    """Named access to one entity row (live: reads the current arrays)."""

    __slots__ = ("_sim", "row")

    def __init__(self, sim: Simulator, row: int) -> None:
        self._sim = sim
        self.row = row

    def _i(self, col: int) -> int:
        return int(self._sim.ei[self.row, col])

    def _f(self, col: int) -> float:
        return float(self._sim.ef[self.row, col])

    kind = property(lambda s: s._i(L.EI_KIND))
    type = kind
    group = property(lambda s: s._i(L.EI_GROUP))
    index = property(lambda s: s._i(L.EI_INDEX))
    active = property(lambda s: bool(s._i(L.EI_ACTIVE)))
    xpos = property(lambda s: s._f(L.F_X))
    ypos = property(lambda s: s._f(L.F_Y))
    cell = property(lambda s: (s._i(L.EI_CX), s._i(L.EI_CY)))
    in_grid = property(lambda s: s._i(L.EI_SEQ) >= 0)
    name = property(lambda s: _KIND_NAMES[s.kind])

    @property
    def state(self) -> int:
        return int(self._f(L.F_STATE))

    @property
    def radius(self) -> float:
        return self._f(L.F_RADIUS)

    @property
    def semi_side(self) -> float:
        return self._f(L.F_SEMI)

    @property
    def orientation(self) -> int:
        return int(self._f(L.F_ORIENT))

    @property
    def xspeed(self) -> float:
        return self._f(L.F_VX)

    @property
    def yspeed(self) -> float:
        return self._f(L.F_VY)

    @property
    def normal(self) -> tuple[float, float]:
        return self._f(L.F_NX), self._f(L.F_NY)

    @property
    def closed(self) -> bool:
        self._need(_DOORS, "closed")
        return self._f(L.F_FLAG) != 0

    @property
    def switch_hit(self) -> bool:
        self._need((3,), "switch_hit")
        return self._f(L.F_FLAG) != 0

    @property
    def door(self) -> EntityView:
        self._need((4,), "door")
        return self._sim.entities[self._i(L.EI_LINK)]

    @property
    def segment(self) -> tuple[float, float, float, float]:
        """A door's segment end points (x1, y1, x2, y2)."""
        self._need(_DOORS, "segment")
        row = self._sim.door_seg[self.row]
        return float(row[1]), float(row[2]), float(row[3]), float(row[4])

    @property
    def edges(self) -> tuple[tuple[int, int], tuple[int, int]]:
        self._need(_DOORS, "edges")
        f = self._sim.ef[self.row]
        return (int(f[L.F_E1X]), int(f[L.F_E1Y])), (int(f[L.F_E2X]), int(f[L.F_E2Y]))

    @property
    def vertical(self) -> bool:
        return self._f(L.F_VERTICAL) != 0

    def _need(self, kinds: tuple[int, ...], what: str) -> None:
        if self.kind not in kinds:
            raise AttributeError(f"{_KIND_NAMES.get(self.kind, self.kind)} has no {what}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EntityView) and other._sim is self._sim and \
            other.row == self.row

    def __hash__(self) -> int:
        return hash((id(self._sim), self.row))

    def __repr__(self) -> str:
        return f"<{_KIND_NAMES.get(self.kind, self.kind)} #{self.index} at " \
               f"({self.xpos:.1f}, {self.ypos:.1f})>"


@dataclass(frozen=True)
class SimSnapshot:
    """Copy of every array that changes during a run (for the simulator that made it)."""

    frame: int
    arrays: tuple[np.ndarray, ...]
    level: str  # map content hash (and door mode) the snapshot belongs to


class Simulator:
    """Bit-exact N++ simulation of one level.

    ``solid_doors=False`` reproduces the reference, whose tile index is built before door
    segments exist, so closed doors never block the ninja (recorded data depends on this).
    ``solid_doors=True`` makes closed doors block the ninja and death balls, as in N++.
    """

    def __init__(self, map_data: bytes | MapData, *, solid_doors: bool = False,
                 source: str = "<map>") -> None:
        self.map = map_data if isinstance(map_data, MapData) else parse_map(map_data, source)
        self.source = source
        self.solid_doors = solid_doors
        self.level: LevelGeometry = build_level(self.map)
        self.tiles = self.level.tiles
        self._initial = build_entities(self.map, self.level, source)
        self.door_seg = self._initial.door_seg
        self._level_key = f"{self.map.content_hash}:{int(solid_doors)}"
        n_ent = self._initial.ei.shape[0]
        width = self.level.segments.shape[0] + n_ent + 64
        self._scratch = np.zeros((4, width), np.int64)
        # door segments are appended after the tile segments (row S + entity row)
        segs = np.vstack([self.level.segments, self.door_seg])
        self._lv = (segs, self.level.cell_start, self.level.cell_bounds)
        self.ninja_state = None
        self.reset()

    # -- setup -------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the level's start: ninja at spawn, entities as loaded."""
        init = self._initial
        nin = np.zeros(L.N_COLS, np.float64)
        nin[L.N_X] = self.map.spawn_x * MAP_UNITS
        nin[L.N_Y] = self.map.spawn_y * MAP_UNITS
        nin[L.N_GRAVITY] = K.GRAVITY_FALL
        nin[L.N_DRAG] = K.DRAG_REGULAR
        for col in (L.N_JUMP_BUF, L.N_FLOOR_BUF, L.N_WALL_BUF, L.N_LP_BUF):
            nin[col] = -1
        nin[L.N_FLOOR_NY] = -1
        nin[L.N_CEIL_NY] = 1
        nin[L.N_TWO] = 2.0
        misc = np.zeros(L.M_COLS, np.int64)
        misc[L.M_SEQ] = init.next_seq
        misc[L.M_DEATH_BALLS] = self.map.death_ball_count
        misc[L.M_SOLID_DOORS] = 1 if self.solid_doors else 0
        if getattr(self, "ninja_state", None) is not None:
            # in place: the arrays may be views into a SimBatch's stacked state
            self.ninja_state[...] = nin
            self.ei[...] = init.ei
            self.ef[...] = init.ef
            self.misc[...] = misc
            self.hor_edges[...] = init.hor_edges
            self.ver_edges[...] = init.ver_edges
            return
        self.ninja_state = nin
        self.ei = init.ei.copy()
        self.ef = init.ef.copy()
        self.misc = misc
        self.hor_edges = init.hor_edges.copy()
        self.ver_edges = init.ver_edges.copy()
        self._bind()

    def _adopt(self, nin: np.ndarray, ei: np.ndarray, ef: np.ndarray, misc: np.ndarray,
               hor: np.ndarray, ver: np.ndarray) -> None:
        """Move the state into the given arrays (views into a batch), keeping its values."""
        for dst, src in ((nin, self.ninja_state), (ei, self.ei), (ef, self.ef),
                         (misc, self.misc), (hor, self.hor_edges), (ver, self.ver_edges)):
            dst[...] = src
        self.ninja_state, self.ei, self.ef, self.misc = nin, ei, ef, misc
        self.hor_edges, self.ver_edges = hor, ver
        self._bind()

    def _bind(self) -> None:
        self._st = (self.ninja_state, self.ei, self.ef, self.misc, self.hor_edges,
                    self.ver_edges, self._scratch)
        self._args = (*self._lv, *self._st)
        self.ninja = NinjaView(self.ninja_state)
        self.entities = [EntityView(self, i) for i in range(self.ei.shape[0])]

    # -- stepping ----------------------------------------------------------------------------
    @property
    def frame(self) -> int:
        return int(self.misc[L.M_FRAME])

    def tick(self, hor: int, jump: int) -> None:
        """Advance one tick with horizontal input in {-1, 0, 1} and jump in {0, 1}."""
        K.tick(*self._args, float(hor), float(jump))

    def tick_input(self, byte: int) -> None:
        hor, jump = INPUT_DECODE[byte]
        K.tick(*self._args, float(hor), float(jump))

    def advance(self, hors: np.ndarray, jumps: np.ndarray) -> int:
        """Run several ticks in one compiled call (float64 inputs); stops after a tick that
        wins or kills. Returns the number of ticks run."""
        return int(K.run_ticks(*self._args, hors, jumps, True, _NO_POS, _NO_POS, _NO_STATE))

    def advance_inputs(self, inputs: np.ndarray) -> int:
        """:meth:`advance` from input bytes (0..7)."""
        data = np.asarray(inputs, np.int64)
        return self.advance(_HOR_OF[data], _JUMP_OF[data])

    def run_inputs(self, inputs: np.ndarray | bytes, record_entities: bool = False) -> Trace:
        """Tick through input bytes until the win, the death or the end of the inputs."""
        data = np.frombuffer(inputs, np.uint8) if isinstance(inputs, bytes | bytearray) \
            else np.asarray(inputs)
        if data.size and (data.min() < 0 or data.max() > 7):
            bad = int(np.flatnonzero((data < 0) | (data > 7))[0])
            raise ValueError(f"{self.source}: input byte {int(data[bad])} at tick {bad} is "
                             "not in 0..7")
        data = data.astype(np.int64)
        hors = _HOR_OF[data]
        jumps = _JUMP_OF[data]
        n = len(data)
        pos = np.zeros((n, 2), np.float64)
        vel = np.zeros((n, 2), np.float64)
        state = np.zeros(n, np.int8)
        if not record_entities:
            m = K.run_ticks(*self._lv, *self._st, hors, jumps, True, pos, vel, state)
            ents = None
        else:
            rows = []
            m = 0
            one_p = np.zeros((1, 2))
            one_v = np.zeros((1, 2))
            one_s = np.zeros(1, np.int8)
            for t in range(n):
                K.run_ticks(*self._lv, *self._st, hors[t:t + 1], jumps[t:t + 1], True,
                            one_p, one_v, one_s)
                pos[t], vel[t], state[t] = one_p[0], one_v[0], one_s[0]
                rows.append(self.entity_table())
                m = t + 1
                if one_s[0] in (6, 7, 8):
                    break
            ents = np.stack(rows) if rows else np.zeros((0, self.ei.shape[0], 5))
        state = state[:m]
        won = np.flatnonzero(state == 8)
        dead = np.flatnonzero((state == 6) | (state == 7))
        return Trace(
            pos=pos[:m].copy(), vel=vel[:m].copy(), state=state.copy(),
            win_frame=int(won[0]) + 1 if won.size else -1,
            death_frame=int(dead[0]) + 1 if dead.size else -1,
            entities=ents,
        )

    @property
    def done(self) -> bool:
        return int(self.ninja_state[L.N_STATE]) in (6, 7, 8)

    # -- views ---------------------------------------------------------------------------------
    def entity_table(self) -> np.ndarray:
        """[E, 5] float64 rows (type, x, y, active, state) ordered by type then load order."""
        out = np.empty((self.ei.shape[0], 5), np.float64)
        out[:, 0] = self.ei[:, L.EI_GROUP]
        out[:, 1] = self.ef[:, L.F_X]
        out[:, 2] = self.ef[:, L.F_Y]
        out[:, 3] = self.ei[:, L.EI_ACTIVE]
        out[:, 4] = self.ef[:, L.F_STATE]
        return out

    @property
    def by_group(self) -> dict[int, list[EntityView]]:
        groups: dict[int, list[EntityView]] = {}
        for e in self.entities:
            groups.setdefault(e.group, []).append(e)
        return groups

    @property
    def grid(self) -> list[list[list[EntityView]]]:
        """Entities per 24px cell, in the order collisions visit them (inspection only)."""
        cells: list[list[list[tuple[int, EntityView]]]] = [
            [[] for _ in range(GRID_H)] for _ in range(GRID_W)
        ]
        for e in self.entities:
            seq = int(self.ei[e.row, L.EI_SEQ])
            if seq >= 0:
                cx, cy = e.cell
                cells[cx][cy].append((seq, e))
        return [[[e for _, e in sorted(c, key=lambda p: p[0])] for c in col] for col in cells]

    @property
    def switch_hit(self) -> bool:
        doors = self.ei[:, L.EI_KIND] == 3
        return bool((self.ef[doors, L.F_FLAG] != 0).any())

    # -- snapshot / restore --------------------------------------------------------------------
    def snapshot(self) -> SimSnapshot:
        """Copy every changing array; the static level is shared."""
        return SimSnapshot(
            frame=self.frame,
            arrays=(self.ninja_state.copy(), self.ei.copy(), self.ef.copy(), self.misc.copy(),
                    self.hor_edges.copy(), self.ver_edges.copy()),
            level=self._level_key,
        )

    def restore(self, snap: SimSnapshot) -> None:
        """Return to a snapshot of this level (from this or another simulator of the same
        map); the snapshot stays valid for further restores."""
        if snap.level != self._level_key:
            raise ValueError("snapshot was taken on another level (or door mode)")
        for dst, src in zip(
            (self.ninja_state, self.ei, self.ef, self.misc, self.hor_edges, self.ver_edges),
            snap.arrays, strict=True,
        ):
            dst[...] = src


__all__ = [
    "INPUT_DECODE",
    "EntityView",
    "MapFormatError",
    "NinjaView",
    "SimSnapshot",
    "Simulator",
]
