"""Identifier schemes: equation 2, caption keywords, SID options and the GRACE baselines."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from semcore.embeddings import encode_texts
from semcore.identifiers import build_identifiers
from semcore.identifiers.base import IdentifierInputs, IdentifierOptions, IdentifierTable
from semcore.identifiers.sid import cluster_count
from semcore.keywords import (CAPTION_STOP_WORDS, caption_vectorizer, class_tfidf,
                              keybert_keywords, top_cluster_words)

TOPICS = {
    "dog": ["dog", "puppy", "terrier", "poodle", "retriever"],
    "car": ["car", "truck", "taxi", "van", "jeep"],
    "beach": ["surfer", "swimmer", "lifeguard", "girl", "boy"],
}
SCENES = ["runs across the {p} near two {q}", "sits in front of a {q} with a {p}",
          "jumps over a {p} behind the {q}", "rests on top of a red {q} by the {p}"]
PLACES = ["park", "street", "garden", "river", "bridge"]
THINGS = ["trees", "fence", "bench", "rocks"]


def captions() -> list[str]:
    """60 captions, 20 per topic, plus one exact repeat (so one SID must collide)."""
    out = []
    for topic, subjects in TOPICS.items():
        for i in range(20):
            subject = subjects[i % len(subjects)]
            scene = SCENES[i % len(SCENES)].format(p=PLACES[i % 5], q=THINGS[i // 5 % 4])
            out.append(f"A {subject} {scene} on a {topic} day .")
    out[-1] = out[-2]
    return out


@pytest.fixture(scope="module")
def inputs() -> IdentifierInputs:
    texts = captions()
    return IdentifierInputs([f"item{i}" for i in range(len(texts))], texts, encode_texts(texts))


def opts(**kw) -> IdentifierOptions:
    return IdentifierOptions(**{"cluster_size": 3, **kw})


@pytest.fixture(scope="module")
def sid(inputs: IdentifierInputs) -> IdentifierTable:
    return build_identifiers("sid", inputs, opts())


def words_of(text: str) -> set[str]:
    return set(caption_vectorizer().build_analyzer()(text))


def test_class_tfidf_is_equation_2():
    vocab, w = class_tfidf(["dog dog ball", "the cat and a ball"])
    assert list(vocab) == ["ball", "cat", "dog"]
    a = (3 + 2) / 2  # words per cluster, stop words removed
    f = {"ball": 2, "cat": 1, "dog": 2}
    expected = [[1 / 3 * math.log(1 + a / f["ball"]), 0.0, 2 / 3 * math.log(1 + a / f["dog"])],
                [1 / 2 * math.log(1 + a / f["ball"]), 1 / 2 * math.log(1 + a / f["cat"]), 0.0]]
    np.testing.assert_allclose(w, expected)
    assert top_cluster_words(w, vocab, 5) == [["dog", "ball"], ["cat", "ball"]]


def test_caption_stop_words_keep_caption_words():
    assert {"two", "front", "behind", "top", "one", "empty", "side", "back"}.isdisjoint(
        CAPTION_STOP_WORDS)
    assert {"the", "a", "of", "and", "with"} <= CAPTION_STOP_WORDS
    assert words_of("Two dogs in front of the car behind a top") == {
        "two", "dogs", "front", "car", "behind", "top"}


def test_keybert_batch_equals_single(inputs: IdentifierInputs):
    rows = [0, 7, 21, 33, 48, 59]
    texts = [inputs.texts[r] for r in rows]
    batch = keybert_keywords(texts, inputs.text_embeddings[rows], 4)
    single = [keybert_keywords([t], inputs.text_embeddings[[r]], 4)[0] for t, r in zip(texts, rows)]
    assert batch == single


def test_keybert_length_and_exclusion(inputs: IdentifierInputs):
    texts = inputs.texts[:3] + ["A dog ."]
    emb = np.vstack([inputs.text_embeddings[:3], encode_texts(["A dog ."])])
    found = keybert_keywords(texts, emb, 4)
    assert [len(k) for k in found] == [4, 4, 4, 1]  # "A dog ." has one usable word
    for words, text in zip(found, texts):
        assert set(words) <= words_of(text)
    excluded = keybert_keywords(texts, emb, 4, [set(found[0][:2]), set(), set(), {"dog"}])
    assert not set(found[0][:2]) & set(excluded[0]) and len(excluded[0]) == 4
    assert excluded[3] == []


def test_sid_shape_and_dedup(inputs: IdentifierInputs, sid: IdentifierTable):
    tops = sid.info["cluster_top_words"]
    for item, text, g, lx in zip(inputs.item_ids, inputs.texts, sid.global_parts,
                                 sid.lexical_parts):
        c = sid.info["cluster_of"][item]
        assert g == sid.info["global_ids"][c] and g.split()[0] == tops[c][0]
        assert 1 <= len(lx.split()) <= 4 and set(lx.split()) <= words_of(text)
        assert not set(lx.split()) & set(tops[c][:5])  # deduplicated
        assert sid.of(item) == f"{g} {lx}"
    assert len(set(sid.info["global_ids"])) == 3
    assert all(len(lx.split()) == 4 for lx in sid.lexical_parts)  # every caption has >= 9 words
    plain = build_identifiers("sid", inputs, opts(dedup=False))
    assert any(set(lx.split()) & set(tops[sid.info["cluster_of"][item]][:5])
               for item, lx in zip(inputs.item_ids, plain.lexical_parts))


def test_sid_is_deterministic(inputs: IdentifierInputs, sid: IdentifierTable):
    again = build_identifiers("sid", inputs, opts())
    assert again.identifiers == sid.identifiers and again.info == sid.info


def test_collisions_group_and_suffix(inputs: IdentifierInputs, sid: IdentifierTable):
    assert sid.of("item58") == sid.of("item59")  # the repeated caption
    assert max(len(v) for v in sid.groups().values()) >= 2
    suffixed = build_identifiers("sid", inputs, opts(collisions="suffix"))
    assert len(set(suffixed.identifiers)) == len(inputs.item_ids)
    assert {suffixed.suffixes[58], suffixed.suffixes[59]} == {"0", "1"}
    assert suffixed.of("item59") == f"{sid.of('item59')} {suffixed.suffixes[59]}"
    with pytest.raises(ValueError, match="collisions"):
        build_identifiers("sid", inputs, opts(collisions="random"))


def test_without_global_id(inputs: IdentifierInputs, sid: IdentifierTable):
    table = build_identifiers("sid", inputs, opts(use_global=False))
    assert set(table.global_parts) == {""}
    assert table.identifiers == table.lexical_parts == sid.lexical_parts


def test_global_id_as_number(inputs: IdentifierInputs, sid: IdentifierTable):
    table = build_identifiers("sid", inputs, opts(global_id_style="number"))
    assert table.global_parts == [str(sid.info["cluster_of"][i]) for i in inputs.item_ids]


@pytest.mark.parametrize("meaning,size,k", [("clusters", 3, 3), ("items_per_cluster", 20, 3),
                                             ("clusters", 60, 60), ("items_per_cluster", 60, 1)])
def test_cluster_size_meaning(inputs: IdentifierInputs, meaning: str, size: int, k: int):
    o = opts(cluster_size=size, cluster_size_meaning=meaning)
    assert cluster_count(len(inputs.texts), o) == k
    if k <= 3:
        info = build_identifiers("sid_anonymous", inputs, o).info
        assert info["k"] == k and sum(info["cluster_sizes"]) == 60


def test_anonymous_has_no_keywords(inputs: IdentifierInputs, sid: IdentifierTable):
    table = build_identifiers("sid_anonymous", inputs, opts())
    assert table.global_parts == sid.global_parts
    assert all(lx.isdigit() for lx in table.lexical_parts)
    assert len(set(table.identifiers)) == len(inputs.item_ids)
    alone = build_identifiers("sid_anonymous", inputs, opts(use_global=False))
    assert sorted(int(x) for x in alone.identifiers) == list(range(60))


@pytest.mark.parametrize("scheme", ["numeric", "structured"])
def test_baselines_unique_numbers(inputs: IdentifierInputs, scheme: str):
    table = build_identifiers(scheme, inputs, opts(collisions="suffix"))
    assert len(set(table.identifiers)) == 60 and set(table.suffixes) == {""}
    assert all(tok.isdigit() for ident in table.identifiers for tok in ident.split())
    assert build_identifiers(scheme, inputs, opts()).identifiers == table.identifiers


def test_structured_tree(inputs: IdentifierInputs):
    vectors = np.random.default_rng(1).normal(size=(60, 8))
    table = build_identifiers("structured", replace(inputs, vectors=vectors), opts())
    paths = [ident.split() for ident in table.identifiers]
    assert len({tuple(p) for p in paths}) == 60 and min(len(p) for p in paths) >= 2
    assert all(int(tok) < 10 for p in paths for tok in p)


def test_unknown_scheme(inputs: IdentifierInputs):
    with pytest.raises(ValueError, match="valid: .*numeric.*sid"):
        build_identifiers("grace", inputs, opts())


def test_caption_without_usable_words():
    texts = ["A dog runs on the beach .", "A dog sits on the beach .", "It is there ."]
    inp = IdentifierInputs(["a", "b", "c"], texts, encode_texts(texts))
    with_global = build_identifiers("sid", inp, opts(cluster_size=1, dedup_top_n=1))
    assert with_global.lexical_parts[2] == ""
    assert with_global.identifiers[2] == "beach"  # "beach" ties "dog": alphabetical
    alone = build_identifiers("sid", inp, opts(cluster_size=1, dedup_top_n=1, use_global=False))
    assert alone.identifiers[2] == "untitled"


@pytest.mark.parametrize("scheme", ["string", "semantic", "rq"])
def test_text_and_rq_baselines_deterministic_and_suffixed(inputs: IdentifierInputs, scheme: str):
    grouped = build_identifiers(scheme, inputs, opts())
    assert build_identifiers(scheme, inputs, opts()).identifiers == grouped.identifiers
    assert grouped.of("item58") == grouped.of("item59")  # the repeated caption collides
    suffixed = build_identifiers(scheme, inputs, opts(collisions="suffix"))
    assert len(set(suffixed.identifiers)) == 60
    assert {suffixed.suffixes[58], suffixed.suffixes[59]} == {"0", "1"}
    assert suffixed.lexical_parts == grouped.identifiers and set(grouped.global_parts) == {""}


def test_string_id_is_own_text():
    texts = ["A Dog, runs on the BEACH today with two friends and a ball .",
             "A dog runs on the beach today with two friends and a frisbee !", "?!"]
    inp = IdentifierInputs(["a", "b", "c"], texts, encode_texts(texts))
    table = build_identifiers("string", inp, opts(collisions="suffix"))
    assert table.lexical_parts == ["a dog runs on the beach today with"] * 2 + ["untitled"]
    assert table.identifiers[:2] == ["a dog runs on the beach today with 0",
                                     "a dog runs on the beach today with 1"]


def test_semantic_id_words_from_own_text(inputs: IdentifierInputs):
    for n in (2, 4):
        table = build_identifiers("semantic", inputs, opts(lexical_length=n))
        for text, ident in zip(inputs.texts, table.identifiers):
            assert 1 <= len(ident.split()) <= n and set(ident.split()) <= words_of(text)
    texts = ["zebra apple", "zebra apple", "the a ."]  # equal weights: alphabetical
    inp = IdentifierInputs(["a", "b", "c"], texts, encode_texts(texts))
    assert build_identifiers("semantic", inp, opts(lexical_length=1)).identifiers == [
        "apple", "apple", "untitled"]


def test_rq_codes_levels_and_shared_vectors(inputs: IdentifierInputs):
    vectors = np.random.default_rng(2).normal(size=(60, 8))
    vectors[10] = vectors[3]
    table = build_identifiers("rq", replace(inputs, vectors=vectors), opts())
    assert table.info == {"levels": 3, "codebook_size": 60}
    for ident in table.identifiers:
        toks = ident.split()
        assert len(toks) == 3 and [t[0] for t in toks] == ["a", "b", "c"]
        assert all(t[1:].isdigit() and int(t[1:]) < 60 for t in toks)
    assert table.of("item3") == table.of("item10")
    small = build_identifiers("rq", replace(inputs, vectors=vectors[:5], item_ids=inputs.item_ids[:5],
                                            texts=inputs.texts[:5],
                                            text_embeddings=inputs.text_embeddings[:5]), opts())
    assert small.info["codebook_size"] == 5


def test_atomic_one_new_token_per_item(inputs: IdentifierInputs):
    table = build_identifiers("atomic", inputs, opts())
    assert len(set(table.identifiers)) == 60 and set(table.suffixes) == {""}
    assert sorted(table.info["new_tokens"]) == sorted(table.identifiers)
    assert all(len(ident.split()) == 1 for ident in table.identifiers)
    assert build_identifiers("atomic", inputs, opts()).identifiers == table.identifiers
    assert build_identifiers("atomic", inputs, opts(seed=1)).identifiers != table.identifiers
