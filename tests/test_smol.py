"""The smol backbone on a tiny random Llama: image features fill the placeholders, it trains
(fully and with LoRA) reproducibly and resumably, saves and reloads, and its constrained beam
search returns trie identifiers scored by the model's own sequence log-probabilities (eq. 1)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from scoring import assert_exhaustive_with_exact_scores
from semcore import prompts, train as train_mod
from semcore.constrained import constrained_beam_search
from semcore.models import Backbone
from semcore.models.smol import SmolMLLM, apply_lora, build_smol, load_smol
from semcore.models.tiny import build_tiny, train_tokenizer
from semcore.retrieval import left_padded
from semcore.train import TrainConfig, train
from semcore.trie import Trie

TEXTS = ["a red ball on the left", "a big blue box at night", "two small rings"]
IDS = ["red ball", "blue box", "ring"]
T, D = 4, 16


def tiny_lm(vocab_size: int, eos_id: int) -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=64, max_position_embeddings=256,
        tie_word_embeddings=True, eos_token_id=eos_id, bos_token_id=eos_id))


def setup() -> tuple[Backbone, list[prompts.Encoded], dict[str, np.ndarray]]:
    tok = train_tokenizer(TEXTS * 5 + prompts.TEMPLATE_WORDS + IDS, 400)
    bb = build_smol(tiny_lm(len(tok), tok.eos_token_id), tok, feature_dim=D, n_image_tokens=T,
                    seed=0)
    rng = np.random.default_rng(0)
    features = {f"im{i}": rng.standard_normal((T, D)).astype(np.float32) for i in range(6)}
    examples = [prompts.image_query(bb, f"im{i}", IDS[i % 3]) for i in range(6)]
    examples += [prompts.text_query(bb, t, IDS[i]) for i, t in enumerate(TEXTS)]
    return bb, examples, features


def run(tmp_path, name: str, lora: bool = False,
        checkpointing: bool = False) -> tuple[Backbone, list[dict]]:
    """A 2-epoch training run; returns the trained backbone (LoRA: merged by `train`) and the
    loss history."""
    bb, examples, features = setup()
    if lora:
        bb = dataclasses.replace(bb, model=apply_lora(bb.model, r=4, alpha=8, dropout=0.1))
    cfg = TrainConfig(2, 4, 1e-2 if lora else 3e-3, seed=0, gradient_checkpointing=checkpointing)
    return bb, train(bb, examples, features, cfg, tmp_path / name)


def interrupted_then_resumed(tmp_path, monkeypatch, name: str, lora: bool = False) -> list[dict]:
    def stop_after_first_checkpoint(self, args, state, control, **kw):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(train_mod._Bar, "on_save", stop_after_first_checkpoint, raising=False)
        with pytest.raises(KeyboardInterrupt):
            run(tmp_path, name, lora)
    assert any((tmp_path / name / "checkpoints").iterdir())
    return run(tmp_path, name, lora)[1]


def training_set_loss(model: torch.nn.Module) -> float:
    bb, examples, features = setup()
    with torch.no_grad():
        return model(**train_mod.Collator(bb, features)(examples)).loss.item()


def assert_trained_and_reloadable(tmp_path, trained: Backbone) -> None:
    """Loss on the training set went down, and the saved model reloads with the same logits."""
    assert type(trained.model) is SmolMLLM
    assert training_set_loss(trained.model) < training_set_loss(setup()[0].model)
    loaded = load_smol(tmp_path / "model", trained.tokenizer)
    assert type(loaded.model) is SmolMLLM and loaded.n_image_tokens == T
    _, examples, features = setup()
    batch = train_mod.Collator(trained, features)(examples)
    with torch.no_grad():
        assert torch.equal(loaded.model(**batch).logits, trained.model(**batch).logits)



def test_features_fill_placeholders_and_loss_covers_targets_only():
    bb, examples, features = setup()
    batch = train_mod.Collator(bb, features)(examples[:2])
    assert batch["pixel_values"].shape == (2, T, D) and batch["pixel_values"].dtype == torch.float32
    for row, e in enumerate(examples[:2]):
        labels = batch["labels"][row]
        assert (labels[:len(e.prompt)] == -100).all()
        assert labels[len(e.prompt):len(e.prompt) + len(e.target)].tolist() == e.target
    out = bb.model(**batch)
    assert torch.isfinite(out.loss) and out.logits.shape[:2] == batch["input_ids"].shape
    other = bb.model(**{**batch, "pixel_values": batch["pixel_values"] + 1.0})
    placeholders = batch["input_ids"][0] == bb.image_token_id
    first_image = int(placeholders.nonzero()[0])
    assert torch.equal(other.logits[0, :first_image], out.logits[0, :first_image])  # causal
    assert not torch.allclose(other.logits[0, first_image:], out.logits[0, first_image:])
    with pytest.raises(ValueError, match="placeholders"):
        bb.model(**{**batch, "pixel_values": batch["pixel_values"][:1]})


def test_several_images_per_prompt_fill_in_placeholder_order():
    bb, examples, features = setup()
    gsv = prompts.gsv_t2i(bb, "a red ball", [("im1", "red ball"), ("im2", "blue box"),
                                             ("im0", "ring")], answer=2)
    batch = train_mod.Collator(bb, features)([examples[0], gsv])
    assert batch["pixel_values"].shape == (4, T, D)
    with torch.no_grad():
        embeds = bb.model.embed(batch["input_ids"], batch["pixel_values"])
        projected = bb.model.projector(batch["pixel_values"]).reshape(-1, embeds.shape[-1])
    assert torch.equal(embeds[batch["input_ids"] == bb.image_token_id], projected)


class FakeSentenceFeatures:
    """SentenceFeatures without MiniLM: a fixed random vector per text."""

    def __init__(self):
        self.prepared: list[str] = []

    def prepare(self, texts):
        self.prepared += list(texts)

    def __call__(self, texts):
        rng = lambda t: np.random.default_rng(sum(map(ord, t)))  # noqa: E731
        return torch.from_numpy(np.stack([rng(t).standard_normal((1, 384)).astype(np.float32)
                                          for t in texts]))


def with_text_features() -> tuple[Backbone, list[prompts.Encoded], dict[str, np.ndarray]]:
    tok = train_tokenizer(TEXTS * 5 + prompts.TEMPLATE_WORDS + IDS, 400)
    bb = build_smol(tiny_lm(len(tok), tok.eos_token_id), tok, feature_dim=D, n_image_tokens=T,
                    seed=0, text_features=True)
    bb.text_values = FakeSentenceFeatures()
    _, _, features = setup()
    return bb, [prompts.text_query(bb, t, IDS[i]) for i, t in enumerate(TEXTS)], features


def test_text_inputs_keep_their_words_and_gain_one_sentence_feature():
    plain, _, _ = setup()
    assert plain.text_values is None
    assert prompts.text_query(plain, "a red ball").prompt == plain.encode("text: a red ball\nid:")
    bb, examples, features = with_text_features()
    query = prompts.text_query(bb, "a red ball")
    assert query.texts == ["a red ball"] and query.prompt.count(bb.text_token_id) == 1
    assert [i for i in query.prompt if i != bb.text_token_id] == plain.encode("text: a red ball\nid:")
    pair = prompts.gsv_pair_t2i(bb, "a red ball", ("im0", "red ball", "a ball, red"))
    assert pair.texts == ["a ball, red", "a red ball"] and pair.images == ["im0"]
    batch = train_mod.Collator(bb, features)([*examples, pair])
    assert batch["text_values"].shape == (len(examples) + 2, 1, 384)
    with torch.no_grad():
        embeds = bb.model.embed(batch["input_ids"], batch["pixel_values"], batch["text_values"])
        projected = bb.model.text_projector(batch["text_values"]).reshape(-1, embeds.shape[-1])
    assert torch.equal(embeds[batch["input_ids"] == bb.text_token_id], projected)
    with pytest.raises(ValueError, match="sentence placeholders"):
        bb.model(**{**batch, "text_values": batch["text_values"][:1]})


def test_a_model_with_text_features_trains_on_them_saves_and_reloads(tmp_path):
    bb, examples, features = with_text_features()
    loss = lambda model: model(**train_mod.Collator(bb, features)(examples)).loss.item()  # noqa: E731
    with torch.no_grad():
        before = loss(bb.model)
    train(bb, examples, features, TrainConfig(3, 3, 3e-3, seed=0), tmp_path)
    assert sorted(set(bb.text_values.prepared)) == sorted(TEXTS)  # prepared once, before the loop
    with torch.no_grad():
        assert loss(bb.model) < before
    loaded = load_smol(tmp_path / "model", bb.tokenizer)
    assert loaded.text_values is not None and loaded.text_token_id == bb.text_token_id
    loaded.text_values = bb.text_values
    batch = train_mod.Collator(bb, features)(examples)
    with torch.no_grad():
        assert torch.equal(loaded.model(**batch).logits, bb.model(**batch).logits)


def test_build_adds_image_tokens_and_resizes_a_copy():
    words = ["<unk>", "<eos>", "a", "red", "ball", "id:"]
    base = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    base.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=base, unk_token="<unk>", eos_token="<eos>")
    lm = tiny_lm(len(words), eos_id=1)
    bb = build_smol(lm, tok, feature_dim=D, n_image_tokens=T, seed=0)
    assert len(tok) == len(words) + 5 and tok.pad_token == "<pad>"  # 4 markers and a pad
    assert bb.encode("<img>")[0] >= len(words) and len(bb.encode("a <IMG_CONTEXT>")) == 2
    assert bb.image_token_id == tok.convert_tokens_to_ids("<IMG_CONTEXT>") and bb.eos_id == 1
    embeddings = bb.model.get_input_embeddings().weight
    assert embeddings.shape[0] == len(tok) and lm.get_input_embeddings().weight.shape[0] == len(words)
    assert torch.equal(embeddings[:len(words)], lm.get_input_embeddings().weight)
    assert bb.model.language_model.lm_head.weight is embeddings  # still tied


def test_training_is_reproducible_resumable_and_reloads(tmp_path, monkeypatch):
    trained, reference = run(tmp_path, "ref")
    assert_trained_and_reloadable(tmp_path / "ref", trained)
    assert [h["loss"] for h in run(tmp_path, "again")[1]] == [h["loss"] for h in reference]
    resumed = interrupted_then_resumed(tmp_path, monkeypatch, "cut")
    assert resumed[-1]["loss"] == pytest.approx(reference[-1]["loss"], rel=1e-6)
    checkpointed = run(tmp_path, "checkpointed", checkpointing=True)[1]
    assert [h["loss"] for h in checkpointed] == pytest.approx([h["loss"] for h in reference])


def test_lora_trains_resumes_and_merges_into_a_plain_model(tmp_path, monkeypatch):
    trained, reference = run(tmp_path, "ref", lora=True)
    assert_trained_and_reloadable(tmp_path / "ref", trained)
    resumed = interrupted_then_resumed(tmp_path, monkeypatch, "cut", lora=True)
    assert resumed[-1]["loss"] == pytest.approx(reference[-1]["loss"], rel=1e-6)
    checkpointed = run(tmp_path, "checkpointed", lora=True, checkpointing=True)[1]
    assert [h["loss"] for h in checkpointed] == pytest.approx([h["loss"] for h in reference])


def test_lora_adapts_the_language_model_and_trains_the_projector_in_full():
    bb, examples, features = setup()
    base = {n: p.clone() for n, p in bb.model.named_parameters()}
    model = apply_lora(bb.model, r=4, alpha=8, dropout=0.0)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all("lora_" in n or ".projector.modules_to_save." in n for n in trainable)
    assert any(".projector." in n for n in trainable) and any("q_proj.lora_A" in n for n in trainable)
    torch.manual_seed(1)
    for p in model.parameters():
        if p.requires_grad:  # as if trained: non-zero adapters, a changed projector
            torch.nn.init.normal_(p, std=0.1)
    batch = train_mod.Collator(bb, features)(examples)
    with torch.no_grad():
        adapted = model(**batch).logits
        merged = model.merge_and_unload()
        assert type(merged) is SmolMLLM
        assert torch.allclose(merged(**batch).logits, adapted, atol=1e-5)
    after = dict(merged.named_parameters())
    assert set(after) == set(base)
    assert torch.equal(after["language_model.model.embed_tokens.weight"],
                       base["language_model.model.embed_tokens.weight"])
    assert not torch.equal(after["projector.linear_1.weight"], base["projector.linear_1.weight"])


def test_lora_targets_the_language_model_of_internvl_too():
    tok = train_tokenizer(TEXTS + prompts.TEMPLATE_WORDS, 300)
    model = apply_lora(build_tiny(tok, 32, 32, 1, seed=0).model, r=2, alpha=4, dropout=0.0)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("multi_modal_projector.modules_to_save" in n for n in trainable)
    assert any("language_model" in n and "lora_" in n for n in trainable)
    assert not any("vision_tower" in n for n in trainable)


def test_generate_keeps_prompt_and_beam_scores_are_sequence_log_probs():
    bb, _, features = setup()
    targets = [prompts.identifier_target(bb, i) for i in IDS]
    trie = Trie.build(targets, vocab_size=len(bb.tokenizer))
    queries = [prompts.image_query(bb, "im0"), prompts.text_query(bb, "two small rings"),
               prompts.image_query(bb, "im3")]
    inputs = left_padded(bb, queries, features)
    assert len({len(q.prompt) for q in queries}) > 1  # rows really are left padded
    with torch.no_grad():
        out = bb.model.generate(**inputs, max_new_tokens=3, do_sample=False, num_beams=2,
                                pad_token_id=bb.pad_id, eos_token_id=bb.eos_id)
        assert torch.equal(out[:, :inputs["input_ids"].shape[1]], inputs["input_ids"])
        results = constrained_beam_search(bb.model, trie, bb.eos_id, len(IDS), trie.max_length,
                                          pad_token_id=bb.pad_id, **inputs)
        assert_exhaustive_with_exact_scores(bb, trie, targets, queries, results, features)


@pytest.mark.slow
def test_the_pipeline_runs_on_smol_with_gsv_in_both_directions(tmp_path, monkeypatch):
    """The CPU profile's path end to end on a few embedded images: SmolLM2 + DINOv2 features,
    LoRA, precision auto (bf16 autocast where the CPU has it natively, as the flickr8k profile),
    SID identifiers, trie decoding and GSV re-ranking, T2I and I2T."""
    from semcore import config, methods, pipeline

    monkeypatch.setenv("SEMCORE_CACHE", str(tmp_path / "cache"))
    p = config.load("params/tiny.yaml", backbone="smol", finetune="lora", precision="auto",
                    embedded_train_images=6, embedded_test_images=3, epochs=1, batch_size=8,
                    learning_rate=5e-4, beam_size=4, cluster_size=2, gsv_k=3, gsv_epochs=1,
                    gsv_train_queries=6)
    for direction, queries in (("t2i", 12), ("i2t", 3)):
        result = pipeline.evaluate(p, direction, methods.get("semcore"))
        assert result["queries"] == queries and 0 <= result["R@1"] <= 100
        verifier = pipeline.verifier(p, direction, methods.get("semcore"))
        assert verifier.name == "smol" and verifier.bf16 == config.native_bf16()


def test_from_scratch_tokenizer_splits_numbers_into_digits_and_round_trips():
    """Numeric identifiers are digit sequences over ten shared tokens, as in the Llama/SmolLM2
    tokenizers, however often a number occurs in the tokenizer's training texts."""
    tok = train_tokenizer(["a dog runs 4821 fast"] * 50 + [str(n) for n in range(3000)], 400)
    pieces = tok.tokenize("a dog 4821")
    assert pieces[-4:] == ["4", "8", "2", "1"]
    assert tok.decode(tok("a dog 4821 and 77")["input_ids"]) == "a dog 4821 and 77"
