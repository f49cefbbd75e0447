"""Trie-constrained beam search with transformers' `generate` (paper §3, eq. 1).

The paper ranks identifiers by their sequence log-probability under the model,
sum_t log p(token_t | prefix, query). transformers 5's beam search computes
`log_softmax(logits)` first and only then calls the logits processors
(generation/utils.py, `_beam_search`), and a beam's score is the plain sum of the processed
values. So a processor that only sets disallowed tokens to -inf — no renormalization over the
allowed set — leaves every allowed token's value at the model's own log-probability, and with
`length_penalty=0.0` a finished beam's score is exactly eq. 1 for its identifier.

That beam search also keeps two kinds of placeholder beams at a score of -1e9: at the first
step the copies of beam 0 (every beam holds the same prompt), and afterwards hypotheses that
already finished. On a small trie they get picked (fewer valid continuations than beams); a
placeholder that then finishes enters the finished-hypothesis buffer at -1e9, ties its empty
slots, and once the buffer counts as full `early_stopping=True` ends the search before the real
identifiers finish. So under beam search the processor gives placeholders -inf for every token:
the copies at the first step, and every row whose prefix is a complete identifier (or off the
trie). All -inf rows are harmless there (top-k, no softmax after the processors), and a beam as
wide as the trie then returns all of it. With num_beams=1 (greedy or sampling) a finished row is
padded by `generate` instead, and it may emit only the end token, so that no row is all -inf.
"""
from __future__ import annotations

import torch
from transformers import LogitsProcessor, LogitsProcessorList, PreTrainedModel

from semcore.trie import Trie

# Generation settings that would rescore tokens; forced to neutral so that a model's own
# generation_config (e.g. a chat model's repetition_penalty) cannot alter eq. 1.
NEUTRAL_SCORING = dict(repetition_penalty=1.0, no_repeat_ngram_size=0,
                       encoder_repetition_penalty=1.0, encoder_no_repeat_ngram_size=0,
                       min_length=0, min_new_tokens=None, bad_words_ids=None, sequence_bias=None,
                       suppress_tokens=None, begin_suppress_tokens=None, forced_bos_token_id=None,
                       forced_eos_token_id=None, exponential_decay_length_penalty=None,
                       guidance_scale=None, remove_invalid_values=False)
# transformers' beam search fills unused finished-hypothesis slots with this score.
_EMPTY_SLOT_SCORE = -1.0e9


class TrieLogitsProcessor(LogitsProcessor):
    """Keeps only the tokens that extend the generated part of each row along the trie.

    `prompt_length`: columns of `input_ids` that precede the generated tokens (the full prompt
    width with left padding; 0 when generating from `inputs_embeds`). `num_beams`: the beam width
    of the `generate` call, which decides how placeholder and finished rows are treated (module
    docstring); num_beams > 1 assumes deterministic beam search (do_sample=False), since beam
    sampling would softmax the all -inf rows.
    The node of every row is recomputed from its generated suffix each step (beams are reordered
    between steps); `Trie.walk` does that with one searchsorted per generated position.
    """

    def __init__(self, trie: Trie, prompt_length: int, end_token_id: int, num_beams: int = 1):
        self.trie = trie
        self.prompt_length = prompt_length
        self.end_token_id = end_token_id
        self.num_beams = num_beams

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.trie.keys.device != scores.device:
            self.trie = self.trie.to(scores.device)
        generated = input_ids[:, self.prompt_length:]
        nodes = self.trie.walk(generated)  # finished rows (leaves) and rows off the trie: none allowed
        if self.num_beams > 1 and generated.shape[1] == 0:
            copies = torch.arange(scores.shape[0], device=nodes.device) % self.num_beams != 0
            nodes = nodes.masked_fill(copies, -1)
        out = self.trie.restrict(scores, nodes)
        if self.num_beams == 1:
            stuck = torch.isinf(out).all(dim=1)  # log-probabilities are finite: nothing allowed
            out[stuck, self.end_token_id] = scores[stuck, self.end_token_id]
        return out


def constrained_beam_search(model: PreTrainedModel, trie: Trie, end_token_id: int, beam_size: int,
                            max_new_tokens: int, pad_token_id: int | None = None,
                            **model_inputs: torch.Tensor) -> list[list[tuple[list[int], float]]]:
    """Per input row, the distinct identifiers the beam search finished, best first.

    Each entry is (generated token ids up to and including the end token, i.e. a trie sequence
    that `trie.lookup` maps to items; its sequence log-probability, eq. 1). At most `beam_size`
    per row; with `beam_size` >= the number of distinct identifiers the search is exhaustive.
    `model_inputs` go to `model.generate` unchanged: `input_ids` (+ `attention_mask`, left
    padded) for a decoder-only LM, plus `pixel_values` for a VLM, or `inputs_embeds` alone.
    `pad_token_id` defaults to `end_token_id`. `beam_size` must be at least 2: transformers runs
    num_beams=1 as greedy search, which hands the processors raw logits and reports no scores.
    """
    if beam_size < 2:
        raise ValueError(f"beam_size must be >= 2, got {beam_size}")
    input_ids = model_inputs.get("input_ids")
    prompt_length = 0 if input_ids is None else input_ids.shape[1]
    processor = TrieLogitsProcessor(trie, prompt_length, end_token_id, num_beams=beam_size)
    out = model.generate(
        **model_inputs, logits_processor=LogitsProcessorList([processor]),
        num_beams=beam_size, num_return_sequences=beam_size, length_penalty=0.0, do_sample=False,
        early_stopping=True, output_scores=True, return_dict_in_generate=True,
        max_new_tokens=max_new_tokens, eos_token_id=end_token_id,
        pad_token_id=end_token_id if pad_token_id is None else pad_token_id, **NEUTRAL_SCORING)
    generated = out.sequences[:, prompt_length:]
    generated = generated.view(-1, beam_size, generated.shape[1])
    scores = out.sequences_scores.view(-1, beam_size)
    return [_finished(row_tokens, row_scores, end_token_id)
            for row_tokens, row_scores in zip(generated.tolist(), scores.tolist())]


def _finished(beams: list[list[int]], scores: list[float],
              end_token_id: int) -> list[tuple[list[int], float]]:
    """Distinct finished beams of one input row (already best first), cut after the end token.

    Empty slots and -inf placeholders fail the score test; beams stopped by max_new_tokens
    lack the end token.
    """
    results: dict[tuple[int, ...], float] = {}
    for tokens, score in zip(beams, scores):
        if score > _EMPTY_SLOT_SCORE and end_token_id in tokens:
            results.setdefault(tuple(tokens[:tokens.index(end_token_id) + 1]), score)
    return [(list(tokens), score) for tokens, score in results.items()]
