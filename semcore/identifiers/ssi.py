"""SSI's Structured Semantic Identifiers (arXiv 2509.17359), written by a small instruction LM.

SSI prompts the MLLM to write, for each image–caption pair, a concept-level identifier in
fixed slots (objects, attributes, actions, scene; plain words, no new tokens) and a
one-sentence rationale that serves as an auxiliary training target (Rationale-Guided
Supervision: the target is identifier + rationale, only the identifier is decoded under the
trie). On CPU, SmolLM2-135M-Instruct writes them from the item's source text (never a query),
guided by a few made-up examples.

A small LM's answers need checking: an answer is valid when it has all four slot lines and
its objects slot keeps a content word that the source text contains (a copied few-shot answer
fails this). Invalid answers are replaced by a rule-based identifier read from the source text
and counted. The identifier is each non-empty slot's name followed by its words, in fixed
order: "objects dog ball attributes brown actions running scene park".
"""
from __future__ import annotations

import hashlib
import inspect
import json
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tqdm import tqdm

from semcore import paths
from semcore.cache import read_json, write_json
from semcore.identifiers.base import IdentifierInputs, IdentifierOptions, IdentifierTable
from semcore.identifiers.baselines import EMPTY
from semcore.identifiers.sid import assemble
from semcore.keywords import CAPTION_WORDS, caption_vectorizer

SLOTS = {"objects": 3, "attributes": 3, "actions": 2, "scene": 2}  # slot → most words kept
RATIONALE = "rationale"
BATCH_SIZE = 32  # completions per forward pass (32 was fastest per item here, vs 8, 16, 64)
MAX_NEW_TOKENS = 64  # five short lines; a longer answer is cut and its rationale truncated
GROUNDING_PREFIX = 3  # an object word is grounded if a source word starts with its first 3 letters

SYSTEM = (
    "You write a structured identifier for a picture from its caption. "
    "Answer with exactly five lines:\n"
    "objects: the main people, animals or things (1 to 3 nouns)\n"
    "attributes: colours, sizes or numbers (up to 3 words, or none)\n"
    "actions: what they are doing (up to 2 verbs, or none)\n"
    "scene: the place (up to 2 words, or none)\n"
    "rationale: one short sentence explaining how these words describe the picture.")
# Few-shot examples written for this prompt (not taken from any data set).
SHOTS = [
    ("A small girl in a yellow coat feeds ducks beside a pond .",
     "objects: girl ducks\nattributes: small yellow\nactions: feeding\nscene: pond\n"
     "rationale: A small girl in yellow is feeding ducks at a pond."),
    ("Three men play guitars on a stage .",
     "objects: men guitars\nattributes: three\nactions: playing\nscene: stage\n"
     "rationale: Three men are playing guitars on a stage."),
    ("A man sleeps on a bench .",
     "objects: man bench\nattributes: none\nactions: sleeping\nscene: none\n"
     "rationale: A man is lying asleep on a bench."),
    ("An old red truck parked on a snowy road",
     "objects: truck road\nattributes: old red snowy\nactions: parked\nscene: road\n"
     "rationale: An old red truck stands on a road covered in snow."),
]
COLOURS = frozenset({"black", "white", "red", "blue", "green", "yellow", "brown", "pink",
                     "orange", "purple", "gray", "grey", "tan", "blond", "blonde", "dark",
                     "golden", "silver"})
NUMBERS = frozenset({"two", "three", "four", "five", "six", "eight", "nine", "ten"})
# A slot line; its name may be singular or plural ("action: running" fills actions).
LINE_NAMES = {name.rstrip("s"): name for name in (*SLOTS, RATIONALE)}
SLOT_LINE = re.compile(rf"^\W*({'|'.join(LINE_NAMES)})s?\s*:\s*(.*)$", re.IGNORECASE)
SENTENCE = re.compile(r"^.*?[.!?](?=\s|$)")


@dataclass(frozen=True)
class Structured:
    """One item's slots (normalised words, in SLOTS order) and its rationale sentence."""

    slots: dict[str, list[str]]
    rationale: str

    def identifier(self) -> str:
        """Each non-empty slot's name and words; EMPTY when no slot has a word."""
        parts = [" ".join([name, *self.slots[name]]) for name in SLOTS if self.slots[name]]
        return " ".join(parts) or EMPTY


