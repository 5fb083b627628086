"""Observation configuration shared by the replay executor and the RL environment.

One frozen dataclass so that BC data and RL observations are built from the same settings;
``signature()`` names everything that changes the arrays, for cache keys and checkpoints.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from torchrl_bc.obs import modalities as M

__all__ = ["OBS_VERSION", "ObservationConfig"]

#: Bump whenever the content or layout of any observation array changes.
OBS_VERSION = "1"


def _default_modalities() -> tuple[str, ...]:
    """The registry's default modalities (opt-in ones cost a distance field per level, and
    older checkpoints were built without them)."""
    return tuple(m.name for m in M.modalities() if m.default)


@dataclass(frozen=True)
class ObservationConfig:
    """Which modalities to build and how.

    ``frame_skip`` lives here (not in the env or executor) because a policy trained at one skip
    sees a different state distribution at another; both consumers read it from this config.
    ``crop_scale`` is world pixels per ``player_frame`` pixel (an integer, so the tile layer
    downsamples by exact block means): 2 shows 168x168 world pixels, 7x7 tiles.

    ``local_view`` is an egocentric ``local_size`` x ``local_size`` grid of ``local_cell`` px
    cells (16 x 12 px: 192 px, 8 tiles a side); ``objective`` reads a per-level distance field.
    Both describe the level relative to the ninja, so they mean the same on every level.
    ``state_zero`` names ``game_state`` features written as 0 (e.g. ``elapsed``, which lets a
    policy index a demo by time); the layout stays the same so every model still loads.
    ``hazard_radius``: px around each toggle mine where the level fields (``objective``,
    ``local_view``) cost more, so the path they point along keeps that far from mines (the
    ninja's radius, 10, plus the mine's, 4, is where one touches).
    """

    modalities: tuple[str, ...] = field(default_factory=_default_modalities)
    frame_skip: int = 4
    crop_scale: int = 2
    player_frame_size: int = 84
    global_scale: int = 6
    graph_cell: int = 12
    static_cache_levels: int = 64
    local_size: int = 16
    local_cell: int = 12
    state_zero: tuple[str, ...] = ()
    hazard_radius: float = 16.0

    def __post_init__(self) -> None:
        if isinstance(self.modalities, str):
            raise ValueError(f"modalities must be a list of names, got {self.modalities!r}")
        known = M.modality_names()
        unknown = [m for m in self.modalities if m not in known]
        if unknown:
            raise ValueError(f"unknown modalities {unknown}; known: {list(known)}")
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
        if self.local_size < 2 or self.local_size % 2:
            raise ValueError("local_size must be an even number >= 2")
        if self.local_cell < 1 or 24 % self.local_cell:
            raise ValueError("local_cell must be a positive divisor of the 24 px tile")
        if isinstance(self.hazard_radius, bool) or not isinstance(self.hazard_radius,
                                                                  int | float) \
                or not 0 <= self.hazard_radius <= 100:
            raise ValueError(f"hazard_radius must be a number of px in 0..100, got "
                             f"{self.hazard_radius!r}")
        object.__setattr__(self, "hazard_radius", float(self.hazard_radius))
        if isinstance(self.state_zero, str):
            raise ValueError(f"state_zero must be a list of feature names, got {self.state_zero!r}")
        object.__setattr__(self, "state_zero", tuple(self.state_zero))
        if self.state_zero:
            from torchrl_bc.obs.game_state import GAME_STATE_FEATURES

            names = [name for name, _ in GAME_STATE_FEATURES]
            bad = [n for n in self.state_zero if n not in names]
            if bad:
                raise ValueError(f"state_zero names unknown game_state features {bad}; "
                                 f"known: {names}")
            object.__setattr__(self, "state_zero", tuple(n for n in names
                                                         if n in self.state_zero))
        # Keep the tuple canonical so equal configs hash and compare equal.
        object.__setattr__(self, "modalities", tuple(m for m in known if m in self.modalities))

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "observation") -> ObservationConfig:
        """Build from a plain (YAML/JSON/checkpoint) dict; an unknown key is an error naming it.

        Lists become tuples; ``where`` prefixes the key names in the error.
        """
        if not isinstance(data, dict):
            raise ValueError(f"{where} must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown key(s) {[f'{where}.{k}' for k in unknown]}; "
                             f"known in {where}: {sorted(known)}")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**kwargs)

    def has(self, modality: str) -> bool:
        return modality in self.modalities

    def signature(self) -> dict:
        """Everything that determines the observation arrays, plus ``OBS_VERSION``."""
        sig = asdict(self)
        sig.pop("static_cache_levels", None)  # a memory knob, not content
        # Fields added after version 1 appear only when they matter, so older datasets and
        # checkpoints keep their signatures.
        for mod in M.modalities():
            if not self.has(mod.name):
                for name in mod.config_fields:
                    sig.pop(name)
            elif mod.version > 1:
                sig[f"{mod.name}_version"] = mod.version
        if self.hazard_radius == 16.0 or not any(m.level_fields for m in
                                                 M.modalities(self.modalities)):
            sig.pop("hazard_radius")  # at its first value: older datasets keep their signatures
        if self.state_zero:
            sig["state_zero"] = list(self.state_zero)
        else:
            sig.pop("state_zero")
        sig["modalities"] = list(self.modalities)
        sig["obs_version"] = OBS_VERSION
        return sig


def registered_keys() -> tuple[str, ...]:
    """Every observation key a registered modality can carry: what a dataset may store and a
    batch carries (each dataset holds those of the modalities it was built with)."""
    return M.observation_keys(ObservationConfig(modalities=M.modality_names()))
