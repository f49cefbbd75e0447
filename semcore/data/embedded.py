"""The embedded default dataset: synthetic captioned scenes, rendered offline from a seed.

Why: the pipeline must run end to end with no download and no GPU, on data where retrieval
is neither trivial nor hopeless. Each image is a small RGB scene (params.image_size pixels,
drawn directly with numpy plus a little Gaussian pixel noise) of 1 or 2 objects on a
background. An object has a shape (6), a colour (7), a size (2) and a position (5); the
background is one of 4 scenes. Each image gets exactly 5 different captions built from
templates and synonyms ("ball"/"circle"/"disc", "big"/"large", "to the left of"/"beside"
...). Every caption mentions a random subset of the attributes (and, for two objects, maybe
only one of them), so a caption usually fits several images: exact retrieval is impossible
by design, but captions carry real signal, so methods land between chance and 100%.

Everything comes from numpy's default_rng([seed, image number]): the same seed gives the same
bytes (PNGs are written without metadata), and image i is the same whatever the split sizes.
Images are numbered train first, then test; the files follow the captions_jsonl format of
the real Flickr8k folder, so one loader (captions_jsonl) reads both.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image as PILImage

from semcore import cache

if TYPE_CHECKING:
    from semcore.config import Params

# attribute value -> the words captions may use for it
SHAPES: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "ball", "disc", "dot"),
    "square": ("square", "box", "block"),
    "triangle": ("triangle", "wedge", "pyramid"),
    "cross": ("cross", "plus", "plus sign"),
    "ring": ("ring", "hoop", "donut"),
    "bar": ("bar", "stick", "stripe"),
}
GENERIC_NOUNS = ("shape", "object", "thing")  # used when a caption leaves the shape out
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35), "orange": (245, 140, 20), "yellow": (245, 225, 40),
    "blue": (35, 75, 215), "purple": (135, 45, 175), "white": (245, 245, 245),
    "pink": (250, 120, 190),
}
COLOUR_WORDS: dict[str, tuple[str, ...]] = {c: (c,) for c in COLOURS} | {"purple": ("purple", "violet")}
SIZES: dict[str, tuple[str, ...]] = {"small": ("small", "little", "tiny"),
                                     "large": ("large", "big", "huge")}
RADIUS = {"small": 0.13, "large": 0.21}  # fraction of the image side
POSITIONS: dict[str, tuple[str, ...]] = {
    "left": ("on the left", "at the left", "to the left"),
    "right": ("on the right", "at the right", "to the right"),
    "top": ("at the top", "near the top", "up high"),
    "bottom": ("at the bottom", "near the bottom", "down low"),
    "centre": ("in the centre", "in the middle", "in the center"),
}
CENTRES = {"left": (0.27, 0.5), "right": (0.73, 0.5), "top": (0.5, 0.27),
           "bottom": (0.5, 0.73), "centre": (0.5, 0.5)}  # (x, y) fractions
SCENES: dict[str, tuple[str, ...]] = {
    "grass": ("on the grass", "on a lawn", "in a field"),
    "sky": ("in the sky", "against the sky", "in the blue sky"),
    "sand": ("on the sand", "on a beach", "in the desert"),
    "night": ("at night", "in the dark", "under a night sky"),
}
BACKGROUNDS = {"grass": (70, 135, 55), "sky": (135, 190, 240), "sand": (215, 190, 140),
               "night": (20, 25, 55)}
RELATIONS = {"left": ("to the left of", "on the left of", "left of"),
             "right": ("to the right of", "on the right of", "right of"),
             "above": ("above", "over"), "below": ("below", "under", "beneath"),
             "near": ("beside", "next to", "near")}
OPENERS = ("", "", "there is ", "a picture of ", "an image of ", "this shows ")

# how often a caption mentions each attribute: low enough that captions are ambiguous
P_SHAPE, P_COLOUR, P_SIZE, P_POSITION, P_SCENE, P_SECOND = 0.85, 0.85, 0.5, 0.5, 0.6, 0.6
NOISE_STD = 6.0
CAPTIONS_PER_IMAGE = 5


@dataclass(frozen=True)
class Thing:
    shape: str
    colour: str
    size: str
    position: str
    jitter: tuple[float, float]  # centre offset, fraction of the image side


@dataclass(frozen=True)
class Scene:
    background: str
    things: tuple[Thing, ...]


def describe_embedded() -> dict[str, dict[str, tuple[str, ...]]]:
    """Attribute → value → caption words, for notebook 00 to print."""
    return {"shape": SHAPES, "colour": COLOUR_WORDS, "size": SIZES, "position": POSITIONS,
            "scene": SCENES, "relation": RELATIONS}


def render_embedded(params: Params) -> Path:
    """The cache folder holding images/<id>.png and captions.jsonl for these params."""
    train, test = params.embedded_train_images, params.embedded_test_images
    size, seed = params.image_size, params.seed

    def build(work: Path) -> None:
        (work / "images").mkdir()
        lines = []
        for number in range(train + test):
            split = "train" if number < train else "test"
            name = f"scene{number:05d}.png"
            image, captions = generate(seed, number, size)
            PILImage.fromarray(image, "RGB").save(work / "images" / name, format="PNG",
                                                   compress_level=6)
            lines += [json.dumps({"image": name, "caption": text, "split": split,
                                  "caption_index": index}) + "\n"
                      for index, text in enumerate(captions)]
        (work / "captions.jsonl").write_text("".join(lines), encoding="ascii")

    key = cache.key_of(train=train, test=test, size=size, seed=seed)
    return cache.step("embedded", key, build)


def generate(seed: int, number: int, size: int) -> tuple[np.ndarray, list[str]]:
    """Image number `number` of the dataset for `seed`: pixels and its 5 distinct captions."""
    rng = np.random.default_rng([seed, number])
    scene = _sample_scene(rng)
    image = _render(scene, size, rng)
    captions: list[str] = []
    for _ in range(1000):  # duplicates are rare; the bound only guards against a bad vocabulary
        text = _caption(scene, rng)
        if text not in captions:
            captions.append(text)
        if len(captions) == CAPTIONS_PER_IMAGE:
            return image, captions
    raise RuntimeError(f"embedded image {number}: could not draw {CAPTIONS_PER_IMAGE} distinct captions")


def _choice(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _sample_scene(rng: np.random.Generator) -> Scene:
    count = 1 + int(rng.integers(2))
    positions = rng.choice(list(CENTRES), size=count, replace=False)
    colours = rng.choice(list(COLOURS), size=count, replace=False)
    things = tuple(Thing(_choice(rng, list(SHAPES)), str(colours[i]), _choice(rng, list(SIZES)),
                         str(positions[i]), tuple(rng.uniform(-0.04, 0.04, 2).tolist()))
                   for i in range(count))
    return Scene(_choice(rng, list(SCENES)), things)


def _mask(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Pixels covered by a shape of radius r, given offsets from its centre."""
    ax, ay = np.abs(dx), np.abs(dy)
    if shape == "circle":
        return dx ** 2 + dy ** 2 <= r ** 2
    if shape == "ring":
        return (dx ** 2 + dy ** 2 <= r ** 2) & (dx ** 2 + dy ** 2 >= (0.55 * r) ** 2)
    if shape == "square":
        return np.maximum(ax, ay) <= 0.85 * r
    if shape == "triangle":  # apex up, base 0.8r below the centre
        return (dy >= -r) & (dy <= 0.8 * r) & (ax <= (dy + r) / 1.8)
    if shape == "cross":
        return ((ax <= 0.3 * r) & (ay <= r)) | ((ay <= 0.3 * r) & (ax <= r))
    if shape == "bar":
        return (ax <= r) & (ay <= 0.35 * r)
    raise ValueError(f"unknown shape {shape!r}")


