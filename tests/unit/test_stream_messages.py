"""Raw records → FrameEvents: FrameEvent JSON, AWS and MinIO bucket notifications, CloudEvents in both modes."""

from __future__ import annotations

import base64
import copy
from typing import Any

import orjson
import pytest

from processor.errors import InvalidEvent
from processor.stream.messages import parse_message
from schemas.config import UserConfiguration

# The example of AWS's "Event message structure" page (S3 User Guide), trimmed of glacierEventData.
AWS_NOTIFICATION: dict[str, Any] = {
    "Records": [
        {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-west-2",
            "eventTime": "1970-01-01T00:00:00.000Z",
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AIDAJDPLRKLG7UEXAMPLE"},
            "requestParameters": {"sourceIPAddress": "172.16.0.1"},
            "responseElements": {
                "x-amz-request-id": "C3D13FE58DE4C810",
                "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
            },
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "testConfigRule",
                "bucket": {
                    "name": "amzn-s3-demo-bucket",
                    "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                    "arn": "arn:aws:s3:::amzn-s3-demo-bucket",
                },
                "object": {
                    "key": "HappyFace.jpg",
                    "size": 1024,
                    "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                    "versionId": "096fKKXTRTtl3on89fVO.nfljtsv6qko",
                    "sequencer": "0055AED6DCD90281E5",
                },
            },
        }
    ]
}

AWS_TEST_EVENT = {
    "Service": "Amazon S3",
    "Event": "s3:TestEvent",
    "Time": "2014-10-13T15:57:02.089Z",
    "Bucket": "amzn-s3-demo-bucket",
    "RequestId": "5582815E1AEA5ADF",
    "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
}

# The shape MinIO's Kafka notification target publishes (MinIO docs, "Publish Events to Kafka").
MINIO_NOTIFICATION: dict[str, Any] = {
    "EventName": "s3:ObjectCreated:Put",
    "Key": "images/cam+7/2024-05-01+08%3A00%3A00+%2B0200.jpg",
    "Records": [
        {
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "awsRegion": "",
            "eventTime": "2019-09-10T17:41:54Z",
            "eventName": "s3:ObjectCreated:Put",
            "userIdentity": {"principalId": "AKIAIOSFODNN7EXAMPLE"},
            "requestParameters": {
                "accessKey": "AKIAIOSFODNN7EXAMPLE",
                "region": "",
                "sourceIPAddress": "192.168.56.192",
            },
            "responseElements": {
                "x-amz-request-id": "15C3249451E12784",
                "x-minio-deployment-id": "e2e0e3d0-5e5b-4e3e-8d9c-2b2b0f0d5b7a",
                "x-minio-origin-endpoint": "http://192.168.97.83:9000",
            },
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "Config",
                "bucket": {
                    "name": "images",
                    "ownerIdentity": {"principalId": "AKIAIOSFODNN7EXAMPLE"},
                    "arn": "arn:aws:s3:::images",
                },
                "object": {
                    "key": "cam+7/2024-05-01+08%3A00%3A00+%2B0200.jpg",
                    "size": 6474,
                    "eTag": "430f89010c77aa34fc8760696da62d08",
                    "contentType": "image/jpeg",
                    "userMetadata": {"content-type": "image/jpeg"},
                    "sequencer": "15C32494527B46C5",
                },
            },
            "source": {"host": "192.168.56.192", "port": "", "userAgent": "MinIO (linux; amd64) minio-go/v7.0.70"},
        }
    ],
}

CONFIGURATION = {
    "sensitive_info": [
        {
            "model_name": "centerface",
            "class_name": "face",
            "anonymization_technique": "blurring",
            "inference_type": "detection",
            "anonymization_degree": 1.0,
        }
    ]
}


def as_bytes(document: object) -> bytes:
    return orjson.dumps(document)


