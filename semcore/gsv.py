"""Generative Semantic Verification (paper §3.3): the backbone re-ranks the top-k candidates.

1. Candidate aggregation: the top-k items of constrained decoding; a candidate group (items
   sharing an identifier) is never split, so a group straddling k is kept whole (≤ 26).
2. Verification, in one of three formats (`gsv_format`):
   - `listwise`, the paper's: every candidate with its lexical ID under a letter, then the query
     and the instruction to select the best match; a candidate's score is the log-probability
     of its letter. A small verifier learns a prior over letters as easily as a comparison
     (notebook 04 shows accuracy by the letter the answer was shown at).
   - `listwise_permuted`: the same prompt under every cyclic shift of the candidates; a
     candidate's score is the mean log-probability of its letter over the shifts, so each
     candidate is scored at every position once and a letter prior cancels out (k forward
     passes per query instead of one).
   - `pointwise`: one prompt per candidate (it, then the query, then "match:"), scored by the
     log-odds of " yes" against " no"; no letters, so no letter prior.
   - `likelihood`: one prompt per candidate, scored by the mean log-probability of the query's
     tokens written after the candidate (T2I; I2T: of the candidate caption's tokens after the
     query image), as query-likelihood re-rankers do. It is trained on generation alone (each
     train query written after its own item), so it needs no negatives, and a verifier that
     writes the words a candidate implies compares candidate and query by construction.
   Candidates are shown in a seeded random order of the candidate set (the same set gives the
   same order, whatever order decoding returned it in).
3. Discrimination: the top-k are re-ranked by their scores (the best first), optionally plus a
   weight × their decoding score (`gsv_decode_weight`; 0, the paper's, trusts the verifier
   alone); the items after the top-k keep their generative order.
Training examples come from the retrieval model's own candidates on train-split queries (the
positive plus the hard negatives it actually retrieved; a missed positive replaces the last),
with the answer's letter balanced over positions (listwise) or matches and non-matches
balanced (pointwise); the likelihood format learns from each train query and its own item.
"""
from __future__ import annotations

import hashlib
import math

import numpy as np
import torch
from tqdm import tqdm

from semcore.identifiers.base import IdentifierTable
from semcore.models import Backbone
from semcore.prompts import (LABELS, Encoded, gsv_i2t, gsv_likelihood_i2t, gsv_likelihood_t2i,
                             gsv_pair_i2t, gsv_pair_t2i, gsv_t2i, label_token_ids, verdict_token_ids)
from semcore.protocol import Query, Task
from semcore.retrieval import Ranked, left_padded, to_model

FORMATS = ("listwise", "listwise_permuted", "pointwise", "likelihood")


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
    """The top-k candidates in the order the verifier sees them: a seeded shuffle of the
    candidate set, so it does not depend on the order decoding returned them in."""
    return shuffled(query_id, candidates(ranked, k), seed)


def shuffled(query_id: str, items: list[str], seed: int) -> list[str]:
    """`items` in the query's seeded presentation order, a function of the set alone."""
    items = sorted(items)
    return [items[i] for i in presentation_order(query_id, len(items), seed)]


def prompt(bb: Backbone, task: Task, table: IdentifierTable, query: Query, shown: list[str],
           answer: int | None = None, show_source: bool = False) -> Encoded:
    """The listwise verification prompt for one query and its candidates in presentation order."""
    if task.direction == "t2i":
        return gsv_t2i(bb, query.text, [(i, _lexical(task, table, i, show_source)) for i in shown],
                       answer)
    return gsv_i2t(bb, query.image_id,
                   [(task.item(i).source_text, table.lexical(i)) for i in shown], answer)


def pair_prompt(bb: Backbone, task: Task, table: IdentifierTable, query: Query, item: str,
                answer: bool | None = None, show_source: bool = False) -> Encoded:
    """The pointwise verification prompt for one query and one candidate."""
    if task.direction == "t2i":
        source = task.item(item).source_text if show_source else None
        return gsv_pair_t2i(bb, query.text, (item, table.lexical(item), source), answer)
    return gsv_pair_i2t(bb, query.image_id, (task.item(item).source_text, table.lexical(item)),
                        answer)


