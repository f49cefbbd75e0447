"""Decoding output: candidate groups, tie order, and string matching for free generation."""
import pytest

from semcore.retrieval import Ranked, normalize, string_matcher, tie_order


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


def test_free_generation_maps_to_identifiers_by_exact_or_normalized_match():
    """The two readings of 'w/o constrained decoding': a generation names an identifier only
    verbatim, or also after lower-casing and dropping punctuation."""
    idents = ["sky: blue kite flying", "dog red ball"]
    exact, normalized = string_matcher(idents, "exact"), string_matcher(idents, "normalized")
    assert exact(" dog red ball ") == normalized(" dog red ball ") == "dog red ball"
    assert exact("Dog, red ball.") is None and normalized("Dog, red ball.") == "dog red ball"
    assert exact("sky blue kite flying") is None
    assert normalized("sky blue kite flying") == "sky: blue kite flying"
    assert exact("a cat") is None and normalized("a cat") is None
    with pytest.raises(ValueError, match="match"):
        string_matcher(idents, "fuzzy")
