# %% [markdown]
# # 03 · Trie-constrained retrieval (paper §3.4, Algorithm 1, appendix A.2)
#
# A trie over the token ids of the corpus identifiers (each ending with the end token)
# restricts beam search to valid identifiers; an identifier's score is its sequence
# log-probability (equation 1). Items that share an identifier form one candidate group (GSV
# decides among them in notebook 04; inside a group the order is a seeded tie-break). The
# "w/o constrained decoding" ablation generates freely and maps strings back to identifiers by
# normalised string match.
#
# R@K is the percentage of queries with a correct item in the top K (for I2T an image's rank is
# the best rank of any of its five captions); rSum is the paper's R@1+R@5 (R@10 is shown beside it).

# %% tags=["parameters"]
profile = "embedded"
overrides = {}

# %%
import pandas as pd

from semcore import constrained, methods, notebook, pipeline, report

p = notebook.setup(globals())
runs = pipeline.planned_runs(p)
rows = [pipeline.evaluate(p, d, methods.without_gsv(m)) for d, m in runs]
before_gsv = pd.DataFrame(rows)
before_gsv

# %% [markdown]
# ## How far below its identifier's ceiling?
# Each T2I row's R@1 (before GSV) as a percentage of its identifier's ceiling: the R@1 of the
# corpus ranked by the MiniLM cosine between the query and the identifier text alone (notebook
# 01, `semcore.ceiling`), what a perfect generator of that identifier could reach; chance is
# 100 / corpus size. Same test-split queries. A model far below its ceiling is a bug to find
# (DESIGN.md, "How to read a result"; notebook 02's model diagnostics say why). The ceiling is a
# reference, not a bound: the model also memorises each corpus item's source text (its
# pseudo-query), so it can pass its identifier's ceiling on the way to the source text's (the
# last column). Identifiers that are not words (numeric, atomic, structured, RQ, anonymous) have
# no text ceiling: their cells are empty. Not defined for I2T: image queries have no text to score.

# %%
ceiling_rows = []
if "t2i" in p.directions:
    chance = 100 / len(pipeline.task(p, "t2i").corpus_ids)
    source = pipeline.source_text_ceiling(p, "t2i", "minilm")["R@1"]
    for (d, m), row in zip(runs, rows):
        if d == "t2i":
            top = pipeline.identifier_ceiling(p, "t2i", m, "minilm")["R@1"] if m.in_words else None
            ceiling_rows.append({"method": m.label, "R@1": row["R@1"], "chance R@1": chance,
                                 "ceiling R@1 (MiniLM)": top,
                                 "% of ceiling": 100 * row["R@1"] / top if top else None,
                                 "source-text ceiling R@1": source})
    ceiling_fraction = pd.DataFrame(ceiling_rows)
    report.write_table(ceiling_fraction, notebook.out_dir(p, "tables") / "ceiling_fraction",
                       f"T2I R@1 (%) before GSV against the identifier ceiling ({p.profile} profile, "
                       f"test split, beam {p.beam_size}): the ceiling ranks the corpus by the MiniLM "
                       "cosine between query and identifier text (no model); % of ceiling = "
                       "R@1 / ceiling R@1 in percent, empty for identifiers that are not words; "
                       "chance = 100 / corpus size; the source-text ceiling ranks by the corpus "
                       "items' own source texts.")
    display(ceiling_fraction)

# %% [markdown]
# ## Beam size (Table 5)
# The paper sees gains flatten beyond beam 20 on Flickr30K.

# %%
semcore = methods.get("semcore")
beam_rows = [pipeline.evaluate(p, d, semcore, beam) for d in p.directions for beam in p.beam_sweep]
beams = pd.DataFrame(beam_rows)
beams

# %% [markdown]
# ## Decoding scores
# How beam search scores an identifier: "sum" is equation 1, the paper's and the default
# (`decode_score`); "length_normalized" divides it by the identifier's token count (end token
# included); "renormalized" renormalises each step over the tokens the trie allows, giving
# log P(identifier | the corpus identifiers). The search ranks its beams by the score, so a
# score can change which identifiers are found, not only their order. SemCORE without GSV, on
# the test queries, with one trained model per direction for all three.

# %%
score_rows = [{"decode_score": s, **pipeline.evaluate(p.replace(decode_score=s), d,
                                                      methods.without_gsv(semcore))}
              for d in p.directions for s in constrained.DECODE_SCORES]
decode_scores = pd.DataFrame(score_rows)[["direction", "decode_score", "R@1", "R@5", "R@10", "rSum",
                                          "queries"]]
report.write_table(decode_scores, notebook.out_dir(p, "tables") / "decode_scores",
                   f"SemCORE without GSV, trie-constrained beam search (beam {p.beam_size}) under "
                   f"three identifier scores, on the test queries: {p.profile} profile "
                   f"({pipeline.corpus(p).name} data), backbone {p.backbone}. sum is equation 1, "
                   "the paper's score and the default.")
decode_scores

# %%
notebook.summary(p, "03_retrieval", before_gsv=rows, ceiling_fraction=ceiling_rows, beam_sweep=beam_rows,
                 decode_scores=score_rows,
                 decode_seconds={f"{d}/{m.name}": pipeline.timing(p, d, m, "decode") for d, m in runs})
