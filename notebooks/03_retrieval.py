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
profile = "embedded"  # type: str  the settings of params/<profile>.yaml
overrides = {}  # type: dict  several settings as one mapping
# Every setting of the profile; None keeps its value.
seed = None  # type: int  the profile's value, else 0
train_seed = None  # type: int  the profile's value, else 0
dataset = None  # type: str  embedded|captions_jsonl|karpathy; the profile's value, else 'embedded'
data_path = None  # type: str  the profile's value, else ''
image_root = None  # type: str  the profile's value, else ''
embedded_train_images = None  # type: int  the profile's value, else 240
embedded_test_images = None  # type: int  the profile's value, else 80
max_train_images = None  # type: int  the profile's value, else 0
max_test_images = None  # type: int  the profile's value, else 0
max_queries = None  # type: int  the profile's value, else 0
image_size = None  # type: int  the profile's value, else 32
evaluate_on = None  # type: str  test|validation; the profile's value, else 'test'
validation_images = None  # type: int  the profile's value, else 40
caption_source = None  # type: str  heldout|generated; the profile's value, else 'heldout'
heldout_caption_index = None  # type: int  the profile's value, else 0
caption_epochs = None  # type: int  the profile's value, else 5
caption_max_tokens = None  # type: int  the profile's value, else 24
cluster_size = None  # type: int  the profile's value, else 8
cluster_size_meaning = None  # type: str  clusters|items_per_cluster; the profile's value, else 'clusters'
lexical_length = None  # type: int  the profile's value, else 4
dedup_top_n = None  # type: int  the profile's value, else 5
global_id_style = None  # type: str  words|number; the profile's value, else 'words'
global_id_words = None  # type: int  the profile's value, else 1
text_encoder = None  # type: str  all-MiniLM-L6-v2; the profile's value, else 'all-MiniLM-L6-v2'
backbone = None  # type: str  tiny|scratch|smol|internvl2_5-1b|internvl2_5-2b|internvl2_5-4b|internvl2_5-8b; the profile's value, else 'tiny'
backbone_path = None  # type: str  the profile's value, else ''
finetune = None  # type: str  full|lora; the profile's value, else 'full'
lora_rank = None  # type: int  the profile's value, else 16
lora_alpha = None  # type: int  the profile's value, else 32
lora_dropout = None  # type: float  the profile's value, else 0.05
gradient_checkpointing = None  # type: bool  the profile's value, else False
precision = None  # type: str  fp32|bf16|auto; the profile's value, else 'fp32'
deepspeed_config = None  # type: str  the profile's value, else ''
tiny_hidden = None  # type: int  the profile's value, else 128
tiny_layers = None  # type: int  the profile's value, else 2
text_features = None  # type: str  none|minilm; the profile's value, else 'none'
epochs = None  # type: int  the profile's value, else 5
batch_size = None  # type: int  the profile's value, else 16
learning_rate = None  # type: float  the profile's value, else 0.002
corpus_repeats = None  # type: int  the profile's value, else 4
group_by_length = None  # type: bool  the profile's value, else False
beam_size = None  # type: int  the profile's value, else 20
decode_score = None  # type: str  sum|length_normalized|renormalized; the profile's value, else 'sum'
gsv_k = None  # type: int  the profile's value, else 10
gsv_format = None  # type: str  listwise|listwise_permuted|pointwise|likelihood; the profile's value, else 'listwise'
gsv_show_source = None  # type: bool  the profile's value, else False
gsv_decode_weight = None  # type: float  the profile's value, else 0.0
gsv_epochs = None  # type: int  the profile's value, else 3
gsv_train_queries = None  # type: int  the profile's value, else 400
gsv_k_sweep = None  # type: list[int]  the profile's value, else [3, 5, 10]
gsv_variants = None  # type: list[str]  the profile's value, else ['listwise (paper)', 'listwise, permuted', 'pointwise', 'pointwise + source text', 'likelihood', 'likelihood + source text']
directions = None  # type: list[str]  the profile's value, else ['t2i', 'i2t']
ablation_directions = None  # type: list[str]  the profile's value, else ['t2i']
table1_methods = None  # type: list[str]  the profile's value, else ['grace_numeric', 'grace_structured', 'semcore']
table2_methods = None  # type: list[str]  the profile's value, else ['grace_structured', 'semcore']
table3_ablations = None  # type: list[str]  the profile's value, else ['semcore', 'wo_gsv', 'wo_sid', 'wo_global_id', 'wo_deduplication', 'wo_constrained_decoding']
beam_sweep = None  # type: list[int]  the profile's value, else [10, 20, 30, 40, 50]
jobs = None  # type: int  the profile's value, else 1
fig3_sweep = None  # type: str  the profile's value, else 'fig3'
table4_sweep = None  # type: str  the profile's value, else 'table4'
seed_sweep = None  # type: str  the profile's value, else 'seeds'

# %%
import pandas as pd

from semcore import constrained, methods, notebook, pipeline, readings, report

p = notebook.setup(globals())
runs = pipeline.planned_runs(p)
rows = [pipeline.evaluate(p, d, methods.without_gsv(m)) for d, m in runs]
before_gsv = pd.DataFrame(rows)
display(before_gsv)
readings.show(readings.before_gsv(before_gsv, {d: pipeline.chance(p, d) for d in p.directions}))

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
    chance = pipeline.chance(p, "t2i")
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
    readings.show(readings.ceiling_fraction(ceiling_fraction))

# %% [markdown]
# ## Beam size (Table 5)
# The paper sees gains flatten beyond beam 20 on Flickr30K.

# %%
semcore = methods.get("semcore")
beam_rows = [pipeline.evaluate(p, d, semcore, beam) for d in p.directions for beam in p.beam_sweep]
beams = pd.DataFrame(beam_rows)
display(beams)
readings.show(readings.beams(beams))

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
                   f"({pipeline.corpus(p).name} data), backbone {pipeline.backbone_label(p)}. sum is equation 1, "
                   "the paper's score and the default.")
display(decode_scores)
readings.show(readings.decode_scores(decode_scores))

# %%
notebook.summary(p, "03_retrieval", before_gsv=rows, ceiling_fraction=ceiling_rows, beam_sweep=beam_rows,
                 decode_scores=score_rows,
                 decode_seconds={f"{d}/{m.name}": pipeline.timing(p, d, m, "decode") for d, m in runs})
