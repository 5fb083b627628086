"""Sampling a prepared dataset: batch keys/shapes/dtypes, split, filters, seeded epochs, model
input."""

from __future__ import annotations

import shutil

import pytest
import torch

from torchrl_bc.data import EXPERT_KEY, BCDataset
from torchrl_bc.data.build import build_dataset
from torchrl_bc.data.sampling import action_balance_weights
from torchrl_bc.data.split import assign_splits
from torchrl_bc.obs import ObservationConfig
from torchrl_bc.resources import SAMPLE_CORPUS

CORPUS = SAMPLE_CORPUS
NAMES = ["corridor-40", "corridor-0", "corridor-16", "corridor-56", "gaps-1", "shaft-58"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> BCDataset:
    root = tmp_path_factory.mktemp("data")
    src = root / "replays"
    src.mkdir()
    for name in NAMES:
        shutil.copy(CORPUS / f"{name}.replay", src)
    build_dataset([src], ObservationConfig(), root / "ds", val_fraction=0.34, progress=False,
                  verbose=False)
    return BCDataset(root / "ds")


EXPECTED = {
    "player_frame": (torch.uint8, (1, 84, 84)), "global_view": (torch.uint8, (1, 100, 176)),
    "game_state": (torch.float32, (39,)), "action_mask": (torch.bool, (6,)),
    "graph_level": (torch.int64, (1,)), "graph_ninja_node": (torch.int64, (1,)),
    "action": (torch.int64, ()), "label_agreement": (torch.int8, ()), "ticks": (torch.int8, ()),
    "episode": (torch.int64, ()), "level": (torch.int64, ()), "step": (torch.int64, ()),
    "index": (torch.int64, ()), "done": (torch.bool, (1,)), "terminated": (torch.bool, (1,)),
    "truncated": (torch.bool, (1,)), ("next", "done"): (torch.bool, (1,)),
    ("next", "terminated"): (torch.bool, (1,)), ("next", "truncated"): (torch.bool, (1,)),
    ("next", "reward"): (torch.float32, (1,)),
}


def test_sample_keys_shapes_dtypes(dataset: BCDataset) -> None:
    batch = dataset.gather(dataset.rows["train"][:32])
    assert batch.batch_size == torch.Size([32])
    keys = set(batch.keys(include_nested=True, leaves_only=True))
    assert keys == set(EXPECTED) | {"graph_entity_state"}
    for key, (dtype, shape) in EXPECTED.items():
        assert batch[key].dtype == dtype, key
        assert tuple(batch[key].shape) == (32, *shape), key
    ent = batch["graph_entity_state"]
    n_ent = dataset.level_table["n_entities"][batch["level"]]
    assert ent.dtype == torch.float32 and ent.shape[2] == 4
    assert ent.shape[1] == max(1, int(n_ent.max()))  # padded to this batch's largest level
    # Rows agree with the episode views of the store.
    i = int(batch["index"][0])
    ep = dataset.episode(int(batch["episode"][0]))
    assert torch.equal(ep["player_frame"][int(batch["step"][0])], batch["player_frame"][0])
    assert int(dataset.steps["action"][i]) == int(batch["action"][0])


def test_episode_layout_and_done_flags(dataset: BCDataset) -> None:
    for e in range(dataset.n_episodes):
        ep = dataset.episode(e)
        assert torch.equal(ep["step"], torch.arange(ep.batch_size[0]))
        assert not ep["done"].any() and ep["next", "done"][-1].item()
        assert ep["next", "reward"][-1].item() == 1.0 and not ep["next", "done"][:-1].any()


def test_split_keeps_levels_apart(dataset: BCDataset) -> None:
    train = dataset.select("train")
    val = dataset.select("val")
    assert train.numel() and val.numel()
    lv = dataset.episodes["source_level"][dataset.steps["episode"]]
    assert not set(lv[train].tolist()) & set(lv[val].tolist())
    assert train.numel() + val.numel() == dataset.n_steps()
    assert torch.equal(dataset.rows["train"], train) and torch.equal(dataset.rows["val"], val)


def test_assign_splits_by_level_and_replay() -> None:
    levels = [f"L{i % 20}" for i in range(100)]
    replays = [f"R{i}" for i in range(100)]
    out = assign_splits(levels, replays, val_fraction=0.2, val_replay_fraction=0.1, seed=3)
    by_level: dict[str, set[str]] = {}
    for lv, s in zip(levels, out, strict=True):
        by_level.setdefault(lv, set()).add("train" if s == "val_replay" else s)
    assert all(len(s) == 1 for s in by_level.values())
    assert sum(s == {"val"} for s in by_level.values()) == 4
    assert out.count("val_replay") == 8  # 10 % of the 80 training-level replays
    assert out == assign_splits(levels, replays, val_fraction=0.2, val_replay_fraction=0.1,
                                seed=3)
    assert out != assign_splits(levels, replays, val_fraction=0.2, val_replay_fraction=0.1,
                                seed=4)


def test_filters(dataset: BCDataset) -> None:
    all_rows = dataset.select(None)
    assert all_rows.numel() == dataset.n_steps()
    agree = dataset.select(None, min_agreement=4)
    assert 0 < agree.numel() < dataset.n_steps()
    assert (dataset.steps["label_agreement"][agree] >= 4).all()
    filtered = BCDataset(dataset.path, min_agreement=4)  # filters run once, at open
    assert torch.equal(filtered.rows["train"], dataset.select("train", min_agreement=4))
    assert filtered.n_steps("train") < dataset.n_steps("train")


def test_balanced_sampling(dataset: BCDataset) -> None:
    rows = dataset.select("train")
    w = action_balance_weights(dataset.steps["action"][rows])
    present = dataset.steps["action"][rows].unique()
    mass = torch.zeros(6, dtype=torch.float64).index_add_(0, dataset.steps["action"][rows], w)
    assert torch.allclose(mass[present], torch.ones(len(present), dtype=torch.float64))
    batch = next(dataset.train_batches(0, 4000, seed=1, balanced=True))
    counts = torch.bincount(batch[EXPERT_KEY], minlength=6)[present].double()
    assert counts.min() / counts.max() > 0.8
    assert set(batch.keys()) == set(dataset.keys) - {"action"} | {EXPERT_KEY,
                                                                         "graph_level"}


def test_epochs_are_seeded_and_interleave(dataset: BCDataset) -> None:
    def epoch(e: int, seed: int = 5, rank: int = 0) -> list[torch.Tensor]:
        return [b[EXPERT_KEY] for b in dataset.train_batches(e, 8, seed, rank=rank, cap=6)]

    first = epoch(0)
    assert len(first) == 6
    assert all(torch.equal(a, b) for a, b in zip(first, epoch(0), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(first, epoch(1), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(first, epoch(0, rank=1), strict=True))
    # two epochs drawn in turn keep their own streams (the buffer is shared, not rebuilt)
    a, b = dataset.train_batches(0, 8, 5, cap=6), dataset.train_batches(1, 8, 5, cap=6)
    mixed = [(next(a)[EXPERT_KEY], next(b)[EXPERT_KEY]) for _ in range(6)]
    assert all(torch.equal(x, y) for x, (y, _) in zip(first, mixed, strict=True))
    assert dataset.steps_per_epoch(8) == -(-dataset.n_steps("train") // 8)


def test_batch_feeds_the_model(dataset: BCDataset) -> None:
    from torchrl_bc.models.config import preset
    from torchrl_bc.models.extractor import MultimodalExtractor
    from torchrl_bc.models.graph import LevelGraph

    graphs = dataset.level_graphs
    assert len(graphs) == int(dataset.steps["level"].max()) + 1
    for g in graphs:
        LevelGraph.from_static(g)
    model = MultimodalExtractor(preset("tiny"))
    model.set_level_graphs(graphs)
    batch = dataset.sample(16)  # the buffer itself: uniform over the training rows
    assert batch.batch_size == torch.Size([16])
    assert set(batch["index"].tolist()) <= set(dataset.rows["train"].tolist())
    obs = {k: batch[k] for k in model.in_keys}
    obs = {k: v.float() if v.dtype == torch.uint8 else v for k, v in obs.items()}
    assert model(obs).shape == (16, 16)


def test_skip_idle_start_drops_only_leading_noops(dataset: BCDataset) -> None:
    from types import SimpleNamespace

    # the planner's demos act from the first tick, so nothing is idle there
    assert torch.equal(dataset.select(None, skip_idle_start=True), dataset.select(None))
    # two episodes: NOOP NOOP RIGHT NOOP | JUMP NOOP; one all-idle episode: NOOP NOOP
    steps = {
        "episode": torch.tensor([0, 0, 0, 0, 1, 1, 2, 2]),
        "step": torch.tensor([0, 1, 2, 3, 0, 1, 0, 1]),
        "action": torch.tensor([0, 0, 2, 0, 3, 0, 0, 0]),
    }
    fake = SimpleNamespace(steps=steps, n_episodes=3)
    mask = BCDataset.idle_start_mask(fake)
    assert mask.tolist() == [True, True, False, False, False, False, True, True]
