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


def test_trail_draws_both_paths_and_refuses_another_level(tmp_path: Path, capsys) -> None:
    """--trail alone writes a PNG of the path (no video needed); --against adds a second
    replay of the same level in its own colour, and a replay of another level is one line."""
    from torchrl_bc.commands.render import AGAINST_RGB, TRAIL_RGB
    from torchrl_bc.replay.format import read_replay, write_replay
    from torchrl_bc.resources import SAMPLE_CORPUS

    first, other_level = sorted(SAMPLE_CORPUS.glob("*.replay"))[:2]
    rep = read_replay(first)
    right = write_replay(tmp_path / "right.replay", rep.map_data, [2] * 60, False)  # runs right
    png = tmp_path / "trail.png"
    assert main(["render", str(first), "--trail", str(png), "--against", str(right)]) == 0
    img = np.asarray(Image.open(png).convert("RGB"))
    assert img.shape == (300, 528, 3)
    colours = {tuple(c) for c in img.reshape(-1, 3)}
    assert TRAIL_RGB in colours and AGAINST_RGB in colours
    assert (img == TRAIL_RGB).all(axis=-1).sum() > (img == AGAINST_RGB).all(axis=-1).sum()
    assert not list(tmp_path.glob("*.gif"))
    capsys.readouterr()
    assert main(["render", str(first), "--trail", str(png), "--against", str(other_level)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a replay of the same level" in err[0]
    assert other_level.name in err[0]
    assert main(["render", str(first)]) == 2
    assert main(["render", str(first), "--out", str(tmp_path / "a.gif"), "--against",
                 str(right)]) == 2
