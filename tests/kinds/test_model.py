"""Tests of the model kind: serializers, raw bodies, metrics, extra data and framework detection."""

from __future__ import annotations

import importlib.metadata
import io
import json
import pickle
import platform
import sys
import zipfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from sklearn.base import BaseEstimator, TransformerMixin  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

from mlart_prefect import api  # noqa: E402
from mlart_prefect.errors import NotFoundError, UnsupportedValueError  # noqa: E402
from mlart_prefect.kinds import EncodeContext, handler_for_value  # noqa: E402
from mlart_prefect.manifest import from_mlrun_uri  # noqa: E402
from mlart_prefect.kinds._serializers import describe_model  # noqa: E402
from mlart_prefect.kinds.model import ModelHandler, load_extra_data  # noqa: E402
from mlart_prefect.kinds.plot import PlotImage  # noqa: E402
from mlart_prefect.store import ArtifactStore  # noqa: E402

DEFAULT_FILES = {
    "pickle": "model.pkl",
    "joblib": "model.joblib",
    "cloudpickle": "model.pkl",
    "skops": "model.skops",
}


class HandmadeModel:
    """A model class that tests move into __main__."""

    def __init__(self, weight: float) -> None:
        self.weight = weight

    def predict(self, values: list[float]) -> list[float]:
        return [value * self.weight for value in values]


class IdentityStep(BaseEstimator, TransformerMixin):
    """A pipeline step that tests move into __main__."""

    def fit(self, X, y=None):  # noqa: N803 (scikit-learn's argument name)
        return self

    def transform(self, X):  # noqa: N803
        return X


@pytest.fixture(scope="module")
def training_data() -> tuple[np.ndarray, np.ndarray]:
    return make_classification(n_samples=120, n_features=5, random_state=0)


@pytest.fixture(scope="module")
def forest(training_data) -> RandomForestClassifier:
    X, y = training_data
    return RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)


@pytest.fixture
def in_main(monkeypatch: pytest.MonkeyPatch):
    """Move a class into __main__ for one test, as if it were defined in a script."""

    def move(cls: type) -> type:
        monkeypatch.setattr(cls, "__module__", "__main__")
        monkeypatch.setattr(sys.modules["__main__"], cls.__qualname__, cls, raising=False)
        return cls

    return move


def encode(value, tmp_path: Path, **options):
    ctx = EncodeContext(store=None, project="test", key="model", workdir=tmp_path)  # type: ignore[arg-type]
    return ModelHandler().encode(value, ctx, **options)


