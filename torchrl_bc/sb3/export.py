"""BC checkpoint -> SB3 ``MultiInputPolicy`` export (``torchrl-bc export CKPT --out FILE.pt``).

The state dict is produced by building the SB3 policy itself and copying the BC weights into
its modules (extractor, policy MLP, action head), then taking ``policy.state_dict()``: the
layout (including SB3's aliases ``pi_features_extractor``/``vf_features_extractor``) is then
SB3's own, not a hand-written key map that could drift. The value head is SB3's fresh
initialisation unless :func:`torchrl_bc.sb3.warmup_critic` fits it; ``"critic"`` says which.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchrl_bc.models import ObsSpec, actor_extractor
from torchrl_bc.models.policy import actor_head
from torchrl_bc.sb3.extractor import policy_kwargs_spec
from torchrl_bc.sb3.load import EXPORT_FORMAT, build_sb3_policy, check_export
from torchrl_bc.sb3.spaces import GraphPadding

__all__ = ["copy_bc_into_policy", "export_checkpoint", "export_versions", "linear_layers",
           "write_export"]


def export_versions() -> dict[str, str]:
    import sb3_contrib
    import stable_baselines3

    from torchrl_bc.train.checkpoint import versions

    return {**versions(), "stable_baselines3": stable_baselines3.__version__,
            "sb3_contrib": sb3_contrib.__version__}


def linear_layers(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def _copy_linears(src: list[nn.Linear], dst: list[nn.Linear], what: str) -> None:
    if len(src) != len(dst):
        raise ValueError(f"{what}: {len(src)} linear layers in BC, {len(dst)} in SB3")
    with torch.no_grad():
        for i, (a, b) in enumerate(zip(src, dst, strict=True)):
            if a.weight.shape != b.weight.shape:
                raise ValueError(f"{what}[{i}]: BC {tuple(a.weight.shape)} vs SB3 "
                                 f"{tuple(b.weight.shape)}")
            b.weight.copy_(a.weight)
            b.bias.copy_(a.bias)


def copy_bc_into_policy(policy: Any, extractor: nn.Module, head: nn.Module) -> None:
    """BC extractor -> every SB3 features extractor; BC head -> ``policy_net`` + ``action_net``."""
    state = extractor.state_dict()
    policy.pi_features_extractor.extractor.load_state_dict(state, strict=True)
    policy.vf_features_extractor.extractor.load_state_dict(state, strict=True)
    bc = linear_layers(head)
    _copy_linears(bc[:-1], linear_layers(policy.mlp_extractor.policy_net), "policy_net")
    _copy_linears(bc[-1:], [policy.action_net], "action_net")


def write_export(export: dict[str, Any], path: str | os.PathLike) -> Path:
    """Check, then write atomically (the checkpoint writer: temp file, fsync, rename)."""
    from torchrl_bc.train.checkpoint import save_checkpoint

    check_export(export, source="export being written")
    return save_checkpoint(path, export)


def export_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike | None = None, *,
                      share_features_extractor: bool = True,
                      padding: GraphPadding | None = None, seed: int = 0) -> dict[str, Any]:
    """Export a BC checkpoint (``best.pt``/``last.pt``) to SB3; write it to ``out`` if given.

    ``seed`` fixes SB3's initialisation of the (fresh) value head. With
    ``share_features_extractor=False`` the critic's extractor starts as a copy of the BC one.
    """
    from torchrl_bc.train.checkpoint import load_policy

    actor, cfg, ckpt = load_policy(checkpoint)
    arch, obs = cfg.architecture, cfg.observation
    spec = ObsSpec.from_observation_config(obs)
    if arch.uses("graph"):
        padding = padding or GraphPadding.for_config(obs)
    else:
        padding = None
    obs_dict = dict(ckpt["config"]["observation"])
    export: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "policy_state_dict": {},
        "policy_kwargs": policy_kwargs_spec(arch, spec, padding, share_features_extractor),
        "architecture": {"name": arch.name, "config": arch.to_dict()},
        "observation": obs_dict,
        "obs_signature": ckpt["obs_signature"],
        "obs_spec": spec.to_dict(),
        "graph_padding": padding.to_dict() if padding is not None else None,
        "frame_skip": int(ckpt["frame_skip"]),
        # The builder emits normalised features and FrameCNN scales pixels itself, so SB3 must
        # not normalise again (normalize_images=False); BC keeps no running statistics.
        "normalisation": dict(ckpt.get("normalisation") or {
            "images": "divided by 255 inside the extractor; SB3 normalize_images=False",
            "game_state": "normalised by the observation builder; no running statistics"}),
        "versions": export_versions(),
        "critic": "fresh",
        "critic_info": {"init": "SB3 orthogonal initialisation", "seed": seed},
        "n_actions": arch.n_actions,
        "source": {"checkpoint": str(checkpoint), "epoch": int(ckpt.get("epoch", -1)),
                   "manifest_hash": str(ckpt.get("manifest_hash")),
                   # BC's validation levels (None: a checkpoint from before they were recorded)
                   "val_levels": ckpt.get("val_levels"),
                   "versions": dict(ckpt.get("versions", {}))},
    }
    gen_state = torch.get_rng_state()
    torch.manual_seed(seed)
    try:
        policy = build_sb3_policy(export)
    finally:
        torch.set_rng_state(gen_state)
    copy_bc_into_policy(policy, actor_extractor(actor), actor_head(actor))
    export["policy_state_dict"] = {k: v.detach().cpu()
                                   for k, v in policy.state_dict().items()}
    if out is not None:
        write_export(export, out)
    return export
