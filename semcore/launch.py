"""Train every model a profile needs, outside the notebooks: the entry point for GPU launchers.

`make train PROFILE=… LAUNCHER=deepspeed NGPUS=8` runs this module under `deepspeed` (or
`torchrun`; several nodes with the launchers' own host options). Each rank walks the same plan;
the training steps run on every rank through the HF Trainer (with the profile's
deepspeed_config, e.g. params/deepspeed/zero2.json) and everything else runs on rank 0 and is
shared through the step cache (semcore.cache.step), so the notebooks afterwards find every model
trained and only decode and report. Without a launcher it simply trains in this process.
`--from-end` walks the same plan backwards: `make reproduce` with JOBS > 1 runs it beside the
notebooks once the sweeps are done, with `--evaluate`, which then walks the notebooks' costly
rankings (GSV re-ranking above all) from their end too, so that the second core is not idle
while notebooks 03–04 decode and re-rank in turn; the reports 05–06 wait for it.
"""
from __future__ import annotations

import argparse
from functools import partial
from typing import Callable

from semcore import config, methods, paths, pipeline


STAGES = ("models", "validation", "verifiers")  # what `make train STAGES=…` may name


def training_steps(p: config.Params, stages=STAGES) -> list[Callable[[], object]]:
    """Every training step the notebooks use, in the order they first need it, by stage:
    models: generated captions (if used) and each distinct retrieval model of Tables 1–3;
    validation: notebook 02's recipe models and notebook 04's GSV verifiers on the validation
    split; verifiers: each distinct GSV verifier of the test-split runs. A profile too large
    for one sitting (flickr8k) trains its stages as separate commands."""
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        raise ValueError(f"unknown training stage(s) {unknown}; valid: {', '.join(STAGES)}")
    steps: list[Callable[[], object]] = []
    if "models" in stages:
        steps += [partial(pipeline.captions, p)] if p.caption_source == "generated" else []
        steps += [partial(pipeline.trained_dir, p, d, m) for d, m in pipeline.planned_models(p)]
    semcore = methods.get("semcore")
    runs = []
    if "validation" in stages:
        recipe = pipeline.recipe_method()
        steps += [partial(pipeline.trained_dir, q, "t2i", recipe)
                  for q in pipeline.recipe_validation_runs(p).values()]
        runs += [(p.replace(evaluate_on="validation", **variant), d, semcore)
                 for d in p.directions for variant in pipeline.gsv_variants(p, d).values()]
    if "verifiers" in stages:
        runs = pipeline.gsv_runs(p) + runs
    verifiers: dict[str, Callable[[], object]] = {}
    for pk, d, m in runs:  # each verifier once, first use
        verifiers.setdefault(pipeline.verifier_key(pk, d, m), partial(pipeline.verifier_dir, pk, d, m))
    return steps + list(verifiers.values())


def evaluation_steps(p: config.Params) -> list[Callable[[], object]]:
    """The cached rankings of notebooks 03–05 that decode or re-rank, in the order the notebooks
    reach them: SemCORE at each beam of beam_sweep (03), at each k of gsv_k_sweep and with
    GSV's rotations (04), then every planned run of Tables 1–3 (05)."""
    semcore = methods.get("semcore")
    steps: list[Callable[[], object]] = [partial(pipeline.rankings, p, d, semcore, beam)
                                         for d in p.directions for beam in p.beam_sweep]
    steps += [partial(pipeline.rankings, pk, d, m) for pk, d, m in pipeline.gsv_k_runs(p)]
    steps += [partial(pipeline.gsv_rotations, p, d, semcore) for d in p.directions]
    steps += [partial(pipeline.rankings, p, d, m) for d, m in pipeline.planned_runs(p)]
    return steps


def train_all(p: config.Params, from_end: bool = False, stages=STAGES, evaluate: bool = False) -> None:
    """Run every training step of the stages (cached ones return at once), then with `evaluate`
    every evaluation step. Walked from the end beside the notebooks, which walk it from the
    start, the two share the work and meet in the middle: a step one of them is building, the
    other waits for (semcore.cache.step)."""
    for steps in [training_steps(p, stages)] + ([evaluation_steps(p)] if evaluate else []):
        for run_step in reversed(steps) if from_end else steps:
            run_step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="embedded")
    ap.add_argument("--from-end", action="store_true", help="walk the plan from its last step")
    ap.add_argument("--stages", default=",".join(STAGES),
                    help=f"comma-separated subset of {', '.join(STAGES)} (default: all)")
    ap.add_argument("--evaluate", action="store_true",
                    help="then run the notebooks' decoding and GSV evaluations (one process only)")
    ap.add_argument("--local_rank", type=int, default=0, help=argparse.SUPPRESS)  # deepspeed adds it
    args = ap.parse_args()
    train_all(config.load(paths.PARAMS / f"{args.profile}.yaml"), from_end=args.from_end,
              stages=[s for s in args.stages.split(",") if s], evaluate=args.evaluate)


if __name__ == "__main__":
    main()
