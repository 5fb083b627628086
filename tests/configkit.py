"""A tiny run config over a few replay folders, for tests that train and run DAgger briefly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from torchrl_bc.train import load_config


def tiny_config(tmp_path: Path, replays: list[Path], *, extra: tuple[str, ...] = (),
                rounds: int = 0, **data: Any):
    """An mlp over ``game_state`` plus the ``extra`` modalities, one short epoch, ``rounds``
    small DAgger rounds; ``data`` adds ``data.*`` keys."""
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({
        "architecture": {"preset": "mlp", "modalities": ["game_state", *extra],
                         "state_hidden": [16], "state_dim": 16, "features_dim": 16,
                         "head_hidden": [16], "value_hidden": [16]},
        "observation": {"frame_skip": 1, "state_zero": ["elapsed"],
                        "modalities": ["game_state", "action_mask", *extra]},
        "data": {"replays": [str(p) for p in replays], "val_fraction": 0.0, "mirror": False,
                 "cache_dir": str(tmp_path / "cache"), **data},
        "train": {"epochs": 1, "batch_size": 32, "max_steps_per_epoch": 2, "warmup": 0,
                  "early_stop": {"metric": "train/nll", "patience": 0}},
        "eval": {"train_levels": 1, "sampled": False},
        "dagger": {"rounds": rounds, "levels": 3, "label_every": 40, "queries_per_level": 2,
                   "horizon": 8, "max_expansions": 400, "steps": 4, "max_ticks": 150},
        "logging": {"wandb": "disabled", "plots": False},
    }))
    return load_config(path)
