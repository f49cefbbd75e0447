"""Training throughput (samples/s) and peak memory for tiny and smol, full and LoRA, on this CPU.

smol is also measured with `precision: bf16` (bfloat16 autocast, which uses AMX on this CPU).

Each configuration runs in its own process (so its peak resident memory is its own) through the
one training path, `semcore.train.train`, on synthetic retrieval examples shaped like the real
ones: a text query of ~30 tokens or an image query (16 tiny image tokens, or 6 cached DINOv2
feature tokens for smol) → an identifier of ~8 tokens, batch 16. Throughput is the extra
samples of a 3-epoch run over a 1-epoch run divided by the extra time (loading and warm-up
cancel); weights are what each backbone starts from (tiny: random; smol: SmolLM2-135M-Instruct
+ a fresh projector; random image features). "trainable M" counts parameters that get gradients
(LoRA: adapters and projector).
Run: `.venv/bin/python benchmarks/bench_training.py [--examples 96]`.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BATCH = 16
CONFIGS = [("tiny", "full", "fp32"), ("tiny", "lora", "fp32"), ("smol", "full", "fp32"),
           ("smol", "full", "bf16"), ("smol", "lora", "fp32"), ("smol", "lora", "bf16")]
WORDS = ("dog runs across the grass near two children with a red ball while people watch from "
         "the bench in a sunny park beside the river").split()


def measure(backbone: str, finetune: str, precision: str, n_examples: int) -> dict:
    """One configuration, in this process: samples/s from the time difference between a 1-epoch
    and a 3-epoch run (which cancels loading and warm-up), and the process's peak RSS."""
    from semcore import config, pipeline, prompts
    from semcore.train import TrainConfig, train

    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, size=24)) for _ in range(n_examples)]
    idents = [" ".join(rng.choice(WORDS, size=4)) for _ in range(n_examples)]
    p = config.Params(backbone=backbone, finetune=finetune)
    seconds, params_m, tokens = {}, 0.0, 0.0
    for epochs in (1, 3):
        bb = pipeline.new_backbone(p, texts + idents + prompts.TEMPLATE_WORDS)
        feature = (32, 32, 3) if backbone == "tiny" else (bb.n_image_tokens, 384)
        images = {f"im{k}": (rng.integers(0, 255, feature, dtype=np.uint8) if backbone == "tiny"
                             else rng.normal(size=feature).astype(np.float32))
                  for k in range(n_examples)}
        examples = [prompts.text_query(bb, t, i) if k % 2 else prompts.image_query(bb, f"im{k}", i)
                    for k, (t, i) in enumerate(zip(texts, idents))]
        tokens = float(np.mean([len(e.prompt) + len(e.target) for e in examples]))
        params_m = sum(x.numel() for x in bb.model.parameters() if x.requires_grad) / 1e6
        with tempfile.TemporaryDirectory() as work:
            start = time.perf_counter()
            train(bb, examples, images, TrainConfig(epochs, BATCH, 1e-4, 0, f"{backbone} {finetune}",
                                                    bf16=precision == "bf16"), Path(work))
            seconds[epochs] = time.perf_counter() - start
    return {"samples_per_s": 2 * n_examples / (seconds[3] - seconds[1]),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "trainable_m": params_m, "tokens_per_example": tokens}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=96)
    ap.add_argument("--one", nargs=3, metavar=("BACKBONE", "FINETUNE", "PRECISION"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one, args.examples)))
        return
    print(f"{'backbone':8s} {'finetune':8s} {'precision':9s} {'samples/s':>10s} {'peak RSS MB':>12s} "
          f"{'trainable M':>11s} {'tokens/ex':>9s}   (batch {BATCH})")
    for backbone, finetune, precision in CONFIGS:
        out = subprocess.run([sys.executable, __file__, "--one", backbone, finetune, precision,
                              "--examples", str(args.examples)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{backbone:8s} {finetune:8s} {precision:9s} {r['samples_per_s']:10.1f} {r['peak_rss_mb']:12.0f} "
              f"{r['trainable_m']:11.1f} {r['tokens_per_example']:9.1f}", flush=True)


if __name__ == "__main__":
    main()
