"""Atomic writes: whole files or none, with the permissions a plain ``open`` would give."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from torchrl_bc.io import atomic_write, atomic_write_bytes, make_temp_dir


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_file_gets_the_mode_open_gives(tmp_path: Path) -> None:
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"x")
    atomic_write_bytes(tmp_path / "atomic.bin", b"x")
    assert _mode(tmp_path / "atomic.bin") == _mode(plain)


def test_replacing_a_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    path.chmod(0o640)
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new"
    assert _mode(path) == 0o640


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def boom(fh) -> None:
        fh.write(b"half")
        raise RuntimeError("killed midway")

    with pytest.raises(RuntimeError, match="midway"):
        atomic_write(path, boom)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_a_temp_dir_gets_the_mode_mkdir_gives(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    made = make_temp_dir(".tmp-", tmp_path)
    assert made.parent == tmp_path and made.name.startswith(".tmp-") and not any(made.iterdir())
    assert _mode(made) == _mode(plain)
