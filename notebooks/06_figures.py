# %% [markdown]
# # 06 · Figures: Figure 3 sweep, beam curves and case studies (Figures 4, 5, 6)
#
# Case studies show a query, the item SemCORE ranks first, and that item's SID with the global
# ID in blue and the lexical ID in pink, as in the paper's Figures 4 and 5. Figure 6 shows
# "false negatives": the first-ranked item is not the annotated one, yet its identifier source
# text is close in meaning to the query (MiniLM cosine, highest first).

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
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from semcore import methods, notebook, pipeline, readings, report, tables
from semcore import sweep as sweeps
from semcore.embeddings import encode_texts

p = notebook.setup(globals())
figures = notebook.out_dir(p, "figures")
semcore = methods.get("semcore")

# %% [markdown]
# ## Figure 3 — cluster size × lexical ID length
# Collected from the papermill sweep the profile names (`fig3_sweep`, a file in `params/sweeps/`;
# `make sweep SWEEP=… PROFILE=…`), which `make reproduce` runs before this notebook. Read the grid
# and the method from that file: on small profiles the cluster sizes are scaled to the corpus.

# %%
fig3 = sweeps.load(p.fig3_sweep)
grid = sweeps.collect(fig3, p.profile)
t2i_grid = grid[grid["direction"] == "t2i"]
with report.figure_style():
    fig = report.curves_figure(t2i_grid, fig3.x, fig3.curves, sweeps.figure_title(fig3, p.profile),
                               "T2I R@1 (%), 95 % interval")
    report.save_figure(fig, figures / "fig3_cluster_size_lexical_length")
plt.show()
display(tables.grid(t2i_grid, fig3.x, fig3.curves))
readings.show(sweeps.reading(fig3, p.profile, "t2i", t2i_grid))

# %%
beam_rows = pd.DataFrame([pipeline.evaluate(p, d, semcore, b) for d in p.directions for b in p.beam_sweep])
with report.figure_style():
    fig, ax = plt.subplots(figsize=(4.5, 3))
    for direction, rows in beam_rows.groupby("direction", sort=False):
        ax.errorbar(rows["beam"], rows["R@1"], yerr=report.interval_errors(rows),
                    marker="o", capsize=2, label=f"{direction.upper()} R@1")
    ax.set_xlabel("beam size")
    ax.set_ylabel("SemCORE R@1 (%), 95 % interval")
    ax.legend()
    report.save_figure(fig, figures / "table5_beam_curve")
plt.show()
readings.show(readings.beams(beam_rows))


# %%
def sid_caption(ax, table, item_id):
    """Global ID in blue, lexical ID in pink, under an axis (Figure 4 colours)."""
    row = table.row(item_id)
    ax.text(0.0, -0.08, table.global_parts[row], color="tab:blue", transform=ax.transAxes,
            fontsize=7, va="top", fontweight="bold")
    ax.text(0.0, -0.2, table.lexical_parts[row] or table.identifiers[row], color="deeppink",
            transform=ax.transAxes, fontsize=7, va="top")


def case_figure(direction, queries, stem):
    """One panel per query: T2I shows the query text over the first-ranked image; I2T shows
    the query image under the first-ranked caption. The first-ranked item's SID is below.
    Returns whether each panel's first-ranked item is relevant."""
    task, table = pipeline.task(p, direction), pipeline.identifiers(p, direction, semcore)
    with report.figure_style():
        fig, axes = plt.subplots(1, len(queries), figsize=(2.4 * len(queries), 3.4), squeeze=False)
        for ax, q in zip(axes[0], queries):
            top = ranked[direction][q.id][0]
            shown, text = (top, q.text) if direction == "t2i" else (q.image_id, task.item(top).source_text)
            ax.imshow(images[shown])
            ax.set_title(textwrap.fill(text, 28), fontsize=6)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_ylabel("correct" if top in q.relevant else "not annotated", fontsize=6)
            sid_caption(ax, table, top)
        report.save_figure(fig, figures / stem)
    plt.show()
    return [ranked[direction][q.id][0] in q.relevant for q in queries]


images = pipeline.images(p)
ranked = {d: pipeline.rankings(p, d, semcore) for d in p.directions}
for direction in p.directions:
    queries = list(pipeline.task(p, direction).queries)
    correct = case_figure(direction, queries[:: max(1, len(queries) // 4)][:4], f"fig4_case_study_{direction}")
    readings.show(readings.cases(correct, f"{direction.upper()} panels (queries taken at even steps)"))

# %% [markdown]
# ## Figure 6 — false negatives (T2I)

# %%
if "t2i" in p.directions:
    task = pipeline.task(p, "t2i")
    wrong = [q for q in task.queries if ranked["t2i"][q.id][0] not in q.relevant]
    if wrong:
        query_vecs = encode_texts([q.text for q in wrong])
        top_vecs = encode_texts([task.item(ranked["t2i"][q.id][0]).source_text for q in wrong])
        similarity = (query_vecs * top_vecs).sum(axis=1)
        chosen = [wrong[i] for i in np.argsort(-similarity, kind="stable")[:4]]
        case_figure("t2i", chosen, "fig6_false_negatives")
        readings.show(readings.false_negatives(len(task.queries), len(wrong), sorted(similarity)[-4:]))

# %%
notebook.summary(p, "06_figures", figures=sorted(x.name for x in figures.glob("*.png")))
