"""The bad-input corpus: named, seeded cases of broken images, videos and events, each with its documented outcome.

Pure: it only builds bytes (a video is encoded once in a temporary folder and read back). Each case names the
outcomes its entry points may end in: ``ok`` (anonymized and written), ``skipped`` (an event that asks for no work:
no completion, no dead letter) or stable error kinds of :mod:`processor.errors`. A set holds more than one only where
more than one is right (a bit flip in entropy-coded data may leave a decodable image, or not).

How the expectations follow the contract (``processor/media.py``, ``docs/video.md``, ``docs/stream.md``):

- Images are probed by Pillow (header only; the content decides, never the file name) and decoded by OpenCV,
  which refuses a file cut anywhere (a JPEG too: libjpeg's "premature end of data" is an error in OpenCV 4.13+, not
  a grey fill), so every truncated image is ``image_undecodable``: nothing half-decoded is written.
  GIF is not a supported format (``image_undecodable``); more pixels than ``limits.max_pixels`` is
  ``image_too_large``; more JPEG scans than ``media.MAX_JPEG_SCANS`` is ``image_too_complex``.
- Videos: anything ffmpeg cannot demux or decode as a video — no video stream, no frame at all — is
  ``video_undecodable``; playlists are ``container_not_allowed``; odd sides are anonymized (the output loses the
  last column or row, docs/video.md); a video with corrupt packets may complete (its bad frames blackened) or be
  ``video_undecodable`` above ``video.max_bad_frame_ratio``; one longer than ``video.max_duration_s`` is
  ``video_too_long`` in the stream and the API, and anonymized by the CLI (which has no limit).
- Events: unparsable or schema-violating messages and object URLs the storage rules refuse are ``invalid_event`` (or
  its narrower kinds), configurations ``invalid_configuration``/``unknown_label``/``unknown_model``/
  ``unregistered_url``, absent objects ``object_not_found``.

``python -m tests.bad_inputs --table`` prints the table of the last measured run (written by
``tests/integration/test_bad_inputs.py`` under ``.pytest_cache``); ``--count`` prints the number of cases.
"""

from __future__ import annotations

import functools
import io
import json
import random
import struct
import sys
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import orjson
from PIL import Image

from tests.frames import BgrImage, astronaut
from tests.videos import Clip, write_audio_only, write_clip

OK = "ok"
SKIPPED = "skipped"
SIDE = 96
"""Side of the square test images: the stream tests' stub finds one box in the middle half of a SIDE×SIDE frame."""
SEED = 11


@dataclass(frozen=True)
class Case:
    """One file: its bytes, the suffix it is stored under, the outcomes allowed."""

    name: str
    family: str
    data: bytes
    suffix: str
    expected: frozenset[str]
    cli_expected: frozenset[str] | None = None
    """Where the CLI's contract differs (it has no duration limit), what it allows instead."""

    @property
    def file_name(self) -> str:
        return self.name + self.suffix

    def expected_at(self, entry: str) -> frozenset[str]:
        """The outcomes allowed at ``entry`` (``cli-…``, ``api-…``, ``inbox``, ``kafka-…``)."""
        return self.cli_expected if entry.startswith("cli") and self.cli_expected is not None else self.expected


@dataclass(frozen=True)
class EventCase:
    """One message: value and headers, the outcomes allowed for each event it yields, how many it yields.

    ``sources`` are the object keys (in the corpus bucket) or ``file://`` URLs whose completions belong to it."""

    name: str
    family: str
    value: bytes | None
    expected: frozenset[str]
    headers: tuple[tuple[str, bytes], ...] = ()
    events: int = 1
    sources: tuple[str, ...] = ()
    objects: Mapping[str, bytes] = field(default_factory=dict)

    def expected_at(self, entry: str) -> frozenset[str]:
        return self.expected

    @property
    def fits_a_jsonl_line(self) -> bool:
        """The inbox reads non-empty lines without headers: cases that need headers or no bytes cannot be lines."""
        return not self.headers and bool(self.value and self.value.strip()) and b"\n" not in (self.value or b"")


def _kinds(*kinds: str) -> frozenset[str]:
    return frozenset(kinds)


# --- images -------------------------------------------------------------------------------------------------------


@functools.cache
def photo(width: int = SIDE, height: int = SIDE) -> BgrImage:
    """A crop of the astronaut photo (the face in the middle), resized to ``width``×``height``."""
    crop = astronaut()[0:300, 100:400]
    resized = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(resized)


def _cv2(pixels: np.ndarray[Any, Any], extension: str, params: Iterable[int] = ()) -> bytes:
    ok, buffer = cv2.imencode(extension, pixels, list(params))
    assert ok, extension
    return bytes(buffer.tobytes())


def _pil(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _rgb(pixels: BgrImage) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(pixels[:, :, ::-1]))


@functools.cache
def good_images() -> dict[str, tuple[bytes, str]]:
    """The real photo crop in every supported format: name → (bytes, suffix)."""
    pixels = photo()
    return {
        "jpeg": (_cv2(pixels, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 90]), ".jpg"),
        "png": (_cv2(pixels, ".png"), ".png"),
        "webp": (_cv2(pixels, ".webp", [cv2.IMWRITE_WEBP_QUALITY, 90]), ".webp"),
        "tiff": (_pil(_rgb(pixels), "TIFF"), ".tiff"),
        "bmp": (_cv2(pixels, ".bmp"), ".bmp"),
    }


def _jpeg_first_scan_data(jpeg: bytes) -> int:
    """Offset of the first entropy-coded byte: after the first SOS segment."""
    start = jpeg.index(b"\xff\xda")
    length = int.from_bytes(jpeg[start + 2 : start + 4], "big")
    return start + 2 + length


def _png_first_idat(png: bytes) -> int:
    return png.index(b"IDAT") - 4


def _truncations() -> Iterator[Case]:
    fractions = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
    for fmt, (data, suffix) in good_images().items():
        cuts = {1, 2, 8, 16, 40, len(data) - 1, *(round(len(data) * f) for f in fractions)}
        if fmt == "jpeg":
            scan = _jpeg_first_scan_data(data)
            cuts |= {scan - 1, scan, scan + 1, scan + 64}
        for cut in sorted(cuts):
            yield Case(f"{fmt}-cut-{cut:06d}", "truncated", data[:cut], suffix, _kinds("image_undecodable"))


