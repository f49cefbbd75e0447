"""The identifier ceiling ranks the corpus by a text score between query and identifier."""
import pytest

from semcore import ceiling, metrics
from semcore.identifiers.base import IdentifierTable
from semcore.protocol import Item, Query, Task
from semcore.retrieval import tie_order


def make_task(sources: dict[str, str], queries: dict[str, tuple[str, str]],
              direction: str = "t2i") -> Task:
    """Test images with the given source texts; queries {id: (text, relevant image id)}."""
    items = tuple(Item(i, "test", text, f"cap_{i}", i) for i, text in sources.items())
    qs = tuple(Query(q, text, None, frozenset({rel})) for q, (text, rel) in queries.items())
    return Task(direction, items, tuple(sources), qs, ())


def make_table(identifiers: dict[str, str]) -> IdentifierTable:
    ids, texts = list(identifiers), list(identifiers.values())
    return IdentifierTable("sid", ids, texts, [""] * len(ids), texts, [""] * len(ids))


def qrels(task: Task) -> dict[str, set[str]]:
    return {q.id: set(q.relevant) for q in task.queries}


SOURCES = {"a": "A dog runs across the green grass.", "b": "A black dog sleeps on a sofa.",
           "c": "A cat sleeps on a sofa.", "d": "A man rides a bike down the road."}
IDENTIFIERS = {"a": "dog grass", "b": "dog sofa", "c": "cat sofa", "d": "man bike road"}
QUERIES = {"q1": ("The dog is on the grass", "a"), "q2": ("Someone rides a bike", "d"),
           "q3": ("A cat sleeps on the sofa", "c")}


def test_words_are_lower_case_word_runs():
    assert ceiling.words("A Dog's ball, two-by-4!") == ["a", "dog", "s", "ball", "two", "by", "4"]


def test_bm25_ranks_by_shared_query_words():
    task = make_task(SOURCES, QUERIES)
    ranked = ceiling.identifier_rankings(task, make_table(IDENTIFIERS), "bm25")
    # q1 shares dog and grass with a, only dog with b, nothing with c or d (their order: ties)
    assert ranked["q1"][:2] == ["a", "b"] and set(ranked["q1"][2:]) == {"c", "d"}
    assert ranked["q2"][0] == "d"
    assert ranked["q3"][:2] == ["c", "b"]  # c shares cat and sofa, b only sofa
    assert metrics.recall_at_k(ranked, qrels(task), ks=(1,))["R@1"] == 100.0


def test_minilm_cosine_puts_the_matching_identifier_first():
    idents = {"a": "dog running on grass", "b": "stock market finance report",
              "c": "kitchen oven baking bread", "d": "mountain snow skiing"}
    queries = {"q1": ("A puppy runs through the grass", "a"),
               "q2": ("A woman takes bread out of the oven", "c"),
               "q3": ("Skiers going down a snowy mountain", "d")}
    task = make_task(SOURCES, queries)
    ranked = ceiling.identifier_rankings(task, make_table(idents), "minilm")
    assert metrics.recall_at_k(ranked, qrels(task), ks=(1,))["R@1"] == 100.0
    assert all(sorted(r) == sorted(idents) for r in ranked.values())


@pytest.mark.parametrize("scorer", ["bm25", "minilm"])
def test_ties_follow_tie_order_never_the_correct_item(scorer):
    """Twenty items share one identifier and the correct one is listed first: if ties kept the
    corpus order (or favoured relevance) every query would be a hit at rank 1."""
    sources = {f"i{n:02d}": f"caption {n}" for n in range(20)}
    idents = {item: "red kite beach" for item in sources}
    queries = {f"q{n}": ("A red kite on the beach", "i00") for n in range(20)}
    task = make_task(sources, queries)
    ranked = ceiling.identifier_rankings(task, make_table(idents), scorer, seed=3)
    for q in queries:
        assert ranked[q] == tie_order(list(sources), q, 3)
    assert metrics.recall_at_k(ranked, qrels(task), ks=(1,))["R@1"] < 50
    # reproducible, and independent of which item is correct
    moved = make_task(sources, {q: (text, "i07") for q, (text, _) in queries.items()})
    assert ceiling.identifier_rankings(moved, make_table(idents), scorer, seed=3) == ranked


def test_ties_only_reorder_equal_scores():
    sources = {f"i{n}": f"caption {n}" for n in range(6)}
    idents = {"i0": "zebra", "i1": "zebra", "i2": "dog grass", "i3": "zebra", "i4": "dog",
              "i5": "dog grass"}
    task = make_task(sources, {"q": ("dog on grass", "i0")})
    ranked = ceiling.identifier_rankings(task, make_table(idents), "bm25")["q"]
    assert set(ranked[:2]) == {"i2", "i5"} and ranked[2] == "i4"
    assert ranked[:2] == [i for i in tie_order(list(sources), "q", 0) if i in {"i2", "i5"}]


@pytest.mark.parametrize("scorer", ["bm25", "minilm"])
def test_source_text_row_is_the_ranking_with_source_texts_as_identifiers(scorer):
    task = make_task(SOURCES, QUERIES)
    as_table = make_table({i: task.item(i).source_text for i in task.corpus_ids})
    source = ceiling.source_text_rankings(task, scorer, seed=1)
    assert source == ceiling.identifier_rankings(task, as_table, scorer, seed=1)


def test_source_text_row_reads_the_source_text_not_the_identifier():
    """"green" is in item a's caption but in no identifier."""
    task = make_task(SOURCES, {"q": ("green", "a")})
    assert ceiling.source_text_rankings(task, "bm25")["q"][0] == "a"
    by_identifier = ceiling.identifier_rankings(task, make_table(IDENTIFIERS), "bm25")["q"]
    assert by_identifier == tie_order(list(SOURCES), "q", 0)


def test_depth_truncates_and_rankings_are_scorable():
    task = make_task(SOURCES, QUERIES)
    ranked = ceiling.identifier_rankings(task, make_table(IDENTIFIERS), "bm25", depth=2)
    assert set(ranked) == set(QUERIES) and all(len(r) == 2 for r in ranked.values())
    assert metrics.recall_at_k(ranked, qrels(task), ks=(1, 2))["R@2"] == 100.0


def test_image_queries_have_no_ceiling():
    task = make_task(SOURCES, QUERIES, direction="i2t")
    with pytest.raises(ValueError, match="i2t"):
        ceiling.identifier_rankings(task, make_table(IDENTIFIERS), "bm25")
    with pytest.raises(ValueError, match="scorer"):
        ceiling.identifier_rankings(make_task(SOURCES, QUERIES), make_table(IDENTIFIERS), "tfidf")
