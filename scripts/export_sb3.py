"""Export a BC checkpoint to SB3: ``python scripts/export_sb3.py CKPT --out FILE.pt [--warmup]``.

The same as ``torchrl-bc export`` (and, with ``--warmup``, ``torchrl-bc warmup-critic`` on the
result, levels from ``--levels``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import sys

from torchrl_bc.commands import export as export_cmd
from torchrl_bc.commands import warmup_critic as warm_cmd


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    export_cmd.configure(p)
    p.add_argument("--warmup", action="store_true", help="also warm the critic up")
    p.add_argument("--levels", default=None, help="warm-up levels (directory or suite)")
    p.add_argument("--warmup-steps", type=int, default=20000)
    p.add_argument("--gamma", type=float, default=0.99)
    args = p.parse_args(argv)
    rc = export_cmd.run(args)
    if rc or not args.warmup:
        return rc
    return warm_cmd.run(argparse.Namespace(
        source=args.out, out=args.out, levels=args.levels, steps=args.warmup_steps,
        gamma=args.gamma, epochs=20, lr=1e-3, n_envs=8, tick_factor=3.0, max_ticks=5000,
        seed=args.seed))


if __name__ == "__main__":
    sys.exit(main())
