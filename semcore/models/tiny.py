"""The `tiny` backbone: a randomly initialised InternVL built from transformers config classes.

It is the same architecture and code path as the paper's InternVL2.5 (vision tower, pixel-
shuffle projector, Qwen2 language model, IMG_CONTEXT placeholders), only small enough to train
from scratch in a minute on two CPU cores. Its tokenizer is a byte-level BPE learned from the
texts the model may legitimately see (training captions, identifiers, prompt words), never
from test queries; byte-level so that any unseen query word still tokenizes.
"""
from __future__ import annotations

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (InternVLConfig, InternVLForConditionalGeneration, InternVLVisionConfig,
                          PreTrainedTokenizerFast, Qwen2Config)

from semcore.models import Backbone

SPECIAL = ["<pad>", "<eos>", "<img>", "</img>", "<IMG_CONTEXT>"]
GRID = 8  # image_size / GRID px patches → 8×8 patches → pixel shuffle 0.5 → 16 image tokens
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def train_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE over the given texts (deterministic for the same texts). Digits are split
    one by one, as the Llama/SmolLM2 tokenizers do: a numeric identifier is then a digit sequence
    over ten shared tokens, not arbitrary merges of its digits that each occur a few times."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(sorted(set(texts)), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>",
                                   additional_special_tokens=SPECIAL[2:])


def to_pixel_values(images: list[np.ndarray]) -> torch.Tensor:
    """uint8 H×W×3 images → normalised float (N, 3, H, W), as InternVL's processor does."""
    arr = np.stack(images).astype(np.float32) / 255.0
    arr = (arr - MEAN) / STD
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


def build_tiny(tokenizer: PreTrainedTokenizerFast, image_size: int, hidden: int, layers: int,
               seed: int) -> Backbone:
    torch.manual_seed(seed)
    vision = InternVLVisionConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=128, image_size=[image_size, image_size],
                                  patch_size=[image_size // GRID] * 2)
    text = Qwen2Config(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                       num_attention_heads=4, num_key_value_heads=2, intermediate_size=hidden * 2,
                       max_position_embeddings=1024, tie_word_embeddings=True,
                       pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                       bos_token_id=tokenizer.eos_token_id)
    image_token_id = tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>")
    config = InternVLConfig(vision_config=vision, text_config=text, image_token_id=image_token_id,
                            downsample_ratio=0.5, vision_feature_layer=-1)
    model = InternVLForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return Backbone("tiny", model, tokenizer, image_token_id, n_image_tokens=16,
                    pixel_values=to_pixel_values)


def load_tiny(model_dir, tokenizer: PreTrainedTokenizerFast) -> Backbone:
    model = InternVLForConditionalGeneration.from_pretrained(model_dir)
    model.eval()
    return Backbone("tiny", model, tokenizer, model.config.image_token_id, 16, to_pixel_values)
