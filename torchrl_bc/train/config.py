"""Run configuration: YAML -> validated, frozen dataclasses, with dotted ``key=value`` overrides.

A checkpoint stores :meth:`RunConfig.to_dict` (plain types only) and resume/load compares it key
by key, so every section round-trips through dicts and rejects keys it does not know, naming
them (a typo such as ``train.lrr`` must fail loudly, not train with the default).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from torchrl_bc.configfile import ConfigError, read_config_file, yaml_problem
from torchrl_bc.data.config import DataConfig
from torchrl_bc.models.config import ArchitectureConfig
from torchrl_bc.obs.config import ObservationConfig
from torchrl_bc.sim.level import DEFAULT_MAX_TICKS

__all__ = [
    "ConfigError",
    "DaggerConfig",
    "DataConfig",
    "EarlyStopConfig",
    "EvalConfig",
    "LoggingConfig",
    "RunConfig",
    "TrainConfig",
    "apply_overrides",
    "config_diff",
    "load_config",
    "with_values",
]

#: Keys that may change between a checkpoint and a resumed run (budget, logging, machinery,
#: where the planner runs; DAgger rounds may be added to a finished run, and which rounds are
#: kept or averaged changed).
RESUMABLE_KEYS: tuple[str, ...] = ("train.epochs", "logging.", "eval.gif_every", "train.threads",
                                   "data.workers", "data.cache_dir", "dagger.rounds",
                                   "dagger.keep_rounds", "dagger.average_last",
                                   "dagger.workers", "dagger.executor", "dagger.ray_address")


#: Metrics the loop logs that ``train.early_stop.metric`` may select ``best.pt`` on.
_SPLIT_METRICS = ("nll", "accuracy", "entropy")
_CLOSED_LOOP = tuple(f"closed_loop_{m}{s}" for m in ("", "sampled_")
                     for s in ("success", "death", "length_ratio"))
SELECTABLE_METRICS: tuple[str, ...] = (
    *(f"train/{m}" for m in ("loss", *_SPLIT_METRICS)),
    *(f"val/{m}" for m in _SPLIT_METRICS),
    *(f"{split}/{m}" for split in ("val", "train") for m in _CLOSED_LOOP),
)
_PER_ACTION = re.compile(r"^val/(precision|recall)/[A-Z_]+$")


def is_selectable_metric(name: str) -> bool:
    """Whether the loop logs ``name`` (a typo would leave ``best.pt`` at its first epoch)."""
    return name in SELECTABLE_METRICS or bool(_PER_ACTION.match(name))


def metric_direction(metric: str, mode: str = "auto") -> str:
    """``max`` or ``min``: ``mode`` if explicit, else min for losses and entropies."""
    if mode in ("max", "min"):
        return mode
    return "min" if any(t in metric for t in ("nll", "loss", "entropy", "death",
                                               "length_ratio")) else "max"


@dataclass(frozen=True)
class EarlyStopConfig:
    metric: str = "val/closed_loop_success"
    patience: int = 5  # evaluations without improvement; 0 disables early stopping
    mode: str = "auto"  # max | min | auto (min for losses, max otherwise)

    def direction(self) -> str:
        return metric_direction(self.metric, self.mode)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 256
    lr: float = 3.0e-4
    weight_decay: float = 1.0e-4
    warmup: int = 500  # optimiser steps of linear warm-up, then cosine to lr * min_lr_ratio
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0  # max global grad norm; 0 disables
    entropy_coef: float = 0.0
    label_smoothing: float = 0.0
    class_weights: bool = False  # weight the NLL by inverse action frequency
    early_stop: EarlyStopConfig = field(default_factory=EarlyStopConfig)
    eval_every: int = 1  # epochs between closed-loop evaluations
    seed: int = 0
    amp: bool = True  # bf16 autocast, CUDA only
    threads: int = 0  # torch CPU threads; 0 = all cores (per process under DDP)
    max_steps_per_epoch: int = 0  # 0 = one pass over the training steps


@dataclass(frozen=True)
class EvalConfig:
    """Closed-loop evaluation: roll the policy out in ``NppEnv``."""

    tick_factor: float = 2.0  # episode cap = tick_factor x demo ticks
    max_ticks: int = 5000  # cap for levels without a demo, and an upper bound for all
    val_levels: int = 0  # 0 = every validation level
    train_levels: int = 16  # training levels rolled out per evaluation (0 = none)
    greedy: bool = True
    sampled: bool = True
    gif_every: int = 0  # epochs between GIFs of one greedy rollout (0 = never)


@dataclass(frozen=True)
class DaggerConfig:
    """DAgger after BC with the planner as the expert (``torchrl_bc.train.dagger``)."""

    rounds: int = 0  # 0 = plain BC
    levels: int = 64  # training levels rolled out per round (spread over the train split)
    levels_from: str = "all"  # all | replays: roll out and select on recorded replays' levels
    # only, never on make-corpus folders (data.generated, the shipped corpus)
    label_every: int = 30  # query the planner every this many steps of a failed rollout
    queries_per_level: int = 8  # planner queries per failed rollout at most
    timeout_queries: str = "latest"  # latest | spread: which snapshots of a rollout that ran
    # out of time are queried (a death always queries the latest, nearest the mistake); spread
    # takes them evenly over the whole rollout, latest first
    rollout: str = "greedy"  # greedy | sampled: the student's rollouts take its most likely
    # action, or draw each from its distribution (seeded per round), which strays where the
    # policy is unsure and so meets, and gets labels at, the mistakes one step off its path
    rejoin_demo: bool = False  # on levels with a recorded winning demo, the planner may also
    # finish a query by reaching a state near the demo's and playing the demo's tail from
    # there (torchrl_bc.levels.rejoin): labels where its own search runs out of budget
    horizon: int = 30  # steps of each expert plan labelled (recovery from the student's state)
    max_expansions: int = 4000  # planner budget per query (machine-independent)
    budget_s: float | None = None  # optional wall-clock cap per query; null (the default)
    # keeps labels independent of the machine's speed, so a run is reproducible
    steps: int = 600  # optimiser steps per round
    mix: float = 0.5  # share of each batch drawn from the aggregated DAgger labels
    lr: float = 3.0e-4
    ema: float = 0.0  # > 0: roll out, score and save an exponential moving average of the
    # weights (this decay per optimiser step) instead of the last step's; 0: the last step's
    max_ticks: int = DEFAULT_MAX_TICKS  # rollout cap per level (the metric's)
    tick_factor: float = 0.0  # > 0: cap each rollout at this x the level's demo as well (the
    # rule evaluation uses), so an episode too slow for that cap fails and gets labels; 0: flat
    average_last: int = 0  # > 0: best.pt is the equal-weight average of the last this many
    # rounds' policies instead of the round the validation levels chose (1: the last round)
    keep_rounds: bool = False  # also save each round's policy as dagger_round<r>.pt, so one
    # run answers how many rounds to use (evaluate them offline on held-out levels)
    executor: str = "local"  # where planner work runs (DAgger labels, data.generated levels):
    # local | ray (docs/SCALE_OUT.md)
    workers: int = 1  # local planner processes (1: in this process; 0: one per CPU). Labels
    # and generated levels come back in task order: the same bytes whatever the count
    ray_address: str = ""  # Ray cluster to join; empty: $RAY_ADDRESS, else a private instance

    def n_workers(self) -> int:
        """Local planner processes: ``workers``, or one per CPU when it is 0."""
        return self.workers or os.cpu_count() or 1


@dataclass(frozen=True)
class LoggingConfig:
    wandb: str = "offline"  # offline | online | disabled
    project: str = "torchrl-bc"
    run_name: str = ""
    plots: bool = True


@dataclass(frozen=True)
class RunConfig:
    architecture: ArchitectureConfig
    observation: ObservationConfig = field(default_factory=ObservationConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    dagger: DaggerConfig = field(default_factory=DaggerConfig)

    def __post_init__(self) -> None:
        missing = [m for m in self.architecture.modalities if not self.observation.has(m)]
        if missing:
            raise ConfigError(f"observation.modalities lacks {missing}, which architecture "
                              f"{self.architecture.name!r} encodes")
        tc = self.train
        for key, value in (("train.epochs", tc.epochs), ("train.batch_size", tc.batch_size),
                           ("train.eval_every", tc.eval_every)):
            if value < 1:
                raise ConfigError(f"{key} must be >= 1, got {value}")
        for key, value in (("train.warmup", tc.warmup), ("train.threads", tc.threads),
                           ("train.max_steps_per_epoch", tc.max_steps_per_epoch),
                           ("train.early_stop.patience", tc.early_stop.patience),
                           ("data.workers", self.data.workers),
                           ("data.min_agreement", self.data.min_agreement),
                           ("eval.val_levels", self.eval.val_levels),
                           ("eval.train_levels", self.eval.train_levels),
                           ("eval.gif_every", self.eval.gif_every)):
            if value < 0:
                raise ConfigError(f"{key} must be >= 0, got {value}")
        if not tc.lr > 0:
            raise ConfigError(f"train.lr must be > 0, got {tc.lr}")
        for key, value in (("train.weight_decay", tc.weight_decay),
                           ("train.grad_clip", tc.grad_clip),
                           ("train.entropy_coef", tc.entropy_coef),
                           ("data.change_weight", self.data.change_weight)):
            if value < 0:
                raise ConfigError(f"{key} must be >= 0, got {value}")
        if not 0.0 <= self.data.human_share < 1.0:
            raise ConfigError(f"data.human_share must be in [0, 1), got {self.data.human_share}")
        if not 0.0 <= tc.min_lr_ratio <= 1.0:
            raise ConfigError(f"train.min_lr_ratio must be in [0, 1], got {tc.min_lr_ratio}")
        if not self.eval.tick_factor > 0 or self.eval.max_ticks < 1:
            raise ConfigError(f"eval.tick_factor must be > 0 and eval.max_ticks >= 1, got "
                              f"{self.eval.tick_factor} and {self.eval.max_ticks}")
        metric = tc.early_stop.metric
        if not is_selectable_metric(metric):
            raise ConfigError(f"train.early_stop.metric {metric!r} is not a metric the loop "
                              f"logs; choose one of {list(SELECTABLE_METRICS)}")
        if metric.startswith("train/closed_loop") and self.eval.train_levels == 0:
            raise ConfigError(f"train.early_stop.metric {metric!r} needs eval.train_levels > 0")
        if not 0.0 <= self.data.val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction must be in [0, 1), got {self.data.val_fraction}")
        if self.data.levels_per_batch < 0:
            raise ConfigError(f"data.levels_per_batch must be >= 0 (0 = off), "
                              f"got {self.data.levels_per_batch}")
        if not 0.0 <= self.train.label_smoothing < 1.0:
            raise ConfigError("train.label_smoothing must be in [0, 1)")
        dc = self.dagger
        for key, value, options in (
                ("logging.wandb", self.logging.wandb, ("offline", "online", "disabled")),
                ("dagger.executor", dc.executor, ("local", "ray")),
                ("dagger.levels_from", dc.levels_from, ("all", "replays")),
                ("dagger.timeout_queries", dc.timeout_queries, ("latest", "spread")),
                ("dagger.rollout", dc.rollout, ("greedy", "sampled")),
                ("train.early_stop.mode", tc.early_stop.mode, ("auto", "max", "min"))):
            if value not in options:
                raise ConfigError(f"{key} must be {'|'.join(options)}, got {value!r}")
        if dc.rounds < 0 or dc.workers < 0:
            raise ConfigError(f"dagger.rounds and dagger.workers must be >= 0, got "
                              f"{dc.rounds} and {dc.workers}")
        if not 0.0 <= dc.mix <= 1.0:
            raise ConfigError(f"dagger.mix must be in [0, 1], got {dc.mix}")
        if dc.tick_factor < 0 or dc.max_ticks < 1:
            raise ConfigError(f"dagger.tick_factor must be >= 0 and dagger.max_ticks >= 1, got "
                              f"{dc.tick_factor} and {dc.max_ticks}")
        if not 0 <= dc.average_last <= dc.rounds:
            raise ConfigError(f"dagger.average_last must be in [0, dagger.rounds "
                              f"({dc.rounds})], got {dc.average_last}")
        if not 0.0 <= dc.ema < 1.0:
            raise ConfigError(f"dagger.ema must be in [0, 1), got {dc.ema}")
        if dc.ray_address and dc.executor != "ray":
            raise ConfigError("dagger.ray_address needs dagger.executor: ray")
        if self.data.generated < 0:
            raise ConfigError(f"data.generated must be >= 0, got {self.data.generated}")
        if self.data.generated_families:
            from torchrl_bc.levels.corpus import check_families

            try:
                check_families(self.data.generated_families)
            except ValueError as exc:
                raise ConfigError(f"data.generated_families: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain types only: safe for YAML, JSON and ``torch.load(weights_only=True)``."""
        out: dict[str, Any] = {"architecture": self.architecture.to_dict()}
        obs = dataclasses.asdict(self.observation)
        obs["modalities"] = list(self.observation.modalities)
        obs["state_zero"] = list(self.observation.state_zero)
        out["observation"] = obs
        for name in ("data", "train", "eval", "logging", "dagger"):
            out[name] = _plain(dataclasses.asdict(getattr(self, name)))
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        if not isinstance(raw, dict):
            raise ConfigError(f"a config must be a mapping, got {type(raw).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"unknown config key(s) {unknown}; known: {sorted(known)}")
        if "architecture" not in raw:
            raise ConfigError("config needs an 'architecture' (a preset name or a mapping)")
        arch = raw["architecture"]
        try:
            arch_cfg = ArchitectureConfig.from_dict({"preset": arch} if isinstance(arch, str)
                                                    else arch)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"architecture: {exc}") from None
        kwargs: dict[str, Any] = {"architecture": arch_cfg}
        for name, typ in (("observation", ObservationConfig), ("data", DataConfig),
                          ("train", TrainConfig), ("eval", EvalConfig),
                          ("logging", LoggingConfig), ("dagger", DaggerConfig)):
            if name in raw:
                kwargs[name] = _build(typ, raw[name] or {}, name)
        return cls(**kwargs)


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