def likelihood_prompt(bb: Backbone, task: Task, table: IdentifierTable, query: Query, item: str,
                      show_source: bool = False) -> Encoded:
    """The likelihood prompt for one query and one candidate: the candidate (T2I: its image and
    lexical ID, with `show_source` its source text) and the query to write (I2T: the query image
    and the candidate caption to write)."""
    if task.direction == "t2i":
        source = task.item(item).source_text if show_source else None
        return gsv_likelihood_t2i(bb, query.text, (item, table.lexical(item), source))
    return gsv_likelihood_i2t(bb, query.image_id, task.item(item).source_text)


def _lexical(task: Task, table: IdentifierTable, item: str, show_source: bool) -> str:
    """A T2I candidate's text in the listwise prompt: its lexical ID, and with `show_source`
    the item's own source text (its held-out caption, never a test query)."""
    lexical = table.lexical(item)
    return f"{lexical} ({task.item(item).source_text})" if show_source else lexical


def training_examples(bb: Backbone, task: Task, table: IdentifierTable,
                      train_queries: list[Query], ranked: dict[str, Ranked], k: int, seed: int,
                      fmt: str = "listwise", show_source: bool = False) -> list[Encoded]:
    """Examples from each train query's retrieved candidates with the positive among them.

    Listwise formats: one prompt per query, the answer's position cycling over the positions
    (query i puts it at i mod n) so every letter is the answer equally often. Pointwise: the
    positive and the two best-ranked negatives, the positive twice, so " yes" and " no" are
    equally frequent."""
    check_format(fmt)
    if fmt == "likelihood":
        return [likelihood_prompt(bb, task, table, q, item, show_source)
                for q in train_queries for item in sorted(q.relevant)]
    examples = []
    for number, q in enumerate(train_queries):
        cands = candidates(ranked[q.id], k)
        if not any(c in q.relevant for c in cands):
            positive = sorted(q.relevant)[0]
            cands = (cands[:-1] if len(cands) >= k else cands) + [positive]
        if len(cands) < 2:
            continue  # nothing to choose between
        positive = next(c for c in cands if c in q.relevant)
        if fmt == "pointwise":
            negatives = [c for c in cands if c not in q.relevant][:2]
            examples += [pair_prompt(bb, task, table, q, positive, True, show_source)] * len(negatives)
            examples += [pair_prompt(bb, task, table, q, c, False, show_source) for c in negatives]
            continue
        others = [c for c in shuffled(q.id, cands, seed) if c != positive]
        answer = number % (len(others) + 1)
        shown = others[:answer] + [positive] + others[answer:]
        examples.append(prompt(bb, task, table, q, shown, answer, show_source))
    return examples


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown GSV format {fmt!r}; valid: {', '.join(FORMATS)}")


def training_format(fmt: str) -> str:
    """The prompts a verifier is trained on: both listwise formats train on the lettered prompt."""
    check_format(fmt)
    return "listwise" if fmt == "listwise_permuted" else fmt


def needs_candidates(fmt: str) -> bool:
    """Whether the format trains on the retrieval model's candidates (the likelihood format
    learns from each train query and its own item only)."""
    return training_format(fmt) != "likelihood"


def uniform_loss(fmt: str, k: int) -> float | None:
    """The training loss per target token of a verifier that guesses uniformly (the answer token
    at ln(choices), its end token free): what a verifier that learnt nothing sits at. None for
    the likelihood format, whose loss is a language model's over the query's words."""
    if fmt == "likelihood":
        return None
    return math.log(2 if fmt == "pointwise" else k) / 2


