"""One training path for every backbone and task: transformers Trainer, loss on target tokens.

Examples are prompts.Encoded (prompt ids, target ids, image ids). Training is resumable: the
Trainer checkpoints into the step's work folder every epoch (every few epochs when there are more
than three) and an interrupted run resumes from the last checkpoint; the same seed gives the
same loss curve. Progress is a plain tqdm bar (tqdm.auto bars do not render under papermill).
"""
from __future__ import annotations

import json
import logging
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import get_last_checkpoint
from transformers.utils import logging as hf_logging

from semcore.models import Backbone
from semcore.prompts import Encoded


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    description: str = "train"
    gradient_checkpointing: bool = False
    deepspeed: str | None = None  # a ZeRO config (params/deepspeed/*.json) under a launcher
    bf16: bool = False  # bfloat16 autocast on CPU too (GPUs that support it always use it)
    group_by_length: bool = False  # batches of examples of similar length (_Trainer)


class _Examples(torch.utils.data.Dataset):
    def __init__(self, examples: list[Encoded]):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> Encoded:
        return self.examples[i]


class Collator:
    """Right-padded prompt+target with labels only on the target; images in placeholder order.

    `target_logits_only` adds `logits_to_keep`, the positions whose next token is a target, so
    the model projects only those onto the vocabulary (`target_token_loss`).
    """

    def __init__(self, backbone: Backbone, images: dict[str, np.ndarray],
                 target_logits_only: bool = False):
        self.bb, self.images, self.target_logits_only = backbone, images, target_logits_only

    def __call__(self, batch: list[Encoded]) -> dict[str, torch.Tensor]:
        width = max(len(e.prompt) + len(e.target) for e in batch)
        ids = torch.full((len(batch), width), self.bb.pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, e in enumerate(batch):
            seq = e.prompt + e.target
            ids[row, :len(seq)] = torch.tensor(seq)
            labels[row, len(e.prompt):len(seq)] = torch.tensor(e.target)
            mask[row, :len(seq)] = 1
        out = {"input_ids": ids, "attention_mask": mask, "labels": labels}
        if self.target_logits_only:
            keep = torch.zeros_like(labels, dtype=torch.bool)
            keep[:, :-1] = labels[:, 1:] != -100
            out["logits_to_keep"] = keep
        return {**out, **self.bb.feature_inputs(batch, self.images)}


def target_token_loss(outputs, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
    """The causal-LM loss on the target tokens (eq. 3), from logits computed only at the positions
    that predict them (`Collator(target_logits_only=True)`): the same value as the model's own
    loss over full logits, without projecting every prompt position onto the vocabulary (a
    retrieval or GSV prompt is mostly query and candidates; its target is a few tokens)."""
    targets = labels[:, 1:]
    targets = targets[targets != -100].to(outputs.logits.device)
    loss = torch.nn.functional.cross_entropy(outputs.logits.float(), targets, reduction="sum")
    return loss / (targets.numel() if num_items_in_batch is None else num_items_in_batch)


class _Bar(TrainerCallback):
    """A plain tqdm bar with the running loss, readable in papermill's output."""

    def __init__(self, description: str):
        self.description, self.bar = description, None

    def on_train_begin(self, args, state, control, **kw):
        self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=self.description,
                        mininterval=2.0, ascii=True)

    def on_step_end(self, args, state, control, **kw):
        self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kw):
        if logs and "loss" in logs and self.bar is not None:
            # drawn at the bar's next refresh: the loss is logged every step, and a refresh per
            # step would write thousands of lines into an executed notebook
            self.bar.set_postfix(loss=f"{logs['loss']:.3f}", refresh=False)

    def on_train_end(self, args, state, control, **kw):
        self.bar.close()


class _Trainer(Trainer):
    """Trainer whose batches may hold examples of similar length, and whose resume loads weights
    through from_pretrained.

    A batch is padded to its longest example: random batches of Flickr8k's retrieval examples
    were 54 % padding (39 columns for 25 tokens on average). With `group_by_length` the sampler
    is transformers' LengthGroupedSampler over the examples' token counts (shuffled, then sorted
    by length within mega-batches of up to 50 batches), which cuts the tokens a step computes by
    about a third. Batches then hold one kind of example each where kinds differ in length
    (image queries against captions): on Flickr8k's validation split that changed nothing
    (SemCORE R@1 26.8 against 26.9), on the embedded data it lowered SemCORE's indexing
    accuracy from 92.5 to 80 %, so it is a profile's choice (off by default).
    transformers 5 saves InternVL checkpoints under its legacy key names and the Trainer's raw
    state-dict load on resume does not map them back (every key reported missing, weights left
    random); from_pretrained applies the mapping. Adapters (peft) keep the stock path.
    """

    def __init__(self, *args, group_by_length: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.group_by_length = group_by_length

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset or self.train_dataset
        if not self.group_by_length:
            return super()._get_train_sampler(train_dataset)
        return LengthGroupedSampler(self.args.train_batch_size,
                                    lengths=[len(e.prompt) + len(e.target) for e in dataset.examples])

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        model = model or self.model
        if not hasattr(model, "peft_config") and hasattr(model, "from_pretrained"):
            loaded = type(model).from_pretrained(resume_from_checkpoint)
            model.load_state_dict(loaded.state_dict())
            return
        super()._load_from_checkpoint(resume_from_checkpoint, model)


WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
           "adapter_model.safetensors", "adapter_model.bin")


