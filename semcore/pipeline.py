"""The cached chain every notebook calls: corpus → identifiers → model → decoding → GSV → metrics.

Each stage is a content-addressed step (semcore.cache): its key hashes the parameters that
matter to it, the keys of its inputs and the package code, so notebooks can call any stage and
get the stored result, and a changed parameter re-runs exactly what depends on it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
from tqdm import tqdm

from semcore import cache, captioning, ceiling, gsv, image_encoder, methods, metrics, prompts, stats
from semcore.config import Params
from semcore.data import load_corpus
from semcore.data.schema import Corpus, load_rgb
from semcore.diagnostics import diagnose
from semcore.embeddings import encode_texts
from semcore.identifiers import build_identifiers
from semcore.identifiers.base import IdentifierInputs, IdentifierOptions, IdentifierTable
from semcore.methods import GSV_VARIANTS, Method
from semcore.models import Backbone
from semcore.models import choice
from semcore.protocol import Query, Task, assert_no_query_leak, build_task
from semcore.retrieval import IdentifierTrie, Ranked, decode_constrained, decode_free
from semcore.train import TrainConfig, train

DATA_KEYS = ("dataset", "data_path", "image_root", "embedded_train_images", "embedded_test_images",
             "max_train_images", "max_test_images", "image_size", "seed", "evaluate_on",
             "validation_images")
CAPTION_KEYS = ("caption_epochs", "caption_max_tokens")
ID_KEYS = ("caption_source", "heldout_caption_index", "cluster_size", "cluster_size_meaning",
           "lexical_length", "dedup_top_n", "global_id_style", "global_id_words", "text_encoder",
           "image_size", "seed")
MODEL_KEYS = ("backbone", "backbone_path", "finetune", "lora_rank", "lora_alpha", "lora_dropout",
              "gradient_checkpointing", "precision", "deepspeed_config", "tiny_hidden", "tiny_layers",
              "text_features", "epochs", "batch_size", "learning_rate", "corpus_repeats",
              "group_by_length", "image_size", "seed", "train_seed")
GSV_KEYS = ("gsv_k", "gsv_format", "gsv_show_source", "gsv_epochs", "gsv_train_queries", "beam_size",
            "decode_score")  # the last two: its training candidates
VECTOR_SCHEMES = ("structured", "rq")  # the schemes that cluster image features (T2I)
DECODE_BATCH = 16


def _pick(p: Params, keys: tuple[str, ...]) -> dict:
    return {k: getattr(p, k) for k in keys}


def planned_runs(p: Params) -> list[tuple[str, Method]]:
    """Every (direction, method) the profile's tables need: Table 1 (T2I), Table 2 (I2T), the
    Table 3 ablations in ablation_directions."""
    table = {"t2i": p.table1_methods, "i2t": p.table2_methods}
    runs = [(d, m) for d in p.directions for m in methods.resolve(table[d])]
    runs += [(d, m) for d in p.ablation_directions for m in methods.resolve(p.table3_ablations)]
    return list(dict.fromkeys(runs))


def planned_models(p: Params) -> list[tuple[str, Method]]:
    """One (direction, method) per distinct trained model among the planned runs."""
    return [(d, m) for d in p.directions
            for m in methods.distinct_models([m for dd, m in planned_runs(p) if dd == d])]


# --- data ------------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def _corpus(data: str) -> Corpus:
    return load_corpus(Params(**json.loads(data)))


def _data_key(p: Params) -> str:
    """The data parameters as a hashable string (Params itself holds lists)."""
    return json.dumps(_pick(p, DATA_KEYS), sort_keys=True)


def corpus(p: Params) -> Corpus:
    return _corpus(_data_key(p))


def fingerprint(c: Corpus) -> str:
    """Identity of a corpus: ids, splits, caption texts and image contents (an image rewritten
    with the same size is new data)."""
    h = hashlib.sha256()
    for im in c.images:
        h.update(f"{im.id}|{im.split}|{_file_hash(im.path)}\n".encode())
    for cap in c.captions:
        h.update(f"{cap.id}|{cap.split}|{cap.text}\n".encode())
    return h.hexdigest()[:16]


def _file_hash(path: Path) -> str:
    """A file's content hash, read once per version of the file (as make and git tell versions
    apart: by modification time and size), since every step key asks for it."""
    st = path.stat()
    return _content_hash(str(path), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=None)
def _content_hash(path: str, mtime_ns: int, size: int) -> str:
    return image_encoder.content_hash(Path(path))


@lru_cache(maxsize=4)
def _images(data: str, size: int) -> dict[str, np.ndarray]:
    c = _corpus(data)
    return {im.id: load_rgb(im.path, size)
            for im in tqdm(c.images, desc="load images", ascii=True, mininterval=2.0)}


def images(p: Params) -> dict[str, np.ndarray]:
    """Every image of the corpus at image_size, in memory (uint8)."""
    return _images(_data_key(p), p.image_size)


def task(p: Params, direction: str) -> Task:
    """The direction's task; with max_queries, a seeded sample of its test queries (in order)."""
    generated = captions(p) if p.caption_source == "generated" and direction == "t2i" else None
    t = build_task(corpus(p), direction, p.caption_source, p.heldout_caption_index, generated)
    if 0 < p.max_queries < len(t.queries):
        pick = np.random.default_rng(p.seed).choice(len(t.queries), size=p.max_queries, replace=False)
        t = dataclasses.replace(t, queries=tuple(t.queries[i] for i in sorted(pick)))
    assert_no_query_leak(t)
    return t


