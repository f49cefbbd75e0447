"""The profile's `decode_score`: eq. 1 ("sum", the default), eq. 1 over the identifier's token
count ("length_normalized") and eq. 1 renormalised over the trie's allowed tokens at every step
("renormalized"), each against an oracle from a plain forward pass, with a beam as wide as the
trie (exhaustive)."""
from __future__ import annotations

import math
import typing

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from scoring import sequence_log_prob
from semcore import config
from semcore.constrained import DECODE_SCORES, TrieLogitsProcessor, constrained_beam_search
from semcore.trie import Trie

VOCAB, END, PAD = 50, 1, 0
# shared prefixes, lengths 2..5 with the end token, an identifier that is a prefix of others
SEQS = [[2, 3, END], [2, 4, END], [2, 3, 5, END], [6, END], [6, 7, 8, 9, END], [10, 3, END],
        [2, END]]
PROMPTS = [[11, 12, 13], [14, 15], [16]]


@pytest.fixture(scope="module")
def tiny_lm() -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      num_key_value_heads=2, intermediate_size=64, max_position_embeddings=128,
                      pad_token_id=PAD, eos_token_id=END, bos_token_id=END)
    return LlamaForCausalLM(cfg).eval()


def search(model, score: str | None, beam: int = len(SEQS), seqs=SEQS, prompts=PROMPTS):
    """Constrained beam search over left-padded prompts (score None: the default)."""
    trie = Trie.build(seqs, VOCAB)
    width = max(map(len, prompts))
    input_ids = torch.tensor([[PAD] * (width - len(p)) + p for p in prompts])
    kwargs = {} if score is None else {"score": score}
    with torch.no_grad():
        return constrained_beam_search(model, trie, END, beam, trie.max_length, pad_token_id=PAD,
                                       input_ids=input_ids,
                                       attention_mask=(input_ids != PAD).long(), **kwargs)


def children(seqs) -> dict[tuple[int, ...], list[int]]:
    """Every prefix → the tokens the trie allows after it."""
    out: dict[tuple[int, ...], set[int]] = {}
    for s in seqs:
        for j in range(len(s)):
            out.setdefault(tuple(s[:j]), set()).add(s[j])
    return {k: sorted(v) for k, v in out.items()}


def renormalized_log_prob(model, prompt, identifier, seqs=SEQS) -> float:
    """Oracle: at every step the token's log-probability minus the log of the probability mass
    of the tokens the trie allows there."""
    allowed = children(seqs)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt + identifier])).logits[0].float()
    log_probs = torch.log_softmax(logits[len(prompt) - 1:-1], dim=-1)
    total = 0.0
    for j, token in enumerate(identifier):
        step = log_probs[j]
        total += (step[token] - torch.logsumexp(step[allowed[tuple(identifier[:j])]], 0)).item()
    return total


def test_sum_is_the_default_and_equals_eq1(tiny_lm):
    default, summed = search(tiny_lm, None), search(tiny_lm, "sum")
    assert default == summed  # bit for bit: same identifiers, order and scores
    for prompt, found in zip(PROMPTS, summed):
        assert {tuple(s) for s, _ in found} == {tuple(s) for s in SEQS}
        for identifier, score in found:
            assert score == pytest.approx(sequence_log_prob(tiny_lm, prompt, identifier), abs=1e-4)


def test_length_normalized_is_the_sum_over_the_token_count(tiny_lm):
    summed, normalized = search(tiny_lm, "sum"), search(tiny_lm, "length_normalized")
    for prompt, sums, found in zip(PROMPTS, summed, normalized):
        assert {tuple(s) for s, _ in found} == {tuple(s) for s in SEQS}
        scores = [score for _, score in found]
        assert scores == sorted(scores, reverse=True)
        by_sum = {tuple(s): score for s, score in sums}
        for identifier, score in found:
            n = len(identifier)  # the end token included
            assert score == pytest.approx(sequence_log_prob(tiny_lm, prompt, identifier) / n,
                                          abs=1e-5)
            # exactly the float32 sum divided by the generated length
            assert score == float(np.float32(by_sum[tuple(identifier)]) / np.float32(n))


def test_renormalized_is_log_p_of_the_identifier_given_the_trie(tiny_lm):
    for prompt, found in zip(PROMPTS, search(tiny_lm, "renormalized")):
        assert {tuple(s) for s, _ in found} == {tuple(s) for s in SEQS}
        scores = [score for _, score in found]
        assert scores == sorted(scores, reverse=True) and all(s <= 1e-6 for s in scores)
        for identifier, score in found:
            assert score == pytest.approx(renormalized_log_prob(tiny_lm, prompt, identifier),
                                          abs=1e-4)
        assert sum(math.exp(s) for s in scores) == pytest.approx(1.0, abs=1e-4)  # exhaustive


def test_renormalized_with_a_narrow_beam_sums_to_at_most_one(tiny_lm):
    for found in search(tiny_lm, "renormalized", beam=3):
        assert 1 <= len(found) <= 3
        assert sum(math.exp(s) for _, s in found) <= 1.0 + 1e-5


