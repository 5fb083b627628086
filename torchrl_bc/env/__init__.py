"""The RL environment: ``NppEnv`` over the simulator and the shared observation builder."""

from torchrl_bc.env.npp_env import LevelSource, NppEnv

__all__ = ["LevelSource", "NppEnv"]
