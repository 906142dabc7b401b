"""Prefect artifacts built from versions: keys, markdown cards, preview tables and publishing."""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Any

import pandas as pd
import pytest

from mlart_prefect import api, summaries
from mlart_prefect.manifest import Manifest
from mlart_prefect.settings import get_settings
from mlart_prefect.store import ArtifactStore
from tests._prefect_helpers import read_artifacts, table_rows


@pytest.fixture
def run_store(prefect_server: str, local_store: ArtifactStore) -> ArtifactStore:
    """The local store, set as the default store that flows and tasks save into."""
    api.set_store(local_store)
    return local_store


def figure(width: float = 2, height: float = 1.5, dpi: int = 40) -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=dpi)
    ax.plot([1, 3, 2])
    ax.set_title("loss")
    return fig


@pytest.mark.parametrize(
    ("project", "key", "expected"),
    [
        ("churn", "Training_Data", "churn-training-data"),
        ("default", "model.v2", "default-model-v2"),
        ("p", "a__b--c", "p-a-b-c"),
        ("Team-1", "-x-", "team-1-x"),
    ],
)
def test_prefect_artifact_key(project: str, key: str, expected: str) -> None:
    assert summaries.prefect_artifact_key(project, key) == expected


def test_prefect_artifact_key_is_cut() -> None:
    key = summaries.prefect_artifact_key("p", "k" * 198 + "_x" * 20)

    assert len(key) <= summaries.ARTIFACT_KEY_MAX_LENGTH
    assert re.fullmatch(r"[a-z0-9-]+", key)
    assert not key.endswith("-")


# -- the card, built without a server ----------------------------------------------------------


def test_dataset_card_lists_fields_schema_and_preview(local_store: ArtifactStore) -> None:
    api.save("source", pd.DataFrame({"a": [1]}), store=local_store)
    data = pd.DataFrame({"price": [1.5, 2.5, None], "name": ["a|b", "c", "d"]})
    manifest = api.save("prices", data, store=local_store, labels={"stage": "raw"},
                        description="line one\nline two", inputs=["source"])

    card = summaries.markdown_card(manifest, store=local_store)

    body = manifest.body()
    assert card.startswith("### Dataset `test/prices:1`\n")
    assert "| Reference | `test/prices:1` |" in card
    assert "| Version | 1 |" in card
    assert "| Labels | `stage=raw` |" in card
    assert "| Description | line one line two |" in card
    assert f"| Body | `{body.uri}` |" in card
    assert f"| SHA-256 | `{body.sha256}` |" in card
    assert f"({body.size:,} bytes)" in card
    assert "| Inputs | `test/source:1` |" in card
    assert "#### Schema" in card
    assert "| price | float64 |" in card
    assert "#### Statistics" in card
    assert "#### Preview" in card
    assert "| 0 | 1.5 | a\\|b |" in card
    assert "| 2 |  | d |" in card
    assert "web view" not in card


