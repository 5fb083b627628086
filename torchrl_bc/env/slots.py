"""``LevelSlots``: N environment slots, each playing any level of a list, stepped in one call.

:class:`~torchrl_bc.sim.batch.SimBatch` fixes one level per env and pads to the levels it was
built with; RL and evaluation need more: a slot switches level at every episode (PPO draws a
level per episode) and episodes are capped per level. ``LevelSlots`` keeps the stacked state
arrays itself, grows them when a larger level arrives, and drives the very same compiled kernel
(``kernel.step_batch``), so the simulation is the simulator's, tick for tick.

Observations: with :data:`BULK_MODALITIES` only (``game_state``, ``objective``,
``last_input``, ``action_mask``: the mlp and generalist configs), :meth:`observe` builds every
slot's row at once from the stacked arrays (``game_state`` in one compiled call, ``objective``
by a gather from each level's distance-field tables), with the arithmetic of
:class:`~torchrl_bc.obs.ObservationBuilder` op for op (distances through Python's
``math.hypot``, which the C library's ``hypot`` does not always match), so the arrays equal the
builder's byte for byte. Other modalities go through one ``ObservationBuilder`` per slot on a
:class:`Simulator` bound to the slot's rows (the same views the kernel advances).
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from torchrl_bc.env.slots_jit import game_state_rows, step_serial
from torchrl_bc.obs import N_GAME_STATE, ObservationBuilder, ObservationConfig
from torchrl_bc.obs import modalities as M
from torchrl_bc.obs.builder import _MAX_FALL_SPEED, level_objective
from torchrl_bc.obs.distance import NX, NY, STEP
from torchrl_bc.obs.game_state import feature_index
from torchrl_bc.obs.objective import PATH_LENGTH_SCALE, ObjectiveFields
from torchrl_bc.obs.raster import LEVEL_H, LEVEL_W
from torchrl_bc.sim import Simulator
from torchrl_bc.sim import constants as C
from torchrl_bc.sim import entities as E
from torchrl_bc.sim import kernel as K
from torchrl_bc.sim import layout as L
from torchrl_bc.sim.actions import ACTION_HOR, ACTION_JUMP, N_ACTIONS

__all__ = ["BULK_MODALITIES", "LevelSlots"]

#: Modalities :meth:`LevelSlots.observe` builds for all slots at once.
BULK_MODALITIES = frozenset({"game_state", "objective", "last_input", "action_mask"})
_DIAG = math.hypot(LEVEL_W, LEVEL_H)
_TERMINAL = (C.DEAD, C.DYING, C.WON)


class _Template:
    """One level's pristine simulator (never stepped) and what the bulk observer needs."""

    def __init__(self, map_data: bytes, solid_doors: bool) -> None:
        sim = Simulator(map_data, solid_doors=solid_doors)
        self.sim = sim
        self.n_ent = sim.ei.shape[0]
        self.n_seg = sim._lv[0].shape[0]
        self.width = sim._scratch.shape[1]
        self.state = tuple(a.copy() for a in (sim.ninja_state, sim.ei, sim.ef, sim.misc,
                                              sim.hor_edges, sim.ver_edges))
        kinds = sim.ei[:, L.EI_KIND]
        switches = np.flatnonzero(kinds == E.EXIT_SWITCH)
        exits = np.flatnonzero(kinds == E.EXIT)
        # the same choice as ObservationBuilder.bind
        self.switch = int(switches[0]) if switches.size else -1
        if self.switch >= 0:
            self.exit = int(sim.ei[self.switch, L.EI_LINK])
        else:
            self.exit = int(exits[0]) if exits.size else -1
        self.gold_total = int(np.count_nonzero(kinds == E.GOLD))
        self._objective: ObjectiveFields | None = None
        self._objective_done = False

    def objective(self, config: ObservationConfig) -> ObjectiveFields | None:
        """The level's objective fields (the builder's, built on first use), kept with the
        template so that more levels than the builder's cache holds are not rebuilt."""
        if not self._objective_done:
            self._objective = level_objective(self.sim, config, self.switch, self.exit)
            self._objective_done = True
        return self._objective


