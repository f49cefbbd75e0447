"""Fetch, verify and unpack Flickr30K or MS-COCO with Karpathy's splits: `make data`.

Why a module and not a shell recipe: the benchmarks are tens of GB, so a download must resume
after an interruption, be verified before it is trusted, unpack without writing outside its
folder (zip-slip) and never leave half a dataset that a re-run would take for done. Each
output (the split JSON, each image folder) appears by one rename once it is complete, and a
re-run that finds every output in place downloads nothing. Checksums: where one is published
(the COCO zips' sizes and MD5s) it is checked; every archive's SHA-256 is recorded in
<root>/<dataset>/SHA256SUMS on first use, and a later use of a different file is an error.

Layout under <root>/<dataset>/: dataset_<dataset>.json (data_path), images/ (image_root;
COCO's images/train2014 and images/val2014 match the JSON's "filepath"), downloads/ (archives,
.partial while downloading) and SHA256SUMS. An image archive may nest its folder at any
depth (the Kaggle copy of Flickr30K does): the folder holding the split's first image is used.

    python -m semcore.data.download flickr30k --root data/ --from-archive images=PATH_OR_URL
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator

from tqdm import tqdm

from semcore import cache
from semcore.data.karpathy import load_karpathy
from semcore.data.schema import SPLITS, DataError

KARPATHY_URL = "https://cs.stanford.edu/people/karpathy/deepimagesent/caption_datasets.zip"
FLICKR30K_FORM = "https://shannon.cs.illinois.edu/DenotationGraph/"
LOCK = "SHA256SUMS"
BLOCK = 1 << 20

Opener = Callable[[urllib.request.Request], Any]


@dataclass(frozen=True)
class Archive:
    """One file to fetch; size and md5 only where published, never guessed."""

    key: str  # its name in --from-archive KEY=... and SEMCORE_<DATASET>_<KEY>
    filename: str  # its name under downloads/ and in SHA256SUMS
    url: str | None  # None: no public URL, the user must give one (see `how_to_get`)
    size: int | None = None
    md5: str | None = None
    filepath: str = ""  # image archives: the JSON "filepath" of their images
    how_to_get: str = ""


@dataclass(frozen=True)
class Dataset:
    name: str
    captions: Archive
    images: tuple[Archive, ...]
    karpathy_counts: tuple[int, int, int]  # train (with restval), val, test images

    def archives(self) -> tuple[Archive, ...]:
        return (self.captions, *self.images)


CAPTIONS = Archive("captions", "caption_datasets.zip", KARPATHY_URL)
DATASETS = {
    "flickr30k": Dataset("flickr30k", CAPTIONS, (Archive(
        "images", "flickr30k-images.tar.gz", None,
        how_to_get=(f"the Flickr30K images are shared only after accepting their terms of use: "
                    f"request flickr30k-images.tar.gz with the form at {FLICKR30K_FORM} (a "
                    f"Kaggle copy such as flickr-image-dataset.zip works too), then run with "
                    f"--from-archive images=PATH_OR_URL or set SEMCORE_FLICKR30K_IMAGES")),),
        (29000, 1014, 1000)),
    "coco": Dataset("coco", CAPTIONS, (
        Archive("train2014", "train2014.zip", "http://images.cocodataset.org/zips/train2014.zip",
                size=13510573713, md5="0da8c0bd3d6becc4dcb32757491aca88", filepath="train2014"),
        Archive("val2014", "val2014.zip", "http://images.cocodataset.org/zips/val2014.zip",
                size=6645013297, md5="a3d79f5ed8d289b7a7554ce06a5782b3", filepath="val2014")),
        (113287, 5000, 5000)),
}


@dataclass(frozen=True)
class Report:
    """What `prepare` found: the paths for the profile and the images per split."""

    data_path: Path
    image_root: Path
    images_per_split: dict[str, int]
    captions: int
    changed: bool  # False: everything was already in place


def _bar(total: int | None, desc: str, initial: int = 0) -> tqdm:
    return tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True,
                unit_divisor=1024, ascii=True, file=sys.stderr)


# --- download -----------------------------------------------------------------------------

def _open(request: urllib.request.Request) -> Any:
    return urllib.request.urlopen(request, timeout=60)


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total) of a 'bytes 100-199/1000' or 'bytes */1000' header."""
    if not value or not value.startswith("bytes "):
        return None, None
    span, _, total = value[len("bytes "):].partition("/")
    first = int(span.split("-")[0]) if span != "*" else None
    return first, int(total) if total.isdigit() else None