# --- generated captions -----------------------------------------------------------------------
def captions_key(p: Params) -> str:
    return cache.key_of(step="captions", corpus=fingerprint(corpus(p)),
                        params=_pick(p, MODEL_KEYS + CAPTION_KEYS))


def captions(p: Params) -> dict[str, str]:
    """image id → the caption the backbone writes for it (caption_source: generated): after
    learning to caption on the train split, or zero-shot with its chat template when
    caption_epochs is 0 (the paper's pretrained InternVL2.5)."""
    key = captions_key(p)

    def build(work: Path) -> None:
        c = corpus(p)
        texts = [cap.text for cap in c.captions_in("train")] + prompts.TEMPLATE_WORDS
        bb = new_backbone(p, texts)
        if p.caption_epochs:
            cfg = train_config(p, p.caption_epochs, p.learning_rate, "train captioner")
            train(bb, captioning.training_examples(bb, c), image_inputs(p), cfg, work)
        written = captioning.write_captions(bb, [im.id for im in c.images], image_inputs(p),
                                            p.caption_max_tokens, DECODE_BATCH,
                                            zero_shot=not p.caption_epochs)
        cache.write_json(work / "captions.json", written)

    return cache.read_json(cache.step("captions", key, build, resumable=True) / "captions.json")


@lru_cache(maxsize=2)
def _image_features(data: str) -> dict[str, np.ndarray]:
    c = _corpus(data)
    features = image_encoder.cached_features([im.path for im in c.images])
    return {im.id: f for im, f in zip(c.images, features)}


def image_features(p: Params) -> dict[str, np.ndarray]:
    """Frozen DINOv2 features (T, d) of every image, computed once per corpus and cached."""
    return _image_features(_data_key(p))


def image_inputs(p: Params) -> dict[str, np.ndarray]:
    """What the backbone takes per image: cached features (smol, scratch) or pixels (InternVL, tiny)."""
    return image_features(p) if choice.takes_features(p.backbone) else images(p)


def image_vectors(p: Params, image_ids: list[str]) -> np.ndarray:
    """One vector per image for embedding-based identifiers (structured, RQ): the frozen
    encoder's feature tokens, concatenated and standardised."""
    feats = image_features(p)
    x = np.stack([feats[i].reshape(-1) for i in image_ids]).astype(np.float64)
    return (x - x.mean(0)) / (x.std(0) + 1e-6)


# --- identifiers -------------------------------------------------------------------------------
def identifier_key(p: Params, direction: str, method: Method) -> str:
    generated = p.caption_source == "generated" and direction == "t2i"
    return cache.key_of(step="identifiers", corpus=fingerprint(corpus(p)), direction=direction,
                        params=_pick(p, ID_KEYS), method=method.training_key(),
                        captions=captions_key(p) if generated else None)


def identifiers(p: Params, direction: str, method: Method) -> IdentifierTable:
    """The identifier of every item (train and test) of one direction under one method."""
    key = identifier_key(p, direction, method)

    def build(work: Path) -> None:
        t = task(p, direction)
        texts = [it.source_text for it in t.items]
        ids = [it.id for it in t.items]
        needs_vectors = direction == "t2i" and method.scheme in VECTOR_SCHEMES
        vectors = image_vectors(p, ids) if needs_vectors else None
        inputs = IdentifierInputs(ids, texts, encode_texts(texts), vectors)
        opts = IdentifierOptions(
            cluster_size=p.cluster_size, cluster_size_meaning=p.cluster_size_meaning,
            lexical_length=method.lexical_length or p.lexical_length, dedup_top_n=p.dedup_top_n,
            global_id_style=p.global_id_style, global_id_words=p.global_id_words,
            use_global=method.use_global, dedup=method.dedup, collisions=method.collisions,
            seed=p.seed)
        build_identifiers(method.scheme, inputs, opts).save(work / "identifiers.json")

    return IdentifierTable.load(cache.step("identifiers", key, build) / "identifiers.json")


# --- training ---------------------------------------------------------------------------------
def train_key(p: Params, direction: str, method: Method) -> str:
    return cache.key_of(step="train", identifiers=identifier_key(p, direction, method),
                        params=_pick(p, MODEL_KEYS))


def _encode_pair(bb: Backbone, pair, identifier: str, rationale: str | None) -> prompts.Encoded:
    if pair.kind == "image":
        return prompts.image_query(bb, pair.image_id, identifier, rationale)
    return prompts.text_query(bb, pair.text, identifier, rationale)


def train_config(p: Params, epochs: int, learning_rate: float, description: str) -> TrainConfig:
    deepspeed = str(p.resolved_path("deepspeed_config")) if p.deepspeed_config else None
    return TrainConfig(epochs, p.batch_size, learning_rate, p.train_seed, description,
                       p.gradient_checkpointing, deepspeed, bf16=p.precision == "bf16",
                       group_by_length=p.group_by_length)


