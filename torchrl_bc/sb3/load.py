"""Reading exports and loading them into SB3 models, strictly, refusing any mismatch by name.

The public anchor this replaces loaded with ``strict=False`` and fell back to random weights in
silence. Here every load compares what the export was made for (architecture, observation
signature, ``frame_skip``, graph padding, policy kwargs, simulator version, state-dict keys and
shapes) with what it is loaded into, and raises :class:`ExportMismatch` listing each difference.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from gymnasium import spaces

from torchrl_bc.models import ArchitectureConfig, ObsSpec
from torchrl_bc.sb3.extractor import (
    SB3MultimodalExtractor,
    policy_kwargs_spec,
    resolve_policy_kwargs,
)
from torchrl_bc.sb3.spaces import GraphPadding, observation_space, space_diff
from torchrl_bc.train.config import flatten_leaves

__all__ = ["EXPORT_FORMAT", "ExportMismatch", "build_sb3_policy", "check_export",
           "export_observation_space", "load_export", "load_into", "make_sb3_policy_kwargs"]

EXPORT_FORMAT = "torchrl_bc.sb3_export/1"
REQUIRED_KEYS: tuple[str, ...] = (
    "format", "policy_state_dict", "policy_kwargs", "architecture", "observation",
    "obs_signature", "obs_spec", "graph_padding", "frame_skip", "normalisation", "versions",
    "critic", "n_actions")


class ExportMismatch(ValueError):
    """An export does not fit what it is being loaded into (or was altered after writing)."""


def diff(left: Any, right: Any, what: str, names: tuple[str, str] = ("export", "now")
         ) -> list[str]:
    """``what.key: left (export) vs right (now)`` for every differing leaf."""
    a, b = flatten_leaves(left), flatten_leaves(right)
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, "<absent>"), b.get(key, "<absent>")
        if va != vb:
            label = f"{what}.{key}" if key else what
            out.append(f"{label}: {va!r} ({names[0]}) vs {vb!r} ({names[1]})")
    return out


def _obs_config(export: dict[str, Any]):
    from torchrl_bc.obs import ObservationConfig

    return ObservationConfig.from_dict(export["observation"])


def export_observation_space(export: dict[str, Any]) -> spaces.Dict:
    """The SB3 observation space an export's policy was built for."""
    pad = export.get("graph_padding")
    return observation_space(_obs_config(export), GraphPadding.from_dict(pad) if pad else None)


def build_sb3_policy(export: dict[str, Any], algo: str = "ppo") -> Any:
    """A freshly initialised SB3 policy of the export's layout (no env needed).

    ``algo``: ``"ppo"`` (``MultiInputActorCriticPolicy``) or ``"maskable"`` (sb3-contrib's
    ``MaskableMultiInputActorCriticPolicy``).
    """
    if algo == "ppo":
        from stable_baselines3.common.policies import MultiInputActorCriticPolicy as Policy
    elif algo == "maskable":
        from sb3_contrib.common.maskable.policies import (
            MaskableMultiInputActorCriticPolicy as Policy,
        )
    else:
        raise ValueError(f"algo must be 'ppo' or 'maskable', got {algo!r}")
    kwargs = resolve_policy_kwargs(export["policy_kwargs"])
    return Policy(export_observation_space(export), spaces.Discrete(int(export["n_actions"])),
                  lambda _: 0.0, **kwargs)


