"""Bad inputs fail early and clearly: each case's error names the file, key or value at fault
(and says what would be valid), and the failed call leaves no file behind.

Every case builds its inputs under tmp_path and runs no training, so the matrix stays fast.
"""
from __future__ import annotations

import json
import subprocess
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from semcore import config, methods, notebook, pipeline, sweep
from semcore.data import load_corpus
from semcore.data.captions_jsonl import load_captions_jsonl
from semcore.data.karpathy import load_karpathy
from semcore.data.schema import CaptionRecord, Corpus, DataError, ImageRecord, load_rgb
from semcore.errors import ParamError
from semcore.identifiers.base import IdentifierOptions
from semcore.identifiers.sid import cluster_count

REPO = Path(__file__).parents[1]
TINY = REPO / "params" / "tiny.yaml"


@dataclass(frozen=True)
class Case:
    name: str
    run: Callable[[Path], object]  # builds its inputs under the folder, then makes the bad call
    error: type[Exception]
    says: tuple[str, ...]  # what the message must contain (file, key, value, what is valid)


# --- fixtures the cases build ------------------------------------------------------------

def profile(folder: Path, text: str) -> Path:
    path = folder / "bad.yaml"
    path.write_text(text)
    return path


def tiny(**overrides) -> Callable[[Path], object]:
    return lambda folder: config.load(TINY, **overrides)


def yaml_profile(text: str) -> Callable[[Path], object]:
    return lambda folder: config.load(profile(folder, text))


def png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), 120, dtype=np.uint8)).save(path)


GOOD_LINES = [{"image": "a.png", "caption": "a dog runs", "split": "train", "caption_index": 0},
              {"image": "b.png", "caption": "a cat sleeps", "split": "test", "caption_index": 0}]


def jsonl_folder(folder: Path, lines: list, images=("a.png", "b.png")) -> Path:
    data = folder / "data"
    for name in images:
        png(data / "images" / name)
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    (data / "captions.jsonl").write_text(text + "\n", encoding="utf-8")
    return data


def jsonl(lines: list, images=("a.png", "b.png")) -> Callable[[Path], object]:
    return lambda folder: load_captions_jsonl(jsonl_folder(folder, lines, images), "bad")


def jsonl_corpus(lines: list) -> Callable[[Path], object]:
    """Through load_corpus, as a profile with dataset: captions_jsonl reads it."""
    def run(folder: Path):
        data = jsonl_folder(folder, lines)
        return load_corpus(config.Params(dataset="captions_jsonl", data_path=str(data)))
    return run


def karpathy(images: list, image_files=("a.jpg", "b.jpg"), raw_text: str | None = None):
    def run(folder: Path):
        root = folder / "images"
        for name in image_files:
            png(root / name)
        path = folder / "dataset_flickr30k.json"
        path.write_text(raw_text if raw_text is not None else json.dumps({"images": images}))
        return load_karpathy(path, root, "flickr30k")
    return run


def sentence(text: str = "A dog runs.") -> dict:
    return {"raw": text, "tokens": text.lower().split()}


def kimage(name: str = "a.jpg", split: str = "train", sentences=None) -> dict:
    return {"filename": name, "split": split,
            "sentences": [sentence()] if sentences is None else sentences}


def image_file(content: Callable[[Path], None]) -> Callable[[Path], object]:
    def run(folder: Path):
        path = folder / "broken.png"
        content(path)
        return load_rgb(path, 8)
    return run


def truncated_png(path: Path) -> None:
    png(path)
    path.write_bytes(path.read_bytes()[:40])


