"""Training: the same seed gives the same loss curve, and an interrupted run resumes."""
import shutil

import numpy as np
import pytest

from semcore import prompts, train as train_mod
from semcore.models.tiny import build_tiny, train_tokenizer
from semcore.train import TrainConfig, train

TEXTS = ["a red ball on the left", "a big blue box at night", "two small rings"]


def setup_examples():
    tok = train_tokenizer(TEXTS * 5 + prompts.TEMPLATE_WORDS + ["red ball", "blue box", "ring"], 400)
    bb = build_tiny(tok, 32, 32, 1, seed=0)
    rng = np.random.default_rng(0)
    images = {f"im{i}": rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for i in range(6)}
    ids = ["red ball", "blue box", "ring"]
    ex = [prompts.image_query(bb, f"im{i}", ids[i % 3]) for i in range(6)]
    ex += [prompts.text_query(bb, t, ids[i]) for i, t in enumerate(TEXTS)]
    return bb, ex, images


def run(tmp_path, name):
    bb, ex, images = setup_examples()
    return train(bb, ex, images, TrainConfig(2, 4, 1e-3, seed=0), tmp_path / name)


def test_same_seed_same_loss_curve(tmp_path):
    a, b = run(tmp_path, "a"), run(tmp_path, "b")
    assert [h["loss"] for h in a] == [h["loss"] for h in b]
    assert (tmp_path / "a" / "model" / "config.json").is_file()
    assert not (tmp_path / "a" / "checkpoints").exists()


def test_target_token_loss_equals_the_models_own_loss():
    """Logits computed only where the next token is a target give the model's own loss over full
    logits (image and text prompts of different lengths, right padding), and its gradient."""
    import torch
    bb, ex, images = setup_examples()
    full = train_mod.Collator(bb, images)(ex)
    kept = train_mod.Collator(bb, images, target_logits_only=True)(ex)
    labels = kept.pop("labels")
    assert int(kept["logits_to_keep"].sum()) == sum(len(e.target) for e in ex)
    expected = bb.model(**full).loss
    loss = train_mod.target_token_loss(bb.model(**kept), labels)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    grads = [torch.autograd.grad(x, bb.model.get_input_embeddings().weight)[0] for x in
             (expected, train_mod.target_token_loss(bb.model(**kept), labels))]
    assert torch.allclose(*grads, atol=1e-6)


def test_labels_cover_target_tokens_only():
    bb, ex, images = setup_examples()
    batch = train_mod.Collator(bb, images)(ex[:2])
    for row, e in enumerate(ex[:2]):
        labels = batch["labels"][row]
        assert (labels[:len(e.prompt)] == -100).all()
        assert labels[len(e.prompt):len(e.prompt) + len(e.target)].tolist() == e.target
    assert batch["pixel_values"].shape == (2, 3, 32, 32)


def test_interrupted_training_resumes_to_the_same_curve(tmp_path, monkeypatch):
    reference = run(tmp_path, "ref")
    calls = {"n": 0}

    def stop_after_first_checkpoint(self, args, state, control, **kw):
        calls["n"] += 1
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod._Bar, "on_save", stop_after_first_checkpoint, raising=False)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, "cut")
    assert any((tmp_path / "cut" / "checkpoints").iterdir())
    monkeypatch.undo()
    resumed = run(tmp_path, "cut")
    assert resumed[-1]["loss"] == pytest.approx(reference[-1]["loss"], rel=1e-6)


def test_a_checkpoint_killed_mid_save_is_removed_and_training_resumes(tmp_path, monkeypatch):
    """A SIGKILL mid-save leaves checkpoint-N with a config but no weights: the re-run drops it
    and resumes from the complete checkpoint beside it, to the uninterrupted curve."""
    reference = run(tmp_path, "ref")

    def stop_after_first_checkpoint(self, args, state, control, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod._Bar, "on_save", stop_after_first_checkpoint, raising=False)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, "cut")
    monkeypatch.undo()
    ckpts = tmp_path / "cut" / "checkpoints"
    (complete,) = ckpts.glob("checkpoint-*")
    half = ckpts / "checkpoint-999"  # newer than the complete one: resumed from if not checked
    half.mkdir()
    (half / "config.json").write_text((complete / "config.json").read_text())
    truncated = ckpts / "checkpoint-998"  # weights written, trainer state cut short
    shutil.copytree(complete, truncated)
    (truncated / "trainer_state.json").write_text("{")
    assert train_mod.last_complete_checkpoint(ckpts) == str(complete)
    assert not half.exists() and not truncated.exists()
    half.mkdir()
    (half / "config.json").write_text("{}")
    resumed = run(tmp_path, "cut")
    assert [h["loss"] for h in resumed] == pytest.approx([h["loss"] for h in reference], rel=1e-6)
    assert not ckpts.exists()


