"""Words that describe captions: caption stop words, class-based TF-IDF and KeyBERT keywords.

The global ID of a SID is a cluster's top class-based TF-IDF word (paper equation 2) and the
lexical ID an item's top KeyBERT keywords with those cluster words removed (§3.2). Both read
words the same way: scikit-learn's CountVectorizer, lower-cased, tokens of two or more word
characters, and CAPTION_STOP_WORDS.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

from semcore.embeddings import encode_texts, sentence_model

# Words that scikit-learn's English list (and so KeyBERT's default) drops but that carry what a
# caption says about the picture, so they may become identifier words:
# counts ("two dogs") — ordinals and quantifiers (first, many, several, each) stay stop words;
# where things are or go ("in front of", "on top of", "behind", "jumps over", "down a hill");
# and the few scene nouns/adjectives that sklearn counts as function words ("fire", a bird's
# "bill", an "empty" or "full" glass, "thick"/"thin", a child "alone", dancing "together").
CAPTION_WORDS = frozenset({
    "one", "two", "three", "four", "five", "six", "eight", "nine", "ten", "eleven", "twelve",
    "fifteen", "twenty", "forty", "fifty", "sixty", "hundred",
    "above", "across", "along", "around", "back", "behind", "below", "beside", "between",
    "beyond", "bottom", "down", "front", "off", "onto", "out", "over", "side", "through", "top",
    "under", "up",
    "alone", "bill", "empty", "fire", "full", "thick", "thin", "together",
})
# Caption boilerplate that says nothing about what is shown ("a picture of", "this shows").
CAPTION_FILLER = frozenset({"image", "picture", "photo", "photograph", "shows", "showing"})
CAPTION_STOP_WORDS: frozenset[str] = frozenset(ENGLISH_STOP_WORDS - CAPTION_WORDS | CAPTION_FILLER)


def caption_vectorizer() -> CountVectorizer:
    """Unigram counts as every identifier word is read (sorted stop list: a stable config)."""
    return CountVectorizer(lowercase=True, stop_words=sorted(CAPTION_STOP_WORDS))


def class_tfidf(cluster_texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Equation 2 over one document per cluster (its captions joined): (vocab, weights[c, x]).

    W[x, c] = ||tf[x, c]|| * log(1 + A / f[x]), read as BERTopic's class-based TF-IDF:
    ||tf[x, c]|| is the count of x in cluster c divided by the number of words of c (L1 norm
    over the cluster's row), f[x] the count of x summed over all clusters, and A the mean number
    of (non-stop) words per cluster. BERTopic truncates A to an integer; we keep the exact mean.
    vocab is sorted, so ties between weights break alphabetically everywhere downstream.
    """
    vectorizer = caption_vectorizer()
    try:
        counts = vectorizer.fit_transform(cluster_texts).toarray().astype(np.float64)
    except ValueError:  # no cluster has a single usable word
        return np.array([], dtype=object), np.zeros((len(cluster_texts), 0))
    words_per_cluster = counts.sum(axis=1, keepdims=True)
    tf = np.divide(counts, words_per_cluster, out=np.zeros_like(counts),
                   where=words_per_cluster > 0)
    f = counts.sum(axis=0)
    a = words_per_cluster.mean()
    return vectorizer.get_feature_names_out(), tf * np.log(1.0 + a / f)


def top_cluster_words(weights: np.ndarray, vocab: np.ndarray, n: int) -> list[list[str]]:
    """Each cluster's n highest-weight words (weight > 0), best first, ties alphabetical."""
    out = []
    for row in weights:
        order = np.argsort(-row, kind="stable")[:n]
        out.append([str(vocab[j]) for j in order if row[j] > 0])
    return out


@lru_cache(maxsize=1)
def _keybert():
    from keybert import KeyBERT

    return KeyBERT(model=sentence_model())


def keybert_keywords(texts: list[str], embeddings: np.ndarray, n: int,
                     exclude: list[set[str]] | None = None) -> list[list[str]]:
    """Each text's n best unigram keywords by KeyBERT similarity, minus exclude[i] (dedup).

    embeddings must be encode_texts(texts) (the same model embeds the candidate words, so
    cosine similarities are comparable). One batch call with precomputed document and word
    embeddings: KeyBERT then embeds nothing, and each text's candidates are exactly its own
    words, so the result for a text does not depend on the other texts in the batch. KeyBERT
    rounds scores to 4 decimals; we order by (score desc, word) so ties are deterministic.
    A text with fewer than n usable (non-stop, non-excluded) words gets all it has, so its
    lexical ID is shorter; a text with none gets [].
    """
    if not texts:
        return []
    vectorizer = caption_vectorizer()
    try:
        vocab = vectorizer.fit(texts).get_feature_names_out()
    except ValueError:  # no text has a usable word
        return [[] for _ in texts]
    found = _keybert().extract_keywords(
        list(texts), vectorizer=vectorizer, top_n=len(vocab),
        doc_embeddings=np.asarray(embeddings), word_embeddings=encode_texts(list(vocab)))
    if len(texts) == 1:  # KeyBERT unwraps a batch of one
        found = [found]
    out = []
    for i, scored in enumerate(found):
        drop = exclude[i] if exclude is not None else set()
        ranked = sorted(scored, key=lambda ws: (-ws[1], ws[0]))
        out.append([w for w, _ in ranked if w not in drop][:n])
    return out
