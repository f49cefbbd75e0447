# %% [markdown]
# # 02 · Training (paper §3.4)
#
# One model per direction and identifier scheme learns `<query, identifier>` pairs with the
# next-token loss on the identifier tokens only (equation 3): train-split captions → their
# image's identifier (T2I) or train images → their captions' identifiers (I2T), plus the
# memorisation of the corpus items (item → identifier, and for T2I the held-out caption as
# pseudo-query). The corpus pairs repeat `corpus_repeats` times per epoch.
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

# %%
notebook.summary(p, "02_training", final_loss={f"{d}/{lab}": h[-1]["loss"] for (d, lab), h in histories.items()})
