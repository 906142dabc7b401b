"""Tests of the reusable work folders in which bodies are written before a save."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pandas as pd
import pytest

from mlart_prefect import api
from mlart_prefect._staging import MAX_IDLE_FOLDERS, StagingFolders
from mlart_prefect.store import ArtifactStore


def make_folders(parent: Path) -> StagingFolders:
    parent.mkdir(exist_ok=True)
    return StagingFolders(lambda: str(parent))


def test_folder_emptied_and_reused(tmp_path: Path) -> None:
    folders = make_folders(tmp_path / "staging")

    with folders.folder() as first:
        (first / "data.parquet").write_bytes(b"body")
        (first / "sub").mkdir()
        (first / "sub" / "extra.bin").write_bytes(b"extra")
    with folders.folder() as second:
        leftovers = list(second.iterdir())

    assert second == first
    assert leftovers == []
    assert first.parent == tmp_path / "staging"


def test_nested_saves_get_different_folders(tmp_path: Path) -> None:
    folders = make_folders(tmp_path / "staging")

    with folders.folder() as outer:
        (outer / "outer.bin").write_bytes(b"outer")
        with folders.folder() as inner:
            inner_files = list(inner.iterdir())
        outer_files = [path.name for path in outer.iterdir()]

    assert inner != outer
    assert inner_files == []
    assert outer_files == ["outer.bin"]


def test_idle_folders_are_capped(tmp_path: Path) -> None:
    parent = tmp_path / "staging"
    folders = make_folders(parent)
    count = MAX_IDLE_FOLDERS + 2

    def open_nested(depth: int) -> None:
        with folders.folder():
            if depth > 1:
                open_nested(depth - 1)

    open_nested(count)

    assert len(list(parent.iterdir())) == MAX_IDLE_FOLDERS


def test_missing_idle_folder_replaced(tmp_path: Path) -> None:
    folders = make_folders(tmp_path / "staging")
    with folders.folder() as first:
        pass
    first.rmdir()

    with folders.folder() as second:
        exists = second.is_dir()

    assert second != first
    assert exists


def test_idle_folders_removed_with_object(tmp_path: Path) -> None:
    parent = tmp_path / "staging"
    folders = make_folders(parent)
    with folders.folder():
        pass
    assert len(list(parent.iterdir())) == 1

    del folders
    gc.collect()

    assert list(parent.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_never_reuses_parent_folder(tmp_path: Path) -> None:
    folders = make_folders(tmp_path / "staging")
    with folders.folder() as parent_folder:
        pass

    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child process
        try:
            with folders.folder() as child_folder:
                os.write(writer, str(child_folder).encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        child_folder = Path(pipe.read().decode())
    os.waitpid(child, 0)

    assert child_folder != parent_folder
    assert parent_folder.is_dir()
    with folders.folder() as again:
        assert again == parent_folder


def test_saves_reuse_one_staging_folder(local_store: ArtifactStore) -> None:
    frame = pd.DataFrame({"a": [1, 2, 3]})

    api.save("first", frame, store=local_store)
    api.save("second", frame.assign(a=frame["a"] * 2), store=local_store)

    staging = Path(local_store.url) / ".staging"
    work_folders = list(staging.iterdir())
    assert len(work_folders) == 1
    assert list(work_folders[0].iterdir()) == []
    assert local_store.get("second").version == 1