def _check(value: Any, typ: Any, key: str) -> Any:
    """Coerce YAML values to the field type (int -> float, list -> tuple) or raise by key."""
    origin = typing.get_origin(typ)
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        inner = typing.get_args(typ)[0]
        return tuple(_check(v, inner, f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(typ):
            try:
                return _check(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key} has the wrong type: {value!r}")
    if dataclasses.is_dataclass(typ):
        return _build(typ, value, key)
    if typ is type(None):
        if value is not None:
            raise ConfigError(f"{key} must be null")
        return value
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if typ is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{key} must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number, got {value!r}")
        return float(value)
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    return value


def _build(cls: type, data: Any, prefix: str) -> Any:
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown key(s) {[f'{prefix}.{k}' for k in unknown]}; "
                          f"known in {prefix}: {sorted(known)}")
    kwargs = {k: _check(v, hints[k], f"{prefix}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{prefix}: {exc}") from None


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings to a raw config dict; values are parsed as YAML.

    ``architecture.X=...`` on a config naming a preset turns it into ``{preset: name, X: ...}``.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"a config must be a mapping, got {type(raw).__name__}")
    raw = _plain(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not key=value")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: the value is not valid YAML "
                              f"({yaml_problem(exc)})") from None
        parts = key.strip().split(".")
        if parts[0] == "architecture" and len(parts) > 1 and isinstance(raw.get(parts[0]), str):
            raw["architecture"] = {"preset": raw["architecture"]}
        node = raw
        for depth, part in enumerate(parts[:-1]):
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {key!r}: {'.'.join(parts[:depth + 1])} "
                                  f"is not a mapping")
            node = nxt
        node[parts[-1]] = value
    return raw


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                raw: dict[str, Any] | None = None) -> RunConfig:
    """Read a YAML config (merged over its ``base:`` chain) or take a raw dict, apply overrides,
    and validate into a :class:`RunConfig`."""
    if raw is None:
        if path is None:
            raise ConfigError("load_config needs a path or a raw dict")
        path = Path(path)
        raw = read_config_file(path)
    try:
        return RunConfig.from_dict(apply_overrides(raw, list(overrides)))
    except ConfigError as exc:
        if path is None:
            raise
        raise ConfigError(f"config {path}: {exc}") from None


