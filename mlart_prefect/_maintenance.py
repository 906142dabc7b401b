"""Store maintenance: garbage collection and verification, behind ArtifactStore.gc and .verify."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

from mlart_prefect._storage import HASH_CHUNK
from mlart_prefect.errors import IntegrityError, ManifestError, NotFoundError
from mlart_prefect.reports import GcReport, VerifyReport

if TYPE_CHECKING:
    from mlart_prefect.manifest import Manifest
    from mlart_prefect.store import ArtifactStore

def collect_project(
    store: ArtifactStore,
    project: str,
    keep_last: int | None,
    dry_run: bool,
    min_age: float,
    report: GcReport,
) -> None:
    """Remove one project's old versions (with ``keep_last``) and unreferenced bodies."""
    referenced: set[str] = set()
    for key in store.keys(project):
        try:
            manifests = store.versions(key, project=project)
        except NotFoundError:
            continue
        tagged = set(store.tags(key, project=project).values())
        for index, manifest in enumerate(manifests):
            if keep_last is not None and index >= keep_last and manifest.version not in tagged:
                report.removed_versions.append(manifest.ref)
                if not dry_run:
                    store.delete(manifest.reference)
                continue
            referenced.update(body.sha256 for body in manifest.bodies)

    now = datetime.now(timezone.utc).timestamp()
    for path, info in store.location.find(f"{project}/objects"):
        digest = path.rsplit("/", 1)[-1]
        if digest in referenced:
            continue
        if now - store.location.modified(info) < min_age:
            continue
        report.removed_bodies.append(store.location.uri(path))
        report.freed_bytes += int(info.get("size") or 0)
        if not dry_run:
            store.location.remove(path)


def verify_project(store: ArtifactStore, project: str, report: VerifyReport) -> None:
    """Check every version of one project, adding what is wrong to ``report``."""
    for key in store.keys(project):
        key_dir = store._key_dir(project, key)
        for version in store._version_numbers(key_dir):
            path = store._manifest_path(project, key, version)
            try:
                manifest = store._parse_manifest(store.location.read(path), store.location.uri(path))
            except FileNotFoundError:
                continue
            except ManifestError as exc:
                report.bad_manifests.append((store.location.uri(path), str(exc)))
                continue
            _verify_manifest(store, manifest, report)


def _verify_manifest(store: ArtifactStore, manifest: Manifest, report: VerifyReport) -> None:
    report.versions_checked += 1
    for body in manifest.bodies:
        report.bodies_checked += 1
        try:
            with store.open(manifest, body.name) as stream:
                while stream.read(HASH_CHUNK):
                    pass
        except IntegrityError as exc:
            target = report.missing if "is missing" in str(exc) else report.corrupt
            target.append((manifest.ref, body.name, str(exc)))
