"""SB3 hand-off: features-extractor adapter, strict exporter/loader, critic warm-up, RL envs.

Fixed interface (scripts outside the project call it)::

    export = load_export("policy.pt")
    env = make_sb3_env(export, levels=None, n_envs=1)
    model = PPO("MultiInputPolicy", env, policy_kwargs=make_sb3_policy_kwargs(export))
    model.policy.load_state_dict(export["policy_state_dict"], strict=True)

:func:`load_into` does the same load after naming any mismatch between export and model.
"""

from torchrl_bc.sb3.critic import warmup_critic
from torchrl_bc.sb3.env import PaddedNppEnv, make_sb3_env, resolve_levels, split_validation
from torchrl_bc.sb3.export import export_checkpoint, write_export
from torchrl_bc.sb3.extractor import SB3MultimodalExtractor
from torchrl_bc.sb3.load import (
    EXPORT_FORMAT,
    ExportMismatch,
    build_sb3_policy,
    check_export,
    load_export,
    load_into,
    make_sb3_policy_kwargs,
)
from torchrl_bc.sb3.spaces import GraphPadding, observation_space

__all__ = [
    "EXPORT_FORMAT",
    "ExportMismatch",
    "GraphPadding",
    "PaddedNppEnv",
    "SB3MultimodalExtractor",
    "build_sb3_policy",
    "check_export",
    "export_checkpoint",
    "load_export",
    "load_into",
    "make_sb3_env",
    "make_sb3_policy_kwargs",
    "observation_space",
    "resolve_levels",
    "split_validation",
    "warmup_critic",
    "write_export",
]
