"""``LevelsEnv``: a TorchRL ``EnvBase`` that plays each level of a list once, all in lockstep.

Batch ``[n]``: slot ``i`` plays level ``i`` for one episode capped at ``caps[i]`` ticks, over one
:class:`~torchrl_bc.env.slots.LevelSlots` (one compiled call steps every slot; observations
equal ``NppEnv``'s byte for byte). Closed-loop evaluation drives it with the actor; RL keeps the
SB3 VecEnv. An ended episode stays ended: its slot is held (the kernel skips terminal slots,
and a slot at its cap runs 0 ticks), ``done`` stays set and its observation rows are zeros,
so ``env.rollout(policy=actor, break_when_any_done=False, break_when_all_done=True)`` plays
every level once. ``_reset`` with a ``"_reset"`` mask restarts only those slots.

Keys: the observation modalities (``graph_entity_state`` zero-padded to the largest level,
``graph_ninja_node`` as int64, ``graph_level`` = the slot, indexing :attr:`static_graphs`),
``action`` (0..5), ``reward`` (1 on the winning step: evaluation counts wins), ``done`` /
``terminated`` (won, dead or dying) / ``truncated`` (at the cap), ``won`` and ``ticks`` (the
episode's ticks so far).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from torchrl_bc.env.slots import LevelSlots
from torchrl_bc.obs import ObservationConfig
from torchrl_bc.replay.actions import N_ACTIONS

__all__ = ["LevelsEnv"]


class LevelsEnv(EnvBase):
    """``levels`` (map data) played once each, capped at ``caps`` ticks, as one batched env."""

    batch_locked = True

    def __init__(self, levels: Sequence[bytes], caps: Sequence[int],
                 config: ObservationConfig, *, device: torch.device | str = "cpu") -> None:
        n = len(levels)
        if n == 0 or len(caps) != n:
            raise ValueError(f"LevelsEnv needs one cap per level, got {n} levels and "
                             f"{len(caps)} caps")
        super().__init__(device=device, batch_size=torch.Size([n]))
        self.config = config
        self.n = n
        self.caps = np.asarray(caps, np.int64)
        self.slots = LevelSlots(list(levels), n, config)
        self._playing = np.zeros(n, bool)
        self._won = np.zeros(n, bool)
        self._died = np.zeros(n, bool)
        self._load(np.arange(n))
        self._graph = config.has("graph")
        first = self.slots.observe()
        # graph_entity_state: padded to the largest level's entity rows (a level's count is fixed)
        self._shapes: dict[str, tuple[tuple[int, ...], torch.dtype]] = {}
        for k, arr in first.items():
            shape = arr.shape[1:]
            dtype = torch.int64 if k == "graph_ninja_node" else _torch_dtype(arr.dtype)
            self._shapes[k] = (tuple(shape), dtype)
        if self._graph:
            self._shapes["graph_level"] = ((1,), torch.int64)
        specs = {k: Unbounded(shape=(n, *shape), dtype=dtype, device=self.device)
                 for k, (shape, dtype) in self._shapes.items()}
        specs["won"] = Unbounded(shape=(n, 1), dtype=torch.bool, device=self.device)
        specs["ticks"] = Unbounded(shape=(n, 1), dtype=torch.int64, device=self.device)
        self.observation_spec = Composite(specs, shape=(n,), device=self.device)
        self.action_spec = Categorical(N_ACTIONS, shape=(n,), device=self.device)
        self.reward_spec = Unbounded(shape=(n, 1), device=self.device)
        flag = dict(n=2, shape=(n, 1), dtype=torch.bool, device=self.device)
        self.full_done_spec = Composite(done=Categorical(**flag), terminated=Categorical(**flag),
                                   truncated=Categorical(**flag), shape=(n,),
                                   device=self.device)
        self._slot_index = torch.arange(n, device=self.device)[:, None]

    @property
    def static_graphs(self) -> list:
        """Each slot's level graph (what ``graph_level`` indexes); empty without ``graph``."""
        return [b.static_graph for b in self.slots.builders] if self._graph else []

    # -- EnvBase ---------------------------------------------------------------------------------
    def _load(self, rows: np.ndarray) -> None:
        for i in rows.tolist():
            self.slots.load(i, i, int(self.caps[i]))
        self._playing[rows] = True
        self._won[rows] = False
        self._died[rows] = False

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        rows = np.arange(self.n)
        mask = None if tensordict is None else tensordict.get("_reset", None)
        if mask is not None:
            rows = np.flatnonzero(mask.reshape(self.n).cpu().numpy())
        self._load(rows)
        return self._output(np.zeros(self.n, bool))

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        actions = tensordict.get("action").reshape(self.n).cpu().numpy()
        self.slots.step(actions, self.config.frame_skip)
        active = np.flatnonzero(self._playing)
        outcome: dict[int, tuple[bool, bool, int]] = {}
        self.slots.retire_ended(active, outcome)
        won_now = np.zeros(self.n, bool)
        for i, (won, died, _) in outcome.items():
            self._playing[i] = False
            self._won[i], self._died[i], won_now[i] = won, died, won
        return self._output(won_now)

    def _set_seed(self, seed: int | None) -> None:
        """Deterministic: nothing to seed (sampled actions come from the policy's RNG)."""

    # -- observations ----------------------------------------------------------------------------
    def _output(self, won_now: np.ndarray) -> TensorDictBase:
        """Full-batch arrays assembled in numpy (no per-step torch kernels), then wrapped."""
        rows = np.flatnonzero(self._playing)
        obs = self.slots.observe(rows) if rows.size else {}
        arrays: dict[str, np.ndarray] = {}
        for k, (shape, dtype) in self._shapes.items():
            if k == "graph_level":
                continue
            full = np.zeros((self.n, *shape), _NP_DTYPES[dtype])
            if rows.size:
                arr = obs[k]
                if k == "graph_entity_state":
                    full[rows, : arr.shape[1]] = arr
                else:
                    full[rows] = arr
            arrays[k] = full
        ended = ~self._playing
        terminated = self._won | self._died
        arrays.update(won=self._won[:, None].copy(), ticks=self.slots.frames[:, None],
                      reward=won_now.astype(np.float32)[:, None], done=ended[:, None],
                      terminated=terminated[:, None], truncated=(ended & ~terminated)[:, None])
        out = {k: torch.from_numpy(a).to(self.device) for k, a in arrays.items()}
        if self._graph:
            out["graph_level"] = self._slot_index
        return TensorDict(out, batch_size=self.batch_size, device=self.device)

    @property
    def playing(self) -> np.ndarray:
        """Which slots are still in their episode (a copy)."""
        return self._playing.copy()

    def outcomes(self) -> list[tuple[bool, bool, int]]:
        """(won, died, ticks) per slot, for episodes that ended."""
        frames = self.slots.frames
        return [(bool(self._won[i]), bool(self._died[i]), int(frames[i])) for i in range(self.n)]


def _torch_dtype(dtype: np.dtype) -> torch.dtype:
    return torch.from_numpy(np.zeros(0, dtype)).dtype


_NP_DTYPES = {torch.float32: np.float32, torch.float64: np.float64, torch.int64: np.int64,
              torch.int32: np.int32, torch.uint8: np.uint8, torch.bool: np.bool_,
              torch.int16: np.int16, torch.int8: np.int8, torch.float16: np.float16}

