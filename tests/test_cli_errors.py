"""Every misuse of the command line, a config or a checkpoint ends in one line, never a traceback.

Path misuse (missing, empty, a file for a folder) is an argparse error: usage line, ``error:``,
exit 2. Bad file contents (a truncated or foreign checkpoint, bad YAML, a non-physical value)
are one ``error:`` line naming the file or key, and a non-zero exit.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest
import torch

from torchrl_bc.cli import main as cli
from torchrl_bc.levels.corpus import SAMPLE_CORPUS
from torchrl_bc.train.checkpoint import FORMAT, CheckpointMismatch, load_checkpoint, load_policy
from torchrl_bc.train.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny.yaml"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train_bc = _script("train_bc")


def _one_line_error(err: str, *needles: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "error:" in lines[0] and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def _usage_error(capsys, exc: pytest.ExceptionInfo, *needles: str) -> None:
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage:") and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert "error:" in last
    for needle in needles:
        assert needle in last, (needle, last)


@pytest.fixture(scope="module")
def fake_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained but well-formed BC checkpoint of the tiny config (no training needed)."""
    from torchrl_bc.models import ObsSpec
    from torchrl_bc.train.factories import make_actor

    cfg = load_config(TINY, ["logging.wandb=disabled"])
    actor = make_actor(cfg)
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    torch.save({"format": FORMAT, "model": actor.state_dict(), "epoch": 1,
                "config": cfg.to_dict(), "obs_signature": cfg.observation.signature(),
                "obs_spec": ObsSpec.from_observation_config(cfg.observation).to_dict(),
                "frame_skip": cfg.observation.frame_skip, "manifest_hash": "x",
                "versions": {}, "history": [], "best_score": None, "bad_evals": 0,
                "metric": "val/nll"}, path)
    return path


@pytest.fixture()
def truncated(fake_ckpt: Path, tmp_path: Path) -> Path:
    path = tmp_path / "truncated.pt"
    path.write_bytes(fake_ckpt.read_bytes()[:700])
    return path


@pytest.fixture()
def levels(tmp_path: Path) -> Path:
    out = tmp_path / "levels"
    out.mkdir()
    shutil.copy(sorted(SAMPLE_CORPUS.glob("*.replay"))[0], out)
    return out


# -- checkpoints ------------------------------------------------------------------------------
def test_fake_checkpoint_loads(fake_ckpt: Path) -> None:
    """The fixture is a valid checkpoint, so the refusals below are about the defect alone."""
    _, cfg, ckpt = load_policy(fake_ckpt)
    assert cfg.architecture.name == "tiny" and ckpt["epoch"] == 1


@pytest.mark.parametrize("command", ["evaluate", "export", "warmup-critic"])
def test_truncated_checkpoint_is_one_line(command, truncated, levels, tmp_path, capsys) -> None:
    extra = {"evaluate": ["--levels", str(levels)],
             "export": ["--out", str(tmp_path / "x.pt")],
             "warmup-critic": ["--levels", str(levels), "--out", str(tmp_path / "x.pt")]}
    assert cli([command, str(truncated), *extra[command]]) == 1
    _one_line_error(capsys.readouterr().err, str(truncated), "unreadable")
    assert not (tmp_path / "x.pt").exists()


def test_wrong_kind_of_file(tmp_path, levels, capsys) -> None:
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    assert cli(["evaluate", str(tensor), "--levels", str(levels)]) == 1
    _one_line_error(capsys.readouterr().err, "not a torchrl_bc BC checkpoint", "Tensor")
    other = tmp_path / "other.pt"
    torch.save({"format": "something/9"}, other)
    assert cli(["export", str(other), "--out", str(tmp_path / "e.pt")]) == 1
    _one_line_error(capsys.readouterr().err, "something/9")
    lacking = tmp_path / "lacking.pt"
    torch.save({"format": FORMAT, "model": {}}, lacking)
    with pytest.raises(CheckpointMismatch, match=r"lacks key\(s\) \['epoch', 'config'"):
        load_checkpoint(lacking)


