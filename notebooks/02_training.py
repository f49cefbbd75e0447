# %% [markdown]
# # 02 · Training (paper §3.4)
#
# One model per direction and identifier scheme learns `<query, identifier>` pairs with the
# next-token loss on the identifier tokens only (equation 3): train-split captions → their
# image's identifier (T2I) or train images → their captions' identifiers (I2T), plus the
# memorisation of the corpus items (item → identifier, and for T2I the held-out caption as
# pseudo-query). This is DSI's recipe (and GRACE's): indexing examples, which memorise the
# corpus, mixed with retrieval examples, which teach the paraphrase skill (another caption →
# the same identifier). The corpus pairs repeat `corpus_repeats` times per epoch; the table below
# gives the mix.
#
# Backbone `tiny`: a randomly initialised InternVL (vision tower, pixel-shuffle projector,
# Qwen2 LM) from transformers config classes — the paper's architecture, scaled down to train
# from scratch on two CPU cores. The paper fine-tunes InternVL2.5-1B for 5 epochs with batch 4
# per GPU on two A40s. Training checkpoints every epoch and resumes after an interruption.

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
from semcore import notebook, pipeline, readings, report

p = notebook.setup(globals())
histories = {(d, m.label): pipeline.loss_history(p, d, m) for d, m in pipeline.planned_models(p)}

# %%
import pandas as pd

mix = pd.DataFrame({d: pipeline.training_mix(p, d) for d in p.directions}).fillna(0).astype(int)
mix.index.name = "examples per epoch"
report.write_table(mix.reset_index(), notebook.out_dir(p, "tables") / "training_mix",
                   f"Training examples per epoch by kind ({p.profile} profile, corpus_repeats "
                   f"{p.corpus_repeats}, {p.epochs} epochs, learning rate {p.learning_rate}).")
display(mix)
readings.show(readings.training_mix(mix))

# %% [markdown]
# ## Choosing the recipe on the validation split
# The learning rate and the number of epochs were chosen on a **validation split carved from the
# train split** (`evaluate_on: validation`: `validation_images` train images, drawn by seed, take
# the place of the test images, their captions become the queries, and the test split is dropped
# from every step), never on test. The rows: SemCORE's identifiers without GSV (T2I), trained
# with the profile's setting and with its neighbours. The profile's setting should be the best
# row or within the noise of it: R@1 lo and hi bound its 95 % bootstrap interval over queries.

# %%
sid = pipeline.recipe_method()
validation = pd.DataFrame([
    {"setting": name, "learning rate": q.learning_rate, "epochs": q.epochs, "sentence features": q.text_features,
     "queries": len(pipeline.task(q, "t2i").queries),
     **{k: v for k, v in pipeline.evaluate(q, "t2i", sid).items() if k in ("R@1", "R@1 lo", "R@1 hi", "R@5", "R@10")},
     "final loss/token": round(pipeline.loss_history(q, "t2i", sid)[-1]["loss"], 3)}
    for name, q in pipeline.recipe_validation_runs(p).items()])
report.write_table(validation, notebook.out_dir(p, "tables") / "recipe_validation",
                   f"The training recipe on the validation split ({p.validation_images} train "
                   f"images carved out as corpus, their captions as queries; {p.profile} profile, "
                   "T2I, SemCORE's identifiers without GSV, beam "
                   f"{p.beam_size}). No test data is used.")
display(validation)
readings.show(readings.recipe(validation))

# %%
import matplotlib.pyplot as plt

names = {m.label: m.name for d, m in pipeline.planned_models(p)}
styles = report.method_styles(list(names.values()))
with report.figure_style():
    fig, axes = plt.subplots(1, len(p.directions), figsize=(6.4 * len(p.directions), 3.4), squeeze=False)
    for ax, direction in zip(axes[0], p.directions):
        for (d, label), hist in histories.items():
            if d == direction:
                ax.plot([h["epoch"] for h in hist], [h["loss"] for h in hist], label=label,
                        **styles[names[label]])
        ax.set_title(direction.upper())
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss per target token")
        ax.set_yscale("log")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    report.save_figure(fig, notebook.out_dir(p, "figures") / "02_loss_curves")
