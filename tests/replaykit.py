"""The same replay through the replay executor and through NppEnv, for executor == env tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from torchrl_bc.env import NppEnv
from torchrl_bc.obs import ObservationConfig
from torchrl_bc.replay.actions import inputs_to_actions
from torchrl_bc.replay.executor import Episode, ReplayExecutor
from torchrl_bc.replay.format import read_replay


def executor_and_env(path: Path, config: ObservationConfig
                     ) -> tuple[Episode, list[dict[str, np.ndarray]]]:
    """The executor's episode of the replay at ``path``, and the observation ``NppEnv`` gives
    before each of its steps when fed the same actions (one dict per step)."""
    replay = read_replay(path)
    episode = ReplayExecutor(config).execute(replay)
    env = NppEnv(replay.map_data, config)
    obs, _ = env.reset()
    actions = inputs_to_actions(replay.inputs)
    seen = []
    for t in range(episode.n_steps):
        seen.append(obs)
        obs, *_ = env.step(int(actions[t]))
    return episode, seen
