"""Video anonymization: streamed through the frame kernels, H.264 out, audio copied, memory bounded.

``anonymize_video`` is the core (CLI); ``anonymize_video_file`` serves the HTTP API and ``anonymized_video``
the stream worker (both refuse videos above ``video.max_duration_s``).
"""

from processor.media import VIDEO_SUFFIXES
from processor.video.objects import (
    VideoOutput,
    anonymize_video_file,
    anonymized_video,
    is_video_name,
    output_suffix,
)
from processor.video.pipeline import anonymize_video
from processor.video.result import ProgressCallback, VideoProgress, VideoResult

__all__ = [
    "VIDEO_SUFFIXES",
    "ProgressCallback",
    "VideoOutput",
    "VideoProgress",
    "VideoResult",
    "anonymize_video",
    "anonymize_video_file",
    "anonymized_video",
    "is_video_name",
    "output_suffix",
]
