"""A flow on Dask worker processes capturing to the S3 store: producers, lineage and results."""

from __future__ import annotations

import json
import os
from typing import Any

import pandas as pd
import pytest

from mlart_prefect import api
from mlart_prefect.settings import get_settings
from mlart_prefect.store import ArtifactStore

pytestmark = pytest.mark.s3

CLUSTER_KWARGS = {
    "n_workers": 2,
    "processes": True,
    "threads_per_worker": 1,
    "dashboard_address": None,
    "host": "127.0.0.1",
}


@pytest.fixture
def s3_settings(
    s3_bucket: tuple[str, dict[str, object]], monkeypatch: pytest.MonkeyPatch
) -> ArtifactStore:
    """Point the MLART_* variables at the S3 bucket, so worker processes started later see it."""
    url, options = s3_bucket
    monkeypatch.setenv("MLART_STORE_URL", url)
    monkeypatch.setenv("MLART_STORAGE_OPTIONS", json.dumps(options))
    monkeypatch.setenv("MLART_PROJECT", "test")
    get_settings(reload=True)
    api.set_store(None)
    return ArtifactStore(url, storage_options=options, project="test")


def test_dask_flow_records_producers_and_lineage(prefect_server: str, s3_settings: ArtifactStore) -> None:
    from prefect import flow, task
    from prefect.context import FlowRunContext
    from prefect.results import ResultRecordMetadata
    from prefect.runtime import flow_run
    from prefect_dask import DaskTaskRunner

    from mlart_prefect.capture import artifact_task
    from mlart_prefect.results import artifact_result_options

    @artifact_task(key="dask-raw", **artifact_result_options(pass_by_reference=True))
    def make_raw(rows: int) -> pd.DataFrame:
        return pd.DataFrame({"x": range(rows), "pid": os.getpid()})

    @artifact_task(key="dask-clean")
    def clean(raw: pd.DataFrame) -> pd.DataFrame:
        return raw[raw["x"] % 2 == 0].assign(loaded_by=os.getpid()).reset_index(drop=True)

    @task
    def worker_pid() -> int:
        return os.getpid()

    @flow(task_runner=DaskTaskRunner(cluster_kwargs=CLUSTER_KWARGS))
    def pipeline(rows: int) -> dict[str, Any]:
        raw = make_raw.submit(rows)
        raw.wait()
        cleaned = clean.submit(raw)
        client = FlowRunContext.get().task_runner.client
        return {
            "addresses": [client.scheduler.address, *client.scheduler_info()["workers"]],
            "flow_run_id": str(flow_run.id),
            "raw_task_run_id": str(raw.task_run_id),
            "clean_task_run_id": str(cleaned.task_run_id),
            "raw_state_data": raw.state.data,
            "cleaned": cleaned.result(),
            "pids": {worker_pid.submit().result() for _ in range(4)},
        }

    outcome = pipeline(10)

    raw = s3_settings.get("dask-raw")
    cleaned = s3_settings.get("dask-clean")
    assert raw.version == 1
    assert raw.producer.task_run_id == outcome["raw_task_run_id"]
    assert raw.producer.flow_run_id == outcome["flow_run_id"]
    assert raw.producer.task_name == "make_raw"
    assert cleaned.producer.task_run_id == outcome["clean_task_run_id"]
    assert cleaned.producer.flow_run_id == outcome["flow_run_id"]
    assert cleaned.inputs == ["test/dask-raw:1"]
    assert raw.bodies[0].uri.startswith("s3://mlart-test/store/test/objects/")

    # The tasks ran in worker processes on loopback, not in this one.
    assert all(address.startswith("tcp://127.0.0.1:") for address in outcome["addresses"])
    assert len(outcome["addresses"]) == 3
    assert os.getpid() not in outcome["pids"]
    frame = outcome["cleaned"]
    assert os.getpid() not in set(frame["pid"]) | set(frame["loaded_by"])
    assert list(frame["x"]) == [0, 2, 4, 6, 8]

    # The upstream state carried only a pointer, so the downstream task loaded the frame from S3.
    assert isinstance(outcome["raw_state_data"], ResultRecordMetadata)
    assert outcome["raw_state_data"].serializer.type == "mlart"
