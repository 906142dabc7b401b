"""Fixtures of the web view tests: the flow-filled store and the application over a copy of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlart_prefect.store import ArtifactStore
from tests._flow_store import PROJECT, FlowStoreInfo, copy_store, filled_store_template

PREFECT_UI = "http://127.0.0.1:4200"


@pytest.fixture(scope="session")
def flow_template(prefect_server: str) -> FlowStoreInfo:
    """The store written by the example flows, built once."""
    return filled_store_template()


@pytest.fixture
def store_path(flow_template: FlowStoreInfo, tmp_path: Path) -> Path:
    """A private copy of the flow-filled store, so a test may change it."""
    return copy_store(flow_template, tmp_path / "store")


@pytest.fixture
def store(store_path: Path) -> ArtifactStore:
    return ArtifactStore(store_path, project=PROJECT)
