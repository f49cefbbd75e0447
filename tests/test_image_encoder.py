"""The frozen image encoder: documented shape, finite, deterministic, clear errors, and features
that carry meaning (an image's nearest neighbour has more similar captions than a random image)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semcore.data.captions_jsonl import load_captions_jsonl
from semcore.data.schema import DataError
from semcore.embeddings import encode_texts
from semcore.image_encoder import FEATURE_DIM, FEATURE_TOKENS, encode_images

FLICKR8K = Path(__file__).parents[1] / ".." / "shared/data/flickr8k"
N_IMAGES = 40
MARGIN = 0.03  # measured on the first 40 test images: 0.133 vs 0.070


def test_synthetic_images_give_finite_features_of_the_documented_shape(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    paths = []
    for i, size in enumerate((168, 224, 300)):
        path = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (size, size + 40, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    feats = encode_images(paths, batch_size=2)
    assert feats.shape == (3, FEATURE_TOKENS, FEATURE_DIM) and feats.dtype == np.float32
    assert np.isfinite(feats).all()
    assert encode_images([]).shape == (0, FEATURE_TOKENS, FEATURE_DIM)


def test_missing_or_corrupt_image_is_an_error_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="broken.jpg"):
        encode_images([broken])
    with pytest.raises(DataError, match="absent.jpg"):
        encode_images([tmp_path / "absent.jpg"])


def nearest_neighbour_caption_similarity(feats: np.ndarray, caption_means: np.ndarray) -> float:
    """Mean caption similarity between each image and its nearest other image by feature cosine.

    The mean pairwise cosine of two images' caption embeddings equals the dot product of their
    mean caption embeddings, which is what caption_means @ caption_means.T holds.
    """
    x = feats / np.linalg.norm(feats, axis=-1, keepdims=True)
    x = x.reshape(len(x), -1)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    nearest = sims.argmax(axis=1)
    return float((caption_means * caption_means[nearest]).sum(axis=1).mean())


@pytest.mark.slow
@pytest.mark.skipif(not FLICKR8K.is_dir(), reason=f"Flickr8k not found at {FLICKR8K.resolve()}")
def test_flickr8k_features_are_deterministic_and_semantic() -> None:
    corpus = load_captions_jsonl(FLICKR8K, "flickr8k", max_train_images=1, max_test_images=N_IMAGES)
    images = corpus.images_in("test")
    feats = encode_images([im.path for im in images])
    assert feats.shape == (N_IMAGES, FEATURE_TOKENS, FEATURE_DIM)
    assert np.isfinite(feats).all()
    # again, in other batches: bit-identical (an image's features ignore the rest of its batch)
    np.testing.assert_array_equal(feats[:8], encode_images([im.path for im in images[:8]], batch_size=3))

    captions = [c for im in images for c in corpus.captions_of(im.id)]
    embeddings = encode_texts([c.text for c in captions]).reshape(N_IMAGES, 5, -1)
    caption_means = embeddings.mean(axis=1)
    pair_sims = caption_means @ caption_means.T
    random_other = float(pair_sims[~np.eye(N_IMAGES, dtype=bool)].mean())
    nearest = nearest_neighbour_caption_similarity(feats, caption_means)
    assert nearest > random_other + MARGIN, (nearest, random_other)
    # control: the same check on features given to the wrong images fails
    shuffled = feats[np.random.default_rng(0).permutation(N_IMAGES)]
    assert nearest_neighbour_caption_similarity(shuffled, caption_means) < random_other + MARGIN
