"""The contract between the store and a kind: how a value becomes bodies plus a spec, and back."""

from __future__ import annotations

import mimetypes
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Protocol

if TYPE_CHECKING:
    from mlart_prefect.manifest import Manifest
    from mlart_prefect.store import ArtifactStore


@dataclass
class BodyPayload:
    """One file a kind wants stored: its bytes in memory or in a local file.

    ``sha256`` and ``size`` may be given when the kind computed them while writing, so the store
    does not read a large file a second time. A file given by ``path`` must be a work file the
    kind owns (inside ``EncodeContext.workdir``): a local store moves it into place.
    """

    name: str
    media_type: str | None = None
    """Media type of the bytes; default: guessed from ``name``, else application/octet-stream."""
    data: bytes | None = None
    path: Path | None = None
    sha256: str | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        if (self.data is None) == (self.path is None):
            raise ValueError(f"Body {self.name!r} needs exactly one of data= or path=.")
        if self.media_type is None:
            self.media_type = mimetypes.guess_type(self.name)[0] or "application/octet-stream"


@dataclass
class Encoded:
    """The bodies, spec and primary body name a kind hands to the store for one new version."""

    bodies: list[BodyPayload]
    spec: dict[str, Any]
    primary: str
    warnings: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    """References of other versions this version was made from, added to the manifest's inputs."""


@dataclass
class EncodeContext:
    """The destination of a value being saved. Kinds that store sub-artifacts (model extra data) use it."""

    store: ArtifactStore
    project: str
    key: str
    workdir: Path
    labels: dict[str, str] = field(default_factory=dict)


class BodyReader(Protocol):
    """Read access to the verified bodies of one version."""

    def read_bytes(self, name: str | None = None) -> bytes:
        """Return a body's bytes after checking its sha256 (primary body when name is None)."""

    def open(self, name: str | None = None) -> BinaryIO:
        """Open a body for reading; the digest is checked when the stream reaches its end."""


class KindHandler(ABC):
    """The base class of a kind: writes, reads and describes its values.

    Subclasses set ``kind`` (the name stored in manifests) and implement ``encode`` and ``decode``.
    """

    kind: ClassVar[str]

    @abstractmethod
    def encode(self, value: Any, ctx: EncodeContext, **options: Any) -> Encoded:
        """Turn ``value`` into bodies and a spec.

        Raises:
            UnsupportedValueError: The value cannot be stored as this kind; nothing is written.
        """

    @abstractmethod
    def decode(self, manifest: Manifest, reader: BodyReader) -> Any:
        """Rebuild the value of a stored version."""
