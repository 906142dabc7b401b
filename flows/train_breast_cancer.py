"""Train and evaluate a breast cancer classifier, capturing its data, model and plots as artifacts.

Run it with ``python flows/train_breast_cancer.py``. Without ``PREFECT_API_URL`` Prefect starts a
temporary local server for the run; artifacts go to the store named by ``MLART_STORE_URL``
(default: the folder ``~/.mlart/store``). The data set is the Wisconsin diagnostic breast cancer
data bundled with scikit-learn, so nothing is downloaded.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from prefect import flow, get_run_logger, task
from sklearn import metrics
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlart_prefect import Dataset, Manifest, Model, Plot, api, artifact_task

FLOW_NAME = "train-breast-cancer"
TARGET = "target"
LABELS = {"example": "breast-cancer"}
MODEL_KEY = "breast-cancer-model"
ARTIFACT_KEYS = (
    "breast-cancer-data", "breast-cancer-train", "breast-cancer-test", MODEL_KEY,
    "confusion-matrix", "roc-curve", "feature-importance",
)


@artifact_task(key="breast-cancer-data", labels={**LABELS, "stage": "raw"},
               description="Wisconsin diagnostic breast cancer data, as bundled with scikit-learn.")
def load_data() -> pd.DataFrame:
    """Load the 569 samples with their 30 features and the target (0 malignant, 1 benign)."""
    bunch = load_breast_cancer(as_frame=True)
    return bunch.frame


@artifact_task(key="breast-cancer", labels={**LABELS, "stage": "split"})
def split_data(data: pd.DataFrame, *, test_size: float, seed: int) -> dict[str, Dataset]:
    """Split the data into stratified train and test sets, stored as two datasets."""
    train, test = train_test_split(
        data, test_size=test_size, random_state=seed, stratify=data[TARGET]
    )
    return {
        "train": Dataset(train.reset_index(drop=True), key="breast-cancer-train"),
        "test": Dataset(test.reset_index(drop=True), key="breast-cancer-test"),
    }


@task
def train_model(train: pd.DataFrame, *, n_estimators: int, max_depth: int | None, seed: int) -> Pipeline:
    """Fit a scaler and random forest pipeline on the training set."""
    pipeline = Pipeline([
        ("scale", StandardScaler()),
        ("forest", RandomForestClassifier(
            n_estimators=n_estimators, max_depth=max_depth, random_state=seed, n_jobs=1
        )),
    ])
    pipeline.fit(train.drop(columns=TARGET), train[TARGET])
    return pipeline


@artifact_task(key=MODEL_KEY, labels={**LABELS, "stage": "model"})
def evaluate_model(
    model: Pipeline, train: pd.DataFrame, test: pd.DataFrame, *, parameters: dict[str, Any]
) -> Model:
    """Score the model on the test set and store it with its metrics and test predictions."""
    features, truth = test.drop(columns=TARGET), test[TARGET]
    predicted = model.predict(features)
    probability = model.predict_proba(features)[:, 1]

    scores = {
        "accuracy": metrics.accuracy_score(truth, predicted),
        "precision": metrics.precision_score(truth, predicted),
        "recall": metrics.recall_score(truth, predicted),
        "f1": metrics.f1_score(truth, predicted),
        "roc_auc": metrics.roc_auc_score(truth, probability),
        "train_accuracy": model.score(train.drop(columns=TARGET), train[TARGET]),
    }
    predictions = pd.DataFrame({"truth": truth, "predicted": predicted, "probability": probability})
    report = metrics.classification_report(truth, predicted, target_names=["malignant", "benign"])

    get_run_logger().info("Test accuracy %.3f, ROC AUC %.3f", scores["accuracy"], scores["roc_auc"])
    return Model(
        model,
        serializer="skops",
        metrics={name: round(float(value), 6) for name, value in scores.items()},
        parameters=parameters,
        extra_data={"test-predictions": predictions, "classification-report.txt": report.encode()},
    )


@artifact_task(key="confusion-matrix", labels=LABELS)
def plot_confusion_matrix(model: Pipeline, test: pd.DataFrame) -> Plot:
    """Draw the test set's confusion matrix."""
    figure = Figure(figsize=(5, 4.5), dpi=100)
    axes = figure.add_subplot()
    metrics.ConfusionMatrixDisplay.from_predictions(
        test[TARGET], model.predict(test.drop(columns=TARGET)),
        display_labels=["malignant", "benign"], cmap="Blues", ax=axes, colorbar=False,
    )
    axes.set_title("Confusion matrix (test set)")
    figure.tight_layout()
    return Plot(figure)


