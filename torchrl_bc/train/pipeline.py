"""``pretrain(config) -> checkpoint path``: prepare -> train -> validate the checkpoint.

One call for ``train_and_compare.py`` and user code (the seed plan's ``prepare_bc_data`` /
``run_pretraining``). The final step reloads ``best.pt`` the way export and RL will (weights-only,
strict, spec-checked) and checks it reproduces the trained model's logits, so a checkpoint that
cannot be used fails here rather than later.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import torch
from torchrl.envs.utils import ExplorationType, set_exploration_type

from torchrl_bc.data import EXPERT_KEY, BCDataset
from torchrl_bc.models import actor_extractor
from torchrl_bc.train.checkpoint import load_policy
from torchrl_bc.train.config import RunConfig, load_config
from torchrl_bc.train.factories import make_dataset
from torchrl_bc.train.loop import TrainResult, check_out_dir, train

__all__ = ["prepare_bc_data", "pretrain", "run_pretraining", "validate_checkpoint",
           "with_generated_levels"]


def _as_config(config: RunConfig | str | Path | dict[str, Any],
               overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    if isinstance(config, RunConfig):
        return load_config(raw=config.to_dict(), overrides=overrides) if overrides else config
    if isinstance(config, dict):
        return load_config(raw=config, overrides=overrides)
    return load_config(config, overrides)


def prepare_bc_data(config: RunConfig | str | Path | dict, out_dir: str | Path = "runs/bc",
                    verbose: bool = True) -> BCDataset:
    """Build (or open from cache) the dataset ``config`` trains on."""
    return make_dataset(_as_config(config), Path(out_dir), verbose=verbose)


def validate_checkpoint(path: str | Path, data: BCDataset | None = None) -> dict[str, Any]:
    """Reload a checkpoint strictly and, given data, check a validation batch runs through it."""
    actor, cfg, ckpt = load_policy(path)
    report: dict[str, Any] = {"path": str(path), "epoch": int(ckpt["epoch"]),
                              "architecture": cfg.architecture.name}
    if data is not None:
        batch = data.sample_batch(64)
        if cfg.architecture.uses("graph"):
            actor_extractor(actor).set_level_graphs(data.level_graphs or [])
        actor.eval()
        with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
            td = actor(batch)
        if not torch.isfinite(td["logits"]).all():
            raise ValueError(f"{path}: non-finite logits on a validation batch")
        report["val_batch_accuracy"] = float((td["action"] == batch[EXPERT_KEY]).float().mean())
    return report


def pretrain(config: RunConfig | str | Path | dict, out_dir: str | Path = "runs/bc", *,
             overrides: list[str] | tuple[str, ...] = (), device: str = "auto",
             resume: bool = False, verbose: bool = True, overwrite: bool = False,
             progress: bool = True) -> Path:
    """Prepare the data, train, validate ``best.pt`` and return its path.

    ``best.pt`` is the epoch best on ``train.early_stop.metric``, or, without validation
    levels, on the training-level equivalent that :func:`~torchrl_bc.train.loop.
    selection_metric` names (a warning says so). An ``out_dir`` holding another run needs
    ``resume`` or ``overwrite``; ``resume`` continues BC from ``last.pt`` and then DAgger
    after its last finished round.
    """
    cfg = _as_config(config, overrides)
    out = Path(out_dir)
    check_out_dir(out, resume=resume, overwrite=overwrite)
    cfg = with_generated_levels(cfg, out, verbose=verbose)
    data = make_dataset(cfg, out, verbose=verbose)
    result: TrainResult = train(cfg, out, device=device, resume=resume, data=data,
                                verbose=verbose, overwrite=overwrite, progress=progress)
    if cfg.dagger.rounds > 0 and int(os.environ.get("RANK", "0")) == 0:
        from torchrl_bc.train.dagger import run_dagger

        # DAgger continues where it stopped only from the BC policy it started from: a resume
        # that trained more BC epochs starts its rounds again (start_epoch is 0 unless BC
        # resumed from last.pt).
        run_dagger(cfg, out, data, result.best, verbose=verbose,
                   resume=0 < result.start_epoch == len(result.history), progress=progress)
    validate_checkpoint(result.best, data)
    return result.best


def with_generated_levels(cfg: RunConfig, out_dir: Path, verbose: bool = True) -> RunConfig:
    """``cfg`` with ``data.generated`` planner-solved levels added to its replay dirs.

    The corpus is made once into the data cache (``generated-<n>-<seed>``; its manifest,
    written last, marks it complete) and reused by every later run. The planner runs where
    DAgger's labelling does (``dagger.executor``/``workers``/``ray_address``); the levels are
    the same bytes whichever executor solves them."""
    n = cfg.data.generated
    if n <= 0:
        return cfg
    from torchrl_bc.levels.corpus import MANIFEST, load_manifest, make_corpus
    from torchrl_bc.levels.generator import FAMILIES

    seed = cfg.data.generated_seed
    families = cfg.data.generated_families or FAMILIES
    corpus = cfg.data.generated_dir(out_dir)
    assert corpus is not None  # n > 0
    made = load_manifest(corpus) if (corpus / MANIFEST).is_file() else {}
    done = (made.get("n_levels"), made.get("families")) == (n, list(families))
    if not done:
        if verbose:
            print(f"data: generating and solving {n} levels ({', '.join(families)}) into "
                  f"{corpus}", file=sys.stderr)
        dc = cfg.dagger
        make_corpus(corpus, n, seed=seed, progress=verbose, workers=dc.n_workers(),
                    executor=dc.executor, ray_address=dc.ray_address or None,
                    families=families)
    replays = (*tuple(cfg.data.replays), str(corpus))
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, replays=replays))


run_pretraining = pretrain
