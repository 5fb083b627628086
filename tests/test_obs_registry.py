"""The modality registry: a modality declared once flows to every consumer.

A toy modality is registered inside the test (no other file knows it) and must appear, with its
shape and dtype, in the env and vector-env spaces, the SB3 space and extractor, ``ObsSpec``, the
``MultimodalExtractor``'s encoders and in-keys, and the keys a built dataset stores and a batch
carries. The built-in modalities must derive exactly the spaces they had before the registry.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium import spaces

from torchrl_bc.env import NppEnv
from torchrl_bc.env.vector import NppVectorEnv
from torchrl_bc.models import ArchitectureConfig, MultimodalExtractor, ObsSpec, extractor_in_keys
from torchrl_bc.models.encoders import GridCNN, StateMLP
from torchrl_bc.obs import ObservationBuilder, ObservationConfig
from torchrl_bc.obs import modalities as M
from torchrl_bc.replay.format import read_replay
from torchrl_bc.resources import SAMPLE_CORPUS
from torchrl_bc.sb3.spaces import observation_space
from torchrl_bc.sim import layout as SL

CORPUS = SAMPLE_CORPUS


def _speed(builder: ObservationBuilder) -> dict[str, np.ndarray]:
    a = builder.sim.ninja_state
    return {"toy_speed": np.array([a[SL.N_VX], a[SL.N_VY]], np.float32)}


def _grid(builder: ObservationBuilder) -> dict[str, np.ndarray]:
    out = np.zeros((1, 4, 4), np.uint8)
    out[0, 0, 0] = min(builder.sim.frame, 255)
    return {"toy_grid": out}


TOY_SPEED = M.Modality("toy_speed", default=False, observe=_speed,
                       spaces=lambda c, _: {"toy_speed": spaces.Box(-np.inf, np.inf, (2,),
                                                                    np.float32)})
TOY_GRID = M.Modality("toy_grid", default=False, observe=_grid,
                      spaces=lambda c, _: {"toy_grid": spaces.Box(0, 255, (1, 4, 4), np.uint8)})


@pytest.fixture
def toys() -> Iterator[ObservationConfig]:
    with M.registered(TOY_SPEED), M.registered(TOY_GRID):
        yield ObservationConfig(modalities=("game_state", "action_mask", "graph", "toy_speed",
                                            "toy_grid"), frame_skip=2)
    assert "toy_speed" not in M.modality_names()


def _level() -> bytes:
    return read_replay(CORPUS / "corridor-0.replay").map_data


def test_toy_modality_reaches_env_and_vector_env(toys: ObservationConfig) -> None:
    assert toys.modalities[-2:] == ("toy_speed", "toy_grid")
    assert toys.signature()["modalities"][-2:] == ["toy_speed", "toy_grid"]
    assert "toy_speed" not in ObservationConfig().modalities  # default=False: opt-in
    env = NppEnv(_level(), toys)
    obs, _ = env.reset()
    assert env.observation_space["toy_speed"] == spaces.Box(-np.inf, np.inf, (2,), np.float32)
    assert env.observation_space["toy_grid"].shape == (1, 4, 4)
    assert env.observation_space.contains(obs)
    obs, *_ = env.step(2)  # RIGHT for two ticks: the ninja picks up speed
    assert obs["toy_speed"][0] > 0 and obs["toy_grid"][0, 0, 0] == 2
    venv = NppVectorEnv([_level(), _level()], toys)
    assert venv.single_observation_space["toy_speed"] == env.observation_space["toy_speed"]
    vobs, _ = venv.reset(seed=0)
    assert vobs["toy_grid"].shape == (2, 1, 4, 4)
    venv.close()


def test_toy_modality_reaches_sb3_space_spec_and_extractors(toys: ObservationConfig) -> None:
    from torchrl_bc.sb3.extractor import SB3MultimodalExtractor

    space = observation_space(toys)
    assert space["toy_speed"].shape == (2,) and space["toy_grid"].dtype == np.uint8
    assert "graph_key" in space.spaces  # the SB3-only graph padding still follows
    spec = ObsSpec.from_observation_config(toys)
    assert spec.dense_shape("toy_speed") == (2,) and spec.dense_shape("toy_grid") == (1, 4, 4)
    assert ObsSpec.from_dict(spec.to_dict()) == spec
    assert "extra_shapes" not in ObsSpec.from_observation_config(ObservationConfig()).to_dict()

    arch = ArchitectureConfig(modalities=("toy_grid", "game_state", "toy_speed"),
                              features_dim=16, state_dim=8, state_hidden=(8,), local_dim=8,
                              local_channels=(4,), objective_dim=8, objective_hidden=(8,))
    assert arch.modalities == ("game_state", "toy_speed", "toy_grid")  # registry order
    assert extractor_in_keys(arch) == ["game_state", "toy_speed", "toy_grid"]
    net = MultimodalExtractor(arch, spec)
    assert list(net.encoders) == ["game_state", "toy_speed", "toy_grid"]
    assert isinstance(net.encoders["toy_speed"], StateMLP)  # chosen from the [N] shape
    assert isinstance(net.encoders["toy_grid"], GridCNN)  # chosen from the [C, H, W] shape

    env = NppEnv(_level(), toys)
    obs, _ = env.reset()
    batch = {k: torch.as_tensor(v)[None] for k, v in obs.items() if k in net.in_keys}
    assert net(batch).shape == (1, 16)
    sb3 = SB3MultimodalExtractor(space, arch.to_dict(), spec.to_dict())
    assert sb3.extractor.state_dict().keys() == net.state_dict().keys()
    sb3.extractor.load_state_dict(net.state_dict())
    full = {k: torch.as_tensor(v, dtype=torch.float32)[None] for k, v in obs.items()
            if k in ("game_state", "toy_speed", "toy_grid")}
    with torch.no_grad():
        assert torch.equal(sb3(full), net({k: torch.as_tensor(v)[None]
                                            for k, v in obs.items()
                                            if k in net.in_keys}))


def test_toy_modality_reaches_store_and_batches(toys: ObservationConfig, tmp_path: Path) -> None:
    from torchrl_bc.data import BCDataset
    from torchrl_bc.data.build import build_dataset

    src = tmp_path / "replays"
    src.mkdir()
    for name in ("corridor-0", "corridor-8", "corridor-16"):
        shutil.copy(CORPUS / f"{name}.replay", src / f"{name}.replay")
    build_dataset([src], toys, tmp_path / "ds", progress=False, verbose=False,
                  val_fraction=0.34)
    data = BCDataset(tmp_path / "ds")
    assert {"toy_speed", "toy_grid"} <= set(data.store_keys)
    assert {"toy_speed", "toy_grid"} <= set(data.keys)
    batch = data.sample_batch(4)
    assert {"toy_speed", "toy_grid"} <= set(batch.keys())
    steps = data.steps
    assert steps["toy_grid"].dtype == torch.uint8 and steps["toy_grid"].shape[1:] == (1, 4, 4)
    assert steps["toy_speed"].shape[1:] == (2,)
    # Stored rows are what the builder observed: the tick counter in the toy grid grows.
    assert int(steps["toy_grid"][1, 0, 0, 0]) == 2


def test_builtin_spaces_are_unchanged() -> None:
    """The registry derives exactly the spaces the hand-written code did."""
    cfg = ObservationConfig(modalities=M.modality_names(), local_size=10)
    got = M.observation_spaces(cfg, n_entities=7)
    want = {
        "player_frame": spaces.Box(0, 255, (1, 84, 84), np.uint8),
        "global_view": spaces.Box(0, 255, (1, 100, 176), np.uint8),
        "game_state": spaces.Box(-np.inf, np.inf, (39,), np.float32),
        "action_mask": spaces.MultiBinary(6),
        "graph_ninja_node": spaces.Box(0, np.iinfo(np.int32).max, (1,), np.int32),
        "graph_entity_state": spaces.Box(-np.inf, np.inf, (7, 4), np.float32),
        "local_view": spaces.Box(0, 255, (2, 10, 10), np.uint8),
        "objective": spaces.Box(-np.inf, np.inf, (8,), np.float32),
        "surroundings": spaces.Box(-np.inf, np.inf, (25,), np.float32),
        "hazards": spaces.Box(-np.inf, np.inf, (9,), np.float32),
        "path_ahead": spaces.Box(-np.inf, np.inf, (4,), np.float32),
        "progress": spaces.Box(-np.inf, np.inf, (3,), np.float32),
        "demo_style": spaces.Box(-np.inf, np.inf, (1,), np.float32),
        "last_input": spaces.Box(-np.inf, np.inf, (2,), np.float32),
    }
    assert got == want
    assert M.encoded_modalities() == ("player_frame", "global_view", "game_state", "graph",
                                      "local_view", "objective", "surroundings",
                                      "hazards", "path_ahead", "progress", "demo_style",
                                      "last_input")
    assert ObsSpec.from_observation_config(cfg) == ObsSpec(
        local_view_shape=(2, 10, 10),
        extra_shapes=(("surroundings", (25,)), ("hazards", (9,)), ("path_ahead", (4,)),
                      ("progress", (3,)), ("demo_style", (1,)), ("last_input", (2,))))


def test_registry_rejects_duplicates_and_unknown_names() -> None:
    with pytest.raises(ValueError, match="already registered"):
        M.register(TOY_SPEED.__class__("game_state", TOY_SPEED.spaces, TOY_SPEED.observe))
    with pytest.raises(ValueError, match="unknown modalities"):
        ObservationConfig(modalities=("toy_speed",))
    with pytest.raises(ValueError, match="unknown"):
        ArchitectureConfig(modalities=("toy_speed",))


def test_observation_config_from_dict() -> None:
    cfg = ObservationConfig(modalities=("game_state", "local_view"), local_size=8,
                            state_zero=("elapsed",))
    plain = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(cfg).items()}
    assert ObservationConfig.from_dict(plain) == cfg  # lists from YAML/JSON become tuples
    assert ObservationConfig.from_dict({}) == ObservationConfig()
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['observation.frameskip'\]"):
        ObservationConfig.from_dict({"frameskip": 2})
    with pytest.raises(ValueError, match=r"\['export.observation.bogus'\]"):
        ObservationConfig.from_dict({"bogus": 1}, where="export.observation")
    with pytest.raises(ValueError, match="must be a mapping"):
        ObservationConfig.from_dict(["game_state"])  # type: ignore[arg-type]
    # Signature fields that only matter with a modality come from its registry entry.
    assert "local_size" in cfg.signature() and "local_size" not in ObservationConfig().signature()
