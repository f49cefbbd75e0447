"""Trie build time, memory, and per-decoding-step cost from 1e3 to 1e6 identifiers.

Synthetic identifiers shaped like the paper's: a cluster token, then 4 keywords drawn from a
Zipf-like distribution over a 20k-word vocabulary, each word 1–3 subword tokens of a 30k-token
vocabulary, then the end token (~10 tokens, heavy prefix sharing, some duplicates).

A "step" is what `TrieLogitsProcessor` does for batch × beam = 16 × 20 rows: `walk` the
generated prefix, then `restrict` the scores to the allowed tokens. The "mask" column times the
former way, a dense `allowed_mask` then `masked_fill` of its inverse, for comparison. It is timed at prefix depths 0..7 and averaged (the walk
grows with depth; the allowed sets are largest near the root). Build memory is the tracemalloc
peak of the numpy construction; "trie MB" is what the built trie holds.
Run: `.venv/bin/python benchmarks/bench_trie.py`.
"""
from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable

import numpy as np
import torch

from semcore.trie import Trie

VOCAB = 30_000
END = 1
WORDS = 20_000
CLUSTERS = 1_000
ROWS = 16 * 20
SIZES = (1_000, 10_000, 100_000, 1_000_000)
DEPTH = 8


def synthetic_identifiers(n: int, seed: int = 0) -> list[list[int]]:
    """n identifiers: [cluster, word tokens × 4, END], as Python lists like a tokenizer returns."""
    rng = np.random.default_rng(seed)
    word_len = rng.integers(1, 4, size=WORDS)
    word_tokens = rng.integers(2, VOCAB, size=(WORDS, 3))
    word_tokens[np.arange(3) >= word_len[:, None]] = -1
    zipf = 1.0 / np.arange(1, WORDS + 1) ** 1.1
    words = rng.choice(WORDS, size=(n, 4), p=zipf / zipf.sum())
    clusters = 2 + rng.zipf(1.5, size=n) % CLUSTERS
    ids = np.concatenate([clusters[:, None], word_tokens[words].reshape(n, 12),
                          np.full((n, 1), END)], axis=1)
    keep = ids >= 0
    flat = ids[keep].tolist()
    ends = np.cumsum(keep.sum(axis=1)).tolist()
    return [flat[a:b] for a, b in zip([0] + ends[:-1], ends)]


def median_ms(fn: Callable[[], object], repeats: int = 30) -> float:
    fn()  # warm-up
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return float(np.median(runs)) * 1e3


def step_times(trie: Trie, seqs: list[list[int]]) -> tuple[list[float], list[float], float]:
    """Median ms of one step (walk + restrict) and of the mask-based step at each prefix depth
    0..DEPTH-1, and of the walk alone at depth DEPTH, for ROWS random identifiers longer than
    DEPTH."""
    rng = np.random.default_rng(1)
    long_enough = [s for s in seqs if len(s) > DEPTH]
    prefixes = torch.tensor([long_enough[i][:DEPTH] for i in rng.choice(len(long_enough), ROWS)])
    scores = torch.randn(ROWS, VOCAB)
    assert trie.allowed_mask(trie.walk(prefixes)).any(dim=1).all()
    steps = [median_ms(lambda: trie.restrict(scores, trie.walk(prefixes[:, :t])))
             for t in range(DEPTH)]
    masked = [median_ms(lambda: scores.masked_fill(~trie.allowed_mask(trie.walk(prefixes[:, :t])),
                                                   float("-inf")))
              for t in range(DEPTH)]
    return steps, masked, median_ms(lambda: trie.walk(prefixes))


def main() -> None:
    torch.set_num_threads(1)  # per-step latency of one decoding process, not a thread race
    print(f"vocab {VOCAB}, batch x beam = {ROWS}; step = walk + restrict (median ms), "
          f"mean over prefix depths 0..{DEPTH - 1} and at depth 1 (after the cluster token); "
          f"walk alone of {DEPTH} tokens")
    print(f"{'identifiers':>11} {'tokens':>6} {'nodes':>10} {'build s':>8} {'peak MB':>8} "
          f"{'trie MB':>8} {'step ms':>8} {'mask ms':>8} {'depth-1 ms':>10} {'walk-8 ms':>9}")
    for n in SIZES:
        seqs = synthetic_identifiers(n)
        tracemalloc.start()
        start = time.perf_counter()
        trie = Trie.build(seqs, VOCAB)
        build = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        steps, masked, walk = step_times(trie, seqs)
        tokens = sum(map(len, seqs)) / n
        print(f"{n:>11,} {tokens:>6.1f} {trie.num_nodes:>10,} {build:>8.2f} {peak / 2**20:>8.0f} "
              f"{trie.nbytes / 2**20:>8.1f} {np.mean(steps):>8.2f} {np.mean(masked):>8.2f} {steps[1]:>10.2f} "
              f"{walk:>9.2f}")


if __name__ == "__main__":
    main()