@artifact_task(key="roc-curve", labels=LABELS)
def plot_roc_curve(model: Pipeline, test: pd.DataFrame) -> Plot:
    """Draw the ROC curve of the test set."""
    figure = Figure(figsize=(5, 4.5), dpi=100)
    axes = figure.add_subplot()
    metrics.RocCurveDisplay.from_estimator(
        model, test.drop(columns=TARGET), test[TARGET], name="random forest", ax=axes
    )
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    axes.set_title("ROC curve (test set)")
    axes.legend(loc="lower right")
    figure.tight_layout()
    return Plot(figure)


@artifact_task(key="feature-importance", labels=LABELS)
def feature_importance(model: Pipeline, train: pd.DataFrame) -> Dataset:
    """Tabulate the forest's impurity-based feature importances, largest first."""
    forest: RandomForestClassifier = model.named_steps["forest"]
    spread = np.std([tree.feature_importances_ for tree in forest.estimators_], axis=0)
    table = pd.DataFrame({
        "feature": train.drop(columns=TARGET).columns,
        "importance": forest.feature_importances_,
        "std": spread,
    })
    table = table.sort_values("importance", ascending=False, ignore_index=True)
    table["rank"] = np.arange(1, len(table) + 1)
    return Dataset(table, preview=30)


@flow(name=FLOW_NAME, log_prints=True)
def train_breast_cancer(
    n_estimators: int = 200, max_depth: int | None = None, test_size: float = 0.25, seed: int = 42
) -> dict[str, Any]:
    """Load, split, train, evaluate and plot; every output is a versioned artifact.

    Returns the flow run id and the model's test metrics.
    """
    from prefect.runtime import flow_run

    data = load_data()
    split = split_data(data, test_size=test_size, seed=seed)
    train, test = split["train"], split["test"]

    parameters = {"n_estimators": n_estimators, "max_depth": max_depth, "test_size": test_size,
                  "seed": seed}
    model = train_model(train, n_estimators=n_estimators, max_depth=max_depth, seed=seed)
    evaluate_model(model, train, test, parameters=parameters)
    plot_confusion_matrix(model, test)
    plot_roc_curve(model, test)
    feature_importance(model, train)

    model_version = api.get_store().get(MODEL_KEY)
    return {"flow_run_id": str(flow_run.id), "model": model_version.ref,
            "metrics": model_version.spec["metrics"]}


def latest_versions() -> list[Manifest]:
    """Return the latest version of every key this flow writes, sorted by key.

    The model's extra data saved as versions of their own (the test predictions) are included.
    A run that stores content equal to a key's latest version gets that version back instead of
    a new one, so the latest versions are what the last run produced.
    NOTE: runs of this flow that overlap on one store may interleave their versions here.
    """
    store = api.get_store()
    manifests = [store.get(key) for key in ARTIFACT_KEYS]
    model = next(manifest for manifest in manifests if manifest.key == MODEL_KEY)
    for entry in model.spec["extra_data"].values():
        if entry["type"] == "artifact":
            manifests.append(store.get(entry["ref"]))
    return sorted(manifests, key=lambda m: m.key)


def _command(name: str) -> str:
    """Return ``name`` when it is on PATH, else its path beside this Python (a virtualenv)."""
    if shutil.which(name):
        return name
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else name


def _aligned(commands: list[tuple[str, str]]) -> str:
    """Return commands one per line, each followed by its comment in one aligned column."""
    width = max(len(command) for command, _ in commands)
    return "".join(f"  {command:<{width}}  # {comment}\n" for command, comment in commands)


def print_summary(flow_run_id: str) -> None:
    """Print the versions the run stored and the commands that show them."""
    store = api.get_store()
    print(f"\nArtifacts in {store.url}:")
    manifests = latest_versions()
    width = max(len(manifest.ref) for manifest in manifests)
    for manifest in manifests:
        print(f"  {manifest.kind:<8} {manifest.ref:<{width}}  {manifest.body().uri}")

    mlart, prefect = _command("mlart"), _command("prefect")
    model = f"{store.project}/{MODEL_KEY}"
    commands = _aligned([
        (f"{mlart} ls", "latest version of every key"),
        (f"{mlart} show {model}", "metrics, parameters, lineage"),
        (f"{mlart} lineage {model}", "what the model was made from"),
        (f"{mlart} ui", "web view on http://127.0.0.1:8765"),
    ])
    print(
        f"\nLook at them with:\n{commands}"
        f"\nThe Prefect UI shows the run with its artifact cards: start `{prefect} server start` "
        "and open\n"
        f"  http://127.0.0.1:4200/runs/flow-run/{flow_run_id}"
    )


if __name__ == "__main__":
    result = train_breast_cancer()
    print(f"\nTest metrics: {result['metrics']}")
    print_summary(result["flow_run_id"])
