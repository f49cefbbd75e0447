"""The paper's Table 1 baselines: GRACE's identifiers (Li et al., 2024b) and an RQ stand-in.

Numeric, atomic and structured IDs are unique by construction, so the collisions option
changes nothing for them. String and semantic IDs are words of the item's own source
text; RQ IDs are residual-quantised codes of its vector, an AVG/IRGen-style stand-in (neither
paper's tokenizer is reproduced). Those three can collide, and the collisions option decides
(sid.assemble). Every identifier sits in the lexical slot (no global part), which is what GSV
would show.
"""
from __future__ import annotations

import re
import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer

from semcore.identifiers.base import IdentifierInputs, IdentifierOptions, IdentifierTable
from semcore.identifiers.sid import N_INIT, assemble, kmeans_labels
from semcore.keywords import CAPTION_STOP_WORDS

BRANCHING = 10  # children per node of the structured ID's K-Means tree
STRING_WORDS = 8  # words of the source text kept by the string ID
RQ_LEVELS = 3  # residual codebooks of the RQ ID
RQ_CODEBOOK = 64  # centroids per codebook (at most n)
RQ_PREFIXES = "abcdefgh"  # token prefix per level, so that levels never share a token
EMPTY = "untitled"  # identifier of an item whose text has no usable word


def build_numeric(inputs: IdentifierInputs, opts: IdentifierOptions) -> IdentifierTable:
    """A seeded random permutation of 0..n-1, one number per item, written as is ("4821").

    Digits are not spaced out: identifiers are plain words and numbers, and the backbone's
    tokenizer decides how a number is split.
    """
    numbers = np.random.default_rng(opts.seed).permutation(len(inputs.item_ids))
    blank = [""] * len(numbers)
    return assemble("numeric", inputs.item_ids, blank, [str(x) for x in numbers],
                    opts.collisions, {})


ATOMIC_TOKEN = "<item_{}>"  # one new vocabulary entry per item


def build_atomic(inputs: IdentifierInputs, opts: IdentifierOptions) -> IdentifierTable:
    """GRACE Atomic ID: one new token per item ("<item_4821>"), numbered by a seeded permutation.

    This is the vocabulary expansion SSI argues against: the backbone must add every
    identifier to its tokenizer (info["new_tokens"]) and learn an embedding for each, so an
    identifier is decoded in a single step and shares nothing with any other.
    """
    numbers = np.random.default_rng(opts.seed).permutation(len(inputs.item_ids))
    tokens = [ATOMIC_TOKEN.format(x) for x in numbers]
    return assemble("atomic", inputs.item_ids, [""] * len(tokens), tokens, opts.collisions,
                    {"new_tokens": sorted(tokens)})


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


def build_string(inputs: IdentifierInputs, opts: IdentifierOptions) -> IdentifierTable:
    """GRACE String ID: the item's source text itself, normalised.

    Read as: lower case, words only (runs of letters and digits; punctuation dropped, stop
    words kept, since it is the text itself), the first STRING_WORDS words. Items with the
    same opening share an identifier until the collisions option separates them.
    """
    words = [re.findall(r"[a-z0-9]+", text.lower())[:STRING_WORDS] for text in inputs.texts]
    lexical = [" ".join(w) or EMPTY for w in words]
    return assemble("string", inputs.item_ids, [""] * len(lexical), lexical,
                    opts.collisions, {"words": STRING_WORDS})


def build_semantic(inputs: IdentifierInputs, opts: IdentifierOptions) -> IdentifierTable:
    """GRACE Semantic ID: a few words that summarise the item, from its source text.

    GRACE took pseudo-query words; read here as the item's top opts.lexical_length words by
    plain TF-IDF (sklearn TfidfVectorizer, CAPTION_STOP_WORDS, fitted on all items' source
    texts), highest weight first, ties alphabetical. An item without usable words is EMPTY.
    """
    vectorizer = TfidfVectorizer(lowercase=True, stop_words=sorted(CAPTION_STOP_WORDS))
    try:
        weights = vectorizer.fit_transform(inputs.texts).toarray()
        vocab = vectorizer.get_feature_names_out()  # sorted: stable argsort breaks ties by word
    except ValueError:  # no text has a single usable word
        weights, vocab = np.zeros((len(inputs.texts), 0)), np.array([], dtype=object)
    lexical = []
    for row in weights:
        order = np.argsort(-row, kind="stable")[:opts.lexical_length]
        lexical.append(" ".join(str(vocab[j]) for j in order if row[j] > 0) or EMPTY)
    return assemble("semantic", inputs.item_ids, [""] * len(lexical), lexical,
                    opts.collisions, {"lexical_length": opts.lexical_length})


def rq_codes(x: np.ndarray, levels: int, k: int, seed: int) -> np.ndarray:
    """(n, levels) residual K-Means codes: each level quantises what the previous left."""
    residual = np.array(x, dtype=np.float64)
    codes = np.zeros((len(residual), levels), dtype=int)
    for level in range(levels):
        with warnings.catch_warnings():  # fewer distinct residuals than k (duplicates)
            warnings.simplefilter("ignore", ConvergenceWarning)
            km = KMeans(n_clusters=k, n_init=N_INIT, random_state=seed).fit(residual)
        codes[:, level] = km.labels_
        residual = residual - km.cluster_centers_[km.labels_]
    return codes


def build_rq(inputs: IdentifierInputs, opts: IdentifierOptions) -> IdentifierTable:
    """AVG/IRGen-style RQ ID: RQ_LEVELS residual codes of the item's vector ("a12 b3 c40").

    Stand-in for AVG's vokens and IRGen's image tokenizer: residual K-Means (min(RQ_CODEBOOK,
    n) centroids per level, seeded) over inputs.vectors when given, else the text embeddings.
    Each level's codes carry their own letter, so equal numbers of different levels differ.
    """
    x = inputs.vectors if inputs.vectors is not None else inputs.text_embeddings
    k = min(RQ_CODEBOOK, len(inputs.item_ids))
    codes = rq_codes(np.asarray(x), RQ_LEVELS, k, opts.seed)
    lexical = [" ".join(f"{RQ_PREFIXES[i]}{c}" for i, c in enumerate(row)) for row in codes]
    return assemble("rq", inputs.item_ids, [""] * len(lexical), lexical, opts.collisions,
                    {"levels": RQ_LEVELS, "codebook_size": k})
