"""Tests of the example flow flows/train_breast_cancer.py against the Prefect test server."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mlart_prefect import api
from mlart_prefect.store import ArtifactStore

FLOW_FILE = Path(__file__).resolve().parents[1] / "flows" / "train_breast_cancer.py"
DATASET_KEYS = {
    "breast-cancer-data", "breast-cancer-train", "breast-cancer-test", "feature-importance",
    "breast-cancer-model-test-predictions",
}
PLOT_KEYS = {"confusion-matrix", "roc-curve"}


def load_flow_module() -> ModuleType:
    """Import the flow file as the module ``train_breast_cancer``."""
    spec = importlib.util.spec_from_file_location("train_breast_cancer", FLOW_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def flow_module() -> ModuleType:
    return load_flow_module()


@pytest.fixture
def flow_run(prefect_server: str, local_store: ArtifactStore, flow_module: ModuleType) -> dict[str, Any]:
    """Run the flow once, with a small forest, into an empty local store."""
    api.set_store(local_store)
    return flow_module.train_breast_cancer(n_estimators=25, seed=7)


def test_flow_stores_every_artifact(flow_run: dict[str, Any], local_store: ArtifactStore) -> None:
    kinds = {key: local_store.get(key).kind for key in local_store.keys()}

    assert kinds == {
        **dict.fromkeys(DATASET_KEYS, "dataset"),
        **dict.fromkeys(PLOT_KEYS, "plot"),
        "breast-cancer-model": "model",
    }
    for key in kinds:
        manifest = local_store.get(key)
        assert manifest.version == 1
        assert manifest.producer.flow_name == "train-breast-cancer"
        assert manifest.producer.flow_run_id == flow_run["flow_run_id"]
        assert manifest.labels["example"] == "breast-cancer"


def test_flow_datasets_have_expected_shape(flow_run: dict[str, Any], local_store: ArtifactStore) -> None:
    data = local_store.get("breast-cancer-data").spec
    train = local_store.get("breast-cancer-train").spec
    test = local_store.get("breast-cancer-test").spec
    importance = api.load(local_store.get("feature-importance"), store=local_store)

    assert (data["num_rows"], data["num_columns"]) == (569, 31)
    assert train["num_rows"] + test["num_rows"] == 569
    assert test["num_rows"] == 143
    assert len(importance) == 30
    assert list(importance.columns) == ["feature", "importance", "std", "rank"]
    assert importance["importance"].is_monotonic_decreasing
    assert importance["importance"].sum() == pytest.approx(1.0)


def test_flow_model_has_metrics_and_extra_data(flow_run: dict[str, Any], local_store: ArtifactStore) -> None:
    model = local_store.get("breast-cancer-model")
    spec = model.spec

    assert set(spec["metrics"]) == {"accuracy", "precision", "recall", "f1", "roc_auc", "train_accuracy"}
    assert 0.85 < spec["metrics"]["accuracy"] <= 1.0
    assert 0.9 < spec["metrics"]["roc_auc"] <= 1.0
    assert flow_run["metrics"] == spec["metrics"]
    assert flow_run["model"] == model.ref
    assert spec["parameters"] == {"n_estimators": 25, "max_depth": None, "test_size": 0.25, "seed": 7}
    assert spec["serializer"] == "skops"
    assert spec["extra_data"]["test-predictions"]["ref"] == "test/breast-cancer-model-test-predictions:1"
    assert spec["extra_data"]["classification-report.txt"]["type"] == "body"
    report = local_store.read_bytes(model, "classification-report.txt").decode()
    assert "malignant" in report
    assert "benign" in report


def test_flow_model_loads_and_predicts(flow_run: dict[str, Any], local_store: ArtifactStore) -> None:
    model = api.load("breast-cancer-model", store=local_store)
    test = api.load("breast-cancer-test", store=local_store)

    accuracy = model.score(test.drop(columns="target"), test["target"])

    assert accuracy == pytest.approx(flow_run["metrics"]["accuracy"], abs=1e-6)


def test_flow_lineage(flow_run: dict[str, Any], local_store: ArtifactStore) -> None:
    model = local_store.get("breast-cancer-model")
    train = local_store.get("breast-cancer-train")

    assert "test/breast-cancer-train:1" in model.inputs
    assert "test/breast-cancer-test:1" in model.inputs
    assert train.inputs == ["test/breast-cancer-data:1"]
    assert "test/breast-cancer-test:1" in local_store.get("roc-curve").inputs
    assert "test/breast-cancer-train:1" in local_store.get("feature-importance").inputs
    # A plot made from the model and the test set lists those two versions: not the model's
    # extra-data dataset, nor the train set that the split task saved with the test set.
    assert local_store.get("confusion-matrix").inputs == [
        "test/breast-cancer-model:1", "test/breast-cancer-test:1"
    ]


def test_flow_plots_are_images(flow_run: dict[str, Any], local_store: ArtifactStore) -> None:
    for key in PLOT_KEYS:
        manifest = local_store.get(key)
        png = local_store.read_bytes(manifest, manifest.spec["files"]["png"])
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert (manifest.spec["width"], manifest.spec["height"]) == (500, 450)


def test_flow_publishes_prefect_cards(flow_run: dict[str, Any]) -> None:
    from mlart_prefect.summaries import prefect_artifact_key
    from tests._prefect_helpers import read_artifacts

    published = {artifact.key for artifact in read_artifacts(flow_run_id=flow_run["flow_run_id"])}

    assert prefect_artifact_key("test", "breast-cancer-model") in published
    assert prefect_artifact_key("test", "roc-curve") in published
    assert f"{prefect_artifact_key('test', 'feature-importance')}-preview" in published


def test_second_run_adds_no_version(
    flow_run: dict[str, Any], local_store: ArtifactStore, flow_module: ModuleType
) -> None:
    second = flow_module.train_breast_cancer(n_estimators=25, seed=7)

    assert second["flow_run_id"] != flow_run["flow_run_id"]
    assert second["model"] == "test/breast-cancer-model:1"
    assert second["metrics"] == flow_run["metrics"]
    for manifest in flow_module.latest_versions():
        assert manifest.version == 1, manifest.ref
        assert manifest.producer.flow_run_id == flow_run["flow_run_id"]


def test_summary_lists_versions_and_commands(
    flow_run: dict[str, Any], flow_module: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    flow_module.print_summary(flow_run["flow_run_id"])
    printed = capsys.readouterr().out

    assert "test/breast-cancer-model:1" in printed
    assert "test/breast-cancer-model-test-predictions:1" in printed
    assert "mlart ls" in printed
    assert "mlart show test/breast-cancer-model" in printed
    assert "mlart ui" in printed
    assert f"/runs/flow-run/{flow_run['flow_run_id']}" in printed
