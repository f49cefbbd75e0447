"""The InternVL backbone on a tiny random native checkpoint: it loads like an "-hf" release, its
prompts are what InternVLProcessor writes for one image, it trains (fully, with LoRA, with
activation checkpointing), its constrained beam search scores identifiers by the model's own
sequence log-probabilities (eq. 1), and it captions."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import (AutoImageProcessor, InternVLForConditionalGeneration, InternVLProcessor,
                          ProcessorMixin)

from scoring import assert_exhaustive_with_exact_scores
from semcore import prompts, train as train_mod
from semcore.captioning import write_captions
from semcore.constrained import constrained_beam_search
from semcore.models.internvl import (add_tokens, default_device, default_dtype, load_internvl,
                                     write_tiny_checkpoint)
from semcore.models.smol import apply_lora
from semcore.retrieval import left_padded
from semcore.train import TrainConfig, train
from semcore.trie import Trie

TEXTS = ["a red ball on the left", "a big blue box at night", "two small rings"]
IDS = ["red ball", "blue box", "ring"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("internvl") / "tiny-hf",
                                 TEXTS * 5 + prompts.TEMPLATE_WORDS + IDS)


@pytest.fixture(scope="module")
def images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {f"im{i}": rng.integers(0, 255, (40 + 4 * i, 56, 3), dtype=np.uint8) for i in range(6)}


def examples(bb) -> list[prompts.Encoded]:
    out = [prompts.image_query(bb, f"im{i}", IDS[i % 3]) for i in range(6)]
    return out + [prompts.text_query(bb, t, IDS[i]) for i, t in enumerate(TEXTS)]


def processor_of(checkpoint: Path, bb, monkeypatch) -> InternVLProcessor:
    """The real InternVLProcessor over the loaded parts. Its constructor insists on a video
    processor (torchvision only); images never touch it, so that one class check is skipped."""
    check = ProcessorMixin.check_argument_for_proper_class
    monkeypatch.setattr(ProcessorMixin, "check_argument_for_proper_class",
                        lambda self, name, arg: None if name == "video_processor"
                        else check(self, name, arg))
    return InternVLProcessor(image_processor=AutoImageProcessor.from_pretrained(checkpoint),
                             tokenizer=bb.tokenizer, video_processor=None,
                             image_seq_length=bb.n_image_tokens)



def test_loads_like_a_native_release(checkpoint):
    bb = load_internvl(checkpoint)
    tok = bb.tokenizer
    assert isinstance(bb.model, InternVLForConditionalGeneration) and not bb.model.training
    assert bb.model.device.type == default_device().type  # float32 on CPU, bf16 on a recent GPU
    assert bb.model.dtype == default_dtype(bb.model.device)
    assert bb.n_image_tokens == 4
    assert bb.image_token_id == tok.convert_tokens_to_ids("<IMG_CONTEXT>")
    assert tok.convert_ids_to_tokens([bb.eos_id, bb.pad_id]) == ["<|im_end|>", "<|endoftext|>"]
    assert bb.encode("<img>") == [tok.start_image_token_id]
    assert bb.encode("</img>") == [tok.end_image_token_id]
    assert bb.model.get_input_embeddings().weight.shape[0] == len(tok)
    assert bb.pixel_values([np.zeros((30, 90, 3), np.uint8)] * 3).shape == (3, 3, 56, 56)


def test_prompts_are_what_the_processor_writes_for_one_image(checkpoint, images, monkeypatch):
    bb = load_internvl(checkpoint)
    processor = processor_of(checkpoint, bb, monkeypatch)
    image = images["im3"]
    ours = prompts.image_query(bb, "im3")
    theirs = processor(images=[image], text="image: <IMG_CONTEXT>\nid:", crop_to_patches=False,
                       return_tensors="pt")
    assert theirs["input_ids"][0].tolist() == ours.prompt
    assert torch.equal(theirs["pixel_values"], bb.pixel_values([image]))
    # the processor's default dynamic tiling would make this wide image 3 tiles + a thumbnail
    tiled = processor(images=[np.zeros((56, 168, 3), np.uint8)], text="<IMG_CONTEXT>")
    assert tiled["input_ids"][0].count(bb.image_token_id) == 4 * bb.n_image_tokens


def test_loads_the_hub_layout_of_converted_checkpoints(checkpoint, tmp_path):
    """-hf releases were saved by transformers 4: image tokens under extra_special_tokens, the
    image processor named GotOcr2ImageProcessorFast (read here without torchvision)."""
    hub = shutil.copytree(checkpoint, tmp_path / "hub")
    tok_config = json.loads((hub / "tokenizer_config.json").read_text())
    named = {k: tok_config.pop(k) for k in ("start_image_token", "end_image_token",
                                            "context_image_token", "video_token")}
    tok_config["extra_special_tokens"] = named
    (hub / "tokenizer_config.json").write_text(json.dumps(tok_config))
    image_config = json.loads((hub / "preprocessor_config.json").read_text())
    image_config.update(image_processor_type="GotOcr2ImageProcessorFast",
                        processor_class="InternVLProcessor")
    (hub / "preprocessor_config.json").write_text(json.dumps(image_config))
    bb, reference = load_internvl(hub), load_internvl(checkpoint)
    assert prompts.gsv_t2i(bb, "a red ball", [("im1", "red ball"), ("im2", "ring")]) == \
        prompts.gsv_t2i(reference, "a red ball", [("im1", "red ball"), ("im2", "ring")])


def test_inconsistent_image_token_count_is_refused(checkpoint, tmp_path):
    broken = shutil.copytree(checkpoint, tmp_path / "broken")
    (broken / "processor_config.json").write_text(json.dumps({"image_seq_length": 256}))
    with pytest.raises(ValueError, match="image_seq_length 256"):
        load_internvl(broken)


def test_a_missing_pad_token_becomes_the_eos(checkpoint, tmp_path):
    folder = shutil.copytree(checkpoint, tmp_path / "no-pad")
    tok_config = json.loads((folder / "tokenizer_config.json").read_text())
    del tok_config["pad_token"]
    (folder / "tokenizer_config.json").write_text(json.dumps(tok_config))
    bb = load_internvl(folder)
    assert bb.pad_id == bb.eos_id == bb.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert bb.model.get_input_embeddings().weight.shape[0] == len(bb.tokenizer)


def test_full_training_decreases_loss_and_saves(checkpoint, images, tmp_path):
    bb = load_internvl(checkpoint)
    history = train(bb, examples(bb), images, TrainConfig(2, 4, 3e-3, seed=0), tmp_path / "full")
    assert history[-1]["loss"] < history[0]["loss"]
    saved = InternVLForConditionalGeneration.from_pretrained(tmp_path / "full" / "model").eval()
    batch = train_mod.Collator(bb, images)(examples(bb)[:3])
    with torch.no_grad():
        assert torch.equal(saved(**batch).logits, bb.model(**batch).logits)


def test_lora_with_gradient_checkpointing_trains_adapters_then_merges(checkpoint, images,
                                                                      tmp_path):
    bb = load_internvl(checkpoint, gradient_checkpointing=True)
    assert bb.model.is_activation_checkpointing
    original = {n: p.clone() for n, p in bb.model.state_dict().items()}
    bb = dataclasses.replace(bb, model=apply_lora(bb.model, r=4, alpha=8, dropout=0.0))
    trainable = [n for n, p in bb.model.named_parameters() if p.requires_grad]
    assert all("lora_" in n or "multi_modal_projector.modules_to_save" in n for n in trainable)
    assert any("language_model" in n and "q_proj.lora_B" in n for n in trainable)
    history = train(bb, examples(bb), images, TrainConfig(2, 4, 1e-2, seed=0), tmp_path / "lora")
    assert history[-1]["loss"] < history[0]["loss"]
    assert type(bb.model) is InternVLForConditionalGeneration  # train() merges the adapters
    changed = {n for n, p in bb.model.state_dict().items() if not torch.equal(p, original[n])}
    assert any("language_model" in n and "q_proj" in n for n in changed)
    assert all("language_model" in n or "multi_modal_projector" in n for n in changed)
    saved = InternVLForConditionalGeneration.from_pretrained(tmp_path / "lora" / "model").eval()
    batch = train_mod.Collator(bb, images)(examples(bb)[:3])
    with torch.no_grad():
        assert torch.equal(saved(**batch).logits, bb.model(**batch).logits)


def test_constrained_beam_search_returns_trie_identifiers_scored_by_the_model(checkpoint, images):
    bb = load_internvl(checkpoint)
    targets = [prompts.identifier_target(bb, i) for i in IDS]
    trie = Trie.build(targets, vocab_size=len(bb.tokenizer))
    queries = [prompts.image_query(bb, "im0"), prompts.text_query(bb, "two small rings"),
               prompts.image_query(bb, "im4")]
    inputs = left_padded(bb, queries, images)
    assert len({len(q.prompt) for q in queries}) > 1  # rows really are left padded
    with torch.no_grad():
        results = constrained_beam_search(bb.model, trie, bb.eos_id, len(IDS), trie.max_length,
                                          pad_token_id=bb.pad_id, **inputs)
        assert_exhaustive_with_exact_scores(bb, trie, targets, queries, results, images)


def test_added_tokens_are_atomic_and_get_embedding_rows(checkpoint, images):
    bb = load_internvl(checkpoint)
    rows = bb.model.get_input_embeddings().weight.shape[0]
    new = add_tokens(bb, ["<id_7>", "<id_8>"])
    assert new == [rows, rows + 1] and add_tokens(bb, ["<id_8>"]) == [rows + 1]
    assert bb.encode(" <id_8>")[-1] == rows + 1
    assert bb.tokenizer.decode(bb.encode(" <id_7>"), skip_special_tokens=True) == " <id_7>"
    embeddings = bb.model.get_input_embeddings().weight
    assert embeddings.shape[0] == len(bb.tokenizer) == rows + 2
    assert bb.model.lm_head.weight is embeddings  # still tied
    query = prompts.image_query(bb, "im0", "<id_7>")
    out = bb.model(input_ids=torch.tensor([query.prompt + query.target]),
                   pixel_values=bb.pixel_values([images["im0"]]))
    assert out.logits.shape[-1] == rows + 2
    with pytest.raises(ValueError, match="before"):
        add_tokens(dataclasses.replace(bb, model=apply_lora(bb.model, 2, 4, 0.0)), ["<id_9>"])


def test_captions_after_caption_training(checkpoint, images, tmp_path):
    bb = load_internvl(checkpoint)
    caption_examples = [prompts.caption(bb, f"im{i}", IDS[i % 3]) for i in range(6)]
    train(bb, caption_examples, images, TrainConfig(4, 3, 3e-2, seed=0), tmp_path / "captioner")
    captions = write_captions(bb, sorted(images), images, max_new_tokens=4, batch_size=4)
    assert sorted(captions) == sorted(images)
    assert all(set(c.split()) <= set(" ".join(IDS).split()) for c in captions.values())


def test_zero_shot_caption_prompt_uses_the_chat_template(checkpoint):
    bb = load_internvl(checkpoint)
    encoded = prompts.chat_caption(bb, "im0")
    assert encoded.prompt.count(bb.image_token_id) == bb.n_image_tokens
    text = bb.tokenizer.decode(encoded.prompt)
    assert "Describe the image" in text and text.rstrip().endswith("assistant")


def test_the_pipeline_runs_on_a_native_internvl_checkpoint(tmp_path, monkeypatch):
    """The paper path end to end on CPU: a profile whose backbone is an InternVL checkpoint
    folder (the tiny random stand-in), training, trie decoding and evaluation through
    semcore.pipeline. (Its random weights write only newlines as zero-shot captions, so the
    identifier source here is the held-out caption.)"""
    from semcore import config, methods, pipeline

    monkeypatch.setenv("SEMCORE_CACHE", str(tmp_path / "cache"))
    corpus_texts = ["a red ball on the sand", "a blue box", "two rings"] * 20
    folder = write_tiny_checkpoint(tmp_path / "internvl-hf", corpus_texts + prompts.TEMPLATE_WORDS,
                                   vocab_size=600)
    p = config.load("params/tiny.yaml", backbone="internvl2_5-1b", backbone_path=str(folder),
                    embedded_train_images=8, embedded_test_images=4, epochs=1, batch_size=8,
                    beam_size=4, cluster_size=2)
    result = pipeline.evaluate(p, "t2i", methods.get("wo_gsv"))
    assert result["queries"] == 4 * 4 and 0 <= result["R@1"] <= 100
    assert pipeline.trained(p, "t2i", methods.get("wo_gsv")).name == "internvl"  # reloads
    # GSV in both directions: k candidate images per T2I prompt, the query image for I2T
    p = p.replace(gsv_k=3, gsv_epochs=1, gsv_train_queries=6)
    for direction, queries in (("t2i", 16), ("i2t", 4)):
        result = pipeline.evaluate(p, direction, methods.get("semcore"))
        assert result["queries"] == queries and 0 <= result["R@1"] <= 100
        assert pipeline.verifier(p, direction, methods.get("semcore")).name == "internvl"