def make(*args: str) -> Callable[[Path], object]:
    """A make invocation that must fail at parse time; its stderr becomes the error."""
    def run(folder: Path):
        done = subprocess.run(["make", "-n", "--no-print-directory", "clean", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=60)
        if done.returncode:
            raise RuntimeError(done.stderr)
    return run


def make_with_profile_jobs(folder: Path):
    path = profile(folder, "jobs: 0\n")
    return make(f"PARAMS={path}")(folder)


def sweep_spec(text: str) -> Callable[[Path], object]:
    def run(folder: Path):
        (folder / "bad.yaml").write_text(text)  # the fixture below points SWEEPS here
        return sweep.load("bad")
    return run


def search(text: str) -> Callable[[Path], object]:
    """pipeline.search on a tiny untrained backbone (1,024 positions) and a one-row table."""
    def run(folder: Path):
        from semcore import prompts
        from semcore.models.tiny import build_tiny, train_tokenizer
        from semcore.retrieval import IdentifierTrie
        tok = train_tokenizer(["a red ball", "red ball"] + prompts.TEMPLATE_WORDS, 300)
        bb = build_tiny(tok, 32, 32, 1, seed=0)
        patch = pytest.MonkeyPatch()
        patch.setattr(pipeline, "task", lambda p, d: None)
        table = types.SimpleNamespace(identifiers=["red ball"])
        patch.setattr(pipeline, "identifiers", lambda p, d, m: table)
        patch.setattr(pipeline, "identifier_trie", lambda p, d, m: IdentifierTrie.build(tok, table))
        patch.setattr(pipeline, "trained", lambda p, d, m: bb)
        try:
            return pipeline.search(config.Params(), text, methods.get("wo_gsv"))
        finally:
            patch.undo()
    return run


def internvl_from_env(value: str) -> Callable[[Path], object]:
    def run(folder: Path):
        patch = pytest.MonkeyPatch()
        patch.setenv("SEMCORE_INTERNVL", value)
        try:
            return config.load(REPO / "params" / "flickr30k.yaml")
        finally:
            patch.undo()
    return run


def corpus_with_duplicate_image(folder: Path):
    png(folder / "a.png")
    images = (ImageRecord("a.png", "train", folder / "a.png"),) * 2
    return Corpus("dupes", images, ())


CASES = [
    # --- parameter files -------------------------------------------------------------------
    Case("yaml syntax error", yaml_profile("seed: 0\nbeam_size: [4, 8\n"), ParamError,
         ("bad.yaml", "line 3", "YAML syntax error")),
    Case("duplicate key", yaml_profile("seed: 0\nbeam_size: 8\nbeam_size: 9\n"), ParamError,
         ("bad.yaml", "line 3", "'beam_size' is given twice", "line 2")),
    Case("file is a list", yaml_profile("- beam_size\n- 8\n"), ParamError,
         ("bad.yaml", "flat mapping")),
    Case("nested mapping", yaml_profile("beam_size: {a: 1}\n"), ParamError,
         ("bad.yaml", "flat mapping")),
    Case("learning_rate 1e-3 read as text", yaml_profile("learning_rate: 1e-3\n"), ParamError,
         ("'learning_rate'", "'1e-3'", "string", "1.0e-3")),
    Case("mistyped key", yaml_profile("beam_sze: 8\n"), ParamError,
         ("'beam_sze'", "Did you mean 'beam_size'")),
    Case("text for an int", yaml_profile("epochs: two\n"), ParamError, ("'epochs'", "'two'", "int")),
    Case("bool for an int", yaml_profile("epochs: true\n"), ParamError, ("'epochs'", "True")),
    Case("value outside its set", yaml_profile("dataset: flickr\n"), ParamError,
         ("'dataset'", "'flickr'", "captions_jsonl")),
    Case("missing profile file", lambda folder: config.load(folder / "nope.yaml"), ParamError,
         ("nope.yaml", "not found", "tiny")),
    Case("jobs 0", yaml_profile("jobs: 0\n"), ParamError, ("'jobs'", "> 0")),
    # --- values that contradict each other or fail late ------------------------------------
    Case("beam_size 1", tiny(beam_size=1), ParamError, ("'beam_size'", "at least 2", "1")),
    Case("gsv_k above beam_size", tiny(gsv_k=12), ParamError,
         ("'gsv_k' = 12", "'beam_size' = 8", "gsv_k <= 8")),
    Case("gsv_k above 26", tiny(gsv_k=27, beam_size=30), ParamError, ("'gsv_k'", "26")),
    Case("gsv_k_sweep above beam_size", tiny(gsv_k_sweep=[2, 9]), ParamError,
         ("'gsv_k_sweep'", "[9]", "smallest beam (4", "<= 4")),
    Case("beam_sweep below gsv_k", tiny(beam_sweep=[2, 8]), ParamError,
         ("'beam_sweep'", "[2]", "'gsv_k' = 4")),
    Case("beam_sweep empty", tiny(beam_sweep=[]), ParamError, ("'beam_sweep'",)),
    Case("table1_methods empty", tiny(table1_methods=[]), ParamError,
         ("'table1_methods'", "empty", "[semcore]")),
    Case("table2_methods empty", tiny(table2_methods=[]), ParamError, ("'table2_methods'", "empty")),
    Case("table3_ablations empty", tiny(table3_ablations=[]), ParamError,
         ("'table3_ablations'", "empty")),
    Case("unknown method", tiny(table1_methods=["semcor"]), ParamError,
         ("'table1_methods'", "'semcor'", "semcore")),
    Case("unknown direction", tiny(directions=["t2x"]), ParamError, ("'directions'", "t2x", "i2t")),
    Case("no direction", tiny(directions=[]), ParamError, ("'directions'", "non-empty")),
    Case("ablation outside directions", tiny(directions=["t2i"], ablation_directions=["i2t"]),
         ParamError, ("'ablation_directions'", "i2t")),
    Case("epochs 0", tiny(epochs=0), ParamError, ("'epochs'", "> 0")),
    Case("negative seed", tiny(seed=-1), ParamError, ("'seed'", ">= 0")),
    Case("learning_rate 0", tiny(learning_rate=0.0), ParamError, ("'learning_rate'", "> 0")),
    Case("lora_dropout 1", tiny(lora_dropout=1.0), ParamError, ("'lora_dropout'", "[0, 1)")),
    Case("gsv_variants names no variant", tiny(gsv_variants=["likelihood", "pointwise+source"]),
         ParamError, ("'gsv_variants'", "'pointwise+source'", "'pointwise + source text'")),
    Case("gsv_variants empty", tiny(gsv_variants=[]), ParamError, ("'gsv_variants'", "non-empty")),
    Case("text_features on a pixel backbone", tiny(text_features="minilm"), ParamError,
         ("'text_features'", "'minilm'", "'scratch' or 'smol'", "'tiny'")),
    Case("image_size not a multiple of 8", tiny(image_size=30), ParamError,
         ("'image_size'", "multiple of 8", "30")),
    Case("heldout caption 5", tiny(heldout_caption_index=5), ParamError,
         ("'heldout_caption_index'", "0..4")),
    Case("unknown sweep file", tiny(fig3_sweep="nope"), ParamError, ("'fig3_sweep'", "'nope'")),
    Case("unknown seed sweep file", tiny(seed_sweep="nope"), ParamError, ("'seed_sweep'", "'nope'")),
    Case("negative training seed", tiny(train_seed=-1), ParamError, ("'train_seed'", ">= 0")),
    Case("internvl without a path", tiny(backbone="internvl2_5-1b"), ParamError,
         ("'backbone_path'", "internvl2_5-1b")),
    Case("SEMCORE_INTERNVL at a missing folder", internvl_from_env("/missing/internvl"),
         ParamError, ("'backbone_path'", "'/missing/internvl'", "SEMCORE_INTERNVL")),
    Case("unset variable in a path", tiny(backbone="internvl2_5-1b",
                                          backbone_path="$SEMCORE_NO_SUCH_VARIABLE"),
         ParamError, ("'backbone_path'", "unset variable")),
    Case("cluster_size above the items", lambda folder: cluster_count(
        52, IdentifierOptions(cluster_size=1000)), ParamError,
         ("'cluster_size' = 1000", "1..52", "52 items")),
    Case("items per cluster above the items", lambda folder: cluster_count(
        52, IdentifierOptions(cluster_size=60, cluster_size_meaning="items_per_cluster")),
         ParamError, ("'cluster_size' = 60", "items per cluster", "1..52")),
    # --- notebook parameters and make ------------------------------------------------------
    Case("overrides as a string", lambda folder: notebook.setup(
        {"profile": "tiny", "overrides": "beam_size: 3"}), ParamError,
         ("'overrides' must be a mapping", "beam_size: 3")),
    Case("unknown notebook parameter", lambda folder: notebook.setup(
        {"profile": "tiny", "beem_size": 3}), ParamError, ("beem_size", "beam_size")),
    Case("unknown profile in a notebook", lambda folder: notebook.setup({"profile": "nope"}),
         ParamError, ("nope.yaml", "not found", "tiny")),
    Case("JOBS=0", make("JOBS=0"), RuntimeError, ("JOBS", "1 or more", "got '0'")),
    Case("JOBS=two", make("JOBS=two"), RuntimeError, ("JOBS", "got 'two'")),
    Case("jobs: 0 in the profile, read by make", make_with_profile_jobs, RuntimeError,
         ("jobs: in", "bad.yaml", "got '0'")),
    # --- sweep specs -----------------------------------------------------------------------
    Case("sweep point with a bad value", sweep_spec(
        "title: t\nmethod: wo_gsv\nx: beam_size\nfixed: {}\ngrid: {beam_size: [1, 8]}\n"),
         ParamError, ("'beam_size'", "at least 2")),
    Case("sweep with a duplicate key", sweep_spec(
        "title: t\nmethod: wo_gsv\nmethod: semcore\nx: beam_size\nfixed: {}\ngrid: {beam_size: [8]}\n"),
         ParamError, ("bad.yaml", "line 3", "'method' is given twice")),
    Case("sweep grid not lists", sweep_spec(
        "title: t\nmethod: wo_gsv\nx: beam_size\nfixed: {}\ngrid: {beam_size: 8}\n"),
         ParamError, ("bad.yaml", "'grid' must map each parameter to a list")),
    # --- captions.jsonl --------------------------------------------------------------------
    Case("malformed JSON line", jsonl([GOOD_LINES[0], '{"image": "b.png", "caption": '],
                                       ), DataError, ("captions.jsonl, line 2", "invalid JSON")),
    Case("blank line", jsonl([GOOD_LINES[0], "", GOOD_LINES[1]]), DataError,
         ("captions.jsonl, line 2", "invalid JSON")),
    Case("line missing a key", jsonl([{"image": "a.png", "caption": "x", "split": "train"}]),
         DataError, ("line 1", "caption_index")),
    Case("empty caption", jsonl([GOOD_LINES[0] | {"caption": "  "}]), DataError,
         ("line 1", "empty caption", "'a.png'")),
    Case("caption not text", jsonl([GOOD_LINES[0] | {"caption": 7}]), DataError,
         ("line 1", "empty caption")),
    Case("duplicate caption id", jsonl([GOOD_LINES[0], GOOD_LINES[0]]), DataError,
         ("line 2", "duplicate caption a.png#0")),
    Case("missing image file", jsonl([GOOD_LINES[0] | {"image": "zzz.png"}]), DataError,
         ("line 1", "image file not found", "zzz.png")),
    Case("unknown split", jsonl([GOOD_LINES[0] | {"split": "dev"}]), DataError,
         ("line 1", "unknown split 'dev'", "train, val, test")),
    Case("image in two splits", jsonl([GOOD_LINES[0], GOOD_LINES[0] | {"split": "test",
                                                                        "caption_index": 1}]),
         DataError, ("line 2", "'a.png'", "'test'", "'train'")),
    Case("negative caption index", jsonl([GOOD_LINES[0] | {"caption_index": -1}]), DataError,
         ("line 1", "'caption_index'", "-1")),
    Case("empty image name", jsonl([GOOD_LINES[0] | {"image": ""}]), DataError,
         ("line 1", "'image'")),
    Case("no test images", jsonl_corpus([GOOD_LINES[0]]), DataError,
         ("data", "no test images", "retrieval corpus")),
    Case("no train images", jsonl_corpus([GOOD_LINES[1]]), DataError, ("data", "no train images")),
    Case("dataset folder missing", lambda folder: load_captions_jsonl(folder / "nope", "x"),
         DataError, ("dataset folder not found", "nope")),
    Case("captions.jsonl missing", lambda folder: load_captions_jsonl(folder, "x"), DataError,
         ("captions file not found", "captions.jsonl")),
    Case("data_path unset", lambda folder: load_corpus(config.Params(dataset="captions_jsonl")),
         ParamError, ("'data_path'", "empty")),
    Case("duplicate image id", corpus_with_duplicate_image, DataError,
         ("duplicate image id 'a.png'",)),
    Case("orphan caption", lambda folder: Corpus("c", (), (CaptionRecord("x#0", "x", 0, "a", "train"),)),
         DataError, ("'x#0'", "unknown image 'x'")),
    # --- Karpathy JSON ---------------------------------------------------------------------
    Case("Karpathy sentence without raw", karpathy([kimage(sentences=[{"tokens": ["a", "dog"]}])]),
         DataError, ("images[0], sentences[0]", "'raw'", "tokens")),
    Case("Karpathy sentence not an object", karpathy([kimage(sentences=["A dog."])]), DataError,
         ("images[0], sentences[0]", "'raw'")),
    Case("Karpathy empty raw", karpathy([kimage(sentences=[sentence(" ")])]), DataError,
         ("images[0], sentences[0]", "empty caption")),
    Case("Karpathy duplicate image", karpathy([kimage(), kimage()]), DataError,
         ("images[1]", "duplicate image 'a.jpg'")),
    Case("Karpathy image without sentences", karpathy([kimage(sentences=[])]), DataError,
         ("images[0]", "no sentences")),
    Case("Karpathy unknown split", karpathy([kimage(split="dev")]), DataError,
         ("images[0]", "unknown split 'dev'", "restval")),
    Case("Karpathy invalid JSON", karpathy([], raw_text='{"images": ['), DataError,
         ("dataset_flickr30k.json", "invalid JSON")),
    Case("Karpathy without images list", karpathy([], raw_text='{"imgs": []}'), DataError,
         ("dataset_flickr30k.json", "'images' list")),
    Case("Karpathy image file missing", karpathy([kimage("zzz.jpg")]), DataError,
         ("images[0]", "image file not found", "zzz.jpg")),
    Case("Karpathy file missing", lambda folder: load_karpathy(folder / "x.json", folder, "k"),
         DataError, ("split file not found", "x.json")),
    Case("Karpathy image folder missing", lambda folder: load_karpathy(
        profile(folder, "{}"), folder / "nope", "k"), DataError, ("image folder not found", "nope")),
    # --- images and queries ----------------------------------------------------------------
    Case("truncated image", image_file(truncated_png), DataError, ("cannot read image", "broken.png")),
    Case("zero-byte image", image_file(lambda path: path.write_bytes(b"")), DataError,
         ("cannot read image", "broken.png")),
    Case("text file as image", image_file(lambda path: path.write_text("not an image")), DataError,
         ("cannot read image", "broken.png")),
    Case("empty search query", search("   "), ValueError, ("search query is empty",)),
    Case("search query over the model's positions", search("red ball " * 700), ValueError,
         ("search query is too long", "1024 positions", "shorten it by")),
]


@pytest.fixture(autouse=True)
def private_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SEMCORE_OUTPUTS", str(tmp_path / "outputs"))
    monkeypatch.setattr(sweep, "SWEEPS", tmp_path / "case")


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_the_matrix_has_forty_cases_or_more():
    assert len(CASES) >= 40 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_bad_input_fails_naming_the_problem_and_leaves_nothing(case: Case, tmp_path: Path):
    folder = tmp_path / "case"
    folder.mkdir()
    with pytest.raises(case.error) as caught:
        case.run(folder)
    message = str(caught.value)
    missing = [s for s in case.says if s not in message]
    assert not missing, f"{case.name}: message {message!r} does not say {missing}"
    inputs = _files(folder)  # what the case itself wrote; the failed call may add nothing
    assert not any(".tmp" in f or "partial" in f for f in inputs), inputs
    assert _files(tmp_path) - {f"case/{f}" for f in inputs} == set()


def test_non_ascii_captions_load_unchanged(tmp_path: Path):
    text = "Ein Hund läuft über die Wiese — 犬が走る"
    data = jsonl_folder(tmp_path, [GOOD_LINES[0] | {"caption": text}, GOOD_LINES[1]])
    corpus = load_captions_jsonl(data, "unicode")
    assert corpus.captions_of("a.png")[0].text == text


def test_learning_rate_in_exponent_form_with_a_dot_is_a_number(tmp_path: Path):
    assert config.load(profile(tmp_path, "learning_rate: 1.0e-3\n")).learning_rate == 1e-3


def test_profiles_and_sweeps_of_the_repository_are_valid(monkeypatch: pytest.MonkeyPatch):
    """The cross-field rules hold for every shipped profile and sweep."""
    for path in sorted((REPO / "params").glob("*.yaml")):
        config.load(path)
    monkeypatch.setattr(sweep, "SWEEPS", REPO / "params" / "sweeps")
    for path in sorted(sweep.SWEEPS.glob("*.yaml")):
        sweep.load(path.stem)
