"""Cost of trie-constrained decoding on the `tiny` backbone, and how it compares to dense search.

Three measurements on this CPU (torch's default thread count), all with the `tiny` backbone: a
randomly initialised InternVL from `build_tiny` (hidden 128, 2 layers), its tokenizer from
`train_tokenizer` (byte-level BPE, 4000 tokens) over synthetic words. Random weights are fine:
only the time is measured, not what is retrieved.

1. Overhead of the trie constraint. `constrained_beam_search` with a trie of 1,000 synthetic
   identifiers, against the same beam search without the logits processor
   (`constrained.beam_search`: the same prompt cache, num_beams, num_return_sequences,
   length_penalty, early_stopping, output_scores, neutral scoring settings), batch of 8 text
   queries, beam 10 and 50, 15 interleaved repeats: median times, and the median of the
   per-repeat ratios (each pair ran back to back).
   Step count: constrained search stops early once every row has its beams finished, so its
   number of decoding steps is counted (forward calls of the model on one new position per row,
   via a forward pre-hook, in an untimed call); the unconstrained call then gets max_new_tokens = that count, and the same
   hook checks that it ran exactly that many steps (no early eos; the random model never ends
   early here). Only if it did would a min-new-tokens processor be added, and flagged: it
   costs ~20% of the unconstrained call at beam 50, which would flatter the ratio.
2. Corpus scaling. Per-query latency of constrained beam search (beam 20, batch 8) with 1e3 ..
   1e6 identifiers; each trie is built once (build time and `Trie.nbytes` reported), only the
   decoding is timed.
3. Dense retrieval. Exhaustive search: one torch matmul of 8 normalised 384-d queries against N
   normalised item vectors, then top-20; per-query latency for the same N. (faiss and hnswlib
   are reported when importable; they are not installed here.)

Synthetic identifiers are shaped like SemCORE's: a global ID of 2 words (one of 2,000 clusters,
Zipf-like sizes) and a lexical ID of 3 keywords (Zipf-like over a 3,000-word vocabulary), each
word 1-4 BPE tokens (2 on average, ~12 tokens per identifier), then eos. The tokens of an
identifier are the concatenation of its words' tokens, which equals `identifier_target` (checked
on a sample) and avoids running the tokenizer a million times.
Results go to outputs/bench/decoding.json; `make bench` plots them with
notebooks/bench/decoding_cost.py.
Run: `.venv/bin/python benchmarks/bench_decoding.py [--quick]`.
"""
from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import time
from collections.abc import Callable

import numpy as np
import torch
import transformers
from transformers import MinNewTokensLengthLogitsProcessor

from semcore import cache, paths, prompts
from semcore.constrained import TrieLogitsProcessor, beam_search, constrained_beam_search
from semcore.models import Backbone
from semcore.models.tiny import build_tiny, train_tokenizer
from semcore.retrieval import left_padded
from semcore.trie import Trie

HIDDEN, LAYERS, IMAGE_SIZE, SEED = 128, 2, 32, 0
TOKENIZER_VOCAB = 4000  # as semcore.pipeline
WORDS = 3_000
CLUSTERS = 2_000
BATCH = 8
OVERHEAD_BEAMS = (10, 50)
OVERHEAD_IDENTIFIERS = 1_000
SCALING_BEAM = 20
SIZES = (1_000, 10_000, 100_000, 1_000_000)
DIM, TOP_K = 384, 20
OVERHEAD_GOAL, SCALING_GOAL = 1.10, 1.2


