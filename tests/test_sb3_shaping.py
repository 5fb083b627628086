"""``ObjectiveProgress``: the shaped reward PPO fine-tuning can train on."""

from __future__ import annotations

import numpy as np
import pytest

from torchrl_bc.obs import ObservationConfig
from torchrl_bc.obs.objective import PATH_LENGTH_SCALE
from torchrl_bc.resources import SAMPLE_CORPUS
from torchrl_bc.sb3 import make_sb3_env, resolve_levels
from torchrl_bc.sb3.shaping import ObjectiveProgress, Shaping

CFG = ObservationConfig(modalities=("game_state", "objective", "action_mask"), frame_skip=1,
                        state_zero=("x", "y", "elapsed"))
SHAPING = Shaping(per_px=0.001, switch_bonus=0.3, death_penalty=0.5)


@pytest.fixture(scope="module")
def levels():
    return resolve_levels(SAMPLE_CORPUS)


def test_shaped_terms_add_up_per_episode(levels):
    """Step a plain and a shaped env with the same actions: within one objective the extra
    reward telescopes to the path length gained, the switch pays its bonus once, a death its
    penalty, and the env's own episode return stays the win-only one."""
    kw = dict(n_envs=8, seed=5, max_ticks=400, tick_factor=3.0)
    plain = make_sb3_env(CFG, levels, **kw)
    shaped = make_sb3_env(CFG, levels, **kw, shaping=SHAPING)
    assert isinstance(shaped, ObjectiveProgress)
    obs, _ = plain.reset(), shaped.reset()
    rng = np.random.default_rng(0)
    start = obs["objective"][:, :2].astype(np.float64).copy()
    prev = start.copy()
    jumped = np.zeros(8, bool)  # an episode with a step past the 16 px clip: no telescoping
    extra_sum = np.zeros(8)
    checked = {"died": 0, "switch": 0, "plain": 0}
    for _ in range(1500):
        act = rng.integers(6, size=8)
        o1, r1, d1, i1 = plain.step(act)
        _, r2, d2, i2 = shaped.step(act)
        assert np.array_equal(d1, d2)
        extra_sum += r2.astype(np.float64) - r1
        now = o1["objective"][:, :2].astype(np.float64)
        for i in np.flatnonzero(d1).tolist():
            now[i] = i1[i]["terminal_observation"]["objective"][:2]
        step_px = np.abs(now[:, 1] - prev[:, 1]) * PATH_LENGTH_SCALE
        jumped |= (now[:, 0] == prev[:, 0]) & (step_px > 16.0)
        prev = o1["objective"][:, :2].astype(np.float64)
        for i in np.flatnonzero(d1).tolist():
            end = i1[i]["terminal_observation"]["objective"][:2].astype(np.float64)
            assert i2[i]["episode"]["r"] == i1[i]["episode"]["r"]  # the env's own return
            assert i2[i]["shaping"] == pytest.approx(extra_sum[i], abs=1e-4)
            opened = end[0] > start[i, 0]
            died = i1[i]["died"]
            rest = extra_sum[i] - SHAPING.switch_bonus * opened + SHAPING.death_penalty * died
            if not opened and not jumped[i]:  # one objective throughout: progress telescopes
                gained = (start[i, 1] - end[1]) * PATH_LENGTH_SCALE * SHAPING.per_px
                assert rest == pytest.approx(gained, abs=1e-3)
                checked["plain"] += 1
            checked["died"] += died
            checked["switch"] += opened
            extra_sum[i], jumped[i] = 0.0, False
            start[i] = o1["objective"][i, :2]
    assert checked["died"] and checked["switch"] and checked["plain"], checked


def test_bad_settings_are_errors(levels):
    with pytest.raises(ValueError, match=r"shaping\.per_px"):
        Shaping(per_px=-1.0)
    with pytest.raises(ValueError, match=r"shaping\.death_penalty"):
        Shaping(death_penalty=float("nan"))
    state_only = ObservationConfig(modalities=("game_state", "action_mask"))
    with pytest.raises(ValueError, match="`objective` observation"):
        make_sb3_env(state_only, levels, n_envs=2, shaping=SHAPING)
    assert not Shaping().active  # all zero: make_sb3_env returns the plain env
    assert not isinstance(make_sb3_env(CFG, levels, n_envs=2, shaping=Shaping()),
                          ObjectiveProgress)
