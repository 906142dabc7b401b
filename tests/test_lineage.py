"""Producers, inputs and run-scoped references taken from real Prefect runs."""

from __future__ import annotations

import getpass
import math
import socket
import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlart_prefect import api, lineage
from mlart_prefect.capture import Model, artifact_task, get_run_context
from mlart_prefect.store import ArtifactStore


@pytest.fixture
def run_store(prefect_server: str, local_store: ArtifactStore) -> ArtifactStore:
    """The local store, set as the default store that flows and tasks save into."""
    api.set_store(local_store)
    return local_store


class Multiline:
    """An object whose text spans lines, as a scikit-learn pipeline's does."""

    def __str__(self) -> str:
        return "Pipeline(steps=[('scale', StandardScaler()),\n                ('forest', RandomForestClassifier())])"


def frame(start: int, rows: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"x": list(range(start, start + rows))})


# -- parameters --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (pd.DataFrame({"a": range(7), "b": range(7)}), "<DataFrame shape=(7, 2)>"),
        (pd.Series([1.0, 2.0, 3.0]), "<Series shape=(3,)>"),
        (np.ones((2, 3, 4)), "<ndarray shape=(2, 3, 4)>"),
        ("short", "short"),
        ("x" * 130, "x" * 120 + "… (+10 chars)"),
        (None, None),
        (True, True),
        (3, 3),
        (math.inf, "inf"),
        (math.nan, None),
        (pd.Timestamp("2024-03-31 02:30", tz="UTC"), "2024-03-31T02:30:00+00:00"),
        (np.float32(0.5), 0.5),
        ({"nested": {"frame": pd.DataFrame({"a": [1]})}}, {"nested": {"frame": "<DataFrame shape=(1, 1)>"}}),
        ((1, "two"), [1, "two"]),
        # An object's multi-line text is shown on one line; text values keep their layout.
        (Multiline(), "Pipeline(steps=[('scale', StandardScaler()), ('forest', RandomForestClassifier())])"),
        ("a\nb", "a\nb"),
    ],
)
def test_summarize_parameter(value: Any, expected: Any) -> None:
    assert lineage.summarize_parameter(value) == expected


def test_summarize_parameter_cuts_long_containers() -> None:
    long_list = lineage.summarize_parameter(list(range(25)))
    long_dict = lineage.summarize_parameter({f"k{i}": i for i in range(23)})

    assert long_list == [*range(20), "… (+5 items)"]
    assert list(long_dict)[-1] == "…"
    assert long_dict["…"] == "+3 keys"
    assert len(long_dict) == 21


def test_producer_outside_a_run() -> None:
    producer = lineage.current_producer()

    assert producer.in_prefect_run is False
    assert producer.flow_run_id is None
    assert producer.task_run_id is None
    assert producer.owner == getpass.getuser()
    assert producer.host == socket.gethostname()
    assert lineage.consumed_inputs() == []


def test_producer_of_task_and_flow_body(run_store: ArtifactStore) -> None:
    from prefect import flow
    from prefect.runtime import flow_run, task_run

    @artifact_task(key="from-task", tags=["nightly"])
    def make(n: int) -> pd.DataFrame:
        return frame(n)

    @flow(name="producer-flow")
    def producing(n: int) -> dict[str, Any]:
        future = make.submit(n)
        future.wait()
        in_body = api.save("from-body", frame(n + 1))
        return {"flow_run_id": str(flow_run.id), "task_run_id": str(future.task_run_id),
                "task_run_in_body": task_run.id, "body_ref": in_body.ref}

    ids = producing(4)

    from_task = run_store.get("from-task").producer
    assert from_task.flow_name == "producer-flow"
    assert from_task.flow_run_id == ids["flow_run_id"]
    assert from_task.task_run_id == ids["task_run_id"]
    assert from_task.task_name == "make"
    assert from_task.task_run_name.startswith("make-")
    assert from_task.parameters == {"n": 4}
    assert from_task.tags == ["nightly"]
    assert from_task.attempt == 1
    assert from_task.start_time is not None
    from_body = run_store.get("from-body").producer
    assert ids["task_run_in_body"] is None
    assert from_body.flow_run_id == ids["flow_run_id"]
    assert from_body.task_run_id is None
    assert from_body.task_name is None
    assert from_body.parameters == {"n": 4}
    assert from_body.in_prefect_run is True


# -- inputs ------------------------------------------------------------------------------------


