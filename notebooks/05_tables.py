# %% [markdown]
# # 05 · Tables: our numbers beside the paper's
#
# Every row is one run of the same pipeline with one method (`semcore.methods`). The paper's
# columns are its reported Flickr30K numbers (prefixed "paper"); ours come from this profile's
# data and backbone — read the caption before comparing anything.

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

# %% [markdown]
# Tables 1–3 give each R@K with its 95 % interval (a percentile bootstrap over the test queries,
# `semcore.stats`): with n queries one query is 100/n points, so rows closer than their intervals
# may differ by chance. "R@1 vs SemCORE" is a row's R@1 minus the SemCORE row's on the same
# queries, with the interval of a paired bootstrap (both runs resampled at the same queries);
# `*` marks an interval that excludes 0. The CSV files hold the bounds as numbers ("R@1 lo",
# "R@1 hi", ...) and the difference's two-sided bootstrap p-value.

# %%
import pandas as pd

from semcore import methods, notebook, paper, pipeline, readings, report, stats
from semcore import sweep as sweeps
from semcore.tables import reading, results, seed_spread, shown

p = notebook.setup(globals())
tables = notebook.out_dir(p, "tables")
where = (f"Ours: {p.profile} profile ({pipeline.corpus(p).name} data), backbone {pipeline.backbone_label(p)}, "
         f"beam {p.beam_size}, GSV k={p.gsv_k} ({p.gsv_format}{', T2I with the source text' if p.gsv_show_source else ''}, decoding weight "
         f"{p.gsv_decode_weight}), test split")
intervals = (f"R@K [95 % percentile bootstrap interval over the queries, B = {stats.B}]; "
             "R@1 vs SemCORE: difference to the SemCORE row in R@1 points [95 % interval of a paired "
             "bootstrap over the same queries], * where it excludes 0")


# %% [markdown]
# ## Table 1 — text-to-image against generative baselines

# %%
if "t2i" in p.directions:
    t1 = paper.side_by_side(results(p, "t2i", p.table1_methods), "table1", "Flickr30K")
    report.write_table(t1, tables / "table1_t2i",
                       f"Table 1: text-to-image R@K. {where}; {intervals}; paper: Flickr30K 1K test, "
                       f"InternVL2.5-1B.", shown(t1))
    display(shown(t1))
    readings.show(reading(t1, pipeline.chance(p, "t2i")))

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
    readings.show(reading(t2, pipeline.chance(p, "i2t")))
else:
    readings.show("This profile runs text-to-image only (`directions` has no `i2t`): an image-to-text "
                  "model learns a corpus of five captions per image, and the `flickr8k` profile "
                  "measures Table 2.")

# %% [markdown]
# ## Table 3 — ablations (the paper reports T2I on Flickr30K; `ablation_directions`)

# %%
for direction in p.ablation_directions:
    t3 = paper.side_by_side(results(p, direction, p.table3_ablations), "table3", "Flickr30K")
    report.write_table(t3, tables / f"table3_ablations_{direction}",
                       f"Table 3: ablations, {direction.upper()}. {where}; {intervals}; paper: "
                       f"Flickr30K T2I.", shown(t3))
    display(shown(t3))
    readings.show(reading(t3, pipeline.chance(p, direction)))

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
readings.show(readings.backbones(t4))
pd.DataFrame(paper.reported("table4", "Flickr30K"))

# %% [markdown]
# ## Training seeds — how much of a difference is training noise (T2I, test split)
# The profile's `seed_sweep` (a file in `params/sweeps/`) retrains the key rows with other
# training seeds (`train_seed`: the model's initialisation and example order; the data,
# identifiers and test queries stay those of `seed`). The bootstrap interval of each table cell
# is the noise of the test queries with the model fixed; the spread across seeds is the noise
# of training with the queries fixed.

# %%
if p.seed_sweep:
    seed_runs = sweeps.load(p.seed_sweep)
    spread = seed_spread(sweeps.collect(seed_runs, p.profile).query("direction == 't2i'"))
    report.write_table(spread, tables / "seed_spread",
                       f"T2I R@1 across training seeds (sweep {seed_runs.name}; {where}): R@1 at "
                       "each seed, their mean and sample SD, and the mean half-width of the runs' "
                       "95 % bootstrap intervals over queries.")
    display(spread)
    readings.show(readings.seeds(spread))
else:
    readings.show("This profile runs no seed sweep (`seed_sweep: \"\"`); `make sweep SWEEP=seeds "
                  f"PROFILE={p.profile}` runs one, and this notebook with `-p seed_sweep seeds` "
                  "shows it.")

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
    readings.show(readings.beams(pd.DataFrame(rows)))

# %%
notebook.summary(p, "05_tables", tables=sorted(x.name for x in tables.glob("*.md")))