def flatten_leaves(d: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dict -> {"dotted.key": leaf}; tuples become lists so values read back from a
    saved file compare equal to live ones."""
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flatten_leaves(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: list(d) if isinstance(d, tuple) else d}


def config_diff(saved: dict[str, Any], current: dict[str, Any],
                ignore: tuple[str, ...] = ()) -> list[str]:
    """Human-readable differences ``key: saved -> current``, skipping ``ignore`` prefixes."""
    a, b = flatten_leaves(saved), flatten_leaves(current)
    out = []
    for key in sorted(set(a) | set(b)):
        if any(key == p or (p.endswith(".") and key.startswith(p)) for p in ignore):
            continue
        va, vb = a.get(key, "<absent>"), b.get(key, "<absent>")
        if va != vb:
            out.append(f"{key}: {va!r} (checkpoint) vs {vb!r} (now)")
    return out


def with_values(cfg: RunConfig, values: dict[str, Any]) -> RunConfig:
    """``cfg`` with dotted fields set (``{"train.epochs": 3}``), re-validated as a whole.

    For values that are already typed (CLI flags): nothing is re-parsed as YAML text. Each value
    is checked against the field's type, and ``RunConfig`` validates the result.
    """
    for key, value in values.items():
        *path, leaf = key.split(".")
        nodes = [cfg]
        for part in path:
            if not dataclasses.is_dataclass(nodes[-1]) or not hasattr(nodes[-1], part):
                raise ConfigError(f"unknown config key {key!r}")
            nodes.append(getattr(nodes[-1], part))
        node = nodes[-1]
        if not dataclasses.is_dataclass(node) or leaf not in {f.name for f in fields(node)}:
            raise ConfigError(f"unknown config key {key!r}")
        new = _check(value, typing.get_type_hints(type(node))[leaf], key)
        for parent, part in zip(reversed(nodes[:-1]), reversed(path), strict=True):
            new, node = dataclasses.replace(node, **{leaf: new}), parent
            leaf = part
        cfg = dataclasses.replace(node, **{leaf: new})
    return cfg
