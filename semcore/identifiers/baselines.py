"""GRACE's numeric and structured identifiers (Li et al., 2024b), the paper's baselines.

Both are numbers only: what SemCORE's natural-language SID is compared against. They are
unique by construction, so the collisions option changes nothing for them. The whole number
string sits in the lexical slot (no global part), which is what GSV would show.
"""
from __future__ import annotations

import numpy as np

from semcore.identifiers.base import IdentifierInputs, IdentifierOptions, IdentifierTable
from semcore.identifiers.sid import assemble, kmeans_labels

BRANCHING = 10  # children per node of the structured ID's K-Means tree


def build_numeric(inputs: IdentifierInputs, opts: IdentifierOptions) -> IdentifierTable:
    """A seeded random permutation of 0..n-1, one number per item, written as is ("4821").

    Digits are not spaced out: identifiers are plain words and numbers, and the backbone's
    tokenizer decides how a number is split.
    """
    numbers = np.random.default_rng(opts.seed).permutation(len(inputs.item_ids))
    blank = [""] * len(numbers)
    return assemble("numeric", inputs.item_ids, blank, [str(x) for x in numbers],
                    opts.collisions, {})


def tree_paths(x: np.ndarray, seed: int, branching: int = BRANCHING) -> list[list[int]]:
    """Hierarchical K-Means path per row, then the row's position in its leaf.

    A node with more than `branching` rows is split by K-Means into `branching` children; a
    leaf holds at most `branching` rows, numbered in row order. A node whose rows K-Means
    cannot separate (identical vectors) stays a leaf, however large.
    """
    paths: list[list[int]] = [[] for _ in range(len(x))]
    stack = [(np.arange(len(x)), [])]
    while stack:
        rows, prefix = stack.pop()
        labels = kmeans_labels(x[rows], branching, seed) if len(rows) > branching else None
        if labels is None or len(np.unique(labels)) < 2:
            for position, r in enumerate(rows):
                paths[r] = prefix + [position]
            continue
        stack.extend((rows[labels == c], prefix + [c]) for c in np.unique(labels).tolist())
    return paths


def build_structured(inputs: IdentifierInputs, opts: IdentifierOptions) -> IdentifierTable:
    """GRACE/DSI structured ID: the K-Means tree path, space separated ("3 0 7 2").

    Clusters inputs.vectors (image features for text-to-image) when given, else the text
    embeddings.
    """
    x = inputs.vectors if inputs.vectors is not None else inputs.text_embeddings
    paths = tree_paths(np.asarray(x), opts.seed)
    blank = [""] * len(paths)
    return assemble("structured", inputs.item_ids, blank,
                    [" ".join(map(str, p)) for p in paths], opts.collisions, {})
