"""Observation configuration shared by the replay executor and the RL environment.

One frozen dataclass so that BC data and RL observations are built from the same settings;
``signature()`` names everything that changes the arrays, for cache keys and checkpoints.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["ALL_MODALITIES", "OBS_VERSION", "ObservationConfig"]

#: Bump whenever the content or layout of any observation array changes.
OBS_VERSION = "1"

#: Every modality the builder knows, in the order observation dicts list them.
ALL_MODALITIES: tuple[str, ...] = (
    "player_frame", "global_view", "game_state", "action_mask", "graph",
)


@dataclass(frozen=True)
class ObservationConfig:
    """Which modalities to build and how.

    ``frame_skip`` lives here (not in the env or executor) because a policy trained at one skip
    sees a different state distribution at another; both consumers read it from this config.
    ``crop_scale`` is world pixels per ``player_frame`` pixel (an integer, so the tile layer
    downsamples by exact block means): 2 shows 168x168 world pixels, 7x7 tiles.
    """

    modalities: tuple[str, ...] = ALL_MODALITIES
    frame_skip: int = 4
    crop_scale: int = 2
    player_frame_size: int = 84
    global_scale: int = 6
    graph_cell: int = 12
    static_cache_levels: int = 64

    def __post_init__(self) -> None:
        unknown = [m for m in self.modalities if m not in ALL_MODALITIES]
        if unknown:
            raise ValueError(f"unknown modalities {unknown}; known: {list(ALL_MODALITIES)}")
        if self.frame_skip < 1:
            raise ValueError(f"frame_skip must be >= 1, got {self.frame_skip}")
        if self.crop_scale < 1 or self.global_scale < 1:
            raise ValueError("crop_scale and global_scale must be positive integers")
        if 24 % self.global_scale or 24 % self.crop_scale:
            raise ValueError("crop_scale and global_scale must divide the 24 px tile")
        if 24 % self.graph_cell:
            raise ValueError("graph_cell must divide the 24 px tile")
        if self.player_frame_size < 2 or self.player_frame_size % 2:
            raise ValueError("player_frame_size must be an even number >= 2")
        # Keep the tuple canonical so equal configs hash and compare equal.
        object.__setattr__(self, "modalities", tuple(m for m in ALL_MODALITIES
                                                     if m in self.modalities))

    def has(self, modality: str) -> bool:
        return modality in self.modalities

    def signature(self) -> dict:
        """Everything that determines the observation arrays, plus ``OBS_VERSION``."""
        sig = asdict(self)
        sig.pop("static_cache_levels", None)  # a memory knob, not content
        sig["modalities"] = list(self.modalities)
        sig["obs_version"] = OBS_VERSION
        return sig
