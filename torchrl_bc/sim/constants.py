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

GRAVITY_FALL = 0.06666666666666665
GRAVITY_JUMP = 0.01111111111111111
GROUND_ACCEL = 0.06666666666666665
AIR_ACCEL = 0.04444444444444444
DRAG_REGULAR = 0.9933221725495059
DRAG_SLOW = 0.8617738760127536
FRICTION_GROUND = 0.9459290248857720
FRICTION_GROUND_SLOW = 0.8617738760127536
FRICTION_WALL = 0.9113380468927672
MAX_HOR_SPEED = 3.333
MAX_JUMP_DURATION = 45
MAX_SURVIVABLE_IMPACT = 6
MIN_SURVIVABLE_CRUSHING = 0.05

JUMP_FLOOR_Y = -2
JUMP_WALL_REGULAR_X = 1
JUMP_WALL_REGULAR_Y = -1.4
JUMP_WALL_SLIDE_X = 2 / 3
JUMP_WALL_SLIDE_Y = -1
JUMP_SLOPE_DOWNHILL_X = 2 / 3
JUMP_SLOPE_DOWNHILL_Y = 2
JUMP_SLOPE_UPHILL_Y = -1.4
JUMP_SLOPE_PERP_X = 2 / 3
JUMP_SLOPE_PERP_Y = 2
LAUNCH_PAD_JUMP_SCALAR = 1.7
LAUNCH_PAD_JUMP_FACTOR = 2 / 3

# Ninja states.
IMMOBILE, RUNNING, SLIDING, JUMPING, FALLING, WALL_SLIDING = 0, 1, 2, 3, 4, 5
DEAD, DYING, WON, DISABLED = 6, 7, 8, 9
STATE_NAMES = (
    "immobile", "running", "sliding", "jumping", "falling",
    "wall_sliding", "dead", "dying", "won", "disabled",
)

MAX_TICKS = 20000  # episode length limit shared by replays and the environment
