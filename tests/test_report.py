"""Tables, figures and summaries are byte-identical run to run; paper numbers sit beside ours."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from semcore import paper, report  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

DRAW = """
import sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from pathlib import Path
from semcore import report

with report.figure_style():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([10, 20, 30, 40, 50], [64.4, 67.5, 68.3, 68.8, 69.0], marker="o", label="R@1 (%)")
    ax.set_xlabel("beam size")
    ax.set_title("SemCORE – $R@1$ vs beam")
    ax.imshow([[0, 1], [1, 0]], extent=(10, 20, 64, 66), aspect="auto")
    ax.legend()
    report.save_figure(fig, Path(sys.argv[1]))
"""


def draw(stem: Path) -> None:
    subprocess.run([sys.executable, "-c", DRAW, str(stem)], check=True, cwd=REPO)


def figure_bytes(stem: Path) -> tuple[bytes, bytes]:
    return stem.with_suffix(".png").read_bytes(), stem.with_suffix(".pdf").read_bytes()


def test_figure_bytes_identical_within_a_process(tmp_path):
    with report.figure_style():
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([1, 2, 3], [3, 1, 2], label="x")
        ax.legend()
        report.save_figure(fig, tmp_path / "a")
        report.save_figure(fig, tmp_path / "b")
    plt.close(fig)
    png, pdf = figure_bytes(tmp_path / "a")
    assert png.startswith(b"\x89PNG") and pdf.startswith(b"%PDF")
    assert (png, pdf) == figure_bytes(tmp_path / "b")
    assert b"CreationDate" not in pdf and b"matplotlib version" not in png


def test_figure_bytes_identical_across_processes(tmp_path):
    draw(tmp_path / "one")
    draw(tmp_path / "two")
    assert figure_bytes(tmp_path / "one") == figure_bytes(tmp_path / "two")


def test_figure_style_ignores_and_restores_outer_settings(tmp_path):
    with matplotlib.rc_context({"font.size": 30, "savefig.dpi": 42}):
        with report.figure_style():
            assert matplotlib.rcParams["font.size"] == report.STYLE["font.size"]
            assert matplotlib.rcParams["pdf.fonttype"] == 42
        assert matplotlib.rcParams["font.size"] == 30


TABLE = pd.DataFrame({"method": ["SemCORE", "w/o GSV | x"], "R@1": [69.04, float("nan")],
                      "queries": [1000, 1000]})


def test_write_table_writes_three_files_with_caption(tmp_path):
    report.write_table(TABLE, tmp_path / "t", "Table 1: R@K in % (T2I_test & more).")
    md = (tmp_path / "t.md").read_text().splitlines()
    assert md[0] == "Table 1: R@K in % (T2I_test & more)."
    assert md[2].startswith("| method") and "69.0" in md[4] and "1000" in md[4]
    assert r"w/o GSV \| x" in md[5] and "nan" not in md[5]
    tex = (tmp_path / "t.tex").read_text()
    assert r"\caption{Table 1: R@K in \% (T2I\_test \& more).}" in tex
    assert r"\begin{tabular}{lrr}" in tex and r"\toprule" in tex and r"\bottomrule" in tex
    assert "SemCORE & 69.0 & 1000" in tex
    assert pd.read_csv(tmp_path / "t.csv")["R@1"].iloc[0] == 69.04


def test_write_table_shows_another_frame_but_keeps_numbers_in_csv(tmp_path):
    shown = TABLE.assign(**{"R@1": ["69.0 [60.1, 77.5]", ""]})
    report.write_table(TABLE.assign(**{"R@1 lo": [60.1, None]}), tmp_path / "t", "c", shown=shown)
    assert "69.0 [60.1, 77.5]" in (tmp_path / "t.md").read_text()
    assert "69.0 [60.1, 77.5]" in (tmp_path / "t.tex").read_text()
    assert list(pd.read_csv(tmp_path / "t.csv").columns) == ["method", "R@1", "queries", "R@1 lo"]


def test_write_table_is_byte_identical(tmp_path):
    for name in ("a", "b"):
        report.write_table(TABLE.copy(), tmp_path / name, "caption")
    for ext in ("csv", "md", "tex"):
        assert (tmp_path / f"a.{ext}").read_bytes() == (tmp_path / f"b.{ext}").read_bytes()


def test_write_run_summary(tmp_path):
    report.write_run_summary(tmp_path / "runs" / "x.json", rows=3, method="semcore")
    assert json.loads((tmp_path / "runs" / "x.json").read_text()) == {"method": "semcore", "rows": 3}


# --- the paper's numbers ----------------------------------------------------------------------
def test_paper_rsum_is_r1_plus_r5():
    """A transcription check: rSum is R@1 + R@5 up to the rounding of two printed values
    (FNE's 85.4 + 98.0 is printed as 183.5)."""
    for table, datasets in paper.TABLES.items():
        for dataset, rows in datasets.items():
            for r in rows:
                assert r.rsum == pytest.approx(r.r1 + r.r5, abs=0.1 + 1e-9), (table, dataset, r)


def test_side_by_side_matches_labels_names_and_misprint():
    ours = pd.DataFrame({"method": ["GRACE (Numeric ID)", "wo_gsv", "w/o GCV", "mine"],
                         "R@1": [1.0, 2.0, 3.0, 4.0]})
    out = paper.side_by_side(ours, "table1", "Flickr30K")
    assert list(out.columns) == ["method", "R@1", *paper.PAPER_COLUMNS]
    assert out.loc[0, ["paper R@1", "paper R@5", "paper rSum"]].tolist() == [22.5, 28.9, 51.4]
    assert all(math.isnan(v) for v in out.loc[1:, "paper R@1"])
    ablations = paper.side_by_side(ours, "table3", "Flickr30K")
    assert ablations["paper R@1"].tolist()[1:3] == [51.9, 51.9]
    assert ablations["method"].tolist() == ours["method"].tolist()


def test_side_by_side_beam_sizes_and_coco():
    beams = paper.side_by_side(pd.DataFrame({"method": ["10", "50", "7"]}), "table5", "Flickr30K")
    assert beams["paper rSum"].tolist()[:2] == [140.9, 152.0] and math.isnan(beams["paper rSum"][2])
    coco = paper.side_by_side(pd.DataFrame({"method": ["SemCORE"]}), "table1", "MS-COCO 5K")
    assert coco["paper R@1"].tolist() == [42.4]


@pytest.mark.parametrize("table, dataset, needle", [
    ("table9", "Flickr30K", "table1"), ("table2", "MS-COCO 5K", "Flickr30K")])
def test_side_by_side_unknown_names(table, dataset, needle):
    with pytest.raises(ValueError, match=needle):
        paper.side_by_side(pd.DataFrame({"method": ["SemCORE"]}), table, dataset)


def test_small_reals_keep_their_digits():
    """R@K keeps one decimal; a learning rate of 0.0005 (a Table 4 setting) is not shown as 0.0."""
    df = pd.DataFrame({"learning_rate": [0.0005, 0.003], "R@1": [12.5, 0.0], "epochs": [1, 10]})
    md = report.markdown_table(df)
    assert "0.0005" in md and "0.003" in md and "12.5" in md and "0.0" in md


def test_curves_figure_puts_numbers_on_a_log_axis_and_names_side_by_side():
    def rows(xs):
        return pd.DataFrame([{"x": v, "c": c, "R@1": 10.0 + i, "R@1 lo": 8.0 + i, "R@1 hi": 12.0 + i}
                             for i, v in enumerate(xs) for c in (2, 4)])

    with report.figure_style():
        numeric = report.curves_figure(rows([32, 128, 512]), "x", "c", "t", "R@1")
        named = report.curves_figure(rows(["tiny", "smol"]), "x", "c", "t", "R@1")
    axis = numeric.axes[0]
    assert axis.get_xscale() == "log" and list(axis.get_xticks()) == [32, 128, 512]
    assert [t.get_text() for t in axis.get_xticklabels()] == ["32", "128", "512"]
    axis = named.axes[0]
    assert axis.get_xscale() == "linear" and [t.get_text() for t in axis.get_xticklabels()] == ["smol", "tiny"]
    first, second = (curve.lines[0].get_xdata() for curve in axis.containers)  # one per value of c
    assert all(a != b for a, b in zip(first, second))  # dodged apart, so their bars do not overlap
    plt.close(numeric)
    plt.close(named)
