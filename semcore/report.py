"""Tables, figures and run summaries written so that the same results give the same bytes.

Outputs are compared run to run (and committed), so nothing in them may depend on the clock,
the machine's matplotlibrc or the plotting backend: tables are formatted by hand with fixed
rules, figures are drawn under one pinned style and saved with pinned metadata, and every file
is written atomically (semcore.cache) so an interrupted run never leaves half a file.
"""
from __future__ import annotations

import io
import math
import numbers
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib as mpl
import pandas as pd
from matplotlib.figure import Figure
from tabulate import tabulate

from semcore import cache

# --- tables ---------------------------------------------------------------------------------------
_LATEX = str.maketrans({"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                        "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                        "^": r"\textasciicircum{}"})


def _cell(value: Any) -> str:
    """One decimal for reals (two significant digits below 0.1, so a learning rate of 0.0005 is
    not shown as 0.0), integers as they are, empty for missing values."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (bool, numbers.Integral)):
        return str(value)
    if isinstance(value, numbers.Real):
        return f"{float(value):.2g}" if 0 < abs(value) < 0.1 else f"{float(value):.1f}"
    return " ".join(str(value).split())  # one line: a newline would break a table row


def _numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub markdown table, numeric columns right-aligned (the index is not written)."""
    rows = [[_cell(v).replace("|", r"\|") for v in row] for row in df.itertuples(index=False)]
    align = ["right" if _numeric(df[c]) else "left" for c in df.columns]
    return tabulate(rows, headers=[str(c) for c in df.columns], tablefmt="github",
                    disable_numparse=True, colalign=align)


def latex_table(df: pd.DataFrame, caption: str) -> str:
    """A booktabs tabular inside a table environment with the caption."""
    spec = "".join("r" if _numeric(df[c]) else "l" for c in df.columns)
    line = lambda cells: " & ".join(c.translate(_LATEX) for c in cells) + r" \\"  # noqa: E731
    body = [line(_cell(v) for v in row) for row in df.itertuples(index=False)]
    return "\n".join([r"\begin{table}[t]", r"\centering",
                      rf"\caption{{{' '.join(caption.split()).translate(_LATEX)}}}",
                      rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
                      line(str(c) for c in df.columns), r"\midrule", *body,
                      r"\bottomrule", r"\end{tabular}", r"\end{table}"]) + "\n"


def write_table(df: pd.DataFrame, stem: Path, caption: str, shown: pd.DataFrame | None = None) -> None:
    """stem.csv (full precision), stem.md (caption line, then the table) and stem.tex. md and
    tex show `shown` when given (e.g. a value and its interval in one cell), so that the CSV
    keeps one number per column."""
    stem = Path(stem)
    shown = df if shown is None else shown
    cache.atomic_write_text(stem.with_name(stem.name + ".csv"),
                            df.to_csv(index=False, lineterminator="\n"))
    cache.atomic_write_text(stem.with_name(stem.name + ".md"),
                            f"{' '.join(caption.split())}\n\n{markdown_table(shown)}\n")
    cache.atomic_write_text(stem.with_name(stem.name + ".tex"), latex_table(shown, caption))


# --- figures --------------------------------------------------------------------------------------
STYLE: dict[str, Any] = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],  # ships with matplotlib, so present on every machine
    "mathtext.fontset": "dejavusans",
    "text.usetex": False,
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "path.simplify": True,
    "path.simplify_threshold": 0.111111111111,
    "agg.path.chunksize": 0,
    "svg.hashsalt": "semcore",
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
    "pdf.compression": 6,
    "ps.fonttype": 42,
}
PNG_METADATA = {"Software": None}

# Method families by name prefix (the first that matches): one colour per family, one line style
# per method within it, so 13 methods stay apart with a colour-blind-safe palette of 4.
FAMILIES = (("GRACE", "grace_"), ("RQ", "rq_"), ("SSI", "ssi"), ("SemCORE", ""))
LINE_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 3)))


SETTING_LABELS = {"cluster_size": "clusters of the global ID (K)",
                  "lexical_length": "lexical ID length (keywords)",
                  "beam": "beam size", "k": "candidates verified (k)"}


