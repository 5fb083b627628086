"""The shipped sample corpus: every replay wins on its last input; manifest is consistent."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest

from torchrl_bc.levels.corpus import SAMPLE_CORPUS, check_replay_wins, load_manifest, make_corpus
from torchrl_bc.levels.generator import FAMILIES
from torchrl_bc.replay.format import read_replay

ROOT = Path(__file__).resolve().parents[1]


def test_sample_corpus_manifest() -> None:
    man = load_manifest()
    levels = man["levels"]
    assert len(levels) >= 60
    assert set(Counter(e["family"] for e in levels)) == set(FAMILIES)
    assert {e["split"] for e in levels} == {"train", "val"}
    assert all(e["seed"] < 1_000_000 for e in levels)
    for e in levels:
        replay = read_replay(SAMPLE_CORPUS / e["file"])
        assert hashlib.sha256(replay.map_data).hexdigest() == e["content_hash"]
        assert replay.n_ticks == e["n_ticks"] and replay.success


def test_every_shipped_replay_wins_on_its_last_input() -> None:
    files = sorted(SAMPLE_CORPUS.glob("*.replay"))
    assert len(files) >= 60
    bad = [(f.name, why) for f in files for ok, why in [check_replay_wins(f)] if not ok]
    assert not bad, bad


def test_shipped_corpus_size_is_small() -> None:
    total = sum(f.stat().st_size for f in SAMPLE_CORPUS.iterdir())
    assert total < 600_000


def test_make_corpus_is_reproducible(tmp_path) -> None:
    a = make_corpus(tmp_path / "a", 2, seed=0, progress=False)
    b = make_corpus(tmp_path / "b", 2, seed=0, progress=False)
    assert [e.replay_hash for e in a] == [e.replay_hash for e in b]
    man = load_manifest()
    shipped = {e["seed"]: e["replay_hash"] for e in man["levels"]}
    if man["style"] == "human" and man["seed"] == 0:
        assert [e.replay_hash for e in a] == [shipped[0], shipped[1]]
    for e in a:
        assert (tmp_path / "a" / e.file).read_bytes() == (tmp_path / "b" / e.file).read_bytes()


def test_make_corpus_cycles_over_the_families_it_is_given(tmp_path) -> None:
    made = make_corpus(tmp_path / "c", 3, seed=0, progress=False,
                       families=("platforms", "corridor"))
    assert [(e.family, e.seed) for e in made] == [("platforms", 0), ("corridor", 1),
                                                  ("platforms", 2)]
    assert load_manifest(tmp_path / "c")["families"] == ["platforms", "corridor"]
    assert all(check_replay_wins(tmp_path / "c" / e.file)[0] for e in made)
    for bad in (("maze",), (), ("corridor", "corridor")):  # a suite's, none, twice
        with pytest.raises(ValueError, match="corpus families"):
            make_corpus(tmp_path / "d", 1, seed=0, progress=False, families=bad)


def test_make_corpus_refuses_held_out_seeds(tmp_path) -> None:
    with pytest.raises(ValueError, match="held out"):
        make_corpus(tmp_path, 1, seed=1_000_000, progress=False)


def test_training_generates_its_levels_where_the_config_says(tmp_path, monkeypatch) -> None:
    """``data.generated`` levels are solved by the run's planner executor (``dagger.*``), made
    once into the data cache and added to the replay dirs."""
    import torchrl_bc.levels.corpus as corpus_mod
    from torchrl_bc.train.config import load_config, with_values
    from torchrl_bc.train.pipeline import with_generated_levels

    seen: list[dict] = []
    real = corpus_mod.make_corpus

    def spy(*args, **kw):
        seen.append(kw)
        return real(*args, **kw)

    monkeypatch.setattr(corpus_mod, "make_corpus", spy)
    cfg = with_values(load_config(ROOT / "configs" / "tiny.yaml"),
                      {"data.generated": 2, "data.cache_dir": str(tmp_path / "cache"),
                       "dagger.workers": 2})
    out = with_generated_levels(cfg, tmp_path / "run", verbose=False)
    made = tmp_path / "cache" / "generated-2-0"
    assert out.data.replays == (*cfg.data.replays, str(made))
    assert [(k["workers"], k["executor"]) for k in seen] == [(2, "local")]
    reference = make_corpus(tmp_path / "ref", 2, seed=0, progress=False)  # one process
    assert [e["replay_hash"] for e in load_manifest(made)["levels"]] == \
        [e.replay_hash for e in reference]
    with_generated_levels(cfg, tmp_path / "run", verbose=False)  # cached: not made again
    assert len(seen) == 1
    # other families: a folder of their own, made once, the default's left as it was
    other = with_values(cfg, {"data.generated_families": ("corridor", "platforms")})
    out = with_generated_levels(other, tmp_path / "run", verbose=False)
    made2 = Path(out.data.replays[-1])
    assert made2.parent == made.parent and made2.name.startswith("generated-2-0-f")
    assert [e["family"] for e in load_manifest(made2)["levels"]] == ["corridor", "platforms"]
    assert seen[-1]["families"] == ("corridor", "platforms") and len(seen) == 2
    with_generated_levels(other, tmp_path / "run", verbose=False)
    assert len(seen) == 2
