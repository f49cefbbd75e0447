"""Every notebook runs end to end under papermill on the tiny profile, in order, and writes
its tables, figures and run summary; re-running the report notebooks changes no byte."""
import hashlib
import os
from pathlib import Path

import jupytext
import papermill
import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.py"))


def run_notebook(source: Path, out_dir: Path, **parameters) -> Path:
    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = {"name": "semcore", "language": "python", "display_name": "semcore"}
    built = out_dir / f"{source.stem}.ipynb"
    jupytext.write(nb, built)
    executed = out_dir / f"{source.stem}.executed.ipynb"
    papermill.execute_notebook(str(built), str(executed), parameters={"profile": "tiny", **parameters},
                               kernel_name="semcore", progress_bar=False, cwd=str(REPO))
    return executed


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("nb")
    os.environ["SEMCORE_OUTPUTS"] = str(root / "outputs")
    os.environ["SEMCORE_CACHE"] = str(root / "cache")
    from semcore import sweep
    for source in NOTEBOOKS:
        if source.stem == "05_tables":  # Table 4 and Figure 3 are read from the profile's sweeps
            sweep.main(["--profile", "tiny"])  # as `make reproduce` runs them, drawn where they are grids
        run_notebook(source, root)
    return root


def test_every_notebook_writes_its_summary(outputs):
    runs = outputs / "outputs" / "tiny" / "runs"
    assert sorted(p.stem for p in runs.glob("*.json")) == [s.stem for s in NOTEBOOKS]


def test_tables_and_figures_exist(outputs):
    tables = outputs / "outputs" / "tiny" / "tables"
    for stem in ("table1_t2i", "table2_i2t", "table3_ablations_t2i", "table4_backbones", "table5_beam_t2i",
                 "table5_beam_i2t", "identifier_collisions", "identifier_examples", "decode_scores",
                 "model_diagnostics", "ceiling_fraction", "identifier_ceiling", "training_mix",
                 "recipe_validation", "gsv_selection", "gsv_formats", "seed_spread"):
        for ext in ("csv", "md", "tex"):
            assert (tables / f"{stem}.{ext}").is_file(), f"{stem}.{ext}"
    figures = outputs / "outputs" / "tiny" / "figures"
    for stem in ("00_samples", "01_identifier_lengths", "fig3_cluster_size_lexical_length", "02_loss_curves", "04_gsv_k", "04_gsv_positions", "table5_beam_curve",
                 "fig4_case_study_t2i", "fig4_case_study_i2t", "07_search"):
        assert (figures / f"{stem}.png").is_file() and (figures / f"{stem}.pdf").is_file()
    assert "paper R@1" in (tables / "table1_t2i.csv").read_text()
    assert not (tables / "table3_ablations_i2t.csv").exists()  # tiny: ablation_directions [t2i]


def test_rerun_changes_no_table_or_figure_byte(outputs):
    tiny = outputs / "outputs" / "tiny"
    before = {**digest(tiny / "tables"), **digest(tiny / "figures")}
    for source in NOTEBOOKS[-2:]:
        run_notebook(source, outputs)
    assert {**digest(tiny / "tables"), **digest(tiny / "figures")} == before


def test_sweep_points_are_cached_and_collected(outputs):
    from semcore import sweep
    spec = sweep.load("fig3_tiny")
    grid = sweep.collect(spec, "tiny")
    assert len(grid) == len(spec.all_points()) == 4 and set(grid["direction"]) == {"t2i"}
    assert set(grid["cluster_size"]) == {2, 4} and grid["R@1"].between(0, 100).all()
    folder = sweep.point_dir("tiny", spec)
    before = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.json")}
    sweep.run(spec, "tiny")  # every point is current: nothing re-runs
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.json")} == before


def test_a_sweep_with_curves_draws_notebook_06s_figure_with_its_table_and_time(outputs):
    import json

    from semcore import sweep
    spec = sweep.load("fig3_tiny")
    folder = sweep.point_dir("tiny", spec)
    summary = folder / "fig3_tiny.md"  # drawn by the sweep run of the fixture, as make reproduce does
    assert not (sweep.point_dir("tiny", sweep.load("table4_tiny")) / "table4_tiny.md").exists()
    figure = outputs / "outputs" / "tiny" / "figures" / "fig3_cluster_size_lexical_length.png"
    assert (folder / "fig3_tiny_t2i.png").read_bytes() == figure.read_bytes()
    text = summary.read_text()
    assert "![fig3_tiny_t2i](fig3_tiny_t2i.png)" in text and "cluster_size = 2" in text
    assert text.count(" [") >= len(spec.all_points())  # every cell with its interval
    assert "the profile's own setting (clusters of the global ID (K) 4, lexical ID length (keywords) 3" in text
    seconds = sum(json.loads(nb.read_text())["metadata"]["papermill"]["duration"]
                  for nb in folder.glob("*.ipynb"))
    assert f"Its 4 points ran in {seconds / 60:.0f} min" in text
    with pytest.raises(ValueError, match="table4_tiny.*not a grid"):
        sweep.summarise(sweep.load("table4_tiny"), "tiny")