def test_inputs_are_upstream_versions_and_loads(run_store: ArtifactStore) -> None:
    from prefect import flow, task

    api.save("reference-table", frame(100))
    api.save("reference-table", frame(200))

    @artifact_task(key="left")
    def left() -> pd.DataFrame:
        return frame(0)

    @artifact_task(key="right")
    def right() -> pd.DataFrame:
        return frame(10)

    @task
    def plain_step(df: pd.DataFrame) -> pd.DataFrame:
        return df * 2

    @artifact_task(key="joined")
    def join(a: pd.DataFrame, b: pd.DataFrame, doubled: pd.DataFrame) -> pd.DataFrame:
        reference = api.load("reference-table:1")
        return pd.concat([a, b, doubled, reference], ignore_index=True)

    @artifact_task(key="ordered-only")
    def after(n: int) -> pd.DataFrame:
        return frame(n)

    @flow
    def joining() -> None:
        a = left.submit()
        b = right.submit()
        doubled = plain_step.submit(a)
        join(a, b, doubled)
        after.submit(1, wait_for=[a]).wait()

    joining()

    assert run_store.get("joined").inputs == ["test/left:1", "test/reference-table:1", "test/right:1"]
    assert run_store.get("ordered-only").inputs == []
    assert run_store.get("left").inputs == []


def test_flow_body_loads_are_inputs(run_store: ArtifactStore) -> None:
    from prefect import flow

    api.save("source", frame(1))

    @flow
    def in_body() -> None:
        data = api.load("source")
        api.save("derived-in-body", data + 1)

    in_body()

    assert run_store.get("derived-in-body").inputs == ["test/source:1"]