# --- synthetic vocabulary, tokenizer, model -------------------------------------------------------
def synthetic_words(n: int, seed: int = SEED) -> list[str]:
    """n distinct pronounceable lower-case pseudo-words of 1-3 syllables."""
    rng = np.random.default_rng(seed)
    onsets = list("bcdfghjklmnprstvwz") + ["ch", "sh", "th", "br", "st", "tr", "pl"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ou", "ee"]
    codas = ["", "", "", "n", "r", "s", "l", "t"]
    words: dict[str, None] = {}
    while len(words) < n:
        k = int(rng.integers(1, 4))
        words["".join(onsets[rng.integers(len(onsets))] + vowels[rng.integers(len(vowels))]
                      + codas[rng.integers(len(codas))] for _ in range(k))] = None
    return list(words)


def synthetic_queries(words: list[str], n: int, seed: int = SEED) -> list[str]:
    rng = np.random.default_rng(seed + 1)
    pick = lambda: words[int(rng.integers(len(words)))]  # noqa: E731
    return [f"a {pick()} {pick()} next to the {pick()} {pick()} in the {pick()}" for _ in range(n)]


def tiny_backbone(words: list[str]) -> Backbone:
    texts = words + synthetic_queries(words, 500) + prompts.TEMPLATE_WORDS
    tokenizer = train_tokenizer(texts, TOKENIZER_VOCAB)
    bb = build_tiny(tokenizer, IMAGE_SIZE, HIDDEN, LAYERS, SEED)
    bb.model.eval()
    return bb


class Identifiers:
    """Synthetic SemCORE-shaped identifiers over a fixed word list, tokenized word by word."""

    def __init__(self, bb: Backbone, words: list[str]):
        self.bb, self.words = bb, words
        self.word_tokens = [bb.encode(" " + w) for w in words]
        rng = np.random.default_rng(SEED + 2)
        self.cluster_words = rng.choice(len(words), size=(CLUSTERS, 2))
        zipf = 1.0 / np.arange(1, len(words) + 1) ** 1.1
        self.word_p = zipf / zipf.sum()
        czipf = 1.0 / np.arange(1, CLUSTERS + 1) ** 0.8
        self.cluster_p = czipf / czipf.sum()

    def word_ids(self, n: int, seed: int) -> np.ndarray:
        """[n, 5] word indices: 2 global-ID words of a cluster, then 3 keywords."""
        rng = np.random.default_rng(seed)
        clusters = rng.choice(CLUSTERS, size=n, p=self.cluster_p)
        keywords = rng.choice(len(self.words), size=(n, 3), p=self.word_p)
        return np.concatenate([self.cluster_words[clusters], keywords], axis=1)

    def sequences(self, n: int, seed: int) -> list[list[int]]:
        eos, wt = self.bb.eos_id, self.word_tokens
        return [wt[a] + wt[b] + wt[c] + wt[d] + wt[e] + [eos]
                for a, b, c, d, e in self.word_ids(n, seed).tolist()]

    def check(self, seed: int = 123, n: int = 200) -> None:
        """Word-by-word tokens equal what retrieval decodes (`identifier_target`)."""
        for row, seq in zip(self.word_ids(n, seed), self.sequences(n, seed)):
            text = " ".join(self.words[i] for i in row)
            assert seq == prompts.identifier_target(self.bb, text), text


# --- timing helpers -------------------------------------------------------------------------------
class StepCounter:
    """Counts the decoding steps of the model inside a `with` block: forward calls on one new
    position per row (the prompt pass of `constrained.prompt_cache` covers several)."""

    def __init__(self, model: torch.nn.Module):
        self.model, self.calls = model, 0

    def __enter__(self) -> StepCounter:
        self.handle = self.model.register_forward_pre_hook(self._hook, with_kwargs=True)
        return self

    def _hook(self, _module: torch.nn.Module, _args: tuple, kwargs: dict) -> None:
        x = kwargs.get("input_ids")
        x = kwargs.get("inputs_embeds") if x is None else x
        self.calls += int(x is not None and x.shape[1] == 1)

    def __exit__(self, *_: object) -> None:
        self.handle.remove()


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved_runs(fns: list[Callable[[], object]], repeats: int) -> list[list[float]]:
    """Seconds of each fn per repeat, runs interleaved (a, b, a, b, ...) after one warm-up each,
    so that drifting background load hits all of them alike."""
    for fn in fns:
        fn()
    runs = [[] for _ in fns]
    for _ in range(repeats):
        for fn, r in zip(fns, runs):
            r.append(timed(fn))
    return runs


def paired_ratio(constrained: Callable[[], object], free: Callable[[], object],
                 repeats: int) -> tuple[float, float, float]:
    """Median seconds of each, and the median of the per-repeat ratios constrained / free (each
    pair ran back to back, so a slow spell of this shared machine scales both)."""
    t_c, t_f = interleaved_runs([constrained, free], repeats)
    return float(np.median(t_c)), float(np.median(t_f)), float(np.median(np.divide(t_c, t_f)))


def median_s(fn: Callable[[], object], repeats: int) -> float:
    return float(np.median(interleaved_runs([fn], repeats)[0]))


# --- 1. overhead ----------------------------------------------------------------------------------
def constrained_call(bb: Backbone, trie: Trie, beam: int, inputs: dict) -> Callable[[], object]:
    def run():
        with torch.no_grad():
            return constrained_beam_search(bb.model, trie, bb.eos_id, beam, trie.max_length,
                                           **inputs)
    return run


def unconstrained_call(bb: Backbone, beam: int, steps: int, inputs: dict,
                       force: bool = False) -> Callable[[], object]:
    """constrained_beam_search's beam search (`constrained.beam_search`: same prompt cache, same
    settings) without the trie processor, max_new_tokens=steps.

    Without `force` nothing stops it from ending early on eos (the caller checks the step
    count); `force` adds a min-new-tokens processor, which itself costs time (~20% of the call
    at beam 50 here), so it is only the fallback."""
    prompt = inputs["input_ids"].shape[1]
    processors = [MinNewTokensLengthLogitsProcessor(prompt, steps, bb.eos_id)] if force else []

    def run():
        with torch.no_grad():
            return beam_search(bb.model, beam, steps, bb.eos_id, bb.eos_id, processors, **inputs)
    return run


def count_steps(bb: Backbone, fn: Callable[[], object]) -> int:
    with StepCounter(bb.model) as counter:
        fn()
    return counter.calls


def processor_seconds(bb: Backbone, trie: Trie, seqs: list[list[int]], beam: int, steps: int,
                      prompt: torch.Tensor, repeats: int = 5) -> float:
    """The trie processor alone over `steps` steps: one fresh processor called at generated
    lengths 0..steps-1 in order, as in a search (it steps each row from its previous node), on
    batch x beam rows whose generated part is a random identifier's prefix (eos-padded past its
    end, as generate pads finished beams); median total of `repeats` runs."""
    rng = np.random.default_rng(SEED + 30)
    rows = BATCH * beam
    generated = torch.full((rows, steps), bb.eos_id, dtype=torch.long)
    for r, i in enumerate(rng.choice(len(seqs), rows)):
        seq = seqs[i][:steps]
        generated[r, :len(seq)] = torch.tensor(seq)
    prompt = prompt.repeat_interleave(beam, dim=0)
    calls = [torch.cat([prompt, generated[:, :t]], dim=1) for t in range(steps)]
    scores = torch.randn(rows, len(bb.tokenizer))

    def search() -> None:
        processor = TrieLogitsProcessor(trie, prompt.shape[1], bb.eos_id, num_beams=beam)
        for input_ids in calls:
            processor(input_ids, scores)
    return median_s(search, repeats)


def overhead(bb: Backbone, ids: Identifiers, inputs: dict, beams: tuple[int, ...],
             repeats: int) -> list[dict]:
    seqs = ids.sequences(OVERHEAD_IDENTIFIERS, seed=SEED + 10)
    trie = Trie.build(seqs, len(bb.tokenizer))
    rows = []
    for beam in beams:
        constrained = constrained_call(bb, trie, beam, inputs)
        steps = count_steps(bb, constrained)
        free = unconstrained_call(bb, beam, steps, inputs)
        forced = count_steps(bb, free) != steps  # ended early on eos: force the step count
        if forced:
            free = unconstrained_call(bb, beam, steps, inputs, force=True)
        assert count_steps(bb, free) == steps
        t_c, t_f, ratio = paired_ratio(constrained, free, repeats)
        t_p = processor_seconds(bb, trie, seqs, beam, steps, inputs["input_ids"])
        rows.append(dict(beam=beam, max_len=trie.max_length, steps=steps, t_c=t_c, t_f=t_f,
                         t_p=t_p, ratio=ratio, forced=forced))
    return rows


# --- 2. corpus scaling ----------------------------------------------------------------------------
def scaling(bb: Backbone, ids: Identifiers, inputs: dict, sizes: tuple[int, ...],
            repeats: int) -> list[dict]:
    rows = []
    for n in sizes:
        start = time.perf_counter()
        seqs = ids.sequences(n, seed=SEED + 20)
        make = time.perf_counter() - start
        start = time.perf_counter()
        trie = Trie.build(seqs, len(bb.tokenizer))
        build = time.perf_counter() - start
        tokens = sum(map(len, seqs)) / n
        distinct = int(np.unique(trie.leaf_nodes).size)
        del seqs
        gc.collect()
        decode = constrained_call(bb, trie, SCALING_BEAM, inputs)
        steps = count_steps(bb, decode)
        t = median_s(decode, repeats)
        rows.append(dict(n=n, distinct=distinct, tokens=tokens, max_len=trie.max_length,
                         nodes=trie.num_nodes, make=make, build=build, mb=trie.nbytes / 2**20,
                         steps=steps, per_query=t / BATCH, per_step=t / steps))
        del trie, decode
        gc.collect()
    return rows


# --- 3. dense -------------------------------------------------------------------------------------
def unit_rows(n: int, gen: torch.Generator) -> torch.Tensor:
    x = torch.randn(n, DIM, generator=gen)
    return x.div_(x.norm(dim=1, keepdim=True))


def dense(sizes: tuple[int, ...], repeats: int) -> list[dict]:
    gen = torch.Generator().manual_seed(SEED)
    queries = unit_rows(BATCH, gen)
    rows = []
    for n in sizes:
        items = unit_rows(n, gen)
        search = lambda: torch.topk(queries @ items.T, min(TOP_K, n), dim=1)  # noqa: E731
        t = median_s(search, repeats)
        rows.append(dict(n=n, per_query=t / BATCH, mb=items.numel() * 4 / 2**20))
        del items, search
        gc.collect()
    return rows


def crossover(gen_rows: list[dict], dense_rows: list[dict]) -> tuple[float | None, bool]:
    """N where dense per-query latency reaches generative's: (N, extrapolated?) or (None, False).

    Inside the measured range: log-log interpolation between the two sizes around the sign
    change. Beyond it: both latencies extended linearly in N through their two largest sizes.
    """
    ns = np.array([r["n"] for r in gen_rows], dtype=float)
    g = np.array([r["per_query"] for r in gen_rows])
    d = np.array([r["per_query"] for r in dense_rows])
    diff = np.log(d) - np.log(g)
    if diff[0] >= 0:
        return ns[0], False
    for i in range(1, len(ns)):
        if diff[i] >= 0:
            f = -diff[i - 1] / (diff[i] - diff[i - 1])
            return float(np.exp(np.log(ns[i - 1]) + f * np.log(ns[i] / ns[i - 1]))), False
    slope_g = (g[-1] - g[-2]) / (ns[-1] - ns[-2])
    slope_d = (d[-1] - d[-2]) / (ns[-1] - ns[-2])
    if slope_d <= slope_g:
        return None, True
    return float(ns[-1] + (g[-1] - d[-1]) / (slope_d - slope_g)), True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="1e3 and 1e4 identifiers, beam 4, one repeat: checks the benchmark runs "
                         "(tests); its figures mean nothing")
    args = ap.parse_args()
    beams, sizes, repeats = ((4,), SIZES[:2], 1) if args.quick else (OVERHEAD_BEAMS, SIZES, 15)
    transformers.logging.set_verbosity_error()
    wall = time.perf_counter()
    load0 = os.getloadavg()[0]
    words = synthetic_words(WORDS)
    bb = tiny_backbone(words)
    ids = Identifiers(bb, words)
    ids.check()
    queries = synthetic_queries(words, BATCH, seed=SEED + 100)
    inputs = left_padded(bb, [prompts.text_query(bb, q) for q in queries], {})
    n_params = sum(p.numel() for p in bb.model.parameters())
    setting = (f"tiny backbone: InternVL, random init, hidden {HIDDEN}, {LAYERS} layers, "
               f"{n_params / 1e6:.2f} M parameters; tokenizer {len(bb.tokenizer)} tokens over "
               f"{WORDS:,} synthetic words; torch {torch.__version__}, "
               f"{torch.get_num_threads()} threads; batch {BATCH} text queries, prompt "
               f"{inputs['input_ids'].shape[1]} tokens")
    print(setting)

    print(f"\n1. Overhead of the trie constraint ({OVERHEAD_IDENTIFIERS:,} identifiers), "
          f"median of {repeats} interleaved runs per batch of {BATCH}; ratio = median of the "
          "per-run ratios")
    print("   unconstrained = the same beam search (prompt cache, settings) without the "
          "processor, max_new_tokens = the constrained run's step count (forward calls counted)")
    print("   processor ms = TrieLogitsProcessor alone over the steps (timed apart)")
    print(f"{'beam':>5} {'trie max len':>12} {'steps':>6} {'constrained ms':>15} "
          f"{'unconstrained ms':>17} {'processor ms':>13} {'ratio':>6} {'goal':>6}")
    over = overhead(bb, ids, inputs, beams, repeats)
    for r in over:
        print(f"{r['beam']:>5} {r['max_len']:>12} {r['steps']:>6} {r['t_c'] * 1e3:>15.1f} "
              f"{r['t_f'] * 1e3:>17.1f} {r['t_p'] * 1e3:>13.1f} {r['ratio']:>6.3f} "
              f"{'<=' + str(OVERHEAD_GOAL):>6}"
              + ("  (step count forced with min_new_tokens)" if r["forced"] else ""))

    print(f"\n2. Corpus scaling, constrained beam {SCALING_BEAM}, batch {BATCH}, median of "
          f"{max(1, repeats - 2)} runs; trie built once per size, only decoding timed")
    print(f"{'identifiers':>11} {'distinct':>9} {'tokens':>6} {'max len':>7} {'nodes':>10} "
          f"{'gen s':>6} {'build s':>7} {'trie MB':>8} {'steps':>5} {'ms/query':>8} {'ms/step':>7}")
    gen_rows = scaling(bb, ids, inputs, sizes, max(1, repeats - 2))
    for r in gen_rows:
        print(f"{r['n']:>11,} {r['distinct']:>9,} {r['tokens']:>6.1f} {r['max_len']:>7} "
              f"{r['nodes']:>10,} {r['make']:>6.2f} {r['build']:>7.2f} {r['mb']:>8.1f} "
              f"{r['steps']:>5} {r['per_query'] * 1e3:>8.2f} {r['per_step'] * 1e3:>7.2f}")

    print(f"\n3. Dense retrieval, exhaustive: torch matmul of {BATCH} x {DIM} normalised queries "
          f"against N x {DIM} normalised items + top-{TOP_K}, median of {repeats} runs")
    avail = {m: importlib.util.find_spec(m) is not None for m in ("faiss", "hnswlib")}
    print("   approximate indexes: " + ", ".join(
        f"{m} {'importable (not run)' if ok else 'not importable, skipped'}"
        for m, ok in avail.items()))
    dense_rows = dense(sizes, repeats)
    print(f"{'N':>11} {'vectors MB':>10} {'dense ms/query':>14} {'generative ms/query':>19} "
          f"{'gen/dense':>9}")
    for d, g in zip(dense_rows, gen_rows):
        print(f"{d['n']:>11,} {d['mb']:>10.1f} {d['per_query'] * 1e3:>14.3f} "
              f"{g['per_query'] * 1e3:>19.2f} {g['per_query'] / d['per_query']:>9.1f}")
    cross, extrapolated = crossover(gen_rows, dense_rows)

    print("\nRatios, this run:")
    for r in over:
        verdict = "meets" if r["ratio"] <= OVERHEAD_GOAL else "misses"
        print(f"  overhead, beam {r['beam']}: constrained / unconstrained = {r['ratio']:.3f} "
              f"({verdict} goal <= {OVERHEAD_GOAL})")
    first, last = gen_rows[0], gen_rows[-1]
    scale = last["per_query"] / first["per_query"]
    verdict = "meets" if scale <= SCALING_GOAL else "misses"
    print(f"  scaling, per-query latency {last['n']:,} / {first['n']:,} identifiers = {scale:.3f} "
          f"({verdict} goal <= {SCALING_GOAL}); per step {last['per_step'] / first['per_step']:.3f}"
          f" ({first['steps']} vs {last['steps']} steps)")
    print(f"  dense, per-query latency {last['n']:,} / {first['n']:,} = "
          f"{dense_rows[-1]['per_query'] / dense_rows[0]['per_query']:.1f}")
    if cross is None:
        print("  crossover: none; dense stays cheaper and does not grow faster than generative")
    elif extrapolated:
        print(f"  crossover: none in the measured range; EXTRAPOLATED (both latencies linear in N "
              f"through the two largest sizes) at N ~ {cross:.2g}")
    else:
        print(f"  crossover: generative becomes cheaper than dense at N ~ {cross:.2g} (measured "
              "range, log-log interpolation)")
    out = paths.outputs("bench") / "decoding.json"
    cache.write_json(out, dict(
        setting=setting, quick=args.quick, threads=torch.get_num_threads(),
        load_average=[load0, os.getloadavg()[0]], seconds=time.perf_counter() - wall,
        goals=dict(overhead=OVERHEAD_GOAL, scaling=SCALING_GOAL), scaling_beam=SCALING_BEAM,
        batch=BATCH, dense_dim=DIM, top_k=TOP_K, overhead=over, scaling=gen_rows,
        dense=dense_rows, crossover=cross, crossover_extrapolated=extrapolated))
    print(f"results: {out.relative_to(paths.REPO) if out.is_relative_to(paths.REPO) else out} "
          f"(plotted by notebooks/bench/decoding_cost.py, `make bench`); total "
          f"{time.perf_counter() - wall:.0f} s; load average at start {load0:.2f}, at end "
          f"{os.getloadavg()[0]:.2f} (other processes on these cores skew every number)")


if __name__ == "__main__":
    main()
