"""Steps are content-addressed, atomic, and resumable."""
import os
import time

import pytest

from semcore import cache


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMCORE_CACHE", str(tmp_path))


def test_key_depends_on_parts_and_is_stable():
    assert cache.key_of(a=1, b=[1, 2]) == cache.key_of(b=[1, 2], a=1)
    assert cache.key_of(a=1) != cache.key_of(a=2)


def test_step_builds_once():
    calls = []

    def build(work):
        calls.append(1)
        (work / "x.txt").write_text("done")

    first = cache.step("demo", "k1", build)
    second = cache.step("demo", "k1", build)
    assert first == second and (first / "x.txt").read_text() == "done" and calls == [1]


def test_interrupted_step_is_not_mistaken_for_complete():
    def crash(work):
        (work / "half.txt").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.step("demo", "k2", crash)

    def build(work):
        assert not (work / "half.txt").exists()  # non-resumable steps start clean
        (work / "x.txt").write_text("full")

    out = cache.step("demo", "k2", build)
    assert (out / "x.txt").read_text() == "full" and not (out / "half.txt").exists()


def test_resumable_step_gets_its_partial_work_back():
    def crash(work):
        (work / "checkpoint").write_text("epoch 1")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.step("train", "k3", crash, resumable=True)
    seen = []

    def resume(work):
        seen.append((work / "checkpoint").read_text())

    cache.step("train", "k3", resume, resumable=True)
    assert seen == ["epoch 1"]


def test_atomic_write_leaves_no_temporary(tmp_path):
    target = tmp_path / "out" / "a.json"
    cache.write_json(target, {"x": 1})
    assert cache.read_json(target) == {"x": 1}
    assert [p.name for p in target.parent.iterdir()] == ["a.json"]


def test_other_ranks_wait_for_rank_zero(tmp_path):
    """Under a launcher, rank 1 never builds a non-training step: it waits for rank 0's result."""
    import subprocess
    import sys

    env = {**os.environ, "SEMCORE_CACHE": str(tmp_path), "RANK": "1"}
    code = ("from semcore import cache\n"
            "def build(work): raise SystemExit('rank 1 must not build')\n"
            "print(cache.step('s', 'k', build).name)")
    waiting = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)  # rank 1 is waiting by now
    assert waiting.poll() is None
    cache.step("s", "k", lambda work: (work / "x").write_text("1"))
    out, _ = waiting.communicate(timeout=60)
    assert waiting.returncode == 0 and out.strip() == "k"


def test_concurrent_processes_build_a_step_once(tmp_path):
    """Two processes asking for the same step at once: one builds it, the other waits for it and
    reads that result (make -j, a sweep beside a notebook)."""
    import subprocess
    import sys

    env = {**os.environ, "SEMCORE_CACHE": str(tmp_path / "cache")}
    code = ("import time\nfrom pathlib import Path\nfrom semcore import cache\n"
            "def build(work):\n"
            f"    with open({str(tmp_path / 'builds')!r}, 'a') as f: f.write('x')\n"
            "    time.sleep(1.5)\n"
            "    (work / 'x').write_text('built')\n"
            "print((cache.step('s', 'k', build) / 'x').read_text())")
    runs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                             text=True) for _ in range(2)]
    outs = [r.communicate(timeout=60)[0].strip() for r in runs]
    assert [r.returncode for r in runs] == [0, 0] and outs == ["built", "built"]
    assert (tmp_path / "builds").read_text() == "x"


@pytest.fixture()
def package_copy(tmp_path, monkeypatch):
    """A copy of the semcore sources that code_version reads instead of the real package."""
    import shutil
    copy = tmp_path / "src" / "semcore"
    shutil.copytree(cache.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "PACKAGE", copy)
    cache.code_version.cache_clear()
    cache.import_closure.cache_clear()
    yield copy
    cache.code_version.cache_clear()
    cache.import_closure.cache_clear()


def _edited(package, relative: str) -> str:
    """The chain's code version after appending a comment to one module."""
    before = cache.code_version()
    with open(package / relative, "a") as handle:
        handle.write("\n# an edit\n")
    cache.code_version.cache_clear()
    cache.import_closure.cache_clear()
    return before, cache.code_version()


def test_editing_a_report_or_figure_keeps_every_step_key(package_copy):
    for module in ("report.py", "results.py", "paper.py", "sweep.py"):
        before, after = _edited(package_copy, module)
        assert before == after, module


def test_editing_code_a_step_runs_changes_its_key(package_copy):
    for module in ("train.py", "pipeline.py", "models/tiny.py", "identifiers/sid.py"):
        before, after = _edited(package_copy, module)
        assert before != after, module


def test_import_closure_follows_function_level_and_relative_imports():
    closure = cache.import_closure("semcore.pipeline")
    assert {"semcore.image_encoder", "semcore.models.smol", "semcore.train"} <= set(closure)
    assert "semcore.report" not in closure


def test_an_image_rewritten_with_the_same_size_changes_the_trained_models_key(tmp_path):
    """Image files are identified by content, not by size: new pixels train a new model."""
    import json

    import numpy as np
    from PIL import Image

    from semcore import config, methods, pipeline

    folder = tmp_path / "set"
    (folder / "images").mkdir(parents=True)
    rows = []
    for i, split in enumerate(["train", "test"]):
        Image.new("RGB", (8, 8), (10 * i, 0, 0)).save(folder / "images" / f"{i}.bmp")
        rows += [json.dumps({"image": f"{i}.bmp", "caption": f"a red square number {i} {j}",
                             "split": split, "caption_index": j}) for j in range(5)]
    (folder / "captions.jsonl").write_text("\n".join(rows) + "\n")
    p = config.Params(dataset="captions_jsonl", data_path=str(folder))
    semcore = methods.get("semcore")
    before = pipeline.train_key(p, "t2i", semcore)

    path = folder / "images" / "1.bmp"
    size = path.stat().st_size
    Image.fromarray(np.full((8, 8, 3), 200, dtype=np.uint8)).save(path)
    assert path.stat().st_size == size  # the same size, other pixels
    pipeline._corpus.cache_clear()
    assert pipeline.train_key(p, "t2i", semcore) != before
