"""``torchrl-bc render``: a video of a replay for people to watch (and to check observations)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from torchrl_bc.io import text
from torchrl_bc.replay.format import ReplayFormatError, read_replay

HELP = "render a replay as a GIF or MP4 (and optionally one frame as PNG)"
DESCRIPTION = """\
Simulate REPLAY with its own inputs and draw the whole level every --every ticks, in colour
(tiles grey, entities coloured by class, the ninja black), using the same drawing code as the
observations. --png FILE saves one frame (--png-tick picks which; default the middle) for a quick
look. --obs adds the agent's view: the player frame and the global view side by side under the
level, so what the policy sees can be checked by eye. --trail FILE.png draws the ninja's whole
path over the level's first frame (magenta, a ring every second), and --against DEMO adds another
replay of the same level in green: where a policy's episode (`evaluate --save-replays`) left the
human's path shows at a glance. Give --out, --trail or both."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("replay", type=Path, metavar="REPLAY", help="replay file")
    parser.add_argument("--out", type=Path, default=None, help="output .gif or .mp4")
    parser.add_argument("--every", type=int, default=2, help="draw every N ticks (default 2)")
    parser.add_argument("--scale", type=int, default=2, choices=(1, 2, 3, 4, 6),
                        help="world pixels per image pixel (default 2: 528x300)")
    parser.add_argument("--fps", type=float, default=30.0, help="video frame rate")
    parser.add_argument("--png", type=Path, default=None, help="also save one frame as PNG")
    parser.add_argument("--png-tick", type=int, default=None, help="tick of the PNG frame")
    parser.add_argument("--obs", action="store_true", help="append the agent's observations")
    parser.add_argument("--trail", type=Path, default=None, metavar="PNG",
                        help="draw the ninja's path over the level as a PNG")
    parser.add_argument("--against", type=Path, default=None, metavar="REPLAY",
                        help="with --trail: also draw this replay of the same level (green)")


def _with_obs(level: np.ndarray, obs: dict[str, np.ndarray]) -> np.ndarray:
    """Stack the level image over the (grey, 2x enlarged) player frame and global view."""
    from torchrl_bc.obs.raster import PALETTE

    tiles = [np.kron(PALETTE[obs[k][0]], np.ones((2, 2, 1), np.uint8))
             for k in ("player_frame", "global_view") if k in obs]
    h = max(t.shape[0] for t in tiles)
    row = np.concatenate([np.pad(t, ((0, h - t.shape[0]), (0, 4), (0, 0)), constant_values=255)
                          for t in tiles], axis=1)
    width = max(level.shape[1], row.shape[1])
    pad = lambda im: np.pad(im, ((0, 0), (0, width - im.shape[1]), (0, 0)),  # noqa: E731
                            constant_values=255)
    return np.concatenate([pad(level), pad(row)], axis=0)


def render_replay(path: Path, every: int = 2, scale: int = 2,
                  with_obs: bool = False) -> tuple[list[np.ndarray], list[int]]:
    """RGB frames of a replay (one every ``every`` ticks, plus the last) and their ticks."""
    from torchrl_bc.obs import ObservationBuilder, ObservationConfig
    from torchrl_bc.sim import Simulator

    replay = read_replay(path)
    sim = Simulator(replay.map_data, source=str(path))
    builder = ObservationBuilder(ObservationConfig(modalities=("player_frame", "global_view")))
    builder.bind(sim)
    frames: list[np.ndarray] = []
    ticks: list[int] = []

    def grab() -> None:
        img = builder.render_rgb(sim, scale=scale)
        if with_obs:
            img = _with_obs(img, builder.observe(sim))
        frames.append(img)
        ticks.append(sim.frame)

    grab()
    for byte in replay.inputs.tolist():
        if sim.done:
            break
        sim.tick_input(byte)
        if sim.frame % every == 0 or sim.done:
            grab()
    if ticks[-1] != sim.frame:
        grab()
    return frames, ticks


#: Trail colours: the replay's path, and the --against replay's.
TRAIL_RGB, AGAINST_RGB = (220, 0, 200), (0, 150, 0)


