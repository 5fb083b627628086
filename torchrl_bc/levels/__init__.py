"""Procedural levels, the planner that proves them solvable, evaluation suites, sample corpus.

Doors follow the project's default physics (``solid_doors=False``): closed locked doors do
not block the ninja, so generated locked-door levels are solved and validated that way.
"""

from .generator import FAMILIES, GeneratedLevel, build_candidate, generate_level
from .mapwriter import LevelMap
from .planner import Planner, PlanResult, solve_map
from .suites import SUITES, evaluate_policy, load_suite

__all__ = [
    "FAMILIES",
    "SUITES",
    "GeneratedLevel",
    "LevelMap",
    "PlanResult",
    "Planner",
    "build_candidate",
    "evaluate_policy",
    "generate_level",
    "load_suite",
    "solve_map",
]
