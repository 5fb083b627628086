"""Checkpoints: plain containers of tensors, written atomically, loaded with ``weights_only``.

Everything that must match for a checkpoint to mean the same thing travels with it (resolved
config, observation signature, ``frame_skip``, dataset manifest hash, versions), and
:func:`check_compatible` refuses a mismatch by naming the differing keys, so a resumed run or
an exported policy can never silently run on another observation layout.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from torchrl_bc.io import atomic_write
from torchrl_bc.obs import ObservationConfig
from torchrl_bc.train.config import RESUMABLE_KEYS, ConfigError, RunConfig, config_diff

__all__ = ["FORMAT", "CheckpointMismatch", "check_compatible", "get_rng_state", "load_checkpoint",
           "load_policy", "read_torch_file", "resume_diff", "save_checkpoint", "set_rng_state",
           "versions"]

FORMAT = "torchrl_bc.bc_checkpoint/1"


class CheckpointMismatch(ValueError):
    """The checkpoint was made for a different config, observation spec or dataset."""


def versions() -> dict[str, str]:
    import tensordict
    import torchrl

    import torchrl_bc
    from torchrl_bc.obs import OBS_VERSION
    from torchrl_bc.sim import SIM_VERSION

    return {"torch": str(torch.__version__), "torchrl": str(torchrl.__version__),
            "tensordict": str(tensordict.__version__), "torchrl_bc": str(torchrl_bc.__version__),
            "sim": str(SIM_VERSION), "obs": str(OBS_VERSION)}


def get_rng_state() -> dict[str, Any]:
    """Torch (CPU and CUDA), numpy and Python RNG states as tensors and ints."""
    np_state = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "python": {"version": py_version, "state": torch.tensor(py_state, dtype=torch.int64),
                   "gauss": py_gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`get_rng_state`'s states; a checkpoint loaded onto CUDA
    (``map_location``) carries them there, and the generators take CPU byte tensors only."""
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].cpu().numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write atomically, so readers never see half a checkpoint."""
    return atomic_write(path, lambda fh: torch.save(payload, fh))


#: Keys every BC checkpoint holds; one missing means the file is damaged or of another kind.
REQUIRED_KEYS: tuple[str, ...] = ("format", "model", "epoch", "config", "obs_signature")


def read_torch_file(path: str | Path, what: str = "checkpoint",
                    map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(weights_only=True)`` whose every failure is one line naming the file.

    A truncated or foreign file makes ``torch.load`` raise any of half a dozen types (zip,
    pickle, EOF, runtime errors) with multi-line messages; callers get :class:`CheckpointMismatch`.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    if not path.is_file():
        raise CheckpointMismatch(f"{what} {path} is not a file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except PermissionError as exc:
        raise CheckpointMismatch(f"{what} {path}: {exc.strerror or exc}") from None
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        raise CheckpointMismatch(f"{what} {path} is unreadable (truncated, corrupt or not a "
                                 f"torch file: {type(exc).__name__}: {first})") from None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a BC checkpoint; any damage or a file of another kind is a one-line error."""
    path = Path(path)
    ckpt = read_torch_file(path, "checkpoint", map_location)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        got = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointMismatch(f"{path} is not a torchrl_bc BC checkpoint (format {got!r}, "
                                 f"expected {FORMAT!r})")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointMismatch(f"{path}: BC checkpoint lacks key(s) {missing}")
    if not isinstance(ckpt["config"], dict) or not isinstance(ckpt["model"], dict):
        raise CheckpointMismatch(f"{path}: BC checkpoint has a malformed config or model")
    return ckpt


def check_compatible(ckpt: dict[str, Any], cfg: RunConfig | None = None,
                     manifest_hash: str | None = None, *, resume: bool = False) -> None:
    """Refuse, naming every difference, a checkpoint that does not match the current run.

    On resume the whole config must match except :data:`RESUMABLE_KEYS` (epochs, logging);
    on load only the architecture and the observation config matter.
    """
    problems: list[str] = []
    lacking = [k for k in ("architecture", "observation") if k not in ckpt["config"]]
    if lacking:
        raise CheckpointMismatch(f"checkpoint config lacks section(s) {lacking}")
    try:
        now_obs = ObservationConfig.from_dict(ckpt["config"]["observation"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointMismatch(f"checkpoint has an unreadable observation config: "
                                 f"{type(exc).__name__}: {exc}") from None
    if ckpt["obs_signature"] != now_obs.signature():
        problems += [f"observation signature {d}" for d in
                     config_diff(ckpt["obs_signature"], now_obs.signature())]
    if cfg is not None:
        if resume:
            problems += resume_diff(ckpt["config"], cfg)
        else:
            saved, current = _with_defaults(ckpt["config"]), cfg.to_dict()
            problems += config_diff({k: saved[k] for k in ("architecture", "observation")},
                                    {k: current[k] for k in ("architecture", "observation")})
    if resume and manifest_hash is not None and ckpt.get("manifest_hash") != manifest_hash:
        problems.append(f"dataset manifest hash: {ckpt.get('manifest_hash')!r} (checkpoint) vs "
                        f"{manifest_hash!r} (now): the training data changed")
    if problems:
        raise CheckpointMismatch("checkpoint does not match this run: " + "; ".join(problems))


def resume_diff(saved: dict[str, Any], cfg: RunConfig) -> list[str]:
    """What a resume of a run saved with config ``saved`` as ``cfg`` would change, beyond
    :data:`~torchrl_bc.train.config.RESUMABLE_KEYS`: one ``key: saved vs now`` line each.
    The one rule for checkpoints and DAgger states alike."""
    return config_diff(_with_defaults(saved), cfg.to_dict(), ignore=RESUMABLE_KEYS)


def _with_defaults(saved: dict[str, Any]) -> dict[str, Any]:
    """The saved config with keys added since it was written filled in with their defaults
    (new keys default to the old behaviour), so only real differences are reported."""
    try:
        return RunConfig.from_dict(saved).to_dict()
    except ConfigError:  # a key was removed or renamed since: compare what was saved
        return saved


def load_policy(path: str | Path, device: str | torch.device = "cpu"):
    """Rebuild the actor from a checkpoint, checking the observation spec.

    Returns ``(actor, run_config, checkpoint)``.
    """
    from torchrl_bc.models import ObsSpec, build_actor

    ckpt = load_checkpoint(path)
    try:
        check_compatible(ckpt)
        cfg = RunConfig.from_dict(ckpt["config"])
    except (CheckpointMismatch, ConfigError) as exc:
        raise CheckpointMismatch(f"{path}: {exc}") from None
    actor = build_actor(cfg.architecture, ObsSpec.from_observation_config(cfg.observation))
    try:
        missing, unexpected = actor.load_state_dict(ckpt["model"], strict=False)
    except RuntimeError as exc:  # shape mismatches
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[1:3]) or first[0]
        raise CheckpointMismatch(f"{path}: model weights do not fit architecture "
                                 f"{cfg.architecture.name!r}: {detail}") from None
    if missing or unexpected:
        raise CheckpointMismatch(f"{path}: model weights do not fit architecture "
                                 f"{cfg.architecture.name!r}: missing {missing[:5]}, "
                                 f"unexpected {unexpected[:5]}")
    actor.to(device)
    return actor, cfg, ckpt
