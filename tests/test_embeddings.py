"""Sentence features: the frozen MiniLM embedding of each text input, computed once per set of
texts and read back from the step cache."""
from __future__ import annotations

import numpy as np
import pytest

from semcore import embeddings


def test_sentence_features_are_minilm_embeddings_cached_by_text_set(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMCORE_CACHE", str(tmp_path / "cache"))
    texts = ["a dog runs on the beach", "two children play football", "a dog runs on the beach"]
    values = embeddings.SentenceFeatures()(texts)
    assert tuple(values.shape) == (3, 1, 384)
    expected = embeddings.encode_texts(texts)
    assert np.allclose(values[:, 0].numpy(), expected, atol=1e-5)
    assert np.array_equal(values[0].numpy(), values[2].numpy())
    assert len(list((tmp_path / "cache" / "text_features").glob("*/vectors.npy"))) == 1

    def no_encoding(_texts, **_kw):
        raise AssertionError("encoded again instead of read from the cache")

    monkeypatch.setattr(embeddings, "encode_texts", no_encoding)
    again = embeddings.SentenceFeatures()
    again.prepare(reversed(texts))  # the same set in another order: the same step
    assert np.array_equal(again(texts).numpy(), values.numpy())
    with pytest.raises(AssertionError, match="encoded again"):
        again(["a text never prepared"])
