"""How far an R@K could move by chance: bootstrap intervals over the test queries.

A test set of n queries moves R@K in steps of 100/n points (0.6 at 160 queries, 2.5 at 40), so
two rows of a table can differ by luck of the query sample alone. Both functions here treat the
queries as the random sample and the trained models as fixed: they resample the queries with
replacement B times (numpy default_rng(seed), so the same input and seed give the same numbers)
and read 95 % intervals off the percentiles of the resampled R@K.

Input: per-query hits, one bool per query in a fixed query order (semcore.metrics.hits).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

B = 1000
LEVEL = 0.95


def _hits(hits) -> np.ndarray:
    x = np.asarray(hits, dtype=float)
    if x.ndim != 1 or not len(x):
        raise ValueError(f"hits must be a non-empty 1-d sequence, got shape {x.shape}")
    return x


def _resampled_r(x: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """R@K (percent) of each bootstrap sample of query indices (one sample per row)."""
    return 100.0 * x[samples].mean(axis=1)


def _samples(n: int, n_boot: int, seed: int) -> np.ndarray:
    """n_boot rows of n query indices drawn with replacement."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _percentiles(values: np.ndarray) -> tuple[float, float]:
    tail = 100 * (1 - LEVEL) / 2
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def interval(hits, n_boot: int = B, seed: int = 0) -> tuple[float, float, float]:
    """(R@K, lo, hi) in percent: R@K of the hits and its 95 % percentile bootstrap interval
    over queries."""
    x = _hits(hits)
    return (float(100.0 * x.mean()), *_percentiles(_resampled_r(x, _samples(len(x), n_boot, seed))))


@dataclass(frozen=True)
class Difference:
    """R@K of run a minus run b in points, its 95 % interval and two-sided p-value."""
    diff: float
    lo: float
    hi: float
    p: float

    @property
    def significant(self) -> bool:
        """Whether the 95 % interval excludes 0."""
        return not self.lo <= 0.0 <= self.hi


def paired_difference(a, b, n_boot: int = B, seed: int = 0) -> Difference:
    """Paired bootstrap over queries of R@K(a) − R@K(b), two runs on the same queries.

    Each resample draws one set of query indices for both runs, so what the runs share (easy
    and hard queries) cancels and only their disagreements vary. p is the share of resampled
    differences on the other side of 0 from the observed one (0 counted as the other side),
    doubled and capped at 1: identical runs give p = 1.
    """
    x, y = _hits(a), _hits(b)
    if len(x) != len(y):
        raise ValueError(f"paired runs need the same queries, got {len(x)} and {len(y)} hits")
    samples = _samples(len(x), n_boot, seed)
    diffs = _resampled_r(x, samples) - _resampled_r(y, samples)
    observed = 100.0 * (x.mean() - y.mean())
    other_side = np.mean(diffs <= 0) if observed >= 0 else np.mean(diffs >= 0)
    return Difference(float(observed), *_percentiles(diffs), p=float(min(1.0, 2 * other_side)))
