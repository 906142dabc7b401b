"""Tests of the scheduled deployments in deployments/: a served runner and a process work pool."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mlart_prefect.settings import get_settings
from mlart_prefect.store import ArtifactStore

REPOSITORY = Path(__file__).resolve().parents[1]
SERVE_FILE = REPOSITORY / "deployments" / "serve.py"
PREFECT_FILE = REPOSITORY / "deployments" / "prefect.yaml"
WORK_POOL = "mlart-process"
SMALL_RUN = {"n_estimators": 10}


def load_serve_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mlart_serve_example", SERVE_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def run_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ArtifactStore:
    """Name a fresh local store in MLART_* variables, which flow-run child processes inherit."""
    monkeypatch.chdir(REPOSITORY)
    monkeypatch.setenv("MLART_STORE_URL", str(tmp_path / "store"))
    monkeypatch.setenv("MLART_PROJECT", "test")
    monkeypatch.setenv("MLART_PUBLISH", "false")
    get_settings(reload=True)
    return ArtifactStore(tmp_path / "store", project="test")


def child_environment(prefect_server: str) -> dict[str, str]:
    """Return the environment for Prefect CLI child processes: this one plus the test server."""
    python_path = os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PREFECT_API_URL": prefect_server, "PYTHONPATH": python_path}


def run_prefect(arguments: list[str], env: dict[str, str], *, timeout: float = 300) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", "prefect", *arguments],
        cwd=REPOSITORY, env=env, capture_output=True, text=True, timeout=timeout,
    )
    assert completed.returncode == 0, f"prefect {arguments} failed:\n{completed.stdout[-2000:]}\n{completed.stderr[-3000:]}"
    return completed.stdout


def read_flow_run(flow_run_id: Any) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id)


def read_deployment(deployment_id: Any) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_deployment(deployment_id)


def assert_run_artifacts(store: ArtifactStore, flow_run: Any, deployment_id: Any) -> None:
    model = store.get("breast-cancer-model")
    assert model.producer.deployment_id == str(deployment_id)
    assert model.producer.flow_run_id == str(flow_run.id)
    assert model.spec["parameters"]["n_estimators"] == SMALL_RUN["n_estimators"]
    assert "test/breast-cancer-train:1" in model.inputs
    assert store.get("roc-curve").producer.deployment_id == str(deployment_id)


def test_schedules_are_cron() -> None:
    serve = load_serve_module()

    schedules = serve.schedules()

    assert [s.cron for s in schedules] == ["0 2 * * *", "0 3 * * 0"]
    assert schedules[1].parameters == {"n_estimators": 500}


def test_served_deployment_runs_once(prefect_server: str, run_store: ArtifactStore) -> None:
    from prefect.deployments import run_deployment
    from prefect.runner import Runner

    serve = load_serve_module()
    name = f"test-serve-{uuid.uuid4().hex[:8]}"
    runner = Runner(name=name, limit=1)
    deployment_id = runner.add_deployment(serve.build_deployment(name=name))

    flow_run = run_deployment(deployment_id, parameters=SMALL_RUN, timeout=0)
    asyncio.run(runner.start(run_once=True))

    finished = read_flow_run(flow_run.id)
    assert finished.state.is_completed(), finished.state
    assert finished.deployment_id == deployment_id
    crons = sorted(schedule.schedule.cron for schedule in read_deployment(deployment_id).schedules)
    assert crons == ["0 2 * * *", "0 3 * * 0"]
    assert_run_artifacts(run_store, flow_run, deployment_id)


def test_work_pool_deployment_runs_once(prefect_server: str, run_store: ArtifactStore) -> None:
    from prefect.deployments import run_deployment

    env = child_environment(prefect_server)
    run_prefect(["work-pool", "create", WORK_POOL, "--type", "process", "--overwrite"], env)
    run_prefect(["--no-prompt", "deploy", "--all", "--prefect-file", str(PREFECT_FILE)], env)

    deployment = read_deployment_by_name("train-breast-cancer/breast-cancer-nightly")
    assert deployment.work_pool_name == WORK_POOL
    assert deployment.entrypoint == "flows/train_breast_cancer.py:train_breast_cancer"
    assert deployment.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "{{ $MLART_REPOSITORY }}"}}
    ]
    schedules = {s.slug: s for s in deployment.schedules}
    assert schedules["nightly"].schedule.cron == "0 2 * * *"
    assert schedules["weekly-large-forest"].parameters == {"n_estimators": 500}

    flow_run = run_deployment(deployment.id, parameters=SMALL_RUN, timeout=0)
    worker_env = {**env, "MLART_REPOSITORY": str(REPOSITORY)}
    run_prefect(["worker", "start", "--pool", WORK_POOL, "--run-once"], worker_env, timeout=600)

    finished = read_flow_run(flow_run.id)
    assert finished.state.is_completed(), finished.state
    assert_run_artifacts(run_store, flow_run, deployment.id)


def read_deployment_by_name(name: str) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(name)
