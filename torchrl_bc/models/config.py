"""Architecture configuration: one validated dataclass, a few named presets.

The config is the only thing a checkpoint or an SB3 export needs (besides the observation spec)
to rebuild the network, so it must round-trip through plain dicts/YAML and reject anything it does
not understand instead of silently ignoring it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from torchrl_bc.obs.modalities import encoded_modalities
from torchrl_bc.sim.actions import N_ACTIONS

__all__ = [
    "ACTIVATIONS",
    "PRESETS",
    "ArchitectureConfig",
    "preset",
]

# Modalities that have an encoder come from the registry (``encoded_modalities()``):
# ``action_mask`` is consumed by the distribution, not encoded.
#: The default set (every encoder but the opt-in, level-relative ``local_view``/``objective``).
_CLASSIC: tuple[str, ...] = ("player_frame", "global_view", "game_state", "graph")
ACTIVATIONS: tuple[str, ...] = ("relu", "gelu", "silu", "tanh", "elu")
GRAPH_ENCODERS: tuple[str, ...] = ("hgt", "gat")
FUSIONS: tuple[str, ...] = ("concat", "attention")

_TUPLE_FIELDS = ("modalities", "frame_channels", "global_channels", "state_hidden",
                 "head_hidden", "value_hidden", "local_channels", "objective_hidden")


@dataclass(frozen=True)
class ArchitectureConfig:
    """Everything that shapes the network. Frozen so a built model cannot drift from its config.

    CNN channel tuples list one conv per entry; kernels/strides follow a fixed schedule (see
    ``encoders.conv_schedule``) so that configs stay short. ``*_pool`` is the side of the adaptive
    average pool before the projection: it caps the projection size independently of the input
    resolution (a 84x84 frame and a 100x176 view land on the same grid).
    """

    name: str = "custom"
    modalities: tuple[str, ...] = _CLASSIC
    activation: str = "relu"
    dropout: float = 0.0
    # player_frame CNN (uint8 [1, 84, 84])
    frame_channels: tuple[int, ...] = (32, 64, 64)
    frame_pool: int = 4
    frame_dim: int = 256
    # global_view CNN (uint8 [1, 100, 176])
    global_channels: tuple[int, ...] = (32, 64, 64)
    global_pool: int = 4
    global_dim: int = 128
    # game_state MLP
    state_hidden: tuple[int, ...] = (128,)
    state_dim: int = 128
    state_fourier: int = 0  # sin/cos octaves of each game_state feature (0 = raw features)
    # graph encoder
    graph_encoder: str = "hgt"
    graph_hidden: int = 128
    graph_layers: int = 3
    graph_heads: int = 4
    graph_dim: int = 128
    # fusion and heads
    fusion: str = "concat"
    fusion_dim: int = 128  # token width for attention fusion
    fusion_heads: int = 4
    features_dim: int = 256
    head_hidden: tuple[int, ...] = (256,)
    value_hidden: tuple[int, ...] = (256,)
    n_actions: int = N_ACTIONS
    # local_view CNN (uint8 [2, 16, 16]): 3x3 convs, the first at stride 1, the rest stride 2
    local_channels: tuple[int, ...] = (16, 32)
    local_dim: int = 128
    # objective MLP (float32 [8])
    objective_hidden: tuple[int, ...] = (64,)
    objective_dim: int = 64

    def __post_init__(self) -> None:
        for name in _TUPLE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, str) or not hasattr(value, "__iter__"):
                raise ValueError(f"{name} must be a list, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        self._validate()

    def _validate(self) -> None:
        def fail(key: str, why: str) -> None:
            raise ValueError(f"ArchitectureConfig {self.name!r}: {key} {why}")

        if not self.modalities:
            fail("modalities", "must name at least one encoder")
        known = encoded_modalities()
        unknown = [m for m in self.modalities if m not in known]
        if unknown:
            fail("modalities", f"has unknown {unknown}; known: {list(known)}")
        if len(set(self.modalities)) != len(self.modalities):
            fail("modalities", f"has duplicates: {list(self.modalities)}")
        # Canonical order so equal configs compare and hash equal.
        object.__setattr__(self, "modalities",
                           tuple(m for m in known if m in self.modalities))
        if self.activation not in ACTIVATIONS:
            fail("activation", f"must be one of {list(ACTIVATIONS)}, got {self.activation!r}")
        if self.graph_encoder not in GRAPH_ENCODERS:
            fail("graph_encoder",
                 f"must be one of {list(GRAPH_ENCODERS)}, got {self.graph_encoder!r}")
        if self.fusion not in FUSIONS:
            fail("fusion", f"must be one of {list(FUSIONS)}, got {self.fusion!r}")
        if not 0.0 <= self.dropout < 1.0:
            fail("dropout", f"must be in [0, 1), got {self.dropout}")
        for key in ("frame_channels", "global_channels", "local_channels"):
            chans = getattr(self, key)
            if not chans or len(chans) > 4:
                fail(key, f"must list 1 to 4 conv widths, got {list(chans)}")
        for key in _TUPLE_FIELDS[1:]:
            bad = [v for v in getattr(self, key) if not isinstance(v, int) or v < 1]
            if bad:
                fail(key, f"must hold positive ints, got {list(getattr(self, key))}")
        for key in ("frame_pool", "global_pool", "frame_dim", "global_dim", "state_dim",
                    "graph_hidden", "graph_layers", "graph_heads", "graph_dim", "fusion_dim",
                    "fusion_heads", "features_dim", "n_actions", "local_dim", "objective_dim"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                fail(key, f"must be a positive int, got {value!r}")
        if (not isinstance(self.state_fourier, int) or isinstance(self.state_fourier, bool)
                or not 0 <= self.state_fourier <= 16):
            fail("state_fourier", f"must be an int in 0..16, got {self.state_fourier!r}")
        if self.n_actions < 2:
            fail("n_actions", f"must be >= 2, got {self.n_actions}")
        if self.graph_hidden % self.graph_heads:
            fail("graph_hidden", f"({self.graph_hidden}) must be divisible by graph_heads "
                                 f"({self.graph_heads})")
        if self.fusion == "attention" and self.fusion_dim % self.fusion_heads:
            fail("fusion_dim", f"({self.fusion_dim}) must be divisible by fusion_heads "
                               f"({self.fusion_heads})")

    # -- (de)serialisation ---------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchitectureConfig:
        """Build from a plain dict; an unknown key is an error that names it.

        A ``preset`` key starts from that named preset and applies the other keys on top, so a
        YAML file can say ``{preset: hgt, graph_layers: 2}``.
        """
        if not isinstance(data, dict):
            raise TypeError(f"architecture config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(k for k in data if k not in known and k != "preset")
        if unknown:
            raise ValueError(f"unknown architecture config key(s) {unknown}; "
                             f"known: {sorted(known | {'preset'})}")
        data = dict(data)
        base_name = data.pop("preset", None)
        if base_name is None:
            return cls(**data)
        base = preset(base_name)
        if "name" not in data:
            data["name"] = base.name
        return replace(base, **data)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (lists, not tuples), so it survives YAML, JSON and torch.save."""
        out = asdict(self)
        for key in _TUPLE_FIELDS:
            out[key] = list(out[key])
        return out

    def uses(self, modality: str) -> bool:
        return modality in self.modalities


