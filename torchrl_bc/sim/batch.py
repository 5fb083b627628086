"""Step many simulators in one compiled, multi-threaded call (vector environments).

:class:`SimBatch` stacks the state arrays of N simulators (padded to the largest level) and
rebinds each simulator to views of that stack, so per-env code (observation builders, resets,
snapshots) keeps working on the very same memory the batch kernel advances.
"""

from __future__ import annotations

import numpy as np

from . import kernel as K
from . import layout as L
from .actions import ACTION_HOR, ACTION_JUMP
from .simulator import Simulator


class SimBatch:
    """N simulators advanced together; see :meth:`step`."""

    def __init__(self, sims: list[Simulator]) -> None:
        if not sims:
            raise ValueError("SimBatch needs at least one simulator")
        self.sims = list(sims)
        n = len(sims)
        n_ent = max(s.ei.shape[0] for s in sims)
        n_seg = max(s._lv[0].shape[0] for s in sims)
        width = max(s._scratch.shape[1] for s in sims)
        self.segs = np.zeros((n, n_seg, L_SEG := sims[0]._lv[0].shape[1]), np.float64)
        self.cs = np.zeros((n, sims[0]._lv[1].shape[0]), np.int64)
        self.cb = np.zeros((n, *sims[0]._lv[2].shape), np.float64)
        self.nin = np.zeros((n, L.N_COLS), np.float64)
        self.ei = np.zeros((n, n_ent, L.EI_COLS), np.int64)
        self.ef = np.zeros((n, n_ent, L.EF_COLS), np.float64)
        self.misc = np.zeros((n, L.M_COLS), np.int64)
        self.hor = np.zeros((n, *sims[0].hor_edges.shape), np.int64)
        self.ver = np.zeros((n, *sims[0].ver_edges.shape), np.int64)
        self.scratch = np.zeros((n, 4, width), np.int64)
        self.ei[:, :, L.EI_SEQ] = -1  # padding rows: inactive, kind 0, not in the grid
        for i, sim in enumerate(sims):
            segs, cs, cb = sim._lv
            self.segs[i, : segs.shape[0]] = segs
            assert L_SEG == segs.shape[1]
            self.cs[i] = cs
            self.cb[i] = cb
            e = sim.ei.shape[0]
            sim._adopt(self.nin[i], self.ei[i, :e], self.ef[i, :e], self.misc[i], self.hor[i],
                       self.ver[i])
        self._ticks = np.zeros(n, np.int64)
        self._ended = np.zeros(n, np.int64)
        # Each env's start state, the target of in-kernel autoresets.
        snaps = [sim.snapshot() for sim in self.sims]
        for sim in self.sims:
            sim.reset()
        self._init = tuple(a.copy() for a in (self.nin, self.ei, self.ef, self.misc, self.hor,
                                              self.ver))
        for sim, snap in zip(self.sims, snaps, strict=True):
            sim.restore(snap)

    def __len__(self) -> int:
        return len(self.sims)

    def step(self, actions: np.ndarray, ticks: int, autoreset: bool = False) -> np.ndarray:
        """Hold each env's action (0..5) for ``ticks`` ticks; returns the ticks each ran
        (fewer once an env wins or dies; 0 for envs already over).

        With ``autoreset`` an env that wins or dies restarts its level inside the same
        compiled call; :attr:`ended` then says which envs ended and how.
        """
        a = np.asarray(actions, np.int64)
        return self.step_inputs(ACTION_HOR[a], ACTION_JUMP[a], ticks, autoreset)

    def step_inputs(self, hors: np.ndarray, jumps: np.ndarray, ticks: int,
                    autoreset: bool = False) -> np.ndarray:
        K.step_batch(self.segs, self.cs, self.cb, self.nin, self.ei, self.ef, self.misc,
                     self.hor, self.ver, self.scratch, np.asarray(hors, np.float64),
                     np.asarray(jumps, np.float64), int(ticks), self._ticks, self._ended,
                     *self._init, bool(autoreset))
        return self._ticks.copy()

    @property
    def ended(self) -> np.ndarray:
        """Per env, the state its last :meth:`step` ended in (6 dying, 7 dead, 8 won), or 0."""
        return self._ended.copy()

    @property
    def states(self) -> np.ndarray:
        return self.nin[:, L.N_STATE].astype(np.int64)


def step_many(batch: SimBatch, actions: np.ndarray, frame_skip: int = 4) -> np.ndarray:
    """Functional form of :meth:`SimBatch.step`."""
    return batch.step(actions, frame_skip)
