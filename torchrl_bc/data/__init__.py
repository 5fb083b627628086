"""The data stage: replays -> cached episodes -> one memory-mapped TensorDict store + manifest,
sampled through a TorchRL ``ReplayBuffer``.

Names are imported lazily so that ``build_dataset`` on an up-to-date dataset never imports
torch (that import alone costs more than the whole warm re-run).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["BCDataset", "BuildResult", "EpisodeCache", "LevelGroupedSampler", "StepSampler",
           "action_balance_weights", "assign_splits", "build_dataset", "read_manifest"]

_WHERE = {"BCDataset": "sampling", "StepSampler": "sampling", "LevelGroupedSampler": "sampling",
          "action_balance_weights": "sampling",
          "BuildResult": "build", "build_dataset": "build", "EpisodeCache": "cache",
          "assign_splits": "split", "read_manifest": "manifest"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"torchrl_bc.data.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'torchrl_bc.data' has no attribute {name!r}")