def download(url: str, dest: Path, opener: Opener = _open) -> None:
    """Stream url to dest via dest.partial, resuming a partial file with an HTTP Range request.

    A server that ignores the Range (200) or cannot resume is answered by starting over; an
    interrupted download keeps its .partial file for the next run.
    """
    partial = dest.with_name(dest.name + ".partial")
    partial.parent.mkdir(parents=True, exist_ok=True)
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = opener(request)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: complete, or not resumable
            if _content_range(exc.headers.get("Content-Range"))[1] == have:
                os.replace(partial, dest)
                return
            partial.unlink()
            return download(url, dest, opener)
        raise DataError(f"download of {dest.name} failed: HTTP {exc.code} {exc.reason} "
                        f"for {url}") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise DataError(f"download of {dest.name} failed: cannot open {url} ({exc})") from exc
    with response:
        first, total = _content_range(response.headers.get("Content-Range"))
        if response.status == 206 and first != have:
            raise DataError(f"download of {dest.name}: asked {url} for bytes from {have}, "
                            f"got a range from {first}; delete {partial} and re-run")
        if response.status != 206:
            have, total = 0, None  # the server sent the whole file (file:// has no status)
        if total is None and response.headers.get("Content-Length"):
            total = have + int(response.headers["Content-Length"])
        try:
            with partial.open("ab" if have else "wb") as out, _bar(total, dest.name, have) as bar:
                while block := response.read(BLOCK):
                    out.write(block)
                    bar.update(len(block))
        except (OSError, http.client.HTTPException) as exc:
            raise DataError(f"download of {dest.name} interrupted after {partial.stat().st_size} "
                            f"bytes ({exc}); re-run to resume from {partial}") from exc
    got = partial.stat().st_size
    if total is not None and got != total:
        raise DataError(f"download of {dest.name} stopped after {got} of {total} bytes; "
                        f"re-run to resume from {partial}")
    os.replace(partial, dest)


# --- verification ---------------------------------------------------------------------------

