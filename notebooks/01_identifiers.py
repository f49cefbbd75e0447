# %% [markdown]
# # 01 · Identifiers (paper §3.2)
#
# A Structured natural-language IDentifier (SID) is a **global ID** — the item's K-Means
# cluster over sentence embeddings of its source text, rendered as the cluster's top
# class-based TF-IDF word (equation 2) — followed by a **lexical ID**: the item's top
# `lexical_length` KeyBERT keywords, with the cluster's top-`dedup_top_n` c-TF-IDF words removed
# (deduplication). The GRACE baselines (Table 1) use a random number (numeric ID), the item's
# own text (string ID), its top TF-IDF words (semantic ID) or hierarchical K-Means paths over
# item features (structured ID); `rq_avg` stands in for AVG/IRGen with residual-quantised
# codes of the item features (neither paper's tokenizer is reproduced). On the embedded
# profile the image features are 8×8 average-pooled pixels (`pipeline.image_vectors`).
#
# *Reading of "cluster size 128"* (appendix A.1): the paper sweeps "cluster size" in Figure 3
# and says larger sizes compensate for short lexical IDs. We read it as the number of K-Means
# clusters K (the parameter of the algorithm the paper names), `cluster_size_meaning:
# clusters`; `items_per_cluster` gives the other reading (K = items / size).

# %% tags=["parameters"]
profile = "embedded"
overrides = {}

# %%
from semcore import methods, notebook, pipeline, report

p = notebook.setup(globals())
planned = pipeline.planned_models(p)

# %%
import pandas as pd

rows = []
for direction, m in planned:
    corpus_ids = pipeline.task(p, direction).corpus_ids
    table = pipeline.identifiers(p, direction, m).subset(list(corpus_ids))
    rows.append({"direction": direction, "method": m.label, "scheme": m.scheme,
                 **table.collision_stats()})
stats = pd.DataFrame(rows)
report.write_table(stats, notebook.out_dir(p, "tables") / "identifier_collisions",
                   f"Identifier collisions over the test corpus ({p.profile} profile).")
stats

# %% [markdown]
# ## SIDs side by side (Figure 4 style)
# Global ID in **bold**, lexical ID after it; the same test images under every scheme.

# %%
t2i = "t2i" if "t2i" in p.directions else p.directions[0]
task = pipeline.task(p, t2i)
shown = list(task.corpus_ids[:8])
tables = {m.label: pipeline.identifiers(p, t2i, m) for d, m in planned if d == t2i}
sid = pipeline.identifiers(p, t2i, methods.get("semcore"))
examples = pd.DataFrame({"item": shown, "source text": [task.item(i).source_text for i in shown],
                         **{label: [tb.render(i) for i in shown]
                            for label, tb in tables.items()}})
report.write_table(examples, notebook.out_dir(p, "tables") / "identifier_examples",
                   "Identifiers of the first test items per scheme (global ID in bold).")
examples

# %% [markdown]
# ## Lengths and cluster sizes

# %%
import matplotlib.pyplot as plt
import numpy as np

with report.figure_style():
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3))
    for label, tb in tables.items():
        lengths = [len(s.split()) for s in tb.identifiers]
        ax1.hist(lengths, bins=np.arange(0.5, max(lengths) + 1.5), histtype="step", label=label)
    ax1.set_xlabel("identifier length (words)")
    ax1.set_ylabel("items")
    ax1.legend(fontsize=6)
    sizes = sorted(sid.info["cluster_sizes"], reverse=True)
    ax2.bar(range(len(sizes)), sizes)
    ax2.set_xlabel("SID cluster (sorted)")
    ax2.set_ylabel("items")
    report.save_figure(fig, notebook.out_dir(p, "figures") / "01_identifier_lengths")
plt.show()

# %%
notebook.summary(p, "01_identifiers", collisions=rows)
