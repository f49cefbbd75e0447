# %% [markdown]
# # 04 · Generative Semantic Verification (paper §3.3)
#
# The retrieval model's top-k candidates (k = `gsv_k`, 10 in the paper; a candidate group is
# never split) are shown to the backbone with their lexical IDs, then the query, then the
# instruction to select the best match. The verifier is the retrieval model fine-tuned further
# on its own candidates for train-split queries (the positive plus the hard negatives it
# retrieved). Candidates appear in a seeded random order per query, so position says nothing
# about the answer. We re-rank the top-k by the verifier's probability of each candidate's
# letter (the selected one first); items after the top-k keep their generative order.

# %% tags=["parameters"]
profile = "embedded"
overrides = {}

# %%
import matplotlib.pyplot as plt
import pandas as pd

from semcore import gsv, methods, notebook, pipeline, report

p = notebook.setup(globals())
rows, cost = [], {}
for direction, m in [(d, m) for d, m in pipeline.planned_runs(p) if m.gsv]:
    before = pipeline.evaluate(p, direction, methods.without_gsv(m))
    after = pipeline.evaluate(p, direction, m)
    rows += [{**before, "GSV": "no"}, {**after, "GSV": "yes"}]
    dec, ver = pipeline.timing(p, direction, m, "decode"), pipeline.timing(p, direction, m, "gsv")
    cost[f"{direction}/{m.name}"] = {"decode_ms_per_query": 1000 * dec["seconds"] / dec["queries"],
                                     "gsv_ms_per_query": 1000 * ver["seconds"] / ver["queries"],
                                     "gsv_over_decode": ver["seconds"] / dec["seconds"]}
pd.DataFrame(rows)[["direction", "label", "GSV", "R@1", "R@5", "R@10", "rSum"]]

# %% [markdown]
# GSV's added cost per query, measured when the cached step ran (wall clock on this machine;
# kept out of the tables so that they stay byte-identical across runs):

# %%
pd.DataFrame(cost).T

# %% [markdown]
# ## Position bias
# GSV's choice by the letter the correct candidate was shown at (queries whose top k hold one).
# The order is a seeded shuffle per query, so a verifier that reads the candidates has no
# trend over the letters; one that favours a letter would show it here.

# %%
positions = []
for direction, m in [(d, m) for d, m in pipeline.planned_runs(p) if m.gsv]:
    t = pipeline.task(p, direction)
    by_letter = gsv.accuracy_by_position(list(t.queries), pipeline.decoded(p, direction, m),
                                         pipeline.rankings(p, direction, m), p.gsv_k, p.seed)
    positions += [{"direction": direction, "method": m.label, **r} for r in by_letter]
pd.DataFrame(positions)

# %% [markdown]
# ## How many candidates to verify (`gsv_k_sweep`)
# The paper fixes k = 10 (appendix A.1). Each k here is a full run: the verifier is trained on
# prompts with k candidates and re-ranks the top k, so one k's verifier is never reused for
# another. k = 1 would leave nothing to choose, so R@1 could only move through the order after
# the top k.

# %%
k_rows = [{**pipeline.evaluate(pk, direction, m), "k": pk.gsv_k} for pk, direction, m in pipeline.gsv_k_runs(p)]
by_k = pd.DataFrame(k_rows)[["direction", "k", "R@1", "R@5", "R@10", "rSum"]]
fig, ax = plt.subplots(figsize=(3.4, 2.4))
for direction, rows_k in by_k.groupby("direction"):
    ax.plot(rows_k["k"], rows_k["R@1"], marker="o", label=f"{direction.upper()} R@1")
ax.set_xlabel("GSV candidates k")
ax.set_ylabel("R@1")
ax.set_title(f"SemCORE vs GSV k ({p.profile})", fontsize=7)
ax.legend(fontsize=6)
report.save_figure(fig, notebook.out_dir(p, "figures") / "04_gsv_k")
by_k

# %%
notebook.summary(p, "04_gsv", with_and_without=rows, cost=cost, by_position=positions, by_k=k_rows)