def test_only_incomplete_checkpoints_train_from_scratch(tmp_path):
    ckpts = tmp_path / "cut" / "checkpoints"
    (ckpts / "checkpoint-3").mkdir(parents=True)
    (ckpts / "checkpoint-3" / "config.json").write_text("{}")
    assert train_mod.last_complete_checkpoint(ckpts) is None
    (ckpts / "checkpoint-3").mkdir()
    assert run(tmp_path, "cut")[-1]["loss"] == pytest.approx(run(tmp_path, "ref")[-1]["loss"],
                                                             rel=1e-6)


def test_a_resume_between_two_logs_gives_the_uninterrupted_curve(tmp_path, monkeypatch):
    """Batch size 1: 9 steps an epoch, the loss averaged over every 2 steps, a checkpoint after
    step 9. A run killed there resumes to exactly the uninterrupted curve, the window that spans
    the resume (steps 9 and 10) included."""
    bb, ex, images = setup_examples()
    cfg = TrainConfig(2, 1, 1e-3, seed=0)
    reference = train(bb, ex, images, cfg, tmp_path / "ref")

    def stop_after_first_checkpoint(self, args, state, control, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod._Bar, "on_save", stop_after_first_checkpoint, raising=False)
    with pytest.raises(KeyboardInterrupt):
        train(*setup_examples(), cfg, tmp_path / "cut")
    monkeypatch.undo()
    assert [c.name for c in (tmp_path / "cut" / "checkpoints").iterdir()] == ["checkpoint-9"]
    resumed = train(*setup_examples(), cfg, tmp_path / "cut")
    assert [h["step"] for h in reference] == [2, 4, 6, 8, 10, 12, 14, 16, 18]
    assert resumed == reference


def test_loss_curve_means_each_window_of_steps():
    steps = [{"step": i, "epoch": i / 4, "loss": float(i)} for i in range(1, 8)]
    assert train_mod.loss_curve(steps, 3) == [{"step": 3, "epoch": 0.75, "loss": 2.0},
                                              {"step": 6, "epoch": 1.5, "loss": 5.0},
                                              {"step": 7, "epoch": 1.75, "loss": 7.0}]


def test_bf16_precision_trains_and_infers_under_autocast(tmp_path):
    """precision: bf16 — the Trainer autocasts on CPU (AMX) and inference runs in the same mode;
    the loss curve stays reproducible and close to the fp32 one."""
    import torch
    bb, ex, images = setup_examples()
    bf16 = train(bb, ex, images, TrainConfig(2, 4, 1e-3, seed=0, bf16=True), tmp_path / "bf16")
    again = train(setup_examples()[0], ex, images, TrainConfig(2, 4, 1e-3, seed=0, bf16=True),
                  tmp_path / "again")
    fp32 = run(tmp_path, "fp32")
    assert [h["loss"] for h in bf16] == [h["loss"] for h in again]
    assert [h["loss"] for h in bf16] != [h["loss"] for h in fp32]
    assert np.allclose([h["loss"] for h in bf16], [h["loss"] for h in fp32], rtol=0.05)
    bb.bf16 = True
    with bb.inference():
        assert torch.is_autocast_enabled("cpu") and not torch.is_grad_enabled()
    bb.bf16 = False
    with bb.inference():
        assert not torch.is_autocast_enabled("cpu") and not torch.is_grad_enabled()


def test_group_by_length_batches_examples_of_similar_length(tmp_path, monkeypatch):
    """With group_by_length each batch holds examples of near-equal length (the sampler sorts
    within mega-batches), training is reproducible, and without it batches stay mixed."""
    seen: list[list[int]] = []
    original = train_mod.Collator.__call__

    def record(self, batch):
        seen.append([len(e.prompt) + len(e.target) for e in batch])
        return original(self, batch)

    monkeypatch.setattr(train_mod.Collator, "__call__", record)
    bb, ex, images = setup_examples()
    ex = ex * 8  # 72 examples of two lengths' kinds: mega-batches of 4 batches of 4
    grouped = TrainConfig(1, 4, 1e-3, seed=0, group_by_length=True)
    first = train(bb, ex, images, grouped, tmp_path / "a")
    spread = [max(b) - min(b) for b in seen]
    seen.clear()
    bb, _, _ = setup_examples()
    assert [h["loss"] for h in train(bb, ex, images, grouped, tmp_path / "b")] == [h["loss"] for h in first]
    seen.clear()
    bb, _, _ = setup_examples()
    train(bb, ex, images, TrainConfig(1, 4, 1e-3, seed=0), tmp_path / "c")
    assert sum(spread) < sum(max(b) - min(b) for b in seen)
