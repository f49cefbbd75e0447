"""SemCORE's Structured natural-language IDentifier (SID, paper §3.2) and its "w/o SID" ablation.

SID = global ID + lexical ID. The global ID names the item's K-Means cluster (over sentence
embeddings of its source text) by the cluster's top class-based TF-IDF word(s) (equation 2) or
by its number; the lexical ID is the item's top KeyBERT keywords, with the cluster's top
c-TF-IDF words removed when deduplicating (appendix A.1: top 5). Clusters that share a best
word are told apart by a number ("dog 1", "dog 2"), so every cluster has its own global ID.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans

from semcore.errors import ParamError
from semcore.identifiers.base import (IdentifierInputs, IdentifierOptions, IdentifierTable,
                                      add_suffixes)
from semcore.keywords import class_tfidf, keybert_keywords, top_cluster_words

N_INIT = 4  # K-Means restarts; fixed so that a seed fixes the clustering
INFO_TOP_WORDS = 10  # c-TF-IDF words per cluster kept in IdentifierTable.info


def kmeans_labels(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Cluster index per row (sklearn K-Means, fixed restarts, seeded)."""
    return KMeans(n_clusters=k, n_init=N_INIT, random_state=seed).fit_predict(x)


def cluster_count(n: int, opts: IdentifierOptions) -> int:
    """K: cluster_size itself ("clusters") or n / cluster_size items per cluster. More clusters
    (or items per cluster) than the n items is an error, not a silent cap: the identifiers would
    not be what the parameters say."""
    if not 1 <= opts.cluster_size <= n:
        meaning = "clusters" if opts.cluster_size_meaning == "clusters" else "items per cluster"
        raise ParamError(f"parameter 'cluster_size' = {opts.cluster_size} ({meaning}) must be in "
                         f"1..{n}: there are {n} items to cluster")
    k = opts.cluster_size if opts.cluster_size_meaning == "clusters" \
        else round(n / opts.cluster_size)
    return k


def assemble(scheme: str, item_ids: list[str], global_parts: list[str],
             lexical_parts: list[str], collisions: str, info: dict) -> IdentifierTable:
    """Join the parts into identifiers; "suffix" numbers items that share one (w/o GSV)."""
    bases = [" ".join(p for p in (g, lx) if p) for g, lx in zip(global_parts, lexical_parts)]
    if collisions == "suffix":
        suffixes = add_suffixes(bases)
    elif collisions == "group":
        suffixes = [""] * len(bases)
    else:
        raise ValueError(f"collisions must be 'group' or 'suffix', not {collisions!r}")
    identifiers = [f"{b} {s}" if s else b for b, s in zip(bases, suffixes)]
    return IdentifierTable(scheme, list(item_ids), identifiers, list(global_parts),
                           list(lexical_parts), suffixes, info)


def global_names(ranked: list[list[str]], weights: list[float], sizes: list[int],
                 n_words: int) -> list[str]:
    """One distinct name per non-empty cluster: its top n_words c-TF-IDF words.

    Several clusters often share their best word (Flickr8k has many "dog" clusters). Their
    names get a number, 1, 2, ... in order of the best word's weight (then cluster index):
    "dog 1", "dog 2". The word stays the one equation 2 ranks first; falling back to a
    next-best word gave misleading names ("through", "poles") and dedup would still drop the
    real top word. A cluster without any usable word is numbered the same way (name "1", ...).
    Empty clusters get "".
    """
    base = [" ".join(r[:n_words]) if size else None for r, size in zip(ranked, sizes)]
    shared = Counter(b for b in base if b is not None)
    names = [""] * len(ranked)
    seen: Counter[str] = Counter()
    for c in sorted(range(len(ranked)), key=lambda c: (-weights[c], c)):
        b = base[c]
        if b is None:
            continue
        if shared[b] > 1 or not b:
            seen[b] += 1
            b = f"{b} {seen[b]}".strip()
        names[c] = b
    return names


