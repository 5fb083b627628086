"""Fast unit tests of the training pieces: config loading, loss, metrics, schedule, levels."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

from torchrl_bc.levels.corpus import SAMPLE_CORPUS
from torchrl_bc.train.config import ConfigError, apply_overrides, config_diff, load_config
from torchrl_bc.train.evaluate import discover_levels
from torchrl_bc.train.factories import lr_lambda
from torchrl_bc.train.loss import MaskedBCLoss
from torchrl_bc.train.metrics import (
    ValAccumulator,
    class_weights,
    frequency_baseline_nll,
)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name", ["tiny", "mlp", "cnn", "gat", "hgt"])
def test_shipped_configs_load_and_round_trip(name):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    assert cfg.architecture.name == name
    again = load_config(raw=cfg.to_dict())
    assert again == cfg and config_diff(cfg.to_dict(), again.to_dict()) == []


def test_overrides_are_dotted_and_yaml_typed():
    cfg = load_config(CONFIGS / "tiny.yaml", ["train.lr=2e-3", "data.mirror=false",
                                              "architecture.graph_layers=2",
                                              "train.early_stop.patience=3",
                                              "data.replays=[a, b]"])
    assert cfg.train.lr == 2e-3 and cfg.data.mirror is False
    assert cfg.architecture.graph_layers == 2 and cfg.architecture.name == "tiny"
    assert cfg.train.early_stop.patience == 3 and cfg.data.replays == ("a", "b")
    assert apply_overrides({"a": {"b": 1}}, ["a.c=x"]) == {"a": {"b": 1, "c": "x"}}


@pytest.mark.parametrize("override, key", [
    ("train.lrr=1", "train.lrr"),
    ("train.epochs=abc", "train.epochs"),
    ("data.mirror=3", "data.mirror"),
    ("bogus=1", "bogus"),
    ("architecture.graph_heads=0", "graph_heads"),
    ("observation.modalities=[game_state]", "observation.modalities"),
    ("logging.wandb=cloud", "logging.wandb"),
    ("train.early_stop.mode=up", "train.early_stop.mode must be auto|max|min, got 'up'"),
    ("dagger.mix=-0.5", "dagger.mix must be in [0, 1], got -0.5"),
])
def test_bad_keys_and_values_are_named(override, key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        load_config(CONFIGS / "tiny.yaml", [override])


def _logits_actor():
    """A ``ProbabilisticActor(MaskedCategorical)`` whose logits are the batch's ``"x"``."""
    from tensordict.nn import TensorDictModule
    from torchrl.modules import MaskedCategorical, ProbabilisticActor

    return ProbabilisticActor(TensorDictModule(torch.nn.Identity(), in_keys=["x"],
                                               out_keys=["logits"]),
                              in_keys={"logits": "logits", "mask": "action_mask"},
                              distribution_class=MaskedCategorical, return_log_prob=True)


def test_masked_bc_loss_is_masked_nll_with_options():
    from tensordict import TensorDict

    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 5.0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    td = TensorDict(x=logits, action_mask=mask, expert_action=torch.tensor([0, 1]),
                    batch_size=[2])
    actor = _logits_actor()
    out = MaskedBCLoss(actor)(td.clone())
    ref = -(torch.log_softmax(logits[0], 0)[0] + torch.log_softmax(logits[1, :2], 0)[1]) / 2
    assert torch.allclose(out["loss_bc"], ref) and torch.allclose(out["nll"], ref)
    assert "loss_entropy" not in out.keys()
    assert out["accuracy"] == 0.5  # row 0 argmax 0 = expert; row 1: 5.0 is masked, tie -> 0
    smooth = MaskedBCLoss(actor, label_smoothing=0.1)(td.clone())
    assert smooth["loss_bc"] > out["loss_bc"]  # mass on non-expert legal actions costs extra
    bonus = MaskedBCLoss(actor, entropy_coef=0.5)(td.clone())
    assert torch.allclose(bonus["loss_bc"] + bonus["loss_entropy"],
                          out["loss_bc"] - 0.5 * out["entropy"])
    w = torch.tensor([1.0, 3.0, 1.0])
    weighted = MaskedBCLoss(actor, class_weights=w)(td.clone())
    per = torch.stack([-torch.log_softmax(logits[0], 0)[0],
                       -torch.log_softmax(logits[1, :2], 0)[1]])
    assert torch.allclose(weighted["loss_bc"], (per * torch.tensor([1.0, 3.0])).sum() / 4)
    # A batch's sample_weight (data.change_weight) weights the NLL too, times class weights.
    td_w = td.clone().set("sample_weight", torch.tensor([5.0, 1.0]))
    sample = MaskedBCLoss(actor)(td_w.clone())
    assert torch.allclose(sample["loss_bc"], (per * torch.tensor([5.0, 1.0])).sum() / 6)
    assert torch.allclose(sample["nll"], out["nll"])  # the logged NLL stays unweighted
    both = MaskedBCLoss(actor, class_weights=w)(td_w.clone())
    assert torch.allclose(both["loss_bc"], (per * torch.tensor([5.0, 3.0])).sum() / 8)
    ent = -(torch.softmax(logits[1, :2], 0) * torch.log_softmax(logits[1, :2], 0)).sum()
    ent0 = -(torch.softmax(logits[0], 0) * torch.log_softmax(logits[0], 0)).sum()
    assert torch.allclose(out["entropy"], (ent + ent0) / 2)


