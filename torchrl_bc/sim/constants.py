"""Physics constants of the N++ simulation.

Values are the reference simulator's exact float64 literals: a one-ulp change to any of
them (gravity especially) changes every recorded trace.
"""

SIM_VERSION = "1"

# Level grid: 42x23 playable tiles plus a solid one-tile border ring.
GRID_W = 44
GRID_H = 25
TILE = 24  # pixels per tile
HALF = 12  # pixels per half tile
MAP_UNITS = 6  # map-data coordinate unit in pixels

NINJA_RADIUS = 10

# Motion per tick, in pixels. Jump gravity applies while jump is held early in a jump.
GRAVITY_FALL, GRAVITY_JUMP = 0.06666666666666665, 0.01111111111111111
GROUND_ACCEL, AIR_ACCEL = 0.06666666666666665, 0.04444444444444444
MAX_HOR_SPEED = 3.333
# Velocity multipliers: air drag (slow once the level is won), ground and wall friction.
DRAG_REGULAR, DRAG_SLOW = 0.9933221725495059, 0.8617738760127536
FRICTION_GROUND, FRICTION_GROUND_SLOW = 0.9459290248857720, 0.8617738760127536
FRICTION_WALL = 0.9113380468927672
# Limits: ticks a held jump keeps jump gravity, survivable impact speed, crush ratio.
MAX_JUMP_DURATION, MAX_SURVIVABLE_IMPACT, MIN_SURVIVABLE_CRUSHING = 45, 6, 0.05

# Jump impulses (x, y), as multipliers of the surface normal where the jump follows a slope.
JUMP_FLAT = (0, -2)
JUMP_WALL = (1, -1.4)
JUMP_WALL_SLIDING = (2 / 3, -1)
JUMP_SLOPE_DOWNHILL = (2 / 3, 2)
JUMP_SLOPE_UPHILL_Y = -1.4
JUMP_SLOPE_PERPENDICULAR = (2 / 3, 2)
LAUNCH_PAD_JUMP = (1.7, 2 / 3)  # scalar used for straight-up pads, and the boost factor

# Entities.
LAUNCH_PAD_BOOST = 36 / 7
THWUMP_SPEED_FORWARD, THWUMP_SPEED_BACK = 20 / 7, 8 / 7
BOUNCE_BLOCK_SPRING = (0.02222222222222222, 0.98, 0.2)  # stiffness, dampening, strength
ARC_RADIUS = 24.0

# Ninja states.
IMMOBILE, RUNNING, SLIDING, JUMPING, FALLING, WALL_SLIDING = 0, 1, 2, 3, 4, 5
DEAD, DYING, WON, DISABLED = 6, 7, 8, 9
STATE_NAMES = (
    "immobile", "running", "sliding", "jumping", "falling",
    "wall_sliding", "dead", "dying", "won", "disabled",
)

MAX_TICKS = 20000  # episode length limit shared by replays and the environment
