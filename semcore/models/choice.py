"""Which backbone a profile names, in one place: its tokenizer, a fresh model, a saved one, and
what it takes per image.

- `tiny`: a randomly initialised InternVL (vision tower on pixels), trained from scratch;
  the embedded default and the tests.
- `scratch`: a small Llama trained from scratch over the frozen DINOv2 features (the `smol`
  image path with `tiny_hidden` × `tiny_layers`): the fast backbone for real photos on CPU,
  where a vision tower trained from a few thousand images sees little.
- `smol`: SmolLM2-135M-Instruct (pretrained) over the frozen DINOv2 features.
- `internvl2_5-*`: the paper's backbones, native transformers checkpoints (GPU).

The two from-scratch backbones learn a byte-level BPE from the texts they may legitimately see
(never a test query); pretrained ones keep their tokenizer. Atomic identifiers are added tokens.
"""
from __future__ import annotations

from pathlib import Path

from semcore.models import Backbone

TOKENIZER_VOCAB = 4000  # the from-scratch backbones' BPE vocabulary
FROM_SCRATCH = ("tiny", "scratch")
ON_FEATURES = ("smol", "scratch")  # backbones that take cached DINOv2 features, not pixels


def takes_features(backbone: str) -> bool:
    return backbone in ON_FEATURES


def new_tokenizer(backbone: str, backbone_path: str, texts: list[str], new_tokens=()):
    """A fresh tokenizer for `backbone`: a BPE learned from `texts` for the from-scratch ones,
    the pretrained model's own otherwise; `new_tokens` (atomic IDs) are added."""
    from transformers import AutoTokenizer
    if backbone in FROM_SCRATCH:
        from semcore.models.tiny import train_tokenizer
        tokenizer = train_tokenizer(texts, TOKENIZER_VOCAB)
    elif backbone == "smol":
        from semcore.models.smollm2 import smollm2_dir
        tokenizer = AutoTokenizer.from_pretrained(smollm2_dir())
    else:
        tokenizer = AutoTokenizer.from_pretrained(backbone_path)
    tokenizer.add_tokens(list(new_tokens))
    return tokenizer


def new_backbone(backbone: str, backbone_path: str, texts: list[str], new_tokens=(), *,
                 image_size: int, hidden: int, layers: int, seed: int,
                 text_features: bool = False) -> Backbone:
    """A fresh (untrained or pretrained) model of the named kind, its tokenizer from
    new_tokenizer(texts, new_tokens); `text_features` (backbones on features only): text inputs
    also carry their frozen sentence embedding."""
    if backbone.startswith("internvl"):
        from semcore.models.internvl import add_tokens, load_internvl
        bb = load_internvl(backbone_path)  # the Trainer enables checkpointing
        add_tokens(bb, list(new_tokens))
        return bb
    tokenizer = new_tokenizer(backbone, backbone_path, texts, new_tokens)
    if backbone == "tiny":
        from semcore.models.tiny import build_tiny
        return build_tiny(tokenizer, image_size, hidden, layers, seed)
    from semcore import image_encoder
    from semcore.models.smol import build_smol
    lm = _pretrained_lm() if backbone == "smol" else _scratch_lm(tokenizer, hidden, layers, seed)
    return build_smol(lm, tokenizer, image_encoder.FEATURE_DIM, image_encoder.FEATURE_TOKENS, seed,
                      text_features)


def _pretrained_lm():
    from semcore.models.smollm2 import load_smollm2
    return load_smollm2()[0]


def _scratch_lm(tokenizer, hidden: int, layers: int, seed: int):
    """A randomly initialised Llama sized like the tiny backbone's language model."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2,
                         intermediate_size=hidden * 2, max_position_embeddings=1024,
                         tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id)
    return LlamaForCausalLM(config)


def load_backbone(backbone: str, model_dir: Path, tokenizer_dir: Path) -> Backbone:
    """A backbone saved by a training step (adapters merged), with its saved tokenizer."""
    from transformers import AutoTokenizer
    if backbone.startswith("internvl"):
        from semcore.models.internvl import load_internvl
        return load_internvl(str(model_dir))  # save_inputs put its tokenizer and processor there
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    if backbone == "tiny":
        from semcore.models.tiny import load_tiny
        return load_tiny(model_dir, tokenizer)
    from semcore.models.smol import load_smol
    return load_smol(model_dir, tokenizer)
