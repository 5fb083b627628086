"""Time one DAgger labelling step with one planner process and with several.

    python scripts/bench_dagger.py [--config configs/generalist.yaml]
        [--levels package:sample_corpus] [--n 16] [--workers 0]

An untrained policy of the config plays ``--n`` levels greedily (it fails nearly all of them),
and the planner labels its failed episodes as a DAgger round does, first in this process, then
twice on ``--workers`` local processes (0: one per CPU); the speedup is against the second.
The labels must be identical (they come back in task order); the script says so and fails
otherwise. Ends with ``name: value`` lines.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from torchrl_bc.resources import SAMPLE_CORPUS, SAMPLE_CORPUS_SOURCE  # noqa: E402
from torchrl_bc.train import load_config  # noqa: E402
from torchrl_bc.train.dagger import DaggerRound, _student_rollouts, label_failures  # noqa: E402
from torchrl_bc.train.evaluate import discover_levels  # noqa: E402
from torchrl_bc.train.factories import make_actor  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(REPO / "configs" / "generalist.yaml"))
    ap.add_argument("--levels", default="package:sample_corpus",
                    help="a folder of replays or maps, or package:sample_corpus")
    ap.add_argument("--n", type=int, default=16, help="levels rolled out and labelled")
    ap.add_argument("--workers", type=int, default=0, help="planner processes (0: one per CPU)")
    args = ap.parse_args()

    cfg = load_config(args.config)
    spec = args.levels
    if spec == SAMPLE_CORPUS_SOURCE:
        spec = str(SAMPLE_CORPUS)
    levels = discover_levels(spec)[:args.n]
    torch.manual_seed(0)
    actor = make_actor(cfg)
    eps = _student_rollouts(actor, levels, cfg, cfg.dagger.label_every)
    workers = args.workers or os.cpu_count() or 1
    figures: dict[str, str] = {"cpus": str(os.cpu_count()), "levels": str(len(levels)),
                               "failed_episodes": str(sum(not e.won for e in eps))}
    labels, seconds = {}, {}
    # The pool's first round also starts the forkserver (imports, compiled kernels): timed
    # apart, as a run pays it once while each later round forks from it warm.
    for tag, n in (("1_workers", 1), (f"{workers}_workers_first", workers),
                   (f"{workers}_workers", workers)):
        c = dataclasses.replace(cfg, dagger=dataclasses.replace(cfg.dagger, workers=n,
                                                                executor="local"))
        stats = DaggerRound(1)
        t0 = time.perf_counter()
        labels[tag] = label_failures(eps, c, stats)
        seconds[tag] = time.perf_counter() - t0
        figures[f"label_seconds_{tag}"] = f"{seconds[tag]:.1f}"
    figures["planner_queries"] = str(stats.queries)
    figures["labels"] = str(len(labels["1_workers"]))
    same = all(len(labels["1_workers"]) == len(other) and all(
        a == b and all(np.array_equal(x[k], y[k]) for k in x)
        for (x, a), (y, b) in zip(labels["1_workers"], other, strict=True))
        for other in labels.values())
    figures["labels_identical"] = str(same).lower()
    figures["speedup"] = f"{seconds['1_workers'] / max(seconds[f'{workers}_workers'], 1e-9):.2f}"
    for k, v in figures.items():
        print(f"{k}: {v}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
