"""Retrieval metrics as the paper reports them (§4.1.1), defined once and tested against ir-measures.

Input: per query, a ranked list of distinct item ids (best first) and the set of item ids that
count as correct for it.

- rank of a query: the 1-based position of its first correct item in its list, or None when no
  correct item is in the list. For image-to-text an image has five correct captions, so its rank
  is the best rank of any of them.
- R@K: the percentage of queries whose rank is ≤ K. The denominator is always all queries: a
  query whose list holds no correct item (or is empty) is a miss, never dropped.
- rSum: the sum of the reported R@K. The paper reports K = 1, 5 and its rSum is R@1 + R@5;
  recall_at_k(..., ks=(1, 5)) gives exactly that, the default ks=(1, 5, 10) gives R@1+R@5+R@10.
- MRR: the mean of 1/rank, a miss contributing 0.

R@K here means "a correct target in the top K" (ir-measures' Success@K, scaled to percent). It
differs from IR recall (the fraction of a query's relevant items retrieved) whenever a query has
several relevant items, as every image-to-text query does; with one relevant item they coincide.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping


def _check(rankings: Mapping[str, list[str]], qrels: Mapping[str, Iterable[str]]) -> None:
    """Both sides must name the same queries: a silently dropped query would inflate R@K."""
    unjudged = sorted(set(rankings) - set(qrels))
    if unjudged:
        raise ValueError(f"queries ranked but without qrels: {unjudged[:10]}")
    unranked = sorted(set(qrels) - set(rankings))
    if unranked:
        raise ValueError(f"queries with qrels but no ranking: {unranked[:10]}")
    for query, ranking in rankings.items():
        if len(set(ranking)) != len(ranking):
            twice = sorted({i for i in ranking if ranking.count(i) > 1})
            raise ValueError(f"query {query!r}: duplicate item ids in its ranking: {twice[:10]}")


def ranks(rankings: Mapping[str, list[str]],
          qrels: Mapping[str, Iterable[str]]) -> dict[str, int | None]:
    """Each query's 1-based rank of its best-ranked correct item, None if none is ranked."""
    _check(rankings, qrels)
    out: dict[str, int | None] = {}
    for query, ranking in rankings.items():
        relevant = set(qrels[query])
        out[query] = next((pos for pos, item in enumerate(ranking, 1) if item in relevant), None)
    return out


def hits(rankings: Mapping[str, list[str]], qrels: Mapping[str, Iterable[str]],
         ks: tuple[int, ...] = (1, 5, 10)) -> dict[int, list[bool]]:
    """{k: whether each query's rank is ≤ k}, queries in sorted id order: the per-query terms
    whose mean is R@k, so that two runs on the same queries line up (semcore.stats)."""
    if not ks or any(k < 1 for k in ks):
        raise ValueError(f"ks must be positive cut-offs, got {ks}")
    found = ranks(rankings, qrels)
    if not found:
        raise ValueError("no queries to evaluate")
    order = sorted(found)
    return {k: [found[q] is not None and found[q] <= k for q in order] for k in ks}


def recall_at_k(rankings: Mapping[str, list[str]], qrels: Mapping[str, Iterable[str]],
                ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """{"R@k": percent for k in ks, "rSum": sum of those, "queries": n}."""
    per_query = hits(rankings, qrels, ks)
    n = len(per_query[ks[0]])
    out: dict[str, float] = {f"R@{k}": 100.0 * sum(h) / n for k, h in per_query.items()}
    out["rSum"] = sum(out[f"R@{k}"] for k in ks)
    out["queries"] = n
    return out


def mean_reciprocal_rank(rankings: Mapping[str, list[str]],
                         qrels: Mapping[str, Iterable[str]]) -> float:
    """Mean of 1/rank over all queries (a miss counts 0); a fraction, not a percent."""
    found = ranks(rankings, qrels)
    if not found:
        raise ValueError("no queries to evaluate")
    return sum(1.0 / r for r in found.values() if r is not None) / len(found)
