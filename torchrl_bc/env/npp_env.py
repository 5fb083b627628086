"""``NppEnv``: a gymnasium environment over the simulator and the shared observation builder.

It uses the same :class:`~torchrl_bc.obs.ObservationBuilder`, ``frame_skip`` and
:class:`~torchrl_bc.obs.reward.RewardConfig` as the replay executor, so a policy cloned from
replays sees exactly the arrays it will see here. ``step_ticks`` drives the simulator with
explicit per-tick input bytes (what a replay does), which is how tests prove the two agree.

The graph's per-step arrays have one row per entity, so their space is set per level on reset;
the static graph of the current level is :attr:`NppEnv.static_graph`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from torchrl_bc.obs import ObservationBuilder, ObservationConfig, StaticGraph
from torchrl_bc.obs.modalities import observation_spaces
from torchrl_bc.obs.reward import RewardConfig
from torchrl_bc.sim import INPUT_DECODE, Simulator
from torchrl_bc.sim import constants as C
from torchrl_bc.sim.actions import ACTIONS, N_ACTIONS
from torchrl_bc.sim.mapdata import read_map_file
from torchrl_bc.sim.simulator import SimSnapshot

__all__ = ["LevelSource", "NppEnv"]

#: A map source: map data, a path to a map-data file, or a generator ``rng -> map data``.
LevelSource = bytes | str | os.PathLike | Callable[[np.random.Generator], bytes]


def _load_map(source: LevelSource, rng: np.random.Generator) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    if isinstance(source, str | os.PathLike):
        return read_map_file(source)
    if callable(source):
        return bytes(source(rng))
    raise TypeError(f"cannot load a level from {type(source).__name__}")


class NppEnv(gym.Env):
    """One N++ level per episode; 6 discrete actions held for ``frame_skip`` ticks.

    ``reset(options=...)`` accepts ``map_data`` / ``map_path`` / ``level`` (any
    :data:`LevelSource`) to switch level, or ``snapshot`` (from :meth:`snapshot`) to start from a
    saved state of the current level. Terminated on win or death, truncated at 20000 ticks.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 60}

    def __init__(self, level: LevelSource | None = None,
                 config: ObservationConfig | None = None,
                 reward: RewardConfig | None = None, *, solid_doors: bool = False,
                 render_mode: str | None = "rgb_array", render_scale: int = 1,
                 max_ticks: int = C.MAX_TICKS) -> None:
        self.config = config or ObservationConfig()
        self.reward_config = reward or RewardConfig()
        self.solid_doors = solid_doors
        self.render_mode = render_mode
        self.render_scale = render_scale
        # The truncation limit; 20000 (as in replays) unless a test or curriculum lowers it.
        self.max_ticks = max_ticks
        self.builder = ObservationBuilder(self.config)
        self.level = level
        self.sim: Simulator | None = None
        self._map_data: bytes | None = None
        self.action_space = spaces.Discrete(N_ACTIONS)
        self.observation_space = self._space(0)

    # -- spaces ------------------------------------------------------------------------------
    def _space(self, n_entities: int) -> spaces.Dict:
        """The modality registry's spaces for this config, ``n_entities`` rows per entity."""
        return spaces.Dict(observation_spaces(self.config, n_entities))

    # -- gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict]:
        super().reset(seed=seed)
        options = options or {}
        snapshot = options.get("snapshot")
        source = options.get("map_data", options.get("map_path", options.get("level")))
        if source is not None:
            self.level = source
        if snapshot is not None and source is None and self.sim is not None:
            self.sim.restore(snapshot)  # same level, same entity objects: no rebind needed
            self.builder.bind(self.sim)
        else:
            if self.level is None:
                raise ValueError("NppEnv needs a level: pass one to NppEnv() or reset(options)")
            map_data = _load_map(self.level, self.np_random)
            if self.sim is not None and map_data == self._map_data:
                self.sim.reset()
            else:
                self.sim = Simulator(map_data, solid_doors=self.solid_doors)
                self._map_data = map_data
            if snapshot is not None:
                self.sim.restore(snapshot)
            self.builder.bind(self.sim)
            self.observation_space = self._space(len(self.sim.entities))
        return self.builder.observe(self.sim), self._info()

    def step(self, action: int) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        """Hold ``action`` for ``frame_skip`` ticks (fewer if the episode ends first)."""
        a = int(action)
        if not 0 <= a < N_ACTIONS:
            raise ValueError(f"action {action} is not in 0..{N_ACTIONS - 1}")
        _, hor, jump = ACTIONS[a]
        return self._advance([(hor, jump)] * self.config.frame_skip)

    def step_ticks(self, inputs: np.ndarray | list[int] | bytes
                   ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        """Tick-level hook: one step driven by explicit per-tick input bytes (0..7)."""
        return self._advance([INPUT_DECODE[int(b)] for b in bytes(bytearray(inputs))])

    def _advance(self, ticks: list[tuple[int, int]]
                 ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        sim = self.sim
        if sim is None:
            raise RuntimeError("call reset() before step()")
        if sim.done or sim.frame >= self.max_ticks:
            raise RuntimeError("episode is over; call reset()")
        ticks = ticks[: max(self.max_ticks - sim.frame, 0)]
        hors = np.array([h for h, _ in ticks], np.float64)
        jumps = np.array([j for _, j in ticks], np.float64)
        n = sim.advance(hors, jumps)  # one compiled call; stops after a winning/killing tick
        terminated = sim.done
        truncated = not terminated and sim.frame >= self.max_ticks
        reward = self.reward_config.step_reward(sim.ninja.state, n)
        info = self._info()
        info["ticks"] = n
        return self.builder.observe(sim), reward, terminated, truncated, info

    def _info(self) -> dict[str, Any]:
        sim = self.sim
        return {"frame": sim.frame, "won": sim.ninja.state == C.WON,
                "died": sim.ninja.state in (C.DEAD, C.DYING), "level_hash": sim.map.content_hash}

    def render(self) -> np.ndarray:
        """The whole level in colour, RGB uint8 [600 / scale, 1056 / scale, 3]."""
        if self.sim is None:
            raise RuntimeError("call reset() before render()")
        return self.builder.render_rgb(self.sim, scale=self.render_scale)

    # -- extras ------------------------------------------------------------------------------
    def snapshot(self) -> SimSnapshot:
        """Save the current simulator state for ``reset(options={"snapshot": ...})``."""
        if self.sim is None:
            raise RuntimeError("call reset() before snapshot()")
        return self.sim.snapshot()

    @property
    def static_graph(self) -> StaticGraph | None:
        return self.builder.static_graph
