"""The API's status code for each error kind: permanent → 4xx, transient → 503, a bad upstream answer → 502."""

from __future__ import annotations

import pytest

from processor.api.statuses import describe_error
from processor.envelope import Failure
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
    assert describe_error(error).status == status


def test_a_configuration_problem_is_answered_as_the_original_with_every_problem_listed() -> None:
    described = describe_error(InvalidConfiguration(["sensitive_info[0].class_name: Field required", "x: y"]))
    assert described == Failure(
        422,
        ["sensitive_info[0].class_name: Field required", "x: y"],
        "Some data in your configuration file need to be modified. Check the /available_methods/ endpoint",
        {"X-Anonymizer-Error-Kind": "invalid_configuration"},
    )
    described = describe_error(UnknownLabel("model knows only face"))
    assert (described.status, described.data) == (422, ["model knows only face"])
    assert described.headers == {"X-Anonymizer-Error-Kind": "unknown_label"}


def test_other_errors_carry_their_kind_and_problem_in_data() -> None:
    described = describe_error(ObjectTooLarge("body"))
    assert (described.data, described.message) == ({"kind": "object_too_large", "problems": ["body"]}, None)
