"""Level-grouped sampling (``data.levels_per_batch``): each batch comes from at most K levels so
graph encoders encode few distinct level graphs per step, without changing what is sampled on
average. Synthetic tables for the sampler, six sample-corpus replays for the dataset and loop."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from torchrl_bc.data.sampling import LevelGroupedSampler
from torchrl_bc.levels.corpus import SAMPLE_CORPUS
from torchrl_bc.train.config import ConfigError, load_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml"


def _table(n_levels: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Store rows (shuffled, not grouped) with uneven step counts per level."""
    g = torch.Generator().manual_seed(seed)
    levels = torch.cat([torch.full((5 + 7 * i,), 100 + i) for i in range(n_levels)])
    perm = torch.randperm(levels.numel(), generator=g)
    return torch.arange(levels.numel()) * 3 + 1, levels[perm]


def _level_of(indices: torch.Tensor, levels: torch.Tensor, drawn: torch.Tensor) -> torch.Tensor:
    lookup = dict(zip(indices.tolist(), levels.tolist(), strict=True))
    return torch.tensor([lookup[i] for i in drawn.tolist()])


@pytest.mark.parametrize("k", [1, 3, 4])
@pytest.mark.parametrize("weighted", [False, True])
def test_batches_hold_at_most_k_levels_and_cover_all(k: int, weighted: bool) -> None:
    indices, levels = _table()
    weights = torch.rand(indices.numel(), generator=torch.Generator().manual_seed(1)) + 0.1 \
        if weighted else None
    s = LevelGroupedSampler(indices, levels, k, weights, seed=3)
    seen: set[int] = set()
    for _ in range(200):
        drawn, _ = s.sample(None, 64)
        assert drawn.shape == (64,) and set(drawn.tolist()) <= set(indices.tolist())
        lv = _level_of(indices, levels, drawn)
        assert lv.unique().numel() <= k
        seen |= set(lv.tolist())
    assert seen == set(levels.tolist())  # every training level gets drawn


def test_deterministic_per_seed_and_state_dict() -> None:
    indices, levels = _table()
    a = LevelGroupedSampler(indices, levels, 4, seed=7)
    b = LevelGroupedSampler(indices, levels, 4, seed=7)
    c = LevelGroupedSampler(indices, levels, 4, seed=8)
    xa, xb, xc = (torch.cat([s.sample(None, 32)[0] for _ in range(5)]) for s in (a, b, c))
    assert torch.equal(xa, xb) and not torch.equal(xa, xc)
    state = a.state_dict()
    nxt = a.sample(None, 32)[0]
    b.load_state_dict(state)
    assert torch.equal(b.sample(None, 32)[0], nxt)


def test_marginal_matches_plain_weighted_sampling() -> None:
    """Grouping only correlates steps within a batch: per-step frequencies stay ∝ weight."""
    indices, levels = _table(n_levels=4)
    weights = torch.linspace(1.0, 3.0, indices.numel(), dtype=torch.float64)
    s = LevelGroupedSampler(indices, levels, 2, weights, seed=0)
    drawn = torch.cat([s.sample(None, 100)[0] for _ in range(2000)])
    freq = torch.bincount((drawn - 1) // 3, minlength=indices.numel()).double() / drawn.numel()
    expect = weights / weights.sum()
    assert (freq - expect).abs().max() < 0.25 * expect.max()


def test_bad_arguments() -> None:
    indices, levels = _table()
    with pytest.raises(ValueError, match="levels_per_batch"):
        LevelGroupedSampler(indices, levels, 0)
    with pytest.raises(ValueError, match="one level per index"):
        LevelGroupedSampler(indices, levels[:-1], 2)
    with pytest.raises(ValueError, match="no steps"):
        LevelGroupedSampler(indices[:0], levels[:0], 2)


@pytest.mark.parametrize("value", ["-1", "true", "2.5"])
def test_config_key_is_validated_by_name(value: str) -> None:
    with pytest.raises(ConfigError, match=r"data\.levels_per_batch"):
        load_config(TINY, [f"data.levels_per_batch={value}"])
    assert load_config(TINY).data.levels_per_batch == 0
    assert load_config(TINY, ["data.levels_per_batch=3"]).data.levels_per_batch == 3


def test_graph_configs_group_levels_and_others_do_not() -> None:
    configs = TINY.parent
    for name, k in (("hgt", 4), ("gat", 4), ("cnn", 0), ("mlp", 0), ("tiny", 0)):
        assert load_config(configs / f"{name}.yaml").data.levels_per_batch == k, name


# -- dataset and training loop -----------------------------------------------------------------
@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Six short sample-corpus replays of different families (four training levels)."""
    src = sorted(SAMPLE_CORPUS.glob("*.replay"), key=lambda p: p.stat().st_size)
    picked: dict[str, Path] = {}
    for p in src:
        picked.setdefault(p.stem.split("-")[0], p)
    corpus = tmp_path_factory.mktemp("corpus")
    for p in list(picked.values())[:6]:
        shutil.copy(p, corpus / p.name)
    cache = tmp_path_factory.mktemp("bc_data")
    return [f"data.replays=[{str(corpus)!r}]", f"data.cache_dir={str(cache)!r}",
            "data.workers=1", "data.mirror=false", "data.val_fraction=0.34",
            "data.levels_per_batch=2", "train.batch_size=16", "train.max_steps_per_epoch=3",
            "train.threads=1", "eval.train_levels=0", "eval.val_levels=1", "eval.sampled=false",
            "eval.tick_factor=0.5", "logging.wandb=disabled", "logging.plots=false"]


@pytest.fixture(scope="module")
def data(base: list[str], tmp_path_factory: pytest.TempPathFactory):
    from torchrl_bc.train.factories import make_dataset

    return make_dataset(load_config(TINY, base), tmp_path_factory.mktemp("out"), verbose=False)


def test_train_batches_group_levels_per_rank(data) -> None:
    train_levels = set(data.steps["level"][data.rows["train"]].tolist())
    assert len(train_levels) > 2

    def levels(rank: int, seed: int = 0) -> list[torch.Tensor]:
        return [b["graph_level"].reshape(-1) for b in
                data.train_batches(0, 16, seed, balanced=True, levels_per_batch=2, rank=rank,
                                   world=2, cap=40)]

    r0, r0_again, r1 = levels(0), levels(0), levels(1)
    assert all(lv.unique().numel() <= 2 for lv in r0 + r1)
    assert all(torch.equal(a, b) for a, b in zip(r0, r0_again, strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(r0, r1, strict=True))
    assert set(torch.cat(r0).tolist()) == train_levels
    assert type(data.sampler) is LevelGroupedSampler  # the epoch's sampler, built once
    assert data._sampler_for(True, 2) is data.sampler
    next(data.train_batches(1, 16, 0))
    assert type(data.sampler).__name__ == "StepSampler"


def test_tiny_training_run_with_levels_per_batch(base: list[str], data, tmp_path: Path) -> None:
    from torchrl_bc.train.loop import train

    res = train(load_config(TINY, [*base, "train.epochs=1"]), tmp_path / "run", device="cpu",
                verbose=False)
    assert len(res.history) == 1 and torch.isfinite(torch.tensor(res.history[0]["train/loss"]))
    assert (tmp_path / "run" / "last.pt").is_file()
