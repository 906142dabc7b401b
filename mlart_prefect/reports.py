"""Results of the store's maintenance operations, ``gc`` and ``verify``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class GcReport:
    """The versions and bodies ``ArtifactStore.gc`` removed, or would remove on a dry run."""

    dry_run: bool = False
    removed_versions: list[str] = field(default_factory=list)
    removed_bodies: list[str] = field(default_factory=list)
    freed_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready data."""
        return asdict(self)


@dataclass
class VerifyReport:
    """The findings of ``ArtifactStore.verify``: counts, and each missing or corrupt body."""

    versions_checked: int = 0
    bodies_checked: int = 0
    missing: list[tuple[str, str, str]] = field(default_factory=list)
    """(reference, body name, message) of each body that is absent."""
    corrupt: list[tuple[str, str, str]] = field(default_factory=list)
    """(reference, body name, message) of each body whose size or sha256 differs."""
    bad_manifests: list[tuple[str, str]] = field(default_factory=list)
    """(URI, message) of each manifest that is not valid JSON or has an unknown schema."""

    @property
    def ok(self) -> bool:
        """True when nothing is missing, corrupt or unreadable."""
        return not (self.missing or self.corrupt or self.bad_manifests)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready data."""
        return {**asdict(self), "ok": self.ok}
