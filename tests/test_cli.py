"""The CLI parses, documents itself and handles bad replays without dying."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from torchrl_bc.cli import COMMANDS, build_parser, main
from torchrl_bc.replay.format import MIN_MAP_LEN, write_replay
from torchrl_bc.replay.trace import Trace, save_trace


def test_top_level_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out


@pytest.mark.parametrize("command", COMMANDS)
def test_subcommand_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: torchrl-bc " + command in capsys.readouterr().out


def test_module_entry_point_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "torchrl_bc.cli", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "trace" in proc.stdout


def test_missing_command_is_an_error() -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([])
    assert exc.value.code == 2


def test_trace_reports_and_skips_bad_replays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.replay"
    bad.write_bytes(b"\x01\x00")
    empty = tmp_path / "empty.replay"
    empty.write_bytes(b"")
    code = main(["trace", str(bad), str(empty), "--out-dir", str(tmp_path / "out")])
    assert code == 1
    err = capsys.readouterr().err
    assert "bad.replay" in err and "truncated header" in err
    assert "empty.replay" in err and "empty file" in err
    assert not (tmp_path / "out" / "bad.npz").exists()


def test_verify_reports_errors_and_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    replays, golden = tmp_path / "replays", tmp_path / "golden"
    replays.mkdir()
    (replays / "broken.replay").write_bytes(b"\x00" * 3)
    (replays / "nogold.replay").write_bytes(b"")
    z = np.zeros((1, 2))
    save_trace(Trace(z, z, np.zeros(1, np.int8), -1, -1), golden / "broken.npz")
    code = main(["verify", str(replays), "--golden", str(golden)])
    out = capsys.readouterr().out
    assert code == 1
    assert "ERROR broken: truncated header" in out
    assert "verified: 0 exact, 0 differ, 1 errors" in out


def test_verify_with_no_pairs_fails(tmp_path: Path) -> None:
    write_replay(tmp_path / "a.replay", bytes(MIN_MAP_LEN), [0])
    assert main(["verify", str(tmp_path), "--golden", str(tmp_path / "none")]) == 2
