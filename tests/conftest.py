"""Shared fixtures: isolated settings, stores over a local folder, memory:// and moto's S3 server,
and one temporary Prefect server for the whole session."""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

# Isolate every test run from the user's Prefect and mlart configuration, and keep all traffic
# on loopback: fake AWS credentials, no instance-metadata lookups, no analytics.
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="mlart-tests-"))
os.environ["PREFECT_HOME"] = str(_SESSION_HOME / "prefect")
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("PREFECT_API_KEY", None)
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["MLART_STORE_URL"] = str(_SESSION_HOME / "default-store")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

from mlart_prefect import api  # noqa: E402
from mlart_prefect.settings import get_settings  # noqa: E402
from mlart_prefect.store import ArtifactStore  # noqa: E402

S3_BUCKET = "mlart-test"


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Give each test settings read anew and no cached default store."""
    get_settings(reload=True)
    api.set_store(None)
    yield
    get_settings(reload=True)
    api.set_store(None)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Start moto's S3 server on 127.0.0.1 with a random port for the whole session."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_storage_options(endpoint: str) -> dict[str, object]:
    """Return fsspec options that reach the moto server with fake credentials."""
    return {
        "endpoint_url": endpoint,
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"region_name": "us-east-1"},
        "use_listings_cache": False,
        "skip_instance_cache": True,
    }


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> Iterator[tuple[str, dict[str, object]]]:
    """Reset the moto server, create an empty bucket, and yield (URL, storage options)."""
    import boto3
    import requests

    requests.post(f"{s3_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    client = boto3.client(
        "s3", endpoint_url=s3_endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=S3_BUCKET)
    options = s3_storage_options(s3_endpoint)
    yield f"s3://{S3_BUCKET}/store", options


@pytest.fixture
def s3_store(s3_bucket: tuple[str, dict[str, object]]) -> ArtifactStore:
    """An ArtifactStore on the moto S3 server, empty."""
    url, options = s3_bucket
    return ArtifactStore(url, storage_options=options, project="test")


@pytest.fixture
def local_store(tmp_path: Path) -> ArtifactStore:
    """An ArtifactStore in a temporary local folder, empty."""
    return ArtifactStore(tmp_path / "store", project="test")


@pytest.fixture
def memory_store() -> ArtifactStore:
    """An ArtifactStore on fsspec's in-memory filesystem, under a unique root."""
    return ArtifactStore(f"memory://mlart-{uuid.uuid4().hex}", project="test")


@pytest.fixture(params=["local", "memory", "s3"])
def store(request: pytest.FixtureRequest) -> ArtifactStore:
    """The same empty store over each backend: a local folder, memory:// and S3 on moto."""
    return request.getfixturevalue(f"{request.param}_store")


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """Run one temporary Prefect server (SQLite in a temporary folder) for the session."""
    from prefect.logging.configuration import setup_logging
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    # Prefect's first logging set-up replaces the root logger's handlers, caplog's among them.
    # Done here, before any test body runs, later set-ups in flow runs only add to it.
    setup_logging()
    with prefect_test_harness(server_startup_timeout=60):
        # A sync flow otherwise spends about a second joining its heartbeat thread.
        with temporary_settings(updates={"flows.heartbeat_frequency": None}):
            yield PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def flow_template(prefect_server: str):  # -> tests._flow_store.FlowStoreInfo
    """A store written by real flow runs (datasets, a plot, a model, lineage), built once."""
    from tests._flow_store import filled_store_template

    return filled_store_template()


@pytest.fixture
def store_path(flow_template, tmp_path: Path) -> Path:
    """A private copy of the flow-filled store, so a test may change it."""
    from tests._flow_store import copy_store

    return copy_store(flow_template, tmp_path / "store")
