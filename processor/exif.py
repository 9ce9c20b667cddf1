"""The EXIF block a kept-metadata output carries: upright, and without any embedded preview of the original.

A camera's EXIF block holds more than tags: IFD1 is a thumbnail of the whole frame (the face unblurred), and
MakerNote, XMP, IPTC and Photoshop tags may hold further previews. Written in place on the raw TIFF structure
(not with Pillow's ``Exif``, which drops tags it cannot re-encode and rewrites every offset): the thumbnail,
its directory and those tags' bytes are zeroed and the IFD0 → IFD1 link cut, so every other tag (Make, GPS,
dates) stays byte-identical. Whatever cannot be parsed, or still holds a JPEG start marker after the rewrite,
is dropped whole: an output without metadata is better than one with a face in it.
"""

from __future__ import annotations

import struct
from typing import Final

_ORIENTATION: Final = 0x0112
_EXIF_IFD: Final = 0x8769
_GPS_IFD: Final = 0x8825
_INTEROP_IFD: Final = 0xA005
_THUMBNAIL_OFFSET: Final = 0x0201  # JPEGInterchangeFormat
_THUMBNAIL_LENGTH: Final = 0x0202  # JPEGInterchangeFormatLength
_STRIP_OFFSETS: Final = 0x0111
_STRIP_BYTE_COUNTS: Final = 0x0117
# Tags whose bytes may carry another image: MakerNote (Nikon/Canon previews), XMP, IPTC, Photoshop resources.
_BLANKED: Final = frozenset({0x927C, 0x02BC, 0x83BB, 0x8649})
_TYPE_SIZES: Final = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_JPEG_START: Final = b"\xff\xd8\xff"
_HEADER: Final = b"Exif\x00\x00"


class _Malformed(Exception):
    """An offset or count outside the block: the block is dropped."""


def kept_exif(segment: bytes) -> bytes | None:
    """An APP1 Exif segment (marker included) made safe to keep: Orientation 1, no previews; None to drop it."""
    if segment[4:10] != _HEADER:
        return None
    tiff = bytearray(segment[10:])
    try:
        _clean(tiff)
    except (_Malformed, struct.error):
        return None
    if _JPEG_START in tiff:
        return None
    return segment[:10] + bytes(tiff)


def _clean(tiff: bytearray) -> None:
    if len(tiff) < 8 or bytes(tiff[:2]) not in (b"II", b"MM"):
        raise _Malformed
    order = "<" if tiff[:2] == b"II" else ">"
    (ifd0,) = struct.unpack_from(order + "I", tiff, 4)
    next_link = _walk(tiff, order, ifd0, depth=0)
    (ifd1,) = struct.unpack_from(order + "I", tiff, next_link)
    if ifd1:
        _drop_thumbnail(tiff, order, ifd1)
        struct.pack_into(order + "I", tiff, next_link, 0)


def _entries(tiff: bytearray, order: str, ifd: int) -> range:
    """The offsets of an IFD's 12-byte entries (bounds checked, the 4-byte next link included)."""
    if ifd < 8 or ifd + 2 > len(tiff):
        raise _Malformed
    (count,) = struct.unpack_from(order + "H", tiff, ifd)
    if ifd + 2 + 12 * count + 4 > len(tiff):
        raise _Malformed
    return range(ifd + 2, ifd + 2 + 12 * count, 12)


def _walk(tiff: bytearray, order: str, ifd: int, *, depth: int) -> int:
    """Set Orientation to 1 and blank the preview-carrying tags of ``ifd`` and the IFDs it points to; returns
    the offset of its next-IFD link."""
    if depth > 3:  # IFD0 → Exif → Interop is the deepest legitimate chain; more is a loop
        raise _Malformed
    entries = _entries(tiff, order, ifd)
    for entry in entries:
        tag, kind, count, value = struct.unpack_from(order + "HHII", tiff, entry)
        if tag == _ORIENTATION and depth == 0:
            struct.pack_into(order + "H", tiff, entry + 8, 1)
        elif tag in _BLANKED:
            start, size = _value_span(tiff, order, entry, kind, count)
            tiff[start : start + size] = bytes(size)
        elif tag in (_EXIF_IFD, _GPS_IFD, _INTEROP_IFD):
            _walk(tiff, order, value, depth=depth + 1)
    return entries.stop


def _value_span(tiff: bytearray, order: str, entry: int, kind: int, count: int) -> tuple[int, int]:
    size = _TYPE_SIZES.get(kind, 1) * count
    if size <= 4:
        return entry + 8, size
    (offset,) = struct.unpack_from(order + "I", tiff, entry + 8)
    if offset + size > len(tiff):
        raise _Malformed
    return offset, size


def _drop_thumbnail(tiff: bytearray, order: str, ifd1: int) -> None:
    """Zero IFD1's thumbnail (JPEG or strips), its values and the directory itself."""
    entries = _entries(tiff, order, ifd1)
    values: dict[int, list[int]] = {}
    for entry in entries:
        tag, kind, count, _ = struct.unpack_from(order + "HHII", tiff, entry)
        start, size = _value_span(tiff, order, entry, kind, count)
        if tag in (_THUMBNAIL_OFFSET, _THUMBNAIL_LENGTH, _STRIP_OFFSETS, _STRIP_BYTE_COUNTS) and kind in (3, 4):
            code = "H" if kind == 3 else "I"
            values[tag] = list(struct.unpack_from(f"{order}{count}{code}", tiff, start))
        tiff[start : start + size] = bytes(size)
    for offsets, lengths in ((_THUMBNAIL_OFFSET, _THUMBNAIL_LENGTH), (_STRIP_OFFSETS, _STRIP_BYTE_COUNTS)):
        for offset, length in zip(values.get(offsets, []), values.get(lengths, []), strict=False):
            end = min(offset + length, len(tiff))
            tiff[offset:end] = bytes(max(0, end - offset))
    tiff[ifd1 : entries.stop + 4] = bytes(entries.stop + 4 - ifd1)
