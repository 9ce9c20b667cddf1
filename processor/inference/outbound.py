"""The outbound policy: which hosts the service may send HTTP requests to (inference URLs, ``/set_url``).

A URL registered by an API client must not turn the service into a proxy into its own network: loopback,
private, link-local (cloud metadata at 169.254.169.254), carrier-grade NAT, multicast and reserved addresses are
refused unless ``inference.allowed_networks`` lists them, or the URL's host name is in
``inference.allowed_hosts`` (compose and Kubernetes service names, which resolve to private addresses). Metadata
addresses and names stay refused for allowed host names too: only a network entry can open them.

The check applies to the address actually connected to: IP literals before the request, host names in the
resolver of the session's connector (so a name that resolves to a public address for the check and to a
private one for the connection — DNS rebinding — cannot get through). Redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from processor.errors import OutboundRefused

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data"})
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)


class OutboundPolicy:
    """Decides whether a host (and the address it resolved to) may be contacted; pure, no I/O.

    :param allowed_hosts: host names (or IP literals) whose non-public addresses are allowed (case-insensitive,
        exact; link-local and metadata addresses excepted).
    :param allowed_networks: networks allowed whatever the host name (e.g. ``127.0.0.0/8`` for local tests).
    """

    def __init__(self, allowed_hosts: Iterable[str] = (), allowed_networks: Iterable[IpNetwork] = ()) -> None:
        self.allowed_hosts = frozenset(_host_key(host) for host in allowed_hosts)
        self.allowed_networks = tuple(allowed_networks)

    def refusal(self, host: str, address: IpAddress | None = None) -> str | None:
        """Why ``host`` (resolved to ``address``; None = not resolved yet) may not be contacted, or None."""
        name = _host_key(host)
        literal = _literal(name)
        address = _unmapped(address if address is not None else literal) if (address or literal) else None
        if address is not None and any(address in network for network in self.allowed_networks):
            return None
        if name in METADATA_HOSTS:
            return f"{host} is a cloud metadata service"
        if address is None:
            return None  # a name: judged again once resolved
        if address in METADATA_ADDRESSES or address.is_link_local:
            return f"{host} ({address}) is a link-local or metadata address"
        if (address.is_global and not address.is_multicast) or name in self.allowed_hosts:
            return None
        return (
            f"{host} ({address}) is a loopback, private or reserved address: allow it with "
            "ANONYMIZER_INFERENCE__ALLOWED_HOSTS or ANONYMIZER_INFERENCE__ALLOWED_NETWORKS"
        )

    def check_url(self, url: str) -> None:
        """Raises :class:`OutboundRefused` when ``url``'s host is refused before resolution (IP literals,
        metadata names); host names are checked again on their resolved addresses by :class:`PolicyResolver`."""
        host = URL(url).host
        if host is None:
            raise OutboundRefused(f"{url}: no host")
        problem = self.refusal(host)
        if problem is not None:
            raise OutboundRefused(f"outbound request refused: {problem}")


class PolicyResolver(AbstractResolver):
    """The default resolver, keeping only the addresses the policy allows; none left → :class:`OutboundRefused`
    (an ``OSError``, which aiohttp wraps in ``ClientConnectorError``: see :func:`refused_by_policy`)."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._resolver = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        problems: list[str] = []
        allowed: list[ResolveResult] = []
        for result in found:
            problem = self._policy.refusal(host, ipaddress.ip_address(result["host"]))
            if problem is None:
                allowed.append(result)
            else:
                problems.append(problem)
        if not allowed:
            raise OutboundRefused("outbound request refused: " + "; ".join(dict.fromkeys(problems)))
        return allowed

    async def close(self) -> None:
        await self._resolver.close()


def outbound_session(policy: OutboundPolicy, **options: Any) -> aiohttp.ClientSession:
    """An HTTP session whose connections go only where ``policy`` allows (open it inside a running loop)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=PolicyResolver(policy)), **options)


def refused_by_policy(error: BaseException) -> OutboundRefused | None:
    """The policy refusal inside an aiohttp connection error, if that is what it is."""
    if isinstance(error, aiohttp.ClientConnectorError) and isinstance(error.os_error, OutboundRefused):
        return error.os_error
    return None


def _host_key(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


def _literal(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _unmapped(address: IpAddress | None) -> IpAddress | None:
    """``::ffff:127.0.0.1`` is 127.0.0.1 (and judged as such)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
