"""The flat trie against a dict-of-prefixes reference, and trie-constrained beam search against
the model's own sequence log-probabilities (paper eq. 1) on tiny random transformers."""
from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from transformers import (InternVLConfig, InternVLForConditionalGeneration, InternVLVisionConfig,
                          LlamaConfig, LlamaForCausalLM, LogitsProcessorList, Qwen2Config)

from scoring import sequence_log_prob
from semcore.constrained import TrieLogitsProcessor, constrained_beam_search
from semcore.trie import Trie

END = 0
VOCAB = 7


@st.composite
def identifier_sets(draw, vocab: int = VOCAB, max_body: int = 5, max_size: int = 25):
    """Sequences of body tokens from a small alphabet (many shared prefixes) ending in END,
    with some drawn again verbatim (duplicates)."""
    body = st.lists(st.integers(1, vocab - 1), max_size=max_body)
    seqs = [b + [END] for b in draw(st.lists(body, min_size=1, max_size=max_size))]
    repeats = draw(st.lists(st.sampled_from(range(len(seqs))), max_size=5))
    return seqs + [list(seqs[i]) for i in repeats]


def reference_children(seqs: list[list[int]]) -> dict[tuple[int, ...], set[int]]:
    """Naive trie: every prefix (root included) → the set of tokens that may follow it."""
    children: dict[tuple[int, ...], set[int]] = {}
    for seq in seqs:
        for j in range(len(seq) + 1):
            children.setdefault(tuple(seq[:j]), set())
            if j < len(seq):
                children[tuple(seq[:j])].add(seq[j])
    return children


def accepted_paths(trie: Trie) -> set[tuple[int, ...]]:
    """All root-to-leaf paths, found by expanding allowed_mask level by level."""
    done: set[tuple[int, ...]] = set()
    frontier: list[tuple[int, ...]] = [()]
    while frontier:
        width = len(frontier[0])
        nodes = trie.walk(torch.tensor(frontier, dtype=torch.long).view(len(frontier), width))
        assert (nodes >= 0).all()
        mask = trie.allowed_mask(nodes)
        done |= {p for p, row in zip(frontier, mask) if not row.any()}
        frontier = [p + (int(t),) for p, row in zip(frontier, mask)
                    for t in row.nonzero().flatten()]
    return done


@settings(max_examples=60, deadline=None)
@given(identifier_sets())
def test_accepted_paths_are_exactly_the_inputs(seqs):
    assert accepted_paths(Trie.build(seqs, VOCAB)) == {tuple(s) for s in seqs}


@settings(max_examples=60, deadline=None)
@given(identifier_sets())
def test_every_input_is_reachable_step_by_step(seqs):
    trie = Trie.build(seqs, VOCAB)
    for seq in seqs:
        for j, token in enumerate(seq):
            allowed = trie.allowed_mask(trie.walk(torch.tensor([seq[:j]]).view(1, j)))[0]
            assert allowed.any() and allowed[token]
        assert not trie.allowed_mask(trie.walk(torch.tensor([seq])))[0].any()


@settings(max_examples=60, deadline=None)
@given(identifier_sets(), st.lists(st.lists(st.integers(-1, VOCAB), max_size=6), max_size=20))
def test_walk_and_allowed_match_dict_trie(seqs, probes):
    trie = Trie.build(seqs, VOCAB)
    children = reference_children(seqs)
    prefixes = list(children) + [tuple(p) for p in probes]
    node_of: dict[tuple[int, ...], int] = {}
    for width in {len(p) for p in prefixes}:
        batch = [p for p in prefixes if len(p) == width]
        nodes = trie.walk(torch.tensor(batch, dtype=torch.long).view(len(batch), width))
        rows, tokens = trie.allowed_tokens(nodes)
        mask = trie.allowed_mask(nodes)  # at VOCAB=7, nodes with >= 2 children are dense rows
        scores = torch.randn(len(batch), VOCAB)
        assert torch.equal(trie.restrict(scores, nodes), scores.masked_fill(~mask, float("-inf")))
        for i, (prefix, node) in enumerate(zip(batch, nodes.tolist())):
            assert (node >= 0) == (prefix in children), prefix
            assert set(tokens[rows == i].tolist()) == children.get(prefix, set())
            assert set(mask[i].nonzero().flatten().tolist()) == children.get(prefix, set())
            if node >= 0:
                node_of[prefix] = node
    assert sorted(node_of.values()) == list(range(trie.num_nodes))  # one node per distinct prefix


