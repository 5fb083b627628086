"""SB3 environments: ``NppEnv`` with the export's observation config, padded for fixed shapes.

:func:`make_sb3_env` returns the batched :class:`~torchrl_bc.sb3.vec_env.NppSB3VecEnv` by
default; the per-env path below is what it reproduces (and what ``vec_env_cls`` selects). The
wrapped ``NppEnv`` is built from the same :class:`~torchrl_bc.obs.ObservationConfig` as
the BC data (so the same builder and ``frame_skip``); :class:`PaddedNppEnv` only adds the padded
level graph of :mod:`torchrl_bc.sb3.spaces`, picks a level per episode and caps its length.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import gymnasium as gym
import numpy as np

from torchrl_bc.env import NppEnv
from torchrl_bc.obs import ObservationConfig
from torchrl_bc.obs.reward import RewardConfig
from torchrl_bc.sb3.spaces import (
    GraphPadding,
    observation_space,
    pad_entity_state,
    pad_static_graph,
)
from torchrl_bc.sim.level import Level, map_hash
from torchrl_bc.sim.mapdata import read_map_file

if TYPE_CHECKING:
    from torchrl_bc.sb3.shaping import Shaping

__all__ = ["PaddedNppEnv", "make_sb3_env", "obs_config_of", "resolve_levels",
           "split_validation"]


def resolve_levels(levels: Any = None) -> list[Level]:
    """Levels from a suite name, a directory of ``*.map``/``*.replay``, or a list of them.

    ``None`` means the shipped sample corpus. A directory keeps only winnable levels
    (:func:`torchrl_bc.train.evaluate.scan_levels`); the files it skips are listed on stderr.
    List items may be ``Level``, objects with ``name``/``map_data``/``demo_ticks`` (e.g.
    ``Level``), map bytes or map-file paths.
    """
    from torchrl_bc.train.evaluate import scan_levels

    if levels is None:
        from torchrl_bc.levels.corpus import SAMPLE_CORPUS

        levels = str(SAMPLE_CORPUS)
    if isinstance(levels, str | os.PathLike):
        scan = scan_levels(str(levels))
        if scan.skipped:  # counted and named: a skipped file never vanishes from the count
            print("\n".join(f"{levels}: {line}" for line in scan.report()), file=sys.stderr)
        levels = scan.levels
    out: list[Level] = []
    for i, lv in enumerate(levels):
        if isinstance(lv, Level):
            out.append(lv)
        elif hasattr(lv, "map_data"):
            out.append(Level(str(getattr(lv, "name", i)), bytes(lv.map_data),
                               int(getattr(lv, "demo_ticks", 0))))
        elif isinstance(lv, bytes | bytearray):
            out.append(Level(map_hash(lv)[:12], bytes(lv)))
        else:
            path = Path(lv)
            out.append(Level(path.stem, read_map_file(path)))
    if not out:
        raise ValueError("no levels given")
    return out


def split_validation(levels: Sequence[Level], val_hashes: Sequence[str]
                     ) -> tuple[list[Level], list[Level]]:
    """``levels`` as (the rest, those whose map content hash is in ``val_hashes``).

    ``val_hashes`` are a BC checkpoint's ``val_levels`` (``export["source"]["val_levels"]``):
    levels BC held out, so PPO can validate on them without ever training there.
    """
    wanted = set(val_hashes)
    rest: list[Level] = []
    val: list[Level] = []
    for lv in levels:
        (val if lv.content_hash in wanted else rest).append(lv)
    return rest, val


class PaddedNppEnv(gym.Env):
    """``NppEnv`` over a level list with fixed-shape observations for SB3.

    Each reset draws a level (uniformly, from the env's seeded RNG, or in order with
    ``order="cycle"``) and caps the episode at ``tick_factor`` x its demo length (``max_ticks``
    when no demo is known). ``info["is_success"]`` at episode end feeds SB3's success rate;
    :meth:`action_masks` serves sb3-contrib's ``MaskablePPO``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"]}

    def __init__(self, levels: Sequence[Level], config: ObservationConfig,
                 padding: GraphPadding | None = None, reward: RewardConfig | None = None, *,
                 tick_factor: float = 3.0, max_ticks: int = 5000, order: str = "random",
                 start: int = 0) -> None:
        if order not in ("random", "cycle"):
            raise ValueError(f"order must be 'random' or 'cycle', got {order!r}")
        self.levels = list(levels)
        self.config = config
        self.padding = (padding or GraphPadding.for_config(config)) if config.has("graph") \
            else None
        self.tick_factor, self.max_ticks, self.order = tick_factor, max_ticks, order
        self.env = NppEnv(None, config, reward)
        self.observation_space = observation_space(config, self.padding)
        self.action_space = self.env.action_space
        self._next = start
        self._static: dict[str, dict[str, np.ndarray]] = {}
        self._mask = np.ones(self.action_space.n, dtype=bool)
        self.level: Level | None = None

    def _pick(self) -> Level:
        if self.order == "cycle":
            lv = self.levels[self._next % len(self.levels)]
            self._next += 1
            return lv
        return self.levels[int(self.np_random.integers(len(self.levels)))]

    def _observe(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if "action_mask" in raw:
            self._mask = raw["action_mask"].astype(bool)
        if self.padding is None:
            return raw
        obs = dict(raw)
        obs["graph_entity_state"] = pad_entity_state(raw["graph_entity_state"], self.padding)
        graph = self.env.static_graph
        static = self._static.get(graph.level_hash)
        if static is None:
            if len(self._static) >= 256:
                self._static.clear()
            static = self._static[graph.level_hash] = pad_static_graph(graph, self.padding)
        obs.update(static)
        return obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict]:
        super().reset(seed=seed)
        options = dict(options or {})
        if "level" in options:
            lv = options.pop("level")
            self.level = lv if isinstance(lv, Level) else resolve_levels([lv])[0]
        else:
            self.level = self._pick()
        self.env.max_ticks = self.level.cap(self.tick_factor, self.max_ticks)
        raw, info = self.env.reset(seed=seed, options={"map_data": self.level.map_data})
        info["level"] = self.level.name
        return self._observe(raw), info

    def step(self, action: int) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        raw, reward, terminated, truncated, info = self.env.step(int(action))
        if terminated or truncated:
            info["is_success"] = bool(info["won"])
            info["level"] = self.level.name
        return self._observe(raw), reward, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        return self._mask.copy()

    def render(self) -> np.ndarray:
        return self.env.render()


