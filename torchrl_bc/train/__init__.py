"""BC training: config, loss, validation, closed-loop evaluation, checkpoints, logging, DDP."""

from torchrl_bc.train.config import ConfigError, RunConfig, load_config
from torchrl_bc.train.pipeline import pretrain, validate_checkpoint

__all__ = ["ConfigError", "RunConfig", "load_config", "pretrain", "validate_checkpoint"]
