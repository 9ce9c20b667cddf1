"""The API's status code for each error of the taxonomy: permanent → 4xx, transient → 503, a bad upstream → 502.

The first matching class wins, so subclasses come before their parents.
"""

from __future__ import annotations

from processor.envelope import Failure
from processor.errors import (
    ImageTooLarge,
    ImageUndecodable,
    InferenceRejected,
    InvalidConfiguration,
    InvalidEvent,
    ObjectNotFound,
    ObjectTooLarge,
    OutboundRefused,
    PermanentError,
    ProcessorError,
    RegistryReadOnly,
    TransientError,
    UnknownLabel,
    UnknownModel,
    UnregisteredUrl,
    VideoTooLong,
    VideoUndecodable,
)

KIND_HEADER = "X-Anonymizer-Error-Kind"
ORIGINAL_CONFIGURATION_ERROR = (
    "Some data in your configuration file need to be modified. Check the /available_methods/ endpoint"
)

STATUS: tuple[tuple[type[ProcessorError], int], ...] = (
    (InvalidConfiguration, 422),  # the configuration (or a URL to register) is well-formed but wrong
    (UnknownLabel, 422),
    (UnknownModel, 422),
    (UnregisteredUrl, 422),
    (OutboundRefused, 403),  # a URL the outbound policy forbids (loopback, private, metadata)
    (ImageUndecodable, 400),
    (VideoUndecodable, 400),
    (InvalidEvent, 400),
    (ImageTooLarge, 413),
    (ObjectTooLarge, 413),
    (VideoTooLong, 413),
    (ObjectNotFound, 404),
    (RegistryReadOnly, 409),  # the URL registry is managed elsewhere (a ConfigMap): the change conflicts with that
    (InferenceRejected, 502),  # the inference service answered, but not as the contract says
    (PermanentError, 400),
    (TransientError, 503),  # an inference service (or storage) is unavailable: try again later
)


def describe_error(error: ProcessorError) -> Failure:
    """How the API answers ``error``: its status (500 for anything unmapped) and ``data`` with its ``kind`` and
    problem. A configuration problem is answered as the original did — its fixed sentence as ``error``, every
    problem a string of ``data`` — with the kind in the ``X-Anonymizer-Error-Kind`` header."""
    status = next((code for kind, code in STATUS if isinstance(error, kind)), 500)
    if isinstance(error, InvalidConfiguration | UnknownLabel | UnknownModel):
        problems = error.problems if isinstance(error, InvalidConfiguration) else [str(error)]
        return Failure(status, problems, ORIGINAL_CONFIGURATION_ERROR, {KIND_HEADER: error.kind})
    return Failure(status, {"kind": error.kind, "problems": [str(error)]})