def test_sweep_spec_errors_name_the_problem(tmp_path, monkeypatch):
    from semcore import config, sweep
    with pytest.raises(config.ParamError, match="no sweep 'nope'"):
        sweep.load("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: t\nmethod: semcore\nx: cluster_size\ncurves: lexical_length\n"
                   "fixed: {}\ngrid: {cluster_size: [4], lexical_lenght: [2]}\n")
    monkeypatch.setattr(sweep, "SWEEPS", tmp_path)
    with pytest.raises(config.ParamError, match="lexical_lenght|curves"):
        sweep.load("bad")


def test_table4_rows_are_the_sweep_points_with_their_settings(outputs):
    import pandas as pd
    t4 = pd.read_csv(outputs / "outputs" / "tiny" / "tables" / "table4_backbones.csv")
    assert list(t4["backbone"]) == ["tiny (random InternVL)"] * 2
    assert list(t4["method"]) == ["w/o GSV"] * 2  # table4_tiny's method
    assert list(t4["finetune"]) == ["full", "lora"] and t4["R@1"].between(0, 100).all()
    assert (t4["R@1 lo"] <= t4["R@1"]).all() and (t4["R@1"] <= t4["R@1 hi"]).all()


def test_gsv_k_sweep_retrains_the_verifier_per_k(outputs):
    import json
    facts = json.loads((outputs / "outputs" / "tiny" / "runs" / "04_gsv.json").read_text())["facts"]
    by_k = facts["by_k"]
    assert facts["by_position"] and {r["shown at"] for r in facts["by_position"]} <= set("ABCD")
    assert sorted({(r["direction"], r["k"]) for r in by_k}) == [(d, k) for d in ("i2t", "t2i") for k in (2, 4)]
    from semcore import config, methods, paths, pipeline
    p = config.load(paths.PARAMS / "tiny.yaml")
    keys = {pipeline.verifier_key(p.replace(gsv_k=k), "t2i", methods.get("semcore")) for k in (2, 4)}
    candidates = {pipeline.candidates_key(p.replace(gsv_k=k), "t2i", methods.get("semcore")) for k in (2, 4)}
    assert len(keys) == 2 and len(candidates) == 1  # one verifier per k, candidates decoded once


def test_training_plan_is_what_the_notebooks_trained(outputs):
    """semcore.launch's plan (make train, and make reproduce's second job walking it from the
    end) holds the notebooks' own models, verifiers and evaluations: after them it finds every
    step cached."""
    from semcore import config, launch, paths, pipeline
    p = config.load(paths.PARAMS / "tiny.yaml")
    steps = launch.training_steps(p)
    verifiers = [s for s in steps if s.func is pipeline.verifier_dir]
    assert len(steps) - len(verifiers) == len(pipeline.planned_models(p)) + len(pipeline.recipe_validation_runs(p))
    # SemCORE per direction at gsv_k 4 and at k 2 (gsv_k_sweep [2, 4]), each verifier once
    listwise = [s for s in verifiers if s.args[0].gsv_format == "listwise" and s.args[0].evaluate_on == "test"]
    assert sorted((s.args[0].gsv_k, s.args[1]) for s in listwise) == [(2, "i2t"), (2, "t2i"), (4, "i2t"), (4, "t2i")]
    # notebook 04's formats on validation, only the profile's on test; the two listwise formats
    # share a verifier
    shown = {(s.args[0].evaluate_on, s.args[1], s.args[0].gsv_format, s.args[0].gsv_show_source)
             for s in verifiers}
    assert {("validation", "t2i", "pointwise", True), ("validation", "i2t", "pointwise", False)} <= shown
    assert {f for e, _, f, _ in shown if e == "test"} == {"listwise"}
    assert not any(f == "listwise_permuted" for _, _, f, _ in shown)
    assert len({pipeline.verifier_key(*s.args) for s in verifiers}) == len(verifiers)
    built = lambda: sorted(str(d.relative_to(outputs / "cache")) for d in (outputs / "cache").glob("*/*"))
    before = built()
    launch.train_all(p, from_end=True, evaluate=True)  # make reproduce's second job
    assert built() == before  # its evaluations too are the notebooks' own: nothing new is built


def test_sweep_points_list_and_safe_names(tmp_path, monkeypatch):
    from semcore import config, sweep
    spec = tmp_path / "rows.yaml"
    spec.write_text("title: t\nmethod: wo_gsv\nx: backbone\nfixed: {}\npoints:\n"
                    "  - {backbone: tiny}\n  - {backbone: smol, epochs: 1}\n")
    monkeypatch.setattr(sweep, "SWEEPS", tmp_path)
    loaded = sweep.load("rows")
    assert loaded.all_points() == [{"backbone": "tiny"}, {"backbone": "smol", "epochs": 1}]
    assert loaded.varied() == ["backbone", "epochs"]
    assert sweep.point_name({"backbone_path": "${X:-a/b}"}) == "backbone_path=__X_-a_b_"
    spec.write_text("title: t\nmethod: wo_gsv\nx: backbone\nfixed: {}\npoints: []\ngrid: {backbone: [tiny]}\n")
    with pytest.raises(config.ParamError, match="exactly one of 'grid' or 'points'"):
        sweep.load("rows")
    spec.write_text("title: t\nmethod: wo_gsv\nx: backbone\nfixed: {}\npoints:\n  - {backbone: tiny}\n  - {backbone: tiny}\n")
    with pytest.raises(config.ParamError, match="each different"):
        sweep.load("rows")