@lru_cache(maxsize=1)
def _analyzer():
    return caption_vectorizer().build_analyzer()


def content_words(text: str) -> list[str]:
    """Lower-cased words of two or more characters, caption stop words dropped, in order."""
    return _analyzer()(text)


def normalise_slots(raw: dict[str, str]) -> dict[str, list[str]]:
    """Content words per slot, each word kept once (first slot wins), cut to SLOTS limits."""
    seen: set[str] = set()
    out: dict[str, list[str]] = {}
    for name, limit in SLOTS.items():
        words = []
        for w in content_words(raw.get(name, "")):
            if w not in seen and w not in SLOTS and len(words) < limit:
                seen.add(w)
                words.append(w)
        out[name] = words
    return out


def first_sentence(text: str) -> str:
    """The text's first sentence, whitespace collapsed and none before punctuation ("dog .")
    (all of it if it has no end mark)."""
    text = re.sub(r"\s+([.,;:!?])", r"\1", " ".join(text.split()))
    m = SENTENCE.match(text)
    return m.group(0) if m else text


def parse(output: str) -> tuple[dict[str, str], str]:
    """The first value of each slot line (slot → raw text) and the rationale ("" if none)."""
    found: dict[str, str] = {}
    for line in output.splitlines():
        m = SLOT_LINE.match(line)
        if m and LINE_NAMES[m.group(1).lower()] not in found:
            found[LINE_NAMES[m.group(1).lower()]] = m.group(2).strip()
    rationale = first_sentence(found.pop(RATIONALE, ""))
    return found, rationale


def grounded(words: list[str], source: str) -> bool:
    """Whether some word shares its first GROUNDING_PREFIX letters with a source word."""
    stems = {w[:GROUNDING_PREFIX] for w in content_words(source)}
    return any(w[:GROUNDING_PREFIX] in stems for w in words)


def check(output: str, source: str) -> tuple[Structured | None, str]:
    """The parsed answer and "valid", or None and why not ("unparsed", "no_objects",
    "ungrounded")."""
    raw, rationale = parse(output)
    if any(name not in raw for name in SLOTS):
        return None, "unparsed"
    slots = normalise_slots(raw)
    if not slots["objects"]:
        return None, "no_objects"
    if not grounded(slots["objects"], source):
        return None, "ungrounded"
    return Structured(slots, rationale), "valid"


def rule_based(source: str) -> Structured:
    """Fallback read from the source text alone: -ing words are actions, colours and counts
    attributes, the first other words objects (spatial words such as "through" skipped); no
    scene. The rationale is the text's first sentence."""
    raw: dict[str, list[str]] = {name: [] for name in SLOTS}
    for w in dict.fromkeys(content_words(source)):
        if w.endswith("ing"):
            raw["actions"].append(w)
        elif w in COLOURS or w in NUMBERS:
            raw["attributes"].append(w)
        elif w not in CAPTION_WORDS:
            raw["objects"].append(w)
    slots = normalise_slots({name: " ".join(words) for name, words in raw.items()})
    return Structured(slots, first_sentence(source))


def chat_prompt(tokenizer, text: str) -> str:
    """The whole chat (system, few-shot turns, this caption) ready for the answer."""
    messages = [{"role": "system", "content": SYSTEM}]
    for caption, answer in SHOTS:
        messages += [{"role": "user", "content": f"Caption: {caption}"},
                     {"role": "assistant", "content": answer}]
    messages.append({"role": "user", "content": f"Caption: {text}"})
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def shared_prefix(tokenizer) -> list[int]:
    """Token ids that every item's prompt starts with (system prompt and few-shot turns)."""
    a, b = (tokenizer(chat_prompt(tokenizer, t), add_special_tokens=False)["input_ids"]
            for t in ("x", "y"))
    n = next(i for i, (u, v) in enumerate(zip(a, b)) if u != v)
    return a[:n]


@lru_cache(maxsize=1)
def _smollm2():
    from semcore.models.smollm2 import load_smollm2

    return load_smollm2()