@settings(max_examples=60, deadline=None)
@given(identifier_sets(), st.integers(1, 3), st.integers(1, 4), st.randoms(use_true_random=False))
def test_processor_steps_from_the_parent_beam_as_a_full_walk_would(seqs, queries, beams, rnd):
    """Between calls every row extends some row of its own query (beam search reorders them),
    mostly along the trie, sometimes off it or past a leaf: the processor, which steps from the
    parent row's node, masks exactly as a fresh one that walks each prefix from the root; and
    reused for a second search it starts over."""
    trie = Trie.build(seqs, VOCAB)
    prompt = torch.full((queries * beams, 2), 5)
    processor = TrieLogitsProcessor(trie, prompt.shape[1], END, num_beams=beams)
    for _search in range(2):
        generated = torch.zeros((queries * beams, 0), dtype=torch.long)
        for _step in range(trie.max_length + 1):
            scores = torch.randn(queries * beams, VOCAB)
            input_ids = torch.cat([prompt, generated], dim=1)
            fresh = TrieLogitsProcessor(trie, prompt.shape[1], END, num_beams=beams)
            assert torch.equal(processor(input_ids, scores), fresh(input_ids, scores))
            rows = []
            for q in range(queries):
                for _ in range(beams):
                    parent = generated[q * beams + rnd.randrange(beams)].tolist()
                    allowed = trie.allowed_mask(trie.walk(torch.tensor([parent]).view(1, -1)))[0]
                    options = allowed.nonzero().flatten().tolist()
                    token = rnd.choice(options) if options and rnd.random() < 0.8 \
                        else rnd.randrange(VOCAB)
                    rows.append(parent + [token])
            generated = torch.tensor(rows)


@settings(max_examples=60, deadline=None)
@given(identifier_sets(), st.lists(st.lists(st.integers(0, VOCAB - 1), max_size=6), max_size=10))
def test_lookup_maps_back_to_all_duplicates(seqs, probes):
    """One by one and all at once (mixed lengths, the empty sequence among the probes)."""
    trie = Trie.build(seqs, VOCAB)
    expected = [[i for i, s in enumerate(seqs) if s == seq] for seq in seqs + probes]
    assert [trie.lookup(seq) for seq in seqs + probes] == expected
    assert trie.lookup_many(seqs + probes) == expected


@settings(max_examples=30, deadline=None)
@given(identifier_sets())
def test_save_load_round_trip(seqs):
    trie = Trie.build(seqs, VOCAB)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trie.npz"
        trie.save(path)
        loaded = Trie.load(path)
    for name in ("keys", "child", "leaf_nodes", "leaf_items"):
        assert np.array_equal(getattr(trie, name), getattr(loaded, name))
    assert (loaded.vocab_size, loaded.num_nodes, loaded.max_length) == \
           (trie.vocab_size, trie.num_nodes, trie.max_length)
    assert all(loaded.lookup(s) == trie.lookup(s) for s in seqs)


@pytest.mark.parametrize("seqs, message", [
    ([[1, 0], [1]], "proper prefix"),
    ([[1, 0], []], "empty"),
    ([[1, VOCAB]], "token ids"),
    ([[-1, 0]], "token ids"),
])
def test_build_rejects_invalid_sequences(seqs, message):
    with pytest.raises(ValueError, match=message):
        Trie.build(seqs, VOCAB)


# --- constrained beam search on tiny random models ---------------------------------------------

LM_VOCAB, LM_END, LM_PAD = 50, 1, 0


