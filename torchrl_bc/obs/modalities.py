"""The modality registry: every observation modality declared once.

A :class:`Modality` names its observation keys and their gymnasium spaces (a function of the
:class:`~torchrl_bc.obs.ObservationConfig`) and how the builder observes it. Everything else is
derived from this table: the config's known modalities, the ``NppEnv`` / ``NppVectorEnv`` and SB3
observation spaces, the keys a dataset stores and a batch carries, ``ObsSpec``, and which encoder
the ``MultimodalExtractor`` builds (from the key's space, the way SB3's ``CombinedExtractor``
follows the observation space). Adding a modality is one :func:`register` call here plus its
builder function (and, optionally, an encoder in ``models/encoders.py``).

This module imports neither the builder nor the config at run time (only for types), so both
can read it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium import spaces

from torchrl_bc.obs.game_state import N_GAME_STATE
from torchrl_bc.obs.objective import N_AHEAD
from torchrl_bc.obs.progress import N_PROGRESS
from torchrl_bc.obs.raster import LEVEL_H, LEVEL_W
from torchrl_bc.obs.surroundings import N_HAZARD_VALUES, N_SURROUNDINGS
from torchrl_bc.sim.actions import N_ACTIONS

if TYPE_CHECKING:
    from torchrl_bc.obs.builder import ObservationBuilder
    from torchrl_bc.obs.config import ObservationConfig

__all__ = [
    "LOCAL_CHANNELS",
    "N_HAZARD_VALUES",
    "N_OBJECTIVE",
    "N_PROGRESS",
    "N_SURROUNDINGS",
    "Modality",
    "dense_modalities",
    "encoded_modalities",
    "get",
    "modalities",
    "modality_names",
    "observation_keys",
    "observation_spaces",
    "register",
    "registered",
    "unregister",
]

#: Channels of ``local_view`` (uint8 [LOCAL_CHANNELS, local_size, local_size]).
LOCAL_CHANNELS = 2
#: Length of the ``objective`` vector.
N_OBJECTIVE = 8

#: ``(config, n_entities) -> {key: space}``; ``n_entities`` sizes per-entity rows.
SpaceFn = Callable[["ObservationConfig", int], dict[str, spaces.Space]]
#: ``builder -> {key: array}`` for the builder's bound simulator (fresh arrays every call).
ObserveFn = Callable[["ObservationBuilder"], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Modality:
    """One observation modality.

    ``default``: part of ``ObservationConfig()``'s modalities (opt-in modalities are not, so
    older datasets and checkpoints keep their signatures). ``pictures``: draws the cached entity
    layers (the builder refreshes them once per step for all such modalities). ``level_fields``:
    reads the per-level distance fields (built once per level when any enabled modality needs
    them). ``encoded``: the extractor encodes it (``action_mask`` feeds the distribution
    instead). A dense modality (every encoded one but the graph) has exactly one key, its name.
    ``config_fields``: ``ObservationConfig`` fields that only matter when this modality is on
    (left out of the signature otherwise). ``version``: raised when what the modality computes
    changes; the signature names it while the modality is on (from 2), so datasets and
    checkpoints made with the old arrays no longer match.
    """

    name: str
    spaces: SpaceFn
    observe: ObserveFn
    default: bool = True
    pictures: bool = False
    level_fields: bool = False
    encoded: bool = True
    config_fields: tuple[str, ...] = ()
    version: int = 1

    @property
    def dense(self) -> bool:
        return self.encoded and self.name != "graph"


_REGISTRY: dict[str, Modality] = {}


def register(modality: Modality) -> Modality:
    """Add ``modality`` after those already registered (its position is its key order).

    Register at import time of this module (or one it imports): dataset worker processes and
    loaded checkpoints only know what an import registers.
    """
    if modality.name in _REGISTRY:
        raise ValueError(f"modality {modality.name!r} is already registered")
    _REGISTRY[modality.name] = modality
    return modality


def unregister(name: str) -> None:
    if name not in _REGISTRY:
        raise KeyError(f"modality {name!r} is not registered")
    del _REGISTRY[name]


@contextmanager
def registered(modality: Modality) -> Iterator[Modality]:
    """Register ``modality`` for the duration of a ``with`` block (tests, experiments)."""
    register(modality)
    try:
        yield modality
    finally:
        unregister(modality.name)


def get(name: str) -> Modality:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown modality {name!r}; known: {list(_REGISTRY)}") from None


def modalities(names: Any = None) -> list[Modality]:
    """Registered modalities in registry order, optionally only those in ``names``."""
    mods = list(_REGISTRY.values())
    return mods if names is None else [m for m in mods if m.name in names]


def modality_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def encoded_modalities() -> tuple[str, ...]:
    """Modalities with an encoder, in the order the extractor builds (and fuses) them."""
    return tuple(m.name for m in _REGISTRY.values() if m.encoded)


def dense_modalities() -> tuple[str, ...]:
    """Encoded modalities that are one array per sample, keyed by the modality name."""
    return tuple(m.name for m in _REGISTRY.values() if m.dense)


def observation_spaces(config: ObservationConfig, n_entities: int = 0) -> dict[str, spaces.Space]:
    """Per-step spaces of every key ``config`` observes (``n_entities`` rows per entity)."""
    out: dict[str, spaces.Space] = {}
    for mod in modalities(config.modalities):
        out |= mod.spaces(config, n_entities)
    return out


def observation_keys(config: ObservationConfig) -> tuple[str, ...]:
    """Keys a step carries for ``config``: its store/batch keys."""
    return tuple(observation_spaces(config))


# -- the built-in modalities ------------------------------------------------------------------

def _image(shape: tuple[int, ...]) -> spaces.Box:
    return spaces.Box(0, 255, shape, np.uint8)


def _vector(n: int) -> spaces.Box:
    return spaces.Box(-np.inf, np.inf, (n,), np.float32)


def _n_game_state() -> int:
    return N_GAME_STATE


def _level_size(config: ObservationConfig) -> tuple[int, int]:
    return LEVEL_H // config.global_scale, LEVEL_W // config.global_scale


register(Modality(
    "player_frame", pictures=True,
    spaces=lambda c, _: {"player_frame": _image((1, c.player_frame_size, c.player_frame_size))},
    observe=lambda b: {"player_frame": b.player_frame()}))
register(Modality(
    "global_view", pictures=True,
    spaces=lambda c, _: {"global_view": _image((1, *_level_size(c)))},
    observe=lambda b: {"global_view": b.global_view()}))
register(Modality(
    "game_state",
    spaces=lambda c, _: {"game_state": _vector(_n_game_state())},
    observe=lambda b: {"game_state": b.game_state()}))
register(Modality(
    # Every action is legal in every N++ state; masking would also bias BC labels.
    "action_mask", encoded=False,
    spaces=lambda c, _: {"action_mask": spaces.MultiBinary(N_ACTIONS)},
    observe=lambda b: {"action_mask": np.ones(N_ACTIONS, dtype=bool)}))
register(Modality(
    "graph",
    spaces=lambda c, n: {
        "graph_ninja_node": spaces.Box(0, np.iinfo(np.int32).max, (1,), np.int32),
        "graph_entity_state": spaces.Box(-np.inf, np.inf, (n, 4), np.float32)},
    observe=lambda b: b.graph_arrays()))
register(Modality(
    "local_view", default=False, pictures=True, level_fields=True,
    config_fields=("local_size", "local_cell"),
    spaces=lambda c, _: {"local_view": _image((LOCAL_CHANNELS, c.local_size, c.local_size))},
    observe=lambda b: {"local_view": b.local_view()}))
register(Modality(
    "objective", default=False, level_fields=True,
    spaces=lambda c, _: {"objective": _vector(N_OBJECTIVE)},
    observe=lambda b: {"objective": b.objective()}))
register(Modality(
    # 2: locked and trap doors that are closed stop the rays (version 1: no door did)
    "surroundings", default=False, version=2,
    spaces=lambda c, _: {"surroundings": _vector(N_SURROUNDINGS)},
    observe=lambda b: {"surroundings": b.surroundings()}))
register(Modality(
    # surroundings' hazard offsets alone: where the nearest mines and drones are, without the
    # rays (docs/OBSERVATIONS.md says why, and what it measured)
    "hazards", default=False,
    spaces=lambda c, _: {"hazards": _vector(N_HAZARD_VALUES)},
    observe=lambda b: {"hazards": b.hazards()}))
register(Modality(
    # The shape of the objective's path over the next 48 and 96 px (obs/objective.py)
    "path_ahead", default=False, level_fields=True,
    spaces=lambda c, _: {"path_ahead": _vector(N_AHEAD)},
    observe=lambda b: {"path_ahead": b.path_ahead()}))
register(Modality(
    # Episode memory: the builder updates it once per observed tick (obs/progress.py).
    "progress", default=False, level_fields=True,
    spaces=lambda c, _: {"progress": _vector(N_PROGRESS)},
    observe=lambda b: {"progress": b.progress()}))
register(Modality(
    # Which demonstrator to act like: 0, the planner (whose labels DAgger adds), in every
    # environment; a dataset marks its recorded human demos 1 (BCDataset.mark_planner_demos),
    # so their style, which differs from the planner's in the same states, does not blur it.
    "demo_style", default=False,
    spaces=lambda c, _: {"demo_style": _vector(1)},
    observe=lambda b: {"demo_style": np.zeros(1, np.float32)}))
register(Modality(
    # The input held on the last tick: lets the policy commit to a direction instead of
    # re-deciding it every tick from velocities that lag the input.
    "last_input", default=False,
    spaces=lambda c, _: {"last_input": _vector(2)},
    observe=lambda b: {"last_input": b.last_input()}))
