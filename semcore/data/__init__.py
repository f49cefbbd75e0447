"""Datasets in one corpus schema (see schema.Corpus) and the loaders that fill it."""
from __future__ import annotations

from typing import TYPE_CHECKING

from semcore.data.captions_jsonl import load_captions_jsonl
from semcore.data.embedded import render_embedded
from semcore.data.karpathy import load_karpathy
from semcore.data.schema import Corpus, DataError, carve_validation

if TYPE_CHECKING:
    from semcore.config import Params


def load_corpus(params: Params) -> Corpus:
    """The corpus params.dataset names, limited to max_train_images / max_test_images; with
    `evaluate_on: validation`, the validation experiment carved from its train split."""
    corpus = _load(params)
    for split in ("train", "test"):
        if not corpus.images_in(split):
            raise DataError(f"{_source(params)}: no {split} images (split {split!r}); the train "
                            "split teaches the model, the test split is the retrieval corpus, "
                            "and both are needed")
    if params.evaluate_on == "validation":
        return carve_validation(corpus, params.validation_images, params.seed)
    return corpus


def _source(params: Params) -> str:
    """What the corpus was read from, for errors: the data file or the embedded set's size."""
    if params.dataset == "embedded":
        return "the embedded dataset (embedded_train_images, embedded_test_images)"
    return str(params.resolved_path("data_path"))


def _load(params: Params) -> Corpus:
    limits = (params.max_train_images, params.max_test_images)
    if params.dataset == "embedded":
        return load_captions_jsonl(render_embedded(params), "embedded", *limits)
    if params.dataset == "captions_jsonl":
        folder = params.resolved_path("data_path")
        return load_captions_jsonl(folder, folder.name, *limits)
    if params.dataset == "karpathy":
        json_path = params.resolved_path("data_path")
        return load_karpathy(json_path, params.resolved_path("image_root"), json_path.stem, *limits)
    raise ValueError(f"parameter 'dataset' = {params.dataset!r} is not one of "
                     "'embedded', 'captions_jsonl', 'karpathy'")
