"""deploy/ read the way the container runtime reads it: the compose file (anchors, ``${VAR:-default}``), a service's
environment (the image's ``ENV`` plus the compose ``environment``), its bind mounts, and the Kubernetes manifests."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
K8S = DEPLOY / "k8s"

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_VARIABLE = re.compile(rf"\$(?:\$|\{{(?P<braced>{_NAME})(?:(?P<op>:?-)(?P<default>[^}}]*))?\}}|(?P<bare>{_NAME}))")


def load_compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


def interpolate(value: str, environ: Mapping[str, str]) -> str:
    """Compose interpolation: ``$$`` is ``$``; ``${VAR}``, ``$VAR``; ``${VAR:-default}`` (unset or empty) and
    ``${VAR-default}`` (unset)."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("bare")
        operator, default = match.group("op"), match.group("default") or ""
        found = environ.get(name)
        if operator == ":-" and not found:
            return default
        if operator == "-" and found is None:
            return default
        return found or ""

    return _VARIABLE.sub(substitute, value)


def image_environment() -> dict[str, str]:
    """``ENV`` of the Dockerfile's last stage (the image the services run), ``$PATH``-style references unexpanded."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    last_stage = re.split(r"^FROM\s", text, flags=re.MULTILINE)[-1]
    environment: dict[str, str] = {}
    for line in last_stage.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[len("ENV ") :]):
                key, _, value = pair.partition("=")
                environment[key] = value
    return environment


def service_environment(service: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """What a container of ``service`` gets as environment: the image's ANONYMIZER_* ``ENV`` (for services built
    from deploy/Dockerfile), overridden by the compose ``environment``, interpolated with ``environ`` (default:
    nothing set, so the file's defaults apply)."""
    definition = load_compose()["services"][service]
    environment = {}
    if definition.get("build", {}).get("dockerfile") == "deploy/Dockerfile":
        environment = {key: value for key, value in image_environment().items() if key.startswith("ANONYMIZER_")}
    for key, value in (definition.get("environment") or {}).items():
        environment[key] = interpolate(_text(value), environ or {})
    return environment


def bind_mounts(service: str) -> dict[str, Path]:
    """Container path → host path of the service's bind mounts (relative sources are relative to deploy/)."""
    mounts = {}
    for volume in load_compose()["services"][service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts[target] = (DEPLOY / source).resolve()
    return mounts


def load_manifests() -> list[dict[str, Any]]:
    """Every Kubernetes document in deploy/k8s/*.yaml."""
    documents = []
    for path in sorted(K8S.glob("*.yaml")):
        documents.extend(document for document in yaml.safe_load_all(path.read_text()) if document)
    return documents


def manifest(kind: str, name: str) -> dict[str, Any]:
    found = [doc for doc in load_manifests() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind} named {name} in deploy/k8s"
    return found[0]


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