def _presets() -> dict[str, ArchitectureConfig]:
    all_mods = _CLASSIC
    vision_state = ("player_frame", "global_view", "game_state")
    return {
        "hgt": ArchitectureConfig(
            name="hgt", modalities=all_mods, graph_encoder="hgt", graph_hidden=128,
            graph_layers=3, graph_heads=4, graph_dim=128, fusion="attention",
            features_dim=256),
        "gat": ArchitectureConfig(
            name="gat", modalities=all_mods, graph_encoder="gat", graph_hidden=96,
            graph_layers=2, graph_heads=4, graph_dim=96, fusion="concat", features_dim=256),
        "cnn": ArchitectureConfig(
            name="cnn", modalities=vision_state, fusion="concat", features_dim=256),
        "mlp": ArchitectureConfig(
            name="mlp", modalities=("game_state",), state_hidden=(256, 256), state_dim=256,
            features_dim=256, head_hidden=(128,), value_hidden=(128,)),
        # Exercises every encoder with a few thousand parameters, for CPU tests.
        "tiny": ArchitectureConfig(
            name="tiny", modalities=all_mods, frame_channels=(4, 8), frame_pool=2, frame_dim=8,
            global_channels=(4, 8), global_pool=2, global_dim=8, state_hidden=(16,),
            state_dim=8, graph_encoder="gat", graph_hidden=8, graph_layers=1, graph_heads=2,
            graph_dim=8, fusion="concat", features_dim=16, head_hidden=(16,),
            value_hidden=(16,)),
    }


PRESETS: dict[str, ArchitectureConfig] = _presets()


def preset(name: str) -> ArchitectureConfig:
    """The named preset (``hgt``, ``gat``, ``cnn``, ``mlp``, ``tiny``)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown architecture preset {name!r}; "
                         f"known: {sorted(PRESETS)}") from None

