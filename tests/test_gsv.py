"""GSV: candidate aggregation, prompts, position-bias control, and no answer leakage."""
from collections import Counter

import pytest

from semcore import gsv, prompts
from semcore.identifiers.base import IdentifierTable
from semcore.models.tiny import build_tiny, train_tokenizer
from semcore.protocol import Item, Query, Task
from semcore.retrieval import Ranked


@pytest.fixture(scope="module")
def bb():
    texts = ["a red ball on the left", "a big blue box", "two rings at night"] + prompts.TEMPLATE_WORDS
    return build_tiny(train_tokenizer(texts * 3, 600), 32, 32, 1, seed=0)


def make_task(direction):
    items = tuple(Item(f"i{n}", "test", f"caption number {n}", f"c{n}", f"im{n}") for n in range(12))
    return Task(direction, items, tuple(it.id for it in items), (), ())


def table():
    ids = [f"i{n}" for n in range(12)]
    return IdentifierTable("sid", ids, [f"g lex{n}" for n in range(12)], ["g"] * 12,
                           [f"lex{n}" for n in range(12)], [""] * 12)


def test_candidates_keep_groups_whole_and_cap():
    r = Ranked([["a"], ["b", "c", "d"], ["e"]], ["x", "y", "z"], [-1.0, -2.0, -3.0])
    assert gsv.candidates(r, 2) == ["a", "b", "c", "d"]
    many = Ranked([[f"i{n}"] for n in range(40)], [str(n) for n in range(40)], [0.0] * 40)
    assert len(gsv.candidates(many, 30)) == len(prompts.LABELS)


def test_presentation_order_is_seeded_permutation():
    order = gsv.presentation_order("q1", 10, seed=0)
    assert sorted(order) == list(range(10)) and order == gsv.presentation_order("q1", 10, seed=0)
    assert order != gsv.presentation_order("q1", 10, seed=1)


def test_answer_position_is_uniform(bb):
    """The correct candidate is ranked first by decoding, yet shown at every position equally
    often: a verifier cannot learn a position shortcut."""
    task, tb = make_task("t2i"), table()
    queries = [Query(f"q{n}", "a red ball", None, frozenset({"i0"})) for n in range(1000)]
    ranked = {q.id: Ranked([[f"i{n}"] for n in range(10)], [""] * 10, [0.0] * 10) for q in queries}
    answers = Counter()
    for q in queries:
        shown = [gsv.candidates(ranked[q.id], 10)[i] for i in gsv.presentation_order(q.id, 10, 0)]
        answers[shown.index("i0")] += 1
    assert set(answers) == set(range(10))
    assert all(70 <= c <= 130 for c in answers.values()), answers


def test_accuracy_by_position_exposes_a_position_biased_verifier():
    """The per-letter accuracy that notebook 04 reports: an oracle verifier is right at every
    letter; one that always picks letter A is right only when the answer was shown first."""
    queries = [Query(f"q{n}", "a red ball", None, frozenset({"i0"})) for n in range(300)]
    ranked = {q.id: Ranked([[f"i{n}"] for n in range(10)], [""] * 10, [0.0] * 10) for q in queries}
    oracle = {q.id: ["i0"] for q in queries}
    picks_a = {q.id: gsv.shown_candidates(q.id, ranked[q.id], 10, 0)[:1] for q in queries}
    by_letter = gsv.accuracy_by_position(queries, ranked, oracle, 10, 0)
    assert [r["shown at"] for r in by_letter] == list("ABCDEFGHIJ")
    assert sum(r["queries"] for r in by_letter) == 300
    assert all(r["GSV top-1 correct %"] == 100.0 for r in by_letter)
    biased = {r["shown at"]: r["GSV top-1 correct %"]
              for r in gsv.accuracy_by_position(queries, ranked, picks_a, 10, 0)}
    assert biased["A"] == 100.0 and all(v == 0.0 for letter, v in biased.items() if letter != "A")
    missed = {q.id: Ranked([[f"i{n}"] for n in range(1, 11)], [""] * 10, [0.0] * 10) for q in queries}
    assert gsv.accuracy_by_position(queries, missed, oracle, 10, 0) == []  # no positive shown