def _batch_key(texts: list[str]) -> str:
    """What fixes a batch's answers: prompt, texts, decoding length, model and decoder code."""
    from semcore.models import smollm2

    decoder = "".join(inspect.getsource(f) for f in (smollm2.prefill, smollm2.greedy_complete))
    blob = json.dumps({"system": SYSTEM, "shots": SHOTS, "texts": texts,
                       "max_new_tokens": MAX_NEW_TOKENS, "model": smollm2.NAME,
                       "decoder": decoder})
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def answers_dir() -> Path:
    """cache/ssi_answers/: SmolLM2's raw answers, one JSON file per batch."""
    return paths.cache_root() / "ssi_answers"


def write_structured(texts: list[str]) -> list[str]:
    """SmolLM2's raw answer per text: batched greedy decoding, cached per batch.

    Texts are batched in order of prompt length (less padding); each batch's answers are
    cached in answers_dir(), so an interrupted run resumes at the first missing batch
    and a rerun returns the same answers. Greedy decoding is deterministic for the same texts,
    batch size and machine (padding and thread count can change float rounding).
    """
    if not texts:
        return []
    from semcore.models.smollm2 import greedy_complete, prefill

    model, tokenizer = _smollm2()
    prefix = shared_prefix(tokenizer)
    suffixes = []
    for text in texts:
        ids = tokenizer(chat_prompt(tokenizer, text), add_special_tokens=False)["input_ids"]
        if ids[:len(prefix)] != prefix:
            raise ValueError(f"prompt of {text!r} does not start with the shared prefix")
        suffixes.append(ids[len(prefix):])
    order = sorted(range(len(texts)), key=lambda i: (len(suffixes[i]), i))
    answers = [""] * len(texts)
    prefix_cache = None
    for start in tqdm(range(0, len(order), BATCH_SIZE), desc="SSI identifiers", ascii=True,
                      mininterval=2):
        rows = order[start:start + BATCH_SIZE]
        file = answers_dir() / f"{_batch_key([texts[r] for r in rows])}.json"
        if file.is_file():
            done = read_json(file)
        else:
            if prefix_cache is None:
                prefix_cache = prefill(model, prefix)
            ids = greedy_complete(model, prefix_cache, [suffixes[r] for r in rows],
                                  tokenizer.eos_token_id, MAX_NEW_TOKENS)
            done = [tokenizer.decode(x, skip_special_tokens=True) for x in ids]
            write_json(file, done)
        for r, answer in zip(rows, done):
            answers[r] = answer
    return answers


def build_ssi(inputs: IdentifierInputs, opts: IdentifierOptions) -> IdentifierTable:
    """SSI identifier per item from its source text alone (write_structured, then check).

    Only opts.collisions applies (sid.assemble: "group" keeps shared identifiers, "suffix"
    numbers them). info holds the counts (valid, fallbacks and why), the rationales aligned with
    item_ids (training targets; the source text's first sentence where the answer had none
    or was replaced) and the raw answers.
    """
    answers = write_structured(list(inputs.texts))
    if len(answers) != len(inputs.texts):
        raise ValueError(f"writer returned {len(answers)} answers for {len(inputs.texts)} texts")
    reasons: Counter[str] = Counter()
    items: list[Structured] = []
    fallback_items: list[str] = []
    rationale_fallbacks = 0
    for item, text, answer in zip(inputs.item_ids, inputs.texts, answers):
        parsed, reason = check(answer, text)
        reasons[reason] += 1
        if parsed is None:
            parsed = rule_based(text)
            fallback_items.append(item)
        elif not parsed.rationale:
            rationale_fallbacks += 1
            parsed = Structured(parsed.slots, first_sentence(text))
        items.append(parsed)
    n = len(items)
    info = {"slots": list(SLOTS), "valid": reasons["valid"],
            "valid_rate": reasons["valid"] / n if n else 0.0,
            "fallbacks": len(fallback_items), "fallback_items": fallback_items,
            "reasons": dict(sorted(reasons.items())), "rationale_fallbacks": rationale_fallbacks,
            "rationales": [s.rationale for s in items], "answers": answers}
    identifiers = [s.identifier() for s in items]
    return assemble("ssi", inputs.item_ids, [""] * n, identifiers, opts.collisions, info)