@pytest.fixture(scope="module")
def tiny_lm() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=LM_VOCAB, hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, intermediate_size=64,
                         max_position_embeddings=128, pad_token_id=LM_PAD, eos_token_id=LM_END,
                         bos_token_id=LM_END)
    return LlamaForCausalLM(config).eval()



lm_identifiers = identifier_sets(vocab=6, max_body=4, max_size=8).map(
    lambda seqs: [[t + 1 if t else LM_END for t in s] for s in seqs])  # body 2..6, end LM_END


@settings(max_examples=15, deadline=None)
@given(seqs=lm_identifiers,
       prompts=st.lists(st.lists(st.integers(2, LM_VOCAB - 1), min_size=1, max_size=4),
                        min_size=1, max_size=2),
       extra_beams=st.integers(0, 2))
# without silencing the first-step beam copies, their -1e9 hypotheses fill the finished buffer
# and [2, 2, END] was lost
@example(seqs=[[LM_END], [2, LM_END], [2, 2, LM_END]], prompts=[[2]], extra_beams=0)
def test_beam_search_is_exhaustive_and_scores_are_sequence_log_probs(tiny_lm, seqs, prompts,
                                                                    extra_beams):
    trie = Trie.build(seqs, LM_VOCAB)
    distinct = {tuple(s) for s in seqs}
    width = max(map(len, prompts))
    input_ids = torch.tensor([[LM_PAD] * (width - len(p)) + p for p in prompts])  # left padding
    beam_size = max(2, len(distinct) + extra_beams)
    results = constrained_beam_search(tiny_lm, trie, LM_END, beam_size, trie.max_length,
                                      pad_token_id=LM_PAD, input_ids=input_ids,
                                      attention_mask=(input_ids != LM_PAD).long())
    for prompt, found in zip(prompts, results):
        assert {tuple(s) for s, _ in found} == distinct
        scores = [score for _, score in found]
        assert scores == sorted(scores, reverse=True)
        for identifier, score in found:
            assert score == pytest.approx(sequence_log_prob(tiny_lm, prompt, identifier), abs=1e-4)


@settings(max_examples=10, deadline=None)
@given(seqs=lm_identifiers, prompt=st.lists(st.integers(2, LM_VOCAB - 1), min_size=1, max_size=4))
def test_narrow_beam_returns_only_trie_sequences(tiny_lm, seqs, prompt):
    trie = Trie.build(seqs, LM_VOCAB)
    [found] = constrained_beam_search(tiny_lm, trie, LM_END, 2, trie.max_length,
                                      input_ids=torch.tensor([prompt]))
    assert 1 <= len(found) <= 2
    for identifier, score in found:
        assert trie.lookup(identifier)
        assert score == pytest.approx(sequence_log_prob(tiny_lm, prompt, identifier), abs=1e-4)


def test_inputs_embeds_and_model_generation_config_do_not_change_results(tiny_lm):
    """prompt_length 0 (inputs_embeds) gives the same identifiers and scores as input_ids, and a
    model whose generation_config would rescore tokens still yields eq. 1."""
    seqs = [[2, 3, LM_END], [2, 4, LM_END], [5, LM_END], [5, 6, 7, LM_END]]
    trie, prompt = Trie.build(seqs, LM_VOCAB), [8, 9, 10]
    [expected] = constrained_beam_search(tiny_lm, trie, LM_END, 4, trie.max_length,
                                         input_ids=torch.tensor([prompt]))
    [from_embeds] = constrained_beam_search(
        tiny_lm, trie, LM_END, 4, trie.max_length,
        inputs_embeds=tiny_lm.get_input_embeddings()(torch.tensor([prompt])))
    rescoring = copy.deepcopy(tiny_lm)
    rescoring.generation_config.repetition_penalty = 3.0
    rescoring.generation_config.no_repeat_ngram_size = 1
    [neutralized] = constrained_beam_search(rescoring, trie, LM_END, 4, trie.max_length,
                                            input_ids=torch.tensor([prompt]))
    assert len(expected) == len(seqs)
    for found in (from_embeds, neutralized):
        assert [s for s, _ in found] == [s for s, _ in expected]
        assert [score for _, score in found] == pytest.approx([sc for _, sc in expected], abs=1e-5)


