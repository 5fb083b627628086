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

from torchrl_bc.obs.config import ObservationConfig
from torchrl_bc.obs.graph import StaticGraph, build_static_graph
from torchrl_bc.obs.raster import (
    LEVEL_H,
    LEVEL_W,
    NINJA_VALUE,
    PALETTE,
    TILE_VALUE,
    VALUES,
    level_coverage,
    stamp_disc,
    stamp_line,
    stamp_square,
    tile_image,
)
from torchrl_bc.sim import constants as C

__all__ = ["GAME_STATE_FEATURES", "N_ACTIONS", "ObservationBuilder", "clear_level_cache"]

N_ACTIONS = 6
_DIAG = math.hypot(LEVEL_W, LEVEL_H)
_MAX_FALL_SPEED = 6.0  # deaths start above MAX_SURVIVABLE_IMPACT, so |vy| is ~<= 6 in play

#: ``game_state`` layout, in order. Each entry is (name, how it is normalised).
GAME_STATE_FEATURES: tuple[tuple[str, str], ...] = (
    ("x", "xpos / 1056 * 2 - 1"),
    ("y", "ypos / 600 * 2 - 1"),
    ("vx", "xspeed / 3.333 (max run speed)"),
    ("vy", "yspeed / 6"),
    *((f"state_{name}", "one-hot of ninja.state") for name in C.STATE_NAMES),
    ("airborne", "0/1"),
    ("walled", "0/1"),
    ("wall_normal", "-1, 0, 1"),
    ("floor_normal_x", "floor_normalized_x (unit vector)"),
    ("floor_normal_y", "floor_normalized_y"),
    ("ceiling_normal_x", "ceiling_normalized_x"),
    ("ceiling_normal_y", "ceiling_normalized_y"),
    ("jump_buffer", "buffer / 5 (-1 = inactive -> -0.2)"),
    ("floor_buffer", "buffer / 5"),
    ("wall_buffer", "buffer / 5"),
    ("launch_pad_buffer", "buffer / 5"),
    ("jump_input_old", "0/1: jump held last tick (jumps fire on a fresh press)"),
    ("jump_duration", "jump_duration / 45"),
    ("gravity", "0 = jump gravity, 1 = fall gravity"),
    ("drag", "0 = slow drag, 1 = regular drag"),
    ("switch_hit", "0/1"),
    ("switch_dx", "(switch x - ninja x) / 1056; 0 when the level has no switch"),
    ("switch_dy", "(switch y - ninja y) / 600"),
    ("switch_dist", "distance / level diagonal"),
    ("exit_dx", "(exit x - ninja x) / 1056"),
    ("exit_dy", "(exit y - ninja y) / 600"),
    ("exit_dist", "distance / level diagonal"),
    ("gold_fraction", "gold collected / gold in level (0 when none)"),
    ("gold_collected", "gold collected / 10"),
    ("elapsed", "ticks elapsed / 20000, the same in replays and the env"),
)
N_GAME_STATE = len(GAME_STATE_FEATURES)

# Entities that never move: drawn into a per-level layer, redrawn only when a flag changes.
_STATIC_KINDS = frozenset({1, 21, 2, 3, 4, 5, 6, 8, 10, 11, 24})
_DRAW_ORDER = {3: 0, 5: 1, 6: 1, 8: 1, 11: 2, 10: 3, 24: 3, 2: 4, 4: 5, 1: 6, 21: 6}
# Which attribute is the entity's changing flag (for redraws and graph_entity_state).
_STATUS_ATTR = {1: "state", 21: "state", 3: "switch_hit", 5: "closed", 6: "closed", 8: "closed"}
_STATUS_SCALE = {1: 0.5, 21: 0.5}
_MINE_VALUES = {0: VALUES["mine_deadly"], 1: VALUES["mine_safe"], 2: VALUES["mine_toggling"]}


def _normal(e) -> tuple[float, float]:
    """An entity's unit normal (the simulator exposes ``normal`` or ``normal_x``/``normal_y``)."""
    n = getattr(e, "normal", None)
    return n if n is not None else (e.normal_x, e.normal_y)


