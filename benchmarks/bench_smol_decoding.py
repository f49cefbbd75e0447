"""Constrained decoding with the real `smol` backbone on Flickr8k: the trie's overhead at beam 10
and 50, and the throughput for the 5,000 test-caption queries at beam 20 (issue 5, benchmarks 1
and 4; `bench_decoding.py` does the same overhead measurement with `tiny`).

Backbone: SmolLM2-135M-Instruct with a fresh projector (`pipeline.new_backbone` under the
flickr8k profile, its `precision` (auto: bf16 only where native), adapters off: trained models
are saved merged). What it
retrieves does not matter here, only time; the number of decoding steps, which a trained model
could change, is counted. The trie holds the SemCORE SIDs of the 1,000 Flickr8k test images
built by the flickr8k profile (cached in cache/ like any run); the queries are the test split's
5,000 captions as text queries, in order, batch 16 (`pipeline.DECODE_BATCH`), as
`pipeline.decoded` runs them (the profile itself holds one caption per image out as the
identifier source; all five are used here, for the count the issue names).

1. Overhead: `constrained_beam_search` against the same beam search without the trie
   processor (`constrained.beam_search`, the same prompt cache) and with max_new_tokens = the
   constrained run's step count (checked to run that many steps), on the first 8 queries;
   medians of interleaved runs, ratio = median of the per-run ratios.
2. Throughput: `retrieval.decode_constrained` over the first `--queries` queries.
Results go to outputs/bench/smol_decoding.json (plotted by notebooks/bench/decoding_cost.py).
Run: `.venv/bin/python benchmarks/bench_smol_decoding.py [--queries 5000] [--precision bf16]`.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_decoding import (OVERHEAD_BEAMS, OVERHEAD_GOAL, constrained_call,  # noqa: E402
                            count_steps, paired_ratio, unconstrained_call)

from semcore import cache, config, methods, paths, pipeline, prompts  # noqa: E402
from semcore.retrieval import IdentifierTrie, decode_constrained, left_padded  # noqa: E402

BEAM = 20
OVERHEAD_QUERIES = 8


def under(bb, fn):
    """fn run in the backbone's inference mode (no grad; bf16 autocast when asked)."""
    def run():
        with bb.inference():
            return fn()
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=5000)
    ap.add_argument("--precision", choices=["bf16", "fp32", "auto"], default=None,
                    help="default: the flickr8k profile's")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    transformers.logging.set_verbosity_error()
    p = config.load(paths.PARAMS / "flickr8k.yaml", finetune="full",
                    **({"precision": args.precision} if args.precision else {}))
    t = pipeline.task(p, "t2i")
    table = pipeline.identifiers(p, "t2i", methods.get("semcore")).subset(list(t.corpus_ids))
    bb = pipeline.new_backbone(p, [])
    bb.model.eval()
    captions = pipeline.corpus(p).captions_in("test")
    queries = [(cap.id, prompts.text_query(bb, cap.text)) for cap in captions][:args.queries]
    index = IdentifierTrie.build(bb.tokenizer, table)
    trie, distinct = index.trie, index.identifiers
    print(f"smol (SmolLM2-135M-Instruct, {len(bb.tokenizer):,} tokens), precision {p.precision}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; trie of {len(distinct):,} "
          f"distinct SIDs ({len(table.item_ids):,} test images), max {trie.max_length} tokens")

    print(f"\n1. Overhead, batch of {OVERHEAD_QUERIES} queries, median of {args.repeats} "
          "interleaved runs")
    print(f"{'beam':>5} {'steps':>6} {'constrained s':>14} {'unconstrained s':>16} {'ratio':>6} {'goal':>6}")
    inputs = left_padded(bb, [e for _, e in queries[:OVERHEAD_QUERIES]], {})
    lm = SimpleNamespace(model=bb.model.language_model)  # smol's generate runs its LM's
    ratios, rows = {}, {}
    for beam in OVERHEAD_BEAMS:
        constrained = under(bb, constrained_call(bb, trie, beam, inputs))
        steps = count_steps(lm, constrained)
        free = under(bb, unconstrained_call(bb, beam, steps, inputs))
        if count_steps(lm, free) != steps:  # ended early on eos: force the step count
            free = under(bb, unconstrained_call(bb, beam, steps, inputs, force=True))
        assert count_steps(lm, free) == steps
        t_c, t_f, ratio = paired_ratio(constrained, free, args.repeats)
        ratios[beam] = ratio
        rows[beam] = dict(steps=steps, t_c=t_c, t_f=t_f, ratio=ratio)
        print(f"{beam:>5} {steps:>6} {t_c:>14.2f} {t_f:>16.2f} {ratio:>6.3f} "
              f"{'<=' + str(OVERHEAD_GOAL):>6}", flush=True)

    print(f"\n2. Throughput, beam {BEAM}, batch {pipeline.DECODE_BATCH}, {len(queries):,} queries")
    start = time.perf_counter()
    ranked = decode_constrained(bb, index, table, queries, {}, BEAM, pipeline.DECODE_BATCH, p.seed,
                                desc="smol decode")
    seconds = time.perf_counter() - start
    assert len(ranked) == len(queries) and all(r.identifiers for r in ranked.values())
    print(f"   {seconds:.0f} s: {len(queries) / seconds:.2f} queries/s, "
          f"{1000 * seconds / len(queries):.0f} ms/query"
          + ("" if len(queries) == 5000 else
             f"; 5,000 queries would take {5000 * seconds / len(queries) / 60:.1f} min"))
    out = paths.outputs("bench") / "smol_decoding.json"
    cache.write_json(out, dict(
        setting=f"smol, precision {p.precision}, {torch.get_num_threads()} threads, trie of "
                f"{len(distinct):,} Flickr8k test SIDs", goal=OVERHEAD_GOAL,
        overhead=[dict(beam=b, **r) for b, r in rows.items()],
        throughput=dict(beam=BEAM, batch=pipeline.DECODE_BATCH, queries=len(queries),
                        seconds=seconds, queries_per_s=len(queries) / seconds)))
    print(f"results: {out}")
    print("\nRatios, this run: " + ", ".join(
        f"beam {b}: {r:.3f} ({'meets' if r <= OVERHEAD_GOAL else 'misses'} goal <= {OVERHEAD_GOAL})"
        for b, r in ratios.items()))


if __name__ == "__main__":
    main()