def _scoring_prompts(bb: Backbone, task: Task, table: IdentifierTable, q: Query, shown: list[str],
                     fmt: str, show_source: bool):
    """(prompt, reads) pairs for one query; each read (slot, token, minus token or None, weight)
    adds weight × (log p(token) − log p(minus token)) to candidate `slot`'s score."""
    n = len(shown)
    if fmt == "likelihood":  # token None: the mean log-probability of the prompt's target
        return [(likelihood_prompt(bb, task, table, q, item, show_source), [(j, None, None, 1.0)])
                for j, item in enumerate(shown)]
    if fmt == "pointwise":
        yes, no = verdict_token_ids(bb)
        return [(pair_prompt(bb, task, table, q, item, None, show_source), [(j, yes, no, 1.0)])
                for j, item in enumerate(shown)]
    letters = label_token_ids(bb, n)
    shifts = range(n) if fmt == "listwise_permuted" else range(1)
    out = []
    for shift in shifts:
        order = [(j + shift) % n for j in range(n)]  # slot shown at each position
        reads = [(slot, letters[pos], None, 1.0 / len(shifts)) for pos, slot in enumerate(order)]
        out.append((prompt(bb, task, table, q, [shown[slot] for slot in order], None, show_source),
                    reads))
    return out


def scores(bb: Backbone, task: Task, table: IdentifierTable, todo: list[tuple[Query, list[str]]],
           images: dict[str, np.ndarray], fmt: str = "listwise", show_source: bool = False,
           batch_size: int = 8) -> list[list[float]]:
    """The verifier's score of every shown candidate of every query (higher is better)."""
    check_format(fmt)
    flat = [(row, enc, reads) for row, (q, shown) in enumerate(todo)
            for enc, reads in _scoring_prompts(bb, task, table, q, shown, fmt, show_source)]
    out = [[0.0] * len(shown) for _, shown in todo]
    bb.prepare_texts(t for _, enc, _ in flat for t in enc.texts)
    for start in tqdm(range(0, len(flat), batch_size), desc=f"GSV {fmt}", ascii=True,
                      mininterval=2.0):
        chunk = flat[start:start + batch_size]
        if fmt == "likelihood":
            for (row, _, reads), value in zip(chunk, target_logprobs(bb, [e for _, e, _ in chunk], images)):
                out[row][reads[0][0]] += value
            continue
        inputs = left_padded(bb, [enc for _, enc, _ in chunk], images)
        with bb.inference():
            logits = bb.model(**inputs).logits[:, -1, :].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        for i, (row, _, reads) in enumerate(chunk):
            for slot, token, minus, weight in reads:
                value = logprobs[i, token] - (logprobs[i, minus] if minus is not None else 0.0)
                out[row][slot] += weight * float(value)
    return out


def target_logprobs(bb: Backbone, batch: list[Encoded], images: dict[str, np.ndarray]) -> list[float]:
    """Mean log-probability of each prompt's target tokens after it (teacher forcing): the
    likelihood format's score, the same value whatever else shares the batch (padding is masked)."""
    from semcore.train import Collator
    inputs = to_model(bb, Collator(bb, images)(batch))
    labels = inputs.pop("labels")
    with bb.inference():
        logits = bb.model(**inputs).logits[:, :-1].float()
    targets, scored = labels[:, 1:], labels[:, 1:] != -100
    picked = torch.log_softmax(logits, dim=-1).gather(-1, targets.clamp(min=0)[..., None])[..., 0]
    return ((picked * scored).sum(1) / scored.sum(1)).tolist()


def verify(bb: Backbone, task: Task, table: IdentifierTable, queries: list[Query],
           ranked: dict[str, Ranked], images: dict[str, np.ndarray], k: int, seed: int,
           fmt: str = "listwise", show_source: bool = False,
           batch_size: int = 8) -> dict[str, dict]:
    """The verifier's reading of each query's top-k: {query id: {"shown": candidates in
    presentation order, "scores": the verifier's score of each}}; queries with fewer than two
    candidates have nothing to verify and are left out."""
    todo = [(q, shown_candidates(q.id, ranked[q.id], k, seed)) for q in queries]
    todo = [(q, shown) for q, shown in todo if len(shown) >= 2]
    found = scores(bb, task, table, todo, images, fmt, show_source, batch_size)
    return {q.id: {"shown": shown, "scores": score} for (q, shown), score in zip(todo, found)}


