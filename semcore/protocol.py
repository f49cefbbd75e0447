"""The retrieval protocol: what is a corpus item, a query, and a training pair, per direction.

Generative retrieval is transductive: the corpus items (test images for text-to-image, test
captions for image-to-text) are memorised during training and the trie holds exactly them.
Test *queries* (test captions for T2I, test images for I2T) are never identifier sources nor
training inputs or targets. With caption_source="heldout" one ground-truth caption per image
is set aside as the image's identifier source (and pseudo-query) and removed from the queries.
Every pair records the ids it came from, so leakage can be checked by provenance
(see assert_no_query_leak).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from semcore.data.schema import Corpus

Direction = Literal["t2i", "i2t"]


@dataclass(frozen=True)
class Item:
    """Something an identifier is given to: an image (T2I) or a caption (I2T)."""

    id: str
    split: str
    source_text: str  # the text its identifier is built from
    source_id: str  # the caption id that text came from ("" for generated captions)
    image_id: str  # the image itself (T2I) or the caption's image (I2T)


@dataclass(frozen=True)
class Query:
    id: str
    text: str | None  # T2I: the caption; I2T: None
    image_id: str | None  # I2T: the query image; T2I: None
    relevant: frozenset[str]  # item ids that count as correct


@dataclass(frozen=True)
class Pair:
    """A training input (text or image) and the item whose identifier is its target."""

    kind: Literal["text", "image"]
    text: str | None
    image_id: str | None
    item_id: str
    source_id: str  # caption or image id the input came from (provenance)
    role: Literal["train_query", "index", "pseudo_query"]


@dataclass(frozen=True)
class Task:
    direction: Direction
    items: tuple[Item, ...]  # train + test items; identifiers are built for all of them
    corpus_ids: tuple[str, ...]  # test items: what the trie holds
    queries: tuple[Query, ...]  # test queries
    pairs: tuple[Pair, ...]  # training pairs

    def item(self, item_id: str) -> Item:
        index = self.__dict__.get("_index")
        if index is None:
            index = {it.id: it for it in self.items}
            object.__setattr__(self, "_index", index)
        return index[item_id]


def image_source_texts(corpus: Corpus, caption_source: str, heldout_index: int,
                       generated: dict[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """image id → (identifier source text, caption id it came from)."""
    out: dict[str, tuple[str, str]] = {}
    for im in corpus.images:
        if caption_source == "generated":
            if generated is None or im.id not in generated:
                raise ValueError(f"caption_source='generated' but no generated caption for {im.id!r}")
            out[im.id] = (generated[im.id], "")
        else:
            caps = corpus.captions_of(im.id)
            chosen = next((c for c in caps if c.index == heldout_index), None)
            if chosen is None:
                raise ValueError(f"image {im.id!r} has no caption with index {heldout_index} "
                                 "(heldout_caption_index)")
            out[im.id] = (chosen.text, chosen.id)
    return out


def build_task(corpus: Corpus, direction: Direction, caption_source: str = "heldout",
               heldout_index: int = 0, generated: dict[str, str] | None = None,
               test_split: str = "test") -> Task:
    """Items, corpus, queries and training pairs for one direction (see module docstring)."""
    train_images = corpus.images_in("train")
    test_images = corpus.images_in(test_split)
    if direction == "t2i":
        sources = image_source_texts(corpus, caption_source, heldout_index, generated)
        items = tuple(Item(im.id, im.split, *sources[im.id], image_id=im.id)
                      for im in train_images + test_images)
        heldout_ids = {src_id for _, src_id in sources.values()}
        queries = tuple(Query(c.id, c.text, None, frozenset({c.image_id}))
                        for im in test_images for c in corpus.captions_of(im.id)
                        if c.id not in heldout_ids)
        pairs: list[Pair] = []
        for im in train_images:
            pairs.append(Pair("image", None, im.id, im.id, im.id, "index"))
            pairs += [Pair("text", c.text, None, im.id, c.id, "train_query")
                      for c in corpus.captions_of(im.id)]
        for im in test_images:
            pairs.append(Pair("image", None, im.id, im.id, im.id, "index"))
            text, src_id = sources[im.id]
            pairs.append(Pair("text", text, None, im.id, src_id or im.id, "pseudo_query"))
        corpus_ids = tuple(im.id for im in test_images)
    elif direction == "i2t":
        items = tuple(Item(c.id, c.split, c.text, c.id, c.image_id)
                      for im in train_images + test_images for c in corpus.captions_of(im.id))
        queries = tuple(Query(im.id, None, im.id,
                              frozenset(c.id for c in corpus.captions_of(im.id)))
                        for im in test_images)
        pairs = [Pair("text", it.source_text, None, it.id, it.id, "index") for it in items]
        pairs += [Pair("image", None, im.id, c.id, im.id, "train_query")
                  for im in train_images for c in corpus.captions_of(im.id)]
        corpus_ids = tuple(c.id for im in test_images for c in corpus.captions_of(im.id))
    else:
        raise ValueError(f"unknown direction {direction!r}; valid: 't2i', 'i2t'")
    return Task(direction, items, corpus_ids, queries, tuple(pairs))


class LeakError(AssertionError):
    """A test query reached identifier construction or training."""


def assert_no_query_leak(task: Task) -> None:
    """No test query (by id) is an identifier source or a training input or target.

    T2I queries are caption ids: none may be an item's source caption or a pair's source.
    I2T queries are image ids: none may be a pair's input image or a training target's image
    except as a corpus item (test captions are memorised; their image is never an input).
    """
    query_ids = {q.id for q in task.queries}
    for it in task.items:
        if it.source_id in query_ids:
            raise LeakError(f"query {it.source_id!r} is the identifier source of item {it.id!r}")
    for p in task.pairs:
        if p.source_id in query_ids:
            raise LeakError(f"query {p.source_id!r} is the input of a training pair ({p.role})")
        if task.direction == "t2i" and p.item_id in query_ids:
            raise LeakError(f"query {p.item_id!r} is a training target")
