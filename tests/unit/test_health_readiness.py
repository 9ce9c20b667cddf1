"""``/ready`` of ``anonymizer run`` means "can process now": every entry of the default configuration has a
service that serves it and answered its last discovery (pure: capabilities in, verdict out)."""

from __future__ import annotations

from processor.health import inference_readiness
from processor.inference.builtin.catalog import CATALOG, ModelInfo
from processor.inference.capabilities import Capabilities, ServiceInfo
from schemas.config import InferenceType, SensitiveInfo, UserConfiguration

DETECTOR = "http://detector:7770/"
YOLO = ModelInfo("yolo", InferenceType.detection, ("face", "license_plate"))
BUILTIN = ServiceInfo("builtin", tuple(CATALOG.values()))


def configuration(model: str = "yolo") -> UserConfiguration:
    return UserConfiguration(
        sensitive_info=[
            SensitiveInfo(
                model_name=model,
                class_name="face",
                anonymization_technique="blurring",
                inference_type=InferenceType.detection,
                anonymization_degree=1.0,
            )
        ]
    )


def test_ready_when_every_entry_routes_to_a_service_that_answers() -> None:
    capabilities = Capabilities((ServiceInfo(DETECTOR, (YOLO,)),), BUILTIN)
    ready, details = inference_readiness(capabilities, builtin=True, configuration=configuration())
    assert ready and details["inference"]["routes"] == {"face (yolo)": DETECTOR}


def test_in_process_models_are_always_a_route() -> None:
    capabilities = Capabilities((BUILTIN,), BUILTIN)
    ready, details = inference_readiness(capabilities, builtin=True, configuration=configuration("centerface"))
    assert ready and details["inference"]["routes"] == {"face (centerface)": "builtin"}


def test_not_ready_while_the_service_of_an_entry_fails_or_was_never_reached() -> None:
    failing = Capabilities((ServiceInfo(DETECTOR, (YOLO,), "connection refused"),), BUILTIN)
    ready, details = inference_readiness(failing, builtin=True, configuration=configuration())
    assert not ready and details["inference"]["routes"]["face (yolo)"].startswith("unavailable")
    never = Capabilities((ServiceInfo(DETECTOR, None, "not reached yet"),), BUILTIN)
    ready, details = inference_readiness(never, builtin=True, configuration=configuration())
    assert not ready and details["inference"]["routes"]["face (yolo)"] == "unavailable: inference_unavailable"


def test_an_entry_no_service_serves_is_shown_with_its_kind_without_holding_readiness() -> None:
    capabilities = Capabilities((ServiceInfo(DETECTOR, (YOLO,)),), BUILTIN)
    ready, details = inference_readiness(capabilities, builtin=True, configuration=configuration("missing"))
    assert ready and details["inference"]["routes"]["face (missing)"] == "unroutable: unknown_model"
    assert inference_readiness(capabilities, builtin=True)[0]  # without a configuration: as before
