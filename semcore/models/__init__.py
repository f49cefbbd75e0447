"""Backbones behind one interface: a causal (M)LLM, its tokenizer and its image input.

Every backbone is used the same way by training, decoding and GSV: prompts are token ids with
`image_token_id` placeholders (n_image_tokens per image) that the model fills with image
features, exactly as InternVL does; `pixel_values` turns uint8 images into the model's input.
Backbones that read frozen sentence embeddings of their text inputs (`text_features: minilm`)
also give each text input one `text_token_id` placeholder, filled from `text_values`.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch


@dataclass
class Backbone:
    name: str
    model: torch.nn.Module
    tokenizer: object  # a transformers PreTrainedTokenizerFast
    image_token_id: int
    n_image_tokens: int
    pixel_values: Callable[[list[np.ndarray]], torch.Tensor]
    bf16: bool = False  # inference under bfloat16 autocast (the profile's precision)
    text_token_id: int = -1  # the placeholder of a text input's sentence feature, if it has them
    text_values: Callable[[list[str]], torch.Tensor] | None = None  # embeddings.SentenceFeatures

    def feature_inputs(self, batch, images: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """The image (and sentence) feature inputs of a batch of prompts.Encoded, in placeholder
        order: what training, decoding and GSV pass to the model beside the token ids."""
        out = {}
        image_ids = [i for e in batch for i in e.images]
        if image_ids:
            out["pixel_values"] = self.pixel_values([images[i] for i in image_ids])
        texts = [t for e in batch for t in e.texts]
        if texts:
            out["text_values"] = self.text_values(texts)
        return out

    def prepare_texts(self, texts) -> None:
        """Encode the sentence features of a whole loop's texts at once, before the loop."""
        if self.text_values is not None:
            self.text_values.prepare(texts)

    def inference(self) -> contextlib.ExitStack:
        """The context every decoding, GSV and captioning forward runs in: no gradients, and
        bfloat16 autocast when the profile's precision is bf16."""
        stack = contextlib.ExitStack()
        stack.enter_context(torch.no_grad())
        if self.bf16:
            device = next(self.model.parameters()).device.type
            stack.enter_context(torch.autocast(device, dtype=torch.bfloat16))
        return stack

    @property
    def eos_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id

    @property
    def max_length(self) -> int:
        """The most tokens (prompt plus generated) the language model has positions for."""
        return self.model.config.get_text_config().max_position_embeddings

    def encode(self, text: str) -> list[int]:
        """Token ids of a text fragment, without special tokens."""
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]
