"""The README's results block is generated from a run's tables and checked against them."""
from pathlib import Path

import pytest

from semcore import results


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEMCORE_OUTPUTS", str(tmp_path / "outputs"))
    tables = tmp_path / "outputs" / "demo" / "tables"
    tables.mkdir(parents=True)
    for _, stem in results.TABLES:
        (tables / f"{stem}.md").write_text(f"caption of {stem}\n\n| R@1 |\n|---|\n| 1.0 |\n")
    start, end = results.markers("demo")
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n{start}\nstale numbers\n{end}\nafter\n")
    return tmp_path


def test_block_is_spliced_between_the_markers_only(run: Path) -> None:
    readme = run / "README.md"
    assert results.main(["--profile", "demo", "--readme", str(readme), "--check"]) == 1
    assert results.main(["--profile", "demo", "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "stale numbers" not in text and text.startswith("# title\n\nbefore\n") and text.endswith("after\n")
    for heading, stem in results.TABLES:
        assert f"#### {heading}" in text and f"caption of {stem}" in text
    assert (run / "outputs" / "demo" / "RESULTS.md").read_text() in text
    assert results.main(["--profile", "demo", "--readme", str(readme), "--check"]) == 0
    (run / "outputs" / "demo" / "tables" / "table1_t2i.md").write_text("caption\n\n| R@1 |\n|---|\n| 2.0 |\n")
    assert results.main(["--profile", "demo", "--readme", str(readme), "--check"]) == 1


def test_missing_table_and_markers_are_named(run: Path) -> None:
    (run / "outputs" / "demo" / "tables" / "model_diagnostics.md").unlink()
    with pytest.raises(FileNotFoundError, match="model_diagnostics.md"):
        results.assemble("demo")
    with pytest.raises(ValueError, match="results:demo"):
        results.splice("no markers here", "demo", "block")


def test_a_profile_without_image_to_text_or_seed_sweep_shows_neither(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = run / "params"
    params.mkdir()
    (params / "sweeps").symlink_to(results.paths.PARAMS / "sweeps")  # the sweeps it names must exist
    (params / "demo.yaml").write_text("profile: demo\ndirections: [t2i]\nseed_sweep: \"\"\n")
    monkeypatch.setattr(results.paths, "PARAMS", params)
    tables = run / "outputs" / "demo" / "tables"
    (tables / "seed_spread.md").unlink()  # never written; table2_i2t.md stands for an older run's
    block = results.assemble("demo")
    assert "caption of table2_i2t" not in block and "Table 2" not in block and "seed_spread" not in block
    assert "caption of table1_t2i" in block and "caption of model_diagnostics" in block
    (params / "demo.yaml").write_text("profile: demo\ndirections: [t2i, i2t]\nseed_sweep: \"\"\n")
    assert "caption of table2_i2t" in results.assemble("demo")
    (params / "demo.yaml").write_text("profile: demo\ndirections: [t2i]\nseed_sweep: seeds\n")
    with pytest.raises(FileNotFoundError, match="seed_spread.md"):  # named, so it must be there
        results.assemble("demo")
    (tables / "seed_spread.md").write_text("caption of seed_spread\n")
    assert "caption of seed_spread" in results.assemble("demo")
    other = run / "outputs" / "demo+1234abcd"  # a run with other settings: its recorded overrides
    (other / "tables").mkdir(parents=True)
    (other / "overrides.yaml").write_text("seed_sweep: ''\n")
    assert [stem for _, stem in results.tables_of("demo+1234abcd")] == [
        stem for _, stem in results.TABLES if stem not in {"table2_i2t", "seed_spread"}]


def test_a_sweep_block_shows_its_summary_and_its_figures_copied_beside_the_readme(run: Path) -> None:
    folder = run / "outputs" / "demo" / "sweeps" / "grid"
    folder.mkdir(parents=True)
    (folder / "grid.md").write_text("caption\n\n| R@1 |\n|---|\n| 1.0 |\n\n![grid_t2i](grid_t2i.png)\n")
    (folder / "grid_t2i.png").write_bytes(b"png of the run")
    start, end = results.markers("demo/grid")
    readme = run / "README.md"
    readme.write_text(readme.read_text() + f"{start}\nold\n{end}\n")
    args = ["--profile", "demo", "--sweep", "grid", "--readme", str(readme)]
    assert results.main([*args, "--check"]) == 1
    assert results.main(args) == 0
    copied = run / "docs" / "figures" / "grid_t2i.png"
    assert copied.read_bytes() == b"png of the run"
    assert "![grid_t2i](docs/figures/grid_t2i.png)" in readme.read_text() and "old" not in readme.read_text()
    assert "stale numbers" in readme.read_text()  # the tables' block is left alone
    assert results.main([*args, "--check"]) == 0
    (folder / "grid_t2i.png").write_bytes(b"png of a later run")
    assert results.main([*args, "--check"]) == 1  # the same text, another figure
    (folder / "grid.md").unlink()
    with pytest.raises(FileNotFoundError, match="make sweep SWEEP=grid PROFILE=demo"):
        results.main(args)