def test_an_export_is_not_a_bc_checkpoint(fake_ckpt, tmp_path, levels, capsys) -> None:
    export = tmp_path / "export.pt"
    assert cli(["export", str(fake_ckpt), "--out", str(export)]) == 0
    capsys.readouterr()
    assert cli(["evaluate", str(export), "--levels", str(levels)]) == 1
    _one_line_error(capsys.readouterr().err, "torchrl_bc.sb3_export/1")
    # warmup-critic takes either; a truncated export is one line too
    bad = tmp_path / "bad_export.pt"
    bad.write_bytes(export.read_bytes()[:-100])
    assert cli(["warmup-critic", str(bad), "--levels", str(levels)]) == 1
    _one_line_error(capsys.readouterr().err, "unreadable")


def test_mismatched_weights_and_config(fake_ckpt, tmp_path, levels, capsys) -> None:
    ckpt = torch.load(fake_ckpt, weights_only=True)
    ckpt["config"]["architecture"]["state_dim"] = 12  # weights were made for 8
    wrong = tmp_path / "wrong.pt"
    torch.save(ckpt, wrong)
    assert cli(["evaluate", str(wrong), "--levels", str(levels)]) == 1
    _one_line_error(capsys.readouterr().err, "do not fit", "tiny")
    ckpt = torch.load(fake_ckpt, weights_only=True)
    ckpt["obs_signature"]["frame_skip"] = 99
    sig = tmp_path / "sig.pt"
    torch.save(ckpt, sig)
    assert cli(["export", str(sig), "--out", str(tmp_path / "e.pt")]) == 1
    _one_line_error(capsys.readouterr().err, "frame_skip")
    ckpt = torch.load(fake_ckpt, weights_only=True)
    ckpt["config"]["train"]["no_such_key"] = 1
    unknown = tmp_path / "unknown.pt"
    torch.save(ckpt, unknown)
    assert cli(["evaluate", str(unknown), "--levels", str(levels)]) == 1
    _one_line_error(capsys.readouterr().err, "train.no_such_key")


# -- paths: argparse errors -------------------------------------------------------------------
def test_evaluate_path_misuse(fake_ckpt, tmp_path, levels, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        cli(["evaluate", str(tmp_path / "nope.pt"), "--levels", str(levels)])
    _usage_error(capsys, exc, "nope.pt", "does not exist")
    with pytest.raises(SystemExit) as exc:
        cli(["evaluate", str(tmp_path), "--levels", str(levels)])
    _usage_error(capsys, exc, "is a directory")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit) as exc:
        cli(["evaluate", str(fake_ckpt), "--levels", str(empty)])
    _usage_error(capsys, exc, str(empty), "no *.map or *.replay")
    with pytest.raises(SystemExit) as exc:
        cli(["evaluate", str(fake_ckpt), "--levels", str(tmp_path / "typo")])
    _usage_error(capsys, exc, "typo", "neither an existing directory nor a suite")
    with pytest.raises(SystemExit) as exc:
        cli(["evaluate", str(fake_ckpt), "--levels", str(fake_ckpt)])
    _usage_error(capsys, exc, "is a file")
    with pytest.raises(SystemExit) as exc:
        cli(["evaluate", str(fake_ckpt), "--levels", str(levels), "--episodes", "0"])
    _usage_error(capsys, exc, "--episodes", ">= 1")
    with pytest.raises(SystemExit) as exc:
        cli(["evaluate", str(fake_ckpt), "--levels", str(levels), "--save-replays",
             str(fake_ckpt)])
    _usage_error(capsys, exc, "--save-replays", "is a file, not a directory")
    with pytest.raises(SystemExit) as exc:
        cli(["evaluate", str(fake_ckpt), "--levels", "suite:nope"])
    _usage_error(capsys, exc, "suite:nope", "no such suite")


