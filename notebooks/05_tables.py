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
import pandas as pd
from IPython.display import Markdown, display

from semcore import methods, notebook, paper, pipeline, report, stats
from semcore import sweep as sweeps
from semcore.tables import reading, results, shown

p = notebook.setup(globals())
tables = notebook.out_dir(p, "tables")
where = (f"Ours: {p.profile} profile ({pipeline.corpus(p).name} data), backbone {p.backbone}, "
         f"beam {p.beam_size}, GSV k={p.gsv_k} ({p.gsv_format}, decoding weight "
         f"{p.gsv_decode_weight}), test split")
intervals = (f"R@K [95 % percentile bootstrap interval over the queries, B = {stats.B}]; "
             "R@1 vs SemCORE: difference to the SemCORE row in R@1 points [95 % interval of a paired "
             "bootstrap over the same queries], * where it excludes 0")


def chance(direction: str) -> float:
    """R@1 of a random ranking: relevant items per query over the corpus size, in percent."""
    t = pipeline.task(p, direction)
    return 100 * sum(len(q.relevant) for q in t.queries) / len(t.queries) / len(t.corpus_ids)


# %% [markdown]
# ## Table 1 — text-to-image against generative baselines

# %%
if "t2i" in p.directions:
    t1 = paper.side_by_side(results(p, "t2i", p.table1_methods), "table1", "Flickr30K")
    report.write_table(t1, tables / "table1_t2i",
                       f"Table 1: text-to-image R@K. {where}; {intervals}; paper: Flickr30K 1K test, "
                       f"InternVL2.5-1B.", shown(t1))
    display(shown(t1))
    display(Markdown(reading(t1, chance("t2i"))))

# %% [markdown]
# ## Table 2 — image-to-text

# %%
if "i2t" in p.directions:
    t2 = paper.side_by_side(results(p, "i2t", p.table2_methods, dense=True), "table2", "Flickr30K")
    report.write_table(t2, tables / "table2_i2t",
                       f"Table 2: image-to-text R@K (an image's rank is the best rank of its five "
                       f"captions). {where}; the dense row is linear heads over the frozen DINOv2-S "
                       f"and MiniLM encoders trained on the train split's pairs in this run; "
                       f"{intervals}; paper: Flickr30K 1K test.", shown(t2))
    display(shown(t2))
    display(Markdown(reading(t2, chance("i2t"))))

# %% [markdown]
# ## Table 3 — ablations (the paper reports T2I on Flickr30K; `ablation_directions`)

# %%
for direction in p.ablation_directions:
    t3 = paper.side_by_side(results(p, direction, p.table3_ablations), "table3", "Flickr30K")
    report.write_table(t3, tables / f"table3_ablations_{direction}",
                       f"Table 3: ablations, {direction.upper()}. {where}; {intervals}; paper: "
                       f"Flickr30K T2I.", shown(t3))
    display(shown(t3))
    display(Markdown(reading(t3, chance(direction))))

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
t4["backbone"] = [paper.BACKBONE_LABELS[b] for b in t4.get("backbone", [p.backbone] * len(t4))]
t4["method"] = t4["label"]
settings = [k for k in t4_sweep.varied() if k != "backbone"]
t4 = t4[["backbone", "method", *settings, "R@1", "R@1 lo", "R@1 hi", "R@5", "R@10", "rSum", "queries"]]
report.write_table(t4, tables / "table4_backbones",
                   f"Table 4: backbones and fine-tuning, T2I (sweep {t4_sweep.name}; other "
                   f"settings as the {p.profile} profile, {pipeline.corpus(p).name} data; "
                   f"{intervals}); paper: Flickr30K, InternVL2.5, listed below.")
display(t4)
pd.DataFrame(paper.reported("table4", "Flickr30K"))

# %% [markdown]
# ## Table 5 — beam size (SemCORE)

# %%
for direction in p.directions:
    rows = [{**pipeline.evaluate(p, direction, methods.get("semcore"), b), "method": str(b)}
            for b in p.beam_sweep]
    t5 = paper.side_by_side(pd.DataFrame(rows)[["method", *[f"{r}{end}" for r in ("R@1", "R@5", "R@10")
                                                             for end in ("", " lo", " hi")], "rSum"]],
                            "table5", "Flickr30K").rename(columns={"method": "beam size"})
    report.write_table(t5, tables / f"table5_beam_{direction}",
                       f"Table 5: SemCORE vs beam size, {direction.upper()}. {where}; R@K with the "
                       f"bounds of its 95 % bootstrap interval; paper: Flickr30K T2I.")
    display(t5)

# %%
notebook.summary(p, "05_tables", tables=sorted(x.name for x in tables.glob("*.md")))
