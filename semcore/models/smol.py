"""The `smol` backbone: a LLaVA-style MLLM over a pretrained causal LM and cached image features.

The image encoder (DINOv2) is frozen, so its features are computed once and cached outside the
model; what the model owns is the language model (SmolLM2-135M in production) and a trained
LLaVA-1.5 projector (Linear-GELU-Linear) from the feature width to the LM's hidden size. Each
image is T feature tokens, written into the prompt as T `<IMG_CONTEXT>` placeholders whose
embeddings the projected features replace, so prompts, training, decoding and GSV use it exactly
as they use InternVL.

`generate` computes the prompt embeddings once and hands the language model both `input_ids`
and `inputs_embeds`: transformers then runs the first step from the embeddings but keeps
`input_ids` as the prefix of the returned sequences and of what logits processors see, so the
trie processor's `prompt_length = input_ids.shape[1]` and `decode_free`'s slicing hold unchanged.
The language model is always built from the text config inside the wrapper (weights copied in),
never adopted as a ready module: adopting one shares its config object, and transformers then
resets that config's attention implementation to None, which silently changes its outputs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn
from transformers import (AutoConfig, AutoModelForCausalLM, PreTrainedConfig, PreTrainedModel,
                          PreTrainedTokenizerBase)
from transformers.configuration_utils import SubConfigSpec
from transformers.modeling_outputs import CausalLMOutputWithPast

from semcore.models import Backbone

IMAGE_TOKENS = ["<img>", "</img>", "<IMG_CONTEXT>", "<TXT_CONTEXT>"]  # the last: a sentence feature
PAD_TOKEN = "<pad>"
SENTENCE_DIM = 384  # all-MiniLM-L6-v2 (semcore.embeddings)
# LoRA goes on the language model's attention and MLP projections (Llama/Qwen2 names), wherever
# the language model sits (`language_model.` here, `model.language_model.` in InternVL).
LORA_TARGETS = r".*language_model\..*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
# The projectors trained in full next to the adapters: `projector` here, `multi_modal_projector`
# in InternVL. Both are named, since peft from 0.22 matches modules_to_save by whole name
# components (before, by string suffix, where "projector" matched both).
PROJECTORS = ["projector", "multi_modal_projector"]


class SmolMLLMConfig(PreTrainedConfig):
    """The text model's config plus the image interface (feature width, tokens per image, the
    placeholder token id) and, with `text_features`, the sentence-feature placeholder's id."""

    model_type = "semcore_smol"
    sub_configs_defaults = {"text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama")}

    text_config: dict | PreTrainedConfig | None = None
    feature_dim: int = 384
    n_image_tokens: int = 6
    image_token_id: int = 0
    text_features: bool = False  # text inputs also carry a frozen sentence embedding (one token)
    text_token_id: int = 0


class Projector(nn.Module):
    """LLaVA-1.5's vision-language connector: two linear layers with a GELU between."""

    def __init__(self, feature_dim: int, hidden_size: int):
        super().__init__()
        self.linear_1 = nn.Linear(feature_dim, hidden_size)
        self.act = nn.GELU()
        self.linear_2 = nn.Linear(hidden_size, hidden_size)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(features)))


def _fill(embeds: torch.Tensor, placeholders: torch.Tensor, projector: Projector,
          features: torch.Tensor, kind: str) -> torch.Tensor:
    """`embeds` with the placeholder positions replaced by the projected (n, T, d) features."""
    projected = projector(features.to(projector.linear_1.weight.dtype))
    n_placeholders = int(placeholders.sum())
    if n_placeholders != projected.shape[0] * projected.shape[1]:
        raise ValueError(f"{n_placeholders} {kind} placeholders for "
                         f"{projected.shape[0]}×{projected.shape[1]} {kind} feature tokens")
    return embeds.masked_scatter(placeholders[..., None], projected.to(embeds.dtype))