def _header_end(fmt: str, data: bytes) -> int:
    if fmt == "jpeg":
        return _jpeg_first_scan_data(data)
    if fmt == "png":
        return _png_first_idat(data) + 8
    return 54 if fmt == "bmp" else 40


def _flipped(data: bytes, position: int, bit: int) -> bytes:
    changed = bytearray(data)
    changed[position] ^= 1 << bit
    return bytes(changed)


def _bit_flips() -> Iterator[Case]:
    """Seeded single-bit flips: in the headers (anything may follow but a crash) and in the pixel data."""
    chooser = random.Random(SEED)
    anything = _kinds(OK, "image_undecodable", "image_too_large")
    for fmt, (data, suffix) in good_images().items():
        header = _header_end(fmt, data)
        for index in range(5):
            position = chooser.randrange(0, header)
            flipped = _flipped(data, position, chooser.randrange(8))
            yield Case(f"{fmt}-flip-header-{index}-at-{position}", "bit flip (header)", flipped, suffix, anything)
        for index in range(4):
            position = chooser.randrange(header, len(data) - 2)
            flipped = _flipped(data, position, chooser.randrange(8))
            # JPEG, BMP and uncompressed TIFF pixel data has no checksum: a flip changes pixels, it still decodes.
            data_outcome = _kinds(OK) if fmt in ("jpeg", "bmp", "tiff") else _kinds(OK, "image_undecodable")
            yield Case(f"{fmt}-flip-data-{index}-at-{position}", "bit flip (data)", flipped, suffix, data_outcome)


def _jpeg_with_size(data: bytes, width: int, height: int) -> bytes:
    """The JPEG with its SOF0 frame header claiming ``width``×``height``."""
    sof = data.index(b"\xff\xc0")
    return data[: sof + 5] + struct.pack(">HH", height, width) + data[sof + 9 :]


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_with_size(data: bytes, width: int, height: int) -> bytes:
    """The PNG with its IHDR claiming ``width``×``height`` (CRC fixed, so only the size lies)."""
    start = data.index(b"IHDR") - 4
    body = struct.pack(">II", width, height) + data[start + 16 : start + 21]
    return data[:start] + _png_chunk(b"IHDR", body) + data[start + 25 :]


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height, with a tiny (wrong) IDAT: a decompression-bomb lookalike."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 16)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", pixels) + _png_chunk(b"IEND", b"")


def _lying_sizes() -> Iterator[Case]:
    """Header dimensions set to 0, 1 and huge; decompression-bomb lookalikes."""
    jpeg, png = good_images()["jpeg"][0], good_images()["png"][0]
    undecodable, too_large = _kinds("image_undecodable"), _kinds("image_too_large")
    yield Case("jpeg-sof-0x0", "lying size", _jpeg_with_size(jpeg, 0, 0), ".jpg", undecodable)
    yield Case("jpeg-sof-0-wide", "lying size", _jpeg_with_size(jpeg, 0, SIDE), ".jpg", undecodable)
    yield Case("jpeg-sof-65535x65535", "lying size", _jpeg_with_size(jpeg, 65535, 65535), ".jpg", too_large)
    yield Case("jpeg-sof-65535x2000", "lying size", _jpeg_with_size(jpeg, 65535, 2000), ".jpg", too_large)
    # Smaller than the data: libjpeg decodes what the header claims and ignores the rest.
    yield Case("jpeg-sof-1x1", "lying size", _jpeg_with_size(jpeg, 1, 1), ".jpg", _kinds(OK))
    # Larger than the data, within the limit: libjpeg may decode the scan into the wrong grid, or fail.
    yield Case(
        "jpeg-sof-2000x2000", "lying size", _jpeg_with_size(jpeg, 2000, 2000), ".jpg", _kinds(OK, "image_undecodable")
    )
    yield Case("png-ihdr-0x0", "lying size", _png_with_size(png, 0, 0), ".png", undecodable)
    yield Case("png-ihdr-1x1", "lying size", _png_with_size(png, 1, 1), ".png", _kinds(OK, "image_undecodable"))
    yield Case("png-ihdr-2000x2000", "lying size", _png_with_size(png, 2000, 2000), ".png", undecodable)
    yield Case("png-ihdr-2^31-1", "lying size", _png_with_size(png, 2**31 - 1, 1), ".png", too_large)
    for width, height in ((30_000, 30_000), (100_000, 1001), (1, 100_000_001), (65_535, 65_535)):
        yield Case(f"png-bomb-{width}x{height}", "lying size", png_header_only(width, height), ".png", too_large)


def _odd_shapes() -> Iterator[Case]:
    """1×1, 1×N and N×1 images in every supported format."""
    for width, height in ((1, 1), (1, 97), (97, 1), (2, 3)):
        pixels = photo(width, height)
        encodings = {
            "jpeg": (_cv2(pixels, ".jpg"), ".jpg"),
            "png": (_cv2(pixels, ".png"), ".png"),
            "webp": (_cv2(pixels, ".webp"), ".webp"),
            "tiff": (_pil(_rgb(pixels), "TIFF"), ".tiff"),
            "bmp": (_cv2(pixels, ".bmp"), ".bmp"),
        }
        for fmt, (data, suffix) in encodings.items():
            yield Case(f"{fmt}-{width}x{height}", "odd shape", data, suffix, _kinds(OK))


def _not_images() -> Iterator[Case]:
    chooser = random.Random(SEED + 1)
    undecodable = _kinds("image_undecodable")
    yield Case("empty", "not an image", b"", ".jpg", undecodable)
    yield Case("one-byte", "not an image", b"\xff", ".jpg", undecodable)
    yield Case("jpeg-soi-only", "not an image", b"\xff\xd8", ".jpg", undecodable)
    yield Case("png-signature-only", "not an image", b"\x89PNG\r\n\x1a\n", ".png", undecodable)
    yield Case("text", "not an image", b"this is not an image\n" * 20, ".jpg", undecodable)
    yield Case("html", "not an image", b"<!doctype html><html><body>404</body></html>", ".png", undecodable)
    yield Case("json", "not an image", b'{"image": "elsewhere"}', ".jpg", undecodable)
    yield Case("zeros", "not an image", bytes(4096), ".bmp", undecodable)
    for size in (16, 1000, 50_000):
        noise = bytes(chooser.randrange(256) for _ in range(size))
        yield Case(f"random-{size}", "not an image", noise, ".jpg", undecodable)
    yield Case(
        "svg", "not an image", b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>', ".png", undecodable
    )
    pdf = _pil(_rgb(photo()), "PDF")
    yield Case("pdf", "not an image", pdf, ".jpg", undecodable)


