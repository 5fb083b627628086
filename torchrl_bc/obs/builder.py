"""The one observation builder used by both the replay executor and ``NppEnv``.

Both consumers call :meth:`ObservationBuilder.observe` on a :class:`~torchrl_bc.sim.Simulator`;
nothing here knows whether the inputs came from a human or a policy, so BC and RL see the same
arrays for the same state. Every call returns freshly allocated arrays (never a shared buffer),
so a stored observation cannot change after the fact.

Per-level static data (tile rasters at each scale, the static graph) is cached by map content
hash in a bounded LRU, so memory stays flat however many replays are processed.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from torchrl_bc.obs import modalities as M
from torchrl_bc.obs.config import ObservationConfig
from torchrl_bc.obs.distance import NX, NY, STEP, DistanceMap
from torchrl_bc.obs.draw import draw_entities, stamp_disc, value_table
from torchrl_bc.obs.game_state import GAME_STATE_FEATURES, N_GAME_STATE, feature_index
from torchrl_bc.obs.graph import StaticGraph, build_static_graph
from torchrl_bc.obs.modalities import LOCAL_CHANNELS, N_OBJECTIVE
from torchrl_bc.obs.objective import (
    N_AHEAD,
    PATH_LENGTH_SCALE,
    ObjectiveFields,
    build_objective_fields,
    node_centre,
)
from torchrl_bc.obs.progress import Memory, progress_features, update_memory
from torchrl_bc.obs.raster import (
    LEVEL_H,
    LEVEL_W,
    NINJA_VALUE,
    PALETTE,
    TILE_VALUE,
    VALUES,
    level_coverage,
    tile_image,
)
from torchrl_bc.obs.surroundings import (
    blocking_doors,
    hazard_offsets,
    ray_distances,
    solid_mask,
)
from torchrl_bc.sim import constants as C
from torchrl_bc.sim import entities as E
from torchrl_bc.sim import layout as SL
from torchrl_bc.sim.actions import N_ACTIONS

__all__ = ["GAME_STATE_FEATURES", "N_ACTIONS", "N_GAME_STATE", "ObservationBuilder",
           "clear_level_cache", "level_objective"]

_DIAG = math.hypot(LEVEL_W, LEVEL_H)
_MAX_FALL_SPEED = 6.0  # deaths start above MAX_SURVIVABLE_IMPACT, so |vy| is ~<= 6 in play

# Entities that never move: drawn into a per-level layer, redrawn only when a flag changes.
_STATIC_KINDS = frozenset(E.kinds(moving=False))
_DRAW_ORDER = {k.id: k.draw_order for k in E.ENTITIES if not k.moving}
_VALUE_TABLE = value_table(VALUES)
# Which attribute is the entity's changing status (for graph_entity_state).
_STATUS_KINDS_STATE = E.kinds(status="state")  # the mine state, scaled by 0.5
_STATUS_KINDS_FLAG = E.kinds(status="flag")  # exit switch hit / door closed
_STATUS_SCALE = dict.fromkeys(_STATUS_KINDS_STATE, 0.5)
# game_state ninja fields read straight from the simulator's state array
_NIN = SL


@dataclass
class _LevelStatic:
    """Everything about a level the builder derives once: tile layers and the static graph."""

    level_hash: str
    tiles: np.ndarray  # intp [44, 25] (x, y)
    layers: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    graph: StaticGraph | None = None
    objective: ObjectiveFields | None = None
    objective_built: bool = False
    solid: np.ndarray | None = None  # the ``surroundings`` rays' mask, built on first use

    def tile_layer(self, scale: int, pad: int) -> np.ndarray:
        """Tile intensities at ``scale``, padded by ``pad`` solid pixels (outside = wall)."""
        key = (scale, pad)
        layer = self.layers.get(key)
        if layer is None:
            img = tile_image(level_coverage(self.tiles, scale))
            layer = np.pad(img, pad, constant_values=TILE_VALUE) if pad else img
            layer.setflags(write=False)
            self.layers[key] = layer
        return layer


_LEVELS: OrderedDict[tuple, _LevelStatic] = OrderedDict()


def clear_level_cache() -> None:
    """Drop every cached level (tests use it to measure cache behaviour)."""
    _LEVELS.clear()


def _level_static(sim, config: ObservationConfig) -> _LevelStatic:
    # path_ahead's tables are built only for the configs that read them: part of the key
    key = (sim.map.content_hash, config.graph_cell if config.has("graph") else 0,
           config.has("path_ahead"), config.hazard_radius)
    level = _LEVELS.get(key)
    if level is not None:
        _LEVELS.move_to_end(key)
        return level
    tiles = np.asarray(sim.tiles, dtype=np.intp)  # [44, 25] (x, y)
    level = _LevelStatic(level_hash=sim.map.content_hash, tiles=tiles)
    if config.has("graph"):
        cell = config.graph_cell  # per-cell coverage straight from the per-tile masks
        level.graph = build_static_graph(level.level_hash, level_coverage(tiles, cell), cell,
                                         sim.entities)
    _LEVELS[key] = level
    while len(_LEVELS) > config.static_cache_levels:
        _LEVELS.popitem(last=False)
    return level


def level_objective(sim, config: ObservationConfig, switch: int,
                    exit_: int) -> ObjectiveFields | None:
    """The objective fields of ``sim``'s level (switch row ``switch``, door row ``exit_``, as
    :meth:`ObservationBuilder.bind` picks them), from the shared level cache: built once, so
    the builder and ``LevelSlots``' bulk observer read the very same arrays."""
    level = _level_static(sim, config)
    if not level.objective_built:
        m = sim.map
        level.objective = build_objective_fields(
            sim.tiles, sim.ei[:, SL.EI_KIND], sim.ef[:, [SL.F_X, SL.F_Y]], switch, exit_,
            (m.spawn_x * 6.0, m.spawn_y * 6.0), ahead=config.has("path_ahead"),
            hazard_radius=config.hazard_radius)
        level.objective_built = True
    return level.objective