def strict_json(value) -> object:
    def reject(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(json.dumps(value, allow_nan=False), parse_constant=reject)


@pytest.mark.parametrize("serializer", ["pickle", "joblib", "cloudpickle", "skops"])
def test_serializer_round_trip(local_store: ArtifactStore, forest, training_data, serializer):
    X, _ = training_data

    manifest = api.save("forest", forest, store=local_store, serializer=serializer)
    loaded = api.load("forest", store=local_store)

    assert manifest.kind == "model"
    assert manifest.spec["serializer"] == serializer
    assert manifest.spec["model_file"] == DEFAULT_FILES[serializer]
    assert manifest.primary == DEFAULT_FILES[serializer]
    assert type(loaded) is RandomForestClassifier
    assert np.array_equal(loaded.predict(X), forest.predict(X))
    assert np.allclose(loaded.predict_proba(X), forest.predict_proba(X))


def test_round_trip_on_every_backend(store: ArtifactStore, forest, training_data, tmp_path: Path):
    X, _ = training_data
    report = tmp_path / "report.txt"
    report.write_text("ok\n")

    manifest = api.save(
        "forest", forest, store=store, serializer="joblib", extra_data={"report": report}
    )
    loaded = api.load("forest", store=store)

    assert np.array_equal(loaded.predict(X), forest.predict(X))
    assert load_extra_data(manifest, "report", store=store) == b"ok\n"


def test_estimator_maps_to_model_kind(forest):
    assert handler_for_value(forest).kind == "model"


def test_model_file_option_names_body(local_store: ArtifactStore, forest):
    manifest = api.save(
        "forest", forest, store=local_store, serializer="joblib", model_file="my_model.joblib"
    )

    assert [body.name for body in manifest.bodies] == ["my_model.joblib"]
    assert manifest.spec["model_file"] == "my_model.joblib"
    assert isinstance(api.load("forest", store=local_store), RandomForestClassifier)


def test_skops_records_trusted_types(local_store: ArtifactStore, forest):
    manifest = api.save("forest", forest, store=local_store, serializer="skops")

    assert manifest.spec["trusted_types"] == ["sklearn.tree._tree.Tree"]


def test_skops_rejects_unrecorded_types(local_store: ArtifactStore, forest):
    manifest = api.save("forest", forest, store=local_store, serializer="skops")
    tampered = manifest.model_copy(update={"spec": {**manifest.spec, "trusted_types": []}})

    with pytest.raises(UnsupportedValueError, match=r"sklearn\.tree\._tree\.Tree"):
        ModelHandler().decode(tampered, local_store.reader(tampered))


@pytest.mark.parametrize("serializer", ["pickle", "joblib", "cloudpickle", "skops"])
def test_same_model_twice_keeps_one_version(local_store: ArtifactStore, forest, serializer):
    first = api.save("forest", forest, store=local_store, serializer=serializer)
    second = api.save("forest", forest, store=local_store, serializer=serializer)

    assert (first.version, second.version) == (1, 1)


def test_skops_archive_has_fixed_times(local_store: ArtifactStore, forest):
    manifest = api.save("forest", forest, store=local_store, serializer="skops")
    archive = zipfile.ZipFile(io.BytesIO(local_store.read_bytes(manifest)))

    times = {entry.date_time for entry in archive.infolist()}
    names = sorted(entry.filename for entry in archive.infolist())

    assert times == {(1980, 1, 1, 0, 0, 0)}
    assert "schema.json" in names
    assert all(name == "schema.json" or name.split(".")[0].isdigit() for name in names)


def test_unknown_serializer_rejected(tmp_path: Path, forest):
    with pytest.raises(UnsupportedValueError, match=r"Unknown serializer 'dill'.*'cloudpickle'"):
        encode(forest, tmp_path, serializer="dill")


def test_body_bytes_round_trip(local_store: ArtifactStore, forest):
    data = pickle.dumps(forest)

    manifest = api.save("raw", None, kind="model", store=local_store, body=data)
    loaded = api.load("raw", store=local_store)

    assert loaded == data
    assert manifest.spec["model_file"] == "model.bin"
    assert manifest.spec["serializer"] is None
    assert manifest.spec["framework"] is None


def test_body_with_model_file_and_serializer(local_store: ArtifactStore, forest, training_data):
    X, _ = training_data

    manifest = api.save(
        "raw",
        None,
        kind="model",
        store=local_store,
        body=pickle.dumps(forest),
        model_file="my_model.pkl",
        serializer="pickle",
    )
    loaded = api.load("raw", store=local_store)

    assert [body.name for body in manifest.bodies] == ["my_model.pkl"]
    assert np.array_equal(loaded.predict(X), forest.predict(X))


def test_body_path_round_trip(local_store: ArtifactStore, tmp_path: Path):
    model_path = tmp_path / "weights.pt"
    model_path.write_bytes(b"\x00weights\xff" * 100)

    manifest = api.save("raw", None, kind="model", store=local_store, body=model_path)

    assert manifest.spec["model_file"] == "weights.pt"
    assert model_path.exists()
    assert api.load("raw", store=local_store) == model_path.read_bytes()


def test_body_and_value_rejected(tmp_path: Path, forest):
    with pytest.raises(UnsupportedValueError, match="not both"):
        encode(forest, tmp_path, body=b"123")


def test_no_model_rejected(tmp_path: Path):
    with pytest.raises(UnsupportedValueError, match="No model to store"):
        encode(None, tmp_path)


def test_body_of_wrong_type_rejected(tmp_path: Path):
    with pytest.raises(UnsupportedValueError, match="Invalid body of type str"):
        encode(None, tmp_path, body="model.pkl")


def test_invalid_model_file_rejected(tmp_path: Path, forest):
    with pytest.raises(UnsupportedValueError, match="Invalid model_file '../model.pkl'"):
        encode(forest, tmp_path, model_file="../model.pkl")


def test_metrics_and_parameters_stored(local_store: ArtifactStore, forest):
    manifest = api.save(
        "forest",
        forest,
        store=local_store,
        metrics={"accuracy": np.float64(0.9), "errors": np.int64(3), "passed": np.bool_(True)},
        parameters={"n_estimators": 5, "criterion": "gini", "max_depth": None, "sizes": (8, 4)},
    )

    assert manifest.spec["metrics"] == {"accuracy": 0.9, "errors": 3, "passed": True}
    assert type(manifest.spec["metrics"]["errors"]) is int
    assert manifest.spec["parameters"] == {
        "n_estimators": 5,
        "criterion": "gini",
        "max_depth": None,
        "sizes": [8, 4],
    }
    reread = local_store.get("forest:1")
    assert reread.spec["metrics"]["accuracy"] == 0.9


def test_non_finite_metrics_stored_as_strings(local_store: ArtifactStore, tmp_path: Path, forest):
    metrics = {"loss": float("nan"), "ratio": float("inf"), "floor": -np.inf, "ok": 0.5}

    encoded = encode(forest, tmp_path, metrics=metrics)
    manifest = api.save("forest", forest, store=local_store, metrics=metrics)
    stored = manifest.spec["metrics"]

    assert encoded.spec["metrics"] == {"loss": "nan", "ratio": "inf", "floor": "-inf", "ok": 0.5}
    assert len(encoded.warnings) == 3
    assert "metric 'loss'" in encoded.warnings[0]
    assert manifest.spec["warnings"] == encoded.warnings
    assert stored == encoded.spec["metrics"]
    assert float(stored["ratio"]) == float("inf")
    assert strict_json(stored) == stored
    manifest_file = Path(local_store.url) / "test" / "artifacts" / "forest" / "versions" / "1.json"
    assert strict_json(json.loads(manifest_file.read_text()))


def test_invalid_metric_value_rejected(tmp_path: Path, forest):
    with pytest.raises(UnsupportedValueError, match=r"Invalid metric 'report'.*object"):
        encode(forest, tmp_path, metrics={"report": object()})


def test_invalid_metric_name_rejected(tmp_path: Path, forest):
    with pytest.raises(UnsupportedValueError, match="Invalid parameter name 3"):
        encode(forest, tmp_path, parameters={3: "x"})


def test_framework_and_versions_detected(local_store: ArtifactStore, forest):
    manifest = api.save("forest", forest, store=local_store, serializer="joblib")
    spec = manifest.spec

    assert spec["framework"] == "sklearn"
    assert spec["algorithm"] == "RandomForestClassifier"
    assert spec["model_class"] == "sklearn.ensemble._forest.RandomForestClassifier"
    assert spec["framework_version"] == importlib.metadata.version("scikit-learn")
    assert spec["serializer_version"] == importlib.metadata.version("joblib")
    assert spec["python_version"] == platform.python_version()


def test_pickle_version_is_protocol(tmp_path: Path, forest):
    assert encode(forest, tmp_path).spec["serializer_version"] == "protocol 5"


def test_framework_found_in_base_classes():
    torch_module = type("Module", (), {"__module__": "torch.nn.modules.module"})
    network = type("Network", (torch_module,), {"__module__": "my_project.models"})
    booster = type("Booster", (), {"__module__": "xgboost.core"})

    assert describe_model(network())["framework"] == "torch"
    assert describe_model(network())["algorithm"] == "Network"
    assert describe_model(booster())["framework"] == "xgboost"
    assert describe_model(booster())["model_class"] == "xgboost.core.Booster"


def test_unknown_framework_is_module_root():
    handmade = type("Scorer", (), {"__module__": "acme_private_lab.scoring"})

    described = describe_model(handmade())

    assert described["framework"] == "acme_private_lab"
    assert described["algorithm"] == "Scorer"
    assert described["framework_version"] is None


def test_framework_options_override_detection(tmp_path: Path, forest):
    spec = encode(forest, tmp_path, framework="scikit-learn", algorithm="forest").spec

    assert (spec["framework"], spec["algorithm"]) == ("scikit-learn", "forest")


def test_any_object_stored_with_model_kind(local_store: ArtifactStore):
    api.save("handmade", HandmadeModel(2.0), kind="model", store=local_store)

    loaded = api.load("handmade", store=local_store)

    assert loaded.predict([1.0, 3.0]) == [2.0, 6.0]


def test_main_class_warns(tmp_path: Path, in_main):
    model = in_main(HandmadeModel)(2.0)

    with pytest.warns(UserWarning, match="'HandmadeModel' is defined in __main__") as caught:
        encoded = encode(model, tmp_path)

    assert len(encoded.warnings) == 1
    assert "cloudpickle" in encoded.warnings[0]
    assert "importable module" in str(caught[0].message)


def test_main_class_inside_pipeline_warns(tmp_path: Path, in_main, training_data):
    X, y = training_data
    pipeline = make_pipeline(in_main(IdentityStep)(), LogisticRegression()).fit(X, y)

    with pytest.warns(UserWarning, match="A class used by the model is defined in __main__"):
        encoded = encode(pipeline, tmp_path, serializer="joblib")

    assert len(encoded.warnings) == 1


def test_main_class_with_cloudpickle_no_warning(tmp_path: Path, in_main, recwarn):
    model = in_main(HandmadeModel)(2.0)

    encoded = encode(model, tmp_path, serializer="cloudpickle")

    assert encoded.warnings == []
    assert [w for w in recwarn if "__main__" in str(w.message)] == []


def test_importable_class_no_warning(tmp_path: Path, forest, recwarn):
    encoded = encode(forest, tmp_path)

    assert encoded.warnings == []
    assert [w for w in recwarn if "__main__" in str(w.message)] == []


def test_unpicklable_model_suggests_cloudpickle(local_store: ArtifactStore):
    model = {"scale": lambda value: value * 3}

    with pytest.raises(UnsupportedValueError, match="serializer='cloudpickle'"):
        api.save("lambda", model, kind="model", store=local_store)
    api.save("lambda", model, kind="model", store=local_store, serializer="cloudpickle")

    assert api.load("lambda", store=local_store)["scale"](2) == 6


def test_extra_data_bytes_and_files(local_store: ArtifactStore, tmp_path: Path, forest):
    report = tmp_path / "report.txt"
    report.write_text("precision 0.9\n")
    notes = tmp_path / "notes.md"
    notes.write_text("# notes\n")

    manifest = api.save(
        "forest",
        forest,
        store=local_store,
        extra_data={"weights": b"\x01\x02\x03", "report": str(report), "notes": notes},
    )
    extra = manifest.spec["extra_data"]

    assert report.read_text() == "precision 0.9\n"
    assert notes.exists()
    assert extra["weights"] == {"type": "body", "body": "weights"}
    assert extra["report"] == {"type": "body", "body": "report.txt", "file_name": "report.txt"}
    assert extra["notes"]["body"] == "notes.md"
    assert manifest.body("report.txt").media_type == "text/plain"
    assert load_extra_data(manifest, "weights", store=local_store) == b"\x01\x02\x03"
    assert load_extra_data("forest:1", "report", store=local_store) == b"precision 0.9\n"
    assert load_extra_data(manifest, "notes", store=local_store) == b"# notes\n"


def test_extra_data_references(local_store: ArtifactStore, forest):
    frame = pd.DataFrame({"a": [1, 2, 3]})
    data_v1 = api.save("data", frame, store=local_store)
    data_v2 = api.save("data", frame.assign(b=1.5), store=local_store)
    api.save("other", pd.DataFrame({"c": ["x"]}), store=local_store, project="elsewhere")
    local_store.tag("data:1", "production")

    manifest = api.save(
        "forest",
        forest,
        store=local_store,
        extra_data={
            "pinned": "data:1",
            "latest": "mlart://test/data",
            "tagged": "test/data@production",
            "mlrun": "store://datasets/test/data:latest",
            "manifest": data_v1,
            "cross": "elsewhere/other",
        },
    )
    extra = manifest.spec["extra_data"]

    assert extra["pinned"] == {"type": "artifact", "ref": "test/data:1"}
    assert extra["latest"]["ref"] == data_v2.ref == "test/data:2"
    assert extra["tagged"]["ref"] == "test/data:1"
    assert extra["mlrun"]["ref"] == "test/data:2"
    assert extra["manifest"]["ref"] == "test/data:1"
    assert extra["cross"]["ref"] == "elsewhere/other:1"
    pd.testing.assert_frame_equal(load_extra_data(manifest, "pinned", store=local_store), frame)
    assert list(load_extra_data(manifest, "cross", store=local_store).columns) == ["c"]
    # The versions named by reference are what the model was made from.
    assert manifest.inputs == ["elsewhere/other:1", "test/data:1", "test/data:2"]


def test_extra_data_values_saved_as_artifacts(local_store: ArtifactStore, forest):
    frame = pd.DataFrame({"label": ["a", "b"], "count": [4, 7]})
    figure, ax = plt.subplots(figsize=(3, 2))
    ax.imshow([[4, 1], [2, 7]])

    manifest = api.save(
        "forest", forest, store=local_store, extra_data={"confusion": figure, "counts": frame}
    )
    extra = manifest.spec["extra_data"]

    assert extra["confusion"] == {"type": "artifact", "ref": "test/forest-confusion:1"}
    assert extra["counts"] == {"type": "artifact", "ref": "test/forest-counts:1"}
    assert manifest.inputs == []  # parts of the model, not what it was made from
    assert local_store.get("forest-confusion").kind == "plot"
    image = load_extra_data(manifest, "confusion", store=local_store)
    assert isinstance(image, PlotImage)
    assert (image.width, image.height) == (300, 200)
    pd.testing.assert_frame_equal(load_extra_data(manifest, "counts", store=local_store), frame)
    assert not plt.fignum_exists(figure.number)


def test_extra_data_unknown_reference_rejected(local_store: ArtifactStore, forest):
    with pytest.raises(UnsupportedValueError, match="neither an existing local file nor a stored"):
        api.save("forest", forest, store=local_store, extra_data={"data": "missing-key:2"})

    with pytest.raises(NotFoundError):
        local_store.get("forest")


def test_extra_data_missing_path_rejected(tmp_path: Path, forest):
    with pytest.raises(UnsupportedValueError, match="is not an existing file"):
        encode(forest, tmp_path, extra_data={"report": tmp_path / "absent.txt"})


def test_extra_data_unsupported_value_rejected(tmp_path: Path, forest):
    with pytest.raises(UnsupportedValueError, match="Invalid extra_data 'thing'.*object"):
        encode(forest, tmp_path, extra_data={"thing": object()})


def test_extra_data_name_clash_rejected(tmp_path: Path, forest):
    with pytest.raises(UnsupportedValueError, match="clashes with the model file"):
        encode(forest, tmp_path, extra_data={"model.pkl": b"x"})


def test_invalid_extra_data_saves_nothing(local_store: ArtifactStore, forest):
    frame = pd.DataFrame({"a": [1]})

    with pytest.raises(UnsupportedValueError, match="Invalid extra_data name 'bad name'"):
        api.save(
            "forest",
            forest,
            store=local_store,
            extra_data={"table": frame, "bad name": b"x"},
        )

    assert local_store.keys() == []


def test_load_extra_data_unknown_name(local_store: ArtifactStore, forest):
    manifest = api.save("forest", forest, store=local_store, extra_data={"weights": b"1"})

    with pytest.raises(NotFoundError, match="no extra_data 'confusion'; its extra_data: weights"):
        load_extra_data(manifest, "confusion", store=local_store)


def test_load_extra_data_of_non_model(local_store: ArtifactStore):
    api.save("data", pd.DataFrame({"a": [1]}), store=local_store)

    with pytest.raises(UnsupportedValueError, match="is a dataset, not a model"):
        load_extra_data("data", "anything", store=local_store)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("store://models/proj/model", "proj/model"),
        ("store://models/proj/model:latest", "proj/model"),
        ("store://artifacts/proj/model:production", "proj/model@production"),
        ("store://datasets/proj/data#2:4", "proj/data:4"),
        ("store://models/proj/model:v1@a1b2c3", "proj/model@v1"),
        ("proj/model:3", "proj/model:3"),
    ],
)
def test_mlrun_store_uri_converted(uri, expected):
    assert from_mlrun_uri(uri) == expected