def _backbone_path(p: Params) -> str:
    """InternVL's checkpoint (hub id or folder); the other backbones need none."""
    return p.expanded("backbone_path") if p.backbone.startswith("internvl") else ""


def new_tokenizer(p: Params, texts: list[str], new_tokens: list[str] = ()):
    """The tokenizer a fresh backbone of the profile uses (semcore.models.choice)."""
    return choice.new_tokenizer(p.backbone, _backbone_path(p), texts, new_tokens)


def new_backbone(p: Params, texts: list[str], new_tokens: list[str] = ()) -> Backbone:
    """A fresh backbone of the profile's kind (semcore.models.choice), LoRA-wrapped when
    finetune is "lora"."""
    bb = choice.new_backbone(p.backbone, _backbone_path(p), texts, new_tokens,
                             image_size=p.image_size, hidden=p.tiny_hidden, layers=p.tiny_layers,
                             seed=p.train_seed, text_features=p.text_features == "minilm")
    if p.finetune == "lora":
        from semcore.models.smol import apply_lora
        bb.model = apply_lora(bb.model, p.lora_rank, p.lora_alpha, p.lora_dropout)
    bb.bf16 = p.precision == "bf16"
    return bb


def backbone_label(p: Params) -> str:
    """The backbone as tables and figures name it, with its text inputs' sentence features."""
    return p.backbone + (" + MiniLM sentence features" if p.text_features == "minilm" else "")


def _save_inputs(bb: Backbone, work: Path) -> None:
    """The tokenizer (and, for InternVL, the image processor) next to the trained weights, on
    rank 0 under a launcher."""
    if cache.rank() == 0:
        bb.tokenizer.save_pretrained(work / "tokenizer")
        if bb.name == "internvl":
            from semcore.models.internvl import save_inputs
            save_inputs(bb, work / "model")


def _model_texts(t: Task, table: IdentifierTable, method: Method):
    """What a retrieval model may see as text (its tokenizer's training texts), the new tokens
    it needs (atomic IDs) and the rationales it is supervised with (SSI), by item."""
    new_tokens = table.info.get("new_tokens", [])
    rationales = dict(zip(table.item_ids, table.info["rationales"])) if method.rationale else {}
    texts = [pr.text for pr in t.pairs if pr.text] + prompts.TEMPLATE_WORDS
    texts += ([] if new_tokens else table.identifiers) + list(rationales.values())
    return texts, new_tokens, rationales


def identifier_token_counts(p: Params, direction: str, method: Method,
                            item_ids: list[str]) -> list[int]:
    """Tokens decoded per item's identifier (with the end token) under the tokenizer the
    retrieval model of (direction, method) is trained with."""
    table = identifiers(p, direction, method)
    tokenizer = new_tokenizer(p, *_model_texts(task(p, direction), table, method)[:2])
    return [len(prompts.identifier_tokens(tokenizer, table.of(i))) for i in item_ids]


def _load(p: Params, model_dir: Path, tokenizer_dir: Path) -> Backbone:
    """A backbone saved by a training step (adapters merged), with its saved tokenizer."""
    bb = choice.load_backbone(p.backbone, model_dir, tokenizer_dir)
    bb.bf16 = p.precision == "bf16"
    return bb


def trained(p: Params, direction: str, method: Method) -> Backbone:
    """The backbone fine-tuned on this direction's pairs (query → identifier, item → identifier).

    Corpus (test) items are memorised: their pairs repeat corpus_repeats times per epoch. SSI
    with rationale supervision appends the item's rationale to every target (prompts._target).
    """
    work = trained_dir(p, direction, method)
    return _load(p, work / "model", work / "tokenizer")


def training_pairs(p: Params, t: Task) -> list[tuple]:
    """The DSI-style training mix: every training pair with its repeats per epoch. Indexing
    (corpus item → identifier: its image, and for T2I its source text as pseudo-query) repeats
    corpus_repeats times, since the corpus must be memorised; retrieval pairs (train-split
    queries → their item's identifier, which teach the paraphrase skill) and train items'
    indexing pairs appear once."""
    corpus_ids = set(t.corpus_ids)
    return [(pair, p.corpus_repeats if pair.item_id in corpus_ids else 1) for pair in t.pairs]


def training_mix(p: Params, direction: str) -> dict[str, int]:
    """Examples per epoch by kind (corpus indexing, train-split retrieval, train indexing)."""
    t, mix = task(p, direction), {}
    corpus_ids = set(t.corpus_ids)
    for pair, repeats in training_pairs(p, t):
        kind = f"{pair.role} ({'corpus' if pair.item_id in corpus_ids else 'train'} items)"
        mix[kind] = mix.get(kind, 0) + repeats
    return mix


def trained_dir(p: Params, direction: str, method: Method) -> Path:
    """The training step's folder (model/, tokenizer/, loss history), trained first if needed."""
    key = train_key(p, direction, method)

    def build(work: Path) -> None:
        t = task(p, direction)
        table = identifiers(p, direction, method)
        texts, new_tokens, rationales = _model_texts(t, table, method)
        bb = new_backbone(p, texts, new_tokens)
        examples = []
        for pair, repeats in training_pairs(p, t):
            rationale = rationales.get(pair.item_id)
            examples += [_encode_pair(bb, pair, table.of(pair.item_id), rationale)] * repeats
        cfg = train_config(p, p.epochs, p.learning_rate, f"train {direction} {method.name}")
        train(bb, examples, image_inputs(p), cfg, work)
        _save_inputs(bb, work)

    return cache.step("train", key, build, resumable=True)


