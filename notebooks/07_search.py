# %% [markdown]
# # 07 · Search demo
#
# Type a query, see what the trained SemCORE model retrieves from the test images: the
# trie-constrained beam search generates identifiers, GSV re-ranks the top-k (as the profile's
# `semcore` method does), and each image is shown with its SID — global ID in blue, lexical
# ID in pink. Change `query` here, or run
# `papermill -k semcore -p profile embedded -p query "a big red ball on the grass" …`.

# %% tags=["parameters"]
profile = "embedded"
overrides = {}
query = "a big red ball on the grass"

# %%
import matplotlib.pyplot as plt

from semcore import methods, notebook, pipeline, report

p = notebook.setup(globals(), declared=("query",))
semcore = methods.get("semcore")
found = pipeline.search(p, query, semcore, k=8)
table = pipeline.identifiers(p, "t2i", semcore)
images = pipeline.images(p)

with report.figure_style():
    fig, axes = plt.subplots(1, len(found), figsize=(1.6 * len(found), 2.4), squeeze=False)
    for rank, (ax, item) in enumerate(zip(axes[0], found), start=1):
        row = table.row(item)
        ax.imshow(images[item])
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"#{rank}", fontsize=7)
        ax.text(0, -0.08, table.global_parts[row], color="tab:blue", fontsize=6,
                fontweight="bold", transform=ax.transAxes, va="top")
        ax.text(0, -0.22, table.lexical_parts[row], color="deeppink", fontsize=6,
                transform=ax.transAxes, va="top")
    fig.suptitle(f"query: {query}", fontsize=8)
    report.save_figure(fig, notebook.out_dir(p, "figures") / "07_search")
plt.show()

# %%
notebook.summary(p, "07_search", query=query, found=found)