def test_unknown_parameter_fails_the_notebook(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError, match="beam_szie"):
        run_notebook(NOTEBOOKS[0], tmp_path, overrides={"beam_szie": 3})


def test_gsv_notebook_compares_every_format_on_validation_and_reports_its_own_on_test(outputs):
    import json

    import pandas as pd
    tables = outputs / "outputs" / "tiny" / "tables"
    formats = pd.read_csv(tables / "gsv_formats.csv")
    assert set(zip(formats["split"], formats["direction"], formats["variant"])) == {
        ("validation", "t2i", "listwise (paper)"), ("validation", "t2i", "listwise, permuted"),
        ("validation", "t2i", "pointwise"), ("validation", "t2i", "pointwise + source text"),
        ("validation", "t2i", "likelihood"), ("validation", "t2i", "likelihood + source text"),
        ("validation", "i2t", "listwise (paper)"), ("validation", "i2t", "listwise, permuted"),
        ("validation", "i2t", "pointwise"), ("validation", "i2t", "likelihood"),
        ("test", "t2i", "listwise (paper)"), ("test", "i2t", "listwise (paper)")}
    assert (formats["gain lo"] <= formats["R@1 gain"]).all() and (formats["R@1 gain"] <= formats["gain hi"]).all()
    selection = pd.read_csv(tables / "gsv_selection.csv")
    assert set(selection["decode weight"]) == {0.0, 0.1, 0.25, 1.0, 4.0}
    facts = json.loads((outputs / "outputs" / "tiny" / "runs" / "04_gsv.json").read_text())["facts"]
    everywhere = selection.groupby("variant").filter(
        lambda g: g["direction"].nunique() == selection["direction"].nunique())
    best = everywhere.groupby(["variant", "decode weight"])["gain"].sum().max()
    assert facts["choice"]["validation gain"] == pytest.approx(best)


def test_a_sweep_point_may_name_its_own_method(tmp_path, monkeypatch):
    from semcore import config, sweep
    spec = tmp_path / "rows.yaml"
    spec.write_text("title: t\nmethod: semcore\nx: backbone\nfixed: {}\npoints:\n"
                    "  - {backbone: tiny}\n  - {method: grace_numeric, backbone: tiny}\n")
    monkeypatch.setattr(sweep, "SWEEPS", tmp_path)
    loaded = sweep.load("rows")
    first, second = loaded.all_points()
    assert loaded.varied() == ["backbone"]
    assert (loaded.method_of(first), loaded.method_of(second)) == ("semcore", "grace_numeric")
    assert loaded.overrides(second) == {"backbone": "tiny"}
    assert sweep.point_name(first) != sweep.point_name(second)
    p = config.Params()
    assert sweep.point_key(p, "semcore") != sweep.point_key(p, "grace_numeric")
    spec.write_text("title: t\nmethod: semcore\nx: backbone\nfixed: {}\npoints:\n"
                    "  - {method: grace_numerc, backbone: tiny}\n")
    with pytest.raises(config.ParamError, match="grace_numerc"):
        sweep.load("rows")


def test_a_run_with_other_settings_leaves_the_profiles_outputs_alone(outputs):
    """papermill -p epochs 1 on a profile writes to outputs/tiny+<hash>/, not over outputs/tiny/."""
    import yaml
    tiny = outputs / "outputs" / "tiny"
    before = {**digest(tiny / "figures"), **digest(tiny / "runs")}
    run_notebook(NOTEBOOKS[0], outputs, epochs=1)
    assert {**digest(tiny / "figures"), **digest(tiny / "runs")} == before
    (folder,) = (outputs / "outputs").glob("tiny+*")
    assert yaml.safe_load((folder / "overrides.yaml").read_text()) == {"epochs": 1}
    assert (folder / "runs" / "00_data.json").is_file() and (folder / "figures" / "00_samples.png").is_file()


def test_seed_spread_holds_one_row_per_method_over_the_sweeps_seeds(outputs):
    import pandas as pd
    from semcore import sweep
    spread = pd.read_csv(outputs / "outputs" / "tiny" / "tables" / "seed_spread.csv")
    assert list(spread["method"]) == ["w/o GSV"] and list(spread["seeds"]) == [2]  # seeds_tiny
    points = sweep.collect(sweep.load("seeds_tiny"), "tiny")
    assert sorted(points["train_seed"]) == [0, 1]
    assert spread["mean R@1"].iloc[0] == pytest.approx(points["R@1"].mean(), abs=1e-9)
