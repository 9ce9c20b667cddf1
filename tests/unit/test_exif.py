"""Kept metadata carries no preview of the original: a real photo with a camera's embedded previews (an EXIF IFD1
thumbnail, a MakerNote preview, an XMP base64 preview, a Photoshop APP13 thumbnail, a second image after the first
as in an MPO) is anonymized with ``keep_metadata`` by the real built-in detectors, then every image embedded in the
output is decoded and compared with the original's face."""

from __future__ import annotations

import base64
import io
import re
import struct
from collections.abc import Iterator

import cv2
import numpy as np
import pytest
from PIL import Image

from processor import Anonymizer
from processor.exif import kept_exif
from processor.frames import BgrImage
from processor.media import jpeg_exif_segment
from tests.conftest import encode_jpeg
from tests.frames import ASTRONAUT_FACE, astronaut

Entry = tuple[int, int, int, bytes]  # tag, TIFF type, count, value bytes


def _ifd(entries: list[Entry], at: int, next_ifd: int) -> bytes:
    """A little-endian IFD placed at offset ``at``, its out-of-line values right after the directory."""
    directory = struct.pack("<H", len(entries))
    data = b""
    data_at = at + 2 + 12 * len(entries) + 4
    for tag, kind, count, value in sorted(entries):
        if len(value) <= 4:
            directory += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\0")
        else:
            directory += struct.pack("<HHII", tag, kind, count, data_at + len(data))
            data += value + b"\0" * (len(value) % 2)
    return directory + struct.pack("<I", next_ifd) + data


def _u32(value: int) -> bytes:
    return struct.pack("<I", value)


def exif_segment(thumbnail: bytes, maker_note: bytes) -> bytes:
    """APP1 Exif: IFD0 (Make, Orientation 1) → Exif IFD (MakerNote) and GPS IFD; IFD1 a JPEG thumbnail."""
    fixed: list[Entry] = [(0x010F, 2, 8, b"TestCam\0"), (0x0112, 3, 1, struct.pack("<H", 1))]

    def ifd0(exif_at: int, gps_at: int, ifd1_at: int) -> bytes:
        return _ifd([*fixed, (0x8769, 4, 1, _u32(exif_at)), (0x8825, 4, 1, _u32(gps_at))], 8, ifd1_at)

    exif_at = 8 + len(ifd0(0, 0, 0))
    exif_ifd = _ifd([(0x927C, 7, len(maker_note), maker_note)], exif_at, 0)
    gps_at = exif_at + len(exif_ifd)
    latitude = struct.pack("<6I", 48, 1, 8, 1, 10, 1)
    gps_ifd = _ifd([(1, 2, 2, b"N\0"), (2, 5, 3, latitude)], gps_at, 0)
    ifd1_at = gps_at + len(gps_ifd)

    def ifd1(thumbnail_at: int) -> bytes:
        entries: list[Entry] = [
            (0x0103, 3, 1, struct.pack("<H", 6)),
            (0x0201, 4, 1, _u32(thumbnail_at)),
            (0x0202, 4, 1, _u32(len(thumbnail))),
        ]
        return _ifd(entries, ifd1_at, 0)

    thumbnail_at = ifd1_at + len(ifd1(0))
    tiff = b"II*\0" + _u32(8) + ifd0(exif_at, gps_at, ifd1_at) + exif_ifd + gps_ifd + ifd1(thumbnail_at) + thumbnail
    return _app(0xE1, b"Exif\0\0" + tiff)


def _app(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def preview(image: BgrImage, side: int) -> bytes:
    return encode_jpeg(cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA), quality=90)


def camera_jpeg(image: BgrImage) -> bytes:
    """``image`` as a camera writes it: EXIF thumbnail and MakerNote preview, XMP and Photoshop previews, and a
    second image after the first (Pillow reads a file with an MPF index of two as MPO, which is refused)."""
    maker_note = b"Nikon\0\x02\x10\0\0" + preview(image, 200)
    xmp = (
        b'http://ns.adobe.com/xap/1.0/\0<x:xmpmeta xmlns:x="adobe:ns:meta/"><xmpGImg:image>'
        + base64.b64encode(preview(image, 96))
        + b"</xmpGImg:image></x:xmpmeta>"
    )
    thumbnail_resource = b"\0" * 28 + preview(image, 64)
    photoshop = b"Photoshop 3.0\0" + b"8BIM" + struct.pack(">HHI", 0x040C, 0, len(thumbnail_resource))
    segments = (
        exif_segment(preview(image, 160), maker_note) + _app(0xE1, xmp) + _app(0xED, photoshop + thumbnail_resource)
    )
    main = encode_jpeg(image)
    return main[:2] + segments + main[2:] + preview(image, 256)  # a second image after the first, as in an MPO


