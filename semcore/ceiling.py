"""The identifier ceiling: how far a perfect generator of an identifier could get.

A generative retriever only tells corpus items apart by what their identifiers say, so the
best it can do is bounded by how well the identifier text alone matches a query. Here every
test query's text is scored against every corpus item's identifier text with a plain text
score — BM25 over lower-case words, or the cosine of MiniLM sentence embeddings — and the
corpus is ranked by it. No model is trained and nothing is tuned, so the test queries can be
used. The same ranking over each item's own source text (the caption its identifier is built
from) is the ceiling of the source itself: what any identifier distilled from it gives up.

Defined for text-to-image only: image-to-text queries are images, which have no text to
score (rankings raises ValueError for them). Items whose texts score equally are ordered by
retrieval.tie_order, reproducibly and independently of which item is correct.
"""
from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from semcore.identifiers.base import IdentifierTable
from semcore.protocol import Task
from semcore.retrieval import tie_order


def words(text: str) -> list[str]:
    """BM25's tokens: lower-case runs of letters and digits (`\\w+`); no stop words are dropped
    and nothing is stemmed, so "two", "front" or "one" count as in a caption. The caption row
    depends on this by about a point (Flickr8k T2I BM25 R@1 27.1; 28.0 with English stop words
    dropped); SID identifiers, being keywords, hardly do."""
    return re.findall(r"\w+", text.lower())


def bm25_scores(queries: list[str], docs: list[str]) -> np.ndarray:
    """(queries, docs) Okapi BM25 scores (bm25s, Lucene variant, k1 1.5, b 0.75) of each query's
    words against each doc's words; the docs are the whole collection its IDF is taken over."""
    import bm25s

    model = bm25s.BM25()
    model.index([words(d) for d in docs], show_progress=False)
    ids = [model.get_tokens_ids(words(q)) for q in queries]  # words no doc has are left out
    return np.array([model.get_scores_from_ids(i) if i else np.zeros(len(docs)) for i in ids],
                    dtype=np.float64).reshape(len(queries), len(docs))


def cosine_scores(queries: list[str], docs: list[str]) -> np.ndarray:
    """(queries, docs) cosine similarity of the offline all-MiniLM-L6-v2 embeddings."""
    from semcore.embeddings import encode_texts

    return encode_texts(queries).astype(np.float64) @ encode_texts(docs).astype(np.float64).T


SCORERS: dict[str, Callable[[list[str], list[str]], np.ndarray]] = {
    "bm25": bm25_scores, "minilm": cosine_scores}


def check_direction(direction: str) -> None:
    """Only text-to-image queries have a text to score against identifiers."""
    if direction != "t2i":
        raise ValueError(f"the identifier ceiling needs text queries: direction {direction!r} "
                         "has image queries (only 't2i' is defined)")


def rankings(task: Task, item_text: Callable[[str], str], scorer: str, seed: int = 0,
             depth: int = 100) -> dict[str, list[str]]:
    """{query id: the top `depth` corpus item ids, best first} by scorer(query text, item_text(id)).

    Each distinct text is scored once, so items with the same text (a shared identifier) get
    exactly the same score; equal scores keep tie_order's relevance-blind order (stable sort).
    """
    if scorer not in SCORERS:
        raise ValueError(f"unknown scorer {scorer!r}; valid: {sorted(SCORERS)}")
    check_direction(task.direction)
    if any(q.text is None for q in task.queries):
        raise ValueError("the identifier ceiling needs text queries; some have none")
    corpus_ids = list(task.corpus_ids)
    texts = [item_text(i) for i in corpus_ids]
    distinct = sorted(set(texts))
    column = {text: c for c, text in enumerate(distinct)}
    scores = SCORERS[scorer]([q.text for q in task.queries], distinct)
    scores = scores[:, [column[text] for text in texts]]  # (queries, corpus items)
    row = {item: r for r, item in enumerate(corpus_ids)}
    out: dict[str, list[str]] = {}
    for q, s in zip(task.queries, scores):
        ties = np.array([row[i] for i in tie_order(corpus_ids, q.id, seed)])
        best = ties[np.argsort(-s[ties], kind="stable")[:depth]]
        out[q.id] = [corpus_ids[j] for j in best]
    return out


def identifier_rankings(task: Task, table: IdentifierTable, scorer: str, seed: int = 0,
                        depth: int = 100) -> dict[str, list[str]]:
    """The ceiling of an identifier scheme: corpus items ranked by their identifier text."""
    return rankings(task, table.of, scorer, seed, depth)


def source_text_rankings(task: Task, scorer: str, seed: int = 0,
                         depth: int = 100) -> dict[str, list[str]]:
    """The ceiling of the source text: corpus items ranked by the text identifiers come from."""
    return rankings(task, lambda item: task.item(item).source_text, scorer, seed, depth)
