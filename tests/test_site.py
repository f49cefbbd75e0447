"""make html: the index maps each executed notebook to the paper (from the README's table) and
links its page; pages leave out the parameters cell and widgets; the Chromium check finds a
broken image and a broken link."""
import base64
import io
from pathlib import Path

import nbformat
import pytest
from PIL import Image

from semcore import site

nbf = nbformat.v4


def png() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def executed(path: Path, image: str, link: str = "#Protocol") -> None:
    """A notebook as papermill leaves it: parameters cell, injected cell, a text progress bar, an
    image, a widget."""
    cells = [nbf.new_markdown_cell(f"# 00 · Data\n\n## Protocol\n\nSee [the protocol]({link})."),
             nbf.new_code_cell("beam_size = None  # type: int", metadata={"tags": ["parameters"]}),
             nbf.new_code_cell('profile = "tiny"', metadata={"tags": ["injected-parameters"]}),
             nbf.new_code_cell("plt.show()", outputs=[
                 nbf.new_output("stream", name="stderr", text="\rload:   0%|  | 0/2"),
                 nbf.new_output("stream", name="stderr", text="\rload: 100%|##| 2/2\n"),
                 nbf.new_output("display_data", data={"image/png": image, "text/plain": "<Figure>"}),
                 nbf.new_output("display_data", data={site.WIDGET: {"model_id": "x"}, "text/plain": "0%"})])]
    nbformat.write(nbf.new_notebook(cells=cells, metadata={"widgets": {}}), path)


@pytest.fixture
def outputs(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SEMCORE_OUTPUTS", str(tmp_path))
    (tmp_path / "tiny").mkdir()
    for name in ("00_data", "01_identifiers"):
        executed(tmp_path / "tiny" / f"{name}.ipynb", png())
    return tmp_path / "tiny"


def test_index_maps_notebooks_to_the_paper_and_pages_drop_parameters(outputs):
    built = site.build("tiny")
    index = (built / "index.html").read_text()
    assert "<a href=\"00_data.html\">00_data</a>" in index and "§4.1.1" in index
    assert "<a href=\"01_identifiers.html\">" in index
    assert "02_training" in index and "02_training.html" not in index  # not executed: no link
    assert len(site.paper_table()) >= 10  # header, rule, 00–07
    page = (built / "00_data.html").read_text()
    assert "beam_size" not in page and "injected-parameters" in page and "model_id" not in page
    assert "href='index.html'" in page and "href='01_identifiers.html'" in page
    assert "data:image/png;base64," in page
    assert "load: 100%" in page and "0/2" not in page  # a progress bar shows its last state


def test_missing_readme_section_is_named(tmp_path):
    (tmp_path / "README.md").write_text("# x\n")
    with pytest.raises(ValueError, match="Notebooks and the paper"):
        site.paper_table(tmp_path / "README.md")


@pytest.mark.skipif(not Path(site.CHROMIUM).is_file(),
                    reason="Debian's chromium is not installed (apt-get install chromium)")
def test_chromium_check_finds_broken_images_and_links(outputs):
    assert site.check(site.build("tiny") / "index.html") == []
    executed(outputs / "01_identifiers.ipynb", base64.b64encode(b"not a png").decode(), link="gone.html")
    problems = site.check(site.build("tiny") / "index.html")
    assert any("01_identifiers.html: broken image" in p for p in problems)
    assert any("01_identifiers.html: link to missing gone.html" in p for p in problems)
    executed(outputs / "01_identifiers.ipynb", png(), link="#Nowhere")
    assert site.check(site.build("tiny") / "index.html") == ["01_identifiers.html: link to missing anchor #Nowhere"]