def test_class_weights_and_baseline():
    w = class_weights(torch.tensor([10.0, 30.0, 0.0]))
    assert w[2] == 0 and math.isclose(float(w[0]) / float(w[1]), 3.0, rel_tol=1e-6)
    base = frequency_baseline_nll(torch.tensor([1.0, 1.0]), torch.tensor([5.0, 5.0]))
    assert math.isclose(base, math.log(2), rel_tol=1e-6)


def test_val_accumulator_confusion_and_per_action_metrics():
    acc = ValAccumulator(n_actions=3)
    logits = torch.tensor([[5.0, 0, 0], [5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0]])
    from torchrl.modules import MaskedCategorical

    acc.add(MaskedCategorical(logits=logits, mask=torch.ones(4, 3, dtype=torch.bool)),
            torch.tensor([0, 1, 1, 2]))
    m = acc.result("val/")
    assert acc.confusion.tolist() == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert m["val/accuracy"] == 0.75
    assert m["val/precision/NOOP"] == 0.5 and m["val/recall/LEFT"] == 0.5
    assert m["val/nll"] > 0 and m["val/entropy"] > 0


def test_lr_schedule_warmup_then_cosine():
    f = lr_lambda(warmup=10, total=110, min_ratio=0.1)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(60) == pytest.approx(0.55)
    assert f(110) == pytest.approx(0.1) and f(500) == pytest.approx(0.1)


def test_discover_levels_counts_each_level_once(tmp_path):
    replays = sorted(SAMPLE_CORPUS.glob("*.replay"))[:3]
    from torchrl_bc.replay.format import read_replay

    for p in replays:
        (tmp_path / "a").mkdir(exist_ok=True)
        (tmp_path / "a" / p.name).write_bytes(p.read_bytes())
        (tmp_path / f"{p.stem}.map").write_bytes(read_replay(p).map_data)
    levels = discover_levels(str(tmp_path))
    assert len(levels) == 3
    assert all(lv.demo_ticks == read_replay(tmp_path / "a" / f"{lv.name}.replay").n_ticks
               or lv.demo_ticks > 0 for lv in levels)
    with pytest.raises(FileNotFoundError):
        discover_levels(str(tmp_path / "nope"))


def test_with_values_sets_typed_fields_and_revalidates():
    from torchrl_bc.train.config import with_values

    cfg = load_config(CONFIGS / "tiny.yaml")
    new = with_values(cfg, {"train.epochs": 5, "data.replays": ["a", "b"],
                            "train.early_stop.patience": 3, "logging.wandb": "disabled"})
    assert (new.train.epochs, new.data.replays, new.train.early_stop.patience,
            new.logging.wandb) == (5, ("a", "b"), 3, "disabled")
    assert cfg.train.epochs == 2 and new.architecture == cfg.architecture
    with pytest.raises(ConfigError, match=re.escape("unknown config key 'train.epoch'")):
        with_values(cfg, {"train.epoch": 1})
    with pytest.raises(ConfigError, match=re.escape("train.epochs must be >= 1")):
        with_values(cfg, {"train.epochs": 0})
    with pytest.raises(ConfigError, match=re.escape("train.seed must be an integer")):
        with_values(cfg, {"train.seed": "3"})  # typed values: a string is not re-read as YAML
