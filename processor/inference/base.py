"""What every localizer (HTTP inference client or built-in detector) answers.

The pipeline cannot tell an HTTP service from a built-in model: both answer ``localize`` with a
:class:`processor.frames.Localization` in absolute pixel coordinates of the decoded frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from processor.frames import Frame, Localization
from schemas.config import SensitiveInfo


class Localizer(Protocol):
    """Finds the regions of one ``sensitive_info`` entry in a frame."""

    async def localize(self, frame: Frame, entry: SensitiveInfo) -> Localization:
        """Raises :class:`processor.errors.PermanentError` subclasses for bad requests (unknown model or label)
        and :class:`processor.errors.TransientError` subclasses when the service is unavailable."""
        ...

    def needs_encoded_frames(self, entries: Sequence[SensitiveInfo]) -> bool:
        """Whether localizing ``entries`` reads ``Frame.encoded`` (an HTTP service uploads the bytes; a built-in model
        reads the pixels only). A caller that decodes frames itself (video) encodes a copy only when this is True."""
        ...
