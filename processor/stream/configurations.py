"""Which user configuration applies to an event: the inline one, a stored one by name, or the default."""

from __future__ import annotations

from pathlib import Path

from processor.configuration import check_techniques, default_configuration, load_configuration
from processor.errors import InvalidConfiguration
from processor.settings import StreamSettings
from schemas.config import UserConfiguration


class Configurations:
    """Resolves an event's ``configuration`` field.

    A name means ``<configurations_dir>/<name>.json`` (the event schema already refuses names that are paths);
    stored files are re-read when they change on disk. The default is read once, at construction, so a broken
    default stops the service at start instead of dead-lettering every event. Raises
    :class:`InvalidConfiguration` for a missing or invalid stored configuration (permanent: the event names it).
    """

    def __init__(self, settings: StreamSettings) -> None:
        self._directory = settings.configurations_dir
        self.default = (
            load_configuration(settings.default_configuration)
            if settings.default_configuration is not None
            else default_configuration()
        )
        self._cache: dict[str, tuple[int, UserConfiguration]] = {}

    def resolve(self, reference: UserConfiguration | str | None) -> UserConfiguration:
        if reference is None:
            return self.default
        if isinstance(reference, UserConfiguration):
            check_techniques(reference)  # the event schema checked the shape, not the technique registry
            return reference
        return self._named(reference)

    def _named(self, name: str) -> UserConfiguration:
        path = self._directory / f"{name}.json"
        if path.parent != self._directory or Path(name).name != name:
            raise InvalidConfiguration([f"configuration name {name!r} is not a plain name"])
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            raise InvalidConfiguration([f"no stored configuration {name!r} (looked for {path})"]) from None
        cached = self._cache.get(name)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        configuration = load_configuration(path)
        self._cache[name] = (stamp, configuration)
        return configuration