def test_card_links_to_web_view_when_configured(local_store: ArtifactStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLART_UI_URL", "http://127.0.0.1:8765/")
    get_settings(reload=True)
    manifest = api.save("linked-model", {"weights": [1, 2]}, kind="model", store=local_store,
                        metrics={"auc": 0.75}, extra_data={"sample": pd.DataFrame({"a": [1]})})

    card = summaries.markdown_card(manifest, store=local_store)

    assert "[Open test/linked-model:1 in the artifacts web view](http://127.0.0.1:8765/artifacts/test/linked-model/1)" in card
    assert "| auc | 0.75 |" in card
    assert "- sample: [test/linked-model-sample:1](http://127.0.0.1:8765/artifacts/test/linked-model-sample/1)" in card


def test_plot_card_embeds_png_under_cap(local_store: ArtifactStore, monkeypatch: pytest.MonkeyPatch) -> None:
    small = api.save("small-plot", figure(), store=local_store)
    card = summaries.markdown_card(small, store=local_store)

    match = re.search(r"!\[loss\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", card)
    assert match is not None
    assert base64.b64decode(match.group(1)) == local_store.read_bytes(small, "small-plot.png")

    monkeypatch.setattr(summaries, "IMAGE_MAX_BYTES", 100)
    capped = summaries.markdown_card(small, store=local_store)
    assert "data:image/png" not in capped
    assert f"over the 100 bytes shown here; it is stored at_ `{small.body('small-plot.png').uri}`" in capped


def test_plot_without_png_has_a_note(local_store: ArtifactStore) -> None:
    manifest = api.save("svg-plot", figure(), store=local_store, formats=("svg",))

    card = summaries.markdown_card(manifest, store=local_store)

    assert "No PNG was stored for this plot" in card


def test_preview_table_cells_are_strict_json(local_store: ArtifactStore) -> None:
    data = pd.DataFrame({
        "value": [math.nan, math.inf, -math.inf, 1.25],
        "when": pd.to_datetime(["2024-01-01", None, "2024-01-03", "2024-01-04"]),
        "text": ["x" * 250, None, "b", "c"],
    })
    manifest = api.save("odd-values", data, store=local_store)

    rows = summaries.preview_table(manifest)

    json.dumps(rows, allow_nan=False)
    assert [row["value"] for row in rows] == [None, "inf", "-inf", 1.25]
    assert rows[0]["when"] == "2024-01-01T00:00:00"
    assert rows[1]["when"] is None
    assert rows[1]["text"] is None
    assert rows[0]["text"] == "x" * 200 + "… (+50 chars)"
    assert list(rows[0]) == ["index", "value", "when", "text"]


def test_preview_table_is_empty_for_other_kinds(local_store: ArtifactStore) -> None:
    model = api.save("no-preview-model", [1], kind="model", store=local_store)
    no_preview = api.save("no-preview", pd.DataFrame({"a": [1]}), store=local_store, preview=0)

    assert summaries.preview_table(model) == []
    assert summaries.preview_table(no_preview) == []


# -- publishing to the server ------------------------------------------------------------------


def test_task_and_flow_body_saves_are_published(run_store: ArtifactStore) -> None:
    from prefect import flow, task
    from prefect.runtime import flow_run, task_run

    data = pd.DataFrame({"city": ["Oslo", "Lima"], "temp": [3.5, float("nan")]})

    @task
    def save_in_task() -> str:
        api.save("weather", data, labels={"source": "task"})
        return str(task_run.id)

    @flow
    def publishing() -> dict[str, str]:
        task_run_id = save_in_task()
        api.save("weather-body", data)
        return {"task_run_id": task_run_id, "flow_run_id": str(flow_run.id)}

    ids = publishing()

    card, table = read_artifacts(key="test-weather"), read_artifacts(key="test-weather-preview")
    assert len(card) == 1
    assert len(table) == 1
    assert str(card[0].task_run_id) == ids["task_run_id"]
    assert str(card[0].flow_run_id) == ids["flow_run_id"]
    assert card[0].description == "Dataset test/weather:1"
    assert card[0].metadata_ == {"mlart_ref": "test/weather:1", "kind": "dataset", "version": "1"}
    assert "| Labels | `source=task` |" in card[0].data
    assert table_rows(table[0]) == [
        {"index": 0, "city": "Oslo", "temp": 3.5},
        {"index": 1, "city": "Lima", "temp": None},
    ]
    body_cards = read_artifacts(key="test-weather-body")
    assert len(body_cards) == 1
    assert body_cards[0].task_run_id is None
    assert str(body_cards[0].flow_run_id) == ids["flow_run_id"]


def test_each_version_adds_a_prefect_artifact(run_store: ArtifactStore) -> None:
    from prefect import flow

    @flow
    def three_versions() -> None:
        for start in range(3):
            api.save("counter", pd.DataFrame({"n": [start]}))

    three_versions()

    cards = read_artifacts(key="test-counter")
    assert [card.metadata_["version"] for card in cards] == ["1", "2", "3"]
    assert [table_rows(t)[0]["n"] for t in read_artifacts(key="test-counter-preview")] == [0, 1, 2]


def test_nothing_is_published_outside_a_run(run_store: ArtifactStore) -> None:
    manifest = api.save("outside-run", pd.DataFrame({"a": [1]}))

    assert manifest.producer.in_prefect_run is False
    assert read_artifacts(key="test-outside-run") == []


def test_explicit_publish_outside_a_run(run_store: ArtifactStore) -> None:
    manifest = api.save("published-by-hand", figure())

    ids = summaries.publish(manifest, store=run_store)

    found = read_artifacts(key="test-published-by-hand")
    assert [artifact.id for artifact in found] == ids
    assert found[0].flow_run_id is None
    assert found[0].task_run_id is None
    assert "data:image/png;base64," in found[0].data


def test_async_publish_creates_the_same_artifacts(run_store: ArtifactStore) -> None:
    import asyncio

    manifest: Manifest = api.save("async-published", pd.DataFrame({"a": [7, 8]}))

    ids = asyncio.run(summaries.apublish(manifest, store=run_store))

    assert len(ids) == 2
    assert table_rows(read_artifacts(key="test-async-published-preview")[0]) == [
        {"index": 0, "a": 7},
        {"index": 1, "a": 8},
    ]
