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

`generate` copies every prompt to its num_beams rows before the first forward pass, so beam
search runs each prompt num_beams times: with beam 20 and a ~40-token prompt that prefill is most
of a query's cost, and it does not depend on the corpus at all. `beam_search` therefore runs
each prompt once (all but its last token, images included), copies the key/value cache to the
beams and lets `generate` continue from it (its cache-continuation path feeds only the last
prompt token). The scores are the same log-probabilities (tested against a forward pass).

Two other scores are options (`DECODE_SCORES`, the profile's `decode_score`), both computed by
the search itself, so they also decide which hypotheses the beams keep, not only their order:
"length_normalized" is eq. 1 divided by the number of generated tokens (end token included):
`length_penalty=1.0`, since `_update_finished_beams` divides a finished hypothesis' summed score
by `(cur_len + 1 - decoder_prompt_len) ** length_penalty`, `cur_len` being the width before the
end token is appended and `decoder_prompt_len` the full prompt width (running beams stay ranked
by their sums; `early_stopping=True` still ends the search once `num_beams` hypotheses finished,
so with a narrow beam a longer identifier that would rank higher can be missed). "renormalized"
has the processor replace the allowed tokens' log-probabilities by a log_softmax over the
allowed set (all -inf rows are left as they are, no NaN), so a finished beam's sum is
log P(identifier | the identifiers in the trie).
"""
from __future__ import annotations

import numpy as np
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
# An identifier's score (module docstring): "sum" is eq. 1, the paper's.
DECODE_SCORES = ("sum", "length_normalized", "renormalized")


class TrieLogitsProcessor(LogitsProcessor):
    """Keeps only the tokens that extend the generated part of each row along the trie.

    `prompt_length`: columns of `input_ids` that precede the generated tokens (the full prompt
    width with left padding; 0 when generating from `inputs_embeds`). `num_beams`: the beam width
    of the `generate` call, which decides how placeholder and finished rows are treated (module
    docstring); num_beams > 1 assumes deterministic beam search (do_sample=False), since beam
    sampling would softmax the all -inf rows.
    Beams are reordered between steps, so a row's node is found from its generated part: one
    trie step from the node of the previous call's row that holds the same prefix (each beam
    extends a beam of its own query), or, when some row has no such parent (the first call, a
    processor reused for another search), a full `Trie.walk`. Both are exact.
    `renormalize`: the kept values become a log_softmax over each row's allowed tokens (the
    "renormalized" score); rows with nothing allowed stay all -inf.
    """

    def __init__(self, trie: Trie, prompt_length: int, end_token_id: int, num_beams: int = 1,
                 renormalize: bool = False):
        self.trie = trie
        self.prompt_length = prompt_length
        self.end_token_id = end_token_id
        self.num_beams = num_beams
        self.renormalize = renormalize
        self._previous: tuple[np.ndarray, np.ndarray] | None = None  # (generated, nodes)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids[:, self.prompt_length:].cpu().numpy()  # the trie lives on the host
        nodes = self._nodes(generated)  # finished rows (leaves) and rows off the trie: none allowed
        self._previous = (generated.copy(), nodes)  # generate may reuse its buffer
        if self.num_beams > 1 and generated.shape[1] == 0:
            nodes = np.where(np.arange(nodes.size) % self.num_beams != 0, -1, nodes)  # copies
        out = self.trie.restrict(scores, nodes)
        if self.num_beams == 1:
            stuck = torch.isinf(out).all(dim=1)  # log-probabilities are finite: nothing allowed
            out[stuck, self.end_token_id] = scores[stuck, self.end_token_id]
        if self.renormalize:
            live = (out > float("-inf")).any(dim=1)  # log_softmax of an all -inf row is NaN
            out[live] = torch.log_softmax(out[live], dim=-1)
        return out

    def _nodes(self, generated: np.ndarray) -> np.ndarray:
        """The trie node of every row's generated prefix [N, t] (class docstring)."""
        rows, t = generated.shape
        if self._previous is not None and t > 0 and rows % self.num_beams == 0:
            before, nodes_before = self._previous
            if before.shape == (rows, t - 1):
                # same[q, i, j]: row i of query q now extends what row j of q held before
                queries, beams = rows // self.num_beams, self.num_beams
                same = (generated[:, :-1].reshape(queries, beams, 1, t - 1)
                        == before.reshape(queries, 1, beams, t - 1)).all(axis=-1)
                if same.any(axis=-1).all():
                    parent = (same.argmax(axis=-1) + np.arange(0, rows, beams)[:, None]).ravel()
                    return self.trie.step(nodes_before[parent], generated[:, -1])
        return self.trie.walk(generated)


