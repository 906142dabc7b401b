"""A store filled by real Prefect flow runs, shared by the CLI and web view tests.

Two runs of the ``iris-pipeline`` flow save a dataset, a scikit-learn model and a matplotlib plot
(versions 1 and 2 of each key). Then an ``iris-report`` flow run loads the latest model and data
and saves a summary dataset, so lineage spans three levels. The store is built once per test
process into a template folder; each test gets its own copy.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

PROJECT = "iris"
PIPELINE_FLOW = "iris-pipeline"
REPORT_FLOW = "iris-report"


@dataclass(frozen=True)
class FlowStoreInfo:
    """Facts about the filled store that tests assert against."""

    path: Path
    first_run_done: datetime
    """A time after every version of the first pipeline run and before any later version."""


_template: FlowStoreInfo | None = None
_template_error: BaseException | None = None


def _run_flows(store_path: Path) -> datetime:
    # Imported here: the flows need the Prefect server fixture to be running.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from prefect import flow, task
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from mlart_prefect import api
    from mlart_prefect.store import ArtifactStore

    store = ArtifactStore(store_path, project=PROJECT)

    @task
    def make_data(seed: int) -> None:
        frame = (
            load_iris(as_frame=True)
            .frame.sample(frac=0.8, random_state=seed)
            .reset_index(drop=True)
        )
        api.save(
            "iris",
            frame,
            store=store,
            labels={"stage": "raw", "team": "ml"},
            description="Iris flower measurements with the species code",
        )

    @task
    def train(c: float) -> None:
        frame = api.load("iris", store=store)
        features, target = frame.drop(columns="target"), frame["target"]
        model = LogisticRegression(C=c, max_iter=500).fit(features, target)
        accuracy = float(model.score(features, target))
        api.save(
            "iris-model",
            model,
            kind="model",
            store=store,
            labels={"stage": "train", "team": "ml"},
            metrics={"accuracy": accuracy},
            parameters={"C": c, "max_iter": 500},
        )

    @task
    def scatter() -> None:
        frame = api.load("iris", store=store)
        figure, axes = plt.subplots(figsize=(4, 3), dpi=80)
        axes.scatter(frame["sepal length (cm)"], frame["petal length (cm)"], c=frame["target"], s=8)
        axes.set_title("Sepal vs petal length")
        api.save("iris-scatter", figure, store=store, labels={"stage": "report", "team": "ml"})

    @flow(name=PIPELINE_FLOW)
    def pipeline(seed: int, c: float) -> None:
        make_data(seed)
        train(c)
        scatter()

    @task
    def summarize() -> None:
        api.load("iris-model", store=store)
        frame = api.load("iris", store=store)
        summary = frame.groupby("target").mean().reset_index()
        api.save(
            "iris-summary",
            summary,
            store=store,
            owner="alice",
            labels={"stage": "report", "team": "analytics"},
        )

    @flow(name=REPORT_FLOW)
    def report() -> None:
        summarize()

    pipeline(seed=1, c=1.0)
    first_run_done = datetime.now(UTC)
    pipeline(seed=2, c=0.5)
    report()
    store.tag("iris-model:1", "production")
    store.tag("iris:2", "staging")
    return first_run_done


def filled_store_template() -> FlowStoreInfo:
    """Run the flows once per process into a temporary folder and describe the result.

    Needs the ``prefect_server`` fixture to be active.
    """
    global _template, _template_error
    if _template_error is not None:
        raise RuntimeError(
            "Filling the store with the example flows failed earlier"
        ) from _template_error
    if _template is None:
        root = Path(tempfile.mkdtemp(prefix="mlart-flow-store-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        try:
            first_run_done = _run_flows(root / "store")
        except BaseException as exc:
            _template_error = exc
            raise
        _template = FlowStoreInfo(path=root / "store", first_run_done=first_run_done)
    return _template


def copy_store(template: FlowStoreInfo, target: Path) -> Path:
    """Copy the template store into ``target`` (a folder that does not exist yet) and return it."""
    shutil.copytree(template.path, target)
    return target
