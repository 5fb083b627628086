"""``data.change_weight``: the steps either side of each label change weigh more in the loss."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from configkit import tiny_config

from torchrl_bc.resources import SAMPLE_CORPUS
from torchrl_bc.train import ConfigError, load_config

LEVELS = ("corridor-0", "switch_first-5", "gaps-1")


def _config(tmp_path: Path, change_weight: float, rounds: int = 0):
    levels = tmp_path / "levels"
    levels.mkdir(exist_ok=True)
    for name in LEVELS:
        (levels / f"{name}.replay").write_bytes((SAMPLE_CORPUS / f"{name}.replay").read_bytes())
    return tiny_config(tmp_path, [levels], rounds=rounds, change_weight=change_weight)


def test_both_sides_of_each_label_change_carry_the_weight(tmp_path: Path) -> None:
    from torchrl_bc.train.factories import make_dataset

    data = make_dataset(_config(tmp_path, 4.0), tmp_path / "run", verbose=False)
    action = data.steps["action"].numpy()
    episode = data.steps["episode"].numpy()
    want = np.zeros(action.shape[0], bool)
    for i in range(1, action.shape[0]):  # by hand: a change inside one episode
        if episode[i] == episode[i - 1] and action[i] != action[i - 1]:
            want[i - 1] = want[i] = True
    assert want.any() and not want.all()
    np.testing.assert_array_equal(data.label_changes().numpy(), want)
    rows = torch.arange(action.shape[0])
    batch = data.gather(rows, keys=data.keys)
    np.testing.assert_array_equal(batch["sample_weight"].numpy(), np.where(want, 4.0, 1.0))
    # The default (1) leaves batches without weights: plain BC, bit for bit as before.
    (tmp_path / "p").mkdir()
    plain = make_dataset(_config(tmp_path / "p", 1.0), tmp_path / "run2", verbose=False)
    assert "sample_weight" not in plain.gather(rows[:8], keys=plain.keys).keys()


def test_change_weight_is_checked(tmp_path: Path) -> None:
    cfg = _config(tmp_path, 2.0)
    with pytest.raises(ConfigError, match=r"data\.change_weight must be >= 0"):
        dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, change_weight=-1.0))
    with pytest.raises(ConfigError, match=r"data\.change_weight must be a number"):
        load_config(raw={"architecture": {"preset": "mlp"}, "data": {"change_weight": "x"}})


def test_dagger_mixes_weighted_demos_with_labels_of_weight_1(tmp_path: Path,
                                                            monkeypatch) -> None:
    """The demos keep their weights in DAgger's mixed batches; the planner's labels weigh 1."""
    import json

    from torchrl_bc.train import pretrain
    from torchrl_bc.train.loss import MaskedBCLoss

    seen: list[torch.Tensor] = []
    forward = MaskedBCLoss.forward

    def spy(self, td):
        seen.append(td.get("sample_weight").clone())
        return forward(self, td)

    monkeypatch.setattr(MaskedBCLoss, "forward", spy)
    torch.manual_seed(0)
    cfg = _config(tmp_path, 3.0, rounds=1)
    pretrain(cfg, tmp_path / "run", verbose=False)
    rounds = json.loads((tmp_path / "run" / "dagger.json").read_text())
    assert rounds[0]["labels"] > 0
    mixed = seen[-cfg.dagger.steps:]  # the round's retraining steps, after BC's
    n_agg = round(cfg.train.batch_size * cfg.dagger.mix)
    assert all(w.shape == (cfg.train.batch_size,) for w in mixed)
    assert all(bool((w[:n_agg] == 1).all()) for w in mixed)
    assert set(torch.cat([w[n_agg:] for w in seen]).unique().tolist()) == {1.0, 3.0}
