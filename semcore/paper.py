"""The numbers the SemCORE paper reports (arXiv 2504.13172, Tables 1–5), as data.

Copied digit for digit from the paper's text so our tables can show them beside ours. They are
never inputs to anything: the paper's columns are prefixed "paper " so nobody mistakes one for
the other. The paper's rSum is R@1 + R@5 (ours may also include R@10; see semcore.metrics).
Labels drop the citations ("GRACE (Li et al., 2024b) (Numeric ID)" → "GRACE (Numeric ID)",
"SemCORE (Ours)" → "SemCORE") so they equal the labels in semcore.methods.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from semcore.methods import METHODS


@dataclass(frozen=True)
class Reported:
    method: str
    r1: float
    r5: float
    rsum: float
    note: str = ""  # Table 2: paradigm; Table 4: fine-tuning


def _rows(*rows: tuple) -> list[Reported]:
    return [Reported(*r) for r in rows]


TABLES: dict[str, dict[str, list[Reported]]] = {
    "table1": {  # text-to-image, generative methods
        "Flickr30K": _rows(
            ("GRACE (Numeric ID)", 22.5, 28.9, 51.4),
            ("GRACE (String ID)", 30.5, 39.0, 69.5),
            ("GRACE (Semantic ID)", 22.9, 34.9, 57.8),
            ("GRACE (Structured ID)", 37.4, 59.5, 96.9),
            ("IRGen", 49.0, 68.9, 117.9),
            ("AVG", 62.8, 85.4, 148.2),
            ("SemCORE", 69.0, 83.0, 152.0)),
        "MS-COCO 5K": _rows(
            ("GRACE (Numeric ID)", 0.03, 0.14, 0.17),
            ("GRACE (String ID)", 0.12, 0.37, 0.49),
            ("GRACE (Semantic ID)", 13.3, 30.4, 43.7),
            ("GRACE (Structured ID)", 16.7, 39.2, 55.9),
            ("IRGen", 29.6, 50.7, 80.3),
            ("AVG", 31.3, 58.0, 89.3),
            ("SemCORE", 42.4, 57.5, 99.9)),
    },
    "table2": {  # image-to-text; the paper's GRACE row is its best GRACE reproduction (*),
        # without saying which identifier, so no GRACE row of ours is matched to it
        "Flickr30K": _rows(
            ("LeaPRR", 86.2, 96.6, 182.8, "One-tower"),
            ("FNE", 85.4, 98.0, 183.5, "Two-tower"),
            ("GRACE", 23.6, 35.8, 59.4, "Generative"),
            ("SemCORE", 88.8, 96.1, 184.9, "Generative")),
    },
    "table3": {  # ablations, text-to-image
        "Flickr30K": _rows(
            ("SemCORE", 69.0, 83.0, 152.0),
            ("w/o GSV", 51.9, 77.9, 129.8),  # printed "w/o GCV"; §4.3 describes it as w/o GSV
            ("w/o SID", 66.1, 79.0, 145.1),
            ("w/o global ID", 65.7, 78.2, 143.9),
            ("w/o deduplication", 68.1, 81.1, 149.2),
            ("w/o constrained decoding", 48.3, 55.7, 104.0)),
    },
    "table4": {  # backbones, text-to-image
        "Flickr30K": _rows(
            ("InternVL2.5-1B", 69.0, 83.0, 152.0, "Full"),
            ("InternVL2.5-2B", 70.6, 82.3, 152.9, "Full"),
            ("InternVL2.5-4B", 74.5, 83.3, 157.8, "LoRA"),
            ("InternVL2.5-8B", 75.8, 84.5, 160.3, "LoRA")),
    },
    "table5": {  # SemCORE versus beam size (the method label is the beam size)
        "Flickr30K": _rows(
            ("10", 64.4, 76.5, 140.9),
            ("20", 67.5, 80.9, 148.4),
            ("30", 68.3, 82.5, 150.8),
            ("40", 68.8, 82.8, 151.6),
            ("50", 69.0, 83.0, 152.0)),
    },
}

BACKBONE_LABELS = {"tiny": "tiny (random InternVL)", "scratch": "small LM from scratch + DINOv2-S",
                   "smol": "SmolLM2-135M + DINOv2-S",
                   "internvl2_5-1b": "InternVL2.5-1B", "internvl2_5-2b": "InternVL2.5-2B",
                   "internvl2_5-4b": "InternVL2.5-4B", "internvl2_5-8b": "InternVL2.5-8B"}
ALIASES = {"w/o GCV": "w/o GSV"}  # the paper's misprint, so either spelling finds the row
PAPER_COLUMNS = ["paper R@1", "paper R@5", "paper rSum"]


def reported(table: str, dataset: str) -> list[Reported]:
    """The paper's rows of one table and dataset; a wrong name is an error listing valid ones."""
    if table not in TABLES:
        raise ValueError(f"unknown paper table {table!r}; valid: {sorted(TABLES)}")
    if dataset not in TABLES[table]:
        raise ValueError(f"paper {table} has no dataset {dataset!r}; valid: {sorted(TABLES[table])}")
    return TABLES[table][dataset]


def _paper_label(value: object) -> str:
    """Our method name or label (or beam size) as the paper labels that row."""
    text = str(value)
    text = METHODS[text].label if text in METHODS else text
    return ALIASES.get(text, text)


def side_by_side(ours: pd.DataFrame, table: str, dataset: str) -> pd.DataFrame:
    """Our rows, unchanged and in order, with the paper's R@1/R@5/rSum appended as
    "paper ..." columns, matched on the "method" column; rows the paper lacks get empty cells."""
    if "method" not in ours.columns:
        raise ValueError(f"side_by_side needs a 'method' column; got {list(ours.columns)}")
    clash = [c for c in PAPER_COLUMNS if c in ours.columns]
    if clash:
        raise ValueError(f"our table already has column(s) {clash}")
    paper = {r.method: (r.r1, r.r5, r.rsum) for r in reported(table, dataset)}
    matched = [paper.get(_paper_label(m), (float("nan"),) * 3) for m in ours["method"]]
    out = ours.reset_index(drop=True).copy()
    for i, column in enumerate(PAPER_COLUMNS):
        out[column] = pd.Series([row[i] for row in matched], dtype="float64")
    return out
