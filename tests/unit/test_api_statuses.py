"""The API's status code for each error kind: permanent → 4xx, transient → 503, a bad upstream answer → 502."""

from __future__ import annotations

import pytest

from processor.api.statuses import describe_error
from processor.errors import (
    ImageTooLarge,
    ImageUndecodable,
    InferenceRejected,
    InferenceUnavailable,
    InvalidConfiguration,
    ObjectNotFound,
    ObjectTooLarge,
    PermanentError,
    ProcessorError,
    StorageUnavailable,
    UnknownLabel,
    UnregisteredUrl,
)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidConfiguration(["a", "b"]), 422),
        (UnknownLabel("no unicorns"), 422),
        (UnregisteredUrl("http://x/"), 422),
        (ImageUndecodable("not an image"), 400),
        (ImageTooLarge("200 MP"), 413),
        (ObjectTooLarge("body"), 413),
        (ObjectNotFound("s3://b/k"), 404),
        (InferenceRejected("success: false"), 502),
        (InferenceUnavailable("down"), 503),
        (StorageUnavailable("down"), 503),
        (PermanentError("other"), 400),
        (ProcessorError("outside both branches"), 500),
    ],
)
def test_status_of_each_error(error: ProcessorError, status: int) -> None:
    assert describe_error(error)[0] == status


def test_every_problem_of_an_invalid_configuration_is_listed() -> None:
    status, data = describe_error(InvalidConfiguration(["sensitive_info[0].class_name: Field required", "x: y"]))
    assert data == {
        "kind": "invalid_configuration",
        "problems": ["sensitive_info[0].class_name: Field required", "x: y"],
    }
    assert status == 422
    _, data = describe_error(UnknownLabel("model knows only face"))
    assert data == {"kind": "unknown_label", "problems": ["model knows only face"]}
