"""Helpers for tests that read back what flows left on the temporary Prefect server."""

from __future__ import annotations

import json
from typing import Any


def read_artifacts(*, key: str | None = None, task_run_id: Any = None, flow_run_id: Any = None) -> list[Any]:
    """Return the Prefect artifacts matching every given filter, oldest first."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
        ArtifactFilterTaskRunId,
    )
    from prefect.client.schemas.sorting import ArtifactSort

    artifact_filter = ArtifactFilter(
        key=ArtifactFilterKey(any_=[key]) if key else None,
        task_run_id=ArtifactFilterTaskRunId(any_=[task_run_id]) if task_run_id else None,
        flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]) if flow_run_id else None,
    )
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=artifact_filter, sort=ArtifactSort.CREATED_DESC, limit=200)
    return list(reversed(found))


def table_rows(artifact: Any) -> list[dict[str, Any]]:
    """Return the rows of a table artifact (the server returns its data as JSON text)."""
    data = artifact.data
    return json.loads(data) if isinstance(data, str) else data
