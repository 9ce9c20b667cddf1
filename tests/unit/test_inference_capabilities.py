"""Capabilities and routing (pure): URL normalisation, first registered URL wins, errors that name the entry."""

from __future__ import annotations

import pytest

from processor.errors import InferenceUnavailable, InvalidConfiguration, UnknownLabel, UnknownModel, UnregisteredUrl
from processor.inference.builtin.catalog import CATALOG, ModelInfo
from processor.inference.capabilities import Capabilities, ServiceInfo, normalize_url, redact_url
from schemas.config import InferenceType
from tests.conftest import sensitive_entry as entry

A, B, DOWN = "http://a:1/", "http://b:2/", "http://down:3/"
FACES = ModelInfo("faces", InferenceType.detection, ("face", "license_plate"))
SEG = ModelInfo("deeplab", InferenceType.segmentation, ("background", "person"))
BUILTIN = ServiceInfo("builtin", tuple(CATALOG.values()))


def capabilities(*services: ServiceInfo) -> Capabilities:
    return Capabilities(services=services, builtin=BUILTIN, techniques=("blurring",))


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("http://host:8080", "http://host:8080/"),
        ("  HTTP://Host:8080/  ", "http://host:8080/"),
        ("https://host/api/v1", "https://host/api/v1/"),
        ("BuiltIn", "builtin"),
        ("HTTP://Ops:PaSs@Host:8080", "http://Ops:PaSs@host:8080/"),  # credentials kept as written
        ("http://a:p@ss@Host/", "http://a:p@ss@host/"),
    ],
)
def test_normalize_url(raw: str, normalized: str) -> None:
    assert normalize_url(raw) == normalized


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://Ops:PaSs@host:8080/", "http://***@host:8080/"),
        ("http://a:p@ss@host/v1/", "http://***@host/v1/"),
        ("http://token@host/", "http://***@host/"),
        ("http://host:8080/", "http://host:8080/"),
        ("builtin", "builtin"),
        ("ftp://u:secret@host", "ftp://***@host"),  # malformed for us, still redacted in messages
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_refused_url_is_named_redacted() -> None:
    with pytest.raises(InvalidConfiguration) as error:
        normalize_url("ftp://ops:Secret@host/")
    assert "Secret" not in str(error.value.problems) and "***@host" in str(error.value.problems)


@pytest.mark.parametrize("raw", ["ftp://host/", "host:8080", "http:///path", "http://host/?q=1", "file:///etc/passwd"])
def test_normalize_url_refuses_what_is_not_an_http_service(raw: str) -> None:
    with pytest.raises(InvalidConfiguration, match="inference url"):
        normalize_url(raw)


def test_the_first_registered_url_serving_model_and_label_wins() -> None:
    other = ModelInfo("faces", InferenceType.detection, ("license_plate",))
    found = capabilities(ServiceInfo(A, (other,)), ServiceInfo(B, (FACES,)), ServiceInfo("http://c/", (FACES,)))
    assert found.route(entry()).url == B
    assert capabilities(ServiceInfo(A, (FACES,)), ServiceInfo(B, (FACES,))).route(entry()).url == A


def test_an_explicit_url_must_be_registered() -> None:
    found = capabilities(ServiceInfo(A, (FACES,)))
    assert found.route(entry(url="HTTP://A:1")).url == A
    with pytest.raises(UnregisteredUrl, match=r"url 'http://evil/' is not a registered inference URL \(registered: "):
        found.route(entry(url="http://evil/"))
    with pytest.raises(UnregisteredUrl, match="'not a url'"):
        found.route(entry(url="not a url"))


def test_builtin_is_allowed_explicitly_even_when_not_registered() -> None:
    found = capabilities(ServiceInfo(A, (FACES,)))
    route = found.route(entry("centerface", url="builtin"))
    assert (route.url, route.model.name) == ("builtin", "centerface")
    remote = Capabilities(services=(ServiceInfo(A, (FACES,)),), builtin=BUILTIN, remote_builtin_models=True)
    with pytest.raises(UnknownModel, match="no registered service serves model 'centerface'"):
        remote.route(entry("centerface"))  # with remote_builtin_models, without url only registered services count


def test_a_registered_url_cannot_take_over_a_builtin_model_name_without_an_explicit_url() -> None:
    impostor = ServiceInfo(A, (ModelInfo("centerface", InferenceType.detection, ("face",)),))
    assert capabilities(impostor).route(entry("centerface")).url == "builtin"
    assert capabilities(impostor, BUILTIN).route(entry("centerface")).url == "builtin"
    assert capabilities(impostor).route(entry("centerface", url=A)).url == A  # named explicitly: the user's choice
    assert capabilities(impostor, ServiceInfo(B, (FACES,))).route(entry("faces")).url == B  # other names as before
    remote = Capabilities(services=(impostor, BUILTIN), builtin=BUILTIN, remote_builtin_models=True)
    assert remote.route(entry("centerface")).url == A


def test_builtin_segmentation_model_also_answers_detection_entries_http_ones_do_not() -> None:
    assert capabilities(BUILTIN).route(entry("selfie_segmentation", "person")).url == "builtin"
    with pytest.raises(UnknownModel, match=f"{A} serves it as a segmentation model"):
        capabilities(ServiceInfo(A, (SEG,))).route(entry("deeplab", "person"))


def test_errors_name_entry_label_model_and_what_is_available() -> None:
    found = capabilities(ServiceInfo(A, (FACES, SEG)))
    with pytest.raises(UnknownLabel) as label_error:
        found.route(entry(label="cat"))
    assert str(label_error.value) == (
        "sensitive_info entry (label 'cat', model 'faces', detection): the model has no label 'cat' "
        f"({A} knows only face, license_plate)"
    )
    with pytest.raises(UnknownModel) as model_error:
        found.route(entry(model="yolo"))
    assert str(model_error.value).endswith(f"no registered service serves model 'yolo'; available: {A}: faces, deeplab")
    with pytest.raises(UnknownModel, match="no inference URL is registered"):
        capabilities().route(entry())


def test_a_service_never_reached_makes_a_miss_transient() -> None:
    found = capabilities(ServiceInfo(A, (SEG,)), ServiceInfo(DOWN, None, "connection refused"))
    with pytest.raises(InferenceUnavailable, match=f"no reachable service serves it yet \\({DOWN}: connection refused"):
        found.route(entry())
    assert found.route(entry("deeplab", "person", kind="segmentation")).url == A  # served where it is known


def test_capabilities_index_and_json() -> None:
    found = capabilities(ServiceInfo(A, (FACES,)), ServiceInfo(B, (FACES, SEG)), ServiceInfo(DOWN, None, "refused"))
    assert found.by_label() == {
        "face": {"detection": {A: ["faces"], B: ["faces"]}},
        "license_plate": {"detection": {A: ["faces"], B: ["faces"]}},
        "background": {"segmentation": {B: ["deeplab"]}},
        "person": {"segmentation": {B: ["deeplab"]}},
    }
    document = found.as_json()
    assert document["techniques"] == ["blurring"]
    assert document["urls"] == {
        A: {"reachable": True, "error": None},
        B: {"reachable": True, "error": None},
        DOWN: {"reachable": False, "error": "refused"},
    }
