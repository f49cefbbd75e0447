"""R@K, rSum and MRR: hand-computed cases, then agreement with ir-measures' Success@K."""
from __future__ import annotations

import random

import ir_measures
import pytest
from ir_measures import Success

from semcore import metrics


def test_ranks_first_relevant_position():
    rankings = {"a": ["x", "y", "z"], "b": ["z", "y"], "c": ["q"], "d": []}
    qrels = {"a": {"y"}, "b": {"z"}, "c": {"x"}, "d": {"x"}}
    assert metrics.ranks(rankings, qrels) == {"a": 2, "b": 1, "c": None, "d": None}


def test_i2t_rank_is_best_of_five_captions():
    captions = {f"c{i}" for i in range(5)}
    rankings = {"img": ["n1", "c3", "n2", "c0", "c4"]}
    assert metrics.ranks(rankings, {"img": captions}) == {"img": 2}
    scores = metrics.recall_at_k(rankings, {"img": captions})
    assert scores["R@1"] == 0.0 and scores["R@5"] == 100.0


def test_recall_counts_misses_and_empty_rankings_in_denominator():
    rankings = {"hit1": ["t"], "hit3": ["n", "m", "t"], "miss": ["n"], "empty": []}
    qrels = {q: {"t"} for q in rankings}
    assert metrics.recall_at_k(rankings, qrels) == {
        "R@1": 25.0, "R@5": 50.0, "R@10": 50.0, "rSum": 125.0, "queries": 4}


def test_paper_rsum_is_r1_plus_r5():
    rankings = {"a": ["t"], "b": ["n", "t"], "c": [f"n{i}" for i in range(7)] + ["t"]}
    qrels = {q: {"t"} for q in rankings}
    scores = metrics.recall_at_k(rankings, qrels, ks=(1, 5))
    assert set(scores) == {"R@1", "R@5", "rSum", "queries"}
    assert scores["rSum"] == pytest.approx(100 / 3 + 200 / 3)


def test_tied_ranks_across_queries():
    """Several queries sharing a rank are each counted once at that rank."""
    rankings = {q: ["n", "t"] for q in "abc"} | {"d": ["t"]}
    qrels = {q: {"t"} for q in rankings}
    scores = metrics.recall_at_k(rankings, qrels, ks=(1, 2))
    assert (scores["R@1"], scores["R@2"]) == (25.0, 100.0)
    assert metrics.mean_reciprocal_rank(rankings, qrels) == pytest.approx((3 * 0.5 + 1) / 4)


@pytest.mark.parametrize("rankings, qrels, needle", [
    ({"a": [], "b": []}, {"a": {"x"}}, "'b'"),
    ({"a": []}, {"a": {"x"}, "c": {"x"}}, "'c'"),
    ({"a": ["x", "y", "x"]}, {"a": {"x"}}, "'x'"),
])
def test_errors_name_the_query_or_item(rankings, qrels, needle):
    with pytest.raises(ValueError, match=needle):
        metrics.recall_at_k(rankings, qrels)


def test_no_queries_or_bad_cutoff_is_an_error():
    with pytest.raises(ValueError):
        metrics.recall_at_k({}, {})
    with pytest.raises(ValueError):
        metrics.recall_at_k({"a": ["x"]}, {"a": {"x"}}, ks=(0,))


def random_case(seed: int, n_queries: int = 300, corpus: int = 60):
    """Non-empty rankings; 1–5 relevant items per query; some queries retrieve none of them."""
    rng = random.Random(seed)
    items = [f"d{i}" for i in range(corpus)]
    rankings, qrels = {}, {}
    for q in range(n_queries):
        relevant = set(rng.sample(items, rng.choice([1, 1, 5, rng.randint(2, 5)])))
        ranking = rng.sample(items, rng.randint(1, 20))
        if rng.random() < 0.2:
            ranking = [i for i in ranking if i not in relevant] or [
                next(i for i in items if i not in relevant)]
        rankings[f"q{q}"], qrels[f"q{q}"] = ranking, relevant
    return rankings, qrels


@pytest.mark.parametrize("seed", range(3))
def test_agrees_with_ir_measures_success(seed):
    rankings, qrels = random_case(seed)
    assert any(r is None for r in metrics.ranks(rankings, qrels).values())
    assert any(len(rel) > 1 for rel in qrels.values())
    ks = (1, 3, 5, 10, 20)
    ours = metrics.recall_at_k(rankings, qrels, ks=ks)
    run = {q: {item: float(len(r) - pos) for pos, item in enumerate(r)} for q, r in rankings.items()}
    theirs = ir_measures.calc_aggregate(
        [Success @ k for k in ks] + [ir_measures.RR],
        {q: {item: 1 for item in rel} for q, rel in qrels.items()}, run)
    for k in ks:
        assert ours[f"R@{k}"] / 100 == pytest.approx(theirs[Success @ k], abs=1e-9)
    assert metrics.mean_reciprocal_rank(rankings, qrels) == pytest.approx(
        theirs[ir_measures.RR], abs=1e-9)
