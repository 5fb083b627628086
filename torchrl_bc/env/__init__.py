"""RL environments over the simulator and the shared observation builder: ``NppEnv`` (one
level) and ``NppVectorEnv`` (N levels stepped together in one compiled call)."""

from torchrl_bc.env.npp_env import LevelSource, NppEnv
from torchrl_bc.env.vector import NppVectorEnv

__all__ = ["LevelSource", "NppEnv", "NppVectorEnv"]
