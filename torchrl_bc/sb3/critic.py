"""Critic warm-up: fit the exported value head on returns of the frozen BC policy.

A random value head gives PPO garbage advantages in its first updates, which drags the cloned
policy away from what it learned before the critic catches up. Rolling out the BC policy itself
(through the SB3 policy built from the export, which computes exactly the BC distribution) and
regressing the value head on its discounted Monte-Carlo returns starts PPO with a critic that
already knows the policy it evaluates. Only ``mlp_extractor.value_net`` and ``value_net`` are
fitted; the features extractor stays the BC one, frozen, so the actor is untouched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from torchrl_bc.progress import progress_bar
from torchrl_bc.sb3.env import make_sb3_env
from torchrl_bc.sb3.load import build_sb3_policy

if TYPE_CHECKING:
    from torchrl_bc.sb3.shaping import Shaping

__all__ = ["collect_returns", "value_operator_from_export", "warmup_critic"]


def _discounted(rewards: list[float], gamma: float) -> list[float]:
    out, g = [], 0.0
    for r in reversed(rewards):
        g = r + gamma * g
        out.append(g)
    return out[::-1]


@torch.no_grad()
def collect_returns(policy: Any, env: Any, steps: int, gamma: float, progress: bool = False
                    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """Sampled BC rollouts: value-extractor features and discounted returns of whole episodes.

    Features (not observations) are kept, since the extractor is frozen and a padded graph
    observation is ~250 kB. Episodes still running when ``steps`` is reached are dropped (their
    return is unknown); truncation at the episode cap counts as the end of the return.
    """
    policy.set_training_mode(False)
    n = env.num_envs
    feats: list[list[torch.Tensor]] = [[] for _ in range(n)]
    rews: list[list[float]] = [[] for _ in range(n)]
    out_x: list[torch.Tensor] = []
    out_y: list[float] = []
    wins = episodes = 0
    obs = env.reset()
    bar = progress_bar(total=max(1, steps // n) * n, desc="critic warm-up: rollouts",
                       unit="step", enabled=progress)
    for _ in range(max(1, steps // n)):
        bar.update(n)
        obs_t, _ = policy.obs_to_tensor(obs)
        f = policy.extract_features(obs_t, policy.vf_features_extractor)
        actions = policy.get_distribution(obs_t).get_actions(deterministic=False)
        obs, rewards, dones, infos = env.step(actions.cpu().numpy())
        for i in range(n):
            feats[i].append(f[i].cpu())
            rews[i].append(float(rewards[i]))
            if dones[i]:
                out_x.extend(feats[i])
                out_y.extend(_discounted(rews[i], gamma))
                episodes += 1
                wins += bool(infos[i].get("is_success", False))
                feats[i], rews[i] = [], []
        bar.set_postfix(episodes=episodes, wins=wins, refresh=False)
    bar.close()
    if not out_x:
        raise RuntimeError(f"no episode finished within {steps} steps; raise steps")
    stats = {"episodes": float(episodes), "success": wins / episodes,
             "samples": float(len(out_y)), "mean_return": float(np.mean(out_y))}
    return torch.stack(out_x), torch.tensor(out_y, dtype=torch.float32), stats


def warmup_critic(export: dict[str, Any], levels: Any = None, *, steps: int = 20000,
                  gamma: float = 0.99, epochs: int = 20, lr: float = 1e-3,
                  batch_size: int = 256, n_envs: int = 8, seed: int = 0,
                  tick_factor: float = 3.0, max_ticks: int = 5000,
                  progress: bool = False, shaping: Shaping | None = None) -> dict[str, Any]:
    """A copy of ``export`` whose value head is fitted on BC returns (``critic: "warmed"``).

    Use the ``gamma`` (and levels / episode caps) PPO will use: the value head learns
    ``E[sum gamma^t r_t]`` for exactly that setting, recorded in ``critic_info``.
    ``shaping``: the shaped reward PPO will train on (the returns fitted are its).
    ``progress`` shows rate and ETA of the rollouts and the fit on stderr (a TTY only).
    """
    torch.manual_seed(seed)
    policy = build_sb3_policy(export)
    policy.load_state_dict(export["policy_state_dict"], strict=True)
    env = make_sb3_env(export, levels, n_envs=n_envs, seed=seed, tick_factor=tick_factor,
                       max_ticks=max_ticks, shaping=shaping)
    try:
        x, y, stats = collect_returns(policy, env, steps, gamma, progress)
    finally:
        env.close()

    value = torch.nn.Sequential(policy.mlp_extractor.value_net, policy.value_net)
    opt = torch.optim.Adam(value.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)

    def mse() -> float:
        with torch.no_grad():
            return float(((value(x).squeeze(-1) - y) ** 2).mean())

    before = mse()
    # Start from the best constant (zero output weights, bias = mean return): a fresh head's
    # outputs are O(1) while sparse-win returns are O(0.01), and fitting down from there within
    # a few epochs can end worse than the mean. From the constant, EV starts at 0 and only rises.
    with torch.no_grad():
        policy.value_net.weight.zero_()
        policy.value_net.bias.fill_(float(y.mean()))
    value.train()
    for _ in progress_bar(range(epochs), desc="critic warm-up: fit", unit="epoch",
                          enabled=progress):
        for idx in torch.randperm(len(y), generator=gen).split(batch_size):
            loss = ((value(x[idx]).squeeze(-1) - y[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    after = mse()
    var = float(y.var()) if len(y) > 1 else 0.0
    out = dict(export)
    out["policy_state_dict"] = {k: v.detach().cpu() for k, v in policy.state_dict().items()}
    out["critic"] = "warmed"
    out["critic_info"] = {
        "gamma": gamma, "steps": steps, "epochs": epochs, "lr": lr, "seed": seed,
        "tick_factor": tick_factor, "max_ticks": max_ticks, **stats,
        "mse_before": before, "mse_after": after,
        "explained_variance": 1.0 - after / var if var > 0 else 0.0,
    }
    return out


def value_operator_from_export(export: dict[str, Any]) -> Any:
    """The export's critic as a TorchRL value operator (``build_value``) writing "state_value".

    Rebuilt from the exported ``vf_features_extractor`` and value layers, so TorchRL-side code
    (and the hand-off test) can evaluate exactly the critic PPO starts with. Attach level graphs
    with ``actor_extractor(op).set_level_graphs(...)`` for graph architectures.
    """
    from torchrl_bc.models import ArchitectureConfig, MultimodalExtractor, ObsSpec, build_value
    from torchrl_bc.sb3.export import linear_layers

    cfg = ArchitectureConfig.from_dict(dict(export["architecture"]["config"]))
    extractor = MultimodalExtractor(cfg, ObsSpec.from_dict(dict(export["obs_spec"])))
    sd = export["policy_state_dict"]
    prefix = "vf_features_extractor.extractor."
    extractor.load_state_dict({k[len(prefix):]: v for k, v in sd.items()
                               if k.startswith(prefix)}, strict=True)
    op = build_value(cfg, extractor.spec, extractor=extractor)
    head = linear_layers(op.module[1])
    value_layers = {k.rsplit(".", 1)[0] for k in sd if k.startswith("mlp_extractor.value_net.")}
    sources = [*sorted(value_layers, key=lambda name: int(name.rsplit(".", 1)[1])), "value_net"]
    if len(sources) != len(head):
        raise ValueError(f"value head: {len(head)} linear layers in TorchRL, {len(sources)} in "
                         f"the export")
    with torch.no_grad():
        for layer, name in zip(head, sources, strict=True):
            layer.weight.copy_(sd[f"{name}.weight"])
            layer.bias.copy_(sd[f"{name}.bias"])
    return op.eval()