def _read_lock(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    return {name: digest for digest, _, name in
            (line.partition("  ") for line in path.read_text().splitlines() if line.strip())}


def verify(path: Path, archive: Archive, lock_path: Path) -> None:
    """Check path against the published size/md5 and the recorded SHA-256; record it if new."""
    size = path.stat().st_size
    if archive.size is not None and size != archive.size:
        raise DataError(f"{path}: {size} bytes, but {archive.filename} has {archive.size} "
                        f"bytes; delete it and re-run")
    sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f, _bar(size, f"verify {path.name}") as bar:
        while block := f.read(BLOCK):
            sha256.update(block)
            md5.update(block)
            bar.update(len(block))
    if archive.md5 is not None and md5.hexdigest() != archive.md5:
        raise DataError(f"{path}: MD5 {md5.hexdigest()} differs from the published "
                        f"{archive.md5} of {archive.filename}; delete it and re-run")
    lock = _read_lock(lock_path)
    recorded = lock.get(archive.filename)
    if recorded is None:
        lock[archive.filename] = sha256.hexdigest()
        cache.atomic_write_text(lock_path, "".join(f"{d}  {n}\n" for n, d in sorted(lock.items())))
    elif recorded != sha256.hexdigest():
        raise DataError(f"{path}: SHA-256 {sha256.hexdigest()} differs from {recorded}, recorded "
                        f"for {archive.filename} in {lock_path} when it was first used; delete "
                        f"the file and re-run, or remove that line if the new file is intended")


# --- unpacking -------------------------------------------------------------------------------

def _check_member(archive: Path, name: str) -> None:
    """Reject members that would land outside the target folder (zip-slip)."""
    parts = PurePosixPath(name.replace("\\", "/"))
    if parts.is_absolute() or ".." in parts.parts or (len(name) > 1 and name[1] == ":"):
        raise DataError(f"{archive}: unsafe member {name!r} (absolute path or '..'); "
                        "refusing to unpack it")


def _tar_members(archive: Path, tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    for member in tar:
        _check_member(archive, member.name)
        if not (member.isfile() or member.isdir()):
            raise DataError(f"{archive}: member {member.name!r} is a link or special file; "
                            "refusing to unpack it")
        yield member


def unpack(archive: Path, target: Path) -> None:
    """Unpack a zip or tar (any compression) into target, checking every member name first."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                members = z.infolist()
                for info in members:
                    _check_member(archive, info.filename)
                for info in tqdm(members, desc=f"unpack {archive.name}", unit="file",
                                 ascii=True, file=sys.stderr):
                    z.extract(info, target)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tar, tqdm(desc=f"unpack {archive.name}", unit="file",
                                                    ascii=True, file=sys.stderr) as bar:
                for member in _tar_members(archive, tar):
                    tar.extract(member, target, filter="data")
                    bar.update()
        else:
            raise DataError(f"{archive}: not a zip or tar archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as exc:
        raise DataError(f"{archive}: corrupt archive ({exc}); delete it and re-run") from exc


def _extract_json(archive: Path, member_name: str, dest: Path) -> None:
    """Copy the one member called member_name (at any depth) out of a zip, atomically."""
    try:
        with zipfile.ZipFile(archive) as z:
            names = [n for n in z.namelist() if PurePosixPath(n).name == member_name]
            if not names:
                raise DataError(f"{archive}: no {member_name} inside; is it Karpathy's "
                                "caption_datasets.zip?")
            _check_member(archive, names[0])
            cache.atomic_write_bytes(dest, z.read(names[0]))
    except (zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{archive}: corrupt archive ({exc}); delete it and re-run") from exc


def _folder_holding(root: Path, filename: str) -> Path | None:
    for folder, _, files in os.walk(root):
        if filename in files:
            return Path(folder)
    return None


def _first_image_per_filepath(json_path: Path) -> dict[str, str]:
    """The first image file name under each "filepath" of a Karpathy JSON."""
    try:
        images = json.loads(json_path.read_text(encoding="utf-8"))["images"]
        first: dict[str, str] = {}
        for image in images:
            first.setdefault(image.get("filepath", ""), image["filename"])
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{json_path}: not a Karpathy split file ({exc!r})") from exc
    return first


# --- the whole job ----------------------------------------------------------------------------

def _source(spec: Dataset, archive: Archive, sources: dict[str, str]) -> str:
    env = f"SEMCORE_{spec.name.upper()}_{archive.key.upper()}"
    source = sources.get(archive.key) or os.environ.get(env) or archive.url
    if source is None:
        raise DataError(f"{spec.name}: no source for {archive.filename}: {archive.how_to_get}")
    return source


def fetch(spec: Dataset, archive: Archive, source: str, folder: Path,
          opener: Opener = _open) -> Path:
    """The verified archive: a local path as given, or a URL downloaded into folder/downloads."""
    if urllib.parse.urlsplit(source).scheme in ("http", "https", "ftp", "file"):
        path = folder / "downloads" / archive.filename
        if not path.is_file():
            download(source, path, opener)
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise DataError(f"{spec.name}: archive for {archive.filename} not found: {path}")
    verify(path, archive, folder / LOCK)
    return path


def _place_images(spec: Dataset, archive: Archive, path: Path, probe: str, dest: Path,
                  folder: Path) -> None:
    """Unpack into a temporary folder, then rename the folder holding the images to dest."""
    tmp = folder / f".unpack-{archive.key}"
    if tmp.exists():
        shutil.rmtree(tmp)  # left by an interrupted run
    try:
        unpack(path, tmp)
        found = _folder_holding(tmp, probe)
        if found is None:
            raise DataError(f"{spec.name}: {path} does not contain {probe} (the first image "
                            f"of the split file); is it {archive.filename}?")
        os.replace(found, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def check(spec: Dataset, data_path: Path, image_root: Path) -> tuple[dict[str, int], int]:
    """Load the split with the project's loader: every referenced image must exist."""
    try:
        corpus = load_karpathy(data_path, image_root, spec.name)
    except DataError as exc:
        raise DataError(f"{spec.name}: {exc} (to unpack the images again, delete their folder "
                        f"under {image_root} and re-run)") from exc
    return {split: len(corpus.images_in(split)) for split in SPLITS}, len(corpus.captions)


def prepare(spec: Dataset, root: Path, sources: dict[str, str] | None = None,
            opener: Opener = _open) -> Report:
    """Bring <root>/<dataset>/ to a checked Karpathy JSON + image folder; idempotent."""
    folder = Path(root).resolve() / spec.name
    data_path, image_root = folder / f"dataset_{spec.name}.json", folder / "images"
    need_json = not data_path.is_file()
    missing = [a for a in spec.images if not (image_root / a.filepath).is_dir()]
    # every source is resolved before any download, so a missing one fails in seconds
    where = {a.key: _source(spec, a, sources or {})
             for a in ([spec.captions] if need_json else []) + missing}
    if need_json:
        path = fetch(spec, spec.captions, where[spec.captions.key], folder, opener)
        _extract_json(path, data_path.name, data_path)
    probes = _first_image_per_filepath(data_path) if missing else {}
    for archive in missing:
        if archive.filepath not in probes:
            raise DataError(f"{data_path}: no image has filepath {archive.filepath!r}; "
                            f"is it dataset_{spec.name}.json?")
        dest = image_root / archive.filepath
        dest.parent.mkdir(parents=True, exist_ok=True)
        path = fetch(spec, archive, where[archive.key], folder, opener)
        _place_images(spec, archive, path, probes[archive.filepath], dest, folder)
    counts, captions = check(spec, data_path, image_root)
    return Report(data_path, image_root, counts, captions, changed=need_json or bool(missing))


def _parse_sources(spec: Dataset, pairs: list[str]) -> dict[str, str]:
    keys = [a.key for a in spec.archives()]
    sources: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in keys or not value:
            raise DataError(f"--from-archive {pair!r}: expected KEY=PATH_OR_URL with KEY one of "
                            f"{', '.join(keys)} for {spec.name}")
        sources[key] = value
    return sources


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m semcore.data.download",
        description="Fetch, verify and unpack Flickr30K or MS-COCO with Karpathy's splits.")
    parser.add_argument("dataset", choices=sorted(DATASETS))
    parser.add_argument("--root", type=Path, default=Path("data"),
                        help="where <dataset>/ is created (default: data)")
    parser.add_argument("--from-archive", action="append", default=[], metavar="KEY=PATH_OR_URL",
                        help="use a local archive or another URL for one file (keys: "
                             + "; ".join(f"{n}: {', '.join(a.key for a in d.archives())}"
                                         for n, d in DATASETS.items()) + ")")
    args = parser.parse_args(argv)
    spec = DATASETS[args.dataset]
    try:
        report = prepare(spec, args.root, _parse_sources(spec, args.from_archive))
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not report.changed:
        print(f"{spec.name}: everything already in place under {report.data_path.parent}; "
              "nothing downloaded or unpacked")
    found = "/".join(str(report.images_per_split[s]) for s in SPLITS)
    print(f"{spec.name}: {found} train/val/test images, {report.captions} captions "
          "(Karpathy split; restval counted as train)")
    if tuple(report.images_per_split[s] for s in SPLITS) != spec.karpathy_counts:
        print(f"note: Karpathy's {spec.name} split has "
              f"{'/'.join(map(str, spec.karpathy_counts))}; is this the original split file?")
    print(f"put in the profile (params/<profile>.yaml):\n  dataset: karpathy\n"
          f"  data_path: {report.data_path}\n  image_root: {report.image_root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
