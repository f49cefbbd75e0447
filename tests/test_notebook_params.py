"""Notebook parameters: every profile setting is a papermill parameter that --help-notebook
lists and `-p` sets, still validated; the setup cell can be re-run; a run with overrides writes
to its own outputs folder. No kernel runs here: papermill --prepare-only injects the
parameters and the test executes the parameters cells and setup() itself."""
import ast
from pathlib import Path

import jupytext
import pytest
import yaml
from click.testing import CliRunner
from papermill.cli import papermill

from semcore import config, notebook

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.py")) + [REPO / "notebooks" / "sweeps" / "point.py"]


def run_papermill(*args: str) -> str:
    """papermill's command line, in this process; its output."""
    result = CliRunner().invoke(papermill, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    """notebooks/00_data.py as the Makefile converts it (papermill needs the kernel's name)."""
    nb = jupytext.read(SOURCES[0])
    nb.metadata["kernelspec"] = {"name": "semcore", "language": "python", "display_name": "semcore"}
    path = tmp_path_factory.mktemp("nb") / "00_data.ipynb"
    jupytext.write(nb, path)
    return path


def prepared(converted: Path, tmp_path: Path, *args: str) -> dict:
    """The namespace after the parameters cells of `papermill --prepare-only <args>`."""
    out = tmp_path / "prepared.ipynb"
    run_papermill("--prepare-only", *args, str(converted), str(out))
    namespace: dict = {}
    for cell in jupytext.read(out).cells:
        tags = cell.metadata.get("tags", [])
        if "parameters" in tags or "injected-parameters" in tags:
            exec(cell.source, namespace)
    del namespace["__builtins__"]
    return namespace


@pytest.fixture(autouse=True)
def outputs(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SEMCORE_OUTPUTS", str(tmp_path / "outputs"))
    return tmp_path / "outputs"


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.stem)
def test_parameters_cell_declares_every_setting(source):
    cell = next(c for c in jupytext.read(source).cells if "parameters" in c.metadata.get("tags", []))
    assert cell.source.splitlines()[-len(notebook.declarations()):] == notebook.declarations(), \
        "run `python -m semcore.notebook` to regenerate the parameters cells from semcore.config.Params"


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.stem)
def test_no_cell_assigns_a_setting(source):
    """A later cell that assigned e.g. `epochs` would become a setting when setup is re-run."""
    cells = [c for c in jupytext.read(source).cells
             if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])]
    assigned = {n.id for c in cells for n in ast.walk(ast.parse(c.source))
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    assert not assigned & notebook.DECLARED


def test_help_notebook_lists_every_setting_with_type_and_default(converted):
    shown = run_papermill("--help-notebook", str(converted))
    assert "beam_size: int (default None)" in shown and "else 20" in shown
    assert "directions: list[str] (default None)" in shown
    assert "learning_rate: float (default None)" in shown
    assert "backbone: str (default None)" in shown and "tiny|scratch|smol" in shown
    assert 'profile: str (default "embedded")' in shown
    for name in notebook.FIELDS:
        assert f"  {name}: " in shown, name


def test_p_sets_a_setting(converted, tmp_path, outputs):
    p = notebook.setup(prepared(converted, tmp_path, "-p", "profile", "tiny", "-p", "beam_size", "30",
                                "-p", "gsv_show_source", "True"))
    assert (p.profile, p.beam_size, p.gsv_show_source) == ("tiny", 30, True)
    assert p.replace(beam_size=30, gsv_show_source=True) == p
    assert notebook.setup(prepared(converted, tmp_path, "-p", "profile", "tiny")) == config.load(
        REPO / "params" / "tiny.yaml")


@pytest.mark.parametrize("args, message", [
    (["-p", "beam_szie", "3"], r"unknown notebook parameter\(s\) \['beam_szie'\]\. Did you mean 'beam_size'\?"),
    (["-p", "beam_size", "many"], r"'beam_size' = 'many' is invalid"),
    (["-p", "dataset", "flickr"], r"'dataset' = 'flickr'.*karpathy"),
    (["-p", "overrides", "beam_size: 3"], r"'overrides' must be a mapping.*-p beam_size 3"),
    (["-p", "beam_size", "3", "-y", "overrides: {beam_size: 4}"], r"\['beam_size'\] given twice"),
])
def test_bad_parameters_name_the_problem(converted, tmp_path, args, message):
    with pytest.raises(config.ParamError, match=message):
        notebook.setup(prepared(converted, tmp_path, "-p", "profile", "tiny", *args))


def test_setup_cell_can_be_rerun_after_later_cells(converted, tmp_path):
    namespace = prepared(converted, tmp_path, "-p", "profile", "tiny")
    notebook.setup(namespace)
    namespace.update(direction="t2i", sample=[1, 2], facts={})  # what later cells define
    namespace["beam_size"] = 5  # an edited parameters cell
    assert notebook.setup(namespace).beam_size == 5


def test_setup_silences_the_training_stacks_deprecations_and_bars():
    import warnings

    from transformers.utils import logging as transformers_logging
    transformers_logging.enable_progress_bar()
    notebook.setup({"profile": "tiny"})
    assert not transformers_logging.is_progress_bar_enabled()
    with warnings.catch_warnings(record=True) as caught:
        for module in ("transformers.training_args", "semcore.pipeline"):
            warnings.warn_explicit(f"deprecated in {module}", FutureWarning, "x.py", 1, module=module, registry={})
    assert [str(w.message) for w in caught] == ["deprecated in semcore.pipeline"]


def test_declared_extra_parameter():
    ns = {"profile": "tiny", "overrides": {}, "query": "a red ball"}
    with pytest.raises(config.ParamError, match="query"):
        notebook.setup(dict(ns))
    assert notebook.setup(dict(ns), declared=("query",)).profile == "tiny"


def test_a_run_with_overrides_writes_to_its_own_folder(outputs, capsys):
    tiny = notebook.setup({"profile": "tiny"})
    assert notebook.out_dir(tiny, "tables") == outputs / "tiny" / "tables"
    same = notebook.setup({"profile": "tiny", "beam_size": tiny.beam_size})  # the profile's value
    assert notebook.run_dir(same) == outputs / "tiny" and capsys.readouterr().out == ""
    wider = notebook.setup({"profile": "tiny", "overrides": {"beam_size": 12, "cluster_size": 3}})
    assert sorted(d.name for d in outputs.iterdir()) == ["tiny"]  # nothing written yet (a sweep point)
    folder = notebook.run_dir(wider)
    assert folder.parent == outputs and folder.name.startswith("tiny+") and folder.name != "tiny+"
    assert f"outputs/{folder.name}/" in capsys.readouterr().out
    assert yaml.safe_load((folder / "overrides.yaml").read_text()) == {"beam_size": 12, "cluster_size": 3}
    assert notebook.summary(wider, "00_data") is None  # a notebook's last cell echoes no path
    assert (folder / "runs" / "00_data.json").is_file() and not (outputs / "tiny" / "runs").exists()
    assert notebook.run_dir(tiny.replace(beam_size=12, cluster_size=3)) == folder
    assert notebook.run_dir(tiny.replace(beam_size=13)) not in (folder, outputs / "tiny")
