"""Compiled helpers of :mod:`torchrl_bc.env.slots`: serial batch stepping and bulk ``game_state``.

Kept apart from ``slots.py`` so the numba cache stamp (:mod:`torchrl_bc.sim.jitcache`) covers
exactly what this code reads: the simulator's kernel, layout and constants.
"""

from __future__ import annotations

from numba import njit

from torchrl_bc.sim import constants as C
from torchrl_bc.sim import jitcache  # noqa: F401  (before any njit: cache keyed on all sources)
from torchrl_bc.sim import kernel as K
from torchrl_bc.sim import layout as L

__all__ = ["game_state_rows", "step_serial"]


@njit(cache=True, nogil=True)
def game_state_rows(rows, nin, ei, ef, misc, switch, exit_, gold_total, level_w, level_h,
                    max_fall_speed, out, deltas):
    """``ObservationBuilder.game_state`` for ``rows``, float64 op for op; the two distances
    are left to the caller (``deltas`` receives switch dx, dy and exit dx, dy). The level size
    and fall-speed scale come in as arguments, so only simulator modules are folded in."""
    for j in range(rows.shape[0]):
        i = rows[j]
        a = nin[i]
        x = a[L.N_X]
        y = a[L.N_Y]
        o = out[j]
        o[0] = x / level_w * 2 - 1
        o[1] = y / level_h * 2 - 1
        o[2] = a[L.N_VX] / C.MAX_HOR_SPEED
        o[3] = a[L.N_VY] / max_fall_speed
        for k in range(10):
            o[4 + k] = 0.0
        o[4 + int(a[L.N_STATE])] = 1.0
        o[14] = a[L.N_AIRBORN]
        o[15] = a[L.N_WALLED]
        o[16] = a[L.N_WALL_NORMAL]
        o[17] = a[L.N_FLOOR_NX]
        o[18] = a[L.N_FLOOR_NY]
        o[19] = a[L.N_CEIL_NX]
        o[20] = a[L.N_CEIL_NY]
        o[21] = a[L.N_JUMP_BUF] / 5
        o[22] = a[L.N_FLOOR_BUF] / 5
        o[23] = a[L.N_WALL_BUF] / 5
        o[24] = a[L.N_LP_BUF] / 5
        o[25] = a[L.N_JUMP_OLD]
        o[26] = a[L.N_JUMP_DURATION] / C.MAX_JUMP_DURATION
        o[27] = (a[L.N_GRAVITY] - C.GRAVITY_JUMP) / (C.GRAVITY_FALL - C.GRAVITY_JUMP)
        o[28] = (a[L.N_DRAG] - C.DRAG_SLOW) / (C.DRAG_REGULAR - C.DRAG_SLOW)
        sw = switch[i]
        ex = exit_[i]
        if sw >= 0:
            o[29] = 1.0 if ef[i, ex, L.F_FLAG] != 0 else 0.0
        else:
            hit = 0.0
            for e in range(ei.shape[1]):
                if ei[i, e, L.EI_KIND] == 3 and ef[i, e, L.F_FLAG] != 0:
                    hit = 1.0
            o[29] = hit
        if sw >= 0:
            sdx = ef[i, sw, L.F_X] - x
            sdy = ef[i, sw, L.F_Y] - y
            o[30] = sdx / level_w
            o[31] = sdy / level_h
            deltas[j, 0] = sdx
            deltas[j, 1] = sdy
        else:
            o[30] = 0.0
            o[31] = 0.0
            deltas[j, 0] = 0.0
            deltas[j, 1] = 0.0
        if ex >= 0:
            edx = ef[i, ex, L.F_X] - x
            edy = ef[i, ex, L.F_Y] - y
            o[33] = edx / level_w
            o[34] = edy / level_h
            deltas[j, 2] = edx
            deltas[j, 3] = edy
        else:
            o[33] = 0.0
            o[34] = 0.0
            deltas[j, 2] = 0.0
            deltas[j, 3] = 0.0
        gold = a[L.N_GOLD]
        o[36] = gold / gold_total[i] if gold_total[i] else 0.0
        o[37] = gold / 10
        o[38] = misc[i, L.M_FRAME] / C.MAX_TICKS


@njit(cache=True, nogil=True)
def step_serial(segs, cs, cb, nin, ei, ef, misc, hor_e, ver_e, scratch, hors, jumps, ticks,
                 out):
    """``kernel.step_batch`` without threads (and without autoreset): the same ``kernel.tick``
    per env and tick, in one thread. Numba's worker threads spin after a parallel region and
    then fight PyTorch's for the cores; between policy forwards one thread is faster."""
    segs, cs, cb = K._borrow(segs), K._borrow(cs), K._borrow(cb)
    nin, ei, ef, misc = K._borrow(nin), K._borrow(ei), K._borrow(ef), K._borrow(misc)
    hor_e, ver_e, scratch = K._borrow(hor_e), K._borrow(ver_e), K._borrow(scratch)
    for i in range(nin.shape[0]):
        k = 0
        s = nin[i, L.N_STATE]
        if not (s == 6 or s == 7 or s == 8):
            while k < ticks:
                K.tick(segs[i], cs[i], cb[i], nin[i], ei[i], ef[i], misc[i], hor_e[i], ver_e[i],
                       scratch[i], hors[i], jumps[i])
                k += 1
                s = nin[i, L.N_STATE]
                if s == 6 or s == 7 or s == 8:
                    break
        out[i] = k
