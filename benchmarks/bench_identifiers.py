"""Time to build every identifier scheme on Flickr8k (train + test), per direction.

SSI runs SmolLM2 per item (about a second each here), so by default it is timed on the first
200 items and projected (`--ssi-items 0` builds all). Everything runs against an empty
temporary cache, so image features and SSI answers are computed, not read back.
Text-to-image identifiers are built for the 7,000 images (source text: the held-out caption,
index 0); image-to-text identifiers for the 35,000 captions. Text embeddings (MiniLM) and image
features are computed once and timed on their own line, since every scheme shares them. The
issue's goal: SID for 8,000 images within 5 minutes on this machine — the line "sid" plus the
embedding line, scaled to 8,000 items, is the figure to compare.
Run: `.venv/bin/python benchmarks/bench_identifiers.py [--direction t2i i2t] [--schemes ...]`.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from semcore import config, pipeline
from semcore.embeddings import encode_texts
from semcore.identifiers import SCHEMES, build_identifiers
from semcore.identifiers.base import IdentifierInputs, IdentifierOptions

GOAL_ITEMS, GOAL_SECONDS = 8_000, 300


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="params/flickr8k.yaml")
    ap.add_argument("--direction", nargs="+", default=["t2i", "i2t"], choices=["t2i", "i2t"])
    ap.add_argument("--schemes", nargs="+", default=sorted(SCHEMES), choices=sorted(SCHEMES))
    ap.add_argument("--ssi-items", type=int, default=200,
                    help="SSI is timed on this many items (0 = all) and projected to all")
    args = ap.parse_args()
    os.environ["SEMCORE_CACHE"] = tempfile.mkdtemp(prefix="bench_identifiers_")  # time it all fresh
    p = config.load(args.profile, caption_source="heldout", max_train_images=0, max_test_images=0)
    opts = IdentifierOptions(cluster_size=p.cluster_size,
                             cluster_size_meaning=p.cluster_size_meaning,
                             lexical_length=p.lexical_length, dedup_top_n=p.dedup_top_n,
                             global_id_style=p.global_id_style, seed=p.seed)
    for direction in args.direction:
        task = pipeline.task(p, direction)
        ids, texts = [it.id for it in task.items], [it.source_text for it in task.items]
        print(f"\n{direction}: {len(ids)} items ({p.profile}, caption_source heldout)")
        embeddings, t_embed = timed(lambda: encode_texts(texts))
        print(f"  {'text embeddings (shared)':28s} {t_embed:8.1f} s")
        vectors = None
        if direction == "t2i":
            vectors, t_vec = timed(lambda: pipeline.image_vectors(p, ids))
            print(f"  {'image features (shared)':28s} {t_vec:8.1f} s")
        inputs = IdentifierInputs(ids, texts, embeddings, vectors)
        for scheme in args.schemes:
            n = args.ssi_items if scheme == "ssi" and 0 < args.ssi_items < len(ids) else len(ids)
            part = IdentifierInputs(ids[:n], texts[:n], embeddings[:n],
                                    None if vectors is None else vectors[:n])
            table, seconds = timed(lambda: build_identifiers(scheme, part, opts))
            stats = table.collision_stats()
            print(f"  {scheme:28s} {seconds:8.1f} s   {stats['distinct_identifiers']:6d} distinct, "
                  f"{stats['colliding_items']:6d} colliding items"
                  + (f"   ({n} items; {seconds * len(ids) / n:.0f} s projected for all, "
                     f"valid {100 * table.info['valid_rate']:.1f}%)" if n < len(ids) else ""))
            if scheme == "sid":
                scaled = (seconds + t_embed) * GOAL_ITEMS / len(ids)
                print(f"  {'sid + embeddings at 8,000':28s} {scaled:8.1f} s   "
                      f"(goal <= {GOAL_SECONDS} s: {'met' if scaled <= GOAL_SECONDS else 'NOT met'})")


if __name__ == "__main__":
    main()