def embedded_images(data: bytes) -> list[BgrImage]:
    """Every image inside ``data`` other than the main one: JPEG start markers anywhere, and base64 JPEGs."""
    found = []
    starts = [match.start() for match in re.finditer(re.escape(b"\xff\xd8\xff"), data) if match.start() > 0]
    candidates = [data[start:] for start in starts]
    for run in re.findall(rb"/9j/[A-Za-z0-9+/=]+", data):
        candidates.append(base64.b64decode(run + b"=" * (-len(run) % 4)))
    for candidate in candidates:
        decoded = cv2.imdecode(np.frombuffer(candidate, np.uint8), cv2.IMREAD_COLOR)
        if decoded is not None:
            found.append(np.asarray(decoded, np.uint8))
    return found


def face_difference(embedded: BgrImage, reference: BgrImage) -> float:
    """Mean absolute difference of the face region, ``reference`` scaled to the embedded image's size."""
    height, width = embedded.shape[:2]
    scaled = cv2.resize(reference, (width, height), interpolation=cv2.INTER_AREA)
    left, top, right, bottom = ASTRONAUT_FACE
    sx, sy = width / reference.shape[1], height / reference.shape[0]
    box = np.s_[int(top * sy) : max(int(bottom * sy), int(top * sy) + 2), int(left * sx) : max(int(right * sx), 2)]
    return float(np.abs(embedded[box].astype(np.int16) - scaled[box].astype(np.int16)).mean())


def shows_original_face(embedded: BgrImage, original: BgrImage, anonymized: BgrImage) -> bool:
    return face_difference(embedded, original) < face_difference(embedded, anonymized)


@pytest.fixture(scope="module")
def anonymizer() -> Iterator[Anonymizer]:
    with Anonymizer({"output": {"keep_metadata": True}}) as opened:
        yield opened


def test_no_embedded_image_in_the_output_shows_the_unblurred_face(anonymizer: Anonymizer) -> None:
    original = astronaut()
    source = camera_jpeg(original)
    before = embedded_images(source)
    assert len(before) == 5  # EXIF thumbnail, MakerNote, Photoshop, trailing image, XMP base64
    anonymized = anonymizer.anonymize(source)
    assert anonymized.result.counts.get("face") == 1
    pixels = np.asarray(cv2.imdecode(np.frombuffer(anonymized.image, np.uint8), cv2.IMREAD_COLOR), np.uint8)
    assert all(shows_original_face(image, original, pixels) for image in before)  # the check can tell
    after = embedded_images(anonymized.image)
    assert not [image.shape for image in after if shows_original_face(image, original, pixels)]
    assert after == []


def test_kept_metadata_keeps_the_tags_without_the_previews(anonymizer: Anonymizer) -> None:
    anonymized = anonymizer.anonymize(camera_jpeg(astronaut()))
    exif = Image.open(io.BytesIO(anonymized.image)).getexif()
    assert exif[0x010F] == "TestCam"
    assert exif.get_ifd(0x8825)[1] == "N"
    assert exif.get_ifd(0x8825)[2] == (48.0, 8.0, 10.0)
    assert exif.get_ifd(0x8769)[0x927C] == bytes(len(exif.get_ifd(0x8769)[0x927C]))  # MakerNote blanked
    assert b"xap/1.0" not in anonymized.image
    assert b"Photoshop 3.0" not in anonymized.image


def test_exif_that_cannot_be_parsed_is_dropped() -> None:
    segment = exif_segment(preview(astronaut(), 64), b"note")
    broken = segment[:14] + struct.pack("<I", 60_000) + segment[18:]  # IFD0 offset past the end
    assert kept_exif(broken) is None
    assert jpeg_exif_segment(encode_jpeg(astronaut())) is None


def test_a_jpeg_start_left_in_an_unknown_place_drops_the_block() -> None:
    segment = exif_segment(preview(astronaut(), 64), b"note")
    hidden = segment + preview(astronaut(), 32)  # after every IFD: no tag points to it
    hidden = hidden[:2] + struct.pack(">H", len(hidden) - 2) + hidden[4:]
    assert kept_exif(segment) is not None
    assert kept_exif(hidden) is None