def recipe_method() -> Method:
    """Notebook 02's recipe check: SemCORE's own model, ranked without GSV (the model whose
    validation-split twin notebook 04's GSV selection re-ranks, so the two share it)."""
    return methods.without_gsv(methods.get("semcore"))



def recipe_validation_runs(p: Params) -> dict[str, Params]:
    """Notebook 02's check of the training recipe on the validation split carved from train:
    the profile's learning rate and epochs beside their neighbours (and, where the profile uses
    them, the same model without sentence features), each `evaluate_on:
    validation` (SemCORE's model without GSV, T2I: `recipe_method`)."""
    changes = {"profile's setting": {}, "learning rate / 3": {"learning_rate": p.learning_rate / 3},
               "learning rate × 3": {"learning_rate": p.learning_rate * 3},
               "epochs / 3": {"epochs": max(1, p.epochs // 3)}}
    if p.text_features != "none":
        changes["without sentence features"] = {"text_features": "none"}
    return {name: p.replace(evaluate_on="validation", directions=["t2i"], ablation_directions=["t2i"],
                            **change) for name, change in changes.items()}


def loss_history(p: Params, direction: str, method: Method) -> list[dict]:
    return cache.read_json(trained_dir(p, direction, method) / "loss_history.json")


# --- decoding ---------------------------------------------------------------------------------
def _query_prompts(bb: Backbone, queries) -> list[tuple[str, prompts.Encoded]]:
    return [(q.id, prompts.text_query(bb, q.text) if q.text is not None
             else prompts.image_query(bb, q.image_id)) for q in queries]


def identifier_trie(p: Params, direction: str, method: Method, items: str = "corpus") -> IdentifierTrie:
    """The trie over the identifiers of the corpus (test) items, or of the train items (GSV's
    candidate search), as the trained model's tokenizer decodes them: built once per model and
    item set and saved, so every beam size, the search demo and a re-run only load it."""
    key = cache.key_of(step="trie", train=train_key(p, direction, method), items=items)

    def build(work: Path) -> None:
        from transformers import AutoTokenizer
        tokenizer = AutoTokenizer.from_pretrained(trained_dir(p, direction, method) / "tokenizer")
        IdentifierTrie.build(tokenizer, _item_table(p, direction, method, items)).save(work)

    return IdentifierTrie.load(cache.step("trie", key, build))


def _item_table(p: Params, direction: str, method: Method, items: str) -> IdentifierTable:
    """The identifier table cut to the corpus items or to the train items."""
    t = task(p, direction)
    keep = list(t.corpus_ids) if items == "corpus" else [it.id for it in t.items if it.split == "train"]
    return identifiers(p, direction, method).subset(keep)


def _decode(bb: Backbone, p: Params, direction: str, method: Method, items: str, queries,
            beam: int, constrained: bool, desc: str) -> dict[str, Ranked]:
    table, encoded = _item_table(p, direction, method, items), _query_prompts(bb, queries)
    if not constrained:
        return decode_free(bb, table, encoded, image_inputs(p), beam, DECODE_BATCH, p.seed,
                           match=method.match, desc=desc)
    return decode_constrained(bb, identifier_trie(p, direction, method, items), table, encoded,
                              image_inputs(p), beam, DECODE_BATCH, p.seed, desc=desc,
                              score=p.decode_score)


def decode_key(p: Params, direction: str, method: Method, beam: int) -> str:
    return cache.key_of(step="decode", train=train_key(p, direction, method), beam=beam,
                        constrained=method.constrained,
                        decode_score=p.decode_score if method.constrained else None,
                        match=None if method.constrained else method.match, max_queries=p.max_queries)


def decoded(p: Params, direction: str, method: Method, beam: int | None = None) -> dict[str, Ranked]:
    """Ranked candidate groups for every test query (trie over the test items only)."""
    beam = beam or p.beam_size
    key = decode_key(p, direction, method, beam)

    def build(work: Path) -> None:
        t = task(p, direction)
        bb = trained(p, direction, method)
        start = time.perf_counter()
        ranked = _decode(bb, p, direction, method, "corpus", t.queries, beam, method.constrained,
                         f"decode {direction} {method.name} beam {beam}")
        seconds = time.perf_counter() - start
        cache.write_json(work / "ranked.json", {q: r.to_dict() for q, r in ranked.items()})
        cache.write_json(work / "timing.json", {"seconds": seconds, "queries": len(t.queries)})

    work = cache.step("decode", key, build)
    return {q: Ranked(**r) for q, r in cache.read_json(work / "ranked.json").items()}


def diagnostics(p: Params, direction: str, method: Method, beam: int | None = None) -> dict:
    """Whether the trained model of (direction, method) learnt its identifiers
    (semcore.diagnostics: indexing accuracy, distinct top-1 identifiers over the test queries,
    their length, final loss per token against a uniform choice, collapsed). Always decoded
    trie-constrained: methods that decode freely share the model of a constrained one."""
    beam = beam or p.beam_size
    model = dataclasses.replace(methods.without_gsv(method), constrained=True)
    key = cache.key_of(step="diagnostics", decode=decode_key(p, direction, model, beam))

    def build(work: Path) -> None:
        t, bb = task(p, direction), trained(p, direction, model)
        decode = lambda queries: _decode(bb, p, direction, model, "corpus", queries, beam, True,  # noqa: E731
                                         f"index {direction} {method.name} beam {beam}")
        found = diagnose(t, identifiers(p, direction, model).of, decode, decoded(p, direction, model, beam),
                         lambda ident: len(prompts.identifier_tokens(bb.tokenizer, ident)),
                         loss_history(p, direction, model)[-1]["loss"])
        cache.write_json(work / "diagnostics.json", found.to_dict())

    return cache.read_json(cache.step("diagnostics", key, build) / "diagnostics.json")


def timing(p: Params, direction: str, method: Method, stage: str, beam: int | None = None) -> dict:
    """Wall-clock seconds of a cached stage ('decode' or 'gsv') as measured when it ran."""
    beam = beam or p.beam_size
    key = decode_key(p, direction, method, beam) if stage == "decode" else \
        final_key(p, direction, method, beam)
    return cache.read_json(cache.result_dir(stage, key) / "timing.json")


# --- GSV ----------------------------------------------------------------------------------------
def train_queries(p: Params, t: Task, c: Corpus) -> list[Query]:
    """A seeded sample of train-split queries (the source of GSV training examples)."""
    if t.direction == "t2i":
        pool = [Query(cap.id, cap.text, None, frozenset({cap.image_id}))
                for cap in c.captions_in("train")]
    else:
        pool = [Query(im.id, None, im.id, frozenset(cap.id for cap in c.captions_of(im.id)))
                for im in c.images_in("train")]
    rng = np.random.default_rng(p.seed)
    size = min(p.gsv_train_queries or len(pool), len(pool))  # 0: every train query
    pick = sorted(rng.choice(len(pool), size=size, replace=False))
    return [pool[i] for i in pick]


def candidates_key(p: Params, direction: str, method: Method) -> str:
    return cache.key_of(step="gsv_candidates", train=train_key(p, direction, method),
                        beam=p.beam_size, decode_score=p.decode_score, queries=p.gsv_train_queries)


def train_candidates(p: Params, direction: str, method: Method) -> dict[str, Ranked]:
    """The retrieval model's own ranked candidates for the GSV training queries (a trie over
    the train items), cached apart from the verifier so a sweep over k decodes them once."""
    key = candidates_key(p, direction, method)

    def build(work: Path) -> None:
        t, c = task(p, direction), corpus(p)
        ranked = _decode(trained(p, direction, method), p, direction, method, "train",
                         train_queries(p, t, c), p.beam_size, True,
                         f"GSV candidates {direction} {method.name}")
        cache.write_json(work / "ranked.json", {q: r.to_dict() for q, r in ranked.items()})

    work = cache.step("gsv_candidates", key, build)
    return {q: Ranked(**r) for q, r in cache.read_json(work / "ranked.json").items()}


def verifier_key(p: Params, direction: str, method: Method) -> str:
    """The verifier's training: the two listwise formats train the same verifier (they differ
    only in how it is read), so they share it; the likelihood format's does not depend on the
    candidates (k, beam)."""
    params = {**_pick(p, GSV_KEYS), "gsv_format": gsv.training_format(p.gsv_format)}
    if not gsv.needs_candidates(p.gsv_format):  # trained on no candidates: one verifier for any k
        params = {k: v for k, v in params.items() if k not in ("gsv_k", "beam_size", "decode_score")}
    return cache.key_of(step="gsv_train", train=train_key(p, direction, method), params=params)


def verifier(p: Params, direction: str, method: Method) -> Backbone:
    """The retrieval model further fine-tuned to select the match among its own candidates."""
    work = verifier_dir(p, direction, method)
    return _load(p, work / "model", work / "tokenizer")


def verifier_dir(p: Params, direction: str, method: Method) -> Path:
    """The GSV training step's folder (model/, tokenizer/), trained first if needed."""
    key = verifier_key(p, direction, method)

    def build(work: Path) -> None:
        t, c = task(p, direction), corpus(p)
        table = identifiers(p, direction, method)
        ranked = train_candidates(p, direction, method) if gsv.needs_candidates(p.gsv_format) else {}
        bb = trained(p, direction, method)
        examples = gsv.training_examples(bb, t, table, train_queries(p, t, c), ranked, p.gsv_k,
                                         p.seed, p.gsv_format, p.gsv_show_source)
        cfg = train_config(p, p.gsv_epochs, p.learning_rate / 2, f"train GSV {direction} {method.name}")
        train(bb, examples, image_inputs(p), cfg, work)
        _save_inputs(bb, work)

    return cache.step("gsv_train", key, build, resumable=True)


def gsv_k_runs(p: Params) -> list[tuple[Params, str, Method]]:
    """Notebook 04's sweep over k: each planned SemCORE run with each k of gsv_k_sweep."""
    return [(p.replace(gsv_k=k), d, m) for d, m in planned_runs(p) if m.name == "semcore"
            for k in p.gsv_k_sweep]


def gsv_runs(p: Params) -> list[tuple[Params, str, Method]]:
    """Every run with GSV the notebooks evaluate, in the order they first need its verifier:
    SemCORE in each direction (notebook 03's beam sweep), the planned runs with GSV and the
    k sweep (notebook 04). A verifier may appear more than once (same verifier_key)."""
    semcore = methods.get("semcore")
    return ([(p, d, semcore) for d in p.directions] + [(p, d, m) for d, m in planned_runs(p) if m.gsv]
            + gsv_k_runs(p))


def final_key(p: Params, direction: str, method: Method, beam: int) -> str:
    return cache.key_of(step="gsv", decode=decode_key(p, direction, method, beam),
                        verifier=verifier_key(p, direction, method) if method.gsv else None,
                        format=p.gsv_format if method.gsv else None)


def rankings(p: Params, direction: str, method: Method, beam: int | None = None) -> dict[str, list[str]]:
    """Final ranked item ids per test query: decoding, then GSV when the method uses it."""
    beam = beam or p.beam_size
    ranked = decoded(p, direction, method, beam)
    if not method.gsv:
        return {q: r.items() for q, r in ranked.items()}
    return gsv.combine(verified(p, direction, method, beam), ranked, p.gsv_decode_weight)


def verified(p: Params, direction: str, method: Method, beam: int | None = None) -> dict[str, dict]:
    """The verifier's scores of every test query's top-k (semcore.gsv.verify), cached: how they
    combine with the decoding scores (gsv_decode_weight) costs nothing to change."""
    beam = beam or p.beam_size
    key = final_key(p, direction, method, beam)

    def build(work: Path) -> None:
        t = task(p, direction)
        table = identifiers(p, direction, method)
        bb = verifier(p, direction, method)
        start = time.perf_counter()
        found = gsv.verify(bb, t, table, list(t.queries), decoded(p, direction, method, beam),
                           image_inputs(p), p.gsv_k, p.seed, p.gsv_format, p.gsv_show_source)
        cache.write_json(work / "timing.json", {"seconds": time.perf_counter() - start,
                                                "queries": len(t.queries)})
        cache.write_json(work / "verified.json", found)

    return cache.read_json(cache.step("gsv", key, build) / "verified.json")


def search(p: Params, text: str, method: Method, k: int = 8) -> list[str]:
    """Text-to-image search for a new query: the top-k corpus images (not cached). A query
    whose prompt and identifier would not fit the model's positions is an error, not a run on
    positions it never learnt."""
    if not text.strip():
        raise ValueError("search query is empty: type some words to search for")
    t, table = task(p, "t2i"), identifiers(p, "t2i", method)
    bb = trained(p, "t2i", method)
    length = len(prompts.text_query(bb, text).prompt)
    longest = identifier_trie(p, "t2i", method).trie.max_length  # the trie's longest path
    if length + longest > bb.max_length:
        raise ValueError(f"search query is too long: its prompt is {length} tokens and the "
                         f"longest identifier {longest}, over the model's {bb.max_length} "
                         f"positions; shorten it by {length + longest - bb.max_length} tokens or more")
    query = Query("search", text, None, frozenset())
    ranked = _decode(bb, p, "t2i", method, "corpus", [query], p.beam_size, method.constrained,
                     "search")
    if not method.gsv:
        return ranked["search"].items()[:k]
    found = gsv.verify(verifier(p, "t2i", method), t, table, [query], ranked, image_inputs(p),
                       p.gsv_k, p.seed, p.gsv_format, p.gsv_show_source)
    return gsv.combine(found, ranked, p.gsv_decode_weight)["search"][:k]


# --- evaluation -----------------------------------------------------------------------------------
def chance(p: Params, direction: str) -> float:
    """R@1 of a random ranking, in percent: relevant items per query over the corpus size."""
    t = task(p, direction)
    return 100 * sum(len(q.relevant) for q in t.queries) / len(t.queries) / len(t.corpus_ids)


def qrels(p: Params, direction: str) -> dict[str, set[str]]:
    return {q.id: set(q.relevant) for q in task(p, direction).queries}


KS = (1, 5, 10)  # the R@K cut-offs every table reports


def _scores(final: dict[str, list[str]], relevant: dict[str, set[str]]) -> dict:
    scores = metrics.recall_at_k(final, relevant, ks=(1, 5))
    scores["R@10"] = metrics.recall_at_k(final, relevant, ks=(10,))["R@10"]
    return scores


def _with_intervals(p: Params, final: dict[str, list[str]], relevant: dict[str, set[str]]) -> dict:
    """_scores plus "R@K lo" and "R@K hi": each R@K's 95 % bootstrap interval over the queries
    (semcore.stats, seeded with p.seed), so a table shows which differences are more than chance."""
    scores = _scores(final, relevant)
    for k, per_query in metrics.hits(final, relevant, KS).items():
        _, scores[f"R@{k} lo"], scores[f"R@{k} hi"] = stats.interval(per_query, seed=p.seed)
    return scores


def evaluate(p: Params, direction: str, method: Method, beam: int | None = None) -> dict:
    """R@1/5/10 with 95 % intervals, and rSum of one run, from its final rankings. rSum is the
    paper's: R@1 + R@5."""
    scores = _with_intervals(p, rankings(p, direction, method, beam), qrels(p, direction))
    return {"direction": direction, "method": method.name, "label": method.label,
            "beam": beam or p.beam_size, **scores}


def hits(p: Params, direction: str, method: Method, beam: int | None = None) -> dict[int, list[bool]]:
    """{K: whether each test query (sorted ids) has a correct item in the run's top K}, K in
    1, 5, 10: what semcore.stats needs to compare two runs on the same queries."""
    return metrics.hits(rankings(p, direction, method, beam), qrels(p, direction), KS)


GSV_DECODE_WEIGHTS = (0.0, 0.1, 0.25, 1.0, 4.0)  # verifier + w × decoding score; 0 is the paper's


def gsv_variants(p: Params, direction: str) -> dict[str, dict]:
    """The profile's `gsv_variants` that apply in a direction (source text is a T2I candidate's
    only), name → the GSV parameters that make it (`methods.GSV_VARIANTS`)."""
    return {name: GSV_VARIANTS[name] for name in p.gsv_variants
            if direction == "t2i" or not GSV_VARIANTS[name]["gsv_show_source"]}


def gsv_selection(p: Params) -> list[dict]:
    """Notebook 04's choice of GSV format and decoding weight on the validation split carved
    from train (never the test split): SemCORE's R@1 before GSV and after it under every
    variant and weight, per direction. Verifier scores are computed once per variant; the
    weights only re-combine them."""
    semcore = methods.get("semcore")
    rows = []
    for direction in p.directions:
        for name, variant in gsv_variants(p, direction).items():
            pv = p.replace(evaluate_on="validation", **variant)
            before = evaluate(pv, direction, methods.without_gsv(semcore))["R@1"]
            for weight in GSV_DECODE_WEIGHTS:
                after = evaluate(pv.replace(gsv_decode_weight=weight), direction, semcore)["R@1"]
                rows.append({"direction": direction, "variant": name, "decode weight": weight,
                             "R@1 before": before, "R@1 after": after, "gain": after - before})
    return rows


def gsv_choice(selection: list[dict]) -> dict:
    """The variant and weight with the largest validation gain summed over the directions
    (among those run in every direction); ties go to the one listed first, the closest to
    the paper (listwise, weight 0)."""
    directions = {r["direction"] for r in selection}
    gains: dict[tuple, dict] = {}
    for r in selection:
        gains.setdefault((r["variant"], r["decode weight"]), {})[r["direction"]] = r["gain"]
    totals = {k: sum(g.values()) for k, g in gains.items() if set(g) == directions}
    (variant, weight), gain = max(totals.items(), key=lambda kv: kv[1])
    return {"variant": variant, **GSV_VARIANTS[variant], "gsv_decode_weight": weight,
            "validation gain": gain}


def gsv_rotations(p: Params, direction: str, method: Method) -> list[dict]:
    """GSV's top-1 accuracy by the position of the correct candidate, each query's list shown
    in all its rotations (semcore.gsv.accuracy_by_rotation), cached."""
    beam = p.beam_size
    key = cache.key_of(step="gsv_rotations", final=final_key(p, direction, method, beam),
                       decode_weight=p.gsv_decode_weight)

    def build(work: Path) -> None:
        t = task(p, direction)
        found = gsv.accuracy_by_rotation(
            verifier(p, direction, method), t, identifiers(p, direction, method), list(t.queries),
            decoded(p, direction, method, beam), image_inputs(p), p.gsv_k, p.seed, p.gsv_format,
            p.gsv_show_source, p.gsv_decode_weight)
        cache.write_json(work / "by_rotation.json", found)

    return cache.read_json(cache.step("gsv_rotations", key, build) / "by_rotation.json")


def gsv_effect(p: Params, direction: str, method: Method, rotations: bool = False) -> dict:
    """What GSV does to one run (notebook 04): R@1/5/10 of the same model before and after it,
    the paired bootstrap 95 % interval of the R@1 gain, the verifier's accuracy by the position
    the correct candidate was shown at with its uniformity check (and, with `rotations`, the
    same with every query shown at every position: gsv_rotations), its final training loss
    beside a uniform guess, and the cost per query of decoding and of GSV."""
    before, after = hits(p, direction, methods.without_gsv(method)), hits(p, direction, method)
    gain = stats.paired_difference(after[1], before[1], seed=p.seed)
    t = task(p, direction)
    by_position = gsv.accuracy_by_position(list(t.queries), decoded(p, direction, method),
                                           rankings(p, direction, method), p.gsv_k, p.seed)
    loss = cache.read_json(verifier_dir(p, direction, method) / "loss_history.json")[-1]["loss"]
    dec, ver = timing(p, direction, method, "decode"), timing(p, direction, method, "gsv")
    row = {"direction": direction, "format": p.gsv_format, "source text": p.gsv_show_source}
    for k in KS:
        row[f"R@{k} before"] = 100.0 * float(np.mean(before[k]))
        row[f"R@{k} after"] = 100.0 * float(np.mean(after[k]))
    row.update({"R@1 gain": gain.diff, "gain lo": gain.lo, "gain hi": gain.hi, "gain p": gain.p,
                "verifier loss": loss, "uniform loss": gsv.uniform_loss(p.gsv_format, p.gsv_k),
                "decode ms/query": 1000 * dec["seconds"] / dec["queries"],
                "GSV ms/query": 1000 * ver["seconds"] / ver["queries"]})
    row.update({f"position {k}": v for k, v in gsv.position_check(by_position).items()})
    by_rotation = []
    if rotations:
        by_rotation = gsv_rotations(p, direction, method)
        row.update({f"rotated {k}": v for k, v in gsv.position_check(by_rotation).items()})
    return {"row": row, "by_position": by_position, "by_rotation": by_rotation}


# --- the dense two-tower baseline (Table 2) ------------------------------------------------------
DENSE_LABEL = "Dense two-tower (frozen encoders)"


def dense_rankings(p: Params, direction: str) -> dict[str, list[str]]:
    """Test-query rankings of a two-tower retriever (linear heads over the frozen DINOv2 and
    MiniLM features, semcore.dense) trained on the text–image pairs the generative models see:
    T2I its caption → image pairs (train captions, held-out captions of the corpus images);
    I2T the train split's captions only (the test images are its queries)."""
    from semcore import dense
    key = cache.key_of(step="dense", corpus=fingerprint(corpus(p)), direction=direction,
                       params=_pick(p, ID_KEYS), max_queries=p.max_queries, config=repr(dense.DenseConfig(seed=p.seed)))

    def build(work: Path) -> None:
        t, c, feats = task(p, direction), corpus(p), image_features(p)
        if direction == "t2i":
            pairs = [(pr.text, pr.item_id) for pr in t.pairs if pr.kind == "text"]
        else:
            pairs = [(cap.text, cap.image_id) for cap in c.captions_in("train")]
        image_ids = sorted({i for _, i in pairs})
        row = {i: r for r, i in enumerate(image_ids)}
        model = dense.train_two_tower(np.stack([feats[i] for i in image_ids]),
                                      encode_texts([text for text, _ in pairs]),
                                      np.array([row[i] for _, i in pairs]), dense.DenseConfig(seed=p.seed))
        queries, corpus_ids = list(t.queries), list(t.corpus_ids)
        if direction == "t2i":
            sim = model.similarity(encode_texts([q.text for q in queries]),
                                   np.stack([feats[i] for i in corpus_ids]))
        else:
            sim = model.similarity(encode_texts([t.item(i).source_text for i in corpus_ids]),
                                   np.stack([feats[q.image_id] for q in queries])).T
        order = dense.rank(sim, k=min(50, len(corpus_ids)))
        cache.write_json(work / "rankings.json",
                         {q.id: [corpus_ids[j] for j in row_order] for q, row_order in zip(queries, order)})

    return cache.read_json(cache.step("dense", key, build) / "rankings.json")


def evaluate_dense(p: Params, direction: str) -> dict:
    scores = _with_intervals(p, dense_rankings(p, direction), qrels(p, direction))
    return {"direction": direction, "method": "dense", "label": DENSE_LABEL, **scores}


def dense_hits(p: Params, direction: str) -> dict[int, list[bool]]:
    """hits() of the dense baseline."""
    return metrics.hits(dense_rankings(p, direction), qrels(p, direction), KS)


# --- the identifier ceiling (no model: what a perfect generator of an identifier could reach) ----
def identifier_ceiling(p: Params, direction: str, method: Method, scorer: str) -> dict:
    """R@1/5/10 of the corpus ranked by a text score (scorer: "bm25" or "minilm") between each
    test query and the items' identifiers of `method` (semcore.ceiling); T2I only."""
    key = cache.key_of(step="ceiling", identifiers=identifier_key(p, direction, method),
                       scorer=scorer, max_queries=p.max_queries)
    return _ceiling(p, direction, key, scorer, lambda t: identifiers(p, direction, method).of)


def source_text_ceiling(p: Params, direction: str, scorer: str) -> dict:
    """The same with each item's own source text (e.g. its held-out caption) for its identifier."""
    generated = p.caption_source == "generated" and direction == "t2i"
    key = cache.key_of(step="ceiling", corpus=fingerprint(corpus(p)), direction=direction,
                       params=_pick(p, ("caption_source", "heldout_caption_index", "seed")),
                       captions=captions_key(p) if generated else None, scorer=scorer,
                       max_queries=p.max_queries, source_text=True)
    return _ceiling(p, direction, key, scorer, lambda t: lambda item: t.item(item).source_text)


def _ceiling(p: Params, direction: str, key: str, scorer: str, item_text) -> dict:
    ceiling.check_direction(direction)  # before building any identifiers

    def build(work: Path) -> None:
        t = task(p, direction)
        ranked = ceiling.rankings(t, item_text(t), scorer, p.seed)
        scores = _scores(ranked, qrels(p, direction))
        cache.write_json(work / "scores.json", {"direction": direction, "scorer": scorer, **scores})

    return cache.read_json(cache.step("ceiling", key, build) / "scores.json")
