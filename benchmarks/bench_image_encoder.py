"""Speed and sanity of the frozen image encoder, and the dense two-tower baseline on Flickr8k.

Prints, on this machine:
1. encoder throughput (images/s) on 64 Flickr8k images, after a warm-up batch;
2. nearest-neighbour sanity on the 1,000 test images: the mean caption similarity (MiniLM
   cosine, averaged over the 5×5 caption pairs) between an image and its nearest other image by
   feature cosine, versus a random other image (the mean over all of them) and versus the image
   itself (its 20 pairs of distinct captions);
3. the dense two-tower baseline of semcore.dense trained on the 6,000 train images × 5 captions,
   evaluated on the 1,000 test images × 5 captions: T2I and I2T R@1/5/10 (a correct target in
   the top K, semcore.metrics), rSum of the six, and training time.
Sections 2 and 3 are also run on the final CLS token alone, the usual DINOv2 feature, for
comparison. Features and caption embeddings are cached (about 30 min to encode 7,000 images on
2 busy cores). No timed assertions. Run: `.venv/bin/python benchmarks/bench_image_encoder.py`.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import time
from pathlib import Path

import numpy as np
import torch

from semcore import cache, embeddings, image_encoder, paths
from semcore.data import schema
from semcore.data.captions_jsonl import load_captions_jsonl
from semcore.data.schema import Corpus
from semcore.dense import DenseConfig, TwoTower, rank, train_two_tower
from semcore.embeddings import encode_texts
from semcore.image_encoder import BLOCKS, IMAGE_SIZE, encode_images
from semcore.metrics import recall_at_k

FLICKR8K = paths.REPO.parent / "shared" / "data" / "flickr8k"
FINAL_CLS = 2 * (len(BLOCKS) - 1)  # token index of the last block's CLS


def throughput(corpus: Corpus, n: int = 64, batch_size: int = 16) -> float:
    files = [im.path for im in corpus.images_in("test")[:n + batch_size]]
    encode_images(files[:batch_size], batch_size)  # warm-up: session, cut model
    start = time.perf_counter()
    encode_images(files[batch_size:], batch_size)
    return (len(files) - batch_size) / (time.perf_counter() - start)


def features(corpus: Corpus, data: Path) -> dict[str, np.ndarray]:
    """Image features per split and caption embeddings, in corpus order, from the step cache."""
    def build(work: Path) -> None:
        arrays = {}
        for split in ("train", "test"):
            arrays[f"images_{split}"] = encode_images([im.path for im in corpus.images_in(split)])
            arrays[f"captions_{split}"] = encode_texts([c.text for c in corpus.captions_in(split)])
        np.savez(work / "features.npz", **arrays)

    # keyed on the code that makes these arrays, not the whole package: re-encoding takes long
    sources = [Path(m.__file__).read_bytes() for m in (image_encoder, schema, embeddings)]
    blob = repr((str(data.resolve()), [im.id for im in corpus.images], sources)).encode()
    key = hashlib.sha256(blob).hexdigest()[:20]
    with np.load(cache.step("bench_image_encoder", key, build) / "features.npz") as stored:
        return dict(stored)


def caption_means(corpus: Corpus, embeddings: np.ndarray) -> np.ndarray:
    """Each test image's mean caption embedding (dot products = mean pairwise cosines)."""
    captions = corpus.captions_in("test")
    row = {im.id: i for i, im in enumerate(corpus.images_in("test"))}
    sums = np.zeros((len(row), embeddings.shape[1]), dtype=np.float64)
    counts = np.zeros(len(row))
    for c, e in zip(captions, embeddings):
        sums[row[c.image_id]] += e
        counts[row[c.image_id]] += 1
    return sums / counts[:, None]


def nearest_neighbour_sanity(feats: np.ndarray, means: np.ndarray, embeddings: np.ndarray,
                             corpus: Corpus) -> dict[str, float]:
    x = feats / np.linalg.norm(feats, axis=-1, keepdims=True)
    x = x.reshape(len(x), -1)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    caption_sims = means @ means.T
    n = len(means)
    nearest = caption_sims[np.arange(n), sims.argmax(axis=1)].mean()
    random_other = caption_sims[~np.eye(n, dtype=bool)].mean()
    per_image = {}
    for c, e in zip(corpus.captions_in("test"), embeddings):
        per_image.setdefault(c.image_id, []).append(e)
    same = np.mean([(np.sum(g @ g.T) - np.trace(g @ g.T)) / (len(g) * (len(g) - 1))
                    for g in map(np.stack, per_image.values())])
    return {"nearest": float(nearest), "random": float(random_other), "same": float(same)}


def evaluate(model: TwoTower, corpus: Corpus, image_feats: np.ndarray,
             text_embs: np.ndarray) -> dict[str, dict[str, float]]:
    images, captions = corpus.images_in("test"), corpus.captions_in("test")
    scores = model.similarity(text_embs, image_feats)
    t2i = {c.id: [images[j].id for j in top] for c, top in zip(captions, rank(scores, 10))}
    i2t = {im.id: [captions[j].id for j in top] for im, top in zip(images, rank(scores.T, 10))}
    return {"T2I": recall_at_k(t2i, {c.id: [c.image_id] for c in captions}),
            "I2T": recall_at_k(i2t, {im.id: [c.id for c in corpus.captions_of(im.id)]
                                     for im in images})}


def dense_baseline(corpus: Corpus, feats: dict[str, np.ndarray], tokens: slice,
                   cfg: DenseConfig) -> None:
    row = {im.id: i for i, im in enumerate(corpus.images_in("train"))}
    pairs = np.array([row[c.image_id] for c in corpus.captions_in("train")])
    start = time.perf_counter()
    model = train_two_tower(feats["images_train"][:, tokens], feats["captions_train"], pairs, cfg)
    seconds = time.perf_counter() - start
    result = evaluate(model, corpus, feats["images_test"][:, tokens], feats["captions_test"])
    line = "  ".join(f"{d} R@1/5/10 = {r['R@1']:.1f}/{r['R@5']:.1f}/{r['R@10']:.1f}"
                     for d, r in result.items())
    rsum = sum(r["rSum"] for r in result.values())
    print(f"    {line}  rSum = {rsum:.1f}  (train {seconds:.0f} s, {len(pairs)} pairs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=FLICKR8K,
                        help="folder with captions.jsonl + images/")
    parser.add_argument("--max-train-images", type=int, default=0,
                        help="0: all (a smaller run is a smoke test)")
    parser.add_argument("--max-test-images", type=int, default=0, help="0: all")
    args = parser.parse_args()
    corpus = load_captions_jsonl(args.data, "flickr8k", args.max_train_images, args.max_test_images)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"encoder: {throughput(corpus):.1f} images/s (blocks {BLOCKS}, {IMAGE_SIZE} px, batch 16)")
    feats = features(corpus, args.data)
    means = caption_means(corpus, feats["captions_test"])
    cfg = DenseConfig()
    print(f"dense baseline: {cfg}")
    variants = (("all tokens", slice(None)), ("final CLS only", slice(FINAL_CLS, FINAL_CLS + 1)))
    for name, tokens in variants:
        nn = nearest_neighbour_sanity(feats["images_test"][:, tokens], means,
                                      feats["captions_test"], corpus)
        print(f"{name}: caption similarity of the nearest image {nn['nearest']:.3f}, "
              f"a random other image {nn['random']:.3f}, the same image {nn['same']:.3f}")
        dense_baseline(corpus, feats, tokens, cfg)


if __name__ == "__main__":
    main()
