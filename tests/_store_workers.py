"""Functions run in child processes by the store tests (they must be importable by name)."""

from __future__ import annotations

import os
import signal
from typing import Any

from mlart_prefect.kinds.base import BodyPayload, Encoded
from mlart_prefect.store import ArtifactStore


def blob(data: bytes, name: str = "body.bin", spec: dict[str, Any] | None = None) -> Encoded:
    """Return an Encoded value with one body and ``spec`` (default: empty)."""
    return Encoded(bodies=[BodyPayload(name, data=data)], spec=spec or {}, primary=name)


def save_many(url: str, options: dict[str, Any], key: str, worker: int, count: int) -> list[int]:
    """Save ``count`` different bodies to ``key`` and return the version numbers obtained."""
    store = ArtifactStore(url, storage_options=options, project="test")
    versions = []
    for index in range(count):
        manifest = store.save(key, blob(f"worker {worker} body {index}".encode()), kind="blob")
        versions.append(manifest.version)
    return versions


def save_then_die(url: str, options: dict[str, Any], key: str) -> None:
    """Write the bodies of a new version, then kill this process before the manifest exists."""
    store = ArtifactStore(url, storage_options=options, project="test")

    def killed_before_commit(*args: Any, **kwargs: Any) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    store._commit = killed_before_commit  # type: ignore[method-assign]
    store.save(key, blob(b"orphan body " * 1000), kind="blob")
