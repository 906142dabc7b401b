"""artifact_task and the run context against a real temporary Prefect server and a local store."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import threading
from collections import namedtuple
from typing import Any

import pandas as pd
import pytest

from mlart_prefect import api
from mlart_prefect.capture import Dataset, Model, Plot, PlotArtifact, artifact_task, get_run_context
from mlart_prefect.errors import InvalidNameError, NotFoundError, UnsupportedValueError
from mlart_prefect.kinds.plot import PlotImage
from mlart_prefect.store import ArtifactStore
from tests._prefect_helpers import read_artifacts, table_rows


@pytest.fixture
def run_store(prefect_server: str, local_store: ArtifactStore) -> ArtifactStore:
    """The local store, set as the default store that flows and tasks save into."""
    api.set_store(local_store)
    return local_store


def small_frame(start: int, rows: int = 6) -> pd.DataFrame:
    return pd.DataFrame({"x": list(range(start, start + rows)), "y": [i % 2 for i in range(rows)]})


def small_figure(values: list[float]) -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1.5), dpi=40)
    ax.plot(values)
    ax.set_title("scores")
    return fig


def versions_of(store: ArtifactStore, key: str) -> list[int]:
    return sorted(m.version for m in store.versions(key))


# -- one flow, three kinds, two runs -----------------------------------------------------------


def test_flow_captures_three_kinds_twice(run_store: ArtifactStore) -> None:
    from prefect import flow
    from sklearn.linear_model import LogisticRegression

    @artifact_task(key="scores")
    def make_scores(start: int) -> pd.DataFrame:
        return small_frame(start)

    @artifact_task(key="scores-plot")
    def plot_scores(df: pd.DataFrame) -> Any:
        return small_figure(df["x"].tolist())

    @artifact_task(key="classifier")
    def train(df: pd.DataFrame) -> Any:
        return LogisticRegression().fit(df[["x"]], df["y"])

    @flow(name="capture-pipeline")
    def pipeline(start: int) -> dict[str, Any]:
        scores = make_scores.submit(start)
        plot = plot_scores.submit(scores)
        model = train.submit(scores)
        return {
            "scores": str(scores.task_run_id),
            "plot": str(plot.task_run_id),
            "model": str(model.task_run_id),
            "frame": scores.result(),
            "figure": plot.result(),
            "estimator": model.result(),
        }

    first = pipeline(0, return_state=True)
    second = pipeline(100, return_state=True)
    ids = second.result()

    flow_run_id = str(second.state_details.flow_run_id)
    assert str(first.state_details.flow_run_id) != flow_run_id
    for key, task_name, id_name in [
        ("scores", "make_scores", "scores"),
        ("scores-plot", "plot_scores", "plot"),
        ("classifier", "train", "model"),
    ]:
        assert versions_of(run_store, key) == [1, 2]
        manifest = run_store.get(key)
        assert manifest.version == 2
        assert manifest.producer.flow_run_id == flow_run_id
        assert manifest.producer.task_run_id == ids[id_name]
        assert manifest.producer.task_name == task_name
        assert manifest.producer.flow_name == "capture-pipeline"
        assert manifest.producer.in_prefect_run is True
        assert run_store.get(f"{key}:1").producer.flow_run_id == str(first.state_details.flow_run_id)

    assert run_store.get("scores").kind == "dataset"
    assert run_store.get("scores-plot").kind == "plot"
    assert run_store.get("classifier").kind == "model"
    assert run_store.get("scores").inputs == []
    assert run_store.get("scores-plot").inputs == ["test/scores:2"]
    assert run_store.get("classifier").inputs == ["test/scores:2"]
    assert run_store.get("classifier:1").inputs == ["test/scores:1"]
    assert run_store.get("scores").producer.parameters == {"start": 100}

    # The caller received the plain values, and the stored versions hold the same data.
    pd.testing.assert_frame_equal(ids["frame"], small_frame(100))
    pd.testing.assert_frame_equal(api.load("test/scores:2"), small_frame(100))
    assert type(ids["estimator"]).__name__ == "LogisticRegression"
    assert api.load("test/classifier:2").coef_.tolist() == ids["estimator"].coef_.tolist()

    _check_prefect_artifacts(run_store, ids)


def _check_prefect_artifacts(store: ArtifactStore, ids: dict[str, Any]) -> None:
    cards = read_artifacts(key="test-scores", task_run_id=ids["scores"])
    assert [card.type for card in cards] == ["markdown"]
    card = cards[0].data
    assert "### Dataset `test/scores:2`" in card
    assert "| Version | 2 |" in card
    assert "| 0 | 100 | 0 |" in card
    assert "| 5 | 105 | 1 |" in card
    assert cards[0].metadata_ == {"mlart_ref": "test/scores:2", "kind": "dataset", "version": "2"}
    assert len(read_artifacts(key="test-scores")) == 2

    tables = read_artifacts(key="test-scores-preview", task_run_id=ids["scores"])
    assert [table.type for table in tables] == ["table"]
    assert table_rows(tables[0]) == [
        {"index": i, "x": 100 + i, "y": i % 2} for i in range(6)
    ]

    plot_cards = read_artifacts(key="test-scores-plot", task_run_id=ids["plot"])
    assert len(plot_cards) == 1
    match = re.search(r"!\[scores\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", plot_cards[0].data)
    assert match is not None
    assert base64.b64decode(match.group(1)) == store.read_bytes(store.get("scores-plot"), "scores-plot.png")

    model_cards = read_artifacts(key="test-classifier", task_run_id=ids["model"])
    assert len(model_cards) == 1
    assert "### Model `test/classifier:2`" in model_cards[0].data
    assert "LogisticRegression" in model_cards[0].data
    assert read_artifacts(key="test-classifier-preview") == []


# -- concurrency, async, failures and retries --------------------------------------------------


def test_map_over_twenty_items_keeps_every_version(run_store: ArtifactStore) -> None:
    from prefect import flow

    @artifact_task(key="mapped")
    def make(i: int) -> pd.DataFrame:
        return pd.DataFrame({"item": [i]})

    @flow
    def fan_out() -> list[pd.DataFrame]:
        return make.map(list(range(20))).result()

    results = fan_out()

    assert [frame["item"][0] for frame in results] == list(range(20))
    assert versions_of(run_store, "mapped") == list(range(1, 21))
    stored = {int(api.load(m)["item"][0]) for m in run_store.versions("mapped")}
    assert stored == set(range(20))
    task_runs = {m.producer.task_run_id for m in run_store.versions("mapped")}
    assert len(task_runs) == 20


def test_concurrent_submits_to_one_key(run_store: ArtifactStore) -> None:
    from prefect import flow

    @artifact_task(key="shared-key")
    def make(i: int) -> pd.DataFrame:
        return pd.DataFrame({"item": [i], "text": [f"value {i}"]})

    @flow
    def eight_at_once() -> list[int]:
        futures = [make.submit(i) for i in range(8)]
        return [int(f.result()["item"][0]) for f in futures]

    assert eight_at_once() == list(range(8))
    assert versions_of(run_store, "shared-key") == list(range(1, 9))
    stored = sorted(int(api.load(m)["item"][0]) for m in run_store.versions("shared-key"))
    assert stored == list(range(8))


def test_async_task_is_captured(run_store: ArtifactStore) -> None:
    from prefect import flow

    @artifact_task(key="async-data", labels={"mode": "async"})
    async def make(n: int) -> pd.DataFrame:
        await asyncio.sleep(0)
        return small_frame(n, rows=3)

    @flow
    async def async_flow() -> dict[str, Any]:
        future = make.submit(7)
        frame = await asyncio.to_thread(future.result)
        return {"task_run_id": str(future.task_run_id), "frame": frame}

    outcome = asyncio.run(async_flow())

    manifest = run_store.get("async-data")
    assert manifest.version == 1
    assert manifest.labels == {"mode": "async"}
    assert manifest.producer.task_run_id == outcome["task_run_id"]
    pd.testing.assert_frame_equal(outcome["frame"], small_frame(7, rows=3))
    cards = read_artifacts(key="test-async-data", task_run_id=outcome["task_run_id"])
    assert len(cards) == 1
    assert "`test/async-data:1`" in cards[0].data


def test_async_function_called_directly_in_flow(run_store: ArtifactStore) -> None:
    from prefect import flow

    @artifact_task(key="async-direct")
    async def make() -> pd.DataFrame:
        return small_frame(3, rows=2)

    @flow
    async def direct() -> pd.DataFrame:
        return await make()

    frame = asyncio.run(direct())

    pd.testing.assert_frame_equal(frame, small_frame(3, rows=2))
    assert run_store.get("async-direct").producer.task_name == "make"


def test_failing_task_leaves_no_version(run_store: ArtifactStore) -> None:
    from prefect import flow

    @artifact_task(key="never-saved")
    def broken() -> pd.DataFrame:
        raise ValueError("no data today")

    @flow
    def failing() -> Any:
        return broken()

    state = failing(return_state=True)

    assert state.is_failed()
    with pytest.raises(ValueError, match="no data today"):
        state.result()
    with pytest.raises(NotFoundError):
        run_store.get("never-saved")


def test_retried_task_keeps_one_version(run_store: ArtifactStore) -> None:
    from prefect import flow
    from prefect.runtime import task_run

    @artifact_task(key="retried-return", retries=1)
    def flaky() -> pd.DataFrame:
        frame = small_frame(0, rows=4)
        get_run_context().log_dataset("retried-explicit", frame, preview=2)
        if task_run.run_count == 1:
            raise RuntimeError("first attempt fails after logging")
        return frame

    @flow
    def with_retry() -> dict[str, Any]:
        future = flaky.submit()
        return {"frame": future.result(), "task_run_id": str(future.task_run_id)}

    outcome = with_retry()

    assert versions_of(run_store, "retried-explicit") == [1]
    assert versions_of(run_store, "retried-return") == [1]
    explicit = run_store.get("retried-explicit")
    assert explicit.producer.task_run_id == outcome["task_run_id"]
    assert explicit.producer.attempt == 1
    assert run_store.get("retried-return").producer.attempt == 2
    pd.testing.assert_frame_equal(outcome["frame"], small_frame(0, rows=4))


def test_cached_task_run_adds_no_version(run_store: ArtifactStore) -> None:
    from prefect import flow
    from prefect.cache_policies import INPUTS

    calls: list[int] = []

    @artifact_task(key="cached-data", cache_policy=INPUTS, persist_result=True)
    def make(n: int) -> pd.DataFrame:
        calls.append(n)
        return small_frame(n, rows=2)

    @flow
    def twice() -> list[Any]:
        return [make(41, return_state=True), make(41, return_state=True)]

    first, second = twice()

    assert calls == [41]
    assert second.name == "Cached"
    assert versions_of(run_store, "cached-data") == [1]
    pd.testing.assert_frame_equal(second.result(), small_frame(41, rows=2))


# -- run-scoped loading ------------------------------------------------------------------------


def test_consumer_loads_version_of_its_own_run(run_store: ArtifactStore) -> None:
    from prefect import flow, task

    @artifact_task(key="features")
    def produce(start: int) -> pd.DataFrame:
        return small_frame(start, rows=3)

    @flow(name="other-run")
    def other_run() -> None:
        produce(500)

    @task
    def let_another_run_write() -> int:
        # A new thread carries no Prefect context, so this is a separate top-level flow run.
        worker = threading.Thread(target=other_run)
        worker.start()
        worker.join()
        return run_store.get("features").version

    @task
    def consume() -> pd.DataFrame:
        return get_run_context().load("features")

    @artifact_task(key="features-summary")
    def summarize() -> pd.DataFrame:
        frame = api.load("features")
        return pd.DataFrame({"total": [int(frame["x"].sum())]})

    @flow
    def main_run() -> dict[str, Any]:
        produce(10)
        latest_version = let_another_run_write()
        return {"latest": latest_version, "loaded": consume(), "summary": summarize()}

    outcome = main_run()

    assert outcome["latest"] == 2
    assert run_store.get("features").producer.flow_name == "other-run"
    pd.testing.assert_frame_equal(outcome["loaded"], small_frame(10, rows=3))
    assert outcome["summary"]["total"].tolist() == [10 + 11 + 12]
    assert run_store.get("features-summary").inputs == ["test/features:1"]


# -- what a task may return --------------------------------------------------------------------


def test_dict_return_captures_each_value(run_store: ArtifactStore, caplog: pytest.LogCaptureFixture) -> None:
    from prefect import flow

    train_frame, test_frame = small_frame(0, rows=4), small_frame(4, rows=2)

    @artifact_task(key="split", labels={"stage": "split"}, preview=1)
    def split() -> dict[str, Any]:
        return {
            "train": Dataset(train_frame, labels={"part": "train"}, preview=3),
            "test": test_frame,
            "rows": 6,
        }

    @flow
    def splitting() -> dict[str, Any]:
        return split()

    with caplog.at_level(logging.WARNING, logger="mlart_prefect.capture"):
        result = splitting()

    assert list(result) == ["train", "test", "rows"]
    pd.testing.assert_frame_equal(result["train"], train_frame)
    pd.testing.assert_frame_equal(result["test"], test_frame)
    assert result["rows"] == 6
    train = run_store.get("split-train")
    test = run_store.get("split-test")
    assert train.labels == {"stage": "split", "part": "train"}
    assert test.labels == {"stage": "split"}
    assert len(train.spec["preview"]["rows"]) == 3
    assert len(test.spec["preview"]["rows"]) == 1
    assert sorted(run_store.keys()) == ["split-test", "split-train"]
    assert "not capturing 'rows'" in caplog.text


def test_rerun_logs_reused_version(run_store: ArtifactStore, caplog: pytest.LogCaptureFixture) -> None:
    from prefect import flow

    frame = small_frame(0, rows=4)

    @artifact_task(key="stable", publish=False)
    def make() -> pd.DataFrame:
        return frame

    @flow
    def pipeline() -> None:
        make()

    # Prefect's run loggers do not propagate to the root logger, where caplog listens.
    task_logger = logging.getLogger("prefect.task_runs")
    task_logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="prefect.task_runs"):
            pipeline()
            first_log = caplog.text
            caplog.clear()
            pipeline()
    finally:
        task_logger.removeHandler(caplog.handler)

    assert [m.version for m in run_store.versions("stable")] == [1]
    assert "Captured test/stable:1 (dataset) from task 'make'" in first_log
    assert "Reused test/stable:1 (dataset) for task 'make': the value is unchanged" in caplog.text
    assert "Captured" not in caplog.text


def test_tuple_and_named_tuple_returns(run_store: ArtifactStore) -> None:
    from prefect import flow
    from sklearn.tree import DecisionTreeClassifier

    Pair = namedtuple("Pair", ["data", "chart"])
    frame = small_frame(0)

    @artifact_task(key="pair")
    def make_tuple() -> tuple[Any, Any]:
        model = DecisionTreeClassifier(max_depth=1).fit(frame[["x"]], frame["y"])
        return frame, Model(model, key="tree", metrics={"depth": 1})

    @artifact_task(key="named")
    def make_named() -> Pair:
        return Pair(Dataset(frame, format="csv"), Plot(small_figure([1, 2]), formats=("png", "svg")))

    @flow
    def tuples() -> tuple[Any, Any]:
        return make_tuple(), make_named()

    plain_tuple, plain_named = tuples()

    pd.testing.assert_frame_equal(plain_tuple[0], frame)
    assert type(plain_tuple[1]).__name__ == "DecisionTreeClassifier"
    assert isinstance(plain_named, Pair)
    pd.testing.assert_frame_equal(plain_named.data, frame)
    assert sorted(run_store.keys()) == ["named-chart", "named-data", "pair-0", "tree"]
    assert run_store.get("tree").spec["metrics"] == {"depth": 1}
    assert run_store.get("named-data").spec["format"] == "csv"
    assert run_store.get("named-chart").spec["formats"] == ["png", "svg", "html"]
    assert isinstance(api.load("test/named-chart:1"), PlotImage)


def test_wrapper_return_sets_key_description_and_tag(run_store: ArtifactStore) -> None:
    from prefect import flow

    @artifact_task(key="unused-default", description="from the decorator")
    def make() -> Dataset:
        return Dataset(small_frame(1), key="chosen", tag="candidate", description="from inside")

    @flow
    def wrapped() -> pd.DataFrame:
        return make()

    frame = wrapped()

    pd.testing.assert_frame_equal(frame, small_frame(1))
    assert run_store.keys() == ["chosen"]
    assert run_store.get("chosen").description == "from inside"
    assert run_store.get("chosen@candidate").version == 1


def test_key_template_uses_bound_parameters(run_store: ArtifactStore) -> None:
    from prefect import flow

    @artifact_task(key="scores-{split}-{fold}")
    def score(split: str, fold: int = 3) -> pd.DataFrame:
        return small_frame(fold, rows=2)

    @artifact_task(key="bad-{missing}")
    def bad_template(split: str) -> pd.DataFrame:
        return small_frame(0, rows=2)

    @flow
    def templated() -> Exception | None:
        score("train")
        score(split="test", fold=5)
        try:
            bad_template("x")
        except InvalidNameError as exc:
            return exc
        return None

    error = templated()

    assert sorted(run_store.keys()) == ["scores-test-5", "scores-train-3"]
    assert isinstance(error, InvalidNameError)
    assert re.search(r"key template 'bad-\{missing\}'.*\(split\)", str(error))


def test_unsupported_return_fails_the_task(run_store: ArtifactStore) -> None:
    from prefect import flow

    @artifact_task
    def numbers() -> list[int]:
        return [1, 2, 3]

    @artifact_task(kind="model")
    def forced() -> list[int]:
        return [1, 2, 3]

    @flow
    def unsupported() -> tuple[Exception | None, Any]:
        try:
            numbers()
        except UnsupportedValueError as exc:
            return exc, forced()
        return None, forced()

    error, forced_value = unsupported()

    assert isinstance(error, UnsupportedValueError)
    assert "Task 'numbers' returned a builtins.list, which no kind stores" in str(error)
    assert forced_value == [1, 2, 3]
    assert api.load("test/forced:1") == [1, 2, 3]


def test_option_for_other_kind_is_ignored_with_warning(
    run_store: ArtifactStore, caplog: pytest.LogCaptureFixture
) -> None:
    from prefect import flow

    @artifact_task(key="chart", preview=5, formats=("svg",))
    def chart() -> Any:
        return small_figure([3, 1, 2])

    @flow
    def charting() -> None:
        chart()

    with caplog.at_level(logging.WARNING, logger="mlart_prefect.capture"):
        charting()

    assert run_store.get("chart").spec["formats"] == ["svg", "html"]
    assert "option(s) 'preview' apply to none of its captured kinds (plot)" in caplog.text
    assert "Options by kind: plot: close, dpi, formats, local_path, max_pixels." in caplog.text


def test_wrapper_option_of_other_kind_raises(run_store: ArtifactStore) -> None:
    from prefect import flow

    @artifact_task
    def wrong() -> Any:
        return Plot(small_figure([1]), preview=3)

    @flow
    def wrong_flow() -> Exception | None:
        try:
            wrong()
        except UnsupportedValueError as exc:
            return exc
        return None

    error = wrong_flow()

    assert isinstance(error, UnsupportedValueError)
    assert re.search("Invalid option.*'preview' for Plot 'wrong'", str(error))


def test_subflow_capture_names_the_subflow_run(run_store: ArtifactStore) -> None:
    from prefect import flow
    from prefect.runtime import flow_run

    @artifact_task(key="inner-data")
    def make() -> pd.DataFrame:
        return small_frame(2, rows=2)

    @flow(name="inner")
    def inner() -> str:
        make()
        return str(flow_run.id)

    @flow(name="outer")
    def outer() -> tuple[str, str]:
        return str(flow_run.id), inner()

    outer_id, inner_id = outer()

    producer = run_store.get("inner-data").producer
    assert producer.flow_run_id == inner_id != outer_id
    assert producer.flow_name == "inner"


def test_capture_to_s3_store(prefect_server: str, s3_store: ArtifactStore) -> None:
    from prefect import flow

    @artifact_task(key="remote", store=s3_store, publish=False)
    def make() -> pd.DataFrame:
        return small_frame(5, rows=3)

    @artifact_task(key="remote-total", store=s3_store, publish=False)
    def total(df: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"sum": [int(df["x"].sum())]})

    @flow
    def to_s3() -> None:
        total(make())

    to_s3()

    assert s3_store.get("remote").body().uri.startswith("s3://mlart-test/store/test/objects/")
    assert s3_store.get("remote-total").inputs == ["test/remote:1"]
    assert api.load("test/remote-total:1", store=s3_store)["sum"].tolist() == [18]


# -- publishing --------------------------------------------------------------------------------


def test_publish_off_creates_no_prefect_artifacts(run_store: ArtifactStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect import flow

    from mlart_prefect.settings import get_settings

    @artifact_task(key="quiet", publish=False)
    def quiet() -> pd.DataFrame:
        return small_frame(0, rows=2)

    @artifact_task(key="quiet-by-setting")
    def quiet_by_setting() -> pd.DataFrame:
        return small_frame(1, rows=2)

    @artifact_task(key="loud-override", publish=True)
    def loud() -> pd.DataFrame:
        return small_frame(2, rows=2)

    @flow
    def quiet_flow() -> list[str]:
        futures = [quiet.submit(), quiet_by_setting.submit(), loud.submit()]
        for future in futures:
            future.wait()
        return [str(future.task_run_id) for future in futures]

    monkeypatch.setenv("MLART_PUBLISH", "false")
    get_settings(reload=True)
    quiet_id, setting_id, loud_id = quiet_flow()

    assert run_store.get("quiet").version == 1
    assert run_store.get("quiet-by-setting").version == 1
    assert read_artifacts(task_run_id=quiet_id) == []
    assert read_artifacts(task_run_id=setting_id) == []
    published = sorted(a.key for a in read_artifacts(task_run_id=loud_id))
    assert published == ["test-loud-override", "test-loud-override-preview"]


def test_publish_failure_warns_and_keeps_version(
    run_store: ArtifactStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from prefect import flow

    from mlart_prefect import summaries

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("artifact API unreachable")

    monkeypatch.setattr(summaries, "publish", refuse)
    monkeypatch.setattr(summaries, "apublish", refuse)

    @artifact_task(key="unpublished")
    def make() -> pd.DataFrame:
        return small_frame(0, rows=2)

    @artifact_task(key="unpublished-async")
    async def make_async() -> pd.DataFrame:
        return small_frame(1, rows=2)

    @flow
    def publishing() -> pd.DataFrame:
        asyncio.run(make_async())
        return make()

    with caplog.at_level(logging.WARNING, logger="mlart_prefect.summaries"):
        frame = publishing()

    pd.testing.assert_frame_equal(frame, small_frame(0, rows=2))
    assert run_store.get("unpublished").version == 1
    assert run_store.get("unpublished-async").version == 1
    assert "Could not publish Prefect artifacts for test/unpublished:1 (the version is saved): ConnectionError" in caplog.text
    assert "test/unpublished-async:1" in caplog.text
    assert read_artifacts(key="test-unpublished") == []


# -- explicit logging through the run context --------------------------------------------------


def test_explicit_logging_outside_a_run(local_store: ArtifactStore) -> None:
    ctx = get_run_context(store=local_store, labels={"source": "script"})

    raw = ctx.log_dataset("raw", small_frame(0), preview=2, tag="first")
    loaded = ctx.load("raw")
    derived = ctx.log_dataset("derived", loaded.assign(z=1), labels={"step": "derive"})

    assert ctx.in_prefect_run is False
    assert raw.producer.in_prefect_run is False
    assert raw.producer.task_run_id is None
    assert raw.producer.flow_run_id is None
    assert raw.labels == {"source": "script"}
    assert local_store.get("raw@first").version == 1
    assert len(raw.spec["preview"]["rows"]) == 2
    assert derived.inputs == ["test/raw:1"]
    assert derived.labels == {"source": "script", "step": "derive"}


def test_run_context_logs_mlrun_style_in_a_task(
    run_store: ArtifactStore, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from prefect import flow, task
    from sklearn.linear_model import LogisticRegression

    frame = small_frame(0, rows=8)

    @task
    def log_everything() -> dict[str, Any]:
        ctx = get_run_context()
        data = ctx.log_dataset("iris", df=frame, preview=4, stats=True, format="csv",
                               labels={"owner": "ml"}, artifact_path="s3://elsewhere")
        plot = ctx.log_artifact(PlotArtifact("confusion-matrix", body=small_figure([1, 2])),
                                local_path="plots/confusion_matrix.html", labels={"type": "eval"})
        model = LogisticRegression().fit(frame[["x"]], frame["y"])
        logged = ctx.log_model("iris-model", body=model, model_file="my_model.pkl",
                               metrics={"accuracy": 0.9}, parameters={"C": 1.0},
                               extra_data={"notes": b"trained on 8 rows"}, framework="sklearn",
                               algorithm="logreg", tag="staging", label_column="y")
        raw = ctx.log_model("raw-model", body=b"\x00serialized", model_file="raw.bin")
        generic = ctx.log_artifact("generic", body=frame.head(2))
        return {"task_run_id": ctx.task_run_id, "refs": [m.ref for m in (data, plot, logged, raw, generic)]}

    @flow
    def logging_flow() -> dict[str, Any]:
        return log_everything()

    with caplog.at_level(logging.WARNING, logger="mlart_prefect.run_context"):
        outcome = logging_flow()

    assert outcome["refs"] == ["test/iris:1", "test/confusion-matrix:1", "test/iris-model:1",
                               "test/raw-model:1", "test/generic:1"]
    data = run_store.get("iris")
    assert data.spec["format"] == "csv"
    assert len(data.spec["preview"]["rows"]) == 4
    assert data.producer.task_run_id == outcome["task_run_id"]
    assert "MLRun option 'artifact_path' is not supported" in caplog.text
    plot = run_store.get("confusion-matrix")
    assert plot.spec["files"]["html"] == "confusion_matrix.html"
    assert plot.labels == {"type": "eval"}
    model = run_store.get("iris-model@staging")
    assert model.spec["model_file"] == "my_model.pkl"
    assert model.spec["metrics"] == {"accuracy": 0.9}
    assert model.spec["framework"] == "sklearn"
    assert model.spec["algorithm"] == "logreg"
    assert model.labels == {"label_column": "y"}
    assert run_store.read_bytes(model, "notes") == b"trained on 8 rows"
    assert api.load("test/raw-model:1") == b"\x00serialized"
    assert run_store.get("generic").kind == "dataset"


def test_run_context_reads_mlrun_style(local_store: ArtifactStore) -> None:
    ctx = get_run_context(store=local_store)
    ctx.log_dataset("table", small_frame(3, rows=3))
    ctx.log_dataset("table", small_frame(4, rows=3))

    item = ctx.get_dataitem("store://datasets/test/table:1")
    manifest = ctx.get_store_resource("store://artifacts/test/table")

    pd.testing.assert_frame_equal(item.as_df(), small_frame(3, rows=3))
    assert item.get() == local_store.read_bytes(local_store.get("table:1"))
    with open(item.local(), "rb") as file:
        assert file.read() == item.get()
    assert manifest.version == 2
    assert ctx.get_artifact("test/table:1").version == 1


def test_run_context_logs_reuse(
    local_store: ArtifactStore, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = get_run_context(store=local_store)

    with caplog.at_level(logging.INFO, logger="mlart_prefect.lineage"):
        ctx.log_dataset("table", small_frame(3, rows=3))
        first_log = caplog.text
        caplog.clear()
        ctx.log_dataset("table", small_frame(3, rows=3))

    assert "Logged test/table:1 (dataset)" in first_log
    assert "Reused test/table:1 (dataset): the value is unchanged" in caplog.text
    assert "Logged" not in caplog.text


def test_producer_parameters_are_summarised(run_store: ArtifactStore) -> None:
    import numpy as np
    from prefect import flow

    @artifact_task(key="summarised")
    def use(df: pd.DataFrame, matrix: Any, text: str, options: dict[str, Any]) -> pd.DataFrame:
        return df.head(1)

    @flow
    def big_parameters() -> None:
        use(small_frame(0, rows=50), np.zeros((30, 4)), "t" * 1000, {"a": 1, "b": [1.5, float("nan")]})

    big_parameters()

    parameters = run_store.get("summarised").producer.parameters
    assert parameters["df"] == "<DataFrame shape=(50, 2)>"
    assert parameters["matrix"] == "<ndarray shape=(30, 4)>"
    assert parameters["text"] == "t" * 120 + "… (+880 chars)"
    assert parameters["options"] == {"a": 1, "b": [1.5, None]}
    assert len(json.dumps(parameters, allow_nan=False)) < 300


# -- decoration errors -------------------------------------------------------------------------


def test_decoration_rejects_bad_targets() -> None:
    from prefect import task

    with pytest.raises(InvalidNameError, match="pass a valid key="):
        artifact_task(name="has spaces")(lambda: None)
    with pytest.raises(UnsupportedValueError, match="Cannot capture generator function"):
        @artifact_task
        def generate() -> Any:
            yield 1
    with pytest.raises(UnsupportedValueError, match="received the Prefect task"):
        artifact_task(task(lambda: 1, name="already-a-task"))


def test_decorator_passes_task_options() -> None:
    @artifact_task(name="renamed", retries=3, tags=["nightly"], description="Cleans data",
                   key="clean-{day}")
    def clean(day: str) -> pd.DataFrame:
        """Docstring."""
        return small_frame(0)

    assert clean.name == "renamed"
    assert clean.retries == 3
    assert clean.tags == {"nightly"}
    assert clean.description == "Cleans data"
    assert clean.fn.__wrapped__.__name__ == "clean"
