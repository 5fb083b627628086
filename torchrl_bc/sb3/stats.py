"""Statistics for comparing RL runs over seeds: IQM, stratified bootstrap, steps to reach, plateau.

A handful of seeds is too few for a mean to mean much and too many outliers for a median alone;
the interquartile mean (mean of the middle half) with a stratified bootstrap interval is the
summary rliable recommends (Agarwal et al., 2021). These few lines stand in for that package.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["bootstrap_ci", "iqm", "is_flat", "plateau_index", "steps_to_reach"]


def iqm(scores: Sequence[float] | np.ndarray) -> float:
    """Interquartile mean of all scores: drop ``floor(n / 4)`` from each end, average the rest.

    ``scores`` may be 1-D (runs) or 2-D (runs x tasks); the middle half is taken over every
    score, as in rliable. With fewer than 4 scores nothing is dropped (the plain mean).
    """
    x = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    if x.size == 0:
        raise ValueError("iqm of no scores")
    cut = x.size // 4
    return float(x[cut:x.size - cut].mean())


def bootstrap_ci(scores: Sequence[float] | np.ndarray, *, confidence: float = 0.95,
                 reps: int = 2000, seed: int = 0, statistic=iqm) -> tuple[float, float]:
    """Percentile interval of ``statistic`` under a stratified bootstrap of the runs.

    ``scores`` is runs x tasks (1-D means one task): each task's runs are resampled with
    replacement independently of the other tasks, so every task keeps its weight. Seeded, so
    the same scores give the same interval.
    """
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"scores must be runs x tasks with at least one run, got {x.shape}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    runs, tasks = x.shape
    idx = rng.integers(0, runs, size=(reps, runs, tasks))
    samples = np.take_along_axis(np.broadcast_to(x, (reps, runs, tasks)), idx, axis=1)
    stats = np.array([statistic(s) for s in samples]) if statistic is not iqm else \
        _iqm_rows(samples.reshape(reps, -1))
    lo, hi = np.quantile(stats, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


def _iqm_rows(rows: np.ndarray) -> np.ndarray:
    """:func:`iqm` of each row, vectorised (the bootstrap calls it thousands of times)."""
    s = np.sort(rows, axis=1)
    cut = s.shape[1] // 4
    return s[:, cut:s.shape[1] - cut].mean(axis=1)


def steps_to_reach(steps: Sequence[int], values: Sequence[float | None], target: float,
                   *, atol: float = 1e-9) -> int | None:
    """The first step whose value reaches ``target`` (None: never within these steps)."""
    if len(steps) != len(values):
        raise ValueError("steps and values must have the same length")
    for step, value in zip(steps, values, strict=True):
        if value is not None and value >= target - atol:
            return int(step)
    return None


def is_flat(values: Sequence[float], window: int, tol: float) -> bool:
    """Whether the curve has flattened at its last evaluation.

    Flat: the last ``window`` evaluations are all within ``tol`` of the best value so far, and
    none beats the best before them by more than ``tol``. A curve still climbing by more than
    ``tol`` per ``window`` evaluations is not flat, nor is one that fell away from its best;
    at least one evaluation must precede the window.
    """
    if window < 2:
        raise ValueError(f"window must be at least 2, got {window}")
    if tol < 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    v = np.asarray(values, dtype=np.float64)
    if v.size <= window:
        return False
    before, last = v[:-window].max(), v[-window:]
    best = max(before, last.max())
    return bool(last.max() <= before + tol and last.min() >= best - tol)


def plateau_index(values: Sequence[float], window: int, tol: float) -> int | None:
    """Index of the first evaluation at which :func:`is_flat` holds (None: never)."""
    for i in range(window + 1, len(values) + 1):
        if is_flat(values[:i], window, tol):
            return i - 1
    if window < 2 or tol < 0:  # the same errors for a curve too short to test
        is_flat([], window, tol)
    return None