class LevelSlots:
    """``n`` slots over ``levels`` (map data); :meth:`load` puts a level's start into a slot.

    ``caps[i]`` is slot ``i``'s episode limit in ticks: a step never runs a slot past it (that
    slot's last step is shorter, as in ``NppEnv``). Up to ``cache_levels`` parsed levels are
    kept (least recently used dropped), so memory stays bounded on large level lists.
    ``parallel=True`` steps through the simulator's multi-threaded ``step_batch`` (numba's
    threads); the default single-threaded loop is faster when PyTorch shares the cores.
    """

    def __init__(self, levels: Sequence[bytes], n: int, config: ObservationConfig, *,
                 solid_doors: bool = False, cache_levels: int = 512,
                 parallel: bool = False) -> None:
        if n < 1:
            raise ValueError(f"need at least one slot, got {n}")
        if not levels:
            raise ValueError("LevelSlots needs at least one level")
        self.levels = [bytes(lv) for lv in levels]
        self.n = n
        self.parallel = parallel
        self.config = config
        self.solid_doors = solid_doors
        self.cache_levels = max(cache_levels, 1)
        self.bulk = set(config.modalities) <= BULK_MODALITIES
        self._templates: OrderedDict[int, _Template] = OrderedDict()
        self.level_of = np.full(n, -1, np.int64)
        self.caps = np.full(n, C.MAX_TICKS, np.int64)
        self.sims: list[Simulator | None] = [None] * n
        self.builders = [None if self.bulk else ObservationBuilder(config) for _ in range(n)]
        self._renderers: dict[int, ObservationBuilder] = {}
        self.switch = np.full(n, -1, np.int64)
        self.exit = np.full(n, -1, np.int64)
        self.gold_total = np.zeros(n, np.int64)
        self.n_ent = np.zeros(n, np.int64)
        self._objectives: list[ObjectiveFields | None] = [None] * n
        self._zero = feature_index(config.state_zero)
        self._bulk_observe = {
            "game_state": self.game_state, "objective": self.objective,
            "last_input": self.last_input,
            "action_mask": lambda r: np.ones((r.shape[0], N_ACTIONS), dtype=bool)}
        first = self._template(0)
        self._cap_seg, self._cap_ent, self._cap_w = 0, 0, 0
        lv = first.sim._lv
        self.cs = np.zeros((n, *lv[1].shape), np.int64)
        self.cb = np.zeros((n, *lv[2].shape), np.float64)
        self.nin = np.zeros((n, L.N_COLS), np.float64)
        self.misc = np.zeros((n, L.M_COLS), np.int64)
        self.hor = np.zeros((n, *first.sim.hor_edges.shape), np.int64)
        self.ver = np.zeros((n, *first.sim.ver_edges.shape), np.int64)
        self._l_seg = lv[0].shape[1]
        self.segs = np.zeros((n, 0, self._l_seg), np.float64)
        self.ei = np.zeros((n, 0, L.EI_COLS), np.int64)
        self.ef = np.zeros((n, 0, L.EF_COLS), np.float64)
        self.scratch = np.zeros((n, 4, 0), np.int64)
        self._grow(first.n_seg, first.n_ent, first.width)
        self._ran = np.zeros(n, np.int64)
        self._ended = np.zeros(n, np.int64)
        self._deltas = np.zeros((n, 4), np.float64)
        self._all = np.arange(n, dtype=np.int64)

    # -- levels ------------------------------------------------------------------------------
    def _template(self, level: int) -> _Template:
        t = self._templates.get(level)
        if t is None:
            t = self._templates[level] = _Template(self.levels[level], self.solid_doors)
            while len(self._templates) > self.cache_levels:
                self._templates.popitem(last=False)
        else:
            self._templates.move_to_end(level)
        return t

    def _grow(self, n_seg: int, n_ent: int, width: int) -> None:
        """Widen the stacked arrays (rare: a level larger than any loaded so far)."""
        if n_seg <= self._cap_seg and n_ent <= self._cap_ent and width <= self._cap_w:
            return
        # geometric steps, so loading many levels of rising size costs O(n) copies, not O(n^2)
        n_seg = max(n_seg, self._cap_seg + self._cap_seg // 4)
        n_ent = max(n_ent, self._cap_ent + self._cap_ent // 4)
        width = max(width, self._cap_w + self._cap_w // 4)
        segs = np.zeros((self.n, n_seg, self._l_seg), np.float64)
        segs[:, : self.segs.shape[1]] = self.segs
        ei = np.zeros((self.n, n_ent, L.EI_COLS), np.int64)
        ei[:, :, L.EI_SEQ] = -1  # padding rows: inactive, kind 0, not in the grid
        ei[:, : self.ei.shape[1]] = self.ei
        ef = np.zeros((self.n, n_ent, L.EF_COLS), np.float64)
        ef[:, : self.ef.shape[1]] = self.ef
        self.segs, self.ei, self.ef = segs, ei, ef
        self.scratch = np.zeros((self.n, 4, width), np.int64)
        self._cap_seg, self._cap_ent, self._cap_w = n_seg, n_ent, width
        for i, sim in enumerate(self.sims):  # rebind live simulators to the new rows
            if sim is not None:
                e = sim.ei.shape[0]
                sim._adopt(self.nin[i], self.ei[i, :e], self.ef[i, :e], self.misc[i],
                           self.hor[i], self.ver[i])

    def load(self, slot: int, level: int, cap: int = C.MAX_TICKS) -> None:
        """Start ``level`` (an index into ``levels``) in ``slot``, capped at ``cap`` ticks."""
        t = self._template(level)
        i = slot
        self.caps[i] = cap
        if self.level_of[i] == level:  # same level again: copy its start state back
            e = t.n_ent
            nin, ei, ef, misc, hor, ver = t.state
            self.nin[i], self.ei[i, :e], self.ef[i, :e] = nin, ei, ef
            self.misc[i], self.hor[i], self.ver[i] = misc, hor, ver
            if self.builders[i] is not None:
                self.builders[i].bind(self.sims[i])
            return
        self._grow(t.n_seg, t.n_ent, t.width)
        e = t.n_ent
        self.segs[i, : t.n_seg] = t.sim._lv[0]
        self.cs[i] = t.sim._lv[1]
        self.cb[i] = t.sim._lv[2]
        self.ei[i, e:] = 0
        self.ei[i, e:, L.EI_SEQ] = -1
        self.ef[i, e:] = 0.0
        sim = copy.copy(t.sim)  # shares the static level, gets its own state rows below
        sim._scratch = np.zeros_like(t.sim._scratch)
        nin, ei, ef, misc, hor, ver = t.state
        sim.ninja_state, sim.ei, sim.ef, sim.misc = nin, ei, ef, misc
        sim.hor_edges, sim.ver_edges = hor, ver
        sim._adopt(self.nin[i], self.ei[i, :e], self.ef[i, :e], self.misc[i], self.hor[i],
                   self.ver[i])
        self.sims[i] = sim
        self.level_of[i] = level
        self.switch[i], self.exit[i], self.gold_total[i] = t.switch, t.exit, t.gold_total
        self.n_ent[i] = e
        if self.bulk and self.config.has("objective"):
            self._objectives[i] = t.objective(self.config)
        if self.builders[i] is not None:
            self.builders[i].bind(sim)

    # -- stepping ----------------------------------------------------------------------------
    @property
    def states(self) -> np.ndarray:
        return self.nin[:, L.N_STATE].astype(np.int64)

    @property
    def frames(self) -> np.ndarray:
        return self.misc[:, L.M_FRAME].copy()

    @property
    def positions(self) -> np.ndarray:
        """float64 [n, 2]: each slot's ninja position (x, y) in pixels, a copy."""
        return self.nin[:, [L.N_X, L.N_Y]].astype(np.float64)

    @property
    def death_causes(self) -> list[str]:
        """What killed each slot's ninja (``layout.DEATH_CAUSES``: ``mine``, ``impact``, ...),
        ``""`` unless it died this episode (the kill sets it, ``load`` clears it)."""
        return [L.DEATH_CAUSES[int(c)] for c in self.nin[:, L.N_DEATH_CAUSE]]

    def step(self, actions: np.ndarray, ticks: int) -> np.ndarray:
        """Hold each slot's action (0..5) for up to ``ticks`` ticks in one compiled call; a slot
        stops after a winning or killing tick or at its cap (0 ticks once over). Returns the
        ticks each slot ran."""
        a = np.asarray(actions, np.int64)
        hors, jumps = ACTION_HOR[a], ACTION_JUMP[a]
        left = self.caps - self.misc[:, L.M_FRAME]
        short = np.flatnonzero(left < ticks)
        saved = self.nin[short, L.N_STATE].copy()
        self.nin[short, L.N_STATE] = C.DEAD  # the kernel skips terminal slots: hold these
        if self.parallel:
            K.step_batch(self.segs, self.cs, self.cb, self.nin, self.ei, self.ef, self.misc,
                         self.hor, self.ver, self.scratch, hors, jumps, int(ticks), self._ran,
                         self._ended, self.nin, self.ei, self.ef, self.misc, self.hor,
                         self.ver, False)
        else:
            step_serial(self.segs, self.cs, self.cb, self.nin, self.ei, self.ef, self.misc,
                         self.hor, self.ver, self.scratch, hors, jumps, int(ticks), self._ran)
        self.nin[short, L.N_STATE] = saved
        # near the cap: fewer ticks, alone (once per episode at most); slots already at their
        # cap ran 0 ticks above (held)
        for i in short[left[short] > 0].tolist():
            n = int(left[i])
            sim = self.sims[i]
            self._ran[i] = 0 if sim.done else \
                sim.advance(np.full(n, hors[i]), np.full(n, jumps[i]))
        return self._ran.copy()

    def retire_ended(self, active: np.ndarray,
                     outcome: dict[int, tuple[bool, bool, int]]) -> np.ndarray:
        """Record (won, died, ticks) of each slot in ``active`` whose episode just ended (won,
        dead or dying, or at its cap) into ``outcome``; return the slots still playing."""
        states = self.states[active]
        won = states == C.WON
        died = (states == C.DEAD) | (states == C.DYING)
        frame = self.frames[active]
        over = won | died | (frame >= self.caps[active])
        for j in np.flatnonzero(over).tolist():
            outcome[int(active[j])] = (bool(won[j]), bool(died[j]), int(frame[j]))
        return active[~over]

    # -- observing ---------------------------------------------------------------------------
    def observe(self, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Observations of ``rows`` (default: every slot), stacked, in the builder's dtypes."""
        rows = self._all if rows is None else np.asarray(rows, np.int64)
        cfg = self.config
        if not self.bulk:
            per = [self.builders[i].observe(self.sims[i]) for i in rows.tolist()]
            return {k: np.stack([o[k] for o in per]) if k != "graph_entity_state" else
                    _pad_rows([o[k] for o in per]) for k in per[0]} if per else {}
        return {mod.name: self._bulk_observe[mod.name](rows)
                for mod in M.modalities(cfg.modalities)}

    def game_state(self, rows: np.ndarray) -> np.ndarray:
        m = rows.shape[0]
        feats = np.empty((m, N_GAME_STATE), np.float64)
        deltas = self._deltas[:m]
        game_state_rows(rows, self.nin, self.ei, self.ef, self.misc, self.switch, self.exit,
                        self.gold_total, LEVEL_W, LEVEL_H, _MAX_FALL_SPEED, feats, deltas)
        d = deltas.T.tolist()
        feats[:, 32] = np.fromiter(map(math.hypot, d[0], d[1]), np.float64, m) / _DIAG
        feats[:, 35] = np.fromiter(map(math.hypot, d[2], d[3]), np.float64, m) / _DIAG
        out = feats.astype(np.float32)
        out[:, self._zero] = 0.0
        return out

    def objective(self, rows: np.ndarray) -> np.ndarray:
        """``ObservationBuilder.objective`` of every row: stage, path length, and the unit
        directions to the objective and to the path's waypoints 24 and 96 px ahead."""
        m = rows.shape[0]
        x, y = self.nin[rows, L.N_X], self.nin[rows, L.N_Y]
        node = (np.clip(np.floor_divide(x, STEP).astype(np.int64), 0, NX - 1) * NY
                + np.clip(np.floor_divide(y, STEP).astype(np.int64), 0, NY - 1))
        door_flag = self.ef[rows, self.exit[rows], L.F_FLAG]
        stage = np.where(self.switch[rows] < 0, 1, (door_flag != 0).astype(np.int64))
        objs = [self._objectives[i] for i in rows.tolist()]
        # per row: path length, the two waypoint nodes, the goal (one scalar read per table)
        picked = np.array([(o.fields[s].item(k), o.near[s].item(k), o.far[s].item(k),
                            *o.goals[s]) if o is not None else (math.inf, 0, 0, 0.0, 0.0)
                           for o, s, k in zip(objs, stage.tolist(), node.tolist(), strict=True)],
                          np.float64).reshape(m, 5)
        has = np.array([o is not None for o in objs], bool)  # no exit: zeros, as the builder's
        dist, goal = picked[:, 0], picked[:, 3:5].T
        hops = picked[:, 1:3].T.astype(np.int64)
        vals = np.zeros((m, 8))
        vals[:, 0] = stage
        vals[:, 1] = np.where(np.isfinite(dist), np.minimum(dist / PATH_LENGTH_SCALE, 2.0), 2.0)
        vals[:, 2:4] = _units(goal[0] - x, goal[1] - y)
        wx, wy = (hops // NY) * STEP + STEP / 2, (hops % NY) * STEP + STEP / 2  # node centres
        vals[:, 4:6] = _units(wx[0] - x, wy[0] - y)
        vals[:, 6:8] = _units(wx[1] - x, wy[1] - y)
        vals[~has] = 0.0
        return vals.astype(np.float32)

    def last_input(self, rows: np.ndarray) -> np.ndarray:
        """``ObservationBuilder.last_input``: the horizontal and jump input of the last tick."""
        return self.nin[rows][:, [L.N_HOR, L.N_JUMP]].astype(np.float32)

    def render(self, slot: int, scale: int = 1) -> np.ndarray:
        """The slot's level in colour (``NppEnv.render``), RGB uint8."""
        builder = self.builders[slot]
        if builder is None:  # state-only configs: one drawing builder per slot, on demand
            builder = self._renderers.get(slot)
            if builder is None:
                builder = self._renderers[slot] = ObservationBuilder(self.config)
        if builder._sim is not self.sims[slot]:
            builder.bind(self.sims[slot])
        return builder.render_rgb(self.sims[slot], scale=scale)


def _units(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """[m, 2] unit vectors along (dx, dy); zeros when shorter than a pixel (the builder's
    ``_unit``, with its ``math.hypot``)."""
    n = np.fromiter(map(math.hypot, dx.tolist(), dy.tolist()), np.float64, dx.shape[0])
    ok = n >= 1.0
    safe = np.where(ok, n, 1.0)
    return np.where(ok[:, None], np.stack([dx / safe, dy / safe], axis=1), 0.0)


def _pad_rows(arrays: list[np.ndarray]) -> np.ndarray:
    m = max(1, max(a.shape[0] for a in arrays))
    return np.stack([np.pad(a, ((0, m - a.shape[0]), (0, 0))) for a in arrays])
