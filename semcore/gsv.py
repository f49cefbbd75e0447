"""Generative Semantic Verification (paper §3.3): the backbone re-ranks the top-k candidates.

1. Candidate aggregation: the top-k items of constrained decoding; a candidate group (items
   sharing an identifier) is never split, so a group straddling k is kept whole (≤ 26).
2. Verification prompt: each candidate with its lexical ID, then the query, then the
   instruction (prompts.gsv_t2i / gsv_i2t). Candidates are shown in a seeded random order
   per query, so their position carries no information about the answer.
3. Discrimination: one forward pass gives the verifier's log-probability of each candidate's
   letter; the candidates are re-ranked by it (the selected one first) and the items after
   the top-k keep their generative order.
Training examples come from the retrieval model's own candidates on train-split queries (the
positive plus the hard negatives it actually retrieved; a missed positive replaces the last).
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch
from tqdm import tqdm

from semcore.identifiers.base import IdentifierTable
from semcore.models import Backbone
from semcore.prompts import LABELS, Encoded, gsv_i2t, gsv_t2i, label_token_ids
from semcore.protocol import Query, Task
from semcore.retrieval import Ranked, left_padded


def candidates(ranked: Ranked, k: int) -> list[str]:
    """Top-k items, whole groups kept together, at most len(LABELS)."""
    out: list[str] = []
    for group in ranked.groups:
        if len(out) >= k:
            break
        out += [i for i in group if i not in out]
    return out[:len(LABELS)]


def presentation_order(query_id: str, n: int, seed: int) -> list[int]:
    """A seeded permutation of n candidate positions, different for every query."""
    digest = hashlib.sha256(f"gsv|{seed}|{query_id}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    return [int(i) for i in rng.permutation(n)]


def shown_candidates(query_id: str, ranked: Ranked, k: int, seed: int) -> list[str]:
    """The top-k candidates in the order the verifier sees them."""
    cands = candidates(ranked, k)
    return [cands[i] for i in presentation_order(query_id, len(cands), seed)]


def prompt(bb: Backbone, task: Task, table: IdentifierTable, query: Query, shown: list[str],
           answer: int | None = None) -> Encoded:
    """The verification prompt for one query and its candidates in presentation order."""
    if task.direction == "t2i":
        return gsv_t2i(bb, query.text, [(i, table.lexical(i)) for i in shown], answer)
    return gsv_i2t(bb, query.image_id,
                   [(task.item(i).source_text, table.lexical(i)) for i in shown], answer)


def training_examples(bb: Backbone, task: Task, table: IdentifierTable,
                      train_queries: list[Query], ranked: dict[str, Ranked], k: int,
                      seed: int) -> list[Encoded]:
    """One example per train query: its retrieved candidates with the positive among them."""
    examples = []
    for q in train_queries:
        cands = candidates(ranked[q.id], k)
        if not any(c in q.relevant for c in cands):
            positive = sorted(q.relevant)[0]
            cands = (cands[:-1] if len(cands) >= k else cands) + [positive]
        if len(cands) < 2:
            continue  # nothing to choose between
        shown = [cands[i] for i in presentation_order(q.id, len(cands), seed)]
        answer = next(j for j, c in enumerate(shown) if c in q.relevant)
        examples.append(prompt(bb, task, table, q, shown, answer))
    return examples


def rerank(bb: Backbone, task: Task, table: IdentifierTable, queries: list[Query],
           ranked: dict[str, Ranked], images: dict[str, np.ndarray], k: int, seed: int,
           batch_size: int = 8) -> dict[str, list[str]]:
    """Final item rankings: the top-k candidates ordered by the verifier, then the rest."""
    final: dict[str, list[str]] = {}
    todo: list[tuple[Query, list[str]]] = []
    for q in queries:
        shown = shown_candidates(q.id, ranked[q.id], k, seed)
        if len(shown) < 2:
            final[q.id] = ranked[q.id].items()
        else:
            todo.append((q, shown))
    for start in tqdm(range(0, len(todo), batch_size), desc="GSV", ascii=True, mininterval=2.0):
        chunk = todo[start:start + batch_size]
        encoded = [prompt(bb, task, table, q, shown) for q, shown in chunk]
        inputs = left_padded(bb, encoded, images)
        with bb.inference():
            logits = bb.model(**inputs).logits[:, -1, :].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        for row, (q, shown) in enumerate(chunk):
            letters = label_token_ids(bb, len(shown))
            scores = logprobs[row, letters].tolist()
            order = sorted(range(len(shown)), key=lambda j: (-scores[j], j))
            top = [shown[j] for j in order]
            final[q.id] = top + [i for i in ranked[q.id].items() if i not in top]
    return final


def accuracy_by_position(queries: list[Query], ranked: dict[str, Ranked],
                         final: dict[str, list[str]], k: int, seed: int) -> list[dict]:
    """How often GSV put a correct item first, by the position (letter) at which the first
    correct candidate was shown; queries whose candidates hold no correct item are left out.
    A verifier without position bias has no trend over the letters (notebook 04)."""
    counts: dict[int, list[int]] = {}
    for q in queries:
        shown = shown_candidates(q.id, ranked[q.id], k, seed)
        position = next((j for j, c in enumerate(shown) if c in q.relevant), None)
        if len(shown) >= 2 and position is not None:
            n_hit = counts.setdefault(position, [0, 0])
            n_hit[0] += 1
            n_hit[1] += final[q.id][0] in q.relevant
    return [{"shown at": LABELS[j], "queries": n, "GSV top-1 correct %": round(100 * hit / n, 1)}
            for j, (n, hit) in sorted(counts.items())]
