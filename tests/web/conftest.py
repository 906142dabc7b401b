"""Fixtures of the web view tests: the flow-filled store and the application over a copy of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlart_prefect.store import ArtifactStore
from tests._flow_store import PROJECT

PREFECT_UI = "http://127.0.0.1:4200"


@pytest.fixture
def store(store_path: Path) -> ArtifactStore:
    return ArtifactStore(store_path, project=PROJECT)
