"""Graph encoders: batching/permutation invariance, both input paths, real level graphs, seeds."""

from __future__ import annotations

import pytest
import torch

from torchrl_bc.models import (
    ArchitectureConfig,
    GraphEncoder,
    LevelGraph,
    LevelGraphBank,
    MultimodalExtractor,
    ObsSpec,
    actor_extractor,
    build_actor,
    pack_graphs,
    preset,
)
from torchrl_bc.models.graph import scatter_softmax
from torchrl_bc.models.synthetic import synthetic_batch, synthetic_level_graph
from torchrl_bc.train.loss import MaskedBCLoss

SPEC = ObsSpec()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _graphs() -> list[LevelGraph]:
    # Different sizes and entity counts, including a level without entities.
    return [synthetic_level_graph(0, rows=10, cols=14, n_entities=4),
            synthetic_level_graph(1, rows=8, cols=18, n_entities=0),
            synthetic_level_graph(2, rows=12, cols=12, n_entities=7)]


def _encoder(kind: str) -> GraphEncoder:
    torch.manual_seed(0)
    cfg = ArchitectureConfig(graph_encoder=kind, graph_hidden=16, graph_heads=2, graph_layers=2,
                             graph_dim=12)
    return GraphEncoder(cfg, SPEC).eval()


def test_scatter_softmax_normalises_per_target():
    scores = torch.randn(7, 2)
    index = torch.tensor([0, 0, 1, 1, 1, 3, 3])
    out = scatter_softmax(scores, index, 4)
    sums = torch.zeros(4, 2).index_add_(0, index, out)
    torch.testing.assert_close(sums[[0, 1, 3]], torch.ones(3, 2))
    torch.testing.assert_close(out[:2, 0], torch.softmax(scores[:2, 0], 0))


@pytest.mark.parametrize("kind", ["hgt", "gat"])
def test_batched_equals_one_level_at_a_time(kind):
    enc, graphs = _encoder(kind), _graphs()
    bank = LevelGraphBank(graphs)
    level = torch.tensor([2, 0, 1, 2, 0, 0])
    ninja = torch.tensor([3, 0, 5, 7, 11, 2])
    ents = torch.rand(6, 9, 4)
    packed, local = bank.select(level)
    assert packed.num_levels == 3
    together = enc(packed, local, ninja, ents)
    for b in range(6):
        alone = enc(pack_graphs([graphs[int(level[b])]]), torch.tensor([0]), ninja[b:b + 1],
                    ents[b:b + 1, : graphs[int(level[b])].n_entities])
        torch.testing.assert_close(together[b:b + 1], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["hgt", "gat"])
def test_level_order_and_padding_do_not_matter(kind):
    enc, graphs = _encoder(kind), _graphs()
    level = torch.tensor([0, 1, 2, 1])
    ninja = torch.tensor([1, 2, 3, 4])
    ents = torch.rand(4, 7, 4)
    ref = enc(pack_graphs(graphs), level, ninja, ents)
    perm = [2, 0, 1]  # the same levels listed in another order
    where = torch.tensor([perm.index(i) for i in range(3)])
    out = enc(pack_graphs([graphs[i] for i in perm]), where[level], ninja, ents)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    padded = torch.cat([ents, torch.rand(4, 5, 4)], dim=1)  # rows past n_entities are ignored
    torch.testing.assert_close(enc(pack_graphs(graphs), level, ninja, padded), ref)


def test_bank_and_packed_inputs_agree():
    graphs = _graphs()
    ex = MultimodalExtractor(preset("tiny"), SPEC).eval()
    ex.set_level_graphs(graphs)
    td = synthetic_batch(SPEC, graphs, 5, seed=1)
    obs = {k: td[k] for k in ex.in_keys}
    explicit = dict(obs, **pack_graphs(graphs).to_dict())
    torch.testing.assert_close(ex(obs), ex(explicit))


def test_unattached_bank_is_a_clear_error():
    ex = MultimodalExtractor(preset("tiny"), SPEC)
    td = synthetic_batch(SPEC, _graphs(), 2)
    with pytest.raises(RuntimeError, match="set_level_graphs"):
        ex({k: td[k] for k in ex.in_keys})


def test_bad_level_graph_is_refused():
    g = _graphs()[0]
    with pytest.raises(ValueError, match="edge_index"):
        LevelGraph.from_static({"node_type": g.node_type, "node_kind": g.node_kind,
                                "node_pos": g.node_pos, "edge_index": g.edge_index + 10_000,
                                "edge_type": g.edge_type, "n_entities": g.n_entities})


def test_real_static_graph_from_obs_builder(shared_data):
    obs = pytest.importorskip("torchrl_bc.obs")
    from torchrl_bc.replay.format import read_replay
    from torchrl_bc.sim import Simulator

    replay = read_replay(sorted((shared_data / "replays").glob("*.replay"))[1])
    builder = obs.ObservationBuilder(obs.ObservationConfig(modalities=("game_state", "graph")))
    step = builder.observe(Simulator(replay.map_data))
    cfg = ArchitectureConfig.from_dict({"preset": "tiny", "graph_encoder": "hgt",
                                        "modalities": ["game_state", "graph"]})
    ex = MultimodalExtractor(cfg, ObsSpec.from_observation_config(builder.config))
    ex.set_level_graphs([builder.static_graph])
    batch = {
        "game_state": torch.as_tensor(step["game_state"])[None],
        "graph_level": torch.zeros(1, 1, dtype=torch.int64),
        "graph_ninja_node": torch.as_tensor(step["graph_ninja_node"])[None],
        "graph_entity_state": torch.as_tensor(step["graph_entity_state"])[None],
    }
    out = ex(batch)
    assert out.shape == (1, cfg.features_dim) and torch.isfinite(out).all()


def _train(seed: int) -> list[float]:
    graphs = _graphs()
    torch.manual_seed(seed)
    actor = build_actor(ArchitectureConfig.from_dict({"preset": "tiny", "graph_encoder": "hgt"}),
                        SPEC)
    actor_extractor(actor).set_level_graphs(graphs)
    td = synthetic_batch(SPEC, graphs, 16, seed=seed)
    opt = torch.optim.AdamW(actor.parameters(), lr=1e-2)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = MaskedBCLoss(actor)(td)["loss_bc"]
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_seeded_training_is_deterministic_on_cpu():
    assert _train(7) == _train(7)
    assert _train(7) != _train(8)


def test_inference_cache_matches_and_follows_weight_updates():
    graphs = _graphs()
    torch.manual_seed(0)
    actor = build_actor(ArchitectureConfig.from_dict({"preset": "tiny", "graph_encoder": "hgt"}),
                        SPEC)
    ex = actor_extractor(actor)
    ex.set_level_graphs(graphs)
    td = synthetic_batch(SPEC, graphs, 6, seed=2)
    obs = {k: td[k] for k in ex.in_keys}
    ex.eval()
    fresh = ex(obs).detach()  # grad enabled: no cache
    with torch.no_grad():
        cached = ex(obs)
        again = ex({k: v[:2] for k, v in obs.items()})  # served from the cache
    assert len(ex._node_cache) == len({int(v) for v in td["graph_level"]})
    torch.testing.assert_close(cached, fresh)
    torch.testing.assert_close(again, fresh[:2])
    opt = torch.optim.SGD(actor.parameters(), lr=0.5)
    ex.train()
    MaskedBCLoss(actor)(td)["loss_bc"].backward()
    opt.step()
    ex.eval()
    updated = ex(obs).detach()
    with torch.no_grad():
        torch.testing.assert_close(ex(obs), updated)
    assert not torch.allclose(updated, fresh)