def combine(verified: dict[str, dict], ranked: dict[str, Ranked],
            decode_weight: float = 0.0) -> dict[str, list[str]]:
    """Final item rankings: each query's verified top-k ordered by the verifier's score plus
    `decode_weight` × the candidate's decoding score (eq. 1; 0 is the paper's GSV, the verifier
    alone), then the rest in their generative order."""
    final = {}
    for qid, r in ranked.items():
        if qid not in verified:
            final[qid] = r.items()
            continue
        decode = {i: score for group, score in zip(r.groups, r.scores) for i in group}
        shown, score = verified[qid]["shown"], verified[qid]["scores"]
        total = [v + decode_weight * decode[i] if decode_weight else v for i, v in zip(shown, score)]
        top = [shown[j] for j in sorted(range(len(shown)), key=lambda j: (-total[j], j))]
        final[qid] = top + [i for i in r.items() if i not in top]
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
            _count(counts, position, final[q.id][0] in q.relevant)
    return _by_position(counts)


def accuracy_by_rotation(bb: Backbone, task: Task, table: IdentifierTable, queries: list[Query],
                         ranked: dict[str, Ranked], images: dict[str, np.ndarray], k: int,
                         seed: int, fmt: str, show_source: bool, decode_weight: float,
                         batch_size: int = 8) -> list[dict]:
    """accuracy_by_position with every query seen at every position: each query's shown list
    is verified in all its cyclic rotations, so its (first shown) correct candidate visits each
    letter and every position is measured on the same queries (a paired design: accuracies
    differ by position bias alone, not by which queries happened to land where). Costs
    len(list) times the verification of the queries whose list holds a correct item."""
    todo, tracked = [], {}
    for q in queries:
        shown = shown_candidates(q.id, ranked[q.id], k, seed)
        first = next((c for c in shown if c in q.relevant), None)  # the correct candidate followed
        if len(shown) >= 2 and first is not None:
            todo += [(q, shown[shift:] + shown[:shift]) for shift in range(len(shown))]
            tracked[q.id] = first
    found = scores(bb, task, table, todo, images, fmt, show_source, batch_size)
    counts: dict[int, list[int]] = {}
    for (q, rotated), score in zip(todo, found):
        pick = combine({q.id: {"shown": rotated, "scores": score}}, {q.id: ranked[q.id]},
                       decode_weight)[q.id][0]
        position = rotated.index(tracked[q.id])
        _count(counts, position, pick in q.relevant)
    return _by_position(counts)


def _count(counts: dict[int, list[int]], position: int, hit: bool) -> None:
    n_hit = counts.setdefault(position, [0, 0])
    n_hit[0] += 1
    n_hit[1] += hit


def _by_position(counts: dict[int, list[int]]) -> list[dict]:
    return [{"shown at": LABELS[j], "queries": n, "GSV top-1 correct %": round(100 * hit / n, 1)}
            for j, (n, hit) in sorted(counts.items())]


def position_check(by_position: list[dict], min_queries: int = 20, tolerance: float = 10.0) -> dict:
    """Whether top-1 accuracy depends on where the correct candidate was shown: the largest
    deviation from the mean over positions shown to at least `min_queries` queries, and a
    chi-square test of independence of (correct, wrong) × position over those positions
    (p < 0.05: accuracy depends on position). A verifier that always answers one letter is
    right only where the answer sits at that letter: flagged."""
    from scipy.stats import chi2_contingency

    rows = [r for r in by_position if r["queries"] >= min_queries]
    if len(rows) < 2:
        return {"positions tested": len(rows), "mean %": None, "max deviation": None, "p": None,
                "biased": None}
    hits = [round(r["queries"] * r["GSV top-1 correct %"] / 100) for r in rows]
    table = [[h, r["queries"] - h] for h, r in zip(hits, rows)]
    mean = 100 * sum(hits) / sum(r["queries"] for r in rows)
    deviation = max(abs(r["GSV top-1 correct %"] - mean) for r in rows)
    constant_column = any(sum(col) == 0 for col in zip(*table))
    p_value = 1.0 if constant_column else float(chi2_contingency(table)[1])
    return {"positions tested": len(rows), "mean %": round(mean, 1),
            "max deviation": round(deviation, 1), "p": round(p_value, 4),
            "biased": bool(deviation > tolerance or p_value < 0.05)}