@dataclass
class Clusters:
    """K-Means over the source texts with each cluster's ranked c-TF-IDF words and name."""

    labels: np.ndarray  # cluster per item
    ranked: list[list[str]]  # c-TF-IDF words per cluster, best first
    names: list[str]  # global ID per cluster

    def info(self, item_ids: list[str]) -> dict:
        k = len(self.ranked)
        return {"k": k,
                "cluster_of": {item: int(c) for item, c in zip(item_ids, self.labels)},
                "cluster_sizes": np.bincount(self.labels, minlength=k).tolist(),
                "cluster_top_words": [r[:INFO_TOP_WORDS] for r in self.ranked],
                "global_ids": self.names}


def cluster_items(inputs: IdentifierInputs, opts: IdentifierOptions) -> Clusters:
    """Cluster, rank each cluster's words by equation 2 and name each cluster."""
    if opts.global_id_style not in ("words", "number") or opts.global_id_words < 1:
        raise ValueError(f"need global_id_style 'words' or 'number' and global_id_words >= 1, "
                         f"not {opts.global_id_style!r}, {opts.global_id_words}")
    k = cluster_count(len(inputs.texts), opts)
    labels = kmeans_labels(inputs.text_embeddings, k, opts.seed)
    members: list[list[str]] = [[] for _ in range(k)]
    for text, c in zip(inputs.texts, labels):
        members[c].append(text)
    vocab, weights = class_tfidf([" ".join(m) for m in members])
    ranked = top_cluster_words(weights, vocab, len(vocab))
    if opts.global_id_style == "number":
        names = [str(c) for c in range(k)]
    else:
        best = weights.max(axis=1).tolist() if weights.size else [0.0] * k
        names = global_names(ranked, best, [len(m) for m in members], opts.global_id_words)
    return Clusters(labels, ranked, names)


def build_sid(inputs: IdentifierInputs, opts: IdentifierOptions) -> IdentifierTable:
    """SID per item: "<global ID> <lexical ID>" (lexical only when not opts.use_global).

    With opts.dedup the lexical ID skips the cluster's top dedup_top_n c-TF-IDF words (and, for
    word global IDs, the global ID's words, in case global_id_words > dedup_top_n). A caption
    with fewer usable words gets a shorter lexical ID, possibly none (the SID is then the
    global ID alone); without a global ID such an item is "untitled", so that every
    identifier can be decoded.
    """
    cl = cluster_items(inputs, opts)
    exclude = None
    if opts.dedup:
        in_name = opts.global_id_words if opts.global_id_style == "words" else 0
        per_cluster = [set(r[:max(opts.dedup_top_n, in_name)]) for r in cl.ranked]
        exclude = [per_cluster[c] for c in cl.labels]
    keywords = keybert_keywords(inputs.texts, inputs.text_embeddings, opts.lexical_length,
                                exclude)
    lexical = [" ".join(words) for words in keywords]
    if opts.use_global:
        global_parts = [cl.names[c] for c in cl.labels]
    else:
        global_parts = [""] * len(lexical)
        lexical = [lx or "untitled" for lx in lexical]
    return assemble("sid", inputs.item_ids, global_parts, lexical, opts.collisions,
                    cl.info(inputs.item_ids))


def build_sid_anonymous(inputs: IdentifierInputs, opts: IdentifierOptions) -> IdentifierTable:
    """"w/o SID": the global ID, then an anonymous number in place of the keywords.

    The numbers are a seeded random permutation of 0..m-1 within each cluster of m items (of
    all items when not opts.use_global), so they are unique and carry neither meaning nor the
    items' order.
    """
    cl = cluster_items(inputs, opts)
    groups = cl.labels if opts.use_global else np.zeros_like(cl.labels)
    rng = np.random.default_rng(opts.seed)
    numbers = [""] * len(groups)
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        for r, number in zip(rows, rng.permutation(len(rows))):
            numbers[r] = str(number)
    global_parts = [cl.names[c] if opts.use_global else "" for c in cl.labels]
    return assemble("sid_anonymous", inputs.item_ids, global_parts, numbers, opts.collisions,
                    cl.info(inputs.item_ids))
