"""Trie build time, memory, and per-decoding-step cost from 1e3 to 1e6 identifiers.

Synthetic identifiers shaped like the paper's: a cluster token, then 4 keywords drawn from a
Zipf-like distribution over a 20k-word vocabulary, each word 1–3 subword tokens of a 30k-token
vocabulary, then the end token (~10 tokens, heavy prefix sharing, some duplicates).

A "step" is what `TrieLogitsProcessor` does for batch × beam = 16 × 20 rows after its first
call: one `Trie.step` from each row's previous node (its parent beam's), then `restrict` the
scores to the allowed tokens. "walk" times the same with a full `walk` of the generated prefix
from the root instead (what the first call does, and what every call did before), "mask" the
walk with a dense `allowed_mask` and `masked_fill` of its inverse. Each is timed at prefix
depths 0..7 and averaged (a walk grows with depth; the allowed sets are largest near the root). Build memory is the tracemalloc
peak of the numpy construction; "trie MB" is what the built trie holds.
Results also go to outputs/bench/trie.json (plotted by notebooks/bench/decoding_cost.py).
Run: `.venv/bin/python benchmarks/bench_trie.py`.
"""
from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable

import numpy as np
import torch

from semcore import cache, paths
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


def step_times(trie: Trie, seqs: list[list[int]]) -> dict[str, list[float]]:
    """Median ms at each prefix depth 0..DEPTH-1 of the processor's step (step from the parent's
    node + restrict), of the same with a full walk, and of the walk with a dense mask, for ROWS
    random identifiers longer than DEPTH; and of the walk alone at depth DEPTH."""
    rng = np.random.default_rng(1)
    long_enough = [s for s in seqs if len(s) > DEPTH]
    prefixes = torch.tensor([long_enough[i][:DEPTH] for i in rng.choice(len(long_enough), ROWS)])
    scores = torch.randn(ROWS, VOCAB)
    assert trie.allowed_mask(trie.walk(prefixes)).any(dim=1).all()
    parents = [trie.walk(prefixes[:, :t - 1]) for t in range(1, DEPTH)]
    assert all(np.array_equal(trie.step(parents[t - 1], prefixes[:, t - 1]), trie.walk(prefixes[:, :t]))
               for t in range(1, DEPTH))
    root = torch.zeros(ROWS, dtype=torch.long)
    return {
        "step": [median_ms(lambda: trie.restrict(scores, root if t == 0 else
                                                 trie.step(parents[t - 1], prefixes[:, t - 1])))
                 for t in range(DEPTH)],
        "walk": [median_ms(lambda: trie.restrict(scores, trie.walk(prefixes[:, :t])))
                 for t in range(DEPTH)],
        "mask": [median_ms(lambda: scores.masked_fill(
            ~trie.allowed_mask(trie.walk(prefixes[:, :t])), float("-inf"))) for t in range(DEPTH)],
        "walk_only": [median_ms(lambda: trie.walk(prefixes))]}


def main() -> None:
    torch.set_num_threads(1)  # per-step latency of one decoding process, not a thread race
    print(f"vocab {VOCAB}, batch x beam = {ROWS}; median ms of one decoding step's trie work, mean "
          f"over prefix depths 0..{DEPTH - 1}: step = Trie.step from the parent's node + restrict "
          f"(the processor), walk = full walk + restrict, mask = full walk + dense mask; walk-{DEPTH} "
          "= a full walk alone")
    print(f"{'identifiers':>11} {'tokens':>6} {'nodes':>10} {'build s':>8} {'peak MB':>8} "
          f"{'trie MB':>8} {'step ms':>8} {'walk ms':>8} {'mask ms':>8} {f'walk-{DEPTH} ms':>9}")
    rows = []
    for n in SIZES:
        seqs = synthetic_identifiers(n)
        tracemalloc.start()
        start = time.perf_counter()
        trie = Trie.build(seqs, VOCAB)
        build = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        times = step_times(trie, seqs)
        tokens = sum(map(len, seqs)) / n
        rows.append(dict(n=n, tokens=tokens, nodes=trie.num_nodes, build_s=build,
                         peak_mb=peak / 2**20, trie_mb=trie.nbytes / 2**20,
                         **{f"{k}_ms": float(np.mean(v)) for k, v in times.items()}))
        r = rows[-1]
        print(f"{n:>11,} {tokens:>6.1f} {trie.num_nodes:>10,} {build:>8.2f} {r['peak_mb']:>8.0f} "
              f"{r['trie_mb']:>8.1f} {r['step_ms']:>8.2f} {r['walk_ms']:>8.2f} {r['mask_ms']:>8.2f} "
              f"{r['walk_only_ms']:>9.2f}", flush=True)
    first, last = rows[0], rows[-1]
    print(f"step at {last['n']:,} / {first['n']:,} identifiers: "
          f"{last['step_ms'] / first['step_ms']:.3f}; build at {last['n']:,}: {last['build_s']:.1f} s "
          f"(goal <= 60 s), trie {last['trie_mb']:.0f} MB, build peak {last['peak_mb']:.0f} MB "
          "(goal <= 1 GB)")
    cache.write_json(paths.outputs("bench") / "trie.json", dict(vocab=VOCAB, rows_per_step=ROWS,
                                                                depth=DEPTH, sizes=rows))


if __name__ == "__main__":
    main()
