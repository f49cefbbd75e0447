"""One corpus schema for every dataset: images, captions, splits.

Images are files on disk (the embedded set renders its own); captions point to their image.
Relevance for both directions follows from caption → image: see semcore.protocol.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

SPLITS = ("train", "val", "test")


class DataError(ValueError):
    """A dataset file is missing, corrupt or inconsistent; the message names the file."""


@dataclass(frozen=True)
class ImageRecord:
    id: str  # unique, e.g. the file name
    split: str  # train | val | test
    path: Path


@dataclass(frozen=True)
class CaptionRecord:
    id: str  # unique, "<image id>#<index>"
    image_id: str
    index: int  # 0..4 within its image
    text: str
    split: str


@dataclass(frozen=True)
class Corpus:
    name: str
    images: tuple[ImageRecord, ...]
    captions: tuple[CaptionRecord, ...]

    def __post_init__(self) -> None:
        validate(self)

    def images_in(self, split: str) -> list[ImageRecord]:
        return [im for im in self.images if im.split == split]

    def captions_in(self, split: str) -> list[CaptionRecord]:
        return [c for c in self.captions if c.split == split]

    def captions_of(self, image_id: str) -> list[CaptionRecord]:
        return [c for c in self.captions if c.image_id == image_id]

    def image(self, image_id: str) -> ImageRecord:
        return self._by_id[image_id]

    @property
    def _by_id(self) -> dict[str, ImageRecord]:
        cached = self.__dict__.get("_image_index")
        if cached is None:
            cached = {im.id: im for im in self.images}
            object.__setattr__(self, "_image_index", cached)
        return cached


def validate(corpus: Corpus) -> None:
    """Duplicate ids, empty captions, unknown splits or orphans are errors, never skipped."""
    seen: set[str] = set()
    for im in corpus.images:
        if im.id in seen:
            raise DataError(f"{corpus.name}: duplicate image id {im.id!r}")
        if im.split not in SPLITS:
            raise DataError(f"{corpus.name}: image {im.id!r} has unknown split {im.split!r}")
        seen.add(im.id)
    cap_ids: set[str] = set()
    for c in corpus.captions:
        if c.id in cap_ids:
            raise DataError(f"{corpus.name}: duplicate caption id {c.id!r}")
        cap_ids.add(c.id)
        if c.image_id not in seen:
            raise DataError(f"{corpus.name}: caption {c.id!r} points to unknown image {c.image_id!r}")
        if not c.text.strip():
            raise DataError(f"{corpus.name}: caption {c.id!r} of image {c.image_id!r} is empty")


def carve_validation(corpus: Corpus, n_images: int, seed: int) -> Corpus:
    """The validation experiment: a seeded sample of `n_images` train images becomes the
    evaluation split (labelled "test", so the protocol treats them exactly as it treats the test
    images), the other train images stay train, and the real test and val images are dropped, so
    that no setting chosen on it has seen a test image, caption or query."""
    train = corpus.images_in("train")
    if not 0 < n_images < len(train):
        raise DataError(f"{corpus.name}: cannot carve {n_images} validation images from "
                        f"{len(train)} train images (parameter 'validation_images')")
    picked = {train[i].id for i in np.random.default_rng(seed).choice(len(train), n_images,
                                                                      replace=False)}
    split = {im.id: "test" if im.id in picked else "train" for im in train}
    images = tuple(ImageRecord(im.id, split[im.id], im.path) for im in train)
    captions = tuple(CaptionRecord(c.id, c.image_id, c.index, c.text, split[c.image_id])
                     for c in corpus.captions if c.image_id in split)
    return Corpus(f"{corpus.name} (validation carved from train)", images, captions)


def load_rgb(path: Path, size: int) -> np.ndarray:
    """An image file as a size×size×3 uint8 array; a corrupt file is an error naming it."""
    try:
        with PILImage.open(path) as im:
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), PILImage.BICUBIC)
            return np.asarray(im, dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from exc
