"""make train's plan in stages: models, validation and verifiers partition the whole plan, so a
profile too large for one sitting trains in several commands and misses nothing."""
from __future__ import annotations

import pytest

from semcore import config, launch, paths, pipeline


def _names(steps) -> list[str]:
    return [f"{s.func.__name__}{s.args!r}" for s in steps]


def test_training_stages_partition_the_plan():
    p = config.load(paths.PARAMS / "tiny.yaml")
    whole = _names(launch.training_steps(p))
    parts = {stage: _names(launch.training_steps(p, [stage])) for stage in launch.STAGES}
    assert sorted(n for part in parts.values() for n in part) == sorted(whole)
    assert len(parts["models"]) == len(pipeline.planned_models(p))
    assert all(n.startswith("verifier_dir") for n in parts["verifiers"])
    assert all("evaluate_on='validation'" in n for n in parts["validation"])


def test_an_unknown_stage_is_refused_by_name():
    p = config.load(paths.PARAMS / "tiny.yaml")
    with pytest.raises(ValueError, match="'model'.*valid: models, validation, verifiers"):
        launch.training_steps(p, ["model"])


def test_evaluation_steps_cover_the_beam_and_k_sweeps_and_every_planned_run():
    p = config.load(paths.PARAMS / "tiny.yaml")
    steps = launch.evaluation_steps(p)
    ranked = [s.args for s in steps if s.func is pipeline.rankings]
    assert sorted(a[3] for a in ranked if a[3:]) == sorted(p.beam_sweep * len(p.directions))
    assert {a[0].gsv_k for a in ranked if not a[3:]} == set(p.gsv_k_sweep) | {p.gsv_k}
    assert {(a[1], a[2]) for a in ranked if not a[3:] and a[0] == p} == set(pipeline.planned_runs(p))
    assert [s.args[1] for s in steps if s.func is pipeline.gsv_rotations] == p.directions
    assert len(ranked) + len(p.directions) == len(steps)  # nothing else
