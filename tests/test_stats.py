"""Bootstrap intervals over queries and the paired bootstrap test against textbook cases."""
from __future__ import annotations

import math

import numpy as np
import pytest

from semcore import metrics, stats


def test_all_hits_or_all_misses_have_no_spread():
    assert stats.interval([True] * 40) == (100.0, 100.0, 100.0)
    assert stats.interval([False] * 40) == (0.0, 0.0, 0.0)


def test_bernoulli_interval_matches_the_normal_approximation():
    n = 2000
    x = np.random.default_rng(7).random(n) < 0.3
    r, lo, hi = stats.interval(x, seed=1)
    p = x.mean()
    half = 100 * 1.96 * math.sqrt(p * (1 - p) / n)  # about 2 points
    assert r == pytest.approx(100 * p)
    assert lo == pytest.approx(100 * p - half, abs=0.5)
    assert hi == pytest.approx(100 * p + half, abs=0.5)


def test_same_seed_same_numbers():
    x = np.random.default_rng(0).random(160) < 0.2
    y = np.random.default_rng(1).random(160) < 0.3
    assert stats.interval(x, seed=3) == stats.interval(x, seed=3)
    assert stats.paired_difference(x, y, seed=3) == stats.paired_difference(x, y, seed=3)


def test_identical_runs_differ_by_zero_with_p_one():
    x = np.random.default_rng(0).random(40) < 0.5
    d = stats.paired_difference(x, x.copy())
    assert (d.diff, d.lo, d.hi, d.p) == (0.0, 0.0, 0.0, 1.0)
    assert not d.significant


def test_a_run_hitting_strictly_more_queries_is_significantly_better():
    worse = np.random.default_rng(0).random(160) < 0.2
    better = worse.copy()
    better[np.flatnonzero(~worse)[:16]] = True  # 16 more hits, none lost: +10 points
    d = stats.paired_difference(better, worse)
    assert d.diff == pytest.approx(10.0)
    assert 0 < d.lo <= d.diff <= d.hi and d.significant and d.p < 0.01
    flipped = stats.paired_difference(worse, better)
    assert flipped.diff == pytest.approx(-10.0) and flipped.hi < 0 and flipped.p == d.p


def test_pairing_narrows_the_interval_of_a_difference():
    """Two runs that agree on most queries: the paired interval is far narrower than two
    independent intervals would suggest."""
    a = np.random.default_rng(0).random(160) < 0.5
    b = a.copy()
    b[:4] = ~b[:4]
    d = stats.paired_difference(a, b)
    _, lo, hi = stats.interval(a)
    assert d.hi - d.lo < (hi - lo) / 2


def test_paired_runs_need_the_same_queries():
    with pytest.raises(ValueError, match="same queries"):
        stats.paired_difference([True] * 3, [True] * 4)
    with pytest.raises(ValueError, match="non-empty"):
        stats.interval([])


def test_metrics_hits_are_the_terms_of_recall_at_k():
    rankings = {"b": ["n", "t"], "a": ["t"], "c": ["n"], "d": []}
    qrels = {q: {"t"} for q in rankings}
    found = metrics.hits(rankings, qrels, ks=(1, 5))
    assert found == {1: [True, False, False, False], 5: [True, True, False, False]}  # a, b, c, d
    scores = metrics.recall_at_k(rankings, qrels, ks=(1, 5))
    assert [stats.interval(found[k])[0] for k in (1, 5)] == [scores["R@1"], scores["R@5"]]