def test_levels_take_a_suite_by_name_or_with_the_suite_prefix(tmp_path, monkeypatch) -> None:
    from torchrl_bc.commands import levels_spec

    monkeypatch.chdir(tmp_path)
    assert levels_spec("suite:medium") == "suite:medium"
    assert levels_spec("medium") == "medium"  # no such path here: the suite


def test_export_and_warmup_path_misuse(fake_ckpt, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        cli(["export", str(fake_ckpt), "--out", str(tmp_path)])
    _usage_error(capsys, exc, "is a directory")
    with pytest.raises(SystemExit) as exc:
        cli(["export", str(fake_ckpt), "--out", str(tmp_path / "no" / "dir" / "x.pt")])
    _usage_error(capsys, exc, "does not exist")
    with pytest.raises(SystemExit) as exc:
        cli(["warmup-critic", str(fake_ckpt), "--gamma", "nan"])
    _usage_error(capsys, exc, "--gamma")
    with pytest.raises(SystemExit) as exc:
        cli(["warmup-critic", str(fake_ckpt), "--lr", "0"])
    _usage_error(capsys, exc, "--lr")
    assert cli(["warmup-critic", str(fake_ckpt)]) == 2  # a BC checkpoint needs --out
    _one_line_error(capsys.readouterr().err, "--out is required")


# -- train_bc.py ------------------------------------------------------------------------------
@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    out = tmp_path / "corpus"
    out.mkdir()
    shutil.copy(sorted(SAMPLE_CORPUS.glob("*.replay"))[0], out)
    return out


def _train(capsys, *args: str) -> pytest.ExceptionInfo:
    with pytest.raises(SystemExit) as exc:
        train_bc.main(list(args))
    return exc


def test_train_bc_data_misuse(corpus, tmp_path, capsys) -> None:
    cfg = ["--config", str(TINY), "--out", str(tmp_path / "run")]
    _usage_error(capsys, _train(capsys, *cfg, "--data", str(tmp_path / "typo")),
                 "typo", "does not exist")
    # a good folder does not excuse a bad one beside it
    _usage_error(capsys, _train(capsys, *cfg, "--data", str(corpus), str(tmp_path / "typo2")),
                 "typo2")
    empty = tmp_path / "empty"
    empty.mkdir()
    _usage_error(capsys, _train(capsys, *cfg, "--data", str(empty)), "holds no *.replay")
    note = tmp_path / "notes.txt"
    note.write_text("x")
    _usage_error(capsys, _train(capsys, *cfg, "--data", str(note)), "is a file")
    _usage_error(capsys, _train(capsys, *cfg, "--override", f"data.replays=[{str(empty)!r}]"),
                 "data.replays", "holds no *.replay")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("args", "needles"), [
    (["--epochs", "0"], ["--epochs", ">= 1"]),
    (["--epochs", "two"], ["--epochs"]),
    (["--override", "train.lr=0"], ["train.lr", "> 0"]),
    (["--override", "train.lr=-1e-3"], ["train.lr"]),
    (["--override", "train.lr=.nan"], ["train.lr", "finite"]),
    (["--override", "train.weight_decay=.inf"], ["train.weight_decay", "finite"]),
    (["--override", "train.early_stop.metric=val/sucess"], ["train.early_stop.metric",
                                                            "val/sucess"]),
    (["--override", "train.lr=[1, 2"], ["train.lr", "not valid YAML"]),
    (["--override", "train.lrr=1e-3"], ["train.lrr"]),
    (["--override", "eval.max_ticks=0"], ["eval.max_ticks"]),
])
def test_train_bc_bad_values(args, needles, corpus, tmp_path, capsys) -> None:
    exc = _train(capsys, "--config", str(TINY), "--data", str(corpus), "--out",
                 str(tmp_path / "run"), *args)
    _usage_error(capsys, exc, *needles)


