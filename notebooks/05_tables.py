# %% [markdown]
# # 05 · Tables: our numbers beside the paper's
#
# Every row is one run of the same pipeline with one method (`semcore.methods`). The paper's
# columns are its reported Flickr30K numbers (prefixed "paper"); ours come from this profile's
# data and backbone — read the caption before comparing anything.

# %% tags=["parameters"]
profile = "embedded"
overrides = {}

# %% [markdown]
# Tables 1–3 give each R@K with its 95 % interval (a percentile bootstrap over the test queries,
# `semcore.stats`): with n queries one query is 100/n points, so rows closer than their intervals
# may differ by chance. "R@1 vs SemCORE" is a row's R@1 minus the SemCORE row's on the same
# queries, with the interval of a paired bootstrap (both runs resampled at the same queries);
# `*` marks an interval that excludes 0. The CSV files hold the bounds as numbers ("R@1 lo",
# "R@1 hi", ...) and the difference's two-sided bootstrap p-value.

# %%
import math

import pandas as pd

from semcore import methods, notebook, paper, pipeline, report, stats
from semcore import sweep as sweeps

p = notebook.setup(globals())
tables = notebook.out_dir(p, "tables")
where = (f"Ours: {p.profile} profile ({pipeline.corpus(p).name} data), backbone {p.backbone}, "
         f"beam {p.beam_size}, GSV k={p.gsv_k}")
intervals = (f"R@K [95 % percentile bootstrap interval over the queries, B = {stats.B}]; "
             "R@1 vs SemCORE: difference to the SemCORE row in R@1 points [95 % interval of a paired "
             "bootstrap over the same queries], * where it excludes 0")
VS = "R@1 vs SemCORE"
KS = [f"R@{k}" for k in pipeline.KS]


def versus(r1_hits: list[bool], reference: list[bool] | None) -> dict:
    """R@1 minus the SemCORE row's on the same queries (paired bootstrap); empty for SemCORE."""
    d = (stats.paired_difference(r1_hits, reference, seed=p.seed) if reference is not None
         else stats.Difference(*[math.nan] * 4))
    return {VS: d.diff, f"{VS} lo": d.lo, f"{VS} hi": d.hi, f"{VS} p": d.p}


def results(direction: str, names: list[str], dense: bool = False) -> pd.DataFrame:
    """Our rows: each R@K with its interval bounds, and R@1 against the table's SemCORE row."""
    runs = [(pipeline.evaluate(p, direction, m), pipeline.hits(p, direction, m)[1])
            for m in map(methods.get, names)]
    if dense:
        runs.append((pipeline.evaluate_dense(p, direction), pipeline.dense_hits(p, direction)[1]))
    semcore = dict((row["method"], r1_hits) for row, r1_hits in runs).get("semcore")
    rows = [{**row, **versus(r1_hits, None if row["method"] == "semcore" else semcore)}
            for row, r1_hits in runs]
    df = pd.DataFrame(rows).drop(columns="method").rename(columns={"label": "method"})
    return df[["method", *[f"{r}{end}" for r in KS for end in ("", " lo", " hi")], "rSum", "queries",
               VS, f"{VS} lo", f"{VS} hi", f"{VS} p"]]


def shown(df: pd.DataFrame) -> pd.DataFrame:
    """What the md and tex files show: each R@K and the difference with its interval in one cell."""
    out = df[[c for c in df.columns if not c.endswith((" lo", " hi", " p"))]].copy()
    for r in KS:
        out[r] = [f"{v:.1f} [{lo:.1f}, {hi:.1f}]" for v, lo, hi in zip(df[r], df[f"{r} lo"], df[f"{r} hi"])]
    differences = map(stats.Difference, df[VS], df[f"{VS} lo"], df[f"{VS} hi"], df[f"{VS} p"])
    out[VS] = ["" if math.isnan(d.diff) else
               f"{d.diff:+.1f} [{d.lo:+.1f}, {d.hi:+.1f}]" + (" *" if d.significant else "")
               for d in differences]
    return out


