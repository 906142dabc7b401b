"""Readers of stored bodies: a stream that checks a body's sha256, and the BodyReader of a version."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, BinaryIO

from mlart_prefect.errors import IntegrityError

if TYPE_CHECKING:
    from mlart_prefect.manifest import BodyRef, Manifest
    from mlart_prefect.store import ArtifactStore


class VerifyingReader:
    """A read-only stream that checks size and sha256 once the whole body has been read."""

    def __init__(self, raw: BinaryIO, body: BodyRef, ref: str, where: str) -> None:
        self._raw = raw
        self._body = body
        self._ref = ref
        self._where = where
        self._digest = hashlib.sha256()
        self._size = 0
        self._checked = False

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._digest.update(data)
        self._size += len(data)
        if not data or size is None or size < 0:
            self._check()
        return data

    def _check(self) -> None:
        if self._checked:
            return
        self._checked = True
        if self._size != self._body.size or self._digest.hexdigest() != self._body.sha256:
            raise IntegrityError(
                f"Body {self._body.name!r} of {self._ref} is corrupt: expected "
                f"{self._body.size} bytes with sha256 {self._body.sha256}, read {self._size} "
                f"bytes with sha256 {self._digest.hexdigest()} at {self._where}."
            )

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> VerifyingReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class VersionReader:
    """BodyReader over one version of a store."""

    def __init__(self, store: ArtifactStore, manifest: Manifest) -> None:
        self._store = store
        self._manifest = manifest

    def read_bytes(self, name: str | None = None) -> bytes:
        return self._store.read_bytes(self._manifest, name)

    def open(self, name: str | None = None) -> BinaryIO:
        return self._store.open(self._manifest, name)
