"""`make data`: archives are verified, unpacked safely and atomically, and re-runs do nothing.

Everything runs on tiny local archives (fake Karpathy JSON + a few JPEGs) and fake or file://
URLs: no network.
"""
from __future__ import annotations

import dataclasses
import email.message
import io
import json
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from semcore.data.download import DATASETS, Dataset, download, main, prepare, unpack
from semcore.data.schema import DataError

FLICKR = DATASETS["flickr30k"]
# (filename, Karpathy split): restval must count as train
FLICKR_IMAGES = [("1.jpg", "train"), ("2.jpg", "train"), ("3.jpg", "restval"),
                 ("4.jpg", "val"), ("5.jpg", "test")]


def jpeg(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (seed * 40 % 256, 10, 20)).save(out, "JPEG")
    return out.getvalue()


def karpathy_json(images: list[tuple[str, str]], filepath: dict[str, str] | None = None) -> bytes:
    entries = [{"filename": name, "split": split,
                "sentences": [{"raw": f"caption {k} of {name}", "tokens": []} for k in range(5)]}
               for name, split in images]
    for entry in entries:
        if filepath:
            entry["filepath"] = filepath[entry["filename"]]
    return json.dumps({"images": entries, "dataset": "fake"}).encode()


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def make_tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def flickr_archives(tmp_path: Path) -> dict[str, str]:
    """Karpathy's zip (holding the JSON and a sibling) and the images as a tar.gz."""
    captions = make_zip(tmp_path / "caption_datasets.zip", {
        "dataset_flickr30k.json": karpathy_json(FLICKR_IMAGES),
        "dataset_flickr8k.json": b"{}"})
    images = make_tar(tmp_path / "flickr30k-images.tar.gz", {
        **{f"flickr30k-images/{name}": jpeg(i) for i, (name, _) in enumerate(FLICKR_IMAGES)},
        "flickr30k-images/readme.txt": b"licence"})
    return {"captions": str(captions), "images": str(images)}


