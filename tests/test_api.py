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