def _complete(checkpoint: Path) -> bool:
    """Weights and a readable trainer_state.json, which the Trainer writes after everything
    else of a checkpoint (weights, optimizer, scheduler, RNG states)."""
    if not any((checkpoint / name).is_file() for name in WEIGHTS):
        return False
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return True


def last_complete_checkpoint(ckpt_dir: Path) -> str | None:
    """The newest complete checkpoint-N under ckpt_dir, after removing incomplete ones (a run
    killed mid-save would otherwise fail to resume from them on every re-run)."""
    if not ckpt_dir.is_dir():
        return None
    for folder in ckpt_dir.glob("checkpoint-*"):
        if folder.is_dir() and not _complete(folder):
            shutil.rmtree(folder, ignore_errors=True)  # every rank under a launcher looks
    return get_last_checkpoint(str(ckpt_dir))


def loss_curve(per_step: list[dict], window: int) -> list[dict]:
    """The mean loss of each run of `window` steps, from the loss logged at every step.

    The Trainer's own logged loss is a running mean since its last log, which restarts when a run
    resumes from a checkpoint: the first value after a resume would average fewer steps and the
    curve would differ from an uninterrupted run's. Per-step losses are restored with the
    checkpoint, so windows over them are the same either way."""
    curve = []
    for start in range(0, len(per_step), window):
        chunk = per_step[start:start + window]
        curve.append({"step": chunk[-1]["step"], "epoch": chunk[-1]["epoch"],
                      "loss": sum(h["loss"] for h in chunk) / len(chunk)})
    return curve


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(backbone: Backbone, examples: list[Encoded], images: dict[str, np.ndarray],
          cfg: TrainConfig, work_dir: Path) -> list[dict]:
    """Fine-tune backbone.model in place; returns the loss curve (`loss_curve`: the mean loss
    of every quarter epoch).

    Checkpoints go to work_dir/checkpoints and are removed once training completes; the final
    weights are saved to work_dir/model.
    """
    if not examples:
        raise ValueError("no training examples")
    backbone.prepare_texts(t for e in examples for t in e.texts)
    seed_everything(cfg.seed)
    logging.getLogger("transformers.trainer").setLevel(logging.WARNING)
    hf_logging.disable_progress_bar()  # weight-saving bars would drown the training bar
    ckpt_dir = work_dir / "checkpoints"
    steps_per_epoch = -(-len(examples) // cfg.batch_size)
    # A checkpoint every epoch, or every few epochs when there are many short ones (an embedded
    # tiny model trains 8 epochs in ~20 s on one core; a checkpoint costs ~0.2 s): at most 3.
    save_every = steps_per_epoch * -(-cfg.epochs // 3)
    args = TrainingArguments(
        output_dir=str(ckpt_dir), num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size, learning_rate=cfg.learning_rate,
        lr_scheduler_type="linear", warmup_steps=max(1, steps_per_epoch // 4), weight_decay=0.0,
        logging_steps=1, save_strategy="steps",
        save_steps=save_every, save_total_limit=1,
        seed=cfg.seed, data_seed=cfg.seed, report_to=[], disable_tqdm=True,
        dataloader_num_workers=0, use_cpu=not torch.cuda.is_available(),
        remove_unused_columns=False, gradient_checkpointing=cfg.gradient_checkpointing,
        deepspeed=cfg.deepspeed,
        bf16=cfg.bf16 or (torch.cuda.is_available() and torch.cuda.is_bf16_supported()))
    trainer = _Trainer(model=backbone.model, args=args, train_dataset=_Examples(examples),
                      data_collator=Collator(backbone, images, target_logits_only=True),
                      compute_loss_func=target_token_loss, group_by_length=cfg.group_by_length)
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(_Bar(cfg.description))
    trainer.train(resume_from_checkpoint=last_complete_checkpoint(ckpt_dir))
    if hasattr(backbone.model, "merge_and_unload"):  # LoRA: saved merged, loads like full
        backbone.model = backbone.model.merge_and_unload()
    history = loss_curve([h for h in trainer.state.log_history if "loss" in h],
                         window=max(1, steps_per_epoch // 4))
    if trainer.is_world_process_zero():  # under a multi-GPU launcher, rank 0 writes
        backbone.model.save_pretrained(work_dir / "model")
        (work_dir / "loss_history.json").write_text(json.dumps(history, indent=1))
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    backbone.model.eval()
    return history
