"""Bit-exact N++ simulation (the reference is nclone's Python simulator)."""

from .constants import SIM_VERSION
from .mapdata import MapData, MapFormatError, parse_map
from .simulator import INPUT_DECODE, SimSnapshot, Simulator
from .trace import Trace

__all__ = [
    "INPUT_DECODE",
    "SIM_VERSION",
    "MapData",
    "MapFormatError",
    "SimSnapshot",
    "Simulator",
    "Trace",
    "parse_map",
]
