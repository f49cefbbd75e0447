"""Query → ranked corpus items: trie-constrained beam search, or free generation + matching.

The score of an identifier is its sequence log-probability under the model (paper eq. 1).
Items that share an identifier form one candidate group (for GSV); a ranked list of items
expands the groups in score order, ordering items inside a group by a seeded hash, so ties
are broken reproducibly and never in favour of the correct item.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, asdict

import numpy as np
import torch
from tqdm import tqdm

from semcore.constrained import constrained_beam_search
from semcore.identifiers.base import IdentifierTable
from semcore.models import Backbone
from semcore.prompts import Encoded, identifier_target
from semcore.trie import Trie


@dataclass
class Ranked:
    """One query's result: candidate groups (items sharing an identifier) best first."""

    groups: list[list[str]]
    identifiers: list[str]
    scores: list[float]

    def items(self) -> list[str]:
        seen: set[str] = set()
        return [i for g in self.groups for i in g if not (i in seen or seen.add(i))]

    def to_dict(self) -> dict:
        return asdict(self)


def tie_order(items: list[str], query_id: str, seed: int) -> list[str]:
    """Items of one group in a reproducible order independent of relevance."""
    key = lambda item: hashlib.sha1(f"{seed}|{query_id}|{item}".encode()).hexdigest()  # noqa: E731
    return sorted(items, key=key)


def left_padded(bb: Backbone, batch: list[Encoded], images: dict[str, np.ndarray]) -> dict:
    """Prompts left-padded for generation (the generated part then starts at one column)."""
    width = max(len(e.prompt) for e in batch)
    ids = torch.full((len(batch), width), bb.pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, e in enumerate(batch):
        ids[row, width - len(e.prompt):] = torch.tensor(e.prompt)
        mask[row, width - len(e.prompt):] = 1
    out = {"input_ids": ids, "attention_mask": mask}
    image_ids = [i for e in batch for i in e.images]
    if image_ids:
        out["pixel_values"] = bb.pixel_values([images[i] for i in image_ids])
    return to_model(bb, out)


def to_model(bb: Backbone, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inputs on the model's device, floating ones (pixels, features) in its dtype (bf16 on GPU)."""
    device, dtype = bb.model.device, bb.model.dtype
    return {k: v.to(device, dtype=dtype) if v.is_floating_point() else v.to(device)
            for k, v in inputs.items()}


def build_trie(bb: Backbone, table: IdentifierTable) -> tuple[Trie, list[str]]:
    """Trie over the distinct identifiers of a table; returns it and the identifier per leaf index."""
    distinct = sorted(set(table.identifiers))
    sequences = [identifier_target(bb, ident) for ident in distinct]
    return Trie.build(sequences, vocab_size=len(bb.tokenizer)), distinct


def decode_constrained(bb: Backbone, table: IdentifierTable, queries: list[tuple[str, Encoded]],
                       images: dict[str, np.ndarray], beam_size: int, batch_size: int, seed: int,
                       desc: str = "decode") -> dict[str, Ranked]:
    """Trie-constrained beam search for every query (batched), mapped back to item groups."""
    trie, distinct = build_trie(bb, table)
    groups = table.groups()
    max_len = max(len(identifier_target(bb, i)) for i in distinct)
    out: dict[str, Ranked] = {}
    for start in tqdm(range(0, len(queries), batch_size), desc=desc, ascii=True, mininterval=2.0):
        chunk = queries[start:start + batch_size]
        inputs = left_padded(bb, [e for _, e in chunk], images)
        with bb.inference():
            results = constrained_beam_search(bb.model, trie, bb.eos_id, beam_size, max_len, **inputs)
        for (qid, _), hyps in zip(chunk, results):
            ranked = Ranked([], [], [])
            for seq, score in hyps:
                for leaf in trie.lookup(seq):
                    ident = distinct[leaf]
                    ranked.groups.append(tie_order(groups[ident], qid, seed))
                    ranked.identifiers.append(ident)
                    ranked.scores.append(float(score))
            out[qid] = ranked
    return out


def normalize(text: str) -> str:
    """Lower case, punctuation dropped, single spaces: the 'normalized' string match."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def decode_free(bb: Backbone, table: IdentifierTable, queries: list[tuple[str, Encoded]],
                images: dict[str, np.ndarray], beam_size: int, batch_size: int, seed: int,
                match: str = "normalized", desc: str = "free decode") -> dict[str, Ranked]:
    """'w/o constrained decoding': unconstrained beam search, strings mapped to identifiers by
    exact or normalized match; generations that match nothing are dropped."""
    groups = table.groups()
    key = (lambda s: s.strip()) if match == "exact" else normalize
    by_key: dict[str, str] = {}
    for ident in sorted(groups):
        by_key.setdefault(key(ident), ident)
    max_len = max(len(identifier_target(bb, i)) for i in groups) + 2
    out: dict[str, Ranked] = {}
    for start in tqdm(range(0, len(queries), batch_size), desc=desc, ascii=True, mininterval=2.0):
        chunk = queries[start:start + batch_size]
        inputs = left_padded(bb, [e for _, e in chunk], images)
        prompt_len = inputs["input_ids"].shape[1]
        with bb.inference():
            gen = bb.model.generate(**inputs, num_beams=beam_size, num_return_sequences=beam_size,
                                    max_new_tokens=max_len, do_sample=False, length_penalty=0.0,
                                    output_scores=True, return_dict_in_generate=True,
                                    pad_token_id=bb.pad_id, eos_token_id=bb.eos_id)
        seqs = gen.sequences[:, prompt_len:].view(len(chunk), beam_size, -1)
        scores = gen.sequences_scores.view(len(chunk), beam_size)
        for row, (qid, _) in enumerate(chunk):
            ranked = Ranked([], [], [])
            for b in range(beam_size):
                text = bb.tokenizer.decode(seqs[row, b], skip_special_tokens=True)
                ident = by_key.get(key(text))
                if ident is not None and ident not in ranked.identifiers:
                    ranked.groups.append(tie_order(groups[ident], qid, seed))
                    ranked.identifiers.append(ident)
                    ranked.scores.append(float(scores[row, b]))
            out[qid] = ranked
    return out