def _wrong_names() -> Iterator[Case]:
    """The content decides, never the suffix: a JPEG named .png is anonymized as the JPEG it is."""
    images = good_images()
    for fmt, suffix in (("jpeg", ".png"), ("png", ".jpg"), ("webp", ".tiff"), ("bmp", ".jpeg"), ("tiff", ".webp")):
        yield Case(f"{fmt}-named{suffix.replace('.', '-')}", "wrong suffix", images[fmt][0], suffix, _kinds(OK))


def _gif(frames: int) -> bytes:
    images = [_rgb(np.roll(photo(), 8 * index, axis=1)) for index in range(frames)]
    return _pil(images[0], "GIF", save_all=frames > 1, append_images=images[1:], duration=100, loop=0)


def _many_frames() -> Iterator[Case]:
    """Animated and multi-page files: GIF is unsupported; the first frame of the others is anonymized."""
    first, second = _rgb(photo()), _rgb(np.roll(photo(), 20, axis=1))
    yield Case("gif-still", "animated", _gif(1), ".jpg", _kinds("image_undecodable"))
    yield Case("gif-animated", "animated", _gif(4), ".png", _kinds("image_undecodable"))
    webp = _pil(first, "WEBP", save_all=True, append_images=[second], duration=100)
    yield Case("webp-animated", "animated", webp, ".webp", _kinds(OK, "image_undecodable"))
    tiff = _pil(first, "TIFF", save_all=True, append_images=[second])
    yield Case("tiff-two-pages", "animated", tiff, ".tiff", _kinds(OK))
    apng = _pil(first, "PNG", save_all=True, append_images=[second], duration=100)
    yield Case("png-animated", "animated", apng, ".png", _kinds(OK))


def _progressive(pixels: BgrImage, repeat_last_scan: int) -> bytes:
    data = _pil(_rgb(pixels), "JPEG", quality=90, progressive=True)
    last, end = data.rfind(b"\xff\xda"), data.rfind(b"\xff\xd9")
    return data[:end] + data[last:end] * repeat_last_scan + data[end:]


def _scan_bombs() -> Iterator[Case]:
    yield Case("jpeg-progressive", "scan bomb", _progressive(photo(), 0), ".jpg", _kinds(OK))
    yield Case("jpeg-progressive-90-more-scans", "scan bomb", _progressive(photo(), 90), ".jpg", _kinds(OK))
    for extra in (100, 500, 2000):
        bomb = _progressive(photo(48, 48), extra)
        yield Case(f"jpeg-scan-bomb-{extra}", "scan bomb", bomb, ".jpg", _kinds("image_too_complex"))


def _colour_variants() -> Iterator[Case]:
    """Colour models and depths other than 8-bit RGB: each becomes BGR and is anonymized."""
    pixels = photo()
    grey = cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY)
    rgb = _rgb(pixels)
    alpha = np.dstack([pixels, np.full(pixels.shape[:2], 128, np.uint8)])
    deep = pixels.astype(np.uint16) * 257
    variants = {
        "jpeg-cmyk": (_pil(rgb.convert("CMYK"), "JPEG"), ".jpg"),
        "jpeg-grey": (_cv2(grey, ".jpg"), ".jpg"),
        "jpeg-progressive-grey": (_pil(rgb.convert("L"), "JPEG", progressive=True), ".jpg"),
        "png-grey": (_cv2(grey, ".png"), ".png"),
        "png-16-bit": (_cv2(deep, ".png"), ".png"),
        "png-16-bit-grey": (_cv2(grey.astype(np.uint16) * 257, ".png"), ".png"),
        "png-rgba": (_cv2(alpha, ".png"), ".png"),
        "png-grey-alpha": (_pil(rgb.convert("LA"), "PNG"), ".png"),
        "png-palette": (_pil(rgb.convert("P"), "PNG"), ".png"),
        "png-1-bit": (_pil(rgb.convert("1"), "PNG"), ".png"),
        "png-interlaced": (_pil_interlaced_png(rgb), ".png"),
        "webp-rgba": (_cv2(alpha, ".webp"), ".webp"),
        "webp-lossless": (_cv2(pixels, ".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]), ".webp"),
        "tiff-16-bit": (_cv2(deep, ".tiff"), ".tiff"),
        "tiff-cmyk": (_pil(rgb.convert("CMYK"), "TIFF"), ".tiff"),
        "tiff-grey": (_pil(rgb.convert("L"), "TIFF"), ".tiff"),
        "tiff-1-bit": (_pil(rgb.convert("1"), "TIFF"), ".tiff"),
        "tiff-lzw": (_pil(rgb, "TIFF", compression="tiff_lzw"), ".tiff"),
        "tiff-jpeg": (_pil(rgb, "TIFF", compression="jpeg"), ".tiff"),
        "bmp-palette": (_pil(rgb.convert("P"), "BMP"), ".bmp"),
        "bmp-grey": (_pil(rgb.convert("L"), "BMP"), ".bmp"),
        "bmp-rgba": (_cv2(alpha, ".bmp"), ".bmp"),
    }
    for name, (data, suffix) in variants.items():
        yield Case(name, "colour model", data, suffix, _kinds(OK))


def _pil_interlaced_png(image: Image.Image) -> bytes:
    """An Adam7-interlaced PNG (Pillow cannot write one; OpenCV neither): re-filtered by hand."""
    width, height = image.size
    rows = np.asarray(image, np.uint8)
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    raw = bytearray()
    for x0, y0, dx, dy in passes:
        sub = rows[y0::dy, x0::dx]
        if sub.size:
            for row in sub:
                raw += b"\x00" + row.tobytes()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 1)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(bytes(raw)))
        + _png_chunk(b"IEND", b"")
    )


