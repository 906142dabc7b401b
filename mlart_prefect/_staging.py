"""Reusable local work folders in which kinds write bodies before the store saves them."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

MAX_IDLE_FOLDERS = 4
"""Maximum number of emptied folders kept for reuse; others are removed when their save ends."""


class StagingFolders:
    """Hand out empty work folders, one per save in progress, and reuse them afterwards.

    A folder is emptied when its save ends and kept for the next save, instead of being created
    and removed each time. On a local ext4 disk of a shared virtual machine, removing a folder
    right after the manifest's fsync took about as long as the fsync itself. That was 0.1 to
    4 ms, depending on what else was writing, and the largest fixed cost of saving a small value.

    Concurrent saves (threads, or a save nested in another one's encoding) get different
    folders. Folders belong to the process that created them: a forked child never reuses its
    parent's folders, because both processes would write into them. Idle folders are removed
    when this object is garbage-collected or the interpreter exits.

    Args:
        parent: Called when a new folder is needed; returns the existing folder to create it
            in, or None for the system's temporary folder. It is called late so that creating
            a store never touches its storage.
    """

    def __init__(self, parent: Callable[[], str | None]) -> None:
        self._parent = parent
        self._lock = threading.Lock()
        self._idle = _IdleFolders(os.getpid(), [])
        weakref.finalize(self, _remove_idle, self._idle)

    @contextmanager
    def folder(self) -> Iterator[Path]:
        """Yield an empty folder for one save; files left in it are removed afterwards."""
        folder = self._take()
        try:
            yield folder
        finally:
            self._give_back(folder)

    def _take(self) -> Path:
        with self._lock:
            idle = self._owned_idle()
            while idle:
                folder = idle.pop()
                if folder.is_dir():
                    return folder
        return Path(tempfile.mkdtemp(prefix="mlart-", dir=self._parent()))

    def _give_back(self, folder: Path) -> None:
        try:
            _empty(folder)
        except OSError as exc:
            logger.debug("Removing work folder %s, which could not be emptied: %s", folder, exc)
            shutil.rmtree(folder, ignore_errors=True)
            return
        with self._lock:
            idle = self._owned_idle()
            if len(idle) < MAX_IDLE_FOLDERS:
                idle.append(folder)
                return
        shutil.rmtree(folder, ignore_errors=True)

    def _owned_idle(self) -> list[Path]:
        """Return the idle folders of this process; call it with the lock held."""
        if self._idle.pid != os.getpid():
            # A forked child: the inherited folders still belong to the parent process.
            self._idle.pid = os.getpid()
            self._idle.folders = []
        return self._idle.folders


@dataclass
class _IdleFolders:
    pid: int
    folders: list[Path]


def _empty(folder: Path) -> None:
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)


def _remove_idle(idle: _IdleFolders) -> None:
    if idle.pid != os.getpid():
        return
    for folder in idle.folders:
        shutil.rmtree(folder, ignore_errors=True)
    idle.folders = []