def check_export(export: Any, source: str = "export") -> None:
    """Refuse an export that is inconsistent in itself or with this library's versions."""
    from torchrl_bc.sim import SIM_VERSION

    if not isinstance(export, dict) or export.get("format") != EXPORT_FORMAT:
        got = export.get("format") if isinstance(export, dict) else type(export).__name__
        raise ExportMismatch(f"{source} is not a torchrl_bc SB3 export (format {got!r}, "
                             f"expected {EXPORT_FORMAT!r})")
    missing = [k for k in REQUIRED_KEYS if k not in export]
    if missing:
        raise ExportMismatch(f"{source} lacks key(s) {missing}")
    problems: list[str] = []
    try:
        arch = ArchitectureConfig.from_dict(dict(export["architecture"]["config"]))
        obs = _obs_config(export)
        pad = GraphPadding.from_dict(export["graph_padding"]) if export["graph_padding"] \
            else None
    except (KeyError, TypeError, ValueError) as exc:
        raise ExportMismatch(f"{source}: unreadable config: {exc}") from None
    if export["architecture"].get("name") != arch.name:
        problems.append(f"architecture.name: {export['architecture'].get('name')!r} vs "
                        f"config name {arch.name!r}")
    problems += diff(export["obs_signature"], obs.signature(), "obs_signature")
    if export["frame_skip"] != obs.frame_skip:
        problems.append(f"frame_skip: {export['frame_skip']!r} (export) vs "
                        f"{obs.frame_skip!r} (its observation config)")
    spec = ObsSpec.from_observation_config(obs)
    problems += diff(export["obs_spec"], spec.to_dict(), "obs_spec")
    if export["n_actions"] != arch.n_actions:
        problems.append(f"n_actions: {export['n_actions']!r} vs architecture "
                        f"{arch.n_actions!r}")
    if export["versions"].get("sim") != str(SIM_VERSION):
        problems.append(f"versions.sim: {export['versions'].get('sim')!r} (export) vs "
                        f"{str(SIM_VERSION)!r} (now): the simulator changed")
    if export["critic"] not in ("fresh", "warmed"):
        problems.append(f"critic: {export['critic']!r} is neither 'fresh' nor 'warmed'")
    share = export["policy_kwargs"].get("share_features_extractor", True)
    problems += diff(export["policy_kwargs"],
                     policy_kwargs_spec(arch, spec, pad if arch.uses("graph") else None, share),
                     "policy_kwargs", ("export", "from its architecture"))
    if problems:
        raise ExportMismatch(f"{source} is inconsistent: " + "; ".join(problems))
    _check_state_dict(export["policy_state_dict"], build_sb3_policy(export).state_dict(), source)


def _check_state_dict(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor],
                      source: str) -> None:
    problems = [f"missing key {k!r}" for k in want if k not in got]
    problems += [f"unexpected key {k!r}" for k in got if k not in want]
    problems += [f"{k!r}: shape {tuple(got[k].shape)} vs {tuple(v.shape)} expected"
                 for k, v in want.items() if k in got and got[k].shape != v.shape]
    if problems:
        raise ExportMismatch(f"{source}: policy_state_dict does not fit its architecture: "
                             + "; ".join(problems[:20]))


def load_export(path: str | os.PathLike) -> dict[str, Any]:
    """Read an export written by ``torchrl-bc export`` (weights only) and check it.

    Returns the stored dict: ``policy_state_dict``, ``policy_kwargs`` (plain; pass the dict to
    :func:`torchrl_bc.sb3.make_sb3_policy_kwargs` for the live kwargs), ``architecture``,
    ``observation``, ``obs_signature``, ``frame_skip``, ``normalisation``, ``versions``,
    ``critic`` and friends.
    """
    from torchrl_bc.train.checkpoint import CheckpointMismatch, read_torch_file

    path = Path(path)
    try:
        export = read_torch_file(path, "export")
    except CheckpointMismatch as exc:
        raise ExportMismatch(str(exc)) from None
    check_export(export, source=str(path))
    return export


def _env_configs(model: Any) -> list[Any]:
    """Each sub-env's observation config; refuses envs that do not expose one.

    Without it the export's observation layout and ``frame_skip`` cannot be checked against
    the env, and a mismatch would train on misread observations: wrap the levels with
    :func:`torchrl_bc.sb3.make_sb3_env` (``PaddedNppEnv`` carries ``config``).
    """
    env = getattr(model, "get_env", lambda: None)()
    if env is None:
        return []
    try:
        configs = list(env.get_attr("config"))
    except AttributeError:
        configs = []
    if not configs or any(not hasattr(c, "signature") for c in configs):
        raise ExportMismatch("the model's env does not expose an observation `config` on every "
                             "sub-env, so the export's observation layout and frame_skip cannot "
                             "be checked against it: build the env with make_sb3_env(export)")
    return configs