def setting_label(name: str) -> str:
    """A parameter's name as an axis or legend reads it."""
    return SETTING_LABELS.get(name, name.replace("_", " "))


def interval_errors(rows: pd.DataFrame, metric: str = "R@1") -> list:
    """errorbar's yerr for rows holding `metric` and its interval bounds (`metric lo`, `hi`)."""
    return [rows[metric] - rows[f"{metric} lo"], rows[f"{metric} hi"] - rows[metric]]


def curves_figure(rows: pd.DataFrame, x: str, curves: str, title: str, ylabel: str) -> Figure:
    """R@1 against setting x, one curve per value of setting `curves`, each point with its 95 %
    interval (Figure 3, drawn by notebook 06 and by `make sweep`)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    values = sorted(rows[x].unique(), key=lambda v: (isinstance(v, str), v))
    log_scale = all(isinstance(v, numbers.Number) and v > 0 for v in values)  # cluster sizes
    position = {v: (v if log_scale else i) for i, v in enumerate(values)}
    groups = list(rows.groupby(curves))
    for i, (value, group) in enumerate(groups):
        group = group.sort_values(x)
        offset = 0.04 * (i - (len(groups) - 1) / 2)  # curves side by side, their bars apart
        at = [position[v] * 2 ** offset if log_scale else position[v] + offset for v in group[x]]
        ax.errorbar(at, group["R@1"], yerr=interval_errors(group), marker="o", capsize=2,
                    label=f"{value}")
    if log_scale:
        ax.set_xscale("log", base=2)
    ax.set_xticks([position[v] for v in values], [str(v) for v in values])
    ax.minorticks_off()
    ax.set_xlabel(setting_label(x))
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=8)
    ax.legend(title=setting_label(curves), fontsize=7, title_fontsize=7)
    return fig


def method_family(name: str) -> str:
    return next(family for family, prefix in FAMILIES if name.startswith(prefix))


def method_styles(names: list[str]) -> dict[str, dict[str, Any]]:
    """{name: color and linestyle} for plotting: colour by family, line style by variant."""
    import seaborn as sns

    palette = dict(zip([f for f, _ in FAMILIES], sns.color_palette("colorblind", len(FAMILIES))))
    seen: dict[str, int] = {}
    styles = {}
    for name in dict.fromkeys(names):
        family = method_family(name)
        index = seen[family] = seen.get(family, -1) + 1
        styles[name] = {"color": palette[family], "linestyle": LINE_STYLES[index % len(LINE_STYLES)]}
    return styles

PDF_METADATA = {"Creator": "semcore", "Producer": f"matplotlib {mpl.__version__}",
                "CreationDate": None, "ModDate": None}


@contextmanager
def figure_style() -> Iterator[None]:
    """Draw under matplotlib's built-in defaults plus STYLE, whatever matplotlibrc, seaborn or
    the notebook set before; the previous settings come back afterwards.

    The pyplot backend is left alone so notebooks still show figures inline; save_figure pins
    the renderers (Agg for PNG, matplotlib's PDF backend), which is what decides the bytes.
    """
    with mpl.rc_context():
        mpl.style.use("default")
        mpl.rcParams.update(STYLE)
        yield


def save_figure(fig: Figure, stem: Path) -> None:
    """stem.png and stem.pdf, byte-identical for the same figure in any run or process."""
    stem = Path(stem)
    for ext, backend, metadata in [("png", "agg", PNG_METADATA), ("pdf", "pdf", PDF_METADATA)]:
        buffer = io.BytesIO()
        with mpl.rc_context(STYLE):  # save-time settings (dpi, bbox, font embedding) pinned too
            fig.savefig(buffer, format=ext, backend=backend, metadata=metadata)
        cache.atomic_write_bytes(stem.with_name(f"{stem.name}.{ext}"), buffer.getvalue())


# --- run summaries --------------------------------------------------------------------------------
def write_run_summary(path: Path, **facts: Any) -> None:
    """The facts of one run as sorted JSON (no timestamps, so reruns compare equal)."""
    cache.write_json(Path(path), facts)