def test_each_prompt_runs_once_not_once_per_beam(tiny_lm):
    """The prompt's forward pass covers the queries once (all but the last prompt token); every
    later pass feeds one token per beam."""
    seqs = [[2, 3, LM_END], [2, 4, LM_END], [5, LM_END], [5, 6, 7, LM_END]]
    trie = Trie.build(seqs, LM_VOCAB)
    input_ids = torch.tensor([[8, 9, 10, 11], [LM_PAD, 12, 13, 14]])
    shapes = []
    hook = tiny_lm.register_forward_pre_hook(
        lambda _m, _a, kw: shapes.append(tuple(kw["input_ids"].shape)), with_kwargs=True)
    try:
        constrained_beam_search(tiny_lm, trie, LM_END, 4, trie.max_length, pad_token_id=LM_PAD,
                                input_ids=input_ids, attention_mask=(input_ids != LM_PAD).long())
    finally:
        hook.remove()
    assert shapes[0] == (2, 3)
    assert set(shapes[1:]) == {(2 * 4, 1)}


@pytest.mark.parametrize("do_sample", [False, True])
def test_greedy_and_sampling_stay_in_trie_after_finishing(tiny_lm, do_sample):
    """num_beams=1: rows that finish early are padded while others go on; none may be all -inf."""
    seqs = [[2, LM_END], [3, 4, 5, 6, LM_END], [3, 4, 7, LM_END]]
    trie = Trie.build(seqs, LM_VOCAB)
    prompts = torch.tensor([[8, 9], [10, 11], [12, 13], [14, 15]])
    torch.manual_seed(1)
    out = tiny_lm.generate(input_ids=prompts, do_sample=do_sample, top_k=None, num_beams=1,
                           max_new_tokens=trie.max_length + 2, eos_token_id=LM_END,
                           pad_token_id=LM_PAD, logits_processor=LogitsProcessorList(
                               [TrieLogitsProcessor(trie, prompts.shape[1], LM_END)]))
    for row in out[:, prompts.shape[1]:].tolist():
        assert trie.lookup(row[:row.index(LM_END) + 1])


def test_internvl_generation_from_pixels_stays_in_trie():
    """InternVL: the processor sees the full input_ids (image placeholders + text prompt)."""
    torch.manual_seed(0)
    vocab, image_token = 64, 63
    vision = InternVLVisionConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=128, image_size=[32, 32], patch_size=[4, 4])
    text = Qwen2Config(vocab_size=vocab, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, intermediate_size=128, max_position_embeddings=128,
                       tie_word_embeddings=True, pad_token_id=LM_PAD, eos_token_id=LM_END)
    model = InternVLForConditionalGeneration(InternVLConfig(
        vision_config=vision, text_config=text, image_token_id=image_token, downsample_ratio=0.5,
        vision_feature_layer=-1)).eval()
    seqs = [[5, 6, 1], [5, 7, 8, 1], [9, 1], [9, 10, 11, 12, 1], [5, 6, 1]]
    trie = Trie.build(seqs, vocab)
    prompt = [image_token] * 16 + [3, 4]  # 32 px, patch 4, pixel shuffle 0.5 → 16 image tokens
    pixel_values = torch.randn(2, 3, 32, 32)
    results = constrained_beam_search(model, trie, LM_END, 3, trie.max_length, pad_token_id=LM_PAD,
                                      input_ids=torch.tensor([prompt, prompt]),
                                      pixel_values=pixel_values)
    for image, found in zip(pixel_values, results):
        assert len(found) == 3
        for identifier, score in found:
            assert trie.lookup(identifier)
            assert score == pytest.approx(sequence_log_prob(
                model, prompt, identifier, pixel_values=image[None]), abs=1e-4)
