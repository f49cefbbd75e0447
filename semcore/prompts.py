"""Every prompt the backbone sees, as token ids, built in one place.

Retrieval: a query (text or image) followed by "id:"; the target is the identifier and the end
token. GSV (paper §3.3): the candidates with their lexical IDs, the query, and the instruction
to select the best match; the target is the chosen candidate's letter. Image placeholders are
expanded to n_image_tokens IMG_CONTEXT tokens, filled with image features by the model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from string import ascii_uppercase

from semcore.models import Backbone

LABELS = ascii_uppercase  # GSV candidate letters; gsv_k ≤ 26
TEMPLATE_WORDS = ["text:", "image:", "id:", "caption:", "because", "sentence:", "answer:", "select the image that best "
                  "matches the sentence.", "select the caption that best matches the image.",
                  "candidate:", "match:", " yes", " no",
                  *[f"{c}:" for c in LABELS], *[f" {c}" for c in LABELS]]


@dataclass
class Encoded:
    """One model input: prompt ids, target ids (empty at inference), and its images and (for
    backbones with sentence features) its text inputs, each in placeholder order."""

    prompt: list[int]
    target: list[int] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)


class _Prompt:
    """A prompt built piece by piece: words, images (their placeholders) and text inputs (their
    words, after one sentence-feature placeholder where the backbone reads them)."""

    def __init__(self, bb: Backbone):
        self.bb, self.ids, self.images, self.texts = bb, [], [], []

    def words(self, text: str) -> "_Prompt":
        self.ids += self.bb.encode(text)
        return self

    def image(self, image_id: str) -> "_Prompt":
        self.ids += _image(self.bb)
        self.images.append(image_id)
        return self

    def text(self, label: str, text: str) -> "_Prompt":
        """`label` then the text input (as "label text"); the feature placeholder sits between."""
        self.ids += self.bb.encode(label)
        if self.bb.text_values is not None:
            self.ids.append(self.bb.text_token_id)
            self.texts.append(text)
        self.ids += self.bb.encode(f" {text}")
        return self

    def done(self, target: list[int] | None = None) -> Encoded:
        return Encoded(self.ids, target or [], self.images, self.texts)


def _image(bb: Backbone) -> list[int]:
    return bb.encode("<img>") + [bb.image_token_id] * bb.n_image_tokens + bb.encode("</img>")


def identifier_target(bb: Backbone, identifier: str) -> list[int]:
    """The tokens decoded for an identifier: exactly what the trie holds."""
    return identifier_tokens(bb.tokenizer, identifier)


def identifier_tokens(tokenizer, identifier: str) -> list[int]:
    """identifier_target for a bare tokenizer (to count tokens before a model exists)."""
    return tokenizer(" " + identifier, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


def _target(bb: Backbone, identifier: str | None, rationale: str | None) -> list[int]:
    """Identifier (and end token), then SSI's rationale as an auxiliary target after it: the
    identifier part is unchanged, so trie decoding and its scores (eq. 1) are too."""
    if not identifier:
        return []
    tail = bb.encode(f" because {rationale}") + [bb.eos_id] if rationale else []
    return identifier_target(bb, identifier) + tail


def text_query(bb: Backbone, text: str, identifier: str | None = None,
               rationale: str | None = None) -> Encoded:
    return _Prompt(bb).text("text:", text).words("\nid:").done(_target(bb, identifier, rationale))


def image_query(bb: Backbone, image_id: str, identifier: str | None = None,
                rationale: str | None = None) -> Encoded:
    return (_Prompt(bb).words("image: ").image(image_id).words("\nid:")
            .done(_target(bb, identifier, rationale)))


def caption(bb: Backbone, image_id: str, text: str | None = None) -> Encoded:
    """Image → caption (to write the generated captions that SID is built from)."""
    prompt = bb.encode("image: ") + _image(bb) + bb.encode("\ncaption:")
    return Encoded(prompt, bb.encode(" " + text) + [bb.eos_id] if text else [], [image_id])


def chat_caption(bb: Backbone, image_id: str) -> Encoded:
    """Zero-shot captioning by a pretrained chat MLLM: its own chat template around one image
    and the instruction (the paper's backbones caption zero-shot)."""
    text = bb.tokenizer.apply_chat_template(
        [{"role": "user", "content": "<image>\nDescribe the image in one sentence."}],
        tokenize=False, add_generation_prompt=True)
    before, after = text.split("<image>")
    return Encoded(bb.encode(before) + _image(bb) + bb.encode(after), [], [image_id])


def gsv_t2i(bb: Backbone, query: str, candidates: list[tuple[str, str]],
            answer: int | None = None) -> Encoded:
    """candidates: (image id, lexical ID) in presentation order; answer: index of the target."""
    prompt = _Prompt(bb)
    for label, (image_id, lexical) in zip(LABELS, candidates):
        prompt.words(f"{label}: ").image(image_id).words(f" {lexical}\n")
    prompt.text("sentence:", query).words("\nselect the image that best matches the sentence.\nanswer:")
    return prompt.done(_answer(bb, answer))


def gsv_i2t(bb: Backbone, image_id: str, candidates: list[tuple[str, str]],
            answer: int | None = None) -> Encoded:
    """candidates: (caption text, lexical ID) in presentation order."""
    prompt = _Prompt(bb).words("image: ").image(image_id).words("\n")
    for label, (caption, lexical) in zip(LABELS, candidates):
        prompt.text(f"{label}:", caption).words(f" ({lexical})\n")
    prompt.words("select the caption that best matches the image.\nanswer:")
    return prompt.done(_answer(bb, answer))


def gsv_pair_t2i(bb: Backbone, query: str, candidate: tuple[str, str, str | None],
                 answer: bool | None = None) -> Encoded:
    """Pointwise GSV: one candidate (image id, lexical ID, its source text when shown), then the
    query; the target says whether they match (" yes" / " no")."""
    image_id, lexical, source = candidate
    prompt = _Prompt(bb).words("candidate: ").image(image_id).words(f" {lexical}")
    if source:
        prompt.words("\n").text("caption:", source)
    return prompt.words("\n").text("sentence:", query).words("\nmatch:").done(_verdict(bb, answer))


def gsv_pair_i2t(bb: Backbone, image_id: str, candidate: tuple[str, str],
                 answer: bool | None = None) -> Encoded:
    """Pointwise GSV for I2T: the query image, then one candidate caption with its lexical ID."""
    caption, lexical = candidate
    prompt = _Prompt(bb).words("image: ").image(image_id).words("\n").text("candidate:", caption)
    return prompt.words(f" ({lexical})\nmatch:").done(_verdict(bb, answer))


def gsv_likelihood_t2i(bb: Backbone, query: str, candidate: tuple[str, str, str | None]) -> Encoded:
    """Query-likelihood GSV: one candidate (image id, lexical ID, its source text when shown),
    then the query as the target: the verifier writes the sentence the candidate would have."""
    image_id, lexical, source = candidate
    prompt = _Prompt(bb).words("candidate: ").image(image_id).words(f" {lexical}")
    if source:
        prompt.words("\n").text("caption:", source)
    return prompt.words("\nsentence:").done(bb.encode(f" {query}") + [bb.eos_id])


def gsv_likelihood_i2t(bb: Backbone, image_id: str, caption: str) -> Encoded:
    """Caption-likelihood GSV for I2T: the query image, then a candidate caption as the target."""
    return (_Prompt(bb).words("image: ").image(image_id).words("\ncaption:")
            .done(bb.encode(f" {caption}") + [bb.eos_id]))


def verdict_token_ids(bb: Backbone) -> tuple[int, int]:
    """The first tokens of " yes" and " no": a pointwise verifier's score is their log-odds."""
    yes, no = bb.encode(" yes")[0], bb.encode(" no")[0]
    if yes == no:
        raise ValueError('" yes" and " no" share their first token')
    return yes, no


def _verdict(bb: Backbone, answer: bool | None) -> list[int]:
    return [] if answer is None else bb.encode(" yes" if answer else " no") + [bb.eos_id]


def label_token_ids(bb: Backbone, k: int) -> list[int]:
    """The first token of each answer letter; the verifier's score for candidate j."""
    ids = [bb.encode(f" {c}")[0] for c in LABELS[:k]]
    if len(set(ids)) != k:
        raise ValueError("GSV answer letters do not tokenize to distinct first tokens")
    return ids


def _answer(bb: Backbone, answer: int | None) -> list[int]:
    return [] if answer is None else bb.encode(f" {LABELS[answer]}") + [bb.eos_id]