def _jpeg_with_exif(exif: bytes) -> bytes:
    """The good JPEG with an APP1 Exif segment of ``exif`` (the TIFF structure after ``Exif\\0\\0``)."""
    jpeg = good_images()["jpeg"][0]
    body = b"Exif\x00\x00" + exif
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + jpeg[2:]


def _ifd(entries: list[tuple[int, int, int, bytes]], *, count: int | None = None, next_ifd: int = 0) -> bytes:
    """A little-endian TIFF header and one IFD of (tag, type, count, 4-byte value) entries."""
    body = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries) if count is None else count)
    for tag, kind, number, value in entries:
        body += struct.pack("<HHI", tag, kind, number) + value.ljust(4, b"\x00")
    return body + struct.pack("<I", next_ifd)


def _exif_garbage() -> Iterator[Case]:
    """EXIF orientation values out of range or of the wrong type, and broken EXIF structures: ignored."""
    short = 3
    for value in (0, 9, 255, 65535):
        exif = _ifd([(0x0112, short, 1, struct.pack("<H", value))])
        yield Case(f"jpeg-exif-orientation-{value}", "exif", _jpeg_with_exif(exif), ".jpg", _kinds(OK))
    for value in (6, 8):  # real rotations: applied, then anonymized upright
        exif = _ifd([(0x0112, short, 1, struct.pack("<H", value))])
        yield Case(f"jpeg-exif-orientation-{value}", "exif", _jpeg_with_exif(exif), ".jpg", _kinds(OK))
    ascii_kind, long_kind = 2, 4
    shapes = {
        "orientation-as-text": _ifd([(0x0112, ascii_kind, 4, b"six\x00")]),
        "orientation-count-1000": _ifd([(0x0112, short, 1000, struct.pack("<I", 0x7FFF_FFF0))]),
        "orientation-as-long": _ifd([(0x0112, long_kind, 1, struct.pack("<I", 2**31))]),
        "ifd-count-65535": _ifd([], count=65535),
        "ifd-loop": _ifd([(0x0112, short, 1, struct.pack("<H", 3))], next_ifd=8),
        "truncated": _ifd([(0x0112, short, 1, struct.pack("<H", 6))])[:11],
        "not-tiff": b"garbage garbage garbage",
        "exif-pointer-out-of-file": b"MM\x00*\x00\x00\x00\x08\x00\x01\x87\x69\x00\x04\x00\x00\x00\x01"
        + b"\xff\xff\xff\xf0",
    }
    for name, exif in shapes.items():
        yield Case(f"jpeg-exif-{name}", "exif", _jpeg_with_exif(exif), ".jpg", _kinds(OK))


def image_cases() -> list[Case]:
    """Every image case: good files of each format first, then each family."""
    good = [Case(f"{fmt}-good", "good", data, suffix, _kinds(OK)) for fmt, (data, suffix) in good_images().items()]
    families = (
        _truncations,
        _bit_flips,
        _lying_sizes,
        _odd_shapes,
        _not_images,
        _wrong_names,
        _many_frames,
        _scan_bombs,
        _colour_variants,
        _exif_garbage,
    )
    cases = good + [case for family in families for case in family()]
    names = Counter(case.name for case in cases)
    assert max(names.values()) == 1, [name for name, count in names.items() if count > 1]
    return cases


# --- videos -------------------------------------------------------------------------------------------------------

