"""Loader for the Karpathy split files dataset_flickr30k.json and dataset_coco.json.

These are the standard splits of the paper's benchmarks: {"images": [{"filename",
"filepath" (COCO only, e.g. "val2014"), "split": "train"|"val"|"test"|"restval",
"sentences": [{"raw", "tokens"}, ...], ...}]}. "restval" (COCO's spare val images) is
training data in the Karpathy protocol, so it becomes "train". Image ids are the file names
(unique in both files); captions are the "raw" sentences, stripped. COCO images sometimes
have 6 or 7 sentences: only the first 5 are kept, so every image has the 5 captions the
protocol and its metrics assume. Errors are DataErrors naming the file and image entry.
"""
from __future__ import annotations

import json
from pathlib import Path

from semcore.data.captions_jsonl import Entry, add_caption, assemble
from semcore.data.schema import Corpus, DataError

SPLIT_OF = {"train": "train", "restval": "train", "val": "val", "test": "test"}
MAX_CAPTIONS = 5


def load_karpathy(json_path: Path, image_root: Path, name: str, max_train_images: int = 0,
                  max_test_images: int = 0) -> Corpus:
    """The corpus of a Karpathy JSON; image path = image_root / filepath / filename."""
    json_path, image_root = Path(json_path), Path(image_root)
    if not json_path.is_file():
        raise DataError(f"{name}: Karpathy split file not found: {json_path}")
    if not image_root.is_dir():
        raise DataError(f"{name}: image folder not found: {image_root}")
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{json_path}: invalid JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError(f"{json_path}: expected an object with an 'images' list")
    entries: dict[str, Entry] = {}
    for number, image in enumerate(data["images"]):
        where = f"{json_path}, images[{number}]"
        if not isinstance(image, dict) or any(k not in image for k in ("filename", "split", "sentences")):
            raise DataError(f"{where}: expected an object with 'filename', 'split' and 'sentences'")
        filename, raw_split, sentences = image["filename"], image["split"], image["sentences"]
        if raw_split not in SPLIT_OF:
            raise DataError(f"{where}: unknown split {raw_split!r} (valid: {', '.join(SPLIT_OF)})")
        if filename in entries:
            raise DataError(f"{where}: duplicate image {filename!r}")
        if not isinstance(sentences, list) or not sentences:
            raise DataError(f"{where}: image {filename!r} has no sentences")
        path = image_root / image.get("filepath", "") / filename
        if not path.is_file():
            raise DataError(f"{where}: image file not found: {path}")
        entry = entries[filename] = Entry(filename, SPLIT_OF[raw_split], path)
        for index, sentence in enumerate(sentences[:MAX_CAPTIONS]):
            if not isinstance(sentence, dict) or "raw" not in sentence:
                raise DataError(f"{where}, sentences[{index}]: a sentence must be an object with "
                                f"its text under 'raw' ({{\"raw\": \"A dog runs.\", \"tokens\": "
                                f"[...]}}), got {str(sentence)[:120]!r}")
            add_caption(entry, index, sentence["raw"], entry.split, f"{where}, sentences[{index}]")
    return assemble(name, list(entries.values()), max_train_images, max_test_images)