def test_prepare_unpacks_verifies_and_is_idempotent(
        tmp_path: Path, flickr_archives: dict[str, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "data"
    argv = ["flickr30k", "--root", str(root),
            *(f"--from-archive={k}={v}" for k, v in flickr_archives.items())]
    assert main(argv) == 0
    out = capsys.readouterr().out
    folder = (root / "flickr30k").resolve()
    assert "3/1/1 train/val/test images, 25 captions" in out
    assert f"data_path: {folder / 'dataset_flickr30k.json'}" in out
    assert f"image_root: {folder / 'images'}" in out
    assert sorted(p.name for p in (folder / "images").iterdir()) == [
        "1.jpg", "2.jpg", "3.jpg", "4.jpg", "5.jpg", "readme.txt"]
    assert not list(folder.glob(".unpack-*"))
    lock = (folder / "SHA256SUMS").read_text().splitlines()
    assert [line.split("  ")[1] for line in lock] == [
        "caption_datasets.zip", "flickr30k-images.tar.gz"]

    for archive in flickr_archives.values():  # a re-run must not even look at the archives
        Path(archive).unlink()
    assert main(argv) == 0
    assert "nothing downloaded or unpacked" in capsys.readouterr().out


def test_sources_come_from_env_and_urls(tmp_path: Path, flickr_archives: dict[str, str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMCORE_FLICKR30K_IMAGES", flickr_archives["images"])
    url = Path(flickr_archives["captions"]).as_uri()
    report = prepare(FLICKR, tmp_path / "data", {"captions": url})
    assert report.changed and report.images_per_split == {"train": 3, "val": 1, "test": 1}
    downloaded = tmp_path / "data/flickr30k/downloads/caption_datasets.zip"
    assert downloaded.read_bytes() == Path(flickr_archives["captions"]).read_bytes()


def test_missing_flickr_images_source_says_where_to_get_them(
        tmp_path: Path, flickr_archives: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEMCORE_FLICKR30K_IMAGES", raising=False)
    with pytest.raises(DataError, match="flickr30k: no source for flickr30k-images.tar.gz.*"
                                        "shannon.cs.illinois.edu.*SEMCORE_FLICKR30K_IMAGES"):
        prepare(FLICKR, tmp_path / "data", {"captions": flickr_archives["captions"]})
    assert not (tmp_path / "data").exists()  # sources are resolved before anything is fetched
    with pytest.raises(DataError, match="not found: .*nowhere.tar"):
        prepare(FLICKR, tmp_path / "data",
                {**flickr_archives, "images": str(tmp_path / "nowhere.tar")})
    assert main(["flickr30k", "--root", str(tmp_path), "--from-archive", "photos=x"]) == 1


def test_changed_archive_fails_the_recorded_checksum(tmp_path: Path,
                                                     flickr_archives: dict[str, str]) -> None:
    root = tmp_path / "data"
    prepare(FLICKR, root, flickr_archives)
    (root / "flickr30k/images/5.jpg").unlink()
    with pytest.raises(DataError, match="image file not found: .*5.jpg"):
        prepare(FLICKR, root, flickr_archives)
    for image in (root / "flickr30k/images").iterdir():
        image.unlink()
    (root / "flickr30k/images").rmdir()
    make_tar(Path(flickr_archives["images"]), {"flickr30k-images/1.jpg": jpeg(9)})
    with pytest.raises(DataError,
                       match="SHA-256 .* differs .* flickr30k-images.tar.gz .*SHA256SUMS"):
        prepare(FLICKR, root, flickr_archives)


def test_missing_image_is_named(tmp_path: Path, flickr_archives: dict[str, str]) -> None:
    images = {f"flickr30k-images/{name}": jpeg(0) for name, _ in FLICKR_IMAGES if name != "4.jpg"}
    flickr_archives["images"] = str(make_tar(tmp_path / "partial.tar.gz", images))
    with pytest.raises(DataError, match=r"flickr30k: .*images\[3\]: image file not found: .*4.jpg"):
        prepare(FLICKR, tmp_path / "data", flickr_archives)


def test_coco_zips_nested_folders_and_published_sizes(tmp_path: Path) -> None:
    names = {"COCO_train2014_1.jpg": ("train", "train2014"),
             "COCO_val2014_2.jpg": ("restval", "val2014"),
             "COCO_val2014_3.jpg": ("val", "val2014"), "COCO_val2014_4.jpg": ("test", "val2014")}
    captions = make_zip(tmp_path / "c.zip", {"caption_datasets/dataset_coco.json": karpathy_json(
        [(n, s) for n, (s, _) in names.items()], {n: f for n, (_, f) in names.items()})})
    for folder in ("train2014", "val2014"):
        make_zip(tmp_path / f"{folder}.zip", {f"coco/{folder}/{n}": jpeg(1)
                                              for n, (_, f) in names.items() if f == folder})
    sources = {"captions": str(captions), "train2014": str(tmp_path / "train2014.zip"),
               "val2014": str(tmp_path / "val2014.zip")}
    with pytest.raises(DataError, match=r"train2014.zip has 13510573713 bytes"):
        prepare(DATASETS["coco"], tmp_path / "data", sources)
    right_size = dataclasses.replace(DATASETS["coco"].images[0],
                                     size=(tmp_path / "train2014.zip").stat().st_size)
    with pytest.raises(DataError, match=r"MD5 \w+ differs from the published 0da8c0bd"):
        prepare(dataclasses.replace(DATASETS["coco"], images=(right_size,)),
                tmp_path / "data", sources)
    unpublished = Dataset("coco", DATASETS["coco"].captions, tuple(
        dataclasses.replace(a, size=None, md5=None) for a in DATASETS["coco"].images), (2, 1, 1))
    report = prepare(unpublished, tmp_path / "data", sources)
    assert report.images_per_split == {"train": 2, "val": 1, "test": 1}
    assert report.image_root == (tmp_path / "data/coco/images").resolve()
    assert (report.image_root / "val2014/COCO_val2014_3.jpg").is_file()


def test_split_file_of_the_wrong_dataset_is_named(tmp_path: Path) -> None:
    captions = make_zip(tmp_path / "c.zip", {"dataset_coco.json": karpathy_json(FLICKR_IMAGES)})
    with pytest.raises(DataError, match="dataset_coco.json: no image has filepath 'train2014'"):
        prepare(DATASETS["coco"], tmp_path / "data", {"captions": str(captions),
                                                      "train2014": "unused", "val2014": "unused"})


@pytest.mark.parametrize("bad", ["../evil.jpg", "/tmp/evil.jpg", "ok/../../evil.jpg", "C:evil.jpg"])
@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_unpack_rejects_members_outside_the_target(tmp_path: Path, bad: str, kind: str) -> None:
    members = {"ok/1.jpg": jpeg(1), bad: b"x"}
    archive = (make_zip if kind == "zip" else make_tar)(tmp_path / f"a.{kind}", members)
    with pytest.raises(DataError, match=f"a.{kind}: unsafe member '{bad}'"):
        unpack(archive, tmp_path / "out")
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p != archive]
    assert all(p.is_relative_to(tmp_path / "out") for p in written)


def test_a_rejected_archive_leaves_nothing_behind(tmp_path: Path,
                                                  flickr_archives: dict[str, str]) -> None:
    flickr_archives["images"] = str(make_tar(tmp_path / "evil.tar.gz", {
        "flickr30k-images/1.jpg": jpeg(1), "flickr30k-images/../../evil.jpg": b"x"}))
    with pytest.raises(DataError, match="evil.tar.gz: unsafe member"):
        prepare(FLICKR, tmp_path / "data", flickr_archives)
    assert sorted(p.name for p in (tmp_path / "data/flickr30k").iterdir()) == [
        "SHA256SUMS", "dataset_flickr30k.json"]


def test_unpack_rejects_links_and_non_archives(tmp_path: Path) -> None:
    archive = tmp_path / "links.tar"
    with tarfile.open(archive, "w") as tar:
        link = tarfile.TarInfo("images/1.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(DataError, match="'images/1.jpg' is a link"):
        unpack(archive, tmp_path / "out")
    (tmp_path / "plain.zip").write_bytes(b"not an archive")
    with pytest.raises(DataError, match="plain.zip: not a zip or tar"):
        unpack(tmp_path / "plain.zip", tmp_path / "out")


# --- resumable download -----------------------------------------------------------------------

class FakeResponse(io.BytesIO):
    def __init__(self, body: bytes, status: int, headers: dict[str, str], fail_after: int | None):
        super().__init__(body)
        self.status, self.fail_after = status, fail_after
        self.headers = email.message.Message()
        for key, value in headers.items():
            self.headers[key] = value

    def read(self, size: int | None = -1) -> bytes:
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise ConnectionResetError("connection reset by peer")
        return super().read(7)  # small blocks, like a slow network


class FakeServer:
    """Serves `data`, honouring Range (unless told not to), cutting off the first reply."""

    def __init__(self, data: bytes, ranges: bool = True, cut_at: int | None = None):
        self.data, self.ranges, self.cut_at = data, ranges, cut_at
        self.requests: list[str | None] = []

    def __call__(self, request: urllib.request.Request) -> Any:
        wanted = request.get_header("Range")
        self.requests.append(wanted)
        start = int(wanted[len("bytes="):-1]) if wanted and self.ranges else 0
        if start >= len(self.data) and wanted:
            headers = email.message.Message()
            headers["Content-Range"] = f"bytes */{len(self.data)}"
            raise urllib.error.HTTPError(request.full_url, 416, "Range Not Satisfiable",
                                         headers, None)
        cut, self.cut_at = self.cut_at, None
        headers = {"Content-Length": str(len(self.data) - start)}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(self.data) - 1}/{len(self.data)}"
        return FakeResponse(self.data[start:], 206 if start else 200, headers, cut)


DATA = bytes(range(256)) * 3


def test_interrupted_download_resumes_with_range(tmp_path: Path) -> None:
    server, dest = FakeServer(DATA, cut_at=300), tmp_path / "a.zip"
    with pytest.raises(DataError, match="a.zip interrupted after 301 bytes .*re-run to resume"):
        download("https://example.org/a.zip", dest, server)
    assert (tmp_path / "a.zip.partial").stat().st_size == 301 and not dest.exists()
    download("https://example.org/a.zip", dest, server)
    assert server.requests == [None, "bytes=301-"]
    assert dest.read_bytes() == DATA and not (tmp_path / "a.zip.partial").exists()


def test_download_restarts_when_the_server_ignores_range(tmp_path: Path) -> None:
    (tmp_path / "a.zip.partial").write_bytes(b"stale bytes")
    server = FakeServer(DATA, ranges=False)
    download("https://example.org/a.zip", tmp_path / "a.zip", server)
    assert server.requests == ["bytes=11-"] and (tmp_path / "a.zip").read_bytes() == DATA


def test_download_of_an_already_complete_partial_is_kept(tmp_path: Path) -> None:
    (tmp_path / "a.zip.partial").write_bytes(DATA)
    download("https://example.org/a.zip", tmp_path / "a.zip", FakeServer(DATA))
    assert (tmp_path / "a.zip").read_bytes() == DATA


def test_download_from_a_file_url(tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(DATA)
    download(source.as_uri(), tmp_path / "copy.bin")
    assert (tmp_path / "copy.bin").read_bytes() == DATA
    with pytest.raises(DataError, match="download of gone.bin failed: cannot open"):
        download((tmp_path / "gone.bin").as_uri(), tmp_path / "gone.bin")
