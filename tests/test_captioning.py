"""caption_source: generated — the backbone learns to caption on the train split, then its
captions (never a test caption) are the image identifiers' source; all five test captions of
an image stay queries."""
import pytest

from semcore import config, methods, pipeline, prompts
from semcore.protocol import assert_no_query_leak


@pytest.fixture(scope="module")
def params(tmp_path_factory):
    import os
    os.environ["SEMCORE_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    return config.load("params/tiny.yaml", caption_source="generated", caption_epochs=1,
                       caption_max_tokens=8)


def test_generated_captions_are_the_identifier_source(params):
    corpus = pipeline.corpus(params)
    written = pipeline.captions(params)
    assert set(written) == {im.id for im in corpus.images}
    assert all(text.strip() and len(text.split()) <= 8 for text in written.values())
    task = pipeline.task(params, "t2i")
    assert_no_query_leak(task)
    assert len(task.queries) == len(corpus.captions_in("test"))  # nothing held out
    assert all(it.source_text == written[it.id] and it.source_id == "" for it in task.items)
    pseudo = [pr for pr in task.pairs if pr.role == "pseudo_query"]
    assert pseudo and all(pr.text == written[pr.item_id] for pr in pseudo)
    assert pipeline.captions(params) == written  # cached and deterministic


def test_captioner_trains_on_train_captions_only(params):
    from semcore.captioning import training_examples

    corpus = pipeline.corpus(params)
    texts = [c.text for c in corpus.captions] + prompts.TEMPLATE_WORDS
    bb = pipeline.new_backbone(params, texts)
    examples = training_examples(bb, corpus)
    train_images = {im.id for im in corpus.images_in("train")}
    assert len(examples) == len(corpus.captions_in("train"))
    assert all(e.images[0] in train_images for e in examples)


def test_atomic_ids_are_single_new_tokens(params):
    table = pipeline.identifiers(params, "t2i", methods.get("grace_atomic"))
    bb = pipeline.trained(params, "t2i", methods.get("grace_atomic"))
    vocab = bb.tokenizer.get_vocab()
    assert all(ident in vocab for ident in table.identifiers)
    tokens = {tuple(prompts.identifier_target(bb, ident)) for ident in table.identifiers}
    assert len(tokens) == len(table.identifiers)
    assert all(bb.tokenizer.convert_ids_to_tokens(t[-2]) in table.identifiers for t in tokens)