def test_frame_event_with_inline_configuration_and_attributes() -> None:
    body = {
        "id": "cam7-000001",
        "source": "s3://frames/cam7/000001.jpg",
        "configuration": CONFIGURATION,
        "attributes": {"vehicle": "V-12", "lap": 3, "captured_at": "2024-05-01T08:00:00Z", "night": False},
    }
    (event,) = parse_message(as_bytes(body), [])
    assert event.id == "cam7-000001"
    assert event.source == "s3://frames/cam7/000001.jpg"
    assert isinstance(event.configuration, UserConfiguration)
    assert event.configuration.sensitive_info[0].class_name == "face"
    assert event.attributes == body["attributes"]
    assert event.output is None and event.kind is None


def test_frame_event_naming_a_stored_configuration_or_none() -> None:
    (named,) = parse_message(as_bytes({"id": "a", "source": "file:///data/a.png", "configuration": "plates"}), [])
    (default,) = parse_message(as_bytes({"id": "b", "source": "memory://bucket/b.png", "kind": "frame"}), [])
    assert named.configuration == "plates"
    assert default.configuration is None


def test_aws_notification_becomes_one_event_with_a_stable_id() -> None:
    (event,) = parse_message(as_bytes(AWS_NOTIFICATION), [])
    assert event.source == "s3://amzn-s3-demo-bucket/HappyFace.jpg"
    assert event.id == "amzn-s3-demo-bucket/HappyFace.jpg@d41d8cd98f00b204e9800998ecf8427e"
    assert event.attributes["event_name"] == "ObjectCreated:Put"
    assert event.attributes["size"] == 1024
    assert parse_message(as_bytes(AWS_NOTIFICATION), []) == [event]


def test_minio_notification_keys_are_url_decoded_plus_is_space() -> None:
    (event,) = parse_message(as_bytes(MINIO_NOTIFICATION), [])
    assert event.source == "s3://images/cam 7/2024-05-01 08:00:00 +0200.jpg"
    assert event.attributes["event_name"] == "s3:ObjectCreated:Put"


def test_several_records_become_several_events_and_only_object_created_counts() -> None:
    notification = copy.deepcopy(AWS_NOTIFICATION)
    template = notification["Records"][0]
    records = []
    for index, name in enumerate(
        ["ObjectCreated:Put", "ObjectRemoved:Delete", "ObjectCreated:CompleteMultipartUpload"]
    ):
        record = copy.deepcopy(template)
        record["eventName"] = name
        record["s3"]["object"]["key"] = f"cam/{index}.jpg"
        record["s3"]["object"]["eTag"] = f"etag{index}"
        records.append(record)
    folder = copy.deepcopy(template)
    folder["s3"]["object"]["key"] = "cam/"
    notification["Records"] = [*records, folder]

    events = parse_message(as_bytes(notification), [])

    assert [event.source for event in events] == [
        "s3://amzn-s3-demo-bucket/cam/0.jpg",
        "s3://amzn-s3-demo-bucket/cam/2.jpg",
    ]
    assert len({event.id for event in events}) == 2


def test_id_falls_back_to_the_sequencer_without_an_etag() -> None:
    notification = copy.deepcopy(MINIO_NOTIFICATION)
    del notification["Records"][0]["s3"]["object"]["eTag"]
    (event,) = parse_message(as_bytes(notification), [])
    assert event.id.endswith("@15C32494527B46C5")


@pytest.mark.parametrize("document", [AWS_TEST_EVENT, {"Records": []}])
def test_test_events_and_empty_notifications_are_skipped(document: dict[str, Any]) -> None:
    assert parse_message(as_bytes(document), []) == []


def test_structured_cloud_event_with_a_frame_body_takes_the_cloud_event_id() -> None:
    envelope = {
        "specversion": "1.0",
        "type": "com.example.fleet.frame.uploaded",
        "source": "/fleet/vehicle/V-12",
        "id": "9a1b7c",
        "time": "2024-05-01T08:00:00Z",
        "datacontenttype": "application/json",
        "data": {"source": "gs://fleet/V-12/0001.jpg", "attributes": {"vehicle": "V-12"}},
    }
    (event,) = parse_message(as_bytes(envelope), [("content-type", b"application/cloudevents+json; charset=utf-8")])
    assert event.id == "9a1b7c"
    assert event.source == "gs://fleet/V-12/0001.jpg"
    assert event.attributes == {"vehicle": "V-12"}