class SmolMLLM(PreTrainedModel):
    """A causal LM whose `<IMG_CONTEXT>` embeddings are projected cached image features.

    `pixel_values` is the (n_images, T, d) float tensor of the batch's image features in
    placeholder order (row-major over the batch), the same contract as InternVL's pixels.
    """

    config_class = SmolMLLMConfig
    base_model_prefix = ""
    # the attention implementation is the text model's; these let it be chosen for the wrapper
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    supports_gradient_checkpointing = True  # the text model's decoder layers checkpoint themselves

    def __init__(self, config: SmolMLLMConfig):
        super().__init__(config)
        self.language_model = AutoModelForCausalLM.from_config(config.text_config)
        self.projector = Projector(config.feature_dim, config.text_config.hidden_size)
        # its own connector: MiniLM's sentence space is not DINOv2's (both 384 wide)
        self.text_projector = (Projector(SENTENCE_DIM, config.text_config.hidden_size)
                               if config.text_features else None)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def embed(self, input_ids: torch.LongTensor, pixel_values: torch.Tensor | None = None,
              text_values: torch.Tensor | None = None) -> torch.Tensor:
        """Token embeddings with every image (and sentence-feature) placeholder replaced by its
        projected feature."""
        embeds = self.get_input_embeddings()(input_ids)
        if pixel_values is not None:
            embeds = _fill(embeds, input_ids == self.config.image_token_id, self.projector,
                           pixel_values, "image")
        if text_values is not None:
            if self.text_projector is None:
                raise ValueError("sentence features given to a model built without text_features")
            embeds = _fill(embeds, input_ids == self.config.text_token_id, self.text_projector,
                           text_values, "sentence")
        return embeds

    def forward(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None,
                pixel_values: torch.Tensor | None = None, labels: torch.LongTensor | None = None,
                text_values: torch.Tensor | None = None, **kwargs) -> CausalLMOutputWithPast:
        """The language model on the filled embeddings; `kwargs` (e.g. the Trainer's
        num_items_in_batch) go to it unchanged."""
        return self.language_model(inputs_embeds=self.embed(input_ids, pixel_values, text_values),
                                   attention_mask=attention_mask, labels=labels, **kwargs)

    @torch.no_grad()
    def generate(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None,
                 pixel_values: torch.Tensor | None = None, text_values: torch.Tensor | None = None,
                 **generate_kwargs):
        """The language model's `generate` from the filled prompt embeddings; the returned
        sequences start with `input_ids`, as a decoder-only model's do.

        A missing attention mask means no padding (as in `forward`), rather than letting
        `generate` guess padding from pad-token ids in the prompt.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return self.language_model.generate(input_ids=input_ids,
                                            inputs_embeds=self.embed(input_ids, pixel_values, text_values),
                                            attention_mask=attention_mask, **generate_kwargs)


def add_image_tokens(tokenizer: PreTrainedTokenizerBase) -> None:
    """Adds the image markers (and a pad token if there is none) in place; idempotent, so a fresh
    copy of the base tokenizer always gets the same ids."""
    tokenizer.add_tokens(IMAGE_TOKENS, special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})


def features_to_tensor(features: list[np.ndarray]) -> torch.Tensor:
    """Cached (T, d) float32 feature arrays, one per image → the (n, T, d) `pixel_values`."""
    return torch.from_numpy(np.stack(features).astype(np.float32, copy=False))


def _backbone(model: SmolMLLM, tokenizer: PreTrainedTokenizerBase) -> Backbone:
    bb = Backbone("smol", model, tokenizer, model.config.image_token_id,
                  model.config.n_image_tokens, pixel_values=features_to_tensor)
    if model.config.text_features:
        from semcore.embeddings import SentenceFeatures
        bb.text_token_id, bb.text_values = model.config.text_token_id, SentenceFeatures()
    return bb


def build_smol(lm: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, feature_dim: int,
               n_image_tokens: int, seed: int, text_features: bool = False) -> Backbone:
    """A SmolMLLM holding a copy of `lm`'s weights, with a freshly seeded projector.

    The tokenizer is extended in place (add_image_tokens) and the copied embeddings are resized
    to it; `lm` itself is left unchanged. The end token is the tokenizer's eos. The text config
    keeps `lm`'s own special ids (an added pad id would lie outside the embedding table until the
    resize); decoding passes pad and end ids explicitly. `text_features`: every text input also
    carries its frozen sentence embedding (semcore.embeddings.SentenceFeatures).
    """
    add_image_tokens(tokenizer)
    config = SmolMLLMConfig(text_config=lm.config.to_dict(), feature_dim=feature_dim,
                            n_image_tokens=n_image_tokens,
                            image_token_id=tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"),
                            text_features=text_features,
                            text_token_id=tokenizer.convert_tokens_to_ids("<TXT_CONTEXT>"))
    torch.manual_seed(seed)
    model = SmolMLLM(config)
    model.language_model.load_state_dict(lm.state_dict())
    model.language_model.resize_token_embeddings(len(tokenizer))
    return _backbone(model.eval(), tokenizer)


def load_smol(model_dir: str | Path, tokenizer: PreTrainedTokenizerBase) -> Backbone:
    """A saved SmolMLLM with the base tokenizer, extended as build_smol extended it."""
    add_image_tokens(tokenizer)
    model = SmolMLLM.from_pretrained(model_dir).eval()
    if tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>") != model.config.image_token_id:
        raise ValueError("the tokenizer's <IMG_CONTEXT> id differs from the saved model's")
    return _backbone(model, tokenizer)


def apply_lora(model: PreTrainedModel, r: int, alpha: int, dropout: float) -> PeftModel:
    """LoRA adapters on the language model's attention and MLP projections, with the projector
    trained in full; everything else (embeddings, a vision tower if any) frozen. Works for
    SmolMLLM and InternVLForConditionalGeneration; `merge_and_unload()` gives back the plain model.
    """
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=LORA_TARGETS,
                        modules_to_save=PROJECTORS)
    return get_peft_model(model, config)