def _draw_path(img: np.ndarray, pos: np.ndarray, scale: int, rgb: tuple[int, int, int]
               ) -> None:
    """Draw a path of world positions [T, 2] (one per tick) into ``img`` in place: a dot every
    half image pixel along each tick's segment, and a 3 px ring every 60 ticks (a second)."""
    h, w = img.shape[:2]
    p = np.asarray(pos, np.float64) / scale
    if len(p) > 1:
        steps = max(1, int(np.ceil(np.abs(np.diff(p, axis=0)).max() * 2)))
        t = np.linspace(0.0, 1.0, steps, endpoint=False)[None, :, None]
        p = (p[:-1, None] + t * np.diff(p, axis=0)[:, None]).reshape(-1, 2)
    xy = np.rint(p).astype(np.int64)
    ok = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    img[xy[ok, 1], xy[ok, 0]] = rgb
    ang = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    for x, y in np.asarray(pos, np.float64)[::60] / scale:
        rx, ry = np.rint(x + 3 * np.cos(ang)).astype(int), np.rint(y + 3 * np.sin(ang)).astype(int)
        keep = (rx >= 0) & (rx < w) & (ry >= 0) & (ry < h)
        img[ry[keep], rx[keep]] = rgb


def trail_image(path: Path, scale: int = 2, against: Path | None = None) -> np.ndarray:
    """The level's first frame with the ninja's path of ``path`` (and of ``against``, which must
    be a replay of the same level) drawn over it."""
    from torchrl_bc.obs import ObservationBuilder, ObservationConfig
    from torchrl_bc.sim import Simulator

    replay = read_replay(path)
    builder = ObservationBuilder(ObservationConfig(modalities=("global_view",)))
    img = builder.render_rgb(Simulator(replay.map_data, source=str(path)), scale=scale).copy()
    if against is not None:
        other = read_replay(against)
        if other.map_data != replay.map_data:
            raise ValueError(f"{against}: not a replay of the same level as {path}")
        trace = Simulator(other.map_data, source=str(against)).run_inputs(other.inputs)
        _draw_path(img, trace.pos, scale, AGAINST_RGB)
    trace = Simulator(replay.map_data, source=str(path)).run_inputs(replay.inputs)
    _draw_path(img, trace.pos, scale, TRAIL_RGB)
    return img


def run(args: argparse.Namespace) -> int:
    import imageio.v2 as imageio

    if args.every < 1:
        print("error: --every must be >= 1", file=sys.stderr)
        return 2
    if args.out is None and args.trail is None:
        print("error: give --out (a video), --trail (a PNG of the path) or both",
              file=sys.stderr)
        return 2
    if args.against is not None and args.trail is None:
        print("error: --against draws into --trail; give --trail too", file=sys.stderr)
        return 2
    from torchrl_bc.sim import MapFormatError

    if args.trail is not None:
        try:
            imageio.imwrite(args.trail, trail_image(args.replay, args.scale, args.against))
        except (ReplayFormatError, ValueError, OSError) as exc:  # MapFormatError: a ValueError
            print(f"error: {text(str(exc))}", file=sys.stderr)
            return 1
        print(f"wrote {args.trail} (the path of {args.replay.name}"
              + (f", and of {args.against.name} in green)" if args.against else ")"))
        if args.out is None:
            return 0
    try:
        frames, ticks = render_replay(args.replay, args.every, args.scale, args.obs)
    except (ReplayFormatError, MapFormatError) as exc:  # both messages name the file
        print(f"error: {text(str(exc))}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    suffix = args.out.suffix.lower()
    if suffix == ".gif":
        imageio.mimsave(args.out, frames, duration=1000 / args.fps, loop=0)
    elif suffix == ".mp4":
        try:
            imageio.mimsave(args.out, frames, fps=args.fps)
        except (ImportError, ValueError, RuntimeError) as exc:
            print(f"error: cannot write mp4 ({exc}); install imageio-ffmpeg or use .gif",
                  file=sys.stderr)
            return 1
    else:
        print(f"error: --out must end in .gif or .mp4, not {suffix!r}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({len(frames)} frames, ticks 0..{ticks[-1]})")
    if args.png is not None:
        want = ticks[len(ticks) // 2] if args.png_tick is None else args.png_tick
        i = int(np.argmin([abs(t - want) for t in ticks]))
        imageio.imwrite(args.png, frames[i])
        print(f"wrote {args.png} (tick {ticks[i]})")
    return 0
