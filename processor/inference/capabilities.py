"""What the registered inference services can do, and which one serves a ``sensitive_info`` entry (pure, no I/O).

Routing rule: an explicit ``url`` must be a registered one (``builtin`` is always allowed: it is in-process, not a
host); without one, the FIRST registered URL, in registry order, whose model has the entry's name, type and label
wins. (The original API took the last one; first is predictable and lets a user put a preferred service first.)
Except for the built-in models' own names (``centerface``, ``plate_reader`` …): without an explicit ``url`` they
are served by the built-in models, registered or not, so that registering a service that lists a model of that
name (and finds nothing) cannot take over the default configuration. ``inference.remote_builtin_models`` lifts
this for deployments whose registry only its operators write (the stream processors asking ``anonymizer infer``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from processor.errors import (
    InferenceUnavailable,
    InvalidConfiguration,
    UnknownLabel,
    UnknownModel,
    UnregisteredUrl,
)
from processor.inference.builtin.catalog import BUILTIN_URL, ModelInfo
from schemas.config import InferenceType, SensitiveInfo

LabelIndex = dict[str, dict[str, dict[str, list[str]]]]
"""label → inference type → url → model names, the shape of the original API's capabilities answer."""


_USERINFO = re.compile(r"(?<=//)[^/?#]*@")


def normalize_url(url: str) -> str:
    """``HTTP://Host:8080`` → ``http://host:8080/``; ``builtin`` (any case) → ``builtin``. Credentials
    (``user:pass@``) are kept as written: only the scheme and the host are lower-cased.

    Raises :class:`InvalidConfiguration` for anything that is not an http(s) URL with a host (its message shows
    the URL redacted).
    """
    text = url.strip()
    if text.lower() == BUILTIN_URL:
        return BUILTIN_URL
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidConfiguration(
            [f"inference url {redact_url(url)!r} is neither 'builtin' nor an http(s) URL with a host"]
        )
    if parts.query or parts.fragment:
        raise InvalidConfiguration([f"inference url {redact_url(url)!r} must not have a query or fragment"])
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    userinfo, at, host = parts.netloc.rpartition("@")
    return urlunsplit((parts.scheme.lower(), userinfo + at + host.lower(), path, "", ""))


def redact_url(url: str) -> str:
    """``url`` as it may be shown (logs, events, metrics, answers): credentials replaced by ``***``
    (``http://user:pass@host/`` → ``http://***@host/``); works on malformed URLs too."""
    return _USERINFO.sub("***@", url)


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """One registered URL (as shown: credentials redacted, see :func:`redact_url`; the client keeps the real one),
    its models as last discovered (``None``: never reached yet) and its last problem."""

    url: str
    models: tuple[ModelInfo, ...] | None
    error: str | None = None

    def model(self, name: str) -> ModelInfo | None:
        return next((model for model in self.models or () if model.name == name), None)


@dataclass(frozen=True, slots=True)
class Route:
    """Where one entry is sent: a registered URL (or ``builtin``) and the model as that service describes it."""

    url: str
    model: ModelInfo


@dataclass(frozen=True, slots=True)
class Capabilities:
    """Every registered service in registry order, the built-in models, and the anonymization techniques."""

    services: tuple[ServiceInfo, ...] = ()
    builtin: ServiceInfo | None = None
    techniques: tuple[str, ...] = ()
    remote_builtin_models: bool = False  # registered URLs may serve the built-in models' names (no explicit url)

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(service.url for service in self.services)

    def by_label(self) -> LabelIndex:
        """label → type → url → models over the registered services that answered."""
        index: LabelIndex = {}
        for service in self.services:
            for model in service.models or ():
                for label in model.labels:
                    urls = index.setdefault(label, {}).setdefault(model.type.value, {})
                    urls.setdefault(service.url, []).append(model.name)
        return index

    def as_json(self) -> dict[str, object]:
        """The capabilities answer: labels index, techniques, and the state of every URL."""
        return {
            "labels": self.by_label(),
            "techniques": list(self.techniques),
            "urls": {
                service.url: {"reachable": service.models is not None, "error": service.error}
                for service in self.services
            },
        }

    def route(self, entry: SensitiveInfo) -> Route:
        """The service for ``entry``.

        Raises :class:`UnregisteredUrl` (explicit url not registered), :class:`UnknownModel`,
        :class:`UnknownLabel` (permanent), or :class:`InferenceUnavailable` when a candidate service has never
        answered, so the model may well be there (transient: retried, not dead-lettered).
        """
        what = (
            f"sensitive_info entry (label {entry.class_name!r}, model {entry.model_name!r}, "
            f"{entry.inference_type.value})"
        )
        candidates = self._candidates(entry, what)
        label_missing: list[str] = []
        wrong_type: list[str] = []
        for service in candidates:
            model = service.model(entry.model_name)
            if model is None:
                continue
            if model.type != entry.inference_type and not _boxes_from_mask(service, model, entry):
                wrong_type.append(f"{service.url} serves it as a {model.type.value} model")
            elif entry.class_name not in model.labels:
                label_missing.append(f"{service.url} knows only {', '.join(model.labels) or 'no labels'}")
            else:
                return Route(service.url, model)
        unreachable = [service for service in candidates if service.models is None]
        if unreachable:
            problems = "; ".join(f"{service.url}: {service.error or 'not reached yet'}" for service in unreachable)
            raise InferenceUnavailable(f"{what}: no reachable service serves it yet ({problems})")
        if label_missing:
            raise UnknownLabel(f"{what}: the model has no label {entry.class_name!r} ({'; '.join(label_missing)})")
        if wrong_type:
            raise UnknownModel(f"{what}: wrong inference type ({'; '.join(wrong_type)})")
        raise UnknownModel(f"{what}: no registered service serves model {entry.model_name!r}; {_available(candidates)}")

    def _candidates(self, entry: SensitiveInfo, what: str) -> tuple[ServiceInfo, ...]:
        if entry.url is None:
            if not self.remote_builtin_models and self.builtin is not None and self.builtin.model(entry.model_name):
                return (self.builtin,)
            if not self.services:
                raise UnknownModel(f"{what}: no inference URL is registered")
            return self.services
        try:
            url = redact_url(normalize_url(entry.url))  # services are known by their shown URL
        except InvalidConfiguration:
            url = redact_url(entry.url)
        if url == BUILTIN_URL and self.builtin is not None:
            return (self.builtin,)
        registered = next((service for service in self.services if service.url == url), None)
        if registered is None:
            raise UnregisteredUrl(
                f"{what}: url {url!r} is not a registered inference URL "
                f"(registered: {', '.join(self.urls) or 'none'}); register it first"
            )
        return (registered,)


def _boxes_from_mask(service: ServiceInfo, model: ModelInfo, entry: SensitiveInfo) -> bool:
    """The built-in detectors also answer a detection entry on a segmentation model (one box per region)."""
    return (
        service.url == BUILTIN_URL
        and model.type is InferenceType.segmentation
        and entry.inference_type is InferenceType.detection
    )


def _available(services: tuple[ServiceInfo, ...]) -> str:
    listed = [
        f"{service.url}: {', '.join(model.name for model in service.models or ()) or 'no models'}"
        for service in services
    ]
    return "available: " + "; ".join(listed)
