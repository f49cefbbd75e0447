# %% [markdown]
# # Sweep point
#
# One setting of a parameter sweep (`make sweep SWEEP=… PROFILE=…`, see `semcore.sweep`): the
# profile plus this point's overrides, the point's method (the sweep's unless the point names
# one) evaluated in every direction. The
# collected sweep is plotted by notebook 06.

# %% tags=["parameters"]
profile = "embedded"  # type: str  the settings of params/<profile>.yaml
overrides = {}  # type: dict  several settings as one mapping
sweep = "fig3"  # type: str  params/sweeps/<sweep>.yaml
point = {}  # type: dict  this point's own settings (also inside overrides), which name its result
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

from semcore import methods, notebook, pipeline
from semcore import sweep as sweeps

p = notebook.setup(globals(), declared=("sweep", "point"))
spec = sweeps.load(sweep)
if point not in spec.all_points():
    raise ValueError(f"point {point!r} is not a point of sweep {sweep!r}")
rows = [pipeline.evaluate(p, d, methods.get(spec.method_of(point))) for d in p.directions]
sweeps.save_point(p, spec, point, rows)
pd.DataFrame(rows)