def _segment(e) -> tuple[float, float, float, float]:
    """A door's end points (x1, y1, x2, y2), from either segment layout the simulator uses."""
    seg = e.segment
    return tuple(seg[1:5]) if len(seg) > 4 else tuple(seg)


def _draw_entity(img: np.ndarray, e, scale: int, ox: float, oy: float) -> None:
    """Draw entity ``e`` into ``img``; world (x, y) maps to (x / scale - ox, y / scale - oy)."""
    k = e.kind
    fx = e.xpos / scale - ox
    fy = e.ypos / scale - oy
    if k == 1 or k == 21:
        stamp_disc(img, fx, fy, e.radius / scale, _MINE_VALUES[e.state])
    elif k == 2:
        if e.active:
            stamp_disc(img, fx, fy, 6 / scale, VALUES["gold"])
    elif k == 3:
        stamp_square(img, fx, fy, 12 / scale,
                     VALUES["exit_open"] if e.switch_hit else VALUES["exit_closed"])
    elif k == 4:
        if e.active:
            stamp_disc(img, fx, fy, 6 / scale, VALUES["exit_switch"])
    elif k in (5, 6, 8):
        if e.closed:
            x1, y1, x2, y2 = _segment(e)
            stamp_line(img, x1 / scale - ox, y1 / scale - oy, x2 / scale - ox,
                       y2 / scale - oy, VALUES["door"], thick=2 if scale < 2 else 1)
        if k != 5 and e.active:
            stamp_disc(img, fx, fy, 5 / scale, VALUES["door_switch"])
    elif k == 10:
        stamp_disc(img, fx, fy, 6 / scale, VALUES["launch_pad"])
    elif k == 24:
        stamp_disc(img, fx, fy, 6 / scale, VALUES["boost_pad"])
    elif k == 11:
        nx, ny = _normal(e)
        tx, ty = -ny * 12 / scale, nx * 12 / scale
        stamp_line(img, fx - tx, fy - ty, fx + tx, fy + ty, VALUES["one_way"],
                   thick=2 if scale < 2 else 1)
    elif k == 14:
        stamp_disc(img, fx, fy, e.radius / scale, VALUES["zap_drone"])
    elif k == 26:
        stamp_disc(img, fx, fy, e.radius / scale, VALUES["mini_drone"])
    elif k == 25:
        stamp_disc(img, fx, fy, e.radius / scale, VALUES["death_ball"])
    elif k == 17:
        stamp_square(img, fx, fy, e.semi_side / scale, VALUES["bounce_block"])
    elif k == 20:
        stamp_square(img, fx, fy, e.semi_side / scale, VALUES["thwump"])
    elif k == 28:
        stamp_square(img, fx, fy, e.semi_side / scale, VALUES["shove_thwump"])


@dataclass
class _LevelStatic:
    """Everything about a level the builder derives once: tile layers and the static graph."""

    level_hash: str
    tiles: np.ndarray  # intp [44, 25] (x, y)
    layers: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    graph: StaticGraph | None = None

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
    key = (sim.map.content_hash, config.graph_cell if config.has("graph") else 0)
    level = _LEVELS.get(key)
    if level is not None:
        _LEVELS.move_to_end(key)
        return level
    tiles = np.asarray(sim.tiles, dtype=np.intp)  # [44, 25] (x, y)
    level = _LevelStatic(level_hash=sim.map.content_hash, tiles=tiles)
    if config.has("graph"):
        level.graph = build_static_graph(level.level_hash, level_coverage(tiles),
                                         config.graph_cell, sim.entities)
    _LEVELS[key] = level
    while len(_LEVELS) > config.static_cache_levels:
        _LEVELS.popitem(last=False)
    return level


