"""Datasets in one corpus schema (see schema.Corpus) and the loaders that fill it."""
from __future__ import annotations

from typing import TYPE_CHECKING

from semcore.data.captions_jsonl import load_captions_jsonl
from semcore.data.embedded import render_embedded
from semcore.data.karpathy import load_karpathy
from semcore.data.schema import Corpus, carve_validation

if TYPE_CHECKING:
    from semcore.config import Params


def load_corpus(params: Params) -> Corpus:
    """The corpus params.dataset names, limited to max_train_images / max_test_images; with
    `evaluate_on: validation`, the validation experiment carved from its train split."""
    corpus = _load(params)
    if params.evaluate_on == "validation":
        return carve_validation(corpus, params.validation_images, params.seed)
    return corpus


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