def test_missed_positive_is_added_and_answer_points_to_it(bb):
    task, tb = make_task("t2i"), table()
    q = Query("q", "a red ball", None, frozenset({"i11"}))
    ranked = {"q": Ranked([[f"i{n}"] for n in range(5)], [""] * 5, [0.0] * 5)}
    (example,) = gsv.training_examples(bb, task, tb, [q], ranked, k=5, seed=0)
    assert example.images.count("i11") == 1 and len(example.images) == 5
    letter = bb.tokenizer.decode(example.target[:-1]).strip()
    assert example.images[prompts.LABELS.index(letter)] == "i11"


def test_i2t_ground_truth_appears_only_as_candidate(bb):
    """The query image's own captions are shown only among the candidates, never elsewhere."""
    task, tb = make_task("i2t"), table()
    q = Query("im3", None, "im3", frozenset({"i3"}))
    ranked = {"im3": Ranked([["i3"], ["i4"], ["i5"]], [""] * 3, [0.0] * 3)}
    (example,) = gsv.training_examples(bb, task, tb, [q], ranked, k=3, seed=0)
    text = bb.tokenizer.decode(example.prompt)
    assert text.count("caption number 3") == 1
    assert example.images == ["im3"]


def test_t2i_prompt_has_candidates_then_query_then_instruction(bb):
    enc = prompts.gsv_t2i(bb, "a red ball", [("i1", "lex1"), ("i2", "lex2")], answer=1)
    text = bb.tokenizer.decode(enc.prompt)
    assert text.index("A:") < text.index("lex1") < text.index("B:") < text.index("lex2") \
        < text.index("sentence: a red ball") < text.index("select the image")
    assert enc.prompt.count(bb.image_token_id) == 2 * bb.n_image_tokens
    assert bb.tokenizer.decode(enc.target[:-1]).strip() == "B"


def test_position_check_flags_a_one_letter_verifier_and_passes_an_oracle():
    queries = [Query(f"q{n}", "a red ball", None, frozenset({"i0"})) for n in range(400)]
    ranked = {q.id: Ranked([[f"i{n}"] for n in range(10)], [""] * 10, [0.0] * 10) for q in queries}
    picks_a = {q.id: gsv.shown_candidates(q.id, ranked[q.id], 10, 0)[:1] for q in queries}
    oracle = {q.id: ["i0"] for q in queries}
    biased = gsv.position_check(gsv.accuracy_by_position(queries, ranked, picks_a, 10, 0))
    fair = gsv.position_check(gsv.accuracy_by_position(queries, ranked, oracle, 10, 0))
    assert biased["biased"] and biased["max deviation"] > 10 and biased["p"] < 0.05
    assert not fair["biased"] and fair["max deviation"] == 0


def test_listwise_training_balances_answer_letters(bb):
    task, tb = make_task("t2i"), table()
    queries = [Query(f"q{n}", "a red ball", None, frozenset({"i0"})) for n in range(50)]
    ranked = {q.id: Ranked([[f"i{n}"] for n in range(5)], [""] * 5, [0.0] * 5) for q in queries}
    letters = Counter(bb.tokenizer.decode(e.target[:-1]).strip()
                      for e in gsv.training_examples(bb, task, tb, queries, ranked, k=5, seed=0))
    assert letters == Counter({c: 10 for c in "ABCDE"})


def test_pointwise_training_balances_matches_and_non_matches(bb):
    task, tb = make_task("t2i"), table()
    queries = [Query(f"q{n}", "a red ball", None, frozenset({"i3"})) for n in range(7)]
    ranked = {q.id: Ranked([[f"i{n}"] for n in range(5)], [""] * 5, [0.0] * 5) for q in queries}
    examples = gsv.training_examples(bb, task, tb, queries, ranked, k=5, seed=0, fmt="pointwise")
    verdicts = Counter(bb.tokenizer.decode(e.target[:-1]).strip() for e in examples)
    assert verdicts == Counter({"yes": 14, "no": 14})
    negatives = {e.images[0] for e in examples if bb.tokenizer.decode(e.target[:-1]).strip() == "no"}
    assert negatives == {"i0", "i1"}  # the best-ranked non-matches: hard negatives


