"""The paper's backbones: InternVL2.5 checkpoints in transformers' native format.

InternVL2.5-1B/2B are fine-tuned in full, 4B/8B with LoRA (`smol.apply_lora` targets InternVL's
language model too). A checkpoint is a hub id or folder with `InternVLForConditionalGeneration`
weights and `InternVLProcessor` files: an "-hf" release, or an OpenGVLab (trust_remote_code)
repo converted with transformers' InternVL conversion script.

The processor is read by its parts (tokenizer, image processor, `image_seq_length` from
processor_config.json), not built as an `InternVLProcessor`: in transformers 5 that class
refuses to exist without a video processor, which needs torchvision, which this project does
not depend on; the parts are all the processor itself uses for images. The tokenizer names the
image tokens (start / end / context) as the processor reads them; loading checks that
prompts.py's literal "<img>", "</img>" encode to them, so a prompt is token for token what the
processor writes for one image.

One tile per image: InternVL's processor may split an image into up to 12 tiles plus a
thumbnail (`crop_to_patches`, dynamic tiling), each `image_seq_length` tokens. SemCORE's
prompts put exactly `n_image_tokens` placeholders per image, so every image is resized to one
tile (448 px, 256 tokens for InternVL2.5): a fixed, short prompt per image and per GSV candidate.
"""
from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from transformers import (AutoImageProcessor, AutoTokenizer, BaseImageProcessor,
                          GotOcr2ImageProcessorPil, InternVLConfig,
                          InternVLForConditionalGeneration, InternVLVisionConfig,
                          PreTrainedModel, PreTrainedTokenizerBase, PreTrainedTokenizerFast,
                          Qwen2Config)
from transformers.utils import cached_file

from semcore.models import Backbone
from semcore.models.tiny import train_tokenizer

IMAGE_MARKERS = {"start_image_token": "<img>", "end_image_token": "</img>"}
DEFAULT_IMAGE_SEQ_LENGTH = 256  # InternVLProcessor's default when processor_config.json lacks it
PROCESSOR_CONFIG = "processor_config.json"
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    """bf16 where the GPU supports it (how the paper trains 1B-8B models), float32 elsewhere."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_internvl(path: str | Path, dtype: torch.dtype | None = None,
                  gradient_checkpointing: bool = False,
                  device: str | torch.device | None = None) -> Backbone:
    """Model, tokenizer and one-tile image input of a native InternVL checkpoint.

    `device` defaults to CUDA when present; inputs built on the CPU (collator, left_padded)
    must be moved to `bb.model.device` by the caller (the Trainer does it for training).
    `gradient_checkpointing` trades compute for activation memory when fine-tuning.
    The end token is the tokenizer's eos (Qwen2: <|im_end|>); a missing pad token becomes the
    eos (padding is always masked), so no embedding row is added for it.
    """
    device = torch.device(device) if device is not None else default_device()
    model = InternVLForConditionalGeneration.from_pretrained(
        path, dtype=dtype or default_dtype(device), device_map=str(device))
    tokenizer = AutoTokenizer.from_pretrained(path)
    image_processor = AutoImageProcessor.from_pretrained(path)
    n_image_tokens = _image_seq_length(path)
    _check_image_interface(model, tokenizer, image_processor, n_image_tokens)
    if tokenizer.eos_token_id is None:
        raise ValueError(f"the tokenizer of {path} has no eos token to end identifiers with")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    _fit_embeddings(model, tokenizer)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    if gradient_checkpointing:
        model.activation_checkpointing_enable()
    model.eval()
    return Backbone("internvl", model, tokenizer, model.config.image_token_id, n_image_tokens,
                    pixel_values=partial(one_tile_pixel_values, image_processor))


def save_inputs(bb: Backbone, folder: str | Path) -> None:
    """Writes what load_internvl reads besides the weights (tokenizer, image processor, image
    tokens per tile), so a fine-tuned model's folder loads on its own."""
    bb.tokenizer.save_pretrained(folder)
    bb.pixel_values.args[0].save_pretrained(folder)
    (Path(folder) / PROCESSOR_CONFIG).write_text(json.dumps({"image_seq_length": bb.n_image_tokens}))


def one_tile_pixel_values(image_processor: BaseImageProcessor,
                          images: list[np.ndarray]) -> torch.Tensor:
    """uint8 H×W×3 images → (N, 3, S, S) float pixels, each image resized to one S px tile."""
    out = image_processor(images=list(images), crop_to_patches=False,
                          input_data_format="channels_last", return_tensors="pt")
    return out["pixel_values"]


def add_tokens(bb: Backbone, tokens: Sequence[str]) -> list[int]:
    """Adds `tokens` to the vocabulary as atomic entries (e.g. atomic identifiers) and grows the
    language model's input and output embeddings to match; returns their ids.

    Tokens already present keep their ids. They are plain added tokens, not special ones, so
    decoding with skip_special_tokens still writes them. Call it before `apply_lora`: adapters
    freeze the embeddings, whose new rows must be trained.
    """
    if hasattr(bb.model, "peft_config"):
        raise ValueError("add tokens before wrapping the model with LoRA adapters")
    bb.tokenizer.add_tokens(list(tokens))
    _fit_embeddings(bb.model, bb.tokenizer)
    return bb.tokenizer.convert_tokens_to_ids(list(tokens))


