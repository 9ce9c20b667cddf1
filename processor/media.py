"""Image decoding and encoding at the edges of the pipeline: size limits, format kept, metadata stripped.

Decoding reads the header first (Pillow, no pixel data) so a decompression bomb is refused before any
allocation; pixels are then decoded by OpenCV (BGR, EXIF orientation applied). Encoding keeps the input's
format and writes no metadata unless asked to keep the JPEG EXIF block (its orientation reset to upright,
since the pixels already are, and its embedded previews dropped: :mod:`processor.exif`).
"""

from __future__ import annotations

import io
import struct
import threading
import warnings
from typing import NamedTuple

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from processor.errors import ImageTooComplex, ImageTooLarge, ImageUndecodable
from processor.exif import kept_exif
from processor.frames import BgrImage, Frame

# We enforce our own, configurable pixel limit before decoding; Pillow only reads headers here.
Image.MAX_IMAGE_PIXELS = None

_ORIENTATION = 0x0112
_PILLOW_WARNINGS = threading.Lock()
MAX_JPEG_SCANS = 100
_CV2_EXTENSIONS = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "bmp": ".bmp", "tiff": ".tiff"}
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
"""File name suffixes taken for images when folders and buckets are listed."""
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".3gp", ".flv", ".wmv", ".mpg", ".mpeg"}
)
"""Object names the stream treats as videos when an event does not say (``kind`` null)."""
CONTENT_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
}


class ImageHeader(NamedTuple):
    format: str
    width: int
    height: int
    orientation: int  # EXIF orientation, 1 when absent

    @property
    def pixels(self) -> int:
        return self.width * self.height


def probe(data: bytes) -> ImageHeader:
    """What the header alone says (about 50 µs for a 1080p JPEG). Raises ImageUndecodable."""
    if not data:
        raise ImageUndecodable("empty input (0 bytes) is not an image")
    try:
        # Pillow warns (UserWarning) about corrupt EXIF or TIFF tags and reads on: under a warnings-as-errors filter
        # that warning escaped as a crash (internal, a 500). Nothing read here is kept, so it is ignored; the lock
        # because catch_warnings swaps the process-wide filters (probes run in worker threads).
        with _PILLOW_WARNINGS, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            with Image.open(io.BytesIO(data)) as header:
                fmt = (header.format or "").lower()
                width, height = header.size
                exif = "exif" in header.info or fmt == "tiff"
                orientation = header.getexif().get(_ORIENTATION, 1) if exif else 1
    except UnidentifiedImageError:  # its message names the in-memory buffer ("<_io.BytesIO object at 0x…>")
        raise ImageUndecodable(f"not a readable image ({len(data)} bytes): no image format recognised") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageUndecodable(f"not a readable image ({len(data)} bytes): {error}") from error
    if fmt == "mpo":  # a JPEG followed by more (a stereo pair's other view, previews): its first image is
        fmt = "jpeg"  # decoded and written, the others are dropped (never copied: only the EXIF block is kept)
    if fmt not in _CV2_EXTENSIONS:
        raise ImageUndecodable(f"unsupported image format {fmt or 'unknown'!r}; supported: {', '.join(CONTENT_TYPES)}")
    return ImageHeader(fmt, width, height, orientation if isinstance(orientation, int) else 1)


def decode(data: bytes, max_pixels: int, *, upload: bool = True, header: ImageHeader | None = None) -> Frame:
    """Decode to BGR pixels, EXIF orientation applied. Raises ImageTooLarge above ``max_pixels`` and
    ImageUndecodable for bad data.

    :param upload: ``Frame.encoded`` is what an HTTP inference service is sent: the input, or for an orientation
        other than 1 the upright pixels re-encoded (no metadata). False (no service reads it): the input as is,
        never re-encoded.
    :param header: ``probe(data)`` when the caller has it already."""
    fmt, width, height, orientation = header or probe(data)
    check_size(width, height, max_pixels)
    if fmt == "jpeg":
        check_scans(data)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if decoded is None or decoded.size == 0:
        raise ImageUndecodable(f"corrupt {fmt} image ({len(data)} bytes): the pixel data cannot be decoded")
    pixels = np.asarray(decoded, dtype=np.uint8)
    # Boxes apply to these upright pixels, so an inference service must see them, not the stored orientation
    # plus a tag it may ignore; the common upright case keeps the original bytes (no re-encode).
    encoded = encode(pixels, fmt) if upload and orientation != 1 else data
    return Frame(pixels=pixels, encoded=encoded, format=fmt)


def check_scans(jpeg: bytes) -> None:
    """Raises ImageTooComplex for a JPEG of more than MAX_JPEG_SCANS scans (a scan bomb: 2,000 scans in 24 KB
    decode for 14 s, each scan re-walking the whole image). Counting start-of-scan markers over-counts at worst (an
    embedded thumbnail's scans), never under-counts: entropy-coded data escapes every 0xFF."""
    scans = jpeg.count(b"\xff\xda")
    if scans > MAX_JPEG_SCANS:
        raise ImageTooComplex(
            f"JPEG with {scans} scans, above the limit of {MAX_JPEG_SCANS} (progressive JPEGs use about 10)"
        )


def check_size(width: int, height: int, max_pixels: int) -> None:
    """Raises ImageTooLarge above ``max_pixels``."""
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"image is {width}×{height} = {width * height / 1e6:.1f} MP, above the limit of {max_pixels / 1e6:.1f} MP"
        )


def encode(pixels: BgrImage, fmt: str, *, jpeg_quality: int = 95, metadata_from: bytes | None = None) -> bytes:
    """Encode in ``fmt``. With ``metadata_from`` (the source JPEG) its EXIF block is kept, orientation reset."""
    params: list[int] = []
    if fmt == "jpeg":
        params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
    elif fmt == "webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, jpeg_quality]
    ok, buffer = cv2.imencode(_CV2_EXTENSIONS[fmt], pixels, params)
    if not ok:
        raise ImageUndecodable(f"cannot encode the anonymized image as {fmt}")
    encoded = buffer.tobytes()
    if metadata_from is not None and fmt == "jpeg":
        exif = jpeg_exif_segment(metadata_from)
        if exif is not None:
            encoded = encoded[:2] + exif + encoded[2:]
    return encoded


def jpeg_exif_segment(jpeg: bytes) -> bytes | None:
    """The APP1 Exif segment of a JPEG (marker included) with Orientation set to 1 and no previews, or None.

    Only this segment is ever kept: XMP, MPF (APP2) and Photoshop (APP13) segments, which may hold previews of
    the original, are never copied."""
    position = 2
    while position + 4 <= len(jpeg) and jpeg[position] == 0xFF:
        marker = jpeg[position + 1]
        if marker in (0xDA, 0xD9):  # start of scan / end of image: no more metadata segments
            return None
        (length,) = struct.unpack(">H", jpeg[position + 2 : position + 4])
        segment = jpeg[position : position + 2 + length]
        if marker == 0xE1 and segment[4:10] == b"Exif\x00\x00":
            return kept_exif(segment)
        position += 2 + length
    return None