def test_train_bc_bad_config_files(corpus, tmp_path, capsys) -> None:
    base = ["--data", str(corpus), "--out", str(tmp_path / "run")]
    _usage_error(capsys, _train(capsys, "--config", str(tmp_path / "no.yaml"), *base),
                 "no.yaml", "does not exist")
    bad = tmp_path / "bad.yaml"
    bad.write_text("architecture: tiny\ntrain: {lr: 1e-3\n")
    _usage_error(capsys, _train(capsys, "--config", str(bad), *base), "bad.yaml",
                 "not valid YAML", "line")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("architecture: tiny  # caf\xe9\n".encode("latin-1"))
    _usage_error(capsys, _train(capsys, "--config", str(latin), *base), "latin.yaml",
                 "not UTF-8")
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    _usage_error(capsys, _train(capsys, "--config", str(listy), *base), "mapping")


def test_train_bc_refuses_to_replace_a_run(corpus, fake_ckpt, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(fake_ckpt, out / "best.pt")
    exc = _train(capsys, "--config", str(TINY), "--data", str(corpus), "--out", str(out))
    _usage_error(capsys, exc, "already holds a run", "--resume", "--overwrite")
    assert (out / "best.pt").read_bytes() == fake_ckpt.read_bytes()  # untouched
    _usage_error(capsys, _train(capsys, "--config", str(TINY), "--resume", "--overwrite"),
                 "not allowed with")
    (out / "last.pt").write_bytes(b"PK\x03\x04 not really")
    rc = train_bc.main(["--config", str(TINY), "--data", str(corpus), "--out", str(out),
                        "--resume"])
    assert rc == 1
    _one_line_error(capsys.readouterr().err, "--resume", "last.pt", "unreadable")
    afile = tmp_path / "afile"
    afile.write_text("x")
    _usage_error(capsys, _train(capsys, "--config", str(TINY), "--data", str(corpus), "--out",
                                str(afile)), "is a file")


# -- config loader ----------------------------------------------------------------------------
def test_config_errors_name_the_key(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"train\.epochs must be >= 1"):
        load_config(TINY, ["train.epochs=0"])
    with pytest.raises(ConfigError, match=r"train\.batch_size"):
        load_config(TINY, ["train.batch_size=0"])
    with pytest.raises(ConfigError, match=r"data\.val_fraction must be a finite"):
        load_config(TINY, ["data.val_fraction=.nan"])
    with pytest.raises(ConfigError, match=r"train\.early_stop\.metric 'train/closed_loop_succ"):
        load_config(TINY, ["train.early_stop.metric=train/closed_loop_success",
                           "eval.train_levels=0"])
    assert load_config(TINY, ["train.early_stop.metric=val/recall/JUMP"]) is not None
    with pytest.raises(ConfigError, match=r"data\.generated_families: .*'maze'"):
        load_config(TINY, ["data.generated_families=[corridor, maze]"])  # a suite family
    assert load_config(TINY, ["data.generated_families=[platforms]"]).data.generated_families \
        == ("platforms",)
    with pytest.raises(ConfigError, match=r"override 'train\.lr' is not key=value"):
        load_config(TINY, ["train.lr"])
    # every message is one line
    for overrides in (["train.lr=[1"], ["train.lr=0"], ["nope.x=1"]):
        with pytest.raises(ConfigError) as info:
            load_config(TINY, overrides)
        assert "\n" not in str(info.value)


def test_cli_entry_point_has_no_traceback(truncated, levels) -> None:
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "torchrl_bc.cli", "evaluate", str(truncated),
                           "--levels", str(levels)], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    assert proc.returncode == 1
    _one_line_error(proc.stderr, "unreadable")


def test_make_corpus_families_are_checked_before_any_work(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        cli(["make-corpus", "--levels", "1", "--out", str(tmp_path / "c"),
             "--families", "corridor,maze"])
    _usage_error(capsys, exc, "--families", "'maze'", "suite-only families stay out")
    assert not (tmp_path / "c").exists()
