"""Dense modality encoders, and which one each modality gets (:func:`make_encoder`).

CNNs for the rasters, a small-grid CNN for egocentric grids, an MLP for flat vectors. A modality
without an entry in :data:`ENCODERS` gets one chosen from its shape, the way SB3's
``CombinedExtractor`` follows the observation space: ``[C, H, W]`` -> :class:`GridCNN`, ``[N]``
-> :class:`StateMLP`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from torchrl_bc.models.config import ArchitectureConfig

__all__ = ["ENCODERS", "FrameCNN", "GridCNN", "Passthrough", "StateMLP", "activation",
           "conv_schedule", "make_encoder", "mlp"]

# (kernel, stride) per conv layer: the Atari schedule, then 3x3 stride-1 refinements.
_SCHEDULE: tuple[tuple[int, int], ...] = ((8, 4), (4, 2), (3, 1), (3, 1))


def activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh,
            "elu": nn.ELU}[name]()


def conv_schedule(n_layers: int) -> tuple[tuple[int, int], ...]:
    return _SCHEDULE[:n_layers]


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int | None, act: str,
        dropout: float = 0.0, final_act: bool = False) -> nn.Sequential:
    """Linear/act stack; ``out_dim=None`` ends on the last hidden layer (with its activation)."""
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden:
        layers += [nn.Linear(width, h), activation(act)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    if out_dim is not None:
        layers.append(nn.Linear(width, out_dim))
        if final_act:
            layers.append(activation(act))
    return nn.Sequential(*layers)


class FrameCNN(nn.Module):
    """Conv stack -> adaptive average pool -> linear, for a ``[B, C, H, W]`` raster.

    Inputs are pixel values in 0..255 of any dtype (uint8 from the dataset, float from SB3 with
    ``normalize_images=False``) and are divided by 255 here, so every caller feeds the same units
    and the division cannot be done twice or forgotten. The adaptive pool makes the projection
    size independent of the input resolution.
    """

    def __init__(self, in_shape: Sequence[int], channels: Sequence[int], pool: int,
                 out_dim: int, act: str = "relu") -> None:
        super().__init__()
        in_ch, h, w = in_shape
        layers: list[nn.Module] = []
        width = in_ch
        for out_ch, (k, s) in zip(channels, conv_schedule(len(channels)), strict=True):
            # Keep small inputs valid: never use a kernel larger than the remaining map.
            k = min(k, h, w)
            layers += [nn.Conv2d(width, out_ch, kernel_size=k, stride=s), activation(act)]
            h, w = (h - k) // s + 1, (w - k) // s + 1
            width = out_ch
        self.convs = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d((min(pool, h), min(pool, w)))
        flat = width * min(pool, h) * min(pool, w)
        self.proj = nn.Sequential(nn.Linear(flat, out_dim), activation(act))
        self.in_shape = tuple(in_shape)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.proj[0].weight.dtype) * (1.0 / 255.0)
        return self.proj(self.pool(self.convs(x)).flatten(1))


class GridCNN(nn.Module):
    """3x3 convs over a small egocentric grid (``local_view``), then a linear projection.

    The first conv keeps the resolution (a cell is half a tile: a one-cell gap matters), the
    later ones halve it; no pooling, so where things are relative to the ninja survives into
    the projection. Inputs are 0..255 like ``FrameCNN``'s and divided by 255 here.
    """

    def __init__(self, in_shape: Sequence[int], channels: Sequence[int], out_dim: int,
                 act: str = "relu") -> None:
        super().__init__()
        in_ch, h, w = in_shape
        layers: list[nn.Module] = []
        width = in_ch
        for i, out_ch in enumerate(channels):
            stride = 1 if i == 0 else 2
            layers += [nn.Conv2d(width, out_ch, kernel_size=3, stride=stride, padding=1),
                       activation(act)]
            h, w = (h - 1) // stride + 1, (w - 1) // stride + 1
            width = out_ch
        self.convs = nn.Sequential(*layers)
        self.proj = nn.Sequential(nn.Linear(width * h * w, out_dim), activation(act))
        self.in_shape = tuple(in_shape)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.proj[0].weight.dtype) * (1.0 / 255.0)
        return self.proj(self.convs(x).flatten(1))


class StateMLP(nn.Module):
    """MLP over the flat ``game_state`` vector.

    ``fourier`` > 0 adds sin/cos of every feature at ``fourier`` octaves (pi, 2pi, 4pi, ...):
    positions, speeds and elapsed time are normalised to about [-1, 1], where a ReLU MLP
    barely separates states a pixel or a few ticks apart; the octaves let it act on such
    differences, which precise platforming needs. No parameters are added.
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int, act: str = "relu",
                 dropout: float = 0.0, fourier: int = 0) -> None:
        super().__init__()
        self.fourier = fourier
        self.net = mlp(in_dim * (1 + 2 * fourier), hidden, out_dim, act, dropout,
                       final_act=True)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.fourier:
            scales = torch.pi * 2.0 ** torch.arange(self.fourier, dtype=x.dtype,
                                                    device=x.device)
            angles = (x[..., None] * scales).flatten(-2)
            x = torch.cat([x, torch.sin(angles), torch.cos(angles)], dim=-1)
        return self.net(x)


class Passthrough(nn.Module):
    """Inputs handed to the fusion as they are (``demo_style``, ``last_input``): no parameters."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.out_dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float()


#: ``(architecture, input shape) -> encoder`` of each dense modality with its own widths.
EncoderFactory = Callable[["ArchitectureConfig", tuple[int, ...]], nn.Module]
ENCODERS: dict[str, EncoderFactory] = {
    "player_frame": lambda c, shape: FrameCNN(shape, c.frame_channels, c.frame_pool,
                                              c.frame_dim, c.activation),
    "global_view": lambda c, shape: FrameCNN(shape, c.global_channels, c.global_pool,
                                             c.global_dim, c.activation),
    "game_state": lambda c, shape: StateMLP(shape[0], c.state_hidden, c.state_dim,
                                            c.activation, c.dropout, c.state_fourier),
    "local_view": lambda c, shape: GridCNN(shape, c.local_channels, c.local_dim, c.activation),
    "objective": lambda c, shape: StateMLP(shape[0], c.objective_hidden, c.objective_dim,
                                           c.activation, c.dropout),
    # offsets to mines a few px apart call for different actions: sin/cos octaves, as game_state
    "hazards": lambda c, shape: StateMLP(shape[0], c.objective_hidden, c.objective_dim,
                                         c.activation, c.dropout, c.state_fourier),
    "demo_style": lambda c, shape: Passthrough(shape[0]),
    "last_input": lambda c, shape: Passthrough(shape[0]),
}


def make_encoder(name: str, cfg: ArchitectureConfig, shape: tuple[int, ...]) -> nn.Module:
    """The encoder of dense modality ``name`` (per-sample ``shape``); it has an ``out_dim``.

    Without an :data:`ENCODERS` entry the shape decides, with the small-input widths
    (``local_*`` for a grid, ``objective_*`` for a vector).
    """
    factory = ENCODERS.get(name)
    if factory is not None:
        return factory(cfg, tuple(shape))
    if len(shape) == 3:
        return GridCNN(shape, cfg.local_channels, cfg.local_dim, cfg.activation)
    if len(shape) == 1:
        return StateMLP(shape[0], cfg.objective_hidden, cfg.objective_dim, cfg.activation,
                        cfg.dropout)
    raise ValueError(f"modality {name!r} has shape {tuple(shape)}; without an ENCODERS entry "
                     f"only [C, H, W] grids and [N] vectors get an encoder")
