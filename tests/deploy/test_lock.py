"""deploy/requirements.lock is the image's dependency set: every runtime dependency of pyproject.toml is pinned there
at a version its specifier admits, with hashes, and the Dockerfile installs it before the source is copied."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).parents[2]
LOCK = REPO / "deploy" / "requirements.lock"
DOCKERFILE = REPO / "deploy" / "Dockerfile"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")


def locked() -> dict[str, tuple[Version, int]]:
    """Package → (pinned version, number of hashes) from the lock file."""
    pins: dict[str, tuple[Version, int]] = {}
    current: str | None = None
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            pins[current] = (Version(match.group(3)), 0)
        elif current is not None and line.strip().startswith("--hash=sha256:"):
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(text) for text in project["dependencies"]]


def test_every_runtime_dependency_is_pinned_at_a_version_its_specifier_admits() -> None:
    pins = locked()
    problems = []
    for requirement in runtime_requirements():
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement} is not in the lock")
        elif not requirement.specifier.contains(pins[name][0], prereleases=True):
            problems.append(f"{requirement} does not admit the locked {pins[name][0]}")
    assert problems == [], "regenerate deploy/requirements.lock (command in its header): " + "; ".join(problems)


def test_every_pin_carries_hashes() -> None:
    pins = locked()
    assert len(pins) >= len(runtime_requirements())
    assert [name for name, (_, hashes) in pins.items() if hashes == 0] == []


def test_the_dockerfile_installs_the_lock_with_hashes_before_copying_the_source() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    install = text.index("--require-hashes --no-deps -r requirements.lock")
    assert text.index("COPY deploy/requirements.lock") < install < text.index("COPY processor")
    assert "pip install --no-deps /wheels/" in text
