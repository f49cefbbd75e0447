# %% [markdown]
# # 01 · Identifiers (paper §3.2)
#
# A Structured natural-language IDentifier (SID) is a **global ID** — the item's K-Means
# cluster over sentence embeddings of its source text, rendered as the cluster's top
# class-based TF-IDF word (equation 2) — followed by a **lexical ID**: the item's top
# `lexical_length` KeyBERT keywords, with the cluster's top-`dedup_top_n` c-TF-IDF words removed
# (deduplication). The GRACE baselines (Table 1) use a random number (numeric ID), one new
# vocabulary token per item (atomic ID — the vocabulary expansion SSI argues against), the
# item's own text (string ID), its top TF-IDF words (semantic ID) or hierarchical K-Means paths
# over image features (structured ID); `rq_avg` stands in for AVG/IRGen with residual-quantised
# codes of the image features (neither paper's tokenizer is reproduced). Image features are the
# frozen DINOv2-S tokens of `semcore.image_encoder` (`pipeline.image_vectors`).
#
# **SSI** (the second paper) has the language model write the identifier itself: fixed slots
# (objects, attributes, actions, scene) in plain words, plus a one-sentence rationale used as an
# auxiliary training target. Here SmolLM2-135M-Instruct writes them from the item's source text
# (`semcore.identifiers.ssi`); answers that do not parse or name no object of the text are
# replaced by a rule-based identifier and counted below.
#
# *Source text.* Image identifiers are built from one caption per image: a held-out ground-truth
# caption (`caption_source: heldout`, allowed on CPU profiles) or the backbone's own caption
# after it learned to caption the train split (`caption_source: generated`, the paper's source).
#
# *Reading of "cluster size 128"* (appendix A.1): the paper sweeps "cluster size" in Figure 3
# and says larger sizes compensate for short lexical IDs. We read it as the number of K-Means
# clusters K (the parameter of the algorithm the paper names), `cluster_size_meaning:
# clusters`; `items_per_cluster` gives the other reading (K = items / size).

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
from semcore import methods, notebook, pipeline, readings, report

p = notebook.setup(globals())
planned = pipeline.planned_models(p)

# %%
import numpy as np
import pandas as pd

print(f"caption_source: {p.caption_source}")
rows, token_counts = [], {}
for direction, m in planned:
    corpus_ids = list(pipeline.task(p, direction).corpus_ids)
    full = pipeline.identifiers(p, direction, m)
    table = full.subset(corpus_ids)
    token_counts[(direction, m.label)] = pipeline.identifier_token_counts(p, direction, m, corpus_ids)
    rows.append({"direction": direction, "method": m.label, "scheme": m.scheme,
                 **table.collision_stats(),
                 "mean words": round(float(np.mean([len(i.split()) for i in table.identifiers])), 2),
                 "mean tokens": round(float(np.mean(token_counts[(direction, m.label)])), 2),
                 "SSI valid %": round(100 * full.info["valid_rate"], 1) if m.scheme == "ssi" else None})
stats = pd.DataFrame(rows)
report.write_table(stats, notebook.out_dir(p, "tables") / "identifier_collisions",
                   f"Identifiers over the test corpus ({p.profile} profile, caption_source "
                   f"{p.caption_source}): collisions, length in words and in backbone tokens "
                   "(with the end token), and the share of valid SSI answers.")
display(stats)
readings.show(readings.collisions(stats))

# %% [markdown]
# ## SIDs side by side (Figure 4 style)
# Global ID in **bold**, lexical ID after it; the same test images under every scheme.

# %%
t2i = "t2i" if "t2i" in p.directions else p.directions[0]
task = pipeline.task(p, t2i)
shown = list(task.corpus_ids[:8])
tables = {m.label: pipeline.identifiers(p, t2i, m).subset(list(task.corpus_ids))
          for d, m in planned if d == t2i}
sid = pipeline.identifiers(p, t2i, methods.get("semcore"))
examples = pd.DataFrame({"item": shown, "source text": [task.item(i).source_text for i in shown],
                         **{label: [tb.render(i) for i in shown]
                            for label, tb in tables.items()}})
