"""NppVectorEnv (batched compiled stepping) matches NppEnv step for step."""

from __future__ import annotations

import numpy as np
from mapkit import build_map, floor_row

from torchrl_bc.env import NppEnv
from torchrl_bc.env.vector import NppVectorEnv
from torchrl_bc.obs import ObservationConfig


def _levels() -> list[bytes]:
    a = build_map(floor_row(14), spawn=(20, 58), records=[(1, 60, 58, 0, 0), (3, 90, 58, 0, 0),
                                                         (4, 40, 58, 0, 0)])
    b = build_map(floor_row(14) | {(12, 13): 8}, spawn=(30, 50),
                  records=[(14, 80, 30, 0, 2), (17, 50, 45, 0, 0), (2, 45, 58, 0, 0)])
    return [a, b, b]


def test_vector_env_matches_single_envs() -> None:
    cfg = ObservationConfig(frame_skip=4)
    levels = _levels()
    vec = NppVectorEnv(levels, cfg, max_ticks=400)
    singles = [NppEnv(lv, cfg, max_ticks=400) for lv in levels]
    obs, _ = vec.reset(seed=0)
    for i, env in enumerate(singles):
        o, _ = env.reset(seed=0)
        for k in o:
            if k != "graph_entity_state":
                assert np.array_equal(obs[k][i], o[k]), k
    rng = np.random.default_rng(1)
    dones = 0
    for _ in range(150):
        actions = rng.integers(0, 6, len(levels))
        obs, rew, term, trunc, info = vec.step(actions)
        for i, env in enumerate(singles):
            o, r, te, tr, _ = env.step(int(actions[i]))
            assert (r, te, tr) == (rew[i], term[i], trunc[i])
            if te or tr:
                dones += 1
                final = info["final_obs"][i]
                assert np.array_equal(final["player_frame"], o["player_frame"])
                o, _ = env.reset()
            for k in ("player_frame", "global_view", "game_state", "graph_ninja_node"):
                assert np.array_equal(obs[k][i], o[k]), k
            ent = o["graph_entity_state"]
            assert np.array_equal(obs["graph_entity_state"][i][: len(ent)], ent)
    assert dones > 0
    assert vec.observation_space.contains(obs)
