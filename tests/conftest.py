"""Shared fixtures. Reference data lives outside the repo (../shared/data), never copied in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = (Path(__file__).parents[1] / ".." / "shared" / "data").resolve()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``cuda`` are skipped, with the reason, where torch sees no CUDA device."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if item.get_closest_marker("cuda"):
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def sb3_logs_in_tmp(tmp_path_factory: pytest.TempPathFactory):
    """A plain SB3 ``learn()`` logs to ``$SB3_LOGDIR``, else to a new ``SB3-<date>`` folder in
    the system temp dir; tests that train plain ``PPO`` keep theirs in pytest's own."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SB3_LOGDIR", str(tmp_path_factory.mktemp("sb3_logs")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; skip when absent locally, but fail under CI, which has it."""
    if not SHARED_DATA.is_dir():
        reason = f"reference data not found at {SHARED_DATA}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so the data must be present)")
        pytest.skip(reason)
    return SHARED_DATA


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads and suffer badly when the CPU is shared; modules
    opt in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def exact_float32():
    """Full float32 matmuls and convolutions (no TF32) on CUDA, so a CUDA result can be held to
    the CPU's within float32 rounding; restored afterwards."""
    import torch

    matmul, conv = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("highest")
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.set_float32_matmul_precision(matmul)
    torch.backends.cudnn.allow_tf32 = conv
