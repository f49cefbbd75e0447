"""Decoding output: candidate groups, tie order, and string matching for free generation."""
from semcore.retrieval import Ranked, normalize, tie_order


def test_groups_expand_in_order_without_duplicates():
    r = Ranked([["a", "b"], ["c"], ["b", "d"]], ["x", "y", "z"], [-1.0, -2.0, -3.0])
    assert r.items() == ["a", "b", "c", "d"]


def test_tie_order_is_reproducible_and_independent_of_input_order():
    items = [f"i{n}" for n in range(20)]
    assert tie_order(items, "q", 0) == tie_order(list(reversed(items)), "q", 0)
    assert tie_order(items, "q", 0) != tie_order(items, "q", 1)
    firsts = {tie_order(items, f"q{n}", 0)[0] for n in range(200)}
    assert len(firsts) > 10  # no item is systematically first


def test_normalize():
    assert normalize("  Sand, Dot-Blue  LARGE ") == "sand dot blue large"


def test_rationale_follows_the_identifier_target():
    """SSI's rationale supervision leaves the decoded part (identifier + end token) unchanged."""
    from semcore import prompts
    from semcore.models.tiny import build_tiny, train_tokenizer

    tok = train_tokenizer(["objects dog scene park", "a dog runs in a park"] + prompts.TEMPLATE_WORDS, 300)
    bb = build_tiny(tok, 32, 32, 1, seed=0)
    plain = prompts.text_query(bb, "a dog", "objects dog scene park")
    guided = prompts.text_query(bb, "a dog", "objects dog scene park", "a dog runs in a park")
    ident = prompts.identifier_target(bb, "objects dog scene park")
    assert plain.target == ident and guided.target[:len(ident)] == ident
    assert len(guided.target) > len(ident) and guided.target[-1] == bb.eos_id
    assert guided.prompt == plain.prompt
