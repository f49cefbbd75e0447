"""Query → ranked corpus items: trie-constrained beam search, or free generation + matching.

The score of an identifier is its sequence log-probability under the model (paper eq. 1), or
one of the other `constrained.DECODE_SCORES` (the profile's `decode_score`).
Items that share an identifier form one candidate group (for GSV); a ranked list of items
expands the groups in score order, ordering items inside a group by a seeded hash, so ties
are broken reproducibly and never in favour of the correct item.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from semcore.constrained import beam_search, constrained_beam_search
from semcore.identifiers.base import IdentifierTable
from semcore.models import Backbone
from semcore.prompts import Encoded, identifier_target, identifier_tokens
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
    return to_model(bb, {"input_ids": ids, "attention_mask": mask, **bb.feature_inputs(batch, images)})


def to_model(bb: Backbone, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inputs on the model's device, floating ones (pixels, features) in its dtype (bf16 on GPU)."""
    device, dtype = bb.model.device, bb.model.dtype
    return {k: v.to(device, dtype=dtype) if v.is_floating_point() else v.to(device)
            for k, v in inputs.items()}


@dataclass(frozen=True)
class IdentifierTrie:
    """The trie over a set of items' distinct identifiers as a tokenizer decodes them (each with
    its end token); leaf index i of the trie is `identifiers[i]`. Built once per trained model
    and item set, and saved (`pipeline.identifier_trie`), so decoding only loads it."""

    trie: Trie
    identifiers: list[str]

    @classmethod
    def build(cls, tokenizer, table: IdentifierTable) -> IdentifierTrie:
        distinct = sorted(set(table.identifiers))
        sequences = [identifier_tokens(tokenizer, ident) for ident in distinct]
        return cls(Trie.build(sequences, vocab_size=len(tokenizer)), distinct)

    def save(self, folder: Path) -> None:
        self.trie.save(folder / "trie.npz")
        (folder / "identifiers.json").write_text(json.dumps(self.identifiers))

    @classmethod
    def load(cls, folder: Path) -> IdentifierTrie:
        return cls(Trie.load(folder / "trie.npz"),
                   json.loads((folder / "identifiers.json").read_text()))


def decode_constrained(bb: Backbone, index: IdentifierTrie, table: IdentifierTable,
                       queries: list[tuple[str, Encoded]], images: dict[str, np.ndarray],
                       beam_size: int, batch_size: int, seed: int,
                       desc: str = "decode", score: str = "sum") -> dict[str, Ranked]:
    """Trie-constrained beam search for every query (batched), mapped back to the item groups of
    `table` (the items `index` was built from). `score`: how identifiers are scored and ranked
    (`constrained_beam_search`; "sum" is eq. 1)."""
    trie, groups = index.trie, table.groups()
    bb.prepare_texts(t for _, e in queries for t in e.texts)
    out: dict[str, Ranked] = {}
    for start in tqdm(range(0, len(queries), batch_size), desc=desc, ascii=True, mininterval=2.0):
        chunk = queries[start:start + batch_size]
        inputs = left_padded(bb, [e for _, e in chunk], images)
        with bb.inference():
            results = constrained_beam_search(bb.model, trie, bb.eos_id, beam_size,
                                              trie.max_length, score=score, **inputs)
        leaves = iter(trie.lookup_many([seq for hyps in results for seq, _ in hyps]))
        for (qid, _), hyps in zip(chunk, results):
            ranked = Ranked([], [], [])
            for _, value in hyps:
                for leaf in next(leaves):
                    ident = index.identifiers[leaf]
                    ranked.groups.append(tie_order(groups[ident], qid, seed))
                    ranked.identifiers.append(ident)
                    ranked.scores.append(float(value))
            out[qid] = ranked
    return out


def normalize(text: str) -> str:
    """Lower case, punctuation dropped, single spaces: the 'normalized' string match."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def string_matcher(identifiers: Iterable[str], match: str) -> Callable[[str], str | None]:
    """The identifier a generated string names, or None: "exact" compares the strings (white
    space around them aside), "normalized" compares them after `normalize`. Identifiers that
    become equal under the match go to the first in sorted order."""
    if match not in ("exact", "normalized"):
        raise ValueError(f"match must be 'exact' or 'normalized', got {match!r}")
    key = str.strip if match == "exact" else normalize
    by_key: dict[str, str] = {}
    for ident in sorted(identifiers):
        by_key.setdefault(key(ident), ident)
    return lambda text: by_key.get(key(text))


def decode_free(bb: Backbone, table: IdentifierTable, queries: list[tuple[str, Encoded]],
                images: dict[str, np.ndarray], beam_size: int, batch_size: int, seed: int,
                match: str = "normalized", desc: str = "free decode") -> dict[str, Ranked]:
    """'w/o constrained decoding': unconstrained beam search, strings mapped to identifiers by
    exact or normalized match; generations that match nothing are dropped. Scores are always
    the summed log-probabilities of the generated strings (eq. 1): the profile's
    `decode_score` applies to constrained decoding only ("renormalized" needs the trie)."""
    groups = table.groups()
    named = string_matcher(groups, match)
    max_len = max(len(identifier_target(bb, i)) for i in groups) + 2
    bb.prepare_texts(t for _, e in queries for t in e.texts)
    out: dict[str, Ranked] = {}
    for start in tqdm(range(0, len(queries), batch_size), desc=desc, ascii=True, mininterval=2.0):
        chunk = queries[start:start + batch_size]
        inputs = left_padded(bb, [e for _, e in chunk], images)
        prompt_len = inputs["input_ids"].shape[1]
        with bb.inference():
            gen = beam_search(bb.model, beam_size, max_len, bb.eos_id, bb.pad_id, [], **inputs)
        seqs = gen.sequences[:, prompt_len:].view(len(chunk), beam_size, -1)
        scores = gen.sequences_scores.view(len(chunk), beam_size)
        for row, (qid, _) in enumerate(chunk):
            ranked = Ranked([], [], [])
            for b in range(beam_size):
                text = bb.tokenizer.decode(seqs[row, b], skip_special_tokens=True)
                ident = named(text)
                if ident is not None and ident not in ranked.identifiers:
                    ranked.groups.append(tie_order(groups[ident], qid, seed))
                    ranked.identifiers.append(ident)
                    ranked.scores.append(float(scores[row, b]))
            out[qid] = ranked
    return out
