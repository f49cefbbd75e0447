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
