"""Integration fixtures: real Kafka-protocol brokers (Tansu, noida-db) and a real S3 endpoint (moto), as subprocesses.

Server fixtures are sync and session-scoped: each starts its server on a free port, waits for readiness,
yields the address and stops that PID at teardown (also when tests fail). Every test gets fresh uuid topics,
groups and buckets. Tests parametrised over ``broker`` run on both brokers; a test marked
``@pytest.mark.known_gap("end_offsets")`` is a strict xfail on the brokers that have that gap only.
"""

from __future__ import annotations

import contextlib
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import obstore
import pytest
from obstore.store import S3Store
from pydantic import SecretStr

from processor.settings import StorageSettings
from tests.integration.clouds import Cloud, azurite_argv, fake_gcs_argv, http_ready, write_service_account
from tests.integration.kafka_helpers import CONSUMER_TUNING, KNOWN_GAPS, Broker, create_topic, new_group_id
from tests.integration.servers import kafka_ready, moto_argv, moto_ready, noida_argv, start_server, tansu_argv

_HERE = Path(__file__).parent
_BROKER_FIXTURES = ("broker", "tansu", "noida")


def pytest_configure(config: pytest.Config) -> None:
    names = sorted({gap for gaps in KNOWN_GAPS.values() for gap in gaps})
    config.addinivalue_line(
        "markers", f"known_gap(name): strict xfail on the brokers with this known gap; one of {', '.join(names)}"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark everything here ``integration``; turn ``known_gap`` into a strict xfail for the affected broker."""
    for item in items:
        if _HERE not in item.path.parents:
            continue
        item.add_marker(pytest.mark.integration)
        for mark in item.iter_markers("known_gap"):
            (gap,) = mark.args
            if not any(gap in gaps for gaps in KNOWN_GAPS.values()):
                raise pytest.UsageError(f"{item.nodeid}: unknown gap {gap!r}; known: {dict(KNOWN_GAPS)}")
            name = _broker_of(item)
            if name is not None and gap in KNOWN_GAPS[name]:
                reason = f"known {name} gap {gap}: {KNOWN_GAPS[name][gap]}"
                item.add_marker(pytest.mark.xfail(reason=reason, strict=True))


def _broker_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "broker" in callspec.params:
        return str(callspec.params["broker"])
    fixtures = set(getattr(item, "fixturenames", ()))
    return next((name for name in ("tansu", "noida") if name in fixtures), None)


# --- Kafka-protocol brokers ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tansu_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a Tansu broker (memory storage)."""
    server = start_server("tansu", tansu_argv, kafka_ready, tmp_path_factory.mktemp("tansu-logs"))
    try:
        yield server.address
    finally:
        server.stop()


@pytest.fixture(scope="session")
def noida_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a noida-db Kafka service (fresh data dir)."""
    data_dir = tmp_path_factory.mktemp("noida-data")
    server = start_server(
        "noida", lambda port: noida_argv(port, data_dir), kafka_ready, tmp_path_factory.mktemp("noida-logs")
    )
    try:
        yield server.address
    finally:
        server.stop()


@pytest.fixture(scope="session", params=["tansu", "noida"])
def broker(request: pytest.FixtureRequest) -> Broker:
    """Each Kafka-protocol broker in turn (tests using it run once per broker, ids ``[tansu]``/``[noida]``)."""
    name: str = request.param
    return Broker(name, request.getfixturevalue(f"{name}_server"), CONSUMER_TUNING[name])


@pytest.fixture(scope="session")
def tansu(tansu_server: str) -> Broker:
    """Tansu alone: crash tests (SIGKILL a member, restart) must run here, see tests/README.md."""
    return Broker("tansu", tansu_server, CONSUMER_TUNING["tansu"])


@pytest.fixture(scope="session")
def noida(noida_server: str) -> Broker:
    return Broker("noida", noida_server, CONSUMER_TUNING["noida"])


@pytest.fixture
async def topic(broker: Broker) -> str:
    """A fresh topic with 3 partitions on ``broker``; for other shapes call ``create_topic(broker, n)``."""
    return await create_topic(broker, 3)


@pytest.fixture
def group_id() -> str:
    return new_group_id()


# --- S3 endpoint (moto) ----------------------------------------------------------------------------------------

S3_REGION = "us-east-1"
S3_ACCESS_KEY = "testing"  # moto accepts any credentials
S3_SECRET_KEY = "testing"  # noqa: S105


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a moto S3 server."""
    server = start_server("moto", moto_argv, moto_ready, tmp_path_factory.mktemp("moto-logs"))
    try:
        yield f"http://{server.address}"
    finally:
        server.stop()


@pytest.fixture
def storage_settings(s3_endpoint: str) -> StorageSettings:
    """Storage settings for the moto endpoint (path-style, plain HTTP), as a MinIO deployment would set them."""
    return StorageSettings(
        s3_endpoint=s3_endpoint,
        s3_region=S3_REGION,
        s3_access_key_id=SecretStr(S3_ACCESS_KEY),
        s3_secret_access_key=SecretStr(S3_SECRET_KEY),
        s3_allow_http=True,
    )


@pytest.fixture
def s3_store(s3_endpoint: str) -> Callable[[str], S3Store]:
    """``s3_store(bucket)``: a raw obstore S3Store on the moto endpoint, to put or inspect objects directly."""
    return lambda bucket: _s3_store(s3_endpoint, bucket)


def _s3_store(endpoint: str, bucket: str) -> S3Store:
    return S3Store(
        bucket,
        endpoint=endpoint,
        region=S3_REGION,
        access_key_id=S3_ACCESS_KEY,
        secret_access_key=S3_SECRET_KEY,
        client_options={"allow_http": True},
        virtual_hosted_style_request=False,
    )


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> Iterator[Callable[[], str]]:
    """Factory: ``s3_bucket()`` creates a fresh uuid bucket and returns its name; each is emptied and deleted after."""
    created: list[str] = []

    def make() -> str:
        name = f"bucket-{uuid.uuid4().hex}"
        _request("PUT", f"{s3_endpoint}/{name}")
        created.append(name)
        return name

    yield make
    for name in created:
        store = _s3_store(s3_endpoint, name)
        for chunk in obstore.list(store, chunk_size=1000):
            obstore.delete(store, [meta["path"] for meta in chunk])
        with contextlib.suppress(OSError):
            _request("DELETE", f"{s3_endpoint}/{name}")


def _request(method: str, url: str) -> None:
    request = urllib.request.Request(url, method=method)  # noqa: S310 - URL of our own moto server
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        response.read()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """An Azurite Blob server (fresh folder) as a :class:`Cloud` of scheme ``az``."""
    data_dir = tmp_path_factory.mktemp("azurite-data")
    server = start_server(
        "azurite",
        lambda port: azurite_argv(port, data_dir),
        lambda port: http_ready(f"http://127.0.0.1:{port}/"),
        tmp_path_factory.mktemp("azurite-logs"),
    )
    try:
        yield Cloud("azure", "az", f"http://{server.address}/devstoreaccount1")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def fake_gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """A fake-gcs-server (memory backend) as a :class:`Cloud` of scheme ``gs``, reached through a service-account
    file whose ``gcs_base_url`` points at it."""
    server = start_server(
        "fake-gcs-server",
        fake_gcs_argv,
        lambda port: http_ready(f"http://127.0.0.1:{port}/storage/v1/b"),
        tmp_path_factory.mktemp("fake-gcs-logs"),
    )
    endpoint = f"http://{server.address}"
    account = write_service_account(tmp_path_factory.mktemp("gcs-account") / "service-account.json", endpoint)
    try:
        yield Cloud("gcs", "gs", endpoint, account)
    finally:
        server.stop()


@pytest.fixture(params=["azure", "gcs"])
def cloud(request: pytest.FixtureRequest) -> Cloud:
    """Each cloud emulator in turn (ids ``[azure]``/``[gcs]``)."""
    fixture = {"azure": "azurite", "gcs": "fake_gcs"}[request.param]
    found: Cloud = request.getfixturevalue(fixture)
    return found
