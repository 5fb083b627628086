"""Idle openings cut from demos: the cut replay must still win, exactly on its last input."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from torchrl_bc.data.build import build_dataset
from torchrl_bc.data.manifest import read_manifest
from torchrl_bc.obs import ObservationConfig
from torchrl_bc.replay.format import ReplayFormatError, read_replay, write_replay
from torchrl_bc.replay.trim import idle_prefix, trim_idle_start
from torchrl_bc.resources import SAMPLE_CORPUS
from torchrl_bc.sim import Simulator

CORPUS = SAMPLE_CORPUS


def _with_idle(name: str, idle: int):
    rep = read_replay(CORPUS / f"{name}.replay")
    inputs = np.concatenate([np.zeros(idle, np.uint8), rep.inputs])
    inputs.setflags(write=False)
    return rep, dataclasses.replace(rep, inputs=inputs)


def _wins_on_last_input(rep) -> bool:
    return Simulator(rep.map_data).run_inputs(rep.inputs).win_frame == rep.n_ticks


def test_idle_prefix_counts_leading_ticks_without_keys() -> None:
    assert idle_prefix(np.array([0, 0, 0, 4, 0, 2], np.uint8)) == 3
    assert idle_prefix(np.array([1, 0], np.uint8)) == 0
    assert idle_prefix(np.zeros(5, np.uint8)) == 5


def test_padded_demo_is_cut_back_to_a_winning_replay() -> None:
    _original, padded = _with_idle("shaft-10", 15)
    assert _wins_on_last_input(padded)
    cut, k = trim_idle_start(padded)
    assert 15 <= k <= idle_prefix(padded.inputs)
    assert cut.n_ticks == padded.n_ticks - k
    assert np.array_equal(cut.inputs, padded.inputs[k:])
    assert _wins_on_last_input(cut)
    assert cut.map_data == padded.map_data


def test_nothing_to_cut_or_no_winning_cut_keeps_the_replay() -> None:
    rep = read_replay(CORPUS / "corridor-40.replay")
    busy = dataclasses.replace(rep, inputs=np.concatenate([[2], rep.inputs]).astype(np.uint8))
    same, k = trim_idle_start(busy)
    assert k == 0 and same is busy
    # a demo that never wins has no cut that wins either
    losing = dataclasses.replace(rep, inputs=np.zeros(rep.n_ticks, np.uint8))
    same, k = trim_idle_start(losing)
    assert k == 0 and same is losing


def test_dataset_build_with_trim_records_the_cut_and_keys_it(tmp_path: Path) -> None:
    src = tmp_path / "replays"
    src.mkdir()
    _, padded = _with_idle("shaft-10", 12)
    write_replay(src / "padded.replay", padded.map_data, padded.inputs, success=True)
    cfg = ObservationConfig(modalities=("game_state", "action_mask"))
    kw = dict(progress=False, verbose=False, cache_dir=tmp_path / "cache")
    build_dataset([src], cfg, tmp_path / "plain", **kw)
    build_dataset([src], cfg, tmp_path / "trim", trim_idle=True, **kw)
    plain = read_manifest(tmp_path / "plain")["episodes"][0]
    trim = read_manifest(tmp_path / "trim")["episodes"][0]
    assert trim["idle_ticks_cut"] >= 12 and "idle_ticks_cut" not in plain
    assert trim["ticks"] == plain["ticks"] - trim["idle_ticks_cut"]
    assert trim["key"] != plain["key"]  # both live in the shared cache side by side
    assert trim["replay_hash"] == plain["replay_hash"]  # the source file's identity


def test_shared_demos_mostly_trim_and_every_cut_wins(shared_data: Path) -> None:
    cut_any = 0
    files = sorted((shared_data / "replays").glob("*.replay"))
    for f in files:
        try:
            rep = read_replay(f)
        except ReplayFormatError:
            continue
        cut, k = trim_idle_start(rep)
        if k:
            cut_any += 1
            assert _wins_on_last_input(cut), f.name
    assert cut_any >= 100, cut_any  # 118 of the 128 readable demos at the time of writing