class ObservationBuilder:
    """Builds observation dicts from simulator state for one :class:`ObservationConfig`.

    Call :meth:`bind` after constructing or ``reset()``-ing a simulator (reset recreates the
    entities); ``restore()`` keeps entity identity, so no rebind is needed after it.
    """

    def __init__(self, config: ObservationConfig | None = None) -> None:
        self.config = config or ObservationConfig()
        self._sim = None
        self._level: _LevelStatic | None = None

    # -- binding -----------------------------------------------------------------------------
    def bind(self, sim) -> None:
        """Attach to ``sim``'s level: fetch cached static data, sort entities for drawing."""
        cfg = self.config
        self._sim = sim
        self._level = _level_static(sim, cfg)
        ents = list(sim.entities)
        self._entities = ents
        self._static_ents = sorted((e for e in ents if e.kind in _STATIC_KINDS),
                                   key=lambda e: _DRAW_ORDER[e.kind])
        self._moving = [e for e in ents if e.kind not in _STATIC_KINDS]
        self._flag_items = [(e, _STATUS_ATTR.get(e.kind, "active")) for e in self._static_ents]
        for e in self._static_ents:
            if e.kind in (6, 8):
                self._flag_items.append((e, "active"))
        self._status_items = [(e, _STATUS_ATTR.get(e.kind)) for e in ents]
        self._status_scale = np.array([_STATUS_SCALE.get(e.kind, 1.0) for e in ents],
                                      np.float32)
        switches = [e for e in ents if e.kind == 4]
        self._switch = switches[0] if switches else None
        exits = [e for e in ents if e.kind == 3]
        self._exit = self._switch.door if self._switch is not None else (
            exits[0] if exits else None)
        self._gold_total = sum(1 for e in ents if e.kind == 2)
        self._flags: list | None = None
        self._layers: dict[tuple[int, int], np.ndarray] = {}

    @property
    def static_graph(self) -> StaticGraph | None:
        """The bound level's static graph (None unless the graph modality is on)."""
        return None if self._level is None else self._level.graph

    def _check_flags(self) -> None:
        """Forget the entity layers when a non-moving entity changed (mine, gold, door...)."""
        flags = [getattr(e, a) for e, a in self._flag_items]
        if flags != self._flags:
            self._flags = flags
            self._layers = {}

    def _entity_layer(self, scale: int, pad: int) -> np.ndarray:
        """Tiles plus non-moving entities at ``scale``; call :meth:`_check_flags` first."""
        layer = self._layers.get((scale, pad))
        if layer is None:
            layer = self._level.tile_layer(scale, pad).copy()
            for e in self._static_ents:
                _draw_entity(layer, e, scale, -pad, -pad)
            self._layers[(scale, pad)] = layer
        return layer

    # -- observing ---------------------------------------------------------------------------
    def observe(self, sim=None) -> dict[str, np.ndarray]:
        """The observation of the simulator's current state (before its next tick)."""
        sim = sim if sim is not None else self._sim
        if sim is not self._sim or self._level is None:
            self.bind(sim)
        cfg = self.config
        out: dict[str, np.ndarray] = {}
        ninja = sim.ninja
        if cfg.has("player_frame") or cfg.has("global_view"):
            self._check_flags()
        if cfg.has("player_frame"):
            out["player_frame"] = self._player_frame(ninja)
        if cfg.has("global_view"):
            out["global_view"] = self._global_view(ninja)
        if cfg.has("game_state"):
            out["game_state"] = self._game_state(sim)
        if cfg.has("action_mask"):
            # Every action is legal in every N++ state; masking would also bias BC labels.
            out["action_mask"] = np.ones(N_ACTIONS, dtype=bool)
        if cfg.has("graph"):
            node = self._level.graph.node_at(ninja.xpos, ninja.ypos, cfg.graph_cell)
            out["graph_ninja_node"] = np.array([node], dtype=np.int32)
            out["graph_entity_state"] = self._entity_state()
        return out

    def _player_frame(self, ninja) -> np.ndarray:
        cfg = self.config
        s, size = cfg.crop_scale, cfg.player_frame_size
        half = size // 2
        layer = self._entity_layer(s, half)
        fx, fy = ninja.xpos / s, ninja.ypos / s
        cx = min(max(int(math.floor(fx)), 0), LEVEL_W // s - 1)
        cy = min(max(int(math.floor(fy)), 0), LEVEL_H // s - 1)
        frame = layer[cy:cy + size, cx:cx + size].copy()
        ox, oy = cx - half, cy - half  # world / s -> frame pixel offset
        reach = 16 / s
        for e in self._moving:
            ex, ey = e.xpos / s - ox, e.ypos / s - oy
            if -reach < ex < size + reach and -reach < ey < size + reach:
                _draw_entity(frame, e, s, ox, oy)
        stamp_disc(frame, fx - ox, fy - oy, C.NINJA_RADIUS / s, NINJA_VALUE)
        return frame[None]

    def _global_view(self, ninja) -> np.ndarray:
        s = self.config.global_scale
        view = self._entity_layer(s, 0).copy()
        for e in self._moving:
            _draw_entity(view, e, s, 0.0, 0.0)
        stamp_disc(view, ninja.xpos / s, ninja.ypos / s, C.NINJA_RADIUS / s, NINJA_VALUE)
        return view[None]

    def _game_state(self, sim) -> np.ndarray:
        n = sim.ninja
        x, y = n.xpos, n.ypos
        onehot = [0.0] * 10
        onehot[n.state] = 1.0
        sw = self._switch
        if sw is not None:
            sdx, sdy = sw.xpos - x, sw.ypos - y
            switch = [sdx / LEVEL_W, sdy / LEVEL_H, math.hypot(sdx, sdy) / _DIAG]
        else:
            switch = [0.0, 0.0, 0.0]
        ex = self._exit
        if ex is not None:
            edx, edy = ex.xpos - x, ex.ypos - y
            exit_ = [edx / LEVEL_W, edy / LEVEL_H, math.hypot(edx, edy) / _DIAG]
        else:
            exit_ = [0.0, 0.0, 0.0]
        gold = n.gold_collected
        feats = [
            x / LEVEL_W * 2 - 1, y / LEVEL_H * 2 - 1,
            n.xspeed / C.MAX_HOR_SPEED, n.yspeed / _MAX_FALL_SPEED,
            *onehot,
            float(n.airborn), float(n.walled), float(n.wall_normal),
            n.floor_normalized_x, n.floor_normalized_y,
            n.ceiling_normalized_x, n.ceiling_normalized_y,
            n.jump_buffer / 5, n.floor_buffer / 5, n.wall_buffer / 5, n.launch_pad_buffer / 5,
            float(n.jump_input_old), n.jump_duration / C.MAX_JUMP_DURATION,
            (n.applied_gravity - C.GRAVITY_JUMP) / (C.GRAVITY_FALL - C.GRAVITY_JUMP),
            (n.applied_drag - C.DRAG_SLOW) / (C.DRAG_REGULAR - C.DRAG_SLOW),
            float(sim.switch_hit if sw is None else sw.door.switch_hit),
            *switch, *exit_,
            gold / self._gold_total if self._gold_total else 0.0, gold / 10,
            sim.frame / C.MAX_TICKS,
        ]
        return np.array(feats, dtype=np.float32)

    def _entity_state(self) -> np.ndarray:
        rows = [(e.xpos, e.ypos, e.active, getattr(e, a) if a else 0)
                for e, a in self._status_items]
        arr = np.array(rows, dtype=np.float32).reshape(len(rows), 4)
        arr[:, 0] /= LEVEL_W
        arr[:, 1] /= LEVEL_H
        arr[:, 3] *= self._status_scale
        return arr

    # -- pictures for people -----------------------------------------------------------------
    def render_rgb(self, sim=None, scale: int = 1) -> np.ndarray:
        """The whole level as an RGB uint8 [600 / scale, 1056 / scale, 3] image."""
        sim = sim if sim is not None else self._sim
        if sim is not self._sim or self._level is None:
            self.bind(sim)
        self._check_flags()
        img = self._entity_layer(scale, 0).copy()
        for e in self._moving:
            _draw_entity(img, e, scale, 0.0, 0.0)
        n = sim.ninja
        stamp_disc(img, n.xpos / scale, n.ypos / scale, C.NINJA_RADIUS / scale, NINJA_VALUE)
        return PALETTE[img]
