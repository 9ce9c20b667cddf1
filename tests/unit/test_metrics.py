"""Metric updates: one frame's result moves the frame, stage and region metrics; the exposition parses."""

from __future__ import annotations

import platform

from prometheus_client.parser import text_string_to_metric_families

from processor import __version__, metrics
from schemas.results import FrameResult


def value(name: str, **labels: str) -> float:
    found = metrics.REGISTRY.get_sample_value(name, labels)
    return found or 0.0


def test_observe_frame_records_every_known_stage_and_the_regions_per_label() -> None:
    result = FrameResult(
        width=64,
        height=48,
        format="jpeg",
        counts={"face": 2, "license_plate": 1},
        labels=[],
        regions=[],
        timings_ms={"decode": 2.0, "localize": 40.0, "total": 50.0, "made_up_stage": 1.0},
        configuration_hash="0" * 16,
    )
    before = {
        "frames": value("anonymizer_frames_anonymized_total"),
        "localize": value("anonymizer_stage_duration_seconds_sum", stage="localize"),
        "faces": value("anonymizer_regions_hidden_total", label="face"),
    }
    metrics.observe_frame(result)
    assert value("anonymizer_frames_anonymized_total") == before["frames"] + 1
    assert abs(value("anonymizer_stage_duration_seconds_sum", stage="localize") - before["localize"] - 0.040) < 1e-9
    assert value("anonymizer_regions_hidden_total", label="face") == before["faces"] + 2
    assert value("anonymizer_stage_duration_seconds_count", stage="made_up_stage") == 0


def test_frames_in_flight_go_back_down_even_on_error() -> None:
    start = value("anonymizer_frames_in_flight")
    try:
        with metrics.frame_in_flight():
            assert value("anonymizer_frames_in_flight") == start + 1
            raise RuntimeError("frame failed")
    except RuntimeError:
        pass
    assert value("anonymizer_frames_in_flight") == start


def test_the_exposition_parses_with_the_prometheus_parser() -> None:
    metrics.record_retried("inference_unavailable")
    metrics.observe_inference("http://detector:8080/", 0.25)
    metrics.record_inference_error("http://detector:8080/", "inference_unavailable")
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(body.decode())}
    assert families["anonymizer_events_retried"].type == "counter"
    assert families["anonymizer_inference_duration_seconds"].type == "histogram"
    assert families["anonymizer_consumer_lag"].type == "gauge"
    assert value("anonymizer_inference_errors_total", url="http://detector:8080/", kind="inference_unavailable") >= 1


def test_the_exposition_names_the_build_and_has_no_created_series() -> None:
    exposition = metrics.render()[0].decode()
    assert value("anonymizer_build_info", version=__version__, python=platform.python_version()) == 1.0
    assert "_created" not in exposition
    histograms = [family.name for family in text_string_to_metric_families(exposition) if family.type == "histogram"]
    assert histograms and all(name.endswith("_duration_seconds") for name in histograms), histograms


def test_url_labels_never_carry_credentials() -> None:
    metrics.observe_inference("http://user:s3cret@detector:8080/", 0.1)
    metrics.record_inference_error("https://token@detector:8443/v1/?key=abc", "inference_unavailable")
    exposition = metrics.render()[0].decode()
    assert "s3cret" not in exposition and "token@" not in exposition and "key=abc" not in exposition
    assert value("anonymizer_inference_duration_seconds_count", url="http://detector:8080/") >= 1
    assert metrics.url_label("builtin") == "builtin"
    assert metrics.url_label("http://detector:8080/") == "http://detector:8080/"


def test_each_role_exports_only_its_metrics() -> None:
    serve = {family.name for family in text_string_to_metric_families(metrics.render("serve")[0].decode())}
    infer = {family.name for family in text_string_to_metric_families(metrics.render("infer")[0].decode())}
    run = {family.name for family in text_string_to_metric_families(metrics.render("run")[0].decode())}
    stream = {"anonymizer_events_consumed", "anonymizer_consumer_lag", "anonymizer_paused_partitions"}
    assert stream <= run and not stream & serve and not stream & infer
    assert "anonymizer_frames_anonymized" in serve and "anonymizer_frames_anonymized" not in infer
    common = {"anonymizer_build_info", "anonymizer_http_requests", "anonymizer_http_requests_in_flight"}
    assert common <= run & serve & infer
