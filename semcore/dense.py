"""The dense two-tower baseline: two linear heads over frozen encoders, trained with InfoNCE.

Paper Table 2 puts every generative retriever next to a dense retriever trained on the same
pairs in the same run. Here both encoders stay frozen (image features from
semcore.image_encoder, caption embeddings from semcore.embeddings) and only one linear head per
side is learned, so the baseline costs seconds on a CPU and measures what the frozen features
allow, not what a bigger model could learn.

Each image token is L2-normalised before the tokens are concatenated, so the heads do not
depend on the activation scale of whichever encoder or block supplied them (with the
LayerNormed tokens of semcore.image_encoder it changes nothing measurable). The loss is the symmetric
InfoNCE of CLIP over in-batch negatives; a caption of the same image elsewhere in the batch is
not a negative (it is masked out): it is a correct match, and penalising it would push the
heads to separate paraphrases. On Flickr8k a batch of 256 pairs holds only ~4 such twins, so
the mask changes little there (validation rSum 223.6 with, 223.5 without); it matters with
small corpora or large batches.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class DenseConfig:
    """Defaults chosen on Flickr8k train (5,000 images to train, the other 1,000 to validate):
    the heads overfit quickly, so few epochs and a moderate temperature win."""

    dim: int = 256  # shared embedding size
    epochs: int = 5  # passes over all (caption, image) pairs
    batch_size: int = 256
    lr: float = 1e-3  # Adam, cosine-decayed to 0
    temperature: float = 0.07  # fixed softmax temperature of the InfoNCE logits
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("dim", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"DenseConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.temperature <= 0:
            raise ValueError(f"DenseConfig: lr and temperature must be > 0, got {self}")


def image_inputs(image_feats: np.ndarray) -> torch.Tensor:
    """(n, tokens, d) or (n, d) features → (n, tokens·d) with every token L2-normalised."""
    x = torch.as_tensor(np.asarray(image_feats, dtype=np.float32))
    if x.ndim == 2:
        x = x[:, None, :]
    if x.ndim != 3:
        raise ValueError(f"image features must be (n, d) or (n, tokens, d), got shape {tuple(x.shape)}")
    return F.normalize(x, dim=-1).flatten(1)


class TwoTower(nn.Module):
    """A linear head per modality into one L2-normalised space; cosine similarity ranks."""

    def __init__(self, image_in: int, text_in: int, dim: int) -> None:
        super().__init__()
        self.image_head = nn.Linear(image_in, dim)
        self.text_head = nn.Linear(text_in, dim)

    def image_vectors(self, inputs: torch.Tensor) -> torch.Tensor:
        """Unit vectors in the shared space from image_inputs(features)."""
        return F.normalize(self.image_head(inputs), dim=-1)

    def text_vectors(self, text_embs: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_head(text_embs), dim=-1)

    @torch.no_grad()
    def similarity(self, text_embs: np.ndarray, image_feats: np.ndarray) -> np.ndarray:
        """(n_texts, n_images) cosine similarities: rows rank images (T2I), columns texts (I2T)."""
        texts = torch.as_tensor(np.asarray(text_embs, dtype=np.float32))
        return (self.text_vectors(texts) @ self.image_vectors(image_inputs(image_feats)).T).numpy()


def rank(scores: np.ndarray, k: int | None = None) -> np.ndarray:
    """Column indices of each row, best first (ties: lower index first); the top k if given."""
    order = np.argsort(-scores, axis=1, kind="stable")
    return order if k is None else order[:, :k]


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread, then restore. The heads' matmuls are too small to gain from
    more, and on a busy 2-core machine two threads made training 5× slower (waiting on each
    other); one thread also keeps the result independent of the machine's core count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_two_tower(image_feats: np.ndarray, text_embs: np.ndarray, pair_image_rows: np.ndarray,
                    cfg: DenseConfig) -> TwoTower:
    """Train the heads on the pairs (text_embs[i], image_feats[pair_image_rows[i]]).

    Deterministic for a seed: initialisation and shuffling draw from one seeded generator.
    """
    with one_thread():
        return _train(image_feats, text_embs, pair_image_rows, cfg)


def _train(image_feats: np.ndarray, text_embs: np.ndarray, pair_image_rows: np.ndarray,
           cfg: DenseConfig) -> TwoTower:
    rows = torch.as_tensor(np.asarray(pair_image_rows), dtype=torch.long)
    texts = torch.as_tensor(np.asarray(text_embs, dtype=np.float32))
    images = image_inputs(image_feats)
    if texts.ndim != 2 or rows.shape != (len(texts),):
        raise ValueError(f"need one image row per text: text_embs {tuple(texts.shape)}, "
                         f"pair_image_rows {tuple(rows.shape)}")
    if len(rows) and (rows.min() < 0 or rows.max() >= len(images)):
        raise ValueError(f"pair_image_rows must index the {len(images)} images")
    generator = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)
        model = TwoTower(images.shape[1], texts.shape[1], cfg.dim)
    steps_per_epoch = -(-len(rows) // cfg.batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.epochs * steps_per_epoch)
    model.train()
    for _ in range(cfg.epochs):
        for batch in torch.randperm(len(rows), generator=generator).split(cfg.batch_size):
            loss = info_nce(model.text_vectors(texts[batch]), model.image_vectors(images[rows[batch]]),
                            rows[batch], cfg.temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


def info_nce(text_vec: torch.Tensor, image_vec: torch.Tensor, image_rows: torch.Tensor,
             temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE; other captions of the same image are neither positives nor negatives."""
    logits = text_vec @ image_vec.T / temperature
    same_image = image_rows[:, None] == image_rows[None, :]
    logits = logits.masked_fill(same_image & ~torch.eye(len(logits), dtype=torch.bool), float("-inf"))
    target = torch.arange(len(logits))
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
