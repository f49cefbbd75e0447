"""Did a trained model learn its identifiers? The checks that make a collapsed or under-trained
model visible before its R@K is read (DESIGN.md, "How to read a result").

A model that only learnt the prior over identifier tokens emits a few short, frequent
identifiers whatever the query and cannot reproduce the identifiers of the items it memorised.
Four numbers show it: its indexing accuracy (the corpus items' own indexing inputs decoded back
to their identifiers), how many distinct top-1 identifiers it emits over the test queries
against how many it should, their length in tokens against the corpus identifiers', and its
final training loss per target token against a uniform choice among the identifiers its
training targets choose from (train items' identifiers included: the loss is over all of them).

Everything here is a plain function of decoded results (`retrieval.Ranked`); the pipeline step
(`pipeline.diagnostics`) supplies the trained model's decoding, tokenizer and loss.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass

import numpy as np

from semcore.protocol import Query, Task
from semcore.retrieval import Ranked

COLLAPSE_RATIO = 0.5  # collapsed: fewer distinct top-1 identifiers than this share of those reachable


@dataclass(frozen=True)
class Diagnostics:
    """One trained model's diagnostics (percentages in %, lengths in tokens with the end token)."""

    indexing_accuracy: float  # % of corpus items whose own indexing input decodes to their identifier
    indexed_items: int
    queries: int  # test queries
    distinct_top1: int  # distinct top-1 identifiers over the test queries
    distinct_relevant: int  # distinct identifiers of those queries' relevant items
    reachable: int  # the most distinct top-1 a perfect model could emit: min(queries, distinct_relevant)
    distinct_ratio: float  # distinct_top1 / reachable
    top_identifier: str  # the most frequent top-1 identifier ("" if nothing was emitted)
    top_share: float  # % of queries whose top-1 it is
    emitted_tokens: float  # mean tokens of the top-1 identifiers, over the queries
    corpus_tokens: float  # mean tokens of the distinct corpus identifiers
    final_loss: float  # training loss per target token, last logged
    uniform_loss: float  # per token, of a uniform choice among the distinct trained identifiers
    corpus_identifiers: int  # distinct corpus identifiers
    trained_identifiers: int  # distinct identifiers of the training targets (corpus and train items)
    collapsed: bool

    def to_dict(self) -> dict:
        return asdict(self)


def top1(ranked: Ranked) -> str | None:
    """A query's top identifier, None when decoding found none (free decoding can miss)."""
    return ranked.identifiers[0] if ranked.identifiers else None


def index_queries(task: Task) -> list[Query]:
    """Each corpus item's own indexing input (its `role == "index"` pair: the image for T2I, the
    caption text for I2T) as a query whose one relevant item is the item itself; the input the
    model was trained to map to exactly this item's identifier."""
    corpus = set(task.corpus_ids)
    return [Query(pr.item_id, pr.text, pr.image_id, frozenset({pr.item_id}))
            for pr in task.pairs if pr.role == "index" and pr.item_id in corpus]


def indexing_accuracy(task: Task, identifier_of: Callable[[str], str],
                      decode: Callable[[list[Query]], Mapping[str, Ranked]]) -> tuple[float, int]:
    """(% of corpus items whose indexing input decodes, top-1, to their own identifier, items).
    A model that memorised nothing sits near 1 / distinct identifiers; items sharing an
    identifier (group collisions) count as right when that shared identifier comes first."""
    queries = index_queries(task)
    if not queries:
        raise ValueError("the task has no indexing pairs for its corpus items")
    ranked = decode(queries)
    hits = sum(top1(ranked[q.id]) == identifier_of(q.id) for q in queries)
    return 100.0 * hits / len(queries), len(queries)


def reachable(queries: Iterable[Query], identifier_of: Callable[[str], str]) -> tuple[int, int]:
    """(distinct identifiers of the queries' relevant items, the most distinct top-1 identifiers
    a perfect model could emit). A query has one top-1, so the second is at most the number of
    queries: with I2T's five relevant captions per image, the relevant identifiers outnumber the
    queries and comparing against them would flag every model."""
    queries = list(queries)
    relevant = {identifier_of(i) for q in queries for i in q.relevant}
    return len(relevant), min(len(queries), len(relevant))


def is_collapsed(distinct_top1: int, reachable_count: int) -> bool:
    """Collapsed: fewer than half the distinct top-1 identifiers a perfect model would emit."""
    return distinct_top1 < COLLAPSE_RATIO * reachable_count


def uniform_loss(n_identifiers: int, mean_tokens: float) -> float:
    """ln(n) / mean tokens per identifier: the loss per target token of a model that knows the
    set of identifiers but not which one a query asks for. Choosing uniformly among n costs
    ln(n) nats per identifier, and the training loss is summed over target tokens and divided by
    their count, so per token it is ln(n) over the mean identifier length (not a mean of
    per-identifier ratios). A final loss near it means the model learnt the identifiers'
    spelling, not the mapping; well below it, the mapping (on the training pairs)."""
    if n_identifiers < 1 or mean_tokens <= 0:
        raise ValueError(f"need identifiers and tokens, got {n_identifiers} and {mean_tokens}")
    return math.log(n_identifiers) / mean_tokens


def diagnose(task: Task, identifier_of: Callable[[str], str],
             decode: Callable[[list[Query]], Mapping[str, Ranked]],
             ranked: Mapping[str, Ranked], count_tokens: Callable[[str], int],
             final_loss: float) -> Diagnostics:
    """All diagnostics of one trained model: `decode` runs its trie-constrained search over the
    corpus identifiers, `ranked` is its result for the test queries, `count_tokens` the tokens
    it decodes per identifier (end token included), `final_loss` its last training loss."""
    acc, n_items = indexing_accuracy(task, identifier_of, decode)
    tops = [top1(ranked[q.id]) for q in task.queries]
    emitted = [t for t in tops if t is not None]
    distinct_relevant, reach = reachable(task.queries, identifier_of)
    distinct = len(set(emitted))
    common = Counter(emitted).most_common(1)
    top_identifier, top_count = common[0] if common else ("", 0)
    mean_tokens = lambda identifiers: float(np.mean([count_tokens(i) for i in identifiers]))  # noqa: E731
    corpus = sorted({identifier_of(i) for i in task.corpus_ids})
    corpus_tokens = mean_tokens(corpus)
    targets = sorted({identifier_of(pr.item_id) for pr in task.pairs})
    return Diagnostics(
        indexing_accuracy=acc, indexed_items=n_items, queries=len(tops),
        distinct_top1=distinct, distinct_relevant=distinct_relevant, reachable=reach,
        distinct_ratio=distinct / reach if reach else 0.0,
        top_identifier=top_identifier, top_share=100.0 * top_count / len(tops) if tops else 0.0,
        emitted_tokens=mean_tokens(emitted) if emitted else 0.0,
        corpus_tokens=corpus_tokens, final_loss=float(final_loss),
        uniform_loss=uniform_loss(len(targets), mean_tokens(targets)),
        corpus_identifiers=len(corpus), trained_identifiers=len(targets),
        collapsed=is_collapsed(distinct, reach))