report.write_table(examples, notebook.out_dir(p, "tables") / "identifier_examples",
                   "Identifiers of the first test items per scheme (global ID in bold).")
display(examples)
readings.show(readings.examples(examples))

# %% [markdown]
# ## Lengths, token counts and cluster sizes

# %%
import matplotlib.pyplot as plt

names = {m.label: m.name for d, m in planned if d == t2i}
styles = report.method_styles(list(names.values()))
with report.figure_style():
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(11, 3.4))
    for label, tb in tables.items():
        lengths = [len(s.split()) for s in tb.identifiers]
        ax1.hist(lengths, bins=np.arange(0.5, max(lengths) + 1.5), histtype="step", label=label,
                 **styles[names[label]])
        counts = token_counts[(t2i, label)]
        ax2.hist(counts, bins=np.arange(0.5, max(counts) + 1.5), histtype="step", label=label,
                 **styles[names[label]])
    ax1.set_xlabel("identifier length (words)")
    ax1.set_ylabel("items")
    fig.legend(*ax1.get_legend_handles_labels(), loc="upper center", ncol=4, fontsize=7,
               bbox_to_anchor=(0.5, 0.0), frameon=False)
    ax2.set_xlabel(f"identifier length ({pipeline.backbone_label(p)} tokens, with end token)")
    sizes = sorted(sid.info["cluster_sizes"], reverse=True)
    ax3.bar(range(len(sizes)), sizes)
    ax3.set_xlabel("SID cluster (sorted)")
    ax3.set_ylabel("items")
    report.save_figure(fig, notebook.out_dir(p, "figures") / "01_identifier_lengths")
plt.show()
readings.show(readings.lengths(stats[stats["direction"] == t2i], sid.info["cluster_sizes"]))

# %% [markdown]
# ## The identifier ceiling
# What a perfect generator of each identifier could reach: the test corpus ranked for every
# test query by a text score between the query and the item's identifier alone — BM25 over
# lower-case words, and the cosine of MiniLM embeddings (`semcore.ceiling`; ties in a
# relevance-blind hashed order). The numbers come from the **test split's** T2I queries (the
# profile's `max_queries` sample when it sets one); no model is involved, so nothing is tuned on
# them. The last row puts each item's full source text (the caption its identifier is built
# from) in place of the identifier. Defined for T2I only: image queries have no text. A trained
# model far below its identifier's row is a bug to find, not a result (DESIGN.md, "How to read a
# result"); chance is R@1 = 100 / corpus size.

# %%
ceiling_rows = []
if "t2i" in p.directions:
    for m in [m for d, m in planned if d == "t2i"] + [None]:
        row = {"identifier text": m.label if m else f"full source text ({p.caption_source} caption)"}
        for name, scorer in (("BM25", "bm25"), ("MiniLM", "minilm")):
            s = (pipeline.identifier_ceiling(p, "t2i", m, scorer) if m
                 else pipeline.source_text_ceiling(p, "t2i", scorer))
            row.update({f"{name} R@{k}": s[f"R@{k}"] for k in (1, 5, 10)})
        ceiling_rows.append({**row, "queries": s["queries"]})
    ceilings = pd.DataFrame(ceiling_rows)
    report.write_table(ceilings, notebook.out_dir(p, "tables") / "identifier_ceiling",
                       f"Identifier ceilings ({p.profile} profile, test split, "
                       f"{ceiling_rows[0]['queries']} T2I queries, "
                       f"{len(pipeline.task(p, 't2i').corpus_ids)} corpus items, no model): R@K "
                       "(%) of the corpus ranked by BM25 or MiniLM cosine between the query and "
                       "each item's identifier, or its full source text.")
    display(ceilings)
    readings.show(readings.ceilings(ceilings))

# %%
notebook.summary(p, "01_identifiers", collisions=rows, identifier_ceiling=ceiling_rows)
