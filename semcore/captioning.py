"""Generated captions: the text SemCORE builds image identifiers from (paper §3.2).

The paper captions every corpus image zero-shot with its MLLM; the ground-truth captions are
the queries, so they must not be the identifier source. A backbone that cannot caption yet
(tiny, smol) is first trained on the train split's captions (image → caption, through the one
training path), then writes a caption for every image, greedily so that it is deterministic.
Test captions are never seen: they are the T2I queries.
"""
from __future__ import annotations

import numpy as np
from tqdm import tqdm

from semcore import prompts
from semcore.data.schema import Corpus
from semcore.models import Backbone
from semcore.retrieval import left_padded


def training_examples(bb: Backbone, corpus: Corpus) -> list[prompts.Encoded]:
    """One image → caption example per train-split caption."""
    return [prompts.caption(bb, cap.image_id, cap.text) for cap in corpus.captions_in("train")]


def write_captions(bb: Backbone, image_ids: list[str], images: dict[str, np.ndarray],
                   max_new_tokens: int, batch_size: int = 16, zero_shot: bool = False) -> dict[str, str]:
    """image id → greedy caption; an image whose caption comes out empty is an error.
    zero_shot: prompt with the backbone's chat template instead of the trained caption prompt."""
    prompt = prompts.chat_caption if zero_shot else prompts.caption
    no_special = sorted(set(bb.tokenizer.all_special_ids) - {bb.eos_id})  # image tokens, pad
    out: dict[str, str] = {}
    for start in tqdm(range(0, len(image_ids), batch_size), desc="caption images", ascii=True,
                      mininterval=2.0):
        chunk = image_ids[start:start + batch_size]
        inputs = left_padded(bb, [prompt(bb, i) for i in chunk], images)
        with bb.inference():
            seqs = bb.model.generate(**inputs, do_sample=False, num_beams=1, min_new_tokens=2,
                                     suppress_tokens=no_special,
                                     max_new_tokens=max_new_tokens, pad_token_id=bb.pad_id,
                                     eos_token_id=bb.eos_id)
        width = inputs["input_ids"].shape[1]
        for image_id, row in zip(chunk, seqs[:, width:]):
            text = " ".join(bb.tokenizer.decode(row, skip_special_tokens=True).split())
            if not text:
                raise ValueError(f"the captioner wrote an empty caption for image {image_id!r}; "
                                 "train it longer (caption_epochs)")
            out[image_id] = text
    return out
