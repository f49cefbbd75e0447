"""Shared test oracle: eq. 1 from a plain forward pass, and the check that constrained search
returns every identifier with exactly that score."""
from __future__ import annotations

import pytest
import torch


def sequence_log_prob(model, prompt: list[int], identifier: list[int], **extra) -> float:
    """Eq. 1 from one plain forward pass: sum of log_softmax over the identifier's tokens."""
    logits = model(input_ids=torch.tensor([prompt + identifier]), **extra).logits[0].float()
    log_probs = torch.log_softmax(logits[len(prompt) - 1:-1], dim=-1)
    return log_probs.gather(1, torch.tensor(identifier)[:, None]).sum().item()


def assert_exhaustive_with_exact_scores(bb, trie, targets, queries, results, images) -> None:
    """Per query: the search found every target, each a trie sequence scored as eq. 1 (images
    of the query given to the forward pass as the backbone's pixel values)."""
    for query, found in zip(queries, results):
        assert {tuple(s) for s, _ in found} == {tuple(t) for t in targets}
        extra = {"pixel_values": bb.pixel_values([images[i] for i in query.images])} \
            if query.images else {}
        for identifier, score in found:
            assert trie.lookup(identifier)
            assert score == pytest.approx(
                sequence_log_prob(bb.model, query.prompt, identifier, **extra), abs=1e-4)
