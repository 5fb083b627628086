"""torchrl_bc: behavioural cloning of N++ agents from human replays, exported to SB3 PPO."""

__version__ = "0.1.0"
