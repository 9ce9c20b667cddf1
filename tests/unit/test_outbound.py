"""The outbound policy's decisions, address by address (the sockets are in tests/integration/test_outbound.py)."""

from __future__ import annotations

import ipaddress

import pytest

from processor.errors import OutboundRefused
from processor.inference.outbound import OutboundPolicy


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.8.9.10",
        "[::1]",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # AWS, GCP, Azure metadata
        "[fd00:ec2::254]",  # AWS metadata over IPv6
        "100.100.100.200",  # Alibaba metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",  # noqa: S104 - an address to refuse, not one to bind
        "[::ffff:127.0.0.1]",  # IPv4-mapped loopback
        "[fe80::1]",
        "224.0.0.1",
        "metadata.google.internal",
        "METADATA.google.internal.",
        "metadata",
    ],
)
def test_non_public_hosts_are_refused_by_default(host: str) -> None:
    policy = OutboundPolicy()
    with pytest.raises(OutboundRefused):
        policy.check_url(f"http://{host}:8080/")


@pytest.mark.parametrize("host", ["93.184.215.14", "[2606:4700::1111]", "inference.example.com"])
def test_public_addresses_and_names_pass_the_check_before_resolution(host: str) -> None:
    OutboundPolicy().check_url(f"http://{host}/")


def test_resolved_addresses_are_judged_for_names() -> None:
    policy = OutboundPolicy()
    assert policy.refusal("rebinding.example.com", ipaddress.ip_address("8.8.8.8")) is None
    refusal = policy.refusal("rebinding.example.com", ipaddress.ip_address("127.0.0.1"))
    assert refusal is not None and "ANONYMIZER_INFERENCE__ALLOWED_HOSTS" in refusal


def test_an_allowed_host_name_may_be_private_but_never_link_local_or_metadata() -> None:
    policy = OutboundPolicy(allowed_hosts=["Inference"])
    assert policy.refusal("inference", ipaddress.ip_address("172.18.0.5")) is None
    assert policy.refusal("inference.", ipaddress.ip_address("10.0.0.7")) is None
    assert policy.refusal("inference", ipaddress.ip_address("169.254.169.254")) is not None
    assert policy.refusal("inference", ipaddress.ip_address("fd00:ec2::254")) is not None
    assert policy.refusal("other", ipaddress.ip_address("172.18.0.5")) is not None


def test_an_allowed_network_opens_exactly_that_network() -> None:
    policy = OutboundPolicy(allowed_networks=[ipaddress.ip_network("127.0.0.0/8")])
    policy.check_url("http://127.0.0.1:9000/")
    assert policy.refusal("localhost", ipaddress.ip_address("127.0.0.1")) is None
    with pytest.raises(OutboundRefused):
        policy.check_url("http://10.0.0.1/")
    with pytest.raises(OutboundRefused):
        policy.check_url("http://metadata.google.internal/")
