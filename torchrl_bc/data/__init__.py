"""The data stage: replays -> cached episodes -> one memory-mapped TensorDict store + manifest,
opened as one TorchRL ``TensorDictReplayBuffer`` (:class:`BCDataset`) by ``prepare``'s users
and by training alike (:func:`open_dataset`).

Names are imported lazily so that ``build_dataset`` on an up-to-date dataset never imports
torch (that import alone costs more than the whole warm re-run).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["EXPERT_KEY", "BCDataset", "BuildResult", "DataConfig", "EpisodeCache",
           "LevelGroupedSampler", "LevelInfo", "StepSampler", "action_balance_weights",
           "assign_splits", "build_dataset", "check_prepared", "data_dir_problem",
           "is_prepared", "open_dataset", "read_manifest"]

_WHERE = {"EXPERT_KEY": "dataset", "BCDataset": "dataset", "LevelInfo": "dataset",
          "StepSampler": "sampling", "LevelGroupedSampler": "sampling",
          "action_balance_weights": "sampling", "BuildResult": "build",
          "build_dataset": "build", "EpisodeCache": "cache", "DataConfig": "config",
          "assign_splits": "split", "read_manifest": "manifest", "check_prepared": "source",
          "data_dir_problem": "source", "is_prepared": "source", "open_dataset": "source"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"torchrl_bc.data.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'torchrl_bc.data' has no attribute {name!r}")