def test_renormalizing_leaves_rows_with_nothing_allowed_all_minus_inf():
    """Beam copies at the first step and finished rows stay all -inf (no NaN); live rows become
    a distribution over their allowed tokens."""
    trie = Trie.build(SEQS, VOCAB)
    beams = 3
    scores = torch.log_softmax(torch.randn(beams, VOCAB), dim=-1)
    first = TrieLogitsProcessor(trie, 1, END, num_beams=beams, renormalize=True)
    out = first(torch.tensor([[11]] * beams), scores)
    assert not out.isnan().any()
    assert torch.isinf(out[1:]).all() and (out[1:] < 0).all()  # the copies of beam 0
    assert torch.logsumexp(out[0], 0).item() == pytest.approx(0.0, abs=1e-6)
    assert (out[0] > float("-inf")).nonzero().flatten().tolist() == children(SEQS)[()]
    later = TrieLogitsProcessor(trie, 1, END, num_beams=beams, renormalize=True)
    out = later(torch.tensor([[11, 6, END], [11, 6, 7], [11, 2, 3]]), scores)  # finished, live, live
    assert not out.isnan().any() and torch.isinf(out[0]).all()
    for row, prefix in ((1, (6, 7)), (2, (2, 3))):
        assert torch.logsumexp(out[row], 0).item() == pytest.approx(0.0, abs=1e-6)
        assert (out[row] > float("-inf")).nonzero().flatten().tolist() == children(SEQS)[prefix]
        kept = out[row] > float("-inf")
        shift = (scores[row][kept] - out[row][kept])  # a constant: the log of the allowed mass
        assert torch.allclose(shift, shift[0].expand_as(shift), atol=1e-6)


def test_unknown_score_is_refused(tiny_lm):
    with pytest.raises(ValueError, match="score"):
        search(tiny_lm, "mean")


def test_profile_values_match_the_search_and_a_bad_one_names_the_key(tmp_path):
    assert typing.get_args(typing.get_type_hints(config.Params)["decode_score"]) == DECODE_SCORES
    assert config.Params().decode_score == "sum"
    for value in DECODE_SCORES:
        assert config.from_dict({"decode_score": value}).decode_score == value
    profile = tmp_path / "bad.yaml"
    profile.write_text("profile: bad\ndecode_score: mean\n")
    with pytest.raises(config.ParamError, match="decode_score"):
        config.load(profile)


def test_decode_score_keys_decoding_and_gsv_but_not_training(tmp_path_factory):
    """The three scores share one trained model; constrained decoding, GSV candidates and the
    verifier trained on them are keyed on the score, free decoding is not."""
    from semcore import methods, pipeline

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEMCORE_CACHE", str(tmp_path_factory.mktemp("cache")))
        p = config.load("params/tiny.yaml")
        semcore = methods.get("semcore")
        other = p.replace(decode_score="renormalized")
        assert pipeline.train_key(p, "t2i", semcore) == pipeline.train_key(other, "t2i", semcore)
        for key in (lambda q: pipeline.decode_key(q, "t2i", semcore, 4),
                    lambda q: pipeline.candidates_key(q, "t2i", semcore),
                    lambda q: pipeline.verifier_key(q, "t2i", semcore)):
            assert key(p) != key(other)
        free = methods.get("wo_constrained_decoding")  # free decoding never uses the score
        assert pipeline.decode_key(p, "t2i", free, 4) == pipeline.decode_key(other, "t2i", free, 4)


def test_decode_constrained_passes_the_score_through():
    """retrieval.decode_constrained on the tiny InternVL backbone (a text and an image query,
    left padded together): each score is the sum's counterpart for the same identifier."""
    from semcore import prompts
    from semcore.identifiers.base import IdentifierTable
    from semcore.models.tiny import build_tiny, train_tokenizer
    from semcore.retrieval import IdentifierTrie, decode_constrained

    idents = ["dog red ball", "dog red kite", "cat", "sky blue kite flying", "dog"]
    tok = train_tokenizer(idents + ["a dog with a ball"] + prompts.TEMPLATE_WORDS, 300)
    bb = build_tiny(tok, 32, 32, 1, seed=0)
    items = [f"i{n}" for n in range(len(idents) + 1)]
    table = IdentifierTable("sid", items, idents + ["cat"], [""] * len(items), idents + ["cat"],
                            [""] * len(items))
    index = IdentifierTrie.build(bb.tokenizer, table)
    images = {"im0": np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)}
    queries = [("q0", prompts.text_query(bb, "a dog with a ball")),
               ("q1", prompts.image_query(bb, "im0"))]
    ranked = {score: decode_constrained(bb, index, table, queries, images, len(idents), 2, 0,
                                        score=score) for score in DECODE_SCORES}
    n_tokens = {i: len(prompts.identifier_target(bb, i)) for i in idents}
    for qid, _ in queries:
        summed = dict(zip(ranked["sum"][qid].identifiers, ranked["sum"][qid].scores))
        normalized = ranked["length_normalized"][qid]
        renormalized = ranked["renormalized"][qid]
        assert set(summed) == set(normalized.identifiers) == set(renormalized.identifiers) == set(idents)
        for ident, score in zip(normalized.identifiers, normalized.scores):
            assert score == pytest.approx(summed[ident] / n_tokens[ident], abs=1e-6)
        assert normalized.scores == sorted(normalized.scores, reverse=True)
        assert sum(math.exp(s) for s in renormalized.scores) == pytest.approx(1.0, abs=1e-4)
        assert sorted(renormalized.groups[renormalized.identifiers.index("cat")]) == ["i2", "i5"]
