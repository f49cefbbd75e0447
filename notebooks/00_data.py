# %% [markdown]
# # 00 · Data and protocol
#
# SemCORE (§4.1.1) evaluates on Flickr30K 1K and MS-COCO 5K: every image has five captions;
# text-to-image (T2I) retrieves the image of a caption, image-to-text (I2T) the captions of an
# image. This notebook loads the profile's corpus into one schema and fixes the protocol that
# every later notebook uses.
#
# **The embedded default** (profile `embedded`) needs no download: `semcore.data.embedded`
# renders small synthetic scenes (coloured shapes of two sizes at five positions on four
# backgrounds) and writes five differently worded captions per scene, each naming a random
# subset of the attributes with synonyms — so a caption fits several scenes and no method can
# be perfect. It is a stand-in with the shape of an image–caption benchmark, not a benchmark:
# its numbers are never comparable to the paper's.

# %% tags=["parameters"]
profile = "embedded"
overrides = {}

# %%
from semcore import notebook, pipeline, report
from semcore.data import embedded

p = notebook.setup(globals())
corpus = pipeline.corpus(p)
print(f"{corpus.name}: {len(corpus.images)} images, {len(corpus.captions)} captions")
for split in ("train", "test"):
    print(f"  {split}: {len(corpus.images_in(split))} images, {len(corpus.captions_in(split))} captions")
if p.dataset == "embedded":
    for attribute, values in embedded.describe_embedded().items():
        print(f"  {attribute}: " + "; ".join(f"{v} ({', '.join(w)})" for v, w in values.items()))

# %% [markdown]
# A few images with their captions (the first caption of each test image is held out as the
# image's identifier source, see below).

# %%
import textwrap

import matplotlib.pyplot as plt

images = pipeline.images(p)
sample = corpus.images_in("test")[:6]
with report.figure_style():
    fig, axes = plt.subplots(1, len(sample), figsize=(2.2 * len(sample), 3.2))
    for ax, im in zip(axes, sample):
        ax.imshow(images[im.id])
        ax.set_axis_off()
        caps = corpus.captions_of(im.id)[:3]
        ax.set_title("\n".join(textwrap.fill(c.text, 26) for c in caps), fontsize=6, loc="left")
    report.save_figure(fig, notebook.out_dir(p, "figures") / "00_samples")
plt.show()

# %% [markdown]
# ## Protocol
#
# Generative retrieval is transductive: the corpus items (test images for T2I, test captions
# for I2T) are memorised in training and the trie holds exactly them. Test queries (test
# captions for T2I, test images for I2T) are never identifier sources nor training inputs or
# targets. The paper builds image identifiers from MLLM-generated captions; this profile uses
# `caption_source: heldout` — one ground-truth caption per image (index
# `heldout_caption_index`) is set aside as the image's identifier source and pseudo-query and
# removed from the T2I queries, so T2I has four queries per test image. `pipeline.task`
# checks by provenance that no query leaks (`protocol.assert_no_query_leak`).

# %%
facts = {}
for direction in p.directions:
    t = pipeline.task(p, direction)
    roles = {r: sum(pr.role == r for pr in t.pairs) for r in ("train_query", "index", "pseudo_query")}
    facts[direction] = {"items": len(t.items), "corpus": len(t.corpus_ids),
                        "queries": len(t.queries), "pairs": roles}
    print(direction, facts[direction])
notebook.summary(p, "00_data", images=len(corpus.images), captions=len(corpus.captions), **facts)