def test_structured_cloud_event_carrying_an_s3_record_or_a_whole_notification() -> None:
    record = MINIO_NOTIFICATION["Records"][0]
    one = {"specversion": "1.0", "type": "s3.created", "source": "minio", "id": "1", "data": record}
    whole = {"specversion": "1.0", "type": "s3.created", "source": "minio", "id": "2", "data": AWS_NOTIFICATION}
    (from_record,) = parse_message(as_bytes(one), [])
    (from_notification,) = parse_message(as_bytes(whole), [])
    assert from_record.source == "s3://images/cam 7/2024-05-01 08:00:00 +0200.jpg"
    assert from_notification.source == "s3://amzn-s3-demo-bucket/HappyFace.jpg"


def test_structured_cloud_event_with_data_base64() -> None:
    data = as_bytes({"id": "own-id", "source": "az://container/a.jpg"})
    envelope = {
        "specversion": "1.0",
        "type": "t",
        "source": "/s",
        "id": "ce",
        "data_base64": base64.b64encode(data).decode(),
    }
    (event,) = parse_message(as_bytes(envelope), [])
    assert event.id == "own-id"
    assert event.source == "az://container/a.jpg"


def test_binary_cloud_event_reads_ce_headers_and_the_body() -> None:
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_type", b"com.example.frame"),
        ("ce_source", b"/fleet"),
        ("ce_id", b"evt-42"),
        ("ce_vehicle", b"V-12"),
        ("content-type", b"application/json"),
    ]
    (event,) = parse_message(as_bytes({"source": "s3://frames/a.jpg", "configuration": "faces"}), headers)
    assert event.id == "evt-42"
    assert event.source == "s3://frames/a.jpg"
    assert event.configuration == "faces"


@pytest.mark.parametrize(
    ("value", "headers", "message"),
    [
        (None, [], "message: empty"),
        (b"\xff\xfe not json", [], "message: not valid JSON"),
        (b"[1, 2]", [], "expected a JSON object, got list"),
        (as_bytes({"id": "a"}), [], "FrameEvent.source: Field required"),
        (as_bytes({"id": "a", "source": "http://evil.example/a.jpg"}), [], "FrameEvent.source: String should match"),
        (as_bytes({"id": "a", "source": "s3://b/k", "configuraton": "x"}), [], "FrameEvent.configuraton: Extra inputs"),
        (as_bytes({"id": "a", "source": "s3://b/k", "configuration": "../x"}), [], "FrameEvent.configuration.name"),
        (
            as_bytes({"id": "a", "source": "s3://b/k", "configuration": {"sensitive_info": [{"model_name": "m"}]}}),
            [],
            "FrameEvent.configuration.inline.sensitive_info.0.class_name: Field required",
        ),
        (as_bytes({"Records": [{"eventName": "ObjectCreated:Put", "s3": {}}]}), [], "S3Notification.Records.0.s3"),
        (as_bytes({"specversion": "1.0", "type": "t", "source": "s"}), [], "CloudEvent.id: Field required"),
        (
            as_bytes({"specversion": "1.0", "type": "t", "source": "s", "id": "1", "data": [1]}),
            [],
            "CloudEvent.data: must be a JSON object",
        ),
        (
            b"<frame/>",
            [("ce_specversion", b"1.0"), ("ce_type", b"t"), ("ce_source", b"s"), ("ce_id", b"1"),
             ("content-type", b"application/xml")],
            "CloudEvent.datacontenttype: 'application/xml' is not JSON",
        ),
        (b"{}", [("ce_specversion", b"1.0"), ("ce_id", b"\xff")], "header ce_id: not UTF-8"),
    ],
)  # fmt: skip
def test_bad_messages_raise_invalid_event_naming_the_problem(
    value: bytes | None, headers: list[tuple[str, bytes]], message: str
) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_message(value, headers)
    assert message in str(caught.value)
    assert caught.value.kind == "invalid_event"
