"""Architecture config validation, presets, the masked actor, value head and BC losses."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tensordict.nn import InteractionType, set_interaction_type

from torchrl_bc.models import (
    PRESETS,
    ArchitectureConfig,
    MultimodalExtractor,
    ObsSpec,
    actor_extractor,
    build_actor,
    build_value,
    preset,
)
from torchrl_bc.models.synthetic import synthetic_batch, synthetic_level_graph

SPEC = ObsSpec()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def graphs():
    return [synthetic_level_graph(i, rows=12, cols=20, n_entities=3 + i) for i in range(3)]


def _actor(name: str, graphs, seed: int = 0):
    torch.manual_seed(seed)
    actor = build_actor(preset(name), SPEC)
    actor_extractor(actor).set_level_graphs(graphs)
    return actor


# -- config -------------------------------------------------------------------------------------
def test_from_dict_rejects_unknown_key_by_name():
    with pytest.raises(ValueError, match="graph_layerz"):
        ArchitectureConfig.from_dict({"graph_layerz": 2})


@pytest.mark.parametrize("key, value", [
    ("activation", "swish"),
    ("graph_encoder", "gcnn"),
    ("fusion", "sum"),
    ("features_dim", 0),
    ("frame_channels", []),
    ("head_hidden", [64, -1]),
    ("dropout", 1.5),
    ("modalities", ["player_frame", "lidar"]),
    ("n_actions", 1),
    ("graph_layers", True),
    ("state_fourier", -1),
    ("state_fourier", 1.5),
])
def test_bad_values_name_the_key(key, value):
    with pytest.raises(ValueError, match=key):
        ArchitectureConfig.from_dict({key: value})


def test_divisibility_is_checked():
    with pytest.raises(ValueError, match="graph_heads"):
        ArchitectureConfig(graph_hidden=30, graph_heads=4)


def test_preset_override_and_round_trip():
    cfg = ArchitectureConfig.from_dict({"preset": "hgt", "graph_layers": 2})
    assert cfg.name == "hgt" and cfg.graph_layers == 2 and cfg.graph_encoder == "hgt"
    assert ArchitectureConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="nope"):
        ArchitectureConfig.from_dict({"preset": "nope"})


def test_tiny_is_tiny():
    assert sum(p.numel() for p in build_actor(preset("tiny"), SPEC).parameters()) < 6000


# -- presets ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_preset_runs(name, graphs):
    actor = _actor(name, graphs)
    td = actor(synthetic_batch(SPEC, graphs, 4))
    assert td["action"].shape == (4,) and td["action"].dtype == torch.int64
    assert td["features"].shape == (4, preset(name).features_dim)
    assert td["action_log_prob"].shape == (4,)


def test_state_fourier_features_widen_the_state_input_and_resolve_small_offsets():
    from torchrl_bc.models.encoders import StateMLP

    plain = StateMLP(3, [8], 4)
    fourier = StateMLP(3, [8], 4, fourier=6)
    assert plain.net[0].in_features == 3 and fourier.net[0].in_features == 3 * (1 + 2 * 6)
    x = torch.tensor([[0.25, -0.5, 0.0]])
    near = x + torch.tensor([[1e-3, 0.0, 0.0]])  # about half a pixel in x
    # the top octave turns a 1e-3 input offset into a 0.1 rad phase change
    angles = lambda t: (t[..., None] * torch.pi * 2.0 ** torch.arange(6)).flatten(-2)  # noqa: E731
    assert (angles(near) - angles(x)).abs().max() > 0.09
    out = fourier(x)
    assert out.shape == (1, 4) and torch.isfinite(out).all()
    cfg = ArchitectureConfig.from_dict({"preset": "mlp", "state_fourier": 4})
    assert ArchitectureConfig.from_dict(cfg.to_dict()) == cfg  # round-trips for checkpoints


def test_extractor_any_batch_shape(graphs):
    ex = MultimodalExtractor(preset("tiny"), SPEC)
    ex.set_level_graphs(graphs)
    ex.eval()
    td = synthetic_batch(SPEC, graphs, 6)
    obs = {k: td[k] for k in ex.in_keys}
    flat = ex(obs)
    single = ex({k: v[2] for k, v in obs.items()})
    grid = ex({k: v.reshape(2, 3, *v.shape[1:]) for k, v in obs.items()})
    torch.testing.assert_close(single, flat[2])
    torch.testing.assert_close(grid.reshape(6, -1), flat)


def test_spec_action_count_must_match():
    with pytest.raises(ValueError, match="n_actions"):
        MultimodalExtractor(preset("tiny"), ObsSpec(n_actions=5))


# -- masked distribution ------------------------------------------------------------------------
def test_samples_respect_mask_and_log_prob_matches(graphs):
    actor = _actor("tiny", graphs)
    td = synthetic_batch(SPEC, graphs, 64, seed=3)
    td["action_mask"][:, :3] = False  # only actions 3..5 legal anywhere
    for _ in range(5):
        out = actor(td.clone())
        assert td["action_mask"].gather(1, out["action"][:, None]).all()
    masked = out["logits"].masked_fill(~td["action_mask"], -torch.inf)
    ref = torch.distributions.Categorical(logits=masked).log_prob(out["action"])
    torch.testing.assert_close(out["action_log_prob"], ref)


def test_greedy_is_masked_argmax(graphs):
    actor = _actor("tiny", graphs)
    td = synthetic_batch(SPEC, graphs, 32, seed=4)
    with set_interaction_type(InteractionType.DETERMINISTIC):
        a = actor(td.clone())
        b = actor(td.clone())
    masked = a["logits"].masked_fill(~td["action_mask"], -torch.inf)
    assert torch.equal(a["action"], masked.argmax(-1))
    assert torch.equal(a["action"], b["action"])


@pytest.mark.cuda
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_preset_on_cuda_matches_cpu_and_backprops_under_bf16(name, graphs, exact_float32):
    """``--device cuda`` runs the CPU model's maths: same weights give the same distribution
    (TF32 off, so float32 is float32), and the bf16-autocast step training takes gives finite
    gradients for every parameter."""
    from torchrl_bc.train.loss import MaskedBCLoss

    cpu, gpu = _actor(name, graphs), _actor(name, graphs).cuda()
    td = synthetic_batch(SPEC, graphs, 16, seed=6)
    with torch.no_grad():
        want = cpu.get_dist(td.clone()).probs
        got = gpu.get_dist(td.clone().cuda()).probs
    assert got.device.type == "cuda"
    torch.testing.assert_close(got.cpu(), want, atol=2e-5, rtol=1e-4)
    loss = MaskedBCLoss(gpu)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = loss(td.clone().cuda())["loss_bc"]
    out.backward()
    assert torch.isfinite(out).item()
    grads = [p.grad for p in gpu.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all().item() for g in grads)


def test_masked_bc_loss_is_the_actors_nll_and_training_reduces_it(graphs):
    from torchrl_bc.train.loss import MaskedBCLoss

    actor = _actor("tiny", graphs)
    td = synthetic_batch(SPEC, graphs, 32, seed=5)
    loss = MaskedBCLoss(actor)
    logits = actor.module[0](td.clone())["logits"].masked_fill(~td["action_mask"], -torch.inf)
    ref = -torch.log_softmax(logits, -1).gather(-1, td["expert_action"][:, None]).mean()
    torch.testing.assert_close(loss(td.clone())["loss_bc"], ref)
    opt = torch.optim.AdamW(actor.parameters(), lr=2e-2)
    first = loss(td.clone())["loss_bc"].item()
    for _ in range(12):
        opt.zero_grad()
        loss(td.clone())["loss_bc"].backward()
        opt.step()
    assert loss(td.clone())["loss_bc"].item() < 0.8 * first


def test_value_head_shares_extractor(graphs):
    actor = _actor("tiny", graphs)
    ex = actor_extractor(actor)
    value = build_value(preset("tiny"), SPEC, extractor=ex)
    out = value(synthetic_batch(SPEC, graphs, 5))
    assert out["state_value"].shape == (5, 1)
    shared = {id(p) for p in ex.parameters()}
    assert shared <= {id(p) for p in value.parameters()}


# -- shipped configs ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_shipped_config_matches_preset(name):
    from torchrl_bc.configfile import read_config_file

    path = Path(__file__).parents[1] / "configs" / f"{name}.yaml"
    data = read_config_file(path)  # merged over configs/base.yaml
    assert set(data) == {"architecture", "observation", "data", "train", "logging"}
    arch = data["architecture"]
    cfg = preset(arch) if isinstance(arch, str) else ArchitectureConfig.from_dict(arch)
    assert cfg.name == name
    obs_modalities = set(data["observation"]["modalities"])
    assert set(cfg.modalities) <= obs_modalities and "action_mask" in obs_modalities
    assert data["observation"]["frame_skip"] in (1, 4)  # mlp acts every tick
    assert {"epochs", "batch_size", "lr", "early_stop", "seed"} <= set(data["train"])


def test_synthetic_batch_holds_the_opt_in_modalities_its_spec_names(graphs):
    plain = synthetic_batch(SPEC, graphs, 3)
    assert "surroundings" not in plain.keys()
    with_extra = ObsSpec(extra_shapes={"surroundings": (25,)})
    assert with_extra.has_dense("surroundings") and not SPEC.has_dense("surroundings")
    td = synthetic_batch(with_extra, graphs, 3)
    assert td["surroundings"].shape == (3, 25)
    assert td["game_state"].shape == (3, SPEC.game_state_dim)
