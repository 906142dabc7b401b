"""save() and load() outside Prefect: option checks and body media types."""

from __future__ import annotations

import pandas as pd
import pytest

import mlart_prefect as mlart
from mlart_prefect.errors import UnsupportedValueError
from mlart_prefect.kinds.base import BodyPayload
from mlart_prefect.store import ArtifactStore


def test_unknown_option_names_accepted(local_store: ArtifactStore) -> None:
    frame = pd.DataFrame({"a": [1, 2]})
    with pytest.raises(UnsupportedValueError, match=r"'previewz' for a dataset artifact; .*accept: format, local_path, preview, stats"):
        mlart.save("frame", frame, store=local_store, previewz=3)
    assert local_store.keys() == []


def test_round_trip_outside_run(local_store: ArtifactStore) -> None:
    frame = pd.DataFrame({"a": [1, 2]})
    manifest = mlart.save("frame", frame, store=local_store, labels={"stage": "raw"})

    assert manifest.ref == "test/frame:1"
    assert manifest.producer.in_prefect_run is False
    pd.testing.assert_frame_equal(mlart.load("frame:1", store=local_store), frame)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("report.txt", "text/plain"), ("page.html", "text/html"), ("model.pkl", "application/octet-stream")],
)
def test_body_media_type_guessed(name: str, expected: str) -> None:
    assert BodyPayload(name, data=b"x").media_type == expected
    assert BodyPayload(name, data=b"x", media_type="image/png").media_type == "image/png"


_CONCURRENT_FIRST_SAVES = """
import sys
import threading

import pandas as pd

import mlart_prefect as mlart
from mlart_prefect.store import ArtifactStore

store = ArtifactStore(sys.argv[1], project="p")
barrier = threading.Barrier(8)
failures = []


def save(number):
    frame = pd.DataFrame({"a": [number]})
    barrier.wait()
    try:
        mlart.save("shared", frame, store=store)
    except Exception as exc:
        failures.append(repr(exc))


threads = [threading.Thread(target=save, args=(number,)) for number in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(failures)
print(sorted(manifest.version for manifest in store.versions("shared")))
"""


def test_concurrent_first_saves_find_kinds(tmp_path) -> None:
    """Threads that save at once in a new process all find the built-in kinds."""
    import subprocess
    import sys

    completed = subprocess.run(
        [sys.executable, "-c", _CONCURRENT_FIRST_SAVES, str(tmp_path / "store")],
        capture_output=True, text=True, timeout=120, check=False,
    )

    assert completed.returncode == 0, completed.stderr
    failures, versions = completed.stdout.strip().splitlines()[-2:]
    assert failures == "[]"
    assert versions == str(list(range(1, 9)))


@pytest.mark.parametrize("wrapper", ["Model", "Dataset", "Plot"])
def test_wrapper_passed_to_save_rejected(local_store: ArtifactStore, wrapper: str) -> None:
    value = getattr(mlart, wrapper)(pd.DataFrame({"a": [1]}))

    with pytest.raises(UnsupportedValueError, match=f"not a {wrapper} wrapper.*kind='model'"):
        mlart.save("wrapped", value, store=local_store, kind="model")

    assert local_store.keys() == []
