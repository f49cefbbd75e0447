"""The dense two-tower baseline learns a shared space on synthetic pairs and is seeded."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from semcore.dense import DenseConfig, info_nce, rank, train_two_tower

CFG = DenseConfig(dim=32, epochs=30, batch_size=64, lr=3e-3, temperature=0.1, seed=0)


def synthetic(n_images: int, captions_per_image: int = 3, seed: int = 0):
    """Images and captions as noisy, differently mixed views of one hidden 16-d concept each."""
    rng = np.random.default_rng(seed)
    concepts = rng.normal(size=(n_images, 16))
    image_mix, text_mix = rng.normal(size=(16, 2 * 48)), rng.normal(size=(16, 40))
    images = (concepts @ image_mix + 0.5 * rng.normal(size=(n_images, 96))).reshape(n_images, 2, 48)
    rows = np.repeat(np.arange(n_images), captions_per_image)
    texts = concepts[rows] @ text_mix + 0.5 * rng.normal(size=(len(rows), 40))
    return images.astype(np.float32), texts.astype(np.float32), rows


def test_learns_a_shared_space_that_generalises_to_unseen_images() -> None:
    images, texts, rows = synthetic(300)
    train = rows < 250
    model = train_two_tower(images[:250], texts[train], rows[train], CFG)
    test_images, test_texts, test_rows = images[250:], texts[~train], rows[~train] - 250
    scores = model.similarity(test_texts, test_images)
    assert scores.shape == (len(test_texts), 50)
    t2i_r1 = (rank(scores, 1)[:, 0] == test_rows).mean()
    i2t_r1 = (test_rows[rank(scores.T, 1)[:, 0]] == np.arange(50)).mean()
    assert t2i_r1 > 0.5 and i2t_r1 > 0.5, (t2i_r1, i2t_r1)  # chance: 0.02

    # control: heads that barely move stay near chance, so the check above can fail
    untrained = train_two_tower(images[:250], texts[train], rows[train], replace(CFG, lr=1e-9))
    assert (rank(untrained.similarity(test_texts, test_images), 1)[:, 0] == test_rows).mean() < 0.2


def test_same_seed_same_model_other_seed_other_model() -> None:
    images, texts, rows = synthetic(60)
    cfg = replace(CFG, epochs=3)
    first, again = (train_two_tower(images, texts, rows, cfg).state_dict() for _ in range(2))
    other = train_two_tower(images, texts, rows, replace(cfg, seed=1)).state_dict()
    for name in first:
        torch.testing.assert_close(first[name], again[name], rtol=0, atol=0)
    assert any(not torch.equal(first[name], other[name]) for name in first)


def test_other_captions_of_the_same_image_are_not_negatives() -> None:
    vectors = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    with_twin = info_nce(vectors, vectors, torch.tensor([0, 0, 1, 2]), temperature=0.1)
    # masking the twin equals dropping it from the other's softmax: compare by hand
    logits = vectors @ vectors.T / 0.1
    logits[0, 1] = logits[1, 0] = float("-inf")
    target = torch.arange(4)
    expected = (torch.nn.functional.cross_entropy(logits, target)
                + torch.nn.functional.cross_entropy(logits.T, target)) / 2
    torch.testing.assert_close(with_twin, expected)


def test_rank_breaks_ties_by_index_and_inputs_are_checked() -> None:
    np.testing.assert_array_equal(rank(np.array([[0.5, 0.9, 0.5, 0.1]])), [[1, 0, 2, 3]])
    np.testing.assert_array_equal(rank(np.array([[0.5, 0.9, 0.5]]), k=2), [[1, 0]])
    images, texts, rows = synthetic(10)
    with pytest.raises(ValueError, match="one image row per text"):
        train_two_tower(images, texts, rows[:-1], CFG)
    with pytest.raises(ValueError, match="index the 10 images"):
        train_two_tower(images, texts, rows + 1, CFG)
    with pytest.raises(ValueError, match="epochs"):
        DenseConfig(epochs=0)
