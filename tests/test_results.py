"""Tests of Prefect result persistence through the store (mlart_prefect.results)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlart_prefect import api
from mlart_prefect.errors import IntegrityError, NotFoundError, UnsupportedValueError
from mlart_prefect.results import (
    ArtifactSerializer,
    artifact_result_options,
    forget_saved,
    remember_saved,
)
from mlart_prefect.store import ArtifactStore


def make_frame(rows: int = 8, *, offset: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"x": range(offset, offset + rows), "y": [f"row-{i}" for i in range(rows)]})


def object_files(store: ArtifactStore) -> list[Path]:
    root = Path(store.url) / store.project / "objects"
    return sorted(path for path in root.rglob("*") if path.is_file())


def result_pointer(state: Any) -> dict[str, Any]:
    """Read the result record Prefect wrote for ``state`` and return the pointer inside it."""
    metadata = getattr(state.data, "metadata", state.data)
    record_path = Path(metadata.storage_key)
    record = json.loads(record_path.read_bytes())
    assert record["metadata"]["serializer"]["type"] == "mlart"
    return json.loads(record["result"])


@pytest.fixture
def default_store(local_store: ArtifactStore) -> ArtifactStore:
    """Make ``local_store`` the process-wide default store for the capture and the serializer."""
    api.set_store(local_store)
    forget_saved()
    return local_store


# -- the serializer outside a run -------------------------------------------------------------


def test_dumps_saves_dataframe_and_loads_it(default_store: ArtifactStore) -> None:
    serializer = ArtifactSerializer(key="frame", kind_options={"preview": 3})
    frame = make_frame()

    blob = serializer.dumps(frame)
    pointer = json.loads(blob)

    assert pointer["mlart_result"] == 1
    assert pointer["store"] == default_store.url
    assert pointer["value"]["artifact"] == "test/frame:1"
    assert pointer["value"]["kind"] == "dataset"
    assert len(blob) < 400
    pd.testing.assert_frame_equal(serializer.loads(blob), frame)
    assert default_store.get("frame").kind == "dataset"


def test_dumps_reuses_remembered_version(default_store: ArtifactStore) -> None:
    frame = make_frame()
    manifest = api.save("captured", frame, store=default_store)
    remember_saved(frame, manifest, store=default_store)
    bodies_before = object_files(default_store)

    pointer = json.loads(ArtifactSerializer(key="other-key").dumps(frame))

    assert pointer["value"]["artifact"] == "test/captured:1"
    assert pointer["value"]["sha256"] == manifest.body().sha256
    assert default_store.keys() == ["captured"]
    assert object_files(default_store) == bodies_before


def test_remembered_version_in_other_store(default_store: ArtifactStore, tmp_path: Path) -> None:
    other = ArtifactStore(tmp_path / "capture-store", project="test")
    frame = make_frame()
    remember_saved(frame, api.save("captured", frame, store=other), store=other)

    blob = ArtifactSerializer().dumps(frame)
    pointer = json.loads(blob)

    assert pointer["store"] == default_store.url
    assert pointer["value"]["store"] == other.url
    assert default_store.keys() == []
    pd.testing.assert_frame_equal(ArtifactSerializer().loads(blob), frame)


def test_remembered_version_needs_same_object(default_store: ArtifactStore) -> None:
    frame = make_frame()
    remember_saved(frame, api.save("captured", frame, store=default_store))

    pointer = json.loads(ArtifactSerializer(key="copy").dumps(frame.copy()))

    assert pointer["value"]["artifact"] == "test/copy:1"


def test_remember_saved_ignores_none(default_store: ArtifactStore) -> None:
    remember_saved(None, api.save("something", make_frame(), store=default_store))

    pointer = json.loads(ArtifactSerializer(key="nothing").dumps(None))

    assert "pickle" in pointer["value"]
    assert ArtifactSerializer().loads(json.dumps(pointer).encode()) is None


def test_value_without_kind_is_embedded(default_store: ArtifactStore) -> None:
    serializer = ArtifactSerializer(key="number")

    blob = serializer.dumps({"count": 3, "names": ["a", "b"]})

    assert "pickle" in json.loads(blob)["value"]
    assert serializer.loads(blob) == {"count": 3, "names": ["a", "b"]}
    assert default_store.keys() == []


def test_fallback_error_rejects_value_without_kind(default_store: ArtifactStore) -> None:
    with pytest.raises(UnsupportedValueError, match="no kind is registered"):
        ArtifactSerializer(key="number", fallback="error").dumps(42)


def test_dict_of_frames_stored_item_by_item(default_store: ArtifactStore) -> None:
    serializer = ArtifactSerializer(key="split")
    value = {"train": make_frame(6), "test": make_frame(2, offset=6), "rows": 8}

    pointer = json.loads(serializer.dumps(value))
    loaded = serializer.loads(json.dumps(pointer).encode())

    assert pointer["value"]["dict"]["train"]["artifact"] == "test/split-train:1"
    assert pointer["value"]["dict"]["test"]["artifact"] == "test/split-test:1"
    assert "pickle" in pointer["value"]["dict"]["rows"]
    assert set(loaded) == {"train", "test", "rows"}
    pd.testing.assert_frame_equal(loaded["train"], value["train"])
    pd.testing.assert_frame_equal(loaded["test"], value["test"])
    assert loaded["rows"] == 8


def test_tuple_result_loads_as_tuple(default_store: ArtifactStore) -> None:
    serializer = ArtifactSerializer(key="pair")

    loaded = serializer.loads(serializer.dumps((make_frame(3), make_frame(4))))

    assert isinstance(loaded, tuple)
    assert [len(frame) for frame in loaded] == [3, 4]
    assert default_store.keys() == ["pair-0", "pair-1"]


def test_loads_rejects_foreign_blob() -> None:
    with pytest.raises(ValueError, match="not an mlart result pointer"):
        ArtifactSerializer().loads(b"gASVBQAAAAAAAACMAWGULg==\n")


def test_loads_detects_changed_artifact(default_store: ArtifactStore) -> None:
    serializer = ArtifactSerializer(key="frame")
    pointer = json.loads(serializer.dumps(make_frame()))
    pointer["value"]["sha256"] = "0" * 64

    with pytest.raises(IntegrityError, match="holds a different artifact"):
        serializer.loads(json.dumps(pointer).encode())


def test_loads_names_both_stores_when_missing(default_store: ArtifactStore, tmp_path: Path) -> None:
    blob = ArtifactSerializer(key="frame").dumps(make_frame())
    api.set_store(ArtifactStore(tmp_path / "other-store", project="test"))

    with pytest.raises(NotFoundError, match="was stored in .* but is not in"):
        ArtifactSerializer().loads(blob)


def test_serializer_resolves_by_type_name() -> None:
    from prefect.serializers import Serializer

    serializer = Serializer(type="mlart", key="features", kind_options={"preview": 5})

    assert isinstance(serializer, ArtifactSerializer)
    assert serializer.model_dump()["kind_options"] == {"preview": 5}


def test_options_set_persistence_and_hook() -> None:
    from mlart_prefect.results import keep_reference_only

    options = artifact_result_options(key="k", pass_by_reference=True, preview=4)

    assert options["persist_result"] is True
    assert options["cache_result_in_memory"] is False
    assert options["on_completion"] == [keep_reference_only]
    assert options["result_serializer"].kind_options == {"preview": 4}
    assert "on_completion" not in artifact_result_options()


# -- on the Prefect server --------------------------------------------------------------------


def test_cached_task_loads_stored_version(
    prefect_server: str, default_store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import flow
    from prefect.cache_policies import INPUTS

    from mlart_prefect.capture import artifact_task

    calls: list[str] = []
    loads: list[bytes] = []
    real_loads = ArtifactSerializer.loads

    def counting_loads(self: ArtifactSerializer, blob: bytes) -> Any:
        loads.append(blob)
        return real_loads(self, blob)

    monkeypatch.setattr(ArtifactSerializer, "loads", counting_loads)

    @artifact_task(key="features", cache_policy=INPUTS, **artifact_result_options())
    def features(token: str, rows: int) -> pd.DataFrame:
        calls.append(token)
        return make_frame(rows)

    @flow
    def pipeline(token: str) -> tuple[pd.DataFrame, Any]:
        future = features.submit(token, 5)
        return future.result(), future.state

    token = uuid.uuid4().hex
    first, first_state = pipeline(token)
    bodies = object_files(default_store)
    loads.clear()

    second, second_state = pipeline(token)

    assert calls == [token]
    assert second_state.name == "Cached"
    assert len(loads) >= 1
    pd.testing.assert_frame_equal(second, first)
    assert [m.version for m in default_store.versions("features")] == [1]
    assert object_files(default_store) == bodies
    pointer = result_pointer(first_state)
    assert pointer["value"]["artifact"] == "test/features:1"
    assert "pickle" not in json.dumps(pointer)


def test_cached_result_read_in_another_process(prefect_server: str, default_store: ArtifactStore) -> None:
    from prefect import flow, task
    from prefect.cache_policies import INPUTS

    token = uuid.uuid4().hex

    @task(cache_policy=INPUTS, **artifact_result_options(key="shared-features"))
    def features(token: str) -> pd.DataFrame:
        return make_frame(7)

    @flow
    def pipeline(token: str) -> pd.DataFrame:
        return features(token)

    expected = pipeline(token)
    versions_before = [m.version for m in default_store.versions("shared-features")]

    # The child defines a task that would return other data; a cache hit returns the stored frame.
    script = textwrap.dedent(
        """
        import json, sys
        import pandas as pd
        from prefect import flow, task
        from prefect.cache_policies import INPUTS
        from mlart_prefect.results import artifact_result_options

        @task(cache_policy=INPUTS, **artifact_result_options(key="shared-features"))
        def features(token: str) -> pd.DataFrame:
            raise RuntimeError("the cached result should have been used")

        @flow
        def pipeline(token: str) -> pd.DataFrame:
            return features(token)

        frame = pipeline(sys.argv[1])
        print(json.dumps(frame.to_dict(orient="list")))
        """
    )
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_server,
        "MLART_STORE_URL": default_store.url,
        "MLART_PROJECT": "test",
    }
    completed = subprocess.run(
        [sys.executable, "-c", script, token], env=env, capture_output=True, text=True, timeout=300
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    loaded = pd.DataFrame(json.loads(completed.stdout.strip().splitlines()[-1]))
    pd.testing.assert_frame_equal(loaded, expected)
    assert [m.version for m in default_store.versions("shared-features")] == versions_before


def test_retry_after_capture_adds_no_version(prefect_server: str, default_store: ArtifactStore) -> None:
    from prefect import flow

    from mlart_prefect.capture import artifact_task, get_run_context

    attempts: list[int] = []

    @artifact_task(key="retried", retries=1, retry_delay_seconds=0, **artifact_result_options())
    def flaky() -> pd.DataFrame:
        frame = make_frame(4)
        # Store the output first, as the capture does, then fail as a worker crash would.
        get_run_context().log_dataset("retried", frame)
        attempts.append(len(attempts) + 1)
        if len(attempts) == 1:
            raise RuntimeError("transient failure after the capture")
        return frame

    @flow
    def pipeline() -> tuple[pd.DataFrame, Any]:
        future = flaky.submit()
        return future.result(), future.state

    frame, state = pipeline()

    assert attempts == [1, 2]
    assert [m.version for m in default_store.versions("retried")] == [1]
    assert len(object_files(default_store)) == len(default_store.get("retried").bodies)
    assert result_pointer(state)["value"]["artifact"] == "test/retried:1"
    pd.testing.assert_frame_equal(frame, make_frame(4))


def test_reference_only_state_loads_from_store(prefect_server: str, default_store: ArtifactStore) -> None:
    from prefect import flow, task
    from prefect.results import ResultRecordMetadata

    from mlart_prefect.capture import artifact_task

    @artifact_task(key="upstream", **artifact_result_options(pass_by_reference=True))
    def upstream() -> pd.DataFrame:
        return make_frame(5)

    @task
    def downstream(frame: pd.DataFrame) -> int:
        return int(frame["x"].sum())

    @flow
    def pipeline() -> tuple[Any, int]:
        future = upstream.submit()
        future.wait()
        return future.state, downstream(future)

    state, total = pipeline()

    assert isinstance(state.data, ResultRecordMetadata)
    assert total == sum(range(5))
    assert result_pointer(state)["value"]["artifact"] == "test/upstream:1"