@pytest.mark.parametrize("fmt", ["listwise_permuted", "pointwise", "likelihood"])
@pytest.mark.parametrize("direction", ["t2i", "i2t"])
def test_position_robust_scores_do_not_depend_on_candidate_order(bb, fmt, direction):
    """Property: the score a position-robust format gives each candidate is the same whatever
    order the candidates are listed in (up to float rounding)."""
    import random

    import numpy as np
    task, tb = make_task(direction), table()
    images = {f"im{n}": np.full((32, 32, 3), 20 * n, dtype=np.uint8) for n in range(12)}
    images.update({f"i{n}": images[f"im{n}"] for n in range(12)})
    q = (Query("q", "a red ball", None, frozenset({"i0"})) if direction == "t2i"
         else Query("im3", None, "im3", frozenset({"i3"})))
    cands = [f"i{n}" for n in range(6)]
    base = dict(zip(cands, gsv.scores(bb, task, tb, [(q, cands)], images, fmt)[0]))
    rng = random.Random(0)
    for _ in range(3):
        order = rng.sample(cands, len(cands))
        again = dict(zip(order, gsv.scores(bb, task, tb, [(q, order)], images, fmt)[0]))
        assert all(abs(again[c] - base[c]) < 1e-4 for c in cands), (order, again, base)
    if fmt == "listwise_permuted":
        listwise = gsv.scores(bb, task, tb, [(q, cands)], images, "listwise")[0]
        assert listwise != list(base.values())


@pytest.mark.parametrize("direction", ["t2i", "i2t"])
def test_likelihood_trains_on_each_query_written_after_its_own_item(bb, direction):
    """No negatives and no candidates: T2I writes the query after its image (and lexical ID);
    I2T writes each of the query image's captions after it."""
    task, tb = make_task(direction), table()
    if direction == "t2i":
        queries = [Query("q0", "a red ball", None, frozenset({"i2"}))]
    else:
        queries = [Query("im3", None, "im3", frozenset({"i3", "i4"}))]
    examples = gsv.training_examples(bb, task, tb, queries, {}, k=5, seed=0, fmt="likelihood")
    written = [bb.tokenizer.decode(e.target[:-1]).strip() for e in examples]
    if direction == "t2i":
        assert written == ["a red ball"] and examples[0].images == ["i2"]
        assert "lex2" in bb.tokenizer.decode(examples[0].prompt)
    else:
        assert written == ["caption number 3", "caption number 4"]
        assert all(e.images == ["im3"] for e in examples)
    assert not gsv.needs_candidates("likelihood") and gsv.needs_candidates("listwise_permuted")


def test_likelihood_score_is_the_mean_log_probability_of_the_target(bb):
    """target_logprobs against a forward pass per example, and unchanged by the batch it shares
    (right padding is masked)."""
    import numpy as np
    import torch
    images = {"im0": np.full((32, 32, 3), 90, dtype=np.uint8)}
    short = prompts.gsv_likelihood_i2t(bb, "im0", "a ball")
    long = prompts.gsv_likelihood_i2t(bb, "im0", "two rings at night on the left of a big blue box")
    alone = [gsv.target_logprobs(bb, [e], images)[0] for e in (short, long)]
    assert gsv.target_logprobs(bb, [short, long], images) == pytest.approx(alone, abs=1e-5)
    ids = torch.tensor([short.prompt + short.target])
    with torch.no_grad():
        logits = bb.model(input_ids=ids, pixel_values=bb.pixel_values([images["im0"]])).logits[0]
    logp = torch.log_softmax(logits.float(), -1)
    n = len(short.prompt)
    manual = np.mean([float(logp[n - 1 + i, t]) for i, t in enumerate(short.target)])
    assert alone[0] == pytest.approx(manual, abs=1e-5)