class ObservationBuilder:
    """Builds observation dicts from simulator state for one :class:`ObservationConfig`.

    Call :meth:`bind` after constructing or ``reset()``-ing a simulator (reset recreates the
    entities); ``restore()`` keeps entity identity, so no rebind is needed after it.
    """

    def __init__(self, config: ObservationConfig | None = None) -> None:
        self.config = config or ObservationConfig()
        self._modalities = M.modalities(self.config.modalities)
        self._pictures = any(m.pictures for m in self._modalities)
        self._level_fields = any(m.level_fields for m in self._modalities)
        self._remembers = any(m.name == "progress" for m in self._modalities)
        self._zero = feature_index(self.config.state_zero)
        self._sim = None
        self._level: _LevelStatic | None = None
        self._memory: Memory | None = None

    # -- binding -----------------------------------------------------------------------------
    def bind(self, sim) -> None:
        """Attach to ``sim``'s level: fetch cached static data, sort entities for drawing."""
        cfg = self.config
        if sim is not self._sim or sim.frame == 0:
            self._memory = None  # a new episode (rebinding a running one keeps its memory)
        self._sim = sim
        self._level = _level_static(sim, cfg)
        kinds = sim.ei[:, SL.EI_KIND]
        rows = np.arange(kinds.shape[0])
        static = [r for r in rows.tolist() if int(kinds[r]) in _STATIC_KINDS]
        static.sort(key=lambda r: _DRAW_ORDER[int(kinds[r])])  # stable: load order in a class
        self._static_rows = np.array(static, dtype=np.int64)
        self._moving_rows = np.array([r for r in rows.tolist() if int(kinds[r])
                                      not in _STATIC_KINDS], dtype=np.int64)
        self._state_rows = np.isin(kinds, _STATUS_KINDS_STATE)
        self._flag_rows = np.isin(kinds, _STATUS_KINDS_FLAG)
        self._status_scale = np.array([_STATUS_SCALE.get(int(k), 1.0) for k in kinds],
                                      np.float32)
        switches = np.flatnonzero(kinds == E.EXIT_SWITCH)
        exits = np.flatnonzero(kinds == E.EXIT)
        self._switch = int(switches[0]) if switches.size else -1
        if self._switch >= 0:
            self._exit = int(sim.ei[self._switch, SL.EI_LINK])
        else:
            self._exit = int(exits[0]) if exits.size else -1
        self._gold_total = int(np.count_nonzero(kinds == E.GOLD))
        if self._level_fields:
            level_objective(sim, cfg, self._switch, self._exit)
        self._flags: bytes | None = None
        self._layers: dict[tuple[int, int], np.ndarray] = {}

    @property
    def static_graph(self) -> StaticGraph | None:
        """The bound level's static graph (None unless the graph modality is on)."""
        return None if self._level is None else self._level.graph

    def _check_flags(self) -> None:
        """Forget the entity layers when a non-moving entity changed (mine, gold, door...)."""
        sim = self._sim
        rows = self._static_rows
        flags = sim.ei[rows, SL.EI_ACTIVE].tobytes() + sim.ef[rows, SL.F_STATE].tobytes() + \
            sim.ef[rows, SL.F_FLAG].tobytes()
        if flags != self._flags:
            self._flags = flags
            self._layers = {}

    def _draw(self, img: np.ndarray, rows: np.ndarray, scale: int, ox: float, oy: float,
              cull: float = 0.0) -> None:
        sim = self._sim
        draw_entities(img, sim.ei, sim.ef, sim.door_seg, rows, _VALUE_TABLE, scale,
                      float(ox), float(oy), float(cull))

    def _entity_layer(self, scale: int, pad: int) -> np.ndarray:
        """Tiles plus non-moving entities at ``scale``; call :meth:`_check_flags` first."""
        layer = self._layers.get((scale, pad))
        if layer is None:
            layer = self._level.tile_layer(scale, pad).copy()
            self._draw(layer, self._static_rows, scale, -pad, -pad)
            self._layers[(scale, pad)] = layer
        return layer

    # -- observing ---------------------------------------------------------------------------
    def observe(self, sim=None) -> dict[str, np.ndarray]:
        """The observation of the simulator's current state (before its next tick)."""
        sim = sim if sim is not None else self._sim
        if sim is not self._sim or self._level is None:
            self.bind(sim)
        if self._pictures:
            self._check_flags()
        if self._remembers:
            nx, ny = self._ninja_xy()
            stage, dist = self._path_length(nx, ny)
            self._memory = update_memory(self._memory, int(sim.frame), nx, ny, stage, dist)
        out: dict[str, np.ndarray] = {}
        for mod in self._modalities:
            out |= mod.observe(self)
        return out

    @property
    def sim(self):
        """The bound simulator (what a modality's observe function reads)."""
        return self._sim

    def graph_arrays(self) -> dict[str, np.ndarray]:
        """``graph_ninja_node`` int32 [1] and ``graph_entity_state`` float32 [entities, 4]."""
        ninja = self._sim.ninja
        node = self._level.graph.node_at(ninja.xpos, ninja.ypos, self.config.graph_cell)
        return {"graph_ninja_node": np.array([node], dtype=np.int32),
                "graph_entity_state": self._entity_state()}

    def _stage(self) -> int:
        """0 while the objective is the exit switch, 1 once it is hit (or there is none)."""
        sim = self._sim
        if self._switch < 0:
            return 1
        return int(sim.ef[self._exit, SL.F_FLAG] != 0)

    def local_view(self) -> np.ndarray:
        """uint8 [2, n, n] around the ninja (it sits at cell [n/2, n/2]).

        Channel 0: the level picture at ``local_cell`` px per cell (tiles by coverage, every
        entity class by its ``VALUES`` intensity, outside the level solid), without the ninja.
        Channel 1: how much closer each cell is to the current objective than the ninja's cell,
        ``128 + 127 * (d_cell - d_ninja) / radius`` clipped to 1..255 (radius = half the view in
        px; lower = closer), 0 where the field has no finite value or outside the level.
        """
        cfg = self.config
        s, size = cfg.local_cell, cfg.local_size
        half = size // 2
        layer = self._entity_layer(s, half)
        nx, ny = self._ninja_xy()
        cx = min(max(math.floor(nx / s), 0), LEVEL_W // s - 1)
        cy = min(max(math.floor(ny / s), 0), LEVEL_H // s - 1)
        out = np.zeros((LOCAL_CHANNELS, size, size), np.uint8)
        frame = layer[cy:cy + size, cx:cx + size].copy()
        self._draw(frame, self._moving_rows, s, cx - half, cy - half, cull=16 / s)
        out[0] = frame
        obj = self._level.objective
        if obj is not None:
            dist = obj.fields[self._stage()]
            xs = (cx - half + np.arange(size) + 0.5) * s
            ys = (cy - half + np.arange(size) + 0.5) * s
            ix = np.clip((xs // STEP).astype(np.intp), 0, NX - 1)
            iy = np.clip((ys // STEP).astype(np.intp), 0, NY - 1)
            here = dist[DistanceMap.node_of(nx, ny)]
            cells = dist[ix[None, :], iy[:, None]]  # [y, x]
            with np.errstate(invalid="ignore"):
                enc = np.rint(128.0 + (cells - here) * (127.0 / (half * s)))
            ok = np.isfinite(enc) & ((xs >= 0) & (xs < LEVEL_W))[None, :] \
                & ((ys >= 0) & (ys < LEVEL_H))[:, None]
            out[1] = np.where(ok, np.clip(np.where(ok, enc, 0.0), 1, 255), 0).astype(np.uint8)
        return out

    @property
    def memory(self) -> Memory | None:
        """The episode memory behind ``progress`` (None before the first observation)."""
        return self._memory

    @memory.setter
    def memory(self, mem: Memory | None) -> None:
        """Resume an episode's memory, e.g. after restoring the snapshot it was taken with."""
        self._memory = mem

    def _path_length(self, nx: float, ny: float) -> tuple[int, float]:
        """(stage, path length in px to the current objective; inf when unreachable)."""
        obj = self._level.objective
        if obj is None:
            return 1, math.inf
        stage = self._stage()
        ix, iy = DistanceMap.node_of(nx, ny)
        return stage, float(obj.fields[stage][ix, iy])

    def progress(self) -> np.ndarray:
        """float32 [N_PROGRESS]: stall and no-progress counters, backtracking
        (:mod:`torchrl_bc.obs.progress`)."""
        nx, ny = self._ninja_xy()
        return progress_features(self._memory, self._path_length(nx, ny)[1])

    def objective(self) -> np.ndarray:
        """float32 [8]: stage, path length / 1000 (2 when unreachable), the unit direction of
        the straight line to the objective, and of the path NEAR_HOPS and FAR_HOPS lattice
        steps ahead (24 and 96 px). All zeros for a level without an exit."""
        out = np.zeros(N_OBJECTIVE, np.float32)
        obj = self._level.objective
        if obj is None:
            return out
        stage = self._stage()
        nx, ny = self._ninja_xy()
        ix, iy = DistanceMap.node_of(nx, ny)
        d = float(obj.fields[stage][ix, iy])
        node = ix * NY + iy
        gx, gy = obj.goals[stage]
        vals = [float(stage), min(d / PATH_LENGTH_SCALE, 2.0) if math.isfinite(d) else 2.0,
                *_unit(gx - nx, gy - ny)]
        for table in (obj.near, obj.far):
            wx, wy = node_centre(table[stage][node])
            vals += _unit(wx - nx, wy - ny)
        out[:] = vals
        return out

    def path_ahead(self) -> np.ndarray:
        """float32 [N_AHEAD]: the rise of the path to the current objective above the ninja and
        the free drop under it over the next 48 and 96 px (zeros without an exit)."""
        obj = self._level.objective
        if obj is None:  # a level without an exit (the tables come with the modality)
            return np.zeros(N_AHEAD, np.float32)
        nx, ny = self._ninja_xy()
        ix, iy = DistanceMap.node_of(nx, ny)
        return obj.ahead[self._stage()][ix * NY + iy].copy()

    def surroundings(self) -> np.ndarray:
        """float32 [N_SURROUNDINGS]: ray distances to solid tiles, then the nearest hazards'
        offsets (:mod:`torchrl_bc.obs.surroundings`)."""
        level = self._level
        if level.solid is None:
            level.solid = solid_mask(level.tiles)
        nx, ny = self._ninja_xy()
        sim = self._sim
        doors = blocking_doors(sim.ei, sim.ef, sim.door_seg)
        return np.concatenate([ray_distances(level.solid, nx, ny, doors), self.hazards()])

    def hazards(self) -> np.ndarray:
        """float32 [N_HAZARD_VALUES]: the nearest hazards' offsets alone, without the rays
        (:func:`~torchrl_bc.obs.surroundings.hazard_offsets`)."""
        nx, ny = self._ninja_xy()
        return hazard_offsets(self._sim.ei, self._sim.ef, nx, ny)

    def last_input(self) -> np.ndarray:
        """float32 [2]: the horizontal input (-1, 0, 1) and jump (0/1) held on the last tick,
        from the ninja's own state, so replays, env and DAgger labels all read it alike."""
        a = self._sim.ninja_state
        return np.array([a[SL.N_HOR], a[SL.N_JUMP]], np.float32)

    def player_frame(self) -> np.ndarray:
        cfg = self.config
        s, size = cfg.crop_scale, cfg.player_frame_size
        half = size // 2
        layer = self._entity_layer(s, half)
        nx, ny = self._ninja_xy()
        fx, fy = nx / s, ny / s
        cx = min(max(math.floor(fx), 0), LEVEL_W // s - 1)
        cy = min(max(math.floor(fy), 0), LEVEL_H // s - 1)
        frame = layer[cy:cy + size, cx:cx + size].copy()
        ox, oy = cx - half, cy - half  # world / s -> frame pixel offset
        self._draw(frame, self._moving_rows, s, ox, oy, cull=16 / s)
        stamp_disc(frame, fx - ox, fy - oy, C.NINJA_RADIUS / s, NINJA_VALUE)
        return frame[None]

    def _ninja_xy(self) -> tuple[float, float]:
        a = self._sim.ninja_state
        return float(a[SL.N_X]), float(a[SL.N_Y])

    def global_view(self) -> np.ndarray:
        s = self.config.global_scale
        view = self._entity_layer(s, 0).copy()
        self._draw(view, self._moving_rows, s, 0.0, 0.0)
        nx, ny = self._ninja_xy()
        stamp_disc(view, nx / s, ny / s, C.NINJA_RADIUS / s, NINJA_VALUE)
        return view[None]

    def game_state(self) -> np.ndarray:
        sim = self._sim
        a = sim.ninja_state.tolist()
        x, y = a[SL.N_X], a[SL.N_Y]
        onehot = [0.0] * 10
        onehot[int(a[SL.N_STATE])] = 1.0
        ef = sim.ef
        if self._switch >= 0:
            sdx, sdy = float(ef[self._switch, SL.F_X]) - x, float(ef[self._switch, SL.F_Y]) - y
            switch = [sdx / LEVEL_W, sdy / LEVEL_H, math.hypot(sdx, sdy) / _DIAG]
        else:
            switch = [0.0, 0.0, 0.0]
        if self._exit >= 0:
            edx, edy = float(ef[self._exit, SL.F_X]) - x, float(ef[self._exit, SL.F_Y]) - y
            exit_ = [edx / LEVEL_W, edy / LEVEL_H, math.hypot(edx, edy) / _DIAG]
        else:
            exit_ = [0.0, 0.0, 0.0]
        if self._switch >= 0:
            switch_hit = float(self._stage())
        else:
            switch_hit = float(sim.switch_hit)
        gold = a[SL.N_GOLD]
        feats = [
            x / LEVEL_W * 2 - 1, y / LEVEL_H * 2 - 1,
            a[SL.N_VX] / C.MAX_HOR_SPEED, a[SL.N_VY] / _MAX_FALL_SPEED,
            *onehot,
            a[SL.N_AIRBORN], a[SL.N_WALLED], a[SL.N_WALL_NORMAL],
            a[SL.N_FLOOR_NX], a[SL.N_FLOOR_NY], a[SL.N_CEIL_NX], a[SL.N_CEIL_NY],
            a[SL.N_JUMP_BUF] / 5, a[SL.N_FLOOR_BUF] / 5, a[SL.N_WALL_BUF] / 5,
            a[SL.N_LP_BUF] / 5,
            a[SL.N_JUMP_OLD], a[SL.N_JUMP_DURATION] / C.MAX_JUMP_DURATION,
            (a[SL.N_GRAVITY] - C.GRAVITY_JUMP) / (C.GRAVITY_FALL - C.GRAVITY_JUMP),
            (a[SL.N_DRAG] - C.DRAG_SLOW) / (C.DRAG_REGULAR - C.DRAG_SLOW),
            switch_hit,
            *switch, *exit_,
            gold / self._gold_total if self._gold_total else 0.0, gold / 10,
            sim.frame / C.MAX_TICKS,
        ]
        out = np.array(feats, dtype=np.float32)
        out[self._zero] = 0.0
        return out

    def _entity_state(self) -> np.ndarray:
        sim = self._sim
        n = sim.ei.shape[0]
        arr = np.zeros((n, 4), dtype=np.float32)
        arr[:, 0] = sim.ef[:, SL.F_X] / LEVEL_W
        arr[:, 1] = sim.ef[:, SL.F_Y] / LEVEL_H
        arr[:, 2] = sim.ei[:, SL.EI_ACTIVE]
        status = np.where(self._state_rows, sim.ef[:, SL.F_STATE],
                          np.where(self._flag_rows, sim.ef[:, SL.F_FLAG] != 0, 0.0))
        arr[:, 3] = status.astype(np.float32) * self._status_scale
        return arr

    # -- pictures for people -----------------------------------------------------------------
    def render_rgb(self, sim=None, scale: int = 1) -> np.ndarray:
        """The whole level as an RGB uint8 [600 / scale, 1056 / scale, 3] image."""
        sim = sim if sim is not None else self._sim
        if sim is not self._sim or self._level is None:
            self.bind(sim)
        self._check_flags()
        img = self._entity_layer(scale, 0).copy()
        self._draw(img, self._moving_rows, scale, 0.0, 0.0)
        nx, ny = self._ninja_xy()
        stamp_disc(img, nx / scale, ny / scale, C.NINJA_RADIUS / scale, NINJA_VALUE)
        return PALETTE[img]


def _unit(dx: float, dy: float) -> list[float]:
    """(dx, dy) scaled to length 1; zeros when shorter than a pixel (already there)."""
    n = math.hypot(dx, dy)
    return [dx / n, dy / n] if n >= 1.0 else [0.0, 0.0]