def obs_config_of(export_or_obs_config: Any) -> tuple[ObservationConfig, GraphPadding | None]:
    """The observation config and graph padding an export (or a bare config) stands for."""
    src = export_or_obs_config
    if isinstance(src, str | os.PathLike):
        from torchrl_bc.sb3.load import load_export

        src = load_export(src)
    if isinstance(src, ObservationConfig):
        return src, GraphPadding.for_config(src) if src.has("graph") else None
    if isinstance(src, dict) and "observation" in src:
        cfg = ObservationConfig.from_dict(src["observation"])
        pad = src.get("graph_padding")
        return cfg, GraphPadding.from_dict(pad) if pad else None
    raise TypeError(f"expected an export or an ObservationConfig, got {type(src).__name__}")


def make_sb3_env(export_or_obs_config: Any, levels: Any = None, n_envs: int = 1, *,
                 seed: int = 0, tick_factor: float = 3.0, max_ticks: int = 5000,
                 reward: RewardConfig | None = None, order: str = "random",
                 vec_env_cls: type | None = None, shaping: Shaping | None = None) -> Any:
    """An SB3 VecEnv over ``levels`` whose observation space is the export's.

    By default the native :class:`~torchrl_bc.sb3.vec_env.NppSB3VecEnv`: all ``n_envs`` envs
    advance in one compiled call, observations are built in bulk, and each env behaves as a
    ``Monitor``-wrapped ``PaddedNppEnv`` seeded ``seed + i``. ``vec_env_cls=DummyVecEnv`` or
    ``SubprocVecEnv`` builds the per-env path instead (one Python ``PaddedNppEnv`` per env).
    An active ``shaping`` wraps the env in :class:`~torchrl_bc.sb3.shaping.ObjectiveProgress`.
    """
    env = _make_sb3_env(export_or_obs_config, levels, n_envs, seed=seed,
                        tick_factor=tick_factor, max_ticks=max_ticks, reward=reward,
                        order=order, vec_env_cls=vec_env_cls)
    if shaping is not None and shaping.active:
        from torchrl_bc.sb3.shaping import ObjectiveProgress

        env = ObjectiveProgress(env, shaping)
    return env


def _make_sb3_env(export_or_obs_config: Any, levels: Any, n_envs: int, *, seed: int,
                  tick_factor: float, max_ticks: int, reward: RewardConfig | None,
                  order: str, vec_env_cls: type | None) -> Any:
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv

    config, padding = obs_config_of(export_or_obs_config)
    resolved = resolve_levels(levels)
    if vec_env_cls is None:
        from torchrl_bc.sb3.vec_env import NppSB3VecEnv

        env = NppSB3VecEnv(resolved, config, padding, reward, n_envs=n_envs,
                           tick_factor=tick_factor, max_ticks=max_ticks, order=order)
        env.seed(seed)
        return env
    kwargs = dict(levels=resolved, config=config, padding=padding, reward=reward,
                  tick_factor=tick_factor, max_ticks=max_ticks, order=order)
    vec_kwargs = {"start_method": "fork"} if vec_env_cls is SubprocVecEnv else None
    return make_vec_env(PaddedNppEnv, n_envs=n_envs, seed=seed, env_kwargs=kwargs,
                        vec_env_cls=vec_env_cls, vec_env_kwargs=vec_kwargs,
                        monitor_kwargs={"info_keywords": ("is_success",)})