def test_show_source_puts_the_candidates_own_text_in_the_prompt(bb):
    task, tb = make_task("t2i"), table()
    q = Query("q", "a red ball", None, frozenset({"i2"}))
    enc = gsv.pair_prompt(bb, task, tb, q, "i2", True, show_source=True)
    text = bb.tokenizer.decode(enc.prompt)
    assert "caption number 2" in text and text.index("caption number 2") < text.index("a red ball")
    assert "caption number 2" not in bb.tokenizer.decode(gsv.pair_prompt(bb, task, tb, q, "i2").prompt)


def test_unknown_format_is_refused(bb):
    with pytest.raises(ValueError, match="listwise_permuted"):
        gsv.training_examples(bb, make_task("t2i"), table(), [], {}, 5, 0, fmt="pairwise")


def test_combine_orders_by_verifier_then_by_decoding_as_the_weight_grows():
    ranked = {"q": Ranked([["a"], ["b", "c"], ["d"]], ["x", "y", "z"], [-1.0, -2.0, -9.0]),
              "lone": Ranked([["a"]], ["x"], [-1.0])}
    verified = {"q": {"shown": ["c", "a", "b"], "scores": [3.0, 1.0, 2.0]}}
    assert gsv.combine(verified, ranked)["q"] == ["c", "b", "a", "d"]  # the verifier alone
    assert gsv.combine(verified, ranked, 100.0)["q"] == ["a", "c", "b", "d"]  # decoding wins; tie: shown order
    assert gsv.combine(verified, ranked)["lone"] == ["a"]  # nothing verified: generative order


def test_accuracy_by_rotation_shows_every_query_at_every_position(bb, monkeypatch):
    """Each query's list is verified in all its rotations: a verifier that favours letter A is
    right only at A, one that reads the candidates is right everywhere, on the same queries."""
    task, tb = make_task("t2i"), table()
    queries = [Query(f"q{n}", "a red ball", None, frozenset({"i0"})) for n in range(6)]
    ranked = {q.id: Ranked([[f"i{n}"] for n in range(5)], [""] * 5, [0.0] * 5) for q in queries}
    picks = {"first letter": lambda shown: [1.0 if j == 0 else 0.0 for j in range(len(shown))],
             "the match": lambda shown: [1.0 if c == "i0" else 0.0 for c in shown]}
    found = {}
    for name, pick in picks.items():
        monkeypatch.setattr(gsv, "scores", lambda bb_, t, tb_, todo, *a, pick=pick: [pick(s) for _, s in todo])
        found[name] = gsv.accuracy_by_rotation(bb, task, tb, queries, ranked, {}, 5, 0, "listwise", False, 0.0)
    assert [r["shown at"] for r in found["the match"]] == list("ABCDE")
    assert all(r["queries"] == 6 for r in found["the match"])  # every query at every letter
    assert all(r["GSV top-1 correct %"] == 100.0 for r in found["the match"])
    first = {r["shown at"]: r["GSV top-1 correct %"] for r in found["first letter"]}
    assert first == {"A": 100.0, "B": 0.0, "C": 0.0, "D": 0.0, "E": 0.0}
    missed = {q.id: Ranked([[f"i{n}"] for n in range(1, 6)], [""] * 5, [0.0] * 5) for q in queries}
    assert gsv.accuracy_by_rotation(bb, task, tb, queries, missed, {}, 5, 0, "listwise", False, 0.0) == []


def test_a_real_order_free_verifier_passes_the_rotation_check(bb):
    """The likelihood format scores each candidate alone: rotating the list changes no pick."""
    import numpy as np
    task, tb = make_task("t2i"), table()
    images = {f"i{n}": np.full((32, 32, 3), 20 * n, dtype=np.uint8) for n in range(12)}
    queries = [Query(f"q{n}", f"caption number {n}", None, frozenset({f"i{n}"})) for n in range(4)]
    ranked = {q.id: Ranked([[f"i{n}"] for n in range(4)], [""] * 4, [0.0] * 4) for q in queries}
    by_rotation = gsv.accuracy_by_rotation(bb, task, tb, queries, ranked, images, 4, 0, "likelihood", False, 0.0)
    assert len({r["GSV top-1 correct %"] for r in by_rotation}) == 1
    assert all(r["queries"] == 4 for r in by_rotation)
