"""Datasets: the embedded set is deterministic and well formed; loaders reject bad input."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semcore.config import ParamError, Params
from semcore.data import load_corpus
from semcore.data.captions_jsonl import load_captions_jsonl
from semcore.data.embedded import describe_embedded, render_embedded
from semcore.data.karpathy import load_karpathy
from semcore.data.schema import DataError, load_rgb

FLICKR8K = Path(__file__).parents[1] / ".." / "shared/data/flickr8k"
SMALL = dict(embedded_train_images=12, embedded_test_images=4)


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("SEMCORE_CACHE", str(cache))
    return cache


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "COMPLETE"}


# --- embedded ---------------------------------------------------------------------------

def test_embedded_is_deterministic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _files(render_embedded(Params(**SMALL)))
    monkeypatch.setenv("SEMCORE_CACHE", str(tmp_path / "other_cache"))
    again = _files(render_embedded(Params(**SMALL)))
    other_seed = _files(render_embedded(Params(**SMALL, seed=1)))
    assert first == again
    assert len(first) == 16 + 1
    assert first["captions.jsonl"] != other_seed["captions.jsonl"]
    assert all(first[name] != other_seed[name] for name in first if name.startswith("images/"))


def test_embedded_corpus_is_well_formed() -> None:
    params = Params(**SMALL, image_size=24)
    folder = render_embedded(params)
    first_row = json.loads((folder / "captions.jsonl").read_text().splitlines()[0])
    assert list(first_row) == ["image", "caption", "split", "caption_index"]  # Flickr8k's format
    corpus = load_corpus(params)
    assert corpus.name == "embedded"
    assert [len(corpus.images_in(s)) for s in ("train", "test")] == [12, 4]
    assert len(corpus.captions) == 16 * 5
    for image in corpus.images:
        captions = corpus.captions_of(image.id)
        assert [c.index for c in captions] == [0, 1, 2, 3, 4]
        assert len({c.text for c in captions}) == 5
        assert all(re.fullmatch(r"[a-z]+( [a-z]+)*", c.text) for c in captions)
        assert load_rgb(image.path, 24).shape == (24, 24, 3)
        assert Image.open(image.path).size == (24, 24)


def test_embedded_captions_are_ambiguous() -> None:
    """The same caption text describes several images, so retrieval cannot be exact."""
    corpus = load_corpus(Params())
    texts = Counter(c.text for c in corpus.captions)
    assert len(corpus.images) == 320
    assert sum(n > 1 for n in texts.values()) >= 10
    assert set(describe_embedded()) >= {"shape", "colour", "size", "position", "scene"}


def test_load_corpus_applies_limits() -> None:
    corpus = load_corpus(Params(**SMALL, max_train_images=3, max_test_images=2))
    assert [im.id for im in corpus.images] == [
        "scene00000.png", "scene00001.png", "scene00002.png", "scene00012.png", "scene00013.png"]


def test_load_corpus_names_unset_path() -> None:
    with pytest.raises(ParamError, match="data_path"):
        load_corpus(Params(dataset="captions_jsonl"))


# --- real Flickr8k ----------------------------------------------------------------------

@pytest.mark.skipif(not FLICKR8K.is_dir(), reason="shared Flickr8k folder not present")
def test_flickr8k_loads() -> None:
    corpus = load_captions_jsonl(FLICKR8K, "flickr8k")
    assert [len(corpus.images_in(s)) for s in ("train", "test")] == [6000, 1000]
    assert len(corpus.captions) == 35000
    first = json.loads((FLICKR8K / "captions.jsonl").open().readline())
    assert corpus.captions[0].id == f"{first['image']}#0"
    assert corpus.captions[0].text == first["caption"]
    small = load_corpus(Params(dataset="captions_jsonl", data_path=str(FLICKR8K),
                               max_train_images=10, max_test_images=3))
    assert [len(small.images_in(s)) for s in ("train", "test")] == [10, 3]
    assert len(small.captions) == 65
    assert [im.id for im in small.images_in("train")] == [im.id for im in corpus.images[:10]]
    assert [im.id for im in small.images_in("test")] == [im.id for im in corpus.images_in("test")[:3]]


# --- captions.jsonl errors --------------------------------------------------------------

def _row(image: str = "a.png", caption: str = "a dog", split: str = "train", index: int = 0) -> str:
    return json.dumps({"image": image, "caption": caption, "split": split, "caption_index": index})


def _folder(tmp_path: Path, lines: list[str]) -> Path:
    folder = tmp_path / "set"
    (folder / "images").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(folder / "images" / "a.png")
    (folder / "captions.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_captions_jsonl_good_folder(tmp_path: Path) -> None:
    corpus = load_captions_jsonl(_folder(tmp_path, [_row(index=0), _row(caption=" a cat ", index=1)]), "t")
    assert [c.id for c in corpus.captions] == ["a.png#0", "a.png#1"]
    assert corpus.captions[1].text == "a cat"


@pytest.mark.parametrize("lines, message", [
    ([_row(), "{not json"], "line 2: invalid JSON"),
    ([json.dumps({"image": "a.png", "caption": "x", "split": "train"})], "line 1: expected an object"),
    ([_row(caption="  ")], "line 1: empty caption"),
    ([_row(index=0), _row(index=0)], "line 2: duplicate caption a.png#0"),
    ([_row(image="missing.png")], "line 1: image file not found"),
    ([_row(split="dev")], "line 1: unknown split 'dev'"),
    ([_row(split="train"), _row(split="test", index=1)], "line 2: image 'a.png' is in split"),
    ([_row(index=-1)], "line 1: 'caption_index' must be an integer"),
])
def test_captions_jsonl_errors_name_file_and_line(tmp_path: Path, lines: list[str], message: str) -> None:
    with pytest.raises(DataError, match=re.escape(message)) as error:
        load_captions_jsonl(_folder(tmp_path, lines), "t")
    assert "captions.jsonl" in str(error.value)


def test_captions_jsonl_missing_folder_and_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="dataset folder not found"):
        load_captions_jsonl(tmp_path / "nowhere", "t")
    with pytest.raises(DataError, match="captions file not found"):
        load_captions_jsonl(tmp_path, "t")


def test_corrupt_image_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match=re.escape(str(bad))):
        load_rgb(bad, 32)


# --- Karpathy ---------------------------------------------------------------------------

def _karpathy(tmp_path: Path, images: list[dict]) -> tuple[Path, Path]:
    root = tmp_path / "imgs"
    for image in images:
        folder = root / image.get("filepath", "")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(folder / image["filename"])
    path = tmp_path / "dataset_coco.json"
    path.write_text(json.dumps({"images": images, "dataset": "coco"}))
    return path, root


def _image(name: str, split: str, n: int = 5, filepath: str | None = "val2014") -> dict:
    image = {"filename": name, "split": split, "imgid": 0,
             "sentences": [{"raw": f" A {name} caption {i}. ", "tokens": ["a"]} for i in range(n)]}
    return image if filepath is None else {**image, "filepath": filepath}


def test_karpathy_loads_splits_and_first_five(tmp_path: Path) -> None:
    images = [_image("t.jpg", "train", filepath=None), _image("r.jpg", "restval", n=7),
              _image("v.jpg", "val"), _image("x.jpg", "test", filepath="train2014")]
    path, root = _karpathy(tmp_path, images)
    corpus = load_karpathy(path, root, "coco")
    assert [(im.id, im.split) for im in corpus.images] == [
        ("t.jpg", "train"), ("r.jpg", "train"), ("v.jpg", "val"), ("x.jpg", "test")]
    assert corpus.image("t.jpg").path == root / "t.jpg"
    assert corpus.image("x.jpg").path == root / "train2014" / "x.jpg"
    assert [c.index for c in corpus.captions_of("r.jpg")] == [0, 1, 2, 3, 4]
    assert corpus.captions_of("r.jpg")[0].text == "A r.jpg caption 0."
    assert len(corpus.captions) == 20
    small = load_corpus(Params(dataset="karpathy", data_path=str(path), image_root=str(root),
                               max_train_images=1, max_test_images=1))
    assert [im.id for im in small.images] == ["t.jpg", "v.jpg", "x.jpg"]


@pytest.mark.parametrize("change, message", [
    (lambda im: im.update(split="holdout"), "images[0]: unknown split 'holdout'"),
    (lambda im: im["sentences"][2].update(raw="   "), "images[0], sentences[2]: empty caption"),
    (lambda im: im.update(sentences=[]), "images[0]: image 'a.jpg' has no sentences"),
    (lambda im: im.pop("filename"), "images[0]: expected an object"),
])
def test_karpathy_errors_name_file_and_entry(tmp_path: Path, change, message: str) -> None:
    image = _image("a.jpg", "train")
    path, root = _karpathy(tmp_path, [image])
    change(image)
    path.write_text(json.dumps({"images": [image]}))
    with pytest.raises(DataError, match=re.escape(f"{path}, {message}")):
        load_karpathy(path, root, "coco")


def test_karpathy_missing_image_duplicate_and_bad_json(tmp_path: Path) -> None:
    path, root = _karpathy(tmp_path, [_image("a.jpg", "train")])
    (root / "val2014" / "a.jpg").unlink()
    with pytest.raises(DataError, match="image file not found"):
        load_karpathy(path, root, "coco")
    path, root = _karpathy(tmp_path, [_image("a.jpg", "train"), _image("a.jpg", "test")])
    with pytest.raises(DataError, match=re.escape("images[1]: duplicate image 'a.jpg'")):
        load_karpathy(path, root, "coco")
    path.write_text("{")
    with pytest.raises(DataError, match="invalid JSON"):
        load_karpathy(path, root, "coco")
