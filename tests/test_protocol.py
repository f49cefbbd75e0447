"""The protocol never lets a test query reach identifier construction or training."""
import dataclasses

import pytest

from semcore import config, methods, pipeline
from semcore.protocol import LeakError, Pair, assert_no_query_leak, build_task


@pytest.fixture(scope="module")
def params(tmp_path_factory):
    import os
    os.environ["SEMCORE_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    return config.load("params/tiny.yaml")


@pytest.mark.parametrize("direction", ["t2i", "i2t"])
def test_queries_never_sources_inputs_or_targets(params, direction):
    corpus = pipeline.corpus(params)
    task = build_task(corpus, direction, "heldout", 0)
    assert_no_query_leak(task)
    query_ids = {q.id for q in task.queries}
    assert query_ids and not query_ids & {p.source_id for p in task.pairs}
    assert not query_ids & {it.source_id for it in task.items}
    if direction == "t2i":
        # query texts are neither identifier sources nor training inputs (by provenance)
        test_caps = {c.id: c.text for c in corpus.captions_in("test")}
        assert len(task.queries) == 4 * len(corpus.images_in("test"))
        heldout = {it.source_id for it in task.items if it.split == "test"}
        assert heldout.isdisjoint(query_ids) and heldout <= set(test_caps)
    else:
        # the query images are never a training input
        assert not query_ids & {p.image_id for p in task.pairs if p.kind == "image"}
    assert set(task.corpus_ids) == {it.id for it in task.items if it.split == "test"}


def test_leak_is_detected(params):
    task = build_task(pipeline.corpus(params), "t2i", "heldout", 0)
    q = task.queries[0]
    leaked = Pair("text", q.text, None, next(iter(q.relevant)), q.id, "train_query")
    with pytest.raises(LeakError):
        assert_no_query_leak(dataclasses.replace(task, pairs=task.pairs + (leaked,)))


@pytest.mark.parametrize("direction", ["t2i", "i2t"])
def test_identifier_sources_and_training_targets_exclude_queries(params, direction):
    """End to end through the cached pipeline: the identifier table's source texts for the
    test corpus are held-out captions, and no query text is in the tokenizer/training texts."""
    task = pipeline.task(params, direction)
    table = pipeline.identifiers(params, direction, methods.get("semcore"))
    assert set(table.item_ids) == {it.id for it in task.items}
    if direction == "t2i":
        query_texts = {q.text for q in task.queries}
        train_texts = {p.text for p in task.pairs if p.text}
        sources = {it.source_text for it in task.items}
        # a query text may coincide with another caption's text only by chance; none of the
        # test queries' own texts is used unless an identical caption exists elsewhere
        corpus = pipeline.corpus(params)
        other = {c.text for c in corpus.captions if c.id not in {q.id for q in task.queries}}
        assert (query_texts & (train_texts | sources)) <= other


@pytest.mark.parametrize("direction", ["t2i", "i2t"])
def test_dense_baseline_never_trains_on_queries(params, direction, monkeypatch):
    from semcore import dense
    seen = {}
    real = dense.train_two_tower

    def spy(image_feats, text_embs, rows, cfg):
        seen["n"] = len(text_embs)
        return real(image_feats, text_embs, rows, cfg)

    texts_seen = []
    real_encode = pipeline.encode_texts
    monkeypatch.setattr(dense, "train_two_tower", spy)
    monkeypatch.setattr(pipeline, "encode_texts", lambda texts: texts_seen.append(list(texts)) or real_encode(texts))
    pipeline.dense_rankings(params, direction)
    train_texts = set(texts_seen[0])
    task = pipeline.task(params, direction)
    corpus = pipeline.corpus(params)
    if direction == "t2i":
        assert train_texts.isdisjoint({q.text for q in task.queries})
    else:  # only train-split captions: no caption of a query image
        query_images = {q.image_id for q in task.queries}
        assert train_texts <= {c.text for c in corpus.captions_in("train")}
        assert train_texts.isdisjoint({c.text for c in corpus.captions if c.image_id in query_images}
                                      - {c.text for c in corpus.captions_in("train")})
    assert seen["n"] == len(texts_seen[0])


@pytest.mark.parametrize("direction", ["t2i", "i2t"])
def test_max_queries_is_a_seeded_ordered_sample_that_decoding_keys_on(params, direction):
    full = pipeline.task(params, direction)
    small = pipeline.task(params.replace(max_queries=5), direction)
    again = pipeline.task(params.replace(max_queries=5), direction)
    ids = [q.id for q in full.queries]
    picked = [q.id for q in small.queries]
    assert len(picked) == 5 and picked == [q.id for q in again.queries]
    assert picked == [i for i in ids if i in set(picked)]  # the original order
    assert small.pairs == full.pairs and small.items == full.items  # training is unchanged
    semcore = methods.get("semcore")
    assert pipeline.train_key(params.replace(max_queries=5), direction, semcore) == \
        pipeline.train_key(params, direction, semcore)
    assert pipeline.decode_key(params.replace(max_queries=5), direction, semcore, 4) != \
        pipeline.decode_key(params, direction, semcore, 4)


@pytest.mark.parametrize("direction", ["t2i", "i2t"])
def test_validation_experiment_never_sees_the_test_split(params, direction):
    """evaluate_on: validation evaluates on train images carved out by seed, and no test image,
    caption or query reaches any of its steps."""
    val = params.replace(evaluate_on="validation", validation_images=8)
    test_images = {im.id for im in pipeline.corpus(params).images_in("test")}
    carved = pipeline.corpus(val)
    assert not test_images & {im.id for im in carved.images}
    assert not test_images & {c.image_id for c in carved.captions}
    evaluated = carved.images_in("test")
    train_ids = {im.id for im in pipeline.corpus(params).images_in("train")}
    assert len(evaluated) == 8 and {im.id for im in evaluated} <= train_ids
    assert len(carved.images_in("train")) == len(train_ids) - 8
    task = pipeline.task(val, direction)
    assert not test_images & {p.image_id or p.item_id.split("#")[0] for p in task.pairs}
    reseeded = pipeline.corpus(val.replace(seed=val.seed + 1)).images_in("test")
    assert {im.id for im in reseeded} != {im.id for im in evaluated}  # the sample follows the seed
    assert pipeline.train_key(val, direction, methods.get("semcore")) != \
        pipeline.train_key(params, direction, methods.get("semcore"))


def test_validation_images_out_of_range_is_named(params):
    with pytest.raises(Exception, match="validation_images"):
        pipeline.corpus(params.replace(evaluate_on="validation", validation_images=10_000))


def test_long_sid_uses_its_own_lexical_length(params):
    """sid_long overrides the profile's lexical_length (and keeps every keyword): its identifiers
    are longer than the faithful SID's and its model is a different training step."""
    faithful, long = methods.get("wo_gsv"), methods.get("sid_long")
    words = lambda m: sum(len(i.split()) for i in pipeline.identifiers(params, "t2i", m).identifiers)  # noqa: E731
    assert params.lexical_length < long.lexical_length
    assert words(long) > words(faithful)
    assert pipeline.train_key(params, "t2i", long) != pipeline.train_key(params, "t2i", faithful)


def test_train_seed_retrains_the_model_and_keeps_data_identifiers_and_queries(params):
    """A seed sweep varies training alone: the model's key follows train_seed, the corpus,
    identifiers, test queries and GSV training queries do not."""
    other = params.replace(train_seed=params.train_seed + 1)
    semcore = methods.get("semcore")
    assert pipeline.train_key(other, "t2i", semcore) != pipeline.train_key(params, "t2i", semcore)
    assert pipeline.identifier_key(other, "t2i", semcore) == pipeline.identifier_key(params, "t2i", semcore)
    assert [q.id for q in pipeline.task(other, "t2i").queries] == [q.id for q in pipeline.task(params, "t2i").queries]
    gsv_queries = [[q.id for q in pipeline.train_queries(x, pipeline.task(x, "t2i"), pipeline.corpus(x))]
                   for x in (params, other)]
    assert gsv_queries[0] == gsv_queries[1]
    assert pipeline.train_config(other, 1, 0.1, "x").seed == params.train_seed + 1
    assert params.replace(seed_sweep="").seed_sweep == ""  # a profile may run none