def test_upstream_versions_found_in_store_when_not_indexed(
    run_store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import flow, task

    # Distributed task runners run tasks in other processes, whose saves this process never
    # indexed. Forgetting the index and declaring the runner remote takes the same path here;
    # tests/test_dask.py covers real Dask worker processes.
    monkeypatch.setattr(lineage, "_tasks_run_in_this_process", lambda: False)
    api.save("raw-elsewhere", frame(-10), store=run_store)

    @artifact_task(key="raw-elsewhere")
    def make_raw(rows: int) -> pd.DataFrame:
        return frame(0, rows)

    @task
    def forget(df: pd.DataFrame) -> pd.DataFrame:
        lineage.clear_indexes()
        return df

    @artifact_task(key="elsewhere")
    def total(df: pd.DataFrame, raw: pd.DataFrame) -> dict[str, pd.DataFrame]:
        return {"sum": pd.DataFrame({"total": [int(df["x"].sum())]}), "max": df.max().to_frame()}

    @flow
    def remote_like() -> str:
        raw = make_raw.submit(4)
        forgotten = forget.submit(raw)
        forgotten.wait()
        return str(total.submit(forgotten, raw).result()["sum"]["total"][0])

    searches: list[dict[str, Any]] = []
    real_search = run_store.search

    def counting_search(**filters: Any) -> Any:
        searches.append(filters)
        return real_search(**filters)

    monkeypatch.setattr(run_store, "search", counting_search)

    assert remote_like() == "6"
    assert run_store.get("elsewhere-sum").inputs == ["test/raw-elsewhere:2"]
    assert run_store.get("elsewhere-max").inputs == ["test/raw-elsewhere:2"]
    # Both saves of the consumer reuse one scan of the store.
    assert len(searches) == 1
    assert searches[0]["all_versions"] is True


def test_inputs_are_the_values_passed(run_store: ArtifactStore) -> None:
    from prefect import flow, task

    @artifact_task(key="parts")
    def split() -> dict[str, pd.DataFrame]:
        return {"train": frame(0), "test": frame(10)}

    @artifact_task(key="scored")
    def score(test: pd.DataFrame) -> pd.DataFrame:
        return test * 2

    @artifact_task(key="summed")
    def total(parts: dict[str, pd.DataFrame]) -> pd.DataFrame:
        return parts["train"] + parts["test"]

    @task
    def copy(df: pd.DataFrame) -> pd.DataFrame:
        return df.copy()

    @artifact_task(key="copied")
    def keep(df: pd.DataFrame) -> pd.DataFrame:
        return df

    @flow
    def pipeline() -> None:
        parts = split()
        score(parts["test"])
        total(parts)
        keep(copy(parts["test"]))

    pipeline()

    assert run_store.get("scored").inputs == ["test/parts-test:1"]
    assert run_store.get("summed").inputs == ["test/parts-test:1", "test/parts-train:1"]
    # copy saves nothing, so its result names no upstream version.
    assert run_store.get("copied").inputs == []


def test_model_extra_data_not_passed_downstream(
    run_store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import flow, task

    # Each run saves new versions: a scan finds only versions created during its flow run.
    @artifact_task(key="fitted")
    def fit(run: int) -> Model:
        return Model({"weights": [1, 2, run]}, extra_data={"residuals": frame(run, 3)})

    @task
    def forget(model: Any) -> Any:
        lineage.clear_indexes()
        return model

    @artifact_task(key="scored")
    def score(model: Any, run: int) -> pd.DataFrame:
        return pd.DataFrame({"weight": model["weights"], "run": run})

    @flow
    def pipeline(scan: bool) -> None:
        model = fit.submit(int(scan))
        if scan:
            forget.submit(model).wait()
        score.submit(model, int(scan)).wait()

    pipeline(scan=False)
    monkeypatch.setattr(lineage, "_tasks_run_in_this_process", lambda: False)
    pipeline(scan=True)

    # Found in this process's index, then by a scan of the store.
    assert run_store.get("scored:1").inputs == ["test/fitted:1"]
    assert run_store.get("scored:2").inputs == ["test/fitted:2"]
    assert run_store.get("fitted-residuals").ref == "test/fitted-residuals:2"


def test_process_pool_runner_records_no_upstream(
    prefect_server: str, local_store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import flow
    from prefect.task_runners import ProcessPoolTaskRunner

    from mlart_prefect.settings import get_settings

    # Worker processes build their store from the environment, so point it at this test's store.
    monkeypatch.setenv("MLART_STORE_URL", str(local_store.url))
    monkeypatch.setenv("MLART_PROJECT", "test")
    get_settings(reload=True)

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
    def across_processes() -> dict[str, str]:
        raw = make_process_raw.submit(5)
        total = sum_process_raw.submit(raw)
        total.wait()
        return {"raw": str(raw.task_run_id), "total": str(total.task_run_id)}

    ids = across_processes()

    raw = local_store.get("process-raw")
    total = local_store.get("process-total")
    assert raw.producer.task_run_id == ids["raw"]
    assert total.producer.task_run_id == ids["total"]
    assert api.load(total, store=local_store)["total"].tolist() == [10]
    # ProcessPoolTaskRunner passes resolved values to the worker process, so Prefect records no
    # upstream task run and the version lists no input (see docs/lineage.md).
    assert total.inputs == []


@artifact_task(key="process-raw", publish=False)
def make_process_raw(rows: int) -> pd.DataFrame:
    return frame(0, rows)


@artifact_task(key="process-total", publish=False)
def sum_process_raw(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"total": [int(df["x"].sum())]})


# -- run-scoped references ---------------------------------------------------------------------


def test_resolve_prefers_the_flow_runs_version_without_index(run_store: ArtifactStore) -> None:
    from prefect import flow, task

    api.save("untouched", frame(0))
    api.save("untouched", frame(1))

    @artifact_task(key="scoped")
    def produce(start: int) -> pd.DataFrame:
        return frame(start)

    @flow(name="newer-writer")
    def newer_writer() -> None:
        produce(900)

    @task
    def write_elsewhere_and_forget() -> None:
        worker = threading.Thread(target=newer_writer)
        worker.start()
        worker.join()
        # Forget what this process saw, as a task running in another process would.
        lineage.clear_indexes()

    @task
    def resolve_all() -> dict[str, int]:
        ctx = get_run_context()
        return {
            "scoped": ctx.get_artifact("scoped").version,
            "scoped-pinned": ctx.get_artifact("scoped:2").version,
            "untouched": ctx.get_artifact("untouched").version,
        }

    @flow
    def scoped_run() -> dict[str, int]:
        produce(1)
        write_elsewhere_and_forget()
        return resolve_all()

    api.save("scoped", frame(-5))
    resolved = scoped_run()

    assert [m.version for m in run_store.versions("scoped")] == [3, 2, 1]
    assert run_store.get("scoped").producer.flow_name == "newer-writer"
    assert resolved == {"scoped": 2, "scoped-pinned": 2, "untouched": 2}
    assert api.load("scoped").equals(frame(900))


def test_resolve_outside_a_run_is_latest(local_store: ArtifactStore) -> None:
    api.save("plain", frame(0), store=local_store)
    api.save("plain", frame(1), store=local_store)

    assert lineage.resolve("plain", local_store).version == 2
    assert lineage.resolve("test/plain:1", local_store).version == 1


def test_bounded_index_forgets_oldest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lineage, "MAX_TRACKED_RUNS", 3)
    index = lineage._BoundedIndex()

    for number in range(5):
        index.add(f"run-{number}", f"p/k:{number}")
    index.add("run-4", "p/k:9")

    assert index.get("run-0") is None
    assert index.get("run-1") is None
    assert index.get("run-2") == ["p/k:2"]
    assert index.get("run-4") == ["p/k:4", "p/k:9"]