def _image_seq_length(path: str | Path) -> int:
    """The processor's image tokens per tile, read from processor_config.json as it reads it."""
    found = cached_file(str(path), PROCESSOR_CONFIG, _raise_exceptions_for_missing_entries=False)
    if found is None:
        return DEFAULT_IMAGE_SEQ_LENGTH
    config = json.loads(Path(found).read_text())
    return int(config.get("image_seq_length", DEFAULT_IMAGE_SEQ_LENGTH))


def _check_image_interface(model: InternVLForConditionalGeneration,
                           tokenizer: PreTrainedTokenizerBase, image_processor: BaseImageProcessor,
                           n_image_tokens: int) -> None:
    """Fails early where the processor's view of an image and the model's would disagree."""
    config = model.config
    context = getattr(tokenizer, "context_image_token", None)
    if context is None or tokenizer.convert_tokens_to_ids(context) != config.image_token_id:
        raise ValueError(f"the tokenizer's context image token {context!r} is not the model's "
                         f"image_token_id {config.image_token_id}")
    for name, literal in IMAGE_MARKERS.items():
        token = getattr(tokenizer, name, None)
        ids = tokenizer(literal, add_special_tokens=False)["input_ids"]
        if token is None or ids != [tokenizer.convert_tokens_to_ids(token)]:
            raise ValueError(f"prompts write {literal!r} for the processor's {name} {token!r}, "
                             f"but it encodes to {ids}")
    vision = config.vision_config
    size = image_processor.size
    if [size["height"], size["width"]] != list(vision.image_size):
        raise ValueError(f"image processor tiles are {size}, the vision tower expects "
                         f"{vision.image_size}")
    per_side = vision.image_size[0] // vision.patch_size[0]
    expected = round((per_side * config.downsample_ratio) ** 2)
    if n_image_tokens != expected:
        raise ValueError(f"processor image_seq_length {n_image_tokens} != the {expected} tokens "
                         "the model makes from one tile")


def _fit_embeddings(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Makes the embedding table exactly one row per tokenizer entry.

    The trie and its logits processor size the vocabulary by len(tokenizer). A table padded past
    it (rows no token id reaches) is cut back; tokens past the table (added tokens) get new
    rows, drawn around the mean embedding (transformers' mean resizing).
    """
    size = len(tokenizer)
    if max(tokenizer.get_vocab().values()) >= size:
        raise ValueError("the tokenizer's ids are not contiguous; cannot size embeddings to it")
    if model.get_input_embeddings().weight.shape[0] != size:
        model.resize_token_embeddings(size)


def write_tiny_checkpoint(folder: Path, texts: list[str], image_size: int = 56,
                          vocab_size: int = 400, seed: int = 0) -> Path:
    """A randomly initialised native InternVL checkpoint, laid out as an "-hf" release.

    The offline stand-in for InternVL2.5 in tests and CPU smoke runs: Qwen2 language model,
    InternViT-style vision tower (14 px patches, pixel shuffle 0.5), GotOcr2 image processor,
    a byte-level BPE (learned from `texts`) with InternVL's named image tokens and Qwen2's
    <|im_end|> / <|endoftext|> as eos / pad, a ChatML chat template, and processor_config.json
    with image_seq_length, which is what InternVLProcessor.save_pretrained writes besides the
    parts (it cannot be built without torchvision, see the module docstring).
    """
    if image_size % 28:
        raise ValueError("image_size must be a multiple of 28 (14 px patches, pixel shuffle 0.5)")
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _tiny_tokenizer(texts, vocab_size)
    n_image_tokens = (image_size // 28) ** 2
    torch.manual_seed(seed)
    vision = InternVLVisionConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=64, image_size=[image_size, image_size],
                                  patch_size=[14, 14])
    text = Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, intermediate_size=64,
                       max_position_embeddings=512, tie_word_embeddings=True,
                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                       bos_token_id=tokenizer.pad_token_id)
    config = InternVLConfig(vision_config=vision, text_config=text,
                            image_token_id=tokenizer.context_image_token_id,
                            image_seq_length=n_image_tokens, downsample_ratio=0.5,
                            vision_feature_layer=-1)
    model = InternVLForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    GotOcr2ImageProcessorPil(size={"height": image_size, "width": image_size},
                             image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD,
                             do_convert_rgb=True).save_pretrained(folder)
    (folder / PROCESSOR_CONFIG).write_text(json.dumps(
        {"image_seq_length": n_image_tokens, "processor_class": "InternVLProcessor"}, indent=2))
    return folder


def _tiny_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    base = train_tokenizer(texts, vocab_size)  # has <img>, </img>, <IMG_CONTEXT> as special tokens
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=base.backend_tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        extra_special_tokens={**IMAGE_MARKERS, "context_image_token": "<IMG_CONTEXT>",
                              "video_token": "<video>"})
    tokenizer.add_special_tokens({"extra_special_tokens": ["<|im_start|>"]},
                                 replace_extra_special_tokens=False)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


# ChatML with each image written as one <IMG_CONTEXT>, which the processor expands to a tile.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<IMG_CONTEXT>\n"
    "{% else %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