VIDEO_CLIP = Clip(frames=6, size=(160, 120), fps=12, face_height=40)
PLAYLISTS = {
    "playlist-hls": (b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nclip.mp4\n#EXT-X-ENDLIST\n", ".m3u8"),
    "playlist-dash": (
        b'<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static"><Period><AdaptationSet>'
        b'<Representation id="1" bandwidth="1"><BaseURL>clip.mp4</BaseURL></Representation></AdaptationSet>'
        b"</Period></MPD>\n",
        ".mpd",
    ),
    "playlist-ffconcat": (b"ffconcat version 1.0\nfile clip.mp4\n", ".ffconcat"),
    "playlist-hls-as-mp4": (b"#EXTM3U\n#EXTINF:1.0,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n", ".mp4"),
}


_ODD_CONTAINERS = {"odd-ffv1": "mkv", "odd-mpeg4": "avi", "odd-mjpeg": "avi", "odd-x264-444": "mp4"}
_ZERO_FRAMES = ("zero-frames-mp4", "zero-frames-mkv", "zero-frames-avi")


@functools.cache
def _clips() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        made: dict[str, bytes] = {}
        shapes: tuple[tuple[str, Clip, dict[str, Any]], ...] = (
            ("mp4", VIDEO_CLIP, {"audio": "aac"}),
            ("mp4-faststart", VIDEO_CLIP, {"audio": None, "fast_start": True}),
            ("mkv", VIDEO_CLIP, {"audio": None}),
            ("odd-size", Clip(frames=3, size=(162, 122), fps=12, face_height=40), {"audio": None}),
            ("one-frame", Clip(frames=1, size=(160, 120), fps=12, face_height=40), {"audio": None}),
            ("tiny-48x32", Clip(frames=2, size=(48, 32), fps=12, face_height=8), {"audio": None}),
        )
        for name, clip, options in shapes:
            path = root / f"{name}.{'mkv' if name == 'mkv' else 'mp4'}"
            write_clip(path, clip, **options)
            made[name] = path.read_bytes()
        # 3 frames over 400 s (a variable frame rate): above video.max_duration_s (300 s) of the stream and the API
        long = Clip(frames=3, size=VIDEO_CLIP.size, fps=VIDEO_CLIP.fps, face_height=VIDEO_CLIP.face_height)
        write_clip(root / "long.mp4", long, audio=None, pts=[0, 1000, 400_000], time_base=Fraction(1, 1000))
        made["long"] = (root / "long.mp4").read_bytes()
        write_audio_only(root / "audio.m4a", seconds=0.5)
        made["audio-only"] = (root / "audio.m4a").read_bytes()
        odd = Clip(frames=3, size=(161, 121), fps=12, face_height=40)
        for name, codec, pix_fmt, container in (
            ("odd-ffv1", "ffv1", "yuv420p", "mkv"),
            ("odd-mpeg4", "mpeg4", "yuv420p", "avi"),
            ("odd-mjpeg", "mjpeg", "yuvj420p", "avi"),
            ("odd-x264-444", "libx264", "yuv444p", "mp4"),
            ("zero-frames-mp4", "libx264", "yuv420p", "mp4"),
            ("zero-frames-mkv", "libx264", "yuv420p", "mkv"),
            ("zero-frames-avi", "mpeg4", "yuv420p", "avi"),
        ):
            path = root / f"{name}.{container}"
            zero = name in _ZERO_FRAMES
            _encode(path, VIDEO_CLIP if zero else odd, codec, pix_fmt, frames=0 if zero else odd.frames)
            made[name] = path.read_bytes()
        return made


def _encode(path: Path, clip: Clip, codec: str, pix_fmt: str, frames: int) -> None:
    """``frames`` frames of ``clip`` in ``codec``, any size (write_clip's H.264 4:2:0 needs even sides)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=clip.fps)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height = clip.size
        stream.pix_fmt = pix_fmt
        container.start_encoding()
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(clip.frame(index), format="bgr24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _video_truncations(name: str, data: bytes, suffix: str) -> Iterator[Case]:
    """Cuts anywhere: demuxing fails, or the packets that remain decode (the rest is lost: still anonymized)."""
    for fraction in (0.002, 0.05, 0.3, 0.6, 0.9, 0.99):
        cut = max(1, round(len(data) * fraction))
        outcome = _kinds("video_undecodable") if cut < 64 else _kinds(OK, "video_undecodable")
        yield Case(f"video-{name}-cut-{cut:06d}", "truncated video", data[:cut], suffix, outcome)


def video_cases() -> list[Case]:
    """Every video case: good clips, truncations, bit flips, odd sizes, no video stream, not videos, playlists."""
    clips = _clips()
    undecodable = _kinds("video_undecodable")
    cases = [
        Case("video-good-mp4", "good video", clips["mp4"], ".mp4", _kinds(OK)),
        Case("video-good-mkv", "good video", clips["mkv"], ".mkv", _kinds(OK)),
        Case("video-size-162x122", "odd video", clips["odd-size"], ".mp4", _kinds(OK)),
        Case("video-one-frame", "odd video", clips["one-frame"], ".mp4", _kinds(OK)),
        Case("video-48x32", "odd video", clips["tiny-48x32"], ".mp4", _kinds(OK)),
        Case("video-mkv-named-mp4", "odd video", clips["mkv"], ".mp4", _kinds(OK)),
        Case("video-audio-only", "no video stream", clips["audio-only"], ".mp4", undecodable),
        Case("video-400-s", "too long", clips["long"], ".mp4", _kinds("video_too_long"), cli_expected=_kinds(OK)),
        *(Case(f"video-{n}", "odd video", clips[n], f".{c}", _kinds(OK)) for n, c in _ODD_CONTAINERS.items()),
        *(Case(f"video-{n}", "no frames", clips[n], f".{n[-3:]}", undecodable) for n in _ZERO_FRAMES),
        Case("video-empty", "not a video", b"", ".mp4", undecodable),
        Case("video-text", "not a video", b"not a video at all\n" * 10, ".mp4", undecodable),
        Case("video-jpeg", "not a video", good_images()["jpeg"][0], ".mp4", undecodable),
        Case("video-png-as-mkv", "not a video", good_images()["png"][0], ".mkv", undecodable),
        Case(
            "video-ftyp-only", "not a video", b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", ".mp4", undecodable
        ),
        Case("video-random", "not a video", random.Random(SEED).randbytes(20_000), ".mp4", undecodable),
    ]
    cases += [
        Case(name, "playlist", body, suffix, _kinds("container_not_allowed"))
        for name, (body, suffix) in PLAYLISTS.items()
    ]
    cases += _video_truncations("mp4", clips["mp4"], ".mp4")
    cases += _video_truncations("faststart", clips["mp4-faststart"], ".mp4")
    cases += _video_truncations("mkv", clips["mkv"], ".mkv")
    chooser = random.Random(SEED + 2)
    for source in ("mp4-faststart", "mkv"):
        data = clips[source]
        for index in range(4):
            position = chooser.randrange(len(data) // 4, len(data) - 1)
            flipped = _flipped(data, position, chooser.randrange(8))
            suffix = ".mkv" if source == "mkv" else ".mp4"
            yield_case = Case(
                f"video-{source}-flip-{index}-at-{position}",
                "bit flip video",
                flipped,
                suffix,
                _kinds(OK, "video_undecodable"),
            )
            cases.append(yield_case)
    return cases


# --- events -------------------------------------------------------------------------------------------------------

GOOD_IMAGE = "good.jpg"
"""The key (in the corpus bucket) of the one good image the event cases refer to; ``file_root/good.jpg`` as well."""


def _frame_event(name: str, source: str, **fields: Any) -> bytes:
    return orjson.dumps({"id": name, "source": source, **fields})


def _entry(**overrides: Any) -> dict[str, Any]:
    entry = {
        "model_name": "stub_detector",
        "class_name": "face",
        "anonymization_technique": "blackening",
        "inference_type": "detection",
        "anonymization_degree": 1.0,
    }
    return entry | overrides


def _record(bucket: str, key: str, event_name: str = "ObjectCreated:Put") -> dict[str, Any]:
    return {
        "eventName": event_name,
        "eventSource": "aws:s3",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key}},
    }


class _EventCases:
    """The event cases being built, and what they refer to."""

    def __init__(self, bucket: str, file_root: Path, outside: Path) -> None:
        self.bucket, self.file_root, self.outside = bucket, file_root, outside
        self.s3 = f"s3://{bucket}"
        self.good = good_images()["jpeg"][0]
        self.invalid = _kinds("invalid_event")
        self.cases: list[EventCase] = []

    def add(self, name: str, family: str, value: bytes | None, *expected: str, **options: Any) -> None:
        self.cases.append(EventCase(name, family, value, frozenset(expected), **options))

    def own(self, name: str) -> dict[str, Any]:
        """The options of a case that reads its own copy of the good image: ``events/<name>.jpg``."""
        return {"sources": (f"events/{name}.jpg",), "objects": {f"events/{name}.jpg": self.good}}


def _malformed(b: _EventCases) -> None:
    """Not JSON, or JSON of the wrong shape; the right JSON of the wrong schema."""
    # not JSON, or JSON of the wrong shape
    for name, value in {
        "not-json": b"this is not JSON {",
        "json-array": b"[1, 2, 3]",
        "json-string": b'"s3://bucket/a.jpg"',
        "json-number": b"42",
        "json-null": b"null",
        "json-truncated": _frame_event("x", f"{b.s3}/{GOOD_IMAGE}")[:-7],
        "json-trailing-garbage": _frame_event("x", f"{b.s3}/{GOOD_IMAGE}") + b" }",
        "json-nested-10000": b"[" * 10_000 + b"]" * 10_000,
        "json-object-nested-600": b'{"a":' * 600 + b"1" + b"}" * 600,
        "not-utf8": b'{"id": "\xff\xfe", "source": "s3://b/a.jpg"}',
        "utf8-bom": b"\xef\xbb\xbf" + _frame_event("bom", f"{b.s3}/{GOOD_IMAGE}"),
        "nul-byte": b'{"id": "a", "source": "s3://b/a.jpg"}\x00',
        "python-dict": b"{'id': 'a', 'source': 's3://b/a.jpg'}",
        "nan": b'{"id": "a", "source": "s3://b/a.jpg", "attributes": {"x": NaN}}',
    }.items():
        b.add(name, "malformed JSON", value, "invalid_event")
    b.add("empty-value", "malformed JSON", b"", "invalid_event")
    b.add("null-value", "malformed JSON", None, "invalid_event")
    b.add("whitespace", "malformed JSON", b"   \t ", "invalid_event")
    # the right JSON, the wrong schema
    for name, document in {
        "missing-source": {"id": "a"},
        "missing-id": {"source": f"{b.s3}/{GOOD_IMAGE}"},
        "empty-id": {"id": "  ", "source": f"{b.s3}/{GOOD_IMAGE}"},
        "id-number": {"id": 7, "source": f"{b.s3}/{GOOD_IMAGE}"},
        "source-number": {"id": "a", "source": 7},
        "source-list": {"id": "a", "source": [f"{b.s3}/{GOOD_IMAGE}"]},
        "kind-audio": {"id": "a", "source": f"{b.s3}/{GOOD_IMAGE}", "kind": "audio"},
        "attributes-list": {"id": "a", "source": f"{b.s3}/{GOOD_IMAGE}", "attributes": ["camera"]},
        "attributes-nested": {"id": "a", "source": f"{b.s3}/{GOOD_IMAGE}", "attributes": {"a": {"b": 1}}},
        "configuration-number": {"id": "a", "source": f"{b.s3}/{GOOD_IMAGE}", "configuration": 5},
        "id-too-long": {"id": "x" * 5000, "source": f"{b.s3}/{GOOD_IMAGE}"},
        "source-too-long": {"id": "a", "source": f"{b.s3}/" + "k" * 5000 + ".jpg"},
    }.items():
        b.add(name, "wrong schema", orjson.dumps(document), "invalid_event")


def _urls(b: _EventCases) -> None:
    """Object URLs the storage rules refuse, or that name nothing, and two that work."""
    # object URLs
    urls: dict[str, tuple[str, frozenset[str]]] = {
        "url-http": ("http://example.com/a.jpg", b.invalid),
        "url-https-metadata": ("https://169.254.169.254/latest/meta-data", b.invalid),
        "url-ftp": ("ftp://example.com/a.jpg", b.invalid),
        "url-javascript": ("javascript:alert(1)", b.invalid),
        "url-relative": ("cam/a.jpg", b.invalid),
        "url-empty": ("", b.invalid),
        "url-no-bucket": ("s3:///a.jpg", b.invalid),
        "url-bucket-only": (f"{b.s3}/", b.invalid),
        "url-double-slash": (f"{b.s3}//{GOOD_IMAGE}", b.invalid),
        "url-inner-double-slash": (f"{b.s3}/events//{GOOD_IMAGE}", b.invalid),
        "url-dot-segment": (f"{b.s3}/./{GOOD_IMAGE}", b.invalid),
        "url-dot-dot-segment": (f"{b.s3}/events/../{GOOD_IMAGE}", b.invalid),
        "url-trailing-dot-dot": (f"{b.s3}/events/..", b.invalid),
        "url-nul-in-key": (f"{b.s3}/a\x00b.jpg", _kinds("invalid_event", "object_not_found")),
        "url-control-char-in-key": (f"{b.s3}/a\x01b.jpg", _kinds("invalid_event", "object_not_found")),
        "url-bucket-uppercase": ("s3://Bad_Bucket/a.jpg", _kinds("bucket_name_invalid")),
        "url-bucket-too-long": ("s3://" + "b" * 300 + "/a.jpg", _kinds("bucket_name_invalid")),
        "url-bucket-as-host": ("s3://evil.example.com:9000/a.jpg", _kinds("bucket_name_invalid")),
        "url-bucket-ip": ("s3://169.254.169.254/a.jpg", _kinds("bucket_name_invalid")),
        "url-bucket-userinfo": ("s3://user:pw@bucket/a.jpg", _kinds("bucket_name_invalid")),
        "url-missing-object": (f"{b.s3}/events/nowhere.jpg", _kinds("object_not_found")),
        "url-unicode-missing": (f"{b.s3}/events/ß-nowhere-\u202e.jpg", _kinds("object_not_found")),
        "url-memory": ("memory://frames/a.jpg", _kinds("scheme_not_allowed")),
        "url-gs-not-enabled": ("gs://bucket/a.jpg", _kinds("scheme_not_allowed")),
        "url-az-not-enabled": ("az://container/a.jpg", _kinds("scheme_not_allowed")),
        "file-outside-root": (f"file://{b.outside}/{GOOD_IMAGE}", b.invalid),
        "file-dot-dot": (f"file://{b.file_root}/../{b.outside.name}/{GOOD_IMAGE}", b.invalid),
        "file-relative": (f"file://{GOOD_IMAGE}", b.invalid),
        "file-host": (f"file://localhost{b.file_root}/{GOOD_IMAGE}", b.invalid),
        "file-root-itself": (f"file://{b.file_root}", b.invalid),
        "file-etc-passwd": ("file:///etc/passwd", b.invalid),
        "file-missing": (f"file://{b.file_root}/nowhere.jpg", _kinds("object_not_found")),
    }
    for name, (url, expected) in urls.items():
        b.add(name, "bad URL", _frame_event(name, url), *expected)
    b.add(
        "file-good",
        "good event",
        _frame_event("file-good", f"file://{b.file_root}/{GOOD_IMAGE}"),
        OK,
        sources=(f"file://{b.file_root}/{GOOD_IMAGE}",),
    )
    unicode_key = "events/kamera-ß-東京 ☃.jpg"
    b.add(
        "url-unicode-key",
        "good event",
        _frame_event("url-unicode-key", f"{b.s3}/{unicode_key}"),
        OK,
        sources=(unicode_key,),
        objects={unicode_key: b.good},
    )


def _outputs_and_configurations(b: _EventCases) -> None:
    """Explicit outputs out of bounds; configurations inline or named."""
    # outputs
    name = "output-is-source"
    b.add(
        name,
        "bad output",
        _frame_event(name, f"{b.s3}/events/{name}.jpg", output=f"{b.s3}/events/{name}.jpg"),
        "output_not_allowed",
        objects=b.own(name)["objects"],
    )
    name = "output-outside-prefix"
    b.add(
        name,
        "bad output",
        _frame_event(name, f"{b.s3}/events/{name}.jpg", output=f"{b.s3}/{GOOD_IMAGE}"),
        "output_not_allowed",
        objects=b.own(name)["objects"],
    )
    name = "output-on-disk"
    b.add(
        name,
        "bad output",
        _frame_event(name, f"{b.s3}/events/{name}.jpg", output=f"file://{b.file_root}/x.jpg"),
        "output_not_allowed",
        objects=b.own(name)["objects"],
    )
    # configurations: an inline one is part of the event's schema, so a field it breaks is an invalid_event naming
    # FrameEvent.configuration.inline… (docs/storage-and-events.md); what only the registry knows (techniques,
    # labels, models, URLs) and an absent stored name are configuration kinds.
    configurations: dict[str, tuple[Any, str]] = {
        "config-unknown-name": ("nope", "invalid_configuration"),
        "config-name-traversal": ("../../etc/passwd", "invalid_event"),
        "config-name-absolute": ("/etc/passwd", "invalid_event"),
        "config-bad-technique": (
            {"sensitive_info": [_entry(anonymization_technique="swirl")]},
            "invalid_configuration",
        ),
        "config-degree-2": ({"sensitive_info": [_entry(anonymization_degree=2)]}, "invalid_event"),
        "config-degree-nan": ({"sensitive_info": [_entry(anonymization_degree="NaN")]}, "invalid_event"),
        "config-bad-type": ({"sensitive_info": [_entry(inference_type="guess")]}, "invalid_event"),
        "config-entry-not-object": ({"sensitive_info": ["face"]}, "invalid_event"),
        "config-sensitive-info-missing": ({"faces": True}, "invalid_event"),
        "config-second-entry-bad": (
            {"sensitive_info": [_entry(), _entry(anonymization_degree=-1)]},
            "invalid_event",
        ),
        "config-unknown-label": ({"sensitive_info": [_entry(class_name="unicorn")]}, "unknown_label"),
        "config-unknown-model": ({"sensitive_info": [_entry(model_name="nomodel")]}, "unknown_model"),
        "config-unregistered-url": ({"sensitive_info": [_entry(url="http://127.0.0.1:9/")]}, "unregistered_url"),
        "config-url-metadata": (
            {"sensitive_info": [_entry(url="http://169.254.169.254/")]},
            "unregistered_url",
        ),
    }
    for name, (configuration, kind) in configurations.items():
        value = _frame_event(name, f"{b.s3}/events/{name}.jpg", configuration=configuration)
        b.add(name, "bad configuration", value, kind, objects=b.own(name)["objects"])
    name = "config-stored-stub"
    b.add(name, "good event", _frame_event(name, f"{b.s3}/events/{name}.jpg", configuration="stub"), OK, **b.own(name))
    name = "frame-event-unknown-field"  # our own events are strict: a misspelt field is refused, not ignored
    b.add(name, "wrong schema", _frame_event(name, f"{b.s3}/events/{name}.jpg", configuraton="stub"), "invalid_event")


def _envelopes(b: _EventCases) -> None:
    """S3 / MinIO notifications and CloudEvents."""
    # S3 / MinIO notifications
    for name, document in {
        "s3-records-not-list": {"Records": {"s3": {}}},
        "s3-record-without-s3": {"Records": [{"eventName": "ObjectCreated:Put"}]},
        "s3-record-without-key": {
            "Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": b.bucket}}}]
        },
        "s3-record-key-number": {
            "Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": b.bucket}, "object": {"key": 5}}}]
        },
    }.items():
        b.add(name, "bad notification", orjson.dumps(document), "invalid_event")
    b.add(
        "s3-test-event",
        "notification asks nothing",
        orjson.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": b.bucket}),
        SKIPPED,
        events=0,
    )
    b.add("s3-records-empty", "notification asks nothing", orjson.dumps({"Records": []}), SKIPPED, events=0)
    b.add(
        "s3-object-removed",
        "notification asks nothing",
        orjson.dumps({"Records": [_record(b.bucket, "events/gone.jpg", "ObjectRemoved:Delete")]}),
        SKIPPED,
        events=0,
    )
    b.add(
        "s3-folder-marker",
        "notification asks nothing",
        orjson.dumps({"Records": [_record(b.bucket, "events/folder/")]}),
        SKIPPED,
        events=0,
    )
    b.add(
        "s3-missing-object",
        "bad notification",
        orjson.dumps({"Records": [_record(b.bucket, "events/not+here.jpg")]}),
        "object_not_found",
    )
    b.add(
        "s3-bucket-invalid",
        "bad notification",
        orjson.dumps({"Records": [_record("Evil.Example.Com:9000", "a.jpg")]}),
        "bucket_name_invalid",
    )
    b.add(
        "s3-key-dot-dot",
        "bad notification",
        orjson.dumps({"Records": [_record(b.bucket, "events/../good.jpg")]}),
        "invalid_event",
    )
    name = "s3-one-good-one-missing"
    b.add(
        name,
        "bad notification",
        orjson.dumps({"Records": [_record(b.bucket, f"events/{name}.jpg"), _record(b.bucket, "events/absent.jpg")]}),
        OK,
        "object_not_found",
        events=2,
        **b.own(name),
    )
    name = "minio-encoded-key"
    key = f"events/{name} +x.jpg"
    b.add(
        name,
        "good event",
        orjson.dumps({"Records": [_record(b.bucket, "events/minio-encoded-key+%2Bx.jpg", "s3:ObjectCreated:Put")]}),
        OK,
        sources=(key,),
        objects={key: b.good},
    )
    # CloudEvents
    ce_json = ("content-type", b"application/cloudevents+json")

    def structured(**overrides: Any) -> bytes:
        envelope: dict[str, Any] = {
            "specversion": "1.0",
            "id": "ce",
            "type": "com.example.frame",
            "source": "/cameras/7",
            "datacontenttype": "application/json",
            "data": {"source": f"{b.s3}/{GOOD_IMAGE}"},
        }
        return orjson.dumps({key: value for key, value in (envelope | overrides).items() if value is not None})

    broken: dict[str, dict[str, Any]] = {
        "ce-missing-id": {"id": None},
        "ce-missing-type": {"type": None},
        "ce-missing-source": {"source": None},
        "ce-specversion-0.3": {"specversion": "0.3"},
        "ce-data-not-object": {"data": "s3://b/a.jpg"},
        "ce-data-text": {"datacontenttype": "text/plain", "data": "s3://b/a.jpg"},
        "ce-data-base64-broken": {"data": None, "data_base64": "%%%not base64%%%"},
        "ce-data-without-source": {"data": {"camera": 7}},
    }
    for name, overrides in broken.items():
        b.add(name, "bad CloudEvent", structured(**overrides), "invalid_event", headers=(ce_json,))
    name = "ce-structured-good"
    b.add(
        name,
        "good event",
        structured(id=name, data={"source": f"{b.s3}/events/{name}.jpg"}),
        OK,
        headers=(ce_json,),
        **b.own(name),
    )
    name = "ce-without-content-type-header"
    b.add(name, "good event", structured(id=name, data={"source": f"{b.s3}/events/{name}.jpg"}), OK, **b.own(name))
    binary = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"b"),
        ("ce_type", b"t"),
        ("ce_source", b"/c"),
        ("content-type", b"application/json"),
    ]
    data = orjson.dumps({"source": f"{b.s3}/{GOOD_IMAGE}"})
    for name, headers, value in (
        ("ce-binary-missing-id", [h for h in binary if h[0] != "ce_id"], data),
        ("ce-binary-header-not-utf8", [*binary[:1], ("ce_id", b"\xff\xfe"), *binary[2:]], data),
        ("ce-binary-body-not-json", binary, b"not json"),
        ("ce-binary-body-empty", binary, b""),
        ("ce-binary-specversion-2", [("ce_specversion", b"2.0"), *binary[1:]], data),
    ):
        b.add(name, "bad CloudEvent", value, "invalid_event", headers=tuple(headers))
    name = "ce-binary-good"
    b.add(
        name,
        "good event",
        orjson.dumps({"source": f"{b.s3}/events/{name}.jpg"}),
        OK,
        headers=tuple([binary[0], ("ce_id", name.encode()), *binary[2:]]),
        **b.own(name),
    )


def event_cases(bucket: str, file_root: Path, outside: Path) -> list[EventCase]:
    """Every event case, against the corpus ``bucket`` (which holds GOOD_IMAGE and the cases' ``objects``), a
    ``file_root`` holding GOOD_IMAGE and a folder ``outside`` it holding GOOD_IMAGE too.

    Each case that can complete reads an object of its own (``objects``), so its completion names it."""
    built = _EventCases(bucket, file_root, outside)
    for family in (_malformed, _urls, _outputs_and_configurations, _envelopes):
        family(built)
    names = Counter(case.name for case in built.cases)
    assert max(names.values()) == 1, [name for name, count in names.items() if count > 1]
    return built.cases


# --- the measured table --------------------------------------------------------------------------------------------


def outcome_table(runs: Mapping[str, Mapping[str, Any]]) -> str:
    """A Markdown table of measured runs (entry point → {"tried", "clean", "outcomes": {kind: count}}), one column
    per entry point. A try is one case through one entry point; it is clean when every event it yielded ended in an
    expected outcome. Outcomes count events, so a message of two records counts twice."""
    entries = list(runs)
    kinds = sorted({kind for run in runs.values() for kind in run["outcomes"]})
    lines = ["| | " + " | ".join(entries) + " | all |", "|---|" + "---:|" * (len(entries) + 1)]

    def row(label: str, values: list[int]) -> str:
        return f"| {label} | " + " | ".join(map(str, values)) + f" | {sum(values)} |"

    lines.append(row("**tried**", [runs[entry]["tried"] for entry in entries]))
    lines.append(row("**clean**", [runs[entry]["clean"] for entry in entries]))
    lines += [row(f"`{kind}`", [runs[entry]["outcomes"].get(kind, 0) for entry in entries]) for kind in kinds]
    return "\n".join(lines)


RESULTS = Path(".pytest_cache") / "d" / "bad-inputs"
"""Where the corpus tests write each entry point's measured run (pytest's cache, under the rootdir)."""


def main(argv: list[str]) -> int:
    if argv == ["--count"]:
        counts = {"images": len(image_cases()), "videos": len(video_cases())}
        counts["events"] = len(event_cases("bucket", Path("/root"), Path("/outside")))
        print(json.dumps(counts))  # noqa: T201
        return 0
    if argv != ["--table"]:
        print("usage: python -m tests.bad_inputs --table | --count", file=sys.stderr)  # noqa: T201
        return 2
    runs = {path.stem: json.loads(path.read_text()) for path in sorted(RESULTS.glob("*.json"))}
    if not runs:
        print(f"no measured run in {RESULTS}: run pytest tests/integration/test_bad_inputs.py", file=sys.stderr)  # noqa: T201
        return 1
    print(outcome_table(runs))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
