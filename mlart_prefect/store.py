"""ArtifactStore: versioned, content-addressed artifacts on any fsspec location."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from pydantic import ValidationError
from pydantic_core import to_json

from mlart_prefect._readers import VerifyingReader, VersionReader
from mlart_prefect._staging import StagingFolders
from mlart_prefect import _maintenance
from mlart_prefect._storage import HASH_CHUNK, StorageLocation, sha256_file
from mlart_prefect.errors import (
    IntegrityError,
    InvalidNameError,
    KindMismatchError,
    ManifestError,
    MlartError,
    NotFoundError,
)
from mlart_prefect.manifest import (
    SCHEMA_VERSION,
    SUPPORTED_SCHEMA_VERSIONS,
    BodyRef,
    Manifest,
    Producer,
    Reference,
    login_name,
    validate_name,
)
from mlart_prefect.reports import GcReport, VerifyReport

if TYPE_CHECKING:
    from mlart_prefect.kinds.base import BodyPayload, Encoded

logger = logging.getLogger(__name__)

MAX_VERSION_ATTEMPTS = 10_000
RECENT_MANIFESTS = 256
"""Latest manifests a store object keeps per key, so repeated saves of a key skip one read."""
RESERVED_TAGS = frozenset({"latest"})


def _library_version() -> str:
    from mlart_prefect import __version__

    return __version__


def _clean_labels(labels: dict[str, Any] | None) -> dict[str, str]:
    cleaned: dict[str, str] = {}
    for name, value in (labels or {}).items():
        if not isinstance(name, str) or not name:
            raise InvalidNameError(f"Invalid label name {name!r}: expected a non-empty string.")
        if not isinstance(value, (str, int, float, bool)):
            raise InvalidNameError(
                f"Invalid value {value!r} for label {name!r}: labels map strings to strings "
                "(numbers and booleans are converted)."
            )
        cleaned[name] = str(value)
    return cleaned


class ArtifactStore:
    """Versioned artifacts of one or more projects on one fsspec location.

    Layout under the store URL::

        <project>/objects/<sha256[:2]>/<sha256>         bodies, written once
        <project>/artifacts/<key>/versions/<n>.json     manifests, created exclusively
        <project>/artifacts/<key>/tags/<tag>.json       movable tags

    Features:

    - bodies are content-addressed: identical bytes are stored once per project;
    - a version exists once its manifest is created with an exclusive create, so a crash
      leaves only unreferenced bodies, which ``gc`` removes;
    - version numbers come from exclusive creates with retry, so concurrent writers in threads,
      processes or machines never share or skip a number;
    - saving what the latest version already contains returns that version (idempotent retries);
    - every read checks the body's sha256 and size.

    Args:
        url: A local folder or fsspec URL (``s3://bucket/prefix``, ``memory://name``). Default:
            ``MLART_STORE_URL``, else ``~/.mlart/store``.
        storage_options: Keyword arguments for the fsspec filesystem (default:
            ``MLART_STORAGE_OPTIONS``), e.g. ``{"endpoint_url": "http://127.0.0.1:9000"}``.
        project: Project used when a call names none (default: ``MLART_PROJECT`` or "default").
        fsync: On a local store, flush each body, manifest and tag to the disk before a save
            returns (default: ``MLART_FSYNC``, off). Without it a save is safe against the
            writing process dying at any point, but an operating-system crash or power loss
            can lose or empty the files of the last seconds' saves.

    The URL is checked at first use, and a store that cannot be used raises
    ``StoreUnavailableError`` naming the URL and the cause. A local folder is created by the
    first save, so reading through a mistyped path creates nothing.

    Example:
        ```python
        store = ArtifactStore("s3://team-bucket/artifacts")
        manifest = store.get("churn/training-data@production")
        print(manifest.ref, manifest.bodies[0].uri)
        ```
    """

    def __init__(
        self,
        url: str | os.PathLike[str] | None = None,
        *,
        storage_options: dict[str, Any] | None = None,
        project: str | None = None,
        fsync: bool | None = None,
    ) -> None:
        from mlart_prefect.settings import get_settings

        settings = get_settings()
        options = settings.storage_options if storage_options is None else storage_options
        from_environment = url is None and "MLART_STORE_URL" in os.environ
        self.location = StorageLocation(
            str(url) if url is not None else settings.store_url,
            options,
            fsync=settings.fsync if fsync is None else fsync,
            origin="MLART_STORE_URL" if from_environment else None,
        )
        self.project = validate_name(project or settings.project, "project")
        self._staging = StagingFolders(self.location.local_staging_parent)
        # Key folder -> the newest manifest this object wrote or read there. Manifests never
        # change and numbers are never reused, so it is valid while the listing's highest
        # version is its version.
        self._recent: OrderedDict[str, Manifest] = OrderedDict()

    @classmethod
    def from_settings(cls) -> ArtifactStore:
        """Create the store described by the ``MLART_*`` settings."""
        return cls()

    @property
    def url(self) -> str:
        """The store URL as given (local paths made absolute)."""
        return self.location.url

    def __repr__(self) -> str:
        return f"ArtifactStore({self.url!r}, project={self.project!r})"

    # -- paths -------------------------------------------------------------------------------

    def _project(self, project: str | None) -> str:
        return self.project if project is None else validate_name(project, "project")

    def _key_dir(self, project: str, key: str) -> str:
        return f"{project}/artifacts/{validate_name(key, 'key')}"

    def _manifest_path(self, project: str, key: str, version: int) -> str:
        return f"{self._key_dir(project, key)}/versions/{version}.json"

    def _tag_path(self, project: str, key: str, tag: str) -> str:
        return f"{self._key_dir(project, key)}/tags/{validate_name(tag, 'tag')}.json"

    @staticmethod
    def _object_path(project: str, sha256: str) -> str:
        return f"{project}/objects/{sha256[:2]}/{sha256}"

    # -- saving ------------------------------------------------------------------------------

    @contextmanager
    def staging_dir(self) -> Iterator[Path]:
        """Yield an empty local work folder for bodies about to be saved, emptied afterwards.

        On a local store the folder is inside the store, so bodies are moved into place by a
        rename instead of a copy. Later saves through this store object reuse the folder (see
        ``StagingFolders``).
        """
        with self._staging.folder() as folder:
            yield folder

    def save(
        self,
        key: str,
        encoded: Encoded,
        *,
        kind: str,
        project: str | None = None,
        labels: dict[str, Any] | None = None,
        owner: str | None = None,
        description: str | None = None,
        producer: Producer | None = None,
        inputs: Iterable[str | Reference | Manifest] | None = None,
    ) -> Manifest:
        """Store bodies and a spec as a new version of ``key`` and return its manifest.

        Bodies are written first and the manifest last, with an exclusive create. When the
        key's latest version has the same bodies, spec, labels, description and inputs, that
        version is returned and nothing is written.

        Args:
            key: The artifact's name inside the project.
            encoded: Bodies, spec and primary body name, as a kind handler produces them.
            kind: The kind name; a key keeps one kind for its whole life.
            project: Project of the key (default: the store's project).
            labels: String labels to search by (numbers and booleans are converted to text).
            owner: Owner name (default: the producer's owner, else the current user).
            description: Free text shown with the version.
            producer: The run that made this version (default: outside any run).
            inputs: Versions this one was made from.

        Raises:
            InvalidNameError: The key, project, a label or a body name is invalid.
            KindMismatchError: The key already contains versions of another kind.
            NotFoundError: An input names a version that does not exist.
            StoreUnavailableError: The store cannot be used.
        """
        project = self._project(project)
        key_dir = self._key_dir(project, key)
        labels = _clean_labels(labels)
        producer = producer or Producer()
        input_refs = sorted({self._input_ref(item, project) for item in inputs or ()})
        owner = owner or producer.owner or login_name()

        # One listing serves both the latest version and the first number to try.
        numbers, highest = self._listed_versions(key_dir)
        recent = self._recent.get(key_dir)
        if recent is not None and numbers and recent.version == numbers[-1]:
            latest: Manifest | None = recent
        else:
            latest = self._latest_of(project, key, numbers)
            if latest is not None:
                self._remember(key_dir, latest)
        if latest is not None and latest.kind != kind:
            raise KindMismatchError(
                f"Key {project}/{key} contains {latest.kind} artifacts; cannot save a {kind} "
                "version there. Use another key."
            )

        bodies = [self._write_body(project, payload) for payload in encoded.bodies]
        if latest is not None and self._same_metadata(
            latest, bodies, encoded, labels, description, input_refs
        ):
            # Compare the spec with the stored manifest: a remembered one contains the spec as
            # the kind built it, not in the JSON form read back.
            try:
                stored: Manifest | None = self._read_manifest(project, key, latest.version)
            except (NotFoundError, ManifestError):
                stored = None  # deleted or damaged since the listing: save a new version
            if stored is not None and stored.spec == json.loads(to_json(encoded.spec)):
                logger.info("%s is unchanged; returning %s", key, stored.ref)
                self._remember(key_dir, stored)
                return stored

        manifest = Manifest(
            schema_version=SCHEMA_VERSION,
            project=project,
            key=key,
            version=0,
            kind=kind,
            labels=labels,
            owner=owner,
            description=description,
            bodies=bodies,
            primary=encoded.primary,
            producer=producer,
            inputs=input_refs,
            spec=encoded.spec,
            library_version=_library_version(),
        )
        manifest = self._commit(manifest, key_dir, highest + 1)
        self._remember(key_dir, manifest)
        if logger.isEnabledFor(logging.INFO):
            logger.info("Stored %s at %s", manifest.ref, manifest.body().uri if bodies else key_dir)
        return manifest

    def _input_ref(self, item: str | Reference | Manifest, project: str) -> str:
        """Return the pinned reference of an input, checking that the version exists."""
        if isinstance(item, Manifest):
            return item.ref
        reference = Reference.parse(item, project=project)
        if reference.version is None:
            return self.get(reference).ref
        # Inputs are mostly versions this object has just saved upstream, so the manifest it
        # remembers for the key spares a request to the store.
        recent = self._recent.get(self._key_dir(reference.project, reference.key))
        known = recent is not None and recent.version == reference.version
        path = self._manifest_path(reference.project, reference.key, reference.version)
        if not known and not self.location.exists(path):
            raise self._not_found(reference.project, reference.key, f"version {reference.version}")
        return str(reference)

    @staticmethod
    def _same_metadata(
        latest: Manifest,
        bodies: list[BodyRef],
        encoded: Encoded,
        labels: dict[str, str],
        description: str | None,
        inputs: list[str],
    ) -> bool:
        """Whether ``latest`` has the same bodies, labels, description and inputs (not spec)."""

        def digests(items: Iterable[BodyRef]) -> list[tuple[str, str]]:
            return sorted((b.name, b.sha256) for b in items)

        return (
            digests(latest.bodies) == digests(bodies)
            and latest.primary == encoded.primary
            and latest.labels == labels
            and latest.description == description
            and latest.inputs == inputs
        )

    def _write_body(self, project: str, payload: BodyPayload) -> BodyRef:
        validate_name(payload.name, "body name")
        if payload.data is not None:
            sha256 = payload.sha256 or hashlib.sha256(payload.data).hexdigest()
            size = len(payload.data)
        elif payload.sha256 is not None and payload.size is not None:
            sha256, size = payload.sha256, payload.size
        else:
            assert payload.path is not None
            sha256, size = sha256_file(payload.path)

        path = self._object_path(project, sha256)
        if not self.location.exists(path):
            logger.debug("Writing body %s (%d bytes) to %s", payload.name, size, path)
            if payload.data is not None:
                self.location.write_atomic(path, payload.data)
            else:
                assert payload.path is not None
                self.location.put_file_atomic(path, payload.path)
        return BodyRef(
            name=payload.name,
            path=path.split("/", 1)[1],
            uri=self.location.uri(path),
            sha256=sha256,
            size=size,
            media_type=payload.media_type,
        )

    def _commit(self, manifest: Manifest, key_dir: str, version: int) -> Manifest:
        """Create the manifest as ``version``, or the next free number when it is taken."""
        for _ in range(MAX_VERSION_ATTEMPTS):
            manifest = manifest.model_copy(
                update={"version": version, "created": datetime.now(timezone.utc)}
            )
            data = manifest.model_dump_json().encode()
            try:
                self.location.create_exclusive(f"{key_dir}/versions/{version}.json", data)
                return manifest
            except FileExistsError:
                logger.debug("Version %d of %s was taken; retrying", version, key_dir)
                listed = self._version_numbers(key_dir, include_deleted=True)
                version = max(version, *listed) + 1 if listed else version + 1
        raise MlartError(
            f"Could not allocate a version for {key_dir} after {MAX_VERSION_ATTEMPTS} attempts."
        )

    # -- reading -----------------------------------------------------------------------------

    def _version_numbers(self, key_dir: str, *, include_deleted: bool = False) -> list[int]:
        """Return version numbers found in a key's folder, sorted numerically."""
        numbers, deleted = self._list_versions(key_dir)
        if include_deleted:
            numbers = numbers | deleted
        return sorted(numbers)

    def _listed_versions(self, key_dir: str) -> tuple[list[int], int]:
        """Return a key's versions, sorted numerically, and the highest number ever used.

        Deleted versions keep their number taken (0 when the key has none).
        """
        numbers, deleted = self._list_versions(key_dir)
        return sorted(numbers), max(numbers | deleted, default=0)

    def _list_versions(self, key_dir: str) -> tuple[set[int], set[int]]:
        numbers: set[int] = set()
        deleted: set[int] = set()
        for name in self.location.list_names(f"{key_dir}/versions"):
            stem, _, suffix = name.partition(".")
            if stem.isdigit() and suffix == "json":
                numbers.add(int(stem))
            elif stem.isdigit() and suffix == "deleted":
                deleted.add(int(stem))
        return numbers, deleted

    def _parse_manifest(self, data: bytes, where: str) -> Manifest:
        try:
            manifest = Manifest.model_validate_json(data)
        except ValueError:
            manifest = None  # diagnosed below, with a message that names the fault
        if manifest is not None and manifest.schema_version in SUPPORTED_SCHEMA_VERSIONS:
            return manifest

        try:
            raw = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestError(f"Manifest {where} is not valid JSON: {exc}") from exc
        schema = raw.get("schema_version") if isinstance(raw, dict) else None
        if schema not in SUPPORTED_SCHEMA_VERSIONS:
            raise ManifestError(
                f"Manifest {where} has unknown schema version {schema!r}; this library reads "
                f"versions {sorted(SUPPORTED_SCHEMA_VERSIONS)}. Upgrade mlart-prefect."
            )
        try:
            return Manifest.model_validate(raw)
        except ValidationError as exc:
            raise ManifestError(f"Manifest {where} is invalid: {exc}") from exc

    def _read_manifest(self, project: str, key: str, version: int) -> Manifest:
        path = self._manifest_path(project, key, version)
        try:
            data = self.location.read(path)
        except FileNotFoundError:
            raise self._not_found(project, key, f"version {version}") from None
        return self._parse_manifest(data, self.location.uri(path))

    def _latest_manifest(self, project: str, key: str) -> Manifest | None:
        return self._latest_of(project, key, self._version_numbers(self._key_dir(project, key)))

    def _latest_of(self, project: str, key: str, numbers: list[int]) -> Manifest | None:
        """Return the newest readable manifest among the listed version numbers."""
        for version in reversed(numbers):
            try:
                return self._read_manifest(project, key, version)
            except ManifestError as exc:
                logger.warning("Skipping unreadable manifest: %s", exc)
            except NotFoundError:
                continue  # deleted between the listing and the read
        return None

    def _remember(self, key_dir: str, manifest: Manifest) -> None:
        self._recent[key_dir] = manifest
        self._recent.move_to_end(key_dir)
        while len(self._recent) > RECENT_MANIFESTS:
            self._recent.popitem(last=False)

    def _not_found(self, project: str, key: str, what: str) -> NotFoundError:
        numbers = self._version_numbers(self._key_dir(project, key))
        if not numbers:
            keys = self.keys(project)
            hint = f"keys in project {project!r}: {', '.join(keys[:20]) or 'none'}"
            return NotFoundError(
                f"Artifact {project}/{key} not found in {self.url}; {hint}.{self._store_hint(keys)}"
            )
        listed = ", ".join(str(n) for n in numbers[-20:])
        return NotFoundError(f"{project}/{key} has no {what}; existing versions: {listed}.")

    def _store_hint(self, keys: list[str]) -> str:
        """Explain an empty project of a local store: a mistyped path or a project folder."""
        if keys or not self.location.local:
            return ""
        root = Path(self.url)
        if self.location.local_root_missing():
            return " The store folder does not exist: check the path."
        if (root / "artifacts").is_dir() and (root / "objects").is_dir():
            return (
                f" {root} looks like the folder of one project: use its parent, {root.parent}, "
                "as the store."
            )
        return ""

    def get(self, ref: str | Reference, *, project: str | None = None) -> Manifest:
        """Return the manifest of ``key``, ``key:3``, ``key@tag`` or ``project/key:3``.

        A reference without version or tag means the latest version.

        Raises:
            InvalidReferenceError, InvalidNameError: The reference is malformed.
            NotFoundError: The key, version or tag does not exist; the message lists what does.
        """
        reference = Reference.parse(ref, project=self._project(project))
        project, key = reference.project, reference.key
        if reference.tag is not None:
            try:
                tag_data = json.loads(self.location.read(self._tag_path(project, key, reference.tag)))
            except FileNotFoundError:
                tags = ", ".join(sorted(self.tags(key, project=project))) or "none"
                raise NotFoundError(
                    f"{project}/{key} has no tag {reference.tag!r}; its tags: {tags}."
                ) from None
            return self._read_manifest(project, key, int(tag_data["version"]))
        if reference.version is not None:
            return self._read_manifest(project, key, reference.version)
        latest = self._latest_manifest(project, key)
        if latest is None:
            raise self._not_found(project, key, "versions")
        return latest

    def reader(self, manifest: Manifest) -> VersionReader:
        """Return a BodyReader over the bodies of ``manifest``."""
        return VersionReader(self, manifest)

    def _body_location(self, manifest: Manifest, name: str | None) -> tuple[BodyRef, str]:
        body = manifest.body(name)
        path = f"{manifest.project}/{body.path}"
        return body, path

    def body_uri(self, manifest: Manifest, name: str | None = None) -> str:
        """Return where this store reads a body from (default: the primary body).

        The manifest's ``BodyRef.uri`` is where the body was written. They differ once a
        store has been copied or moved, or is opened under another URL.
        """
        _, path = self._body_location(manifest, name)
        return self.location.uri(path)

    def read_bytes(self, manifest: Manifest, name: str | None = None) -> bytes:
        """Return a body's bytes after checking its size and sha256.

        Args:
            manifest: The version.
            name: The body's name (default: the primary body).

        Raises:
            IntegrityError: The body is missing, or its size or digest differs from the manifest.
        """
        body, path = self._body_location(manifest, name)
        try:
            data = self.location.read(path)
        except FileNotFoundError:
            raise IntegrityError(
                f"Body {body.name!r} of {manifest.ref} is missing at {self.location.uri(path)}."
            ) from None
        digest = hashlib.sha256(data).hexdigest()
        if len(data) != body.size or digest != body.sha256:
            raise IntegrityError(
                f"Body {body.name!r} of {manifest.ref} is corrupt: expected {body.size} bytes "
                f"with sha256 {body.sha256}, read {len(data)} bytes with sha256 {digest} at "
                f"{self.location.uri(path)}."
            )
        return data

    def open(self, manifest: Manifest, name: str | None = None) -> BinaryIO:
        """Open a body for streaming reads; its digest is checked when the end is reached.

        Raises:
            IntegrityError: The body is missing, or (at the end of the stream) corrupt.
        """
        body, path = self._body_location(manifest, name)
        where = self.location.uri(path)
        try:
            raw = self.location.open_read(path)
        except FileNotFoundError:
            raise IntegrityError(
                f"Body {body.name!r} of {manifest.ref} is missing at {where}."
            ) from None
        return VerifyingReader(raw, body, manifest.ref, where)  # type: ignore[return-value]

    def download(self, manifest: Manifest, destination: str | os.PathLike[str], name: str | None = None,
                 *, progress: Any = None) -> Path:
        """Copy a verified body to a local file; a corrupt body leaves no file behind.

        Args:
            progress: Optional callable receiving the number of bytes copied by each chunk.

        Raises:
            IntegrityError: The body is missing or corrupt.
        """
        destination = Path(destination)
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_name(destination.name + ".partial")
        try:
            with self.open(manifest, name) as source, open(partial, "wb") as target:
                while chunk := source.read(HASH_CHUNK):
                    target.write(chunk)
                    if progress is not None:
                        progress(len(chunk))
            os.replace(partial, destination)
        finally:
            partial.unlink(missing_ok=True)
        return destination

    # -- listing and search ------------------------------------------------------------------

    def projects(self) -> list[str]:
        """Return the projects that have a folder in the store."""
        return sorted(
            name for name in self.location.list_names("") if self._is_valid_name(name)
        )

    @staticmethod
    def _is_valid_name(name: str) -> bool:
        try:
            validate_name(name)
        except InvalidNameError:
            return False
        return True

    def keys(self, project: str | None = None) -> list[str]:
        """Return the keys of a project, sorted."""
        project = self._project(project)
        names = self.location.list_names(f"{project}/artifacts")
        return sorted(name for name in names if self._is_valid_name(name))

    def versions(self, key: str, *, project: str | None = None) -> list[Manifest]:
        """Return every readable version of ``key``, newest first.

        Unreadable manifests are skipped with a warning.

        Raises:
            NotFoundError: The key has no version.
        """
        project = self._project(project)
        numbers = self._version_numbers(self._key_dir(project, key))
        if not numbers:
            raise self._not_found(project, key, "versions")
        paths = [self._manifest_path(project, key, n) for n in reversed(numbers)]
        return list(self._read_many(paths))

    def _read_many(self, paths: list[str]) -> Iterator[Manifest]:
        for path, data in self.location.read_many(paths):
            if isinstance(data, FileNotFoundError):
                continue
            if isinstance(data, Exception):
                logger.warning("Skipping manifest %s: %s", self.location.uri(path), data)
                continue
            try:
                yield self._parse_manifest(data, self.location.uri(path))
            except ManifestError as exc:
                logger.warning("Skipping unreadable manifest: %s", exc)

    def tags(self, key: str, *, project: str | None = None) -> dict[str, int]:
        """Return the tags of ``key`` and the version each points at."""
        project = self._project(project)
        tag_dir = f"{self._key_dir(project, key)}/tags"
        tags: dict[str, int] = {}
        for name in self.location.list_names(tag_dir):
            if not name.endswith(".json"):
                continue
            try:
                tags[name[: -len(".json")]] = int(json.loads(self.location.read(f"{tag_dir}/{name}"))["version"])
            except (FileNotFoundError, ValueError, KeyError, TypeError) as exc:
                logger.warning("Skipping unreadable tag %s/%s: %s", tag_dir, name, exc)
        return tags

    def search(
        self,
        *,
        kind: str | None = None,
        labels: dict[str, str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        flow_name: str | None = None,
        owner: str | None = None,
        project: str | None = None,
        all_projects: bool = False,
        all_versions: bool = False,
        text: str | None = None,
    ) -> list[Manifest]:
        """Return the versions that match every given filter, newest first.

        Args:
            kind: Only this kind ('dataset', 'plot', 'model').
            labels: Every pair must be present with the same value.
            since, until: Creation time range, inclusive; naive datetimes are taken as UTC.
            flow_name: Only versions produced by this Prefect flow.
            owner: Only versions with this owner.
            project: The project to search (default: the store's project).
            all_projects: Search every project of the store instead.
            all_versions: Consider every version, not only the latest of each key.
            text: Only keys or descriptions containing this text (case-insensitive).
        """
        projects = self.projects() if all_projects else [self._project(project)]
        since, until = _as_utc(since), _as_utc(until)
        required_labels = _clean_labels(labels)
        needle = text.lower() if text else None

        def matches(m: Manifest) -> bool:
            return (
                (kind is None or m.kind == kind)
                and all(m.labels.get(k) == v for k, v in required_labels.items())
                and (since is None or m.created >= since)
                and (until is None or m.created <= until)
                and (flow_name is None or m.producer.flow_name == flow_name)
                and (owner is None or m.owner == owner)
                and (needle is None or needle in m.key.lower()
                     or needle in (m.description or "").lower())
            )

        paths = []
        listed: dict[tuple[str, str], list[int]] = {}
        for name in projects:
            for key in self.keys(name):
                numbers = self._version_numbers(self._key_dir(name, key))
                listed[name, key] = numbers
                chosen = numbers if all_versions else numbers[-1:]
                paths.extend(self._manifest_path(name, key, n) for n in chosen)
        read = list(self._read_many(paths))
        if not all_versions:
            # A key whose newest manifest is unreadable is shown by its newest readable one.
            seen = {(m.project, m.key) for m in read}
            for (name, key), numbers in listed.items():
                if (name, key) not in seen and len(numbers) > 1:
                    older = self._latest_of(name, key, numbers[:-1])
                    if older is not None:
                        read.append(older)
        found = [m for m in read if matches(m)]
        found.sort(key=lambda m: (m.created, m.version), reverse=True)
        return found

    # -- tags and deletion -------------------------------------------------------------------

    def tag(self, ref: str | Reference, tag: str, *, project: str | None = None) -> Manifest:
        """Point ``tag`` at the version ``ref`` resolves to, moving it if it exists.

        Raises:
            InvalidNameError: The tag is invalid or reserved ('latest').
            NotFoundError: The reference does not resolve.
        """
        validate_name(tag, "tag")
        if tag in RESERVED_TAGS:
            raise InvalidNameError(f"Invalid tag {tag!r}: it is reserved for the newest version.")
        manifest = self.get(ref, project=project)
        record = {"version": manifest.version, "updated": datetime.now(timezone.utc).isoformat()}
        self.location.write_atomic(
            self._tag_path(manifest.project, manifest.key, tag), json.dumps(record).encode()
        )
        logger.info("Tagged %s as %r", manifest.ref, tag)
        return manifest

    def untag(self, key: str | Reference, tag: str, *, project: str | None = None) -> None:
        """Remove ``tag`` from ``key``.

        Raises:
            NotFoundError: The key has no such tag.
        """
        reference = Reference.parse(key, project=self._project(project))
        path = self._tag_path(reference.project, reference.key, tag)
        try:
            self.location.remove(path)
        except FileNotFoundError:
            tags = ", ".join(sorted(self.tags(reference.key, project=reference.project))) or "none"
            raise NotFoundError(
                f"{reference.project}/{reference.key} has no tag {tag!r}; its tags: {tags}."
            ) from None

    def delete(self, ref: str | Reference, *, project: str | None = None) -> Manifest | None:
        """Delete one version and the tags pointing at it; its bodies stay until ``gc``.

        The number is never reused: a marker keeps it taken. A version named by its number is
        deleted even when its manifest cannot be read (for example a file left empty by a
        power loss); None is returned then, else the deleted manifest.

        Raises:
            InvalidReferenceError: The reference names no version or tag.
            NotFoundError: The version does not exist.
        """
        reference = Reference.parse(ref, project=self._project(project))
        if reference.version is None and reference.tag is None:
            raise InvalidNameError(
                f"Refusing to delete {reference}: name a version ('{reference}:3') or a tag."
            )
        manifest: Manifest | None
        try:
            manifest = self.get(reference)
        except ManifestError as exc:
            if reference.version is None:
                raise
            logger.warning("Deleting %s, whose manifest cannot be read: %s", reference, exc)
            manifest = None
        project_name, key = reference.project, reference.key
        version = manifest.version if manifest is not None else reference.version
        assert version is not None
        key_dir = self._key_dir(project_name, key)
        try:
            self.location.create_exclusive(f"{key_dir}/versions/{version}.deleted", b"")
        except FileExistsError:
            pass
        self.location.remove(self._manifest_path(project_name, key, version))
        for tag, tagged in self.tags(key, project=project_name).items():
            if tagged == version:
                self.location.remove(self._tag_path(project_name, key, tag))
        logger.info("Deleted %s/%s:%d", project_name, key, version)
        return manifest

    # -- maintenance -------------------------------------------------------------------------

    def gc(
        self,
        *,
        keep_last: int | None = None,
        dry_run: bool = False,
        min_age_seconds: float = 3600.0,
        project: str | None = None,
        all_projects: bool = False,
    ) -> GcReport:
        """Remove bodies no manifest references and, optionally, old versions.

        Args:
            keep_last: Keep only the newest N versions of each key; tagged versions are spared.
                Default None keeps every version.
            dry_run: Report what would be removed and remove nothing.
            min_age_seconds: Spare unreferenced bodies younger than this (default one hour),
                because a save in progress writes its bodies before its manifest.
            project: The project to collect (default: the store's project).
            all_projects: Collect every project.
        """
        if keep_last is not None and keep_last < 1:
            raise ValueError(f"keep_last must be at least 1, got {keep_last!r}.")
        report = GcReport(dry_run=dry_run)
        for name in self.projects() if all_projects else [self._project(project)]:
            _maintenance.collect_project(self, name, keep_last, dry_run, min_age_seconds, report)
        return report

    def verify(self, *, project: str | None = None, all_projects: bool = False) -> VerifyReport:
        """Check every body of every version against its size and sha256.

        Unreadable manifests are reported too. Nothing is changed.
        """
        report = VerifyReport()
        for name in self.projects() if all_projects else [self._project(project)]:
            _maintenance.verify_project(self, name, report)
        return report


def _as_utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=timezone.utc)

