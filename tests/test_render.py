"""``torchrl-bc render`` writes a GIF and a legible PNG frame of a replay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from torchrl_bc.cli import main


def test_render_gif_and_png(shared_data: Path, tmp_path: Path) -> None:
    replay = sorted((shared_data / "replays").glob("*very_simple*.replay"))[0]
    gif, png = tmp_path / "out.gif", tmp_path / "frame.png"
    assert main(["render", str(replay), "--out", str(gif), "--png", str(png), "--obs"]) == 0
    with Image.open(gif) as im:
        assert im.n_frames > 2
    frame = np.asarray(Image.open(png).convert("RGB"))
    assert frame.shape[0] >= 300 and frame.shape[1] >= 528
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) >= 4
    assert main(["render", str(replay), "--out", str(tmp_path / "x.avi")]) == 2
