"""Colour conversion between decoded video frames and the BGR arrays the kernels work on.

8-bit 4:2:0 limited-range video of even size (nearly all camera footage) takes OpenCV's I420 conversions both
ways: fast (1–3 ms per 1080p frame) and inverse to each other up to rounding, so pixels no region touches go
out with the YUV values they came in with. They use BT.601 coefficients whatever the stream's tag; that is
harmless, since the output keeps the source's colour tags and a player converts it as it would the source.
Anything else (10-bit, 4:2:2, full range, odd sizes) goes through swscale with the frame's own colour space and
range, encoding with accurate rounding (swscale's default rounding darkens every pass by about one level).
"""

from __future__ import annotations

import av
import cv2
import numpy as np
from av.video.reformatter import ColorRange, Interpolation

from processor.frames import BgrImage

_ACCURATE = Interpolation.BILINEAR | Interpolation.ACCURATE_RND


def takes_opencv(frame: av.VideoFrame) -> bool:
    """Whether ``frame`` converts through OpenCV's I420 path (see the module docstring)."""
    return (
        frame.format.name == "yuv420p"
        and frame.color_range != ColorRange.JPEG
        and frame.width % 2 == 0
        and frame.height % 2 == 0
    )


def to_bgr(frame: av.VideoFrame, *, opencv: bool) -> BgrImage:
    """The frame's pixels as a contiguous BGR array (``opencv``: the stream's path, from :func:`takes_opencv`)."""
    if opencv and takes_opencv(frame):
        return np.asarray(cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2BGR_I420), dtype=np.uint8)
    converted = frame.reformat(format="bgr24", src_color_range=frame.color_range or None).to_ndarray()
    return np.ascontiguousarray(converted, dtype=np.uint8)


def to_yuv420p(pixels: BgrImage, *, opencv: bool, colorspace: int, color_range: int) -> av.VideoFrame:
    """An encoder-ready yuv420p frame of ``pixels`` (even width and height), by the same path as decoding."""
    if opencv:
        planes = np.asarray(cv2.cvtColor(pixels, cv2.COLOR_BGR2YUV_I420), dtype=np.uint8)
        return av.VideoFrame.from_numpy_buffer(planes, format="yuv420p")
    return av.VideoFrame.from_numpy_buffer(pixels, format="bgr24").reformat(
        format="yuv420p",
        interpolation=_ACCURATE,
        dst_colorspace=colorspace or None,
        dst_color_range=color_range or None,
    )