def _render(scene: Scene, size: int, rng: np.random.Generator) -> np.ndarray:
    grid = np.arange(size) + 0.5
    xs, ys = np.meshgrid(grid, grid)
    pixels = np.empty((size, size, 3))
    pixels[:] = BACKGROUNDS[scene.background]
    # large objects first so a small one is never hidden behind a large one
    for thing in sorted(scene.things, key=lambda t: RADIUS[t.size], reverse=True):
        fx, fy = CENTRES[thing.position]
        cx, cy = (fx + thing.jitter[0]) * size, (fy + thing.jitter[1]) * size
        pixels[_mask(thing.shape, xs - cx, ys - cy, RADIUS[thing.size] * size)] = COLOURS[thing.colour]
    pixels += rng.normal(0.0, NOISE_STD, pixels.shape)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def _with_article(words: list[str]) -> str:
    return ("an " if words[0][0] in "aeiou" else "a ") + " ".join(words)


def _noun_phrase(thing: Thing, rng: np.random.Generator, allow_position: bool) -> str:
    """A random subset of the thing's attributes; always its shape or its colour."""
    words = [_choice(rng, SIZES[thing.size])] if rng.random() < P_SIZE else []
    with_colour = rng.random() < P_COLOUR
    if with_colour:
        words.append(_choice(rng, COLOUR_WORDS[thing.colour]))
    with_shape = rng.random() < P_SHAPE or not with_colour
    words.append(_choice(rng, SHAPES[thing.shape] if with_shape else GENERIC_NOUNS))
    phrase = _with_article(words)
    if allow_position and rng.random() < P_POSITION:
        phrase += " " + _choice(rng, POSITIONS[thing.position])
    return phrase


def _relation(a: Thing, b: Thing, rng: np.random.Generator) -> str:
    """A true spatial relation of a to b, from their nominal positions."""
    (ax, ay), (bx, by) = CENTRES[a.position], CENTRES[b.position]
    kinds = ["near"]
    if ax != bx:
        kinds.append("left" if ax < bx else "right")
    if ay != by:
        kinds.append("above" if ay < by else "below")
    return _choice(rng, RELATIONS[_choice(rng, kinds)])


def _caption(scene: Scene, rng: np.random.Generator) -> str:
    things = [scene.things[i] for i in rng.permutation(len(scene.things))]
    if len(things) == 2 and rng.random() < P_SECOND:
        if rng.random() < 0.5:
            body = (f"{_noun_phrase(things[0], rng, False)} {_relation(things[0], things[1], rng)} "
                    f"{_noun_phrase(things[1], rng, False)}")
        else:
            body = f"{_noun_phrase(things[0], rng, True)} and {_noun_phrase(things[1], rng, True)}"
    else:
        body = _noun_phrase(things[0], rng, True)
    if rng.random() < P_SCENE:
        body += " " + _choice(rng, SCENES[scene.background])
    return _choice(rng, OPENERS) + body
