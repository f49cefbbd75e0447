"""Loader for a folder of images/ plus captions.jsonl (the Flickr8k folder and the embedded set).

One line per caption: {"image": file, "caption": text, "split": "train"|"val"|"test",
"caption_index": int}. Image ids are the file names and caption ids "<image>#<index>"; images
keep their order of first appearance and each image's captions their file order. Every line is checked and any problem is a DataError naming the file
and line, because a silently skipped caption would change what is measured. Images are only
checked to exist here (opening 7,000 files would make loading slow); a corrupt image is caught
when schema.load_rgb reads it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from semcore.data.schema import SPLITS, CaptionRecord, Corpus, DataError, ImageRecord

KEYS = ("image", "caption", "split", "caption_index")


@dataclass
class Entry:
    """An image and its captions, as a loader read them (before subsetting)."""

    id: str
    split: str
    path: Path
    captions: dict[int, str] = field(default_factory=dict)


def load_captions_jsonl(folder: Path, name: str, max_train_images: int = 0,
                        max_test_images: int = 0) -> Corpus:
    """The corpus in folder/captions.jsonl + folder/images/; max_* = 0 keeps every image."""
    folder = Path(folder)
    path = folder / "captions.jsonl"
    if not folder.is_dir():
        raise DataError(f"{name}: dataset folder not found: {folder}")
    if not path.is_file():
        raise DataError(f"{name}: captions file not found: {path}")
    entries: dict[str, Entry] = {}
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            where = f"{path}, line {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: invalid JSON ({exc})") from exc
            if not isinstance(row, dict) or any(k not in row for k in KEYS):
                raise DataError(f"{where}: expected an object with keys {KEYS}, got {line.strip()[:120]!r}")
            image, text, split, index = (row[k] for k in KEYS)
            if not isinstance(image, str) or not image:
                raise DataError(f"{where}: 'image' must be a non-empty file name, got {image!r}")
            if not isinstance(index, int) or isinstance(index, bool) or index < 0:
                raise DataError(f"{where}: 'caption_index' must be an integer >= 0, got {index!r}")
            entry = entries.get(image)
            if entry is None:
                entry = entries[image] = Entry(image, split, folder / "images" / image)
                if not entry.path.is_file():
                    raise DataError(f"{where}: image file not found: {entry.path}")
            add_caption(entry, index, text, split, where)
    return assemble(name, list(entries.values()), max_train_images, max_test_images)


def add_caption(entry: Entry, index: int, text: object, split: str, where: str) -> None:
    """Add one caption to its image's entry; `where` names the file and line for errors."""
    if split not in SPLITS:
        raise DataError(f"{where}: unknown split {split!r} (valid: {', '.join(SPLITS)})")
    if split != entry.split:
        raise DataError(f"{where}: image {entry.id!r} is in split {split!r} here but "
                        f"{entry.split!r} earlier")
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: empty caption for image {entry.id!r}")
    if index in entry.captions:
        raise DataError(f"{where}: duplicate caption {entry.id}#{index}")
    entry.captions[index] = text.strip()


def assemble(name: str, entries: list[Entry], max_train_images: int,
             max_test_images: int) -> Corpus:
    """The corpus of the first max_* train/test images (0 = all; val is always kept whole)."""
    limits = {"train": max_train_images, "test": max_test_images}
    kept: list[Entry] = []
    counts = dict.fromkeys(SPLITS, 0)
    for entry in entries:
        limit = limits.get(entry.split, 0)
        if limit == 0 or counts[entry.split] < limit:
            kept.append(entry)
            counts[entry.split] += 1
    images = tuple(ImageRecord(e.id, e.split, e.path) for e in kept)
    captions = tuple(CaptionRecord(f"{e.id}#{i}", e.id, i, text, e.split)
                     for e in kept for i, text in e.captions.items())
    return Corpus(name, images, captions)
