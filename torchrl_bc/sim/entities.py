"""The entity kinds of N++, named once: id, name, whether it moves, size, drawing, mirroring.

Ids are the map-data record types (and the simulator's ``EI_KIND``). The compiled kernel keeps
its own ``K_*`` constants in :mod:`torchrl_bc.sim.layout` (numba folds module constants); a test
checks them against this table. Everything else (observation drawing and layers, the graph's
status feature, mirroring, the planner, the generator's map writer) reads the table or the
names below instead of raw ints.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BOOST_PAD",
    "BOUNCE_BLOCK",
    "BY_ID",
    "BY_NAME",
    "DEATH_BALL",
    "DOOR",
    "ENTITIES",
    "EXIT",
    "EXIT_SWITCH",
    "GOLD",
    "LAUNCH_PAD",
    "LOCKED_DOOR",
    "MINE",
    "MINES",
    "MINE_SAFE",
    "MINI_DRONE",
    "ONE_WAY",
    "SHOVE_THWUMP",
    "THWUMP",
    "TRAP_DOOR",
    "ZAP_DRONE",
    "EntityKind",
    "kinds",
]


@dataclass(frozen=True)
class EntityKind:
    """One entity kind.

    ``moving``: its position can change during an episode (non-moving kinds are drawn into the
    builder's cached per-level layer, in ``draw_order``). ``radius``: collision radius in px at
    load (a toggle mine's changes with its state; None for square kinds, which use ``semi``,
    their half side). ``draw``: the shape the observation stamps (``disc``, ``square``,
    ``line``, ``door``: a segment while closed, plus a disc at the switch of a locked/trap
    door). ``value``: the ``obs.raster.VALUES`` intensity it is drawn with (mines and the exit
    pick theirs by state). ``status``: which field the graph's ``status`` feature reads
    (``state``: the mine state, scaled by 0.5; ``flag``: switch hit / door closed).
    ``mirror``: what horizontal mirroring rewrites beyond ``x -> W - x`` and the orientation
    (``drone``: the turn-preference mode; ``switch``: the switch's x as well).
    ``switch_record``: the map record type of its separate switch entry, if any.
    """

    id: int
    name: str
    moving: bool
    radius: float | None
    semi: float | None
    draw: str
    value: str
    draw_order: int | None = None
    status: str = ""
    mirror: str = ""
    switch_record: int | None = None


ENTITIES: tuple[EntityKind, ...] = (
    EntityKind(1, "mine", False, 4.0, None, "disc", "mine_deadly", 6, status="state"),
    EntityKind(2, "gold", False, 6.0, None, "disc", "gold", 4),
    EntityKind(3, "exit", False, 12.0, None, "square", "exit_closed", 0, status="flag",
               switch_record=4),
    EntityKind(4, "exit_switch", False, 6.0, None, "disc", "exit_switch", 5),
    EntityKind(5, "door", False, 10.0, None, "door", "door", 1, status="flag"),
    EntityKind(6, "locked_door", False, 5.0, None, "door", "door", 1, status="flag",
               mirror="switch", switch_record=7),
    EntityKind(8, "trap_door", False, 5.0, None, "door", "door", 1, status="flag",
               mirror="switch", switch_record=9),
    EntityKind(10, "launch_pad", False, 6.0, 12.0, "disc", "launch_pad", 3),
    EntityKind(11, "one_way", False, 6.0, 12.0, "line", "one_way", 2),
    EntityKind(14, "zap_drone", True, 7.5, None, "disc", "zap_drone", mirror="drone"),
    EntityKind(17, "bounce_block", True, None, 9.0, "square", "bounce_block"),
    EntityKind(20, "thwump", True, None, 9.0, "square", "thwump"),
    EntityKind(21, "mine_safe", False, 3.5, None, "disc", "mine_safe", 6, status="state"),
    EntityKind(24, "boost_pad", False, 6.0, None, "disc", "boost_pad", 3),
    EntityKind(25, "death_ball", True, 5.0, None, "disc", "death_ball"),
    EntityKind(26, "mini_drone", True, 4.0, None, "disc", "mini_drone", mirror="drone"),
    EntityKind(28, "shove_thwump", True, 8.0, 12.0, "square", "shove_thwump"),
)
BY_ID: dict[int, EntityKind] = {k.id: k for k in ENTITIES}
BY_NAME: dict[str, EntityKind] = {k.name: k for k in ENTITIES}

MINE, GOLD, EXIT, EXIT_SWITCH = (BY_NAME[n].id for n in ("mine", "gold", "exit",
                                                          "exit_switch"))
DOOR, LOCKED_DOOR, TRAP_DOOR = (BY_NAME[n].id for n in ("door", "locked_door", "trap_door"))
LAUNCH_PAD, ONE_WAY, ZAP_DRONE, BOUNCE_BLOCK, THWUMP = (
    BY_NAME[n].id for n in ("launch_pad", "one_way", "zap_drone", "bounce_block", "thwump"))
MINE_SAFE, BOOST_PAD, DEATH_BALL, MINI_DRONE, SHOVE_THWUMP = (
    BY_NAME[n].id for n in ("mine_safe", "boost_pad", "death_ball", "mini_drone",
                            "shove_thwump"))
#: Toggle mines (either starting state): the static hazards paths route around.
MINES: tuple[int, ...] = (MINE, MINE_SAFE)


def kinds(**match: object) -> tuple[int, ...]:
    """Ids of the kinds whose fields equal ``match`` (e.g. ``kinds(moving=False)``)."""
    return tuple(k.id for k in ENTITIES
                 if all(getattr(k, name) == value for name, value in match.items()))