# %% [markdown]
# ## Table 1 — text-to-image against generative baselines

# %%
if "t2i" in p.directions:
    t1 = paper.side_by_side(results("t2i", p.table1_methods), "table1", "Flickr30K")
    report.write_table(t1, tables / "table1_t2i",
                       f"Table 1: text-to-image R@K. {where}; {intervals}; paper: Flickr30K 1K test, "
                       f"InternVL2.5-1B.", shown(t1))
    display(shown(t1))

# %% [markdown]
# ## Table 2 — image-to-text

# %%
if "i2t" in p.directions:
    t2 = paper.side_by_side(results("i2t", p.table2_methods, dense=True), "table2", "Flickr30K")
    report.write_table(t2, tables / "table2_i2t",
                       f"Table 2: image-to-text R@K (an image's rank is the best rank of its five "
                       f"captions). {where}; the dense row is linear heads over the frozen DINOv2-S "
                       f"and MiniLM encoders trained on the train split's pairs in this run; "
                       f"{intervals}; paper: Flickr30K 1K test.", shown(t2))
    display(shown(t2))

# %% [markdown]
# ## Table 3 — ablations (the paper reports T2I on Flickr30K; `ablation_directions`)

# %%
for direction in p.ablation_directions:
    t3 = paper.side_by_side(results(direction, p.table3_ablations), "table3", "Flickr30K")
    report.write_table(t3, tables / f"table3_ablations_{direction}",
                       f"Table 3: ablations, {direction.upper()}. {where}; {intervals}; paper: "
                       f"Flickr30K T2I.", shown(t3))
    display(shown(t3))

# %% [markdown]
# ## Table 4 — backbone and fine-tuning (T2I)
# Each row is a point of the profile's `table4_sweep` (a file in `params/sweeps/`), which
# `make reproduce` runs before this notebook; the columns after the backbone are the settings
# that point changes. The paper's rows are InternVL2.5 1B/2B (full) and 4B/8B (LoRA), so CPU
# backbones have no paper cells; the paper's rows are listed below the table.

# %%
t4_sweep = sweeps.load(p.table4_sweep)
t4 = sweeps.collect(t4_sweep, p.profile)
t4 = t4[t4["direction"] == "t2i"].reset_index(drop=True)
t4["method"] = [paper.BACKBONE_LABELS[b] for b in t4.get("backbone", [p.backbone] * len(t4))]
settings = [k for k in t4_sweep.varied() if k != "backbone"]
t4 = paper.side_by_side(t4[["method", *settings, "R@1", "R@5", "R@10", "rSum", "queries"]],
                        "table4", "Flickr30K")
report.write_table(t4, tables / "table4_backbones",
                   f"Table 4: backbones and fine-tuning, T2I, method {t4_sweep.method} "
                   f"(sweep {t4_sweep.name}; other settings as the {p.profile} profile, "
                   f"{pipeline.corpus(p).name} data); paper: Flickr30K, InternVL2.5.")
display(t4)
pd.DataFrame(paper.reported("table4", "Flickr30K"))

# %% [markdown]
# ## Table 5 — beam size (SemCORE)

# %%
for direction in p.directions:
    rows = [{**pipeline.evaluate(p, direction, methods.get("semcore"), b), "method": str(b)}
            for b in p.beam_sweep]
    t5 = paper.side_by_side(pd.DataFrame(rows)[["method", "R@1", "R@5", "R@10", "rSum"]],
                            "table5", "Flickr30K").rename(columns={"method": "beam size"})
    report.write_table(t5, tables / f"table5_beam_{direction}",
                       f"Table 5: SemCORE vs beam size, {direction.upper()}. {where}; paper: Flickr30K T2I.")
    display(t5)

# %%
notebook.summary(p, "05_tables", tables=sorted(x.name for x in tables.glob("*.md")))