def load_into(model: Any, export: dict[str, Any] | str | os.PathLike) -> Any:
    """Strictly load an export into an SB3 model (PPO, MaskablePPO) or policy; returns it.

    Before touching weights it compares the model's extractor config, observation space,
    ``net_arch``/activation/sharing and, when the model has an env, each sub-env's
    observation config (which carries ``frame_skip``) with the export, naming differences.
    """
    if not isinstance(export, dict):
        export = load_export(export)
    policy = getattr(model, "policy", model)
    ext = getattr(policy, "features_extractor", None)
    if not isinstance(ext, SB3MultimodalExtractor):
        raise ExportMismatch(f"the model's features extractor is {type(ext).__name__}, not "
                             f"SB3MultimodalExtractor: build the model with "
                             f"make_sb3_policy_kwargs(export)")
    problems = diff(export["architecture"]["config"], ext.cfg.to_dict(), "architecture",
                    ("export", "model"))
    problems += diff(export["obs_spec"], ext.spec.to_dict(), "obs_spec", ("export", "model"))
    problems += space_diff(export_observation_space(export), policy.observation_space)
    kw = export["policy_kwargs"]
    if bool(kw["share_features_extractor"]) != bool(policy.share_features_extractor):
        problems.append(f"share_features_extractor: {kw['share_features_extractor']} (export) "
                        f"vs {policy.share_features_extractor} (model)")
    net_arch = policy.net_arch if isinstance(policy.net_arch, dict) else \
        {"pi": list(policy.net_arch), "vf": list(policy.net_arch)}
    problems += diff(kw["net_arch"], {k: list(v) for k, v in net_arch.items()}, "net_arch",
                     ("export", "model"))
    act = resolve_policy_kwargs(kw)["activation_fn"]
    if policy.activation_fn is not act:
        problems.append(f"activation_fn: {act.__name__} (export) vs "
                        f"{policy.activation_fn.__name__} (model)")
    if getattr(policy.action_space, "n", None) != export["n_actions"]:
        problems.append(f"action space: Discrete({export['n_actions']}) (export) vs "
                        f"{policy.action_space} (model)")
    sig = export["obs_signature"]
    for i, cfg in enumerate(_env_configs(model)):
        problems += diff(sig, cfg.signature(), f"env[{i}].observation", ("export", "env"))
    if problems:
        raise ExportMismatch("export does not match the model: " + "; ".join(problems))
    _check_state_dict(export["policy_state_dict"], policy.state_dict(), "export")
    policy.load_state_dict(export["policy_state_dict"], strict=True)
    return model


def make_sb3_policy_kwargs(export_or_arch_config: Any, obs_config: Any = None, *,
                           padding: GraphPadding | None = None,
                           share_features_extractor: bool = True) -> dict[str, Any]:
    """Policy kwargs for ``PPO("MultiInputPolicy", env, policy_kwargs=...)``.

    From an export (dict from :func:`torchrl_bc.sb3.load_export`, or a path to one), the kwargs
    it was written with; from an ``ArchitectureConfig`` (or preset name), kwargs for a scratch
    policy of that architecture over ``obs_config`` (default ``ObservationConfig()``), with the
    same extractor and a ``net_arch`` equal to the BC head and value head.
    """
    from torchrl_bc.obs import ObservationConfig

    src = export_or_arch_config
    if isinstance(src, str | Path) and Path(src).is_file():
        src = load_export(src)
    if isinstance(src, dict) and "policy_kwargs" in src:
        kw = src["policy_kwargs"]
        return dict(kw) if isinstance(kw.get("features_extractor_class"), type) \
            else resolve_policy_kwargs(kw)
    if isinstance(src, str):
        from torchrl_bc.models import preset

        src = preset(src)
    if isinstance(src, dict):
        src = ArchitectureConfig.from_dict(src)
    if not isinstance(src, ArchitectureConfig):
        raise TypeError(f"make_sb3_policy_kwargs takes an export or an ArchitectureConfig, "
                        f"got {type(src).__name__}")
    obs_config = obs_config or ObservationConfig()
    if src.uses("graph") and padding is None:
        padding = GraphPadding.for_config(obs_config)
    spec = ObsSpec.from_observation_config(obs_config)
    return resolve_policy_kwargs(policy_kwargs_spec(src, spec, padding if src.uses("graph")
                                                    else None, share_features_extractor))
