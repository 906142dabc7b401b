"""Low-level file operations of a store, over fsspec, with atomic and exclusive writes."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from mlart_prefect.errors import StoreUnavailableError

logger = logging.getLogger(__name__)

HASH_CHUNK = 4 * 1024 * 1024
"""Bytes read at a time when hashing or copying a body."""


def sha256_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """Return the sha256 hex digest and size of a local file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as file:
        while chunk := file.read(HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


_MEMORY_CREATE = threading.Lock()
"""Serializes exclusive creates on fsspec's memory filesystem (see ``create_exclusive``)."""


def _is_memory(fs: Any) -> bool:
    from fsspec.implementations.memory import MemoryFileSystem

    return isinstance(fs, MemoryFileSystem)


def _is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


class StorageLocation:
    """A store's root on one fsspec filesystem; paths given to its methods are relative to it.

    The filesystem is opened and checked at first use, so creating this object touches no
    filesystem and a bad URL fails at the first operation, with ``StoreUnavailableError`` naming the URL and the cause.
    """

    def __init__(
        self,
        url: str,
        storage_options: dict[str, Any],
        *,
        fsync: bool = False,
        origin: str | None = None,
    ) -> None:
        if _is_local(url):
            url = str(Path(url.removeprefix("file://")).expanduser().absolute())
        self.url = url.rstrip("/") or url
        self.local = _is_local(url)
        self._options = dict(storage_options)
        self.fsync = fsync
        self._origin = origin
        self._root_ready = False
        self._fs: Any = None
        self._root = ""

    # -- connection ------------------------------------------------------------------------

    @property
    def fs(self) -> Any:
        """The fsspec filesystem, opened and checked on first access."""
        if self._fs is None:
            self._connect()
        return self._fs

    @property
    def root(self) -> str:
        """The store root as a path on the filesystem."""
        if self._fs is None:
            self._connect()
        return self._root

    def _fail(self, cause: str, exc: BaseException | None = None) -> StoreUnavailableError:
        detail = f": {exc}" if exc is not None and str(exc) else ""
        origin = f" (set by {self._origin})" if self._origin else ""
        return StoreUnavailableError(f"Cannot use store {self.url!r}{origin}: {cause}{detail}")

    def _connect(self) -> None:
        import fsspec

        try:
            fs, root = fsspec.core.url_to_fs(self.url, **self._options)
        except (ValueError, ImportError, TypeError) as exc:
            raise self._fail("the URL's protocol is unknown or its options are invalid", exc) from exc
        root = root.rstrip("/")
        if self.local:
            self._check_local(Path(root))
        elif hasattr(fs, "split_path"):
            self._check_bucket(fs, root)
        else:
            try:
                fs.makedirs(root, exist_ok=True)
            except Exception as exc:  # any filesystem may raise its own error type here
                raise self._fail("its root folder cannot be created", exc) from exc
        self._fs, self._root = fs, root

    def _check_local(self, root: Path) -> None:
        """Check that ``root`` can be a folder.

        The folder is created by the first write, not here, so reading through a mistyped path
        creates nothing, and a read-only folder can be read.
        """
        try:
            if root.exists() and not root.is_dir():
                raise self._fail(f"{root} is a file, not a folder")
            existing = next((parent for parent in root.parents if parent.exists()), None)
        except PermissionError as exc:
            raise self._fail(f"no permission to access {root}", exc) from exc
        if existing is not None and not existing.is_dir():
            raise self._fail(f"a part of the path is a file, not a folder: {existing}")

    def local_root_missing(self) -> bool:
        """Return True for a local store whose folder does not exist (yet, or mistyped)."""
        return self.local and not Path(self.url).exists()

    def _ensure_root(self) -> None:
        """Create a local store's root folder before the first write, once."""
        if not self.local or self._root_ready:
            return
        root = Path(self.root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except PermissionError as exc:
            raise self._fail(f"no permission to create {root}", exc) from exc
        except (NotADirectoryError, FileExistsError) as exc:
            raise self._fail("a part of the path is a file, not a folder", exc) from exc
        except OSError as exc:
            raise self._fail("the folder cannot be created", exc) from exc
        if not os.access(root, os.W_OK | os.X_OK):
            raise self._fail(f"no permission to write in {root}")
        self._root_ready = True

    def _check_bucket(self, fs: Any, root: str) -> None:
        bucket = root.split("/", 1)[0]
        try:
            fs.ls(bucket, refresh=True)
        except FileNotFoundError as exc:
            # The service's own message repeats this one, so it is left out.
            raise self._fail(f"the bucket {bucket!r} does not exist") from exc
        except PermissionError as exc:
            raise self._fail(f"no permission to list the bucket {bucket!r}", exc) from exc
        except Exception as exc:  # network and credential errors come in many types
            raise self._fail(f"the bucket {bucket!r} cannot be reached", exc) from exc
        if root != bucket and fs.isfile(root):
            raise self._fail(f"{root} is a file, not a folder")

    # -- paths -----------------------------------------------------------------------------

    def full(self, relative: str) -> str:
        """Return the filesystem path of ``relative``; it can never leave the root."""
        parts = [p for p in relative.split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise ValueError(f"Path {relative!r} would leave the store root.")
        return "/".join([self.root, *parts]) if parts else self.root

    def uri(self, relative: str) -> str:
        """Return the full URI of ``relative`` (a plain path on a local store)."""
        path = self.full(relative)
        if self.local:
            return path
        protocol = self.fs.protocol
        protocol = protocol[0] if isinstance(protocol, (tuple, list)) else protocol
        return f"{protocol}://{path.lstrip('/')}" if protocol != "memory" else f"memory://{path}"

    def local_staging_parent(self) -> str | None:
        """Return a folder inside a local store for work files (same disk, so moves are renames)."""
        if not self.local:
            return None
        self._ensure_root()
        folder = Path(self.root) / ".staging"
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder)

    # -- reading ---------------------------------------------------------------------------

    def exists(self, relative: str) -> bool:
        """Return True when a file exists at ``relative``."""
        if self.local:
            return os.path.exists(self.full(relative))
        return bool(self.fs.exists(self.full(relative)))

    def read(self, relative: str) -> bytes:
        """Return the bytes of a file; raise FileNotFoundError when absent."""
        if self.local:
            with open(self.full(relative), "rb") as file:
                return file.read()
        return bytes(self.fs.cat_file(self.full(relative)))

    def read_many(self, relatives: list[str]) -> Iterator[tuple[str, bytes | Exception]]:
        """Yield (path, bytes or the exception raised) for each path, concurrently on remote stores."""
        if self.local or not relatives:
            for relative in relatives:
                try:
                    yield relative, self.read(relative)
                except OSError as exc:
                    yield relative, exc
            return
        full_paths = {self.full(r): r for r in relatives}
        results = self.fs.cat(list(full_paths), on_error="return")
        for full_path, relative in full_paths.items():
            data = results.get(full_path, FileNotFoundError(full_path))
            yield relative, data if isinstance(data, Exception) else bytes(data)

    def open_read(self, relative: str) -> BinaryIO:
        """Open a file for reading; raise FileNotFoundError when absent."""
        if self.local:
            return open(self.full(relative), "rb")
        return self.fs.open(self.full(relative), "rb")

    def list_names(self, relative: str) -> list[str]:
        """Return the names of the entries of a folder, fresh (no cached listing)."""
        path = self.full(relative)
        if self.local:
            try:
                return os.listdir(path)
            except (FileNotFoundError, NotADirectoryError):
                return []
        try:
            entries = self.fs.ls(path, detail=False, refresh=True)
        except FileNotFoundError:
            return []
        return [entry.rstrip("/").rsplit("/", 1)[-1] for entry in entries if entry.rstrip("/") != path]

    def find(self, relative: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield (relative path, info) of every file below a folder."""
        base = self.full(relative)
        try:
            found = self.fs.find(base, detail=True, refresh=True) if not self.local else self.fs.find(base, detail=True)
        except FileNotFoundError:
            return
        prefix_length = len(self.root.rstrip("/")) + 1
        for path, info in found.items():
            path = path if not path.startswith("/") or self.local else path
            yield path[prefix_length:] if path.startswith(self.root) else path, info

    @staticmethod
    def modified(info: dict[str, Any]) -> float:
        """Return a file's modification time as a POSIX timestamp, from fsspec's info."""
        for name in ("mtime", "LastModified", "last_modified", "created"):
            value = info.get(name)
            if isinstance(value, datetime):
                return value.timestamp()
            if isinstance(value, (int, float)):
                return float(value)
        return 0.0

    # -- writing ---------------------------------------------------------------------------

    def _local_temp(self, final: str) -> str:
        return os.path.join(os.path.dirname(final), f".tmp-{uuid.uuid4().hex}")

    def _flush_file(self, path: str) -> None:
        """With ``fsync`` on, flush a local file's content to the disk."""
        if self.fsync:
            descriptor = os.open(path, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)

    def _flush_folder(self, path: str) -> None:
        """With ``fsync`` on, flush the folder entry that names ``path`` to the disk."""
        if self.fsync:
            descriptor = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)

    def write_atomic(self, relative: str, data: bytes) -> None:
        """Write a whole file so that readers see either the old or the new content."""
        path = self.full(relative)
        if not self.local:
            self.fs.pipe_file(path, data)
            return
        self._ensure_root()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temp = self._local_temp(path)
        try:
            with open(temp, "wb") as file:
                file.write(data)
                if self.fsync:
                    file.flush()
                    os.fsync(file.fileno())
            os.replace(temp, path)
            self._flush_folder(path)
        finally:
            if os.path.exists(temp):
                os.unlink(temp)

    def put_file_atomic(self, relative: str, source: str | os.PathLike[str]) -> None:
        """Store a local file at ``relative``; on a local store the file is moved, not copied."""
        path = self.full(relative)
        if not self.local:
            self.fs.put_file(os.fspath(source), path)
            return
        self._ensure_root()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._flush_file(os.fspath(source))
        try:
            os.replace(source, path)
        except OSError:  # another disk: copy to a temporary name, then rename
            import shutil

            temp = self._local_temp(path)
            shutil.copyfile(source, temp)
            self._flush_file(temp)
            os.replace(temp, path)
        self._flush_folder(path)

    def create_exclusive(self, relative: str, data: bytes) -> None:
        """Create a file with ``data`` unless one exists; raise FileExistsError if it does.

        On a local disk the content is written to a temporary file and hard-linked into place,
        which fails when the name exists, so a reader never sees a partial file. On S3 this is a
        single conditional PUT (If-None-Match: *).
        """
        path = self.full(relative)
        if not self.local:
            # fsspec's memory filesystem checks for the file and then writes it, which threads
            # can interleave. It lives in this process, so a lock makes the create exclusive.
            lock = _MEMORY_CREATE if _is_memory(self.fs) else contextlib.nullcontext()
            with lock:
                self.fs.pipe_file(path, data, mode="create")
            return
        self._ensure_root()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temp = self._local_temp(path)
        try:
            with open(temp, "wb") as file:
                file.write(data)
                if self.fsync:
                    file.flush()
                    os.fsync(file.fileno())
            os.link(temp, path)
        finally:
            os.unlink(temp)
        self._flush_folder(path)

    def remove(self, relative: str) -> None:
        """Remove a file; raise FileNotFoundError when absent."""
        path = self.full(relative)
        if self.local:
            os.unlink(path)
            return
        if not self.fs.exists(path):
            raise FileNotFoundError(path)
        self.fs.rm_file(path)
