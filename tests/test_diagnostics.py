"""The model diagnostics flag a collapsed model, and their reference numbers are right."""
import math

import pytest

from semcore import diagnostics
from semcore.protocol import Item, Pair, Query, Task
from semcore.retrieval import Ranked

IDS = {"a": "dog grass", "b": "dog sofa", "c": "cat sofa", "d": "man bike road"}
TRAIN_IDS = {"t": "dog park"}  # the train image's identifier: a training target, not in the corpus
identifier_of = {**IDS, **TRAIN_IDS}.__getitem__


def make_task() -> Task:
    """Four test images (corpus), one train image, two caption queries per test image."""
    items = tuple(Item(i, "test", f"src {i}", f"cap_{i}", i) for i in IDS)
    items += (Item("t", "train", "src t", "cap_t", "t"),)
    queries = tuple(Query(f"q{i}{n}", f"caption {n} of {i}", None, frozenset({i}))
                    for i in IDS for n in (1, 2))
    pairs = tuple(Pair("image", None, i, i, i, "index") for i in [*IDS, "t"])
    pairs += tuple(Pair("text", f"src {i}", None, i, f"cap_{i}", "pseudo_query") for i in IDS)
    return Task("t2i", items, tuple(IDS), queries, pairs)


def ranked(*identifiers: str) -> Ranked:
    return Ranked([[i] for i in identifiers], list(identifiers), [-1.0] * len(identifiers))


def tokens(identifier: str) -> int:
    return len(identifier.split()) + 1  # words plus the end token


def test_index_queries_are_the_corpus_items_own_indexing_inputs():
    queries = diagnostics.index_queries(make_task())
    assert [(q.id, q.image_id, q.text, set(q.relevant)) for q in queries] == \
        [(i, i, None, {i}) for i in IDS]  # not the train image, not the pseudo-queries


def test_indexing_accuracy_with_a_fake_decode():
    seen = []

    def decode(queries):
        seen.extend(q.id for q in queries)
        wrong = {"c": "dog sofa", "d": None}  # c decodes to b's identifier, d to nothing
        return {q.id: ranked() if wrong.get(q.id, 1) is None else ranked(wrong.get(q.id, IDS[q.id]))
                for q in queries}

    acc, n = diagnostics.indexing_accuracy(make_task(), IDS.__getitem__, decode)
    assert seen == list(IDS) and n == 4 and acc == 50.0


def test_uniform_loss_matches_a_hand_computation():
    # 4 distinct identifiers of 3, 3, 3 and 4 tokens: ln 4 nats per identifier over 3.25 tokens
    assert diagnostics.uniform_loss(4, 3.25) == pytest.approx(1.3862943611198906 / 3.25)
    assert diagnostics.uniform_loss(1, 2.0) == 0.0
    with pytest.raises(ValueError):
        diagnostics.uniform_loss(0, 3.0)


def diagnose(top1: dict[str, str]) -> diagnostics.Diagnostics:
    task = make_task()
    perfect = lambda queries: {q.id: ranked(IDS[q.id]) for q in queries}  # noqa: E731
    return diagnostics.diagnose(task, identifier_of, perfect,
                                {q: ranked(i, "cat sofa") for q, i in top1.items()}, tokens, 0.4)


def test_everyone_getting_the_same_top1_is_collapsed():
    d = diagnose({q.id: "dog grass" for q in make_task().queries})
    assert d.collapsed and d.distinct_top1 == 1 and d.reachable == 4 and d.distinct_ratio == 0.25
    assert (d.top_identifier, d.top_share) == ("dog grass", 100.0)
    assert d.emitted_tokens == 3.0 and d.corpus_tokens == 3.25  # (3+3+3+4)/4
    # uniform among the 5 trained identifiers (the train image's too) of 3, 3, 3, 4, 3 tokens
    assert d.uniform_loss == pytest.approx(math.log(5) / 3.2) and d.final_loss == 0.4
    assert (d.corpus_identifiers, d.trained_identifiers) == (4, 5)
    assert d.indexing_accuracy == 100.0 and d.indexed_items == 4 and d.queries == 8


def test_diverse_rankings_are_not_collapsed():
    task = make_task()
    d = diagnose({q.id: IDS[next(iter(q.relevant))] for q in task.queries})
    assert not d.collapsed and d.distinct_top1 == 4 and d.distinct_ratio == 1.0
    assert d.top_share == 25.0 and d.emitted_tokens == pytest.approx((3 + 3 + 3 + 4) / 4)


def test_half_the_reachable_identifiers_is_the_threshold():
    two = {q.id: ("dog grass" if n % 2 else "dog sofa") for n, q in enumerate(make_task().queries)}
    assert not diagnose(two).collapsed  # 2 of 4: not below half
    assert diagnostics.is_collapsed(1, 3) and not diagnostics.is_collapsed(2, 3)


def test_reachable_counts_one_top1_per_query():
    """I2T: an image has five relevant captions, yet gives one top-1: a perfect model emits at
    most one distinct identifier per query, so it must not look collapsed."""
    caps = {f"{im}{k}": f"{im} caption {k}" for im in "xy" for k in range(5)}
    queries = [Query(im, None, im, frozenset(f"{im}{k}" for k in range(5))) for im in "xy"]
    assert diagnostics.reachable(queries, caps.__getitem__) == (10, 2)
    assert not diagnostics.is_collapsed(2, 2) and diagnostics.is_collapsed(0, 2)


def test_a_query_without_any_identifier_counts_in_the_share_but_emits_nothing():
    task = make_task()
    rankings = {q.id: ranked("dog grass") for q in task.queries}
    rankings["qa1"] = ranked()
    d = diagnostics.diagnose(task, identifier_of, lambda qs: {q.id: ranked(IDS[q.id]) for q in qs},
                             rankings, tokens, 1.0)
    assert d.distinct_top1 == 1 and d.top_share == pytest.approx(100 * 7 / 8) and d.collapsed
