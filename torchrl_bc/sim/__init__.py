"""Bit-exact N++ simulation (the reference is nclone's Python simulator)."""

from .constants import SIM_VERSION
from .mapdata import MapData, MapFormatError, parse_map
from .simulator import INPUT_DECODE, SimSnapshot, Simulator
from .trace import Trace

__all__ = [
    "SIM_VERSION", "MapData", "MapFormatError", "parse_map", "INPUT_DECODE", "SimSnapshot",
    "Simulator", "Trace",
]
