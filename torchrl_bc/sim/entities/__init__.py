"""Entity types and the factory that builds them from map records."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..mapdata import EntityRecord, MapFormatError
from .base import Entity
from .blocks import BounceBlock, ShoveThwump, Thwump
from .doors import LockedDoor, RegularDoor, TrapDoor
from .hazards import DeathBall, MiniDrone, ZapDrone
from .pads import BoostPad, LaunchPad, OneWayPlatform
from .pickups import ExitDoor, ExitSwitch, Gold, ToggleMine

if TYPE_CHECKING:
    from ..simulator import Simulator

# Record types the reference wires into its simulation. Anything else (the ninja record,
# switch records read through their door, lasers, chasers, ...) is skipped.
WIRED_TYPES = (1, 2, 3, 5, 6, 8, 10, 11, 14, 17, 20, 21, 24, 25, 26, 28)

__all__ = [
    "Entity", "BounceBlock", "ShoveThwump", "Thwump", "LockedDoor", "RegularDoor", "TrapDoor",
    "DeathBall", "MiniDrone", "ZapDrone", "BoostPad", "LaunchPad", "OneWayPlatform",
    "ExitDoor", "ExitSwitch", "Gold", "ToggleMine", "WIRED_TYPES", "build_entities",
]


def build_entities(records: tuple[EntityRecord, ...], sim: Simulator, source: str) -> list[Entity]:
    """Create entities in load order; returns them as (group, load order) sorted list.

    Each created entity that goes into the grid is registered in ``sim.grid``. Exit doors
    stay out of the grid until their switch is hit.
    """
    counts: dict[int, int] = {}

    def next_index(kind: int) -> int:
        i = counts.get(kind, 0)
        counts[kind] = i + 1
        return i

    by_group: dict[int, list[Entity]] = {t: [] for t in WIRED_TYPES}
    for rec in records:
        t = rec.type
        if t not in by_group:
            continue
        try:
            if t in (1, 21):
                ent: Entity = ToggleMine(t, next_index(t), rec.x, rec.y, 0 if t == 1 else 1)
            elif t == 2:
                ent = Gold(t, next_index(2), rec.x, rec.y)
            elif t == 3:
                door = ExitDoor(t, next_index(3), rec.x, rec.y)
                by_group[3].append(door)
                ent = ExitSwitch(t, next_index(4), rec.switch_x, rec.switch_y, door)
            elif t == 5:
                ent = RegularDoor(t, next_index(5), rec.x, rec.y, rec.orientation, rec.x, rec.y,
                                  sim)
            elif t == 6:
                ent = LockedDoor(t, next_index(6), rec.x, rec.y, rec.orientation, rec.switch_x,
                                 rec.switch_y, sim)
            elif t == 8:
                ent = TrapDoor(t, next_index(8), rec.x, rec.y, rec.orientation, rec.switch_x,
                               rec.switch_y, sim)
            elif t == 10:
                ent = LaunchPad(t, next_index(10), rec.x, rec.y, rec.orientation)
            elif t == 11:
                ent = OneWayPlatform(t, next_index(11), rec.x, rec.y, rec.orientation)
            elif t == 14:
                ent = ZapDrone(t, next_index(14), rec.x, rec.y, rec.orientation, rec.mode)
            elif t == 17:
                ent = BounceBlock(t, next_index(17), rec.x, rec.y)
            elif t == 20:
                ent = Thwump(t, next_index(20), rec.x, rec.y, rec.orientation)
            elif t == 24:
                ent = BoostPad(t, next_index(24), rec.x, rec.y)
            elif t == 25:
                ent = DeathBall(t, next_index(25), rec.x, rec.y)
            elif t == 26:
                ent = MiniDrone(t, next_index(26), rec.x, rec.y, rec.orientation, rec.mode)
            else:  # 28
                ent = ShoveThwump(t, next_index(28), rec.x, rec.y)
        except ValueError as exc:
            where = f"{source}: entity of type {t} at byte {rec.offset}"
            raise MapFormatError(f"{where}: {exc}") from exc
        by_group[t].append(ent)
        sim.grid[ent.cell[0]][ent.cell[1]].append(ent)
    sim.by_group = by_group
    return [e for t in WIRED_TYPES for e in by_group[t]]
