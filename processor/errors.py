"""The error taxonomy: every failure is transient (retry with backoff) or permanent (dead-letter at once).

Each class carries a stable ``kind`` string used in dead letters, logs, metrics and API answers.
"""

from __future__ import annotations

INTERNAL = "internal"
"""The error kind of a dead letter caused by a bug (an exception outside the taxonomy)."""


class ProcessorError(Exception):
    """Root of every error the processor raises on purpose."""

    kind = "processor_error"


class TransientError(ProcessorError):
    """Worth retrying: the same input may succeed later (network, 5xx, timeouts)."""

    kind = "transient"

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class InferenceUnavailable(TransientError):
    kind = "inference_unavailable"


class StorageUnavailable(TransientError):
    kind = "storage_unavailable"


class BrokerUnavailable(TransientError):
    kind = "broker_unavailable"


class PermanentError(ProcessorError):
    """Retrying cannot help: the input itself is wrong."""

    kind = "permanent"


class InsecureSettings(PermanentError):
    """Settings that would expose the API unprotected (a non-loopback host without any token)."""

    kind = "insecure_settings"


class InvalidEvent(PermanentError):
    kind = "invalid_event"


class SchemeNotAllowed(InvalidEvent):
    """A storage scheme this deployment has not enabled (``file://`` without ``storage.file_root``)."""

    kind = "scheme_not_allowed"


class OutputNotAllowed(InvalidEvent):
    """An event's ``output`` outside the configured output location, or equal to its source."""

    kind = "output_not_allowed"


class BucketNameInvalid(InvalidEvent):
    """A bucket or container name the provider's naming rules forbid (checked before it reaches a host name)."""

    kind = "bucket_name_invalid"


class OutboundRefused(PermanentError, OSError):
    """A request to a host the outbound policy refuses (loopback, private, link-local, metadata); an OSError so
    that it can leave an aiohttp resolver (see :mod:`processor.inference.outbound`)."""

    kind = "outbound_refused"


class CannotListen(PermanentError):
    """http.host/http.port cannot be listened on here (port in use, address not of this machine): a settings
    problem, exit 2 like every other."""

    kind = "cannot_listen"


class InvalidConfiguration(PermanentError):
    """A user configuration failed validation; ``problems`` lists every problem found, one line each."""

    kind = "invalid_configuration"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration: " + "; ".join(problems))
        self.problems = problems


class RegistryReadOnly(PermanentError):
    """A change of the URL registry where it cannot be written: ``inference.url_registry_read_only``, or a file
    (or its lock) on a read-only file system or without write permission, e.g. a Kubernetes ConfigMap."""

    kind = "registry_read_only"


class ObjectNotFound(PermanentError):
    kind = "object_not_found"


class ObjectTooLarge(PermanentError):
    kind = "object_too_large"


class ImageUndecodable(PermanentError):
    kind = "image_undecodable"


class ImageTooLarge(PermanentError):
    kind = "image_too_large"


class ImageTooComplex(ImageTooLarge):
    """A JPEG with more scans than media.MAX_JPEG_SCANS: within the pixel limit, but seconds of decoding."""

    kind = "image_too_complex"


class UnknownLabel(PermanentError):
    kind = "unknown_label"


class UnknownModel(PermanentError):
    kind = "unknown_model"


class UnregisteredUrl(PermanentError):
    kind = "unregistered_url"


class InferenceRejected(PermanentError):
    """The inference service answered, but with a 4xx, ``success: false`` or a malformed body."""

    kind = "inference_rejected"


class InferenceAnswerTooLarge(InferenceRejected):
    """An inference answer over ``inference.max_answer_bytes``: read no further, try no more (it would be again)."""

    kind = "inference_answer_too_large"


class VideoUndecodable(PermanentError):
    kind = "video_undecodable"


class ContainerNotAllowed(VideoUndecodable):
    """A playlist or reference format (HLS, DASH, ffconcat …): its demuxer would open other files or URLs."""

    kind = "container_not_allowed"


class VideoTooLong(PermanentError):
    """Longer than the stream's and API's limit (``video.max_duration_s``): split it upstream or use the CLI."""

    kind = "video_too_long"


def error_kinds() -> frozenset[str]:
    """Every kind a dead letter can carry: those of the taxonomy below :class:`ProcessorError`, and ``internal``."""
    kinds = {INTERNAL}
    classes: list[type[ProcessorError]] = [ProcessorError]
    while classes:
        cls = classes.pop()
        kinds.add(cls.kind)
        classes.extend(cls.__subclasses__())
    return frozenset(kinds)
