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
profile = "embedded"
overrides = {}

# %%
from semcore import notebook, pipeline, report

p = notebook.setup(globals())
histories = {(d, m.label): pipeline.loss_history(p, d, m) for d, m in pipeline.planned_models(p)}

# %%
import pandas as pd

mix = pd.DataFrame({d: pipeline.training_mix(p, d) for d in p.directions}).fillna(0).astype(int)
mix.index.name = "examples per epoch"
report.write_table(mix.reset_index(), notebook.out_dir(p, "tables") / "training_mix",
                   f"Training examples per epoch by kind ({p.profile} profile, corpus_repeats "
                   f"{p.corpus_repeats}, {p.epochs} epochs, learning rate {p.learning_rate}).")
mix

# %% [markdown]
# ## Choosing the recipe on the validation split
# The learning rate and the number of epochs were chosen on a **validation split carved from the
# train split** (`evaluate_on: validation`: `validation_images` train images, drawn by seed, take
# the place of the test images, their captions become the queries, and the test split is dropped
# from every step), never on test. The rows: SemCORE's identifiers without GSV (T2I), trained
# with the profile's setting and with its neighbours. The profile's setting should be the best
# row or within the noise of it: R@1 lo and hi bound its 95 % bootstrap interval over queries.

# %%
from semcore import methods

sid = methods.get(pipeline.RECIPE_METHOD)
validation = pd.DataFrame([
    {"setting": name, "learning rate": q.learning_rate, "epochs": q.epochs,
     "queries": len(pipeline.task(q, "t2i").queries),
     **{k: v for k, v in pipeline.evaluate(q, "t2i", sid).items() if k in ("R@1", "R@1 lo", "R@1 hi", "R@5", "R@10")},
     "final loss/token": round(pipeline.loss_history(q, "t2i", sid)[-1]["loss"], 3)}
    for name, q in pipeline.recipe_validation_runs(p).items()])
report.write_table(validation, notebook.out_dir(p, "tables") / "recipe_validation",
                   f"The training recipe on the validation split ({p.validation_images} train "
                   f"images carved out as corpus, their captions as queries; {p.profile} profile, "
                   "T2I, SemCORE's identifiers without GSV, beam "
                   f"{p.beam_size}). No test data is used.")
validation

# %%
import matplotlib.pyplot as plt

with report.figure_style():
    fig, axes = plt.subplots(1, len(p.directions), figsize=(4.5 * len(p.directions), 3), squeeze=False)
    for ax, direction in zip(axes[0], p.directions):
        for (d, label), hist in histories.items():
            if d == direction:
                ax.plot([h["epoch"] for h in hist], [h["loss"] for h in hist], label=label)
        ax.set_title(direction.upper())
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        ax.legend(fontsize=6)
    report.save_figure(fig, notebook.out_dir(p, "figures") / "02_loss_curves")
plt.show()

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
# - *uniform loss/token*: ln(distinct corpus identifiers) / their mean tokens, the loss per token
#   of a model that knows the set of identifiers but not which one a query asks for. A final
#   loss near or above it: the mapping was not learnt.
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
                   f"{p.backbone}, test-split queries, trie-constrained beam {p.beam_size}: final "
                   "training loss per target token against a uniform choice among the distinct "
                   "corpus identifiers, indexing accuracy (each corpus item's own indexing input "
                   "decoded to its identifier), distinct top-1 identifiers against the most "
                   "possible (distinct relevant identifiers, one per query), mean tokens of the "
                   "emitted and of the corpus identifiers, the most frequent top-1 and its share "
                   "of queries; collapsed: under half the possible distinct top-1.")
diag_table

# %%
notebook.summary(p, "02_training", training_mix=mix.to_dict(), recipe_validation=validation.to_dict("records"),
                 final_loss={f"{d}/{lab}": h[-1]["loss"] for (d, lab), h in histories.items()},
                 diagnostics={f"{d}/{lab}": x for (d, lab), x in diagnostics.items()})