def prompt_cache(model: PreTrainedModel, num_beams: int,
                 **model_inputs: torch.Tensor) -> dict[str, torch.Tensor]:
    """`model_inputs` for `generate` with each prompt's key/value cache computed once and copied to
    its `num_beams` beams (module docstring).

    The prompt (`input_ids`, or `inputs_embeds` alone) minus its last column goes through one
    forward pass with the images (`pixel_values`), at the positions `generate` gives a left-padded
    prompt (attention-mask cumsum); the result holds the full prompt and its mask, the cache, and
    no image input, so every image placeholder must lie before the last prompt token (retrieval
    prompts end in text). A one-token prompt is returned unchanged.
    """
    key = "input_ids" if model_inputs.get("input_ids") is not None else "inputs_embeds"
    prompt = model_inputs[key]
    if prompt.shape[1] < 2:
        return model_inputs
    mask = model_inputs.get("attention_mask")
    if mask is None:
        mask = torch.ones(prompt.shape[:2], dtype=torch.long, device=prompt.device)
    positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
    images = {k: v for k, v in model_inputs.items() if k not in (key, "attention_mask")}
    out = model(**{key: prompt[:, :-1]}, attention_mask=mask[:, :-1],
                position_ids=positions[:, :-1], use_cache=True, logits_to_keep=1, **images)
    out.cache.batch_repeat_interleave(num_beams)
    return {key: prompt, "attention_mask": mask, "cache": out.cache}


def beam_search(model: PreTrainedModel, beam_size: int, max_new_tokens: int, end_token_id: int,
                pad_token_id: int, processors: list[LogitsProcessor], length_penalty: float = 0.0,
                **model_inputs: torch.Tensor):
    """transformers' deterministic beam search with the prompt run once per query
    (`prompt_cache`), returning all `beam_size` hypotheses per row with their summed scores
    (`length_penalty=0`: eq. 1 under a processor that only masks; 1: the sum divided by the
    generated length, end token included). `processors` empty is the unconstrained search
    (`decode_free`, the overhead benchmark's baseline)."""
    return model.generate(
        **prompt_cache(model, beam_size, **model_inputs),
        logits_processor=LogitsProcessorList(processors), num_beams=beam_size,
        num_return_sequences=beam_size, length_penalty=length_penalty, do_sample=False,
        early_stopping=True, output_scores=True, return_dict_in_generate=True,
        max_new_tokens=max_new_tokens,
        eos_token_id=end_token_id, pad_token_id=pad_token_id, **NEUTRAL_SCORING)


def constrained_beam_search(model: PreTrainedModel, trie: Trie, end_token_id: int, beam_size: int,
                            max_new_tokens: int, pad_token_id: int | None = None,
                            score: str = "sum",
                            **model_inputs: torch.Tensor) -> list[list[tuple[list[int], float]]]:
    """Per input row, the distinct identifiers the beam search finished, best first.

    Each entry is (generated token ids up to and including the end token, i.e. a trie sequence
    that `trie.lookup` maps to items; its score). `score` (`DECODE_SCORES`, module docstring):
    "sum" the sequence log-probability, eq. 1; "length_normalized" that divided by the entry's
    length; "renormalized" the log-probability renormalised over the trie's allowed tokens at
    every step. The search ranks hypotheses by it, so it can change which identifiers are found.
    At most `beam_size` per row; with `beam_size` >= the number of distinct identifiers the
    search is exhaustive.
    `model_inputs`: `input_ids` (+ `attention_mask`, left padded) for a decoder-only LM, plus
    `pixel_values` for a VLM, or `inputs_embeds` alone.
    `pad_token_id` defaults to `end_token_id`. `beam_size` must be at least 2: transformers runs
    num_beams=1 as greedy search, which hands the processors raw logits and reports no scores.
    """
    if beam_size < 2:
        raise ValueError(f"beam_size must be >= 2, got {beam_size}")
    if score not in DECODE_SCORES:
        raise ValueError(f"score must be one of {DECODE_SCORES}, got {score!r}")
    input_ids = model_inputs.get("input_ids")
    prompt_length = 0 if input_ids is None else input_ids.shape[1]
    processor = TrieLogitsProcessor(trie, prompt_length, end_token_id, num_beams=beam_size,
                                    renormalize=score == "renormalized")
    out = beam_search(model, beam_size, max_new_tokens, end_token_id,
                      end_token_id if pad_token_id is None else pad_token_id, [processor],
                      length_penalty=1.0 if score == "length_normalized" else 0.0,
                      **model_inputs)
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