plt.show()
readings.show(readings.loss_curves(histories))

# %% [markdown]
# ## Did the models learn their identifiers?
# A low loss alone does not say so: a model can learn the identifiers' common tokens and then
# emit a few short identifiers for every query (DESIGN.md, "How to read a result"). One row per
# trained model (methods that decode freely share it and are decoded here trie-constrained, beam
# `beam_size`). The queries are the **test split's** (the profile's `max_queries` sample when it
# sets one); nothing is tuned on these numbers.
#
# - *final loss/token*: the last logged training loss, per target token (identifier tokens and
#   end token; SSI with rationale also its rationale's).
# - *uniform loss/token*: ln(distinct identifiers of the training targets) / their mean tokens,
#   the loss per token of a model that knows the set of identifiers but not which one an input
#   asks for. The targets are the corpus items' identifiers and the train items' (the
#   retrieval pairs teach those), so on Flickr8k T2I it is ln(7,000), not ln(1,000). A final
#   loss near it: the spelling was learnt, the mapping was not.
# - *indexing acc. %*: each corpus item's own indexing input (T2I its image, I2T its caption)
#   decoded over the corpus identifiers; the share whose top-1 is the item's identifier. The
#   model was trained on exactly these pairs, so it should be near 100.
# - *distinct top-1 / possible*: distinct top-1 identifiers over the test queries, against the
#   distinct identifiers of their relevant items, at most one per query (an I2T image has five
#   relevant captions but one top-1).
# - *emitted / corpus tokens*: mean length in tokens (end token included) of the top-1
#   identifiers over the queries, and of the distinct corpus identifiers. Emitted much shorter:
#   the model prefers short identifiers.
# - *most frequent top-1*, *its share %*: the identifier most queries get, and their share.
# - *collapsed*: yes when the distinct top-1 identifiers are fewer than half the possible ones.

# %%
diagnostics = {(d, m.label): pipeline.diagnostics(p, d, m) for d, m in pipeline.planned_models(p)}
diag_table = pd.DataFrame([
    {"direction": d, "method": label,
     "final loss/token": x["final_loss"], "uniform loss/token": x["uniform_loss"],
     "indexing acc. %": x["indexing_accuracy"],
     "distinct top-1 / possible": f"{x['distinct_top1']} / {x['reachable']}",
     "emitted tokens": x["emitted_tokens"], "corpus tokens": x["corpus_tokens"],
     "most frequent top-1": x["top_identifier"], "its share %": x["top_share"],
     "collapsed": "yes" if x["collapsed"] else "no"}
    for (d, label), x in diagnostics.items()])
report.write_table(diag_table, notebook.out_dir(p, "tables") / "model_diagnostics",
                   f"Did each trained model learn its identifiers? {p.profile} profile, backbone "
                   f"{pipeline.backbone_label(p)}, test-split queries, trie-constrained beam {p.beam_size}: final "
                   "training loss per target token against a uniform choice among the distinct "
                   "identifiers of its training targets (corpus and train items), indexing "
                   "accuracy (each corpus item's own indexing input decoded to its identifier), "
                   "distinct top-1 identifiers against the most "
                   "possible (distinct relevant identifiers, one per query), mean tokens of the "
                   "emitted and of the corpus identifiers, the most frequent top-1 and its share "
                   "of queries; collapsed: under half the possible distinct top-1.")
display(diag_table)
readings.show(readings.diagnostics(diagnostics))

# %%
notebook.summary(p, "02_training", training_mix=mix.to_dict(), recipe_validation=validation.to_dict("records"),
                 final_loss={f"{d}/{lab}": h[-1]["loss"] for (d, lab), h in histories.items()},
                 diagnostics={f"{d}/{lab}": x for (d, lab), x in diagnostics.items()})
