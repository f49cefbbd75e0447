"""Train every model a profile needs, outside the notebooks: the entry point for GPU launchers.

`make train PROFILE=… LAUNCHER=deepspeed NGPUS=8` runs this module under `deepspeed` (or
`torchrun`; several nodes with the launchers' own host options). Each rank walks the same plan;
the training steps run on every rank through the HF Trainer (with the profile's
deepspeed_config, e.g. params/deepspeed/zero2.json) and everything else runs on rank 0 and is
shared through the step cache (semcore.cache.step), so the notebooks afterwards find every model
trained and only decode and report. Without a launcher it simply trains in this process.
"""
from __future__ import annotations

import argparse

from semcore import config, paths, pipeline


def train_all(p: config.Params) -> None:
    """Generated captions (if used), each distinct retrieval model, and each GSV verifier."""
    if p.caption_source == "generated":
        pipeline.captions(p)
    for direction, method in pipeline.planned_models(p):
        pipeline.trained(p, direction, method)
    for direction, method in pipeline.planned_runs(p):
        if method.gsv:
            pipeline.verifier(p, direction, method)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="embedded")
    ap.add_argument("--local_rank", type=int, default=0, help=argparse.SUPPRESS)  # deepspeed adds it
    args = ap.parse_args()
    train_all(config.load(paths.PARAMS / f"{args.profile}.yaml"))


if __name__ == "__main__":
    main()
