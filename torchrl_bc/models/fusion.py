"""Fusion of per-modality embeddings into one ``features_dim`` vector."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from torchrl_bc.models.encoders import activation

__all__ = ["AttentionFusion", "ConcatFusion", "make_fusion"]


class ConcatFusion(nn.Module):
    """Concatenate, project, activate: the cheap default."""

    def __init__(self, dims: Sequence[int], features_dim: int, act: str) -> None:
        super().__init__()
        self.proj = nn.Sequential(nn.Linear(sum(dims), features_dim), activation(act))

    def forward(self, embeddings: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.proj(torch.cat(list(embeddings), dim=-1))


class AttentionFusion(nn.Module):
    """One pre-norm transformer block over one token per modality.

    Lets a modality's contribution depend on the others (e.g. the graph matters more when the
    frame shows nothing useful). Tokens are flattened in a fixed modality order before the
    output projection, so modality identity is kept without positional tricks.
    """

    def __init__(self, dims: Sequence[int], token_dim: int, heads: int, features_dim: int,
                 act: str, dropout: float = 0.0) -> None:
        super().__init__()
        self.tokens = nn.ModuleList(nn.Linear(d, token_dim) for d in dims)
        self.modality = nn.Parameter(torch.zeros(len(dims), token_dim))
        self.norm1 = nn.LayerNorm(token_dim)
        self.attn = nn.MultiheadAttention(token_dim, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(token_dim)
        self.ffn = nn.Sequential(nn.Linear(token_dim, 2 * token_dim), activation(act),
                                 nn.Linear(2 * token_dim, token_dim))
        self.proj = nn.Sequential(nn.Linear(len(dims) * token_dim, features_dim),
                                  activation(act))

    def forward(self, embeddings: Sequence[torch.Tensor]) -> torch.Tensor:
        x = torch.stack([t(e) for t, e in zip(self.tokens, embeddings, strict=True)], dim=1)
        x = x + self.modality
        y = self.norm1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        x = x + self.ffn(self.norm2(x))
        return self.proj(x.flatten(1))


def make_fusion(kind: str, dims: Sequence[int], features_dim: int, act: str,
                token_dim: int = 128, heads: int = 4, dropout: float = 0.0) -> nn.Module:
    if kind == "concat":
        return ConcatFusion(dims, features_dim, act)
    if kind == "attention":
        return AttentionFusion(dims, token_dim, heads, features_dim, act, dropout)
    raise ValueError(f"unknown fusion {kind!r}")
