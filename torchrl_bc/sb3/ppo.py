"""PPO pieces for fine-tuning a BC export: a KL pull toward the BC policy, and callbacks.

:class:`BCRegularisedPPO` optionally adds ``KL(pi_BC || pi)`` for the first updates
(Kickstarting / VPT-style protection against forgetting while the critic settles).
:class:`SuccessRecorder` keeps every training episode's outcome; :class:`HeldOutEvaluation`
plays level sets greedily on a schedule (one episode per level, all levels in one batched env)
and can stop training once a rule says the curve has flattened.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger, configure

from torchrl_bc.obs import ObservationConfig
from torchrl_bc.sb3.spaces import GraphPadding
from torchrl_bc.sb3.vec_env import evaluate_sb3

__all__ = ["FINETUNE_KL", "FINETUNE_N_ENVS", "FINETUNE_PPO", "FINETUNE_WARMUP_STEPS",
           "BCRegularisedPPO", "HeldOutEvaluation", "SuccessRecorder", "success_rate"]

#: PPO settings shared by ``scripts/finetune_ppo.py``, ``scripts/train_and_compare.py`` and
#: ``scripts/bench_rl.py``: Procgen's PPO shape (Cobbe et al. 2020: 64 envs x 256 steps, 8
#: minibatches of 2048, 3 epochs, lr 5e-4). On 2 CPU cores PPO's time is gradient updates, so
#: few large minibatches are what lets it run at the simulator's speed (docs/SB3.md).
#: ``FINETUNE_PPO`` holds ``PPO``'s own keyword arguments; the env count is the VecEnv's.
FINETUNE_N_ENVS = 64
FINETUNE_PPO: dict[str, float | int] = {
    "n_steps": 256, "batch_size": 2048, "n_epochs": 3, "learning_rate": 5e-4, "gamma": 0.99,
    "ent_coef": 0.005}
#: The KL pull toward the BC policy (``train_and_compare.py``'s ``*_kl`` variants,
#: ``finetune_ppo.py``'s default): coefficient 1.0 decaying linearly to 0 over 1000 updates
#: (16M env steps at the shape above: on for any budget here).
FINETUNE_KL: dict[str, float | int] = {"kl_coef": 1.0, "kl_updates": 1000}
#: Env steps of BC rollouts the critic is fitted on before fine-tuning (``*_warm`` variants).
#: Fine-tuning's default is ``bc_warm_kl`` (this warm-up and the KL pull): the variant that
#: forgot least on held-out levels in the 5-seed comparison (docs/SB3.md).
FINETUNE_WARMUP_STEPS = 20_000
#: Where PPO's networks run (SB3's ``cpu``, ``cuda``, ``auto``): the small mlp export trains as
#: fast on a few CPU cores as on a GPU, whose gain needs large exports (docs/SB3.md).
FINETUNE_DEVICE = "cpu"


class BCRegularisedPPO(PPO):
    """PPO; for the first ``reg_updates`` updates, also minimise ``coef * KL(pi_BC || pi)``.

    PPO's own statistics (losses, KL, clip fraction) go to ``log_dir/progress.csv`` when given.

    The KL is taken on the rollout's own observations after PPO's update, in one extra pass of
    minibatches with PPO's optimiser; ``coef`` decays linearly from ``reg_coef`` to 0.
    """

    def __init__(self, *args: Any, bc_policy: Any = None, reg_coef: float = 0.0,
                 reg_updates: int = 0, log_dir: str | os.PathLike[str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # SB3 otherwise makes an empty SB3-<date> folder in the temp dir on every learn().
        self.set_logger(configure(os.fspath(log_dir), ["csv"]) if log_dir is not None
                        else Logger(folder=None, output_formats=[]))
        self.bc_policy = bc_policy
        self.reg_coef, self.reg_updates = reg_coef, reg_updates
        self._reg_done = 0
        if bc_policy is not None:
            bc_policy.to(self.device)  # the KL pass reads PPO's rollout tensors, on its device
            bc_policy.set_training_mode(False)
            for p in bc_policy.parameters():
                p.requires_grad_(False)

    @classmethod
    def from_export(cls, export: dict[str, Any], env: Any, *, from_bc: bool = True,
                    kl_coef: float = 0.0, kl_updates: int = 0,
                    log_dir: str | os.PathLike[str] | None = None, device: str = FINETUNE_DEVICE,
                    **ppo_kwargs: Any) -> BCRegularisedPPO:
        """PPO shaped by ``export`` (its policy kwargs), starting from its BC weights when
        ``from_bc``, with the KL pull toward them when ``kl_coef > 0``; ``ppo_kwargs`` are
        PPO's own (``seed``, ``n_steps``, ``learning_rate``, ...); ``device`` is where the
        networks run (``FINETUNE_DEVICE``)."""
        from torchrl_bc.sb3.load import build_sb3_policy, load_into, make_sb3_policy_kwargs

        bc_policy = None
        if kl_coef > 0:
            bc_policy = build_sb3_policy(export)
            bc_policy.load_state_dict(export["policy_state_dict"], strict=True)
        model = cls("MultiInputPolicy", env, policy_kwargs=make_sb3_policy_kwargs(export),
                    verbose=0, device=device, bc_policy=bc_policy, reg_coef=kl_coef,
                    reg_updates=kl_updates, log_dir=log_dir, **ppo_kwargs)
        if from_bc:
            load_into(model, export)
        return model

    def train(self) -> None:
        super().train()
        if self.bc_policy is None or self.reg_coef <= 0 or self._reg_done >= self.reg_updates:
            return
        coef = self.reg_coef * (1.0 - self._reg_done / self.reg_updates)
        self._reg_done += 1
        self.policy.set_training_mode(True)
        kls = []
        for batch in self.rollout_buffer.get(self.batch_size):
            with torch.no_grad():
                target = self.bc_policy.get_distribution(batch.observations).distribution.logits
            logits = self.policy.get_distribution(batch.observations).distribution.logits
            p = torch.softmax(target, -1)
            kl = (p * (torch.log_softmax(target, -1) - torch.log_softmax(logits, -1))).sum(-1)
            loss = coef * kl.mean()
            self.policy.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
            kls.append(float(kl.mean().detach()))
        self.logger.record("train/bc_kl", float(np.mean(kls)))
        self.logger.record("train/bc_kl_coef", coef)


class SuccessRecorder(BaseCallback):
    """Records ``(step, won)`` for every finished training episode."""

    def __init__(self) -> None:
        super().__init__()
        self.episodes: list[tuple[int, bool]] = []

    def _on_step(self) -> bool:
        for done, info in zip(self.locals["dones"], self.locals["infos"], strict=True):
            if done:
                self.episodes.append((int(self.num_timesteps), bool(info.get("is_success"))))
        return True


def success_rate(policy: Any, levels: Sequence[Any], config: ObservationConfig,
                 padding: GraphPadding | None = None, *, tick_factor: float = 2.0,
                 max_ticks: int = 5000) -> float:
    """Greedy success of an SB3 policy, one episode per level (``torchrl-bc evaluate``'s cap)."""
    was_training = policy.training
    policy.set_training_mode(False)
    try:
        rollouts = evaluate_sb3(policy, levels, config, padding, tick_factor=tick_factor,
                                max_ticks=max_ticks)
    finally:
        policy.set_training_mode(was_training)
    return sum(r.won for r in rollouts) / len(rollouts)


class HeldOutEvaluation(BaseCallback):
    """Greedy success on named level sets at step 0, on a schedule, and at the end.

    ``schedule(step)`` is the next evaluation step after ``step``. An evaluation runs at the
    start of the first rollout at or past it, so the policy evaluated is exactly the one
    trained on ``step`` env steps. ``history`` holds ``{"step": n, "<set>": success, ...}``
    rows. ``stop(history)`` returning True ends ``learn()`` right there (no further update);
    ``on_eval(row)`` sees each row (W&B, logs).

    ``select`` names a validation set: the policy with the highest success there (the earliest
    on ties, so the starting policy unless one beats it) is kept as ``selected`` (its row) and
    ``selected_state`` (its weights), and :meth:`restore_selected` puts it back into the model.
    That is early stopping on levels neither BC nor PPO fits, against PPO drifting away from
    what generalises while it improves on its training levels.
    """

    def __init__(self, level_sets: Mapping[str, Sequence[Any]], config: ObservationConfig,
                 padding: GraphPadding | None, schedule: Callable[[int], int], *,
                 tick_factor: float = 2.0, max_ticks: int = 5000,
                 stop: Callable[[list[dict[str, float]]], bool] | None = None,
                 on_eval: Callable[[dict[str, float]], None] | None = None,
                 select: str | None = None) -> None:
        super().__init__()
        if not level_sets:
            raise ValueError("no level sets to evaluate on")
        if select is not None and not level_sets.get(select):
            raise ValueError(f"selection set {select!r} is not among the level sets or is empty")
        self.select = select
        self.selected: dict[str, float] | None = None
        self.selected_state: dict[str, torch.Tensor] | None = None
        self.level_sets = dict(level_sets)
        self.config, self.padding = config, padding
        self.schedule, self.stop, self.on_eval = schedule, stop, on_eval
        self.tick_factor, self.max_ticks = tick_factor, max_ticks
        self.history: list[dict[str, float]] = []
        self.next_eval = 0
        self.stopped = False

    def evaluate(self, step: int) -> dict[str, float]:
        row: dict[str, float] = {"step": step}
        for name, levels in self.level_sets.items():
            row[name] = success_rate(self.model.policy, levels, self.config, self.padding,
                                     tick_factor=self.tick_factor, max_ticks=self.max_ticks)
        self.history.append(row)
        if self.select is not None and (self.selected is None
                                        or row[self.select] > self.selected[self.select]):
            self.selected = row
            self.selected_state = {k: v.detach().clone()
                                   for k, v in self.model.policy.state_dict().items()}
        if self.on_eval is not None:
            self.on_eval(row)
        self.next_eval = self.schedule(step)
        if self.next_eval <= step:
            raise ValueError(f"schedule({step}) = {self.next_eval} does not move forward")
        return row

    def _on_training_start(self) -> None:
        if not self.history:
            self.evaluate(int(self.model.num_timesteps))

    def _on_rollout_start(self) -> None:
        step = int(self.model.num_timesteps)  # BaseCallback updates its own copy only per step
        if self.stopped or step < self.next_eval:
            return
        self.evaluate(step)
        if self.stop is not None and self.stop(self.history):
            self.stopped = True  # the rollout's first _on_step returns False: learn() ends

    def _on_step(self) -> bool:
        return not self.stopped

    def _on_training_end(self) -> None:
        step = int(self.model.num_timesteps)
        if not self.stopped and self.history[-1]["step"] != step:
            self.evaluate(step)

    def restore_selected(self) -> dict[str, float]:
        """Load the selected policy's weights into the model; returns its evaluation row."""
        if self.selected is None or self.selected_state is None:
            raise RuntimeError("no policy selected: give select= and evaluate at least once")
        self.model.policy.load_state_dict(self.selected_state, strict=True)
        return self.selected
