"""Content-addressed, atomic, resumable steps.

A step's result lives in cache/<step>/<key>/, where the key hashes the step's parameters,
the keys of its inputs and the package's source code. A result is complete only once its
folder has been renamed into place with a COMPLETE marker inside, so an interrupted run never
leaves anything a re-run would mistake for done. A step that checkpoints (training) keeps its
<key>.partial/ folder between attempts and resumes from it. Processes that ask for the same step
at once (`make -j`, a sweep beside a notebook) take turns on <key>.lock: the first builds it,
the others then find it complete.
"""
from __future__ import annotations

import ast
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from semcore import paths

MARKER = "COMPLETE"
WAIT_SECONDS = 2.0  # how often a non-zero rank looks for rank 0's result


PACKAGE = Path(__file__).resolve().parent
STEPS_MODULE = "semcore.pipeline"  # the cached chain: its import closure keys every step


def _module_file(module: str) -> Path | None:
    """The source file of a semcore module (a package's __init__.py), None outside semcore."""
    if module != "semcore" and not module.startswith("semcore."):
        return None
    base = PACKAGE.parent.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(module: str, source: Path) -> set[str]:
    """The semcore modules a source file imports anywhere (also inside functions), with the
    packages above them (importing semcore.a.b runs semcore/a/__init__.py)."""
    found: set[str] = set()
    package = module if source.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names = [base] + [f"{base}.{a.name}" for a in node.names]  # `from pkg import module`
        for name in names:
            parts = name.split(".")
            found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return {m for m in found if _module_file(m) is not None}


@lru_cache(maxsize=None)
def import_closure(module: str) -> tuple[str, ...]:
    """Every semcore module `module` imports, directly or not, itself included (sorted)."""
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current in seen or _module_file(current) is None:
            continue
        seen.add(current)
        todo += sorted(_imports(current, _module_file(current)) - seen)
    return tuple(sorted(seen))


@lru_cache(maxsize=None)
def code_version(module: str = STEPS_MODULE) -> str:
    """Hash of the source of `module`'s import closure inside semcore: a step's result changes
    only when code it runs changes, so editing a report or a figure label re-uses every trained
    model while editing training retrains."""
    digest = hashlib.sha256()
    for name in import_closure(module):
        digest.update(name.encode())
        digest.update(_module_file(name).read_bytes())
    return digest.hexdigest()[:16]


def key_of(**parts: Any) -> str:
    """A stable hash of JSON-able parts plus the code version of the cached chain."""
    blob = json.dumps({"code": code_version(), **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def result_dir(name: str, key: str) -> Path:
    """cache/<name>/<key>/: where a step's complete result lives."""
    return paths.cache_root() / name / key


def rank() -> int:
    """This process's rank under a multi-process launcher (deepspeed, torchrun); 0 alone."""
    return int(os.environ.get("RANK", "0"))


def _wait_for(final: Path) -> Path:
    while not (final / MARKER).is_file():
        time.sleep(WAIT_SECONDS)
    return final


@contextlib.contextmanager
def _exclusive(final: Path) -> Iterator[None]:
    """An exclusive lock on <key>.lock beside the step's folder, released on exit (or when the
    process dies, so a killed run never leaves it held)."""
    lock = final.with_name(final.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def step(name: str, key: str, build: Callable[[Path], None], *, resumable: bool = False) -> Path:
    """Return cache/<name>/<key>/, building it first with build(work_dir) if needed.

    build writes its files into work_dir. Non-resumable steps start from an empty work_dir;
    resumable ones (training) get the same <key>.partial folder back after an interruption.
    Under a multi-process launcher every rank runs a resumable step's build (the Trainer needs
    them all; it writes on rank 0 only) and rank 0 alone runs any other build and publishes the
    result; the other ranks wait for it (the cache must be on a file system all ranks share).
    """
    final = result_dir(name, key)
    if (final / MARKER).is_file():
        return final
    if rank() != 0 and not resumable:
        return _wait_for(final)
    # Under a launcher all ranks build a resumable step together: no lock between them.
    together = resumable and int(os.environ.get("WORLD_SIZE", "1")) > 1
    with contextlib.nullcontext() if together else _exclusive(final):
        if (final / MARKER).is_file():  # another process built it while this one waited
            return final
        work = final.with_name(key + ".partial")
        if work.exists() and not resumable:
            shutil.rmtree(work)
        work.mkdir(parents=True, exist_ok=True)
        build(work)
        if rank() != 0:
            return _wait_for(final)
        (work / MARKER).write_text(key)
        if final.exists():  # a stale folder without marker (older interrupted layout)
            shutil.rmtree(final)
        os.replace(work, final)
    return final


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())
