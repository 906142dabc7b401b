"""The run context: MLRun-style explicit logging (log_dataset, log_artifact, log_model) and loading."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlart_prefect import api, lineage
from mlart_prefect.manifest import Manifest, Producer, Reference, from_mlrun_uri
from mlart_prefect.wrappers import ArtifactValue

if TYPE_CHECKING:
    from mlart_prefect.store import ArtifactStore

__all__ = ["DataItem", "RunContext", "get_run_context"]

logger = logging.getLogger(__name__)

# MLRun options that name upload targets or MLRun database entries, which a store has no use for.
_IGNORED_MLRUN_OPTIONS = ("artifact_path", "upload", "target_path", "db_key")
_IGNORED_MODEL_OPTIONS = ("inputs", "outputs", "feature_vector", "feature_weights")


def get_run_context(
    *,
    store: ArtifactStore | None = None,
    project: str | None = None,
    labels: dict[str, Any] | None = None,
) -> RunContext:
    """Return a context for explicit logging and loading in the current task, flow or script.

    The context reads the Prefect run (task run, flow run) at each call, so one object may be
    kept and reused. Outside a Prefect run it works too: versions record
    ``producer.in_prefect_run = False`` and list the versions loaded through this context as
    inputs.

    Args:
        store: Store to save into and load from (default: the one from ``MLART_*`` settings).
        project: Project of keys without one (default: the store's project).
        labels: Labels added to every version logged through this context (default: none).

    Example:
        ```python
        from prefect import task
        from mlart_prefect import get_run_context

        @task
        def train(df):
            ctx = get_run_context()
            ctx.log_dataset("training-data", df=df, preview=10)
            model = fit(df)
            ctx.log_model("churn-model", body=model, model_file="model.pkl",
                          metrics={"accuracy": 0.9})
        ```
    """
    return RunContext(store=store, project=project, labels=labels)


class RunContext:
    """Explicit logging and loading with MLRun's call names, bound to the current Prefect run.

    Create it with ``get_run_context()``. Each ``log_*`` call saves one version through
    ``mlart_prefect.save`` and returns its manifest. ``tag=`` moves a tag onto the version, and
    ``publish=`` overrides the ``MLART_PUBLISH`` setting for its Prefect artifacts.
    """

    def __init__(
        self,
        *,
        store: ArtifactStore | None = None,
        project: str | None = None,
        labels: dict[str, Any] | None = None,
    ) -> None:
        self._store = store
        self.project = project
        self.labels = dict(labels or {})
        self._loaded: list[str] = []

    @property
    def store(self) -> ArtifactStore:
        """The store this context saves into."""
        return self._store or api.get_store()

    @property
    def producer(self) -> Producer:
        """The producer a version saved now would record."""
        return lineage.current_producer()

    @property
    def in_prefect_run(self) -> bool:
        """True inside a Prefect task run or flow run."""
        return any(lineage.current_run_ids())

    @property
    def task_run_id(self) -> str | None:
        """Id of the current Prefect task run, or None."""
        return lineage.current_run_ids()[0]

    @property
    def flow_run_id(self) -> str | None:
        """Id of the current Prefect flow run, or None."""
        return lineage.current_run_ids()[1]

    # -- logging ---------------------------------------------------------------------------

    def log_dataset(
        self,
        key: str,
        df: Any,
        *,
        preview: int | None = None,
        stats: bool | None = None,
        format: str | None = None,
        local_path: str | None = None,
        labels: dict[str, Any] | None = None,
        tag: str | None = None,
        description: str | None = None,
        extra_data: dict[str, Any] | None = None,
        label_column: str | None = None,
        project: str | None = None,
        publish: bool | None = None,
        **options: Any,
    ) -> Manifest:
        """Save a DataFrame, Series or pyarrow Table as a dataset version.

        Args:
            key: The artifact key.
            df: The data.
            preview: Rows kept in the preview (default: ``MLART_PREVIEW_ROWS``, 20).
            stats: Compute per-column statistics (default: when the data is not huge).
            format: ``"parquet"`` (default) or ``"csv"``; MLRun's other formats are rejected
                by the dataset kind.
            local_path: File name of the stored body, as the dataset kind accepts it (only
                its last part is used).
            labels: Labels of the version, added to the context's labels.
            tag: A tag to move onto the version (``"latest"`` is implicit and skipped).
            description: Free text stored with the version.
            extra_data: Not supported for datasets; ignored with a warning.
            label_column: Name of the label column, stored as the label ``label_column``.
            project: Project of the key (default: the context's).
            publish: Publish Prefect artifacts (default: the ``MLART_PUBLISH`` setting).
            **options: Further dataset kind options. MLRun's ``artifact_path``, ``upload``,
                ``target_path`` and ``db_key`` are ignored with a warning.

        Raises:
            UnsupportedValueError: ``df`` is not tabular data, or an option is invalid.
        """
        _drop_ignored(options, _IGNORED_MLRUN_OPTIONS, "log_dataset")
        if extra_data:
            logger.warning("log_dataset(%r): extra_data is not supported for datasets; ignored.", key)
        kind_options = _present(preview=preview, stats=stats, format=format, local_path=local_path)
        if label_column is not None:
            labels = {**(labels or {}), "label_column": label_column}
        return self._log(key, df, kind="dataset", labels=labels, tag=tag, description=description,
                         project=project, publish=publish, options={**kind_options, **options})

    def log_artifact(
        self,
        item: ArtifactValue | str,
        body: Any = None,
        *,
        local_path: str | None = None,
        labels: dict[str, Any] | None = None,
        tag: str | None = None,
        description: str | None = None,
        kind: str | None = None,
        project: str | None = None,
        publish: bool | None = None,
        **options: Any,
    ) -> Manifest:
        """Save a wrapper value (``PlotArtifact``, ``Plot``, ``Dataset``, ``Model``) or a key and body.

        ``log_artifact(PlotArtifact("roc", body=fig), local_path="plots/roc.html")`` and
        ``log_artifact("roc", body=fig)`` both store the figure as a plot; the kind follows the
        body's type unless ``kind=`` is given.

        Args:
            item: A wrapper value, or the artifact key.
            body: The value when ``item`` is a key.
            local_path: For plots, the HTML page's file name (MLRun's ``local_path``); passed to
                the kind as ``local_path`` for others.
            labels: Labels added to the wrapper's and the context's labels.
            tag: A tag to move onto the version.
            description: Free text stored with the version.
            kind: Force the kind (default: the wrapper's kind, else the body's type).
            project: Project of the key (default: the wrapper's, else the context's).
            publish: Publish Prefect artifacts (default: the ``MLART_PUBLISH`` setting).
            **options: Kind options. MLRun's ``artifact_path``, ``upload``, ``target_path`` and
                ``db_key`` are ignored with a warning.

        Raises:
            UnsupportedValueError: No kind stores the body, or an option is invalid.
            InvalidNameError: No key is given, or it is invalid.
        """
        _drop_ignored(options, _IGNORED_MLRUN_OPTIONS, "log_artifact")
        if local_path is not None:
            options["local_path"] = local_path
        if isinstance(item, ArtifactValue):
            return self._log(
                item.key, item.value, kind=kind or item.kind,
                labels={**item.labels, **(labels or {})}, tag=tag or item.tag,
                description=description if description is not None else item.description,
                project=project or item.project,
                publish=publish if publish is not None else item.publish,
                options={**item.options, **options},
            )
        return self._log(item, body, kind=kind, labels=labels, tag=tag, description=description,
                         project=project, publish=publish, options=options)

    def log_model(
        self,
        key: str,
        body: Any = None,
        *,
        model_file: str | None = None,
        model_dir: str | os.PathLike[str] | None = None,
        metrics: dict[str, Any] | None = None,
        parameters: dict[str, Any] | None = None,
        extra_data: dict[str, Any] | None = None,
        framework: str | None = None,
        algorithm: str | None = None,
        serializer: str | None = None,
        training_set: Any = None,
        label_column: str | None = None,
        labels: dict[str, Any] | None = None,
        tag: str | None = None,
        description: str | None = None,
        project: str | None = None,
        publish: bool | None = None,
        **options: Any,
    ) -> Manifest:
        """Save a model version: a model object, or bytes or a file you serialized.

        Args:
            key: The artifact key.
            body: The model object, or its serialized bytes (MLRun's ``body=model_data``).
            model_file: Name of the stored model file, e.g. ``"model.pkl"``.
            model_dir: Folder holding ``model_file`` when the model is already a file on disk
                and ``body`` is None.
            metrics: Names to numbers (or text), shown on the card and searchable in the spec.
            parameters: Training parameters.
            extra_data: Files or values stored with the model, by name (bytes, a path, a
                reference to a version, or a value saved as its own artifact).
            framework: Framework name to record instead of the detected one.
            algorithm: Algorithm name to record instead of the model's class name.
            serializer: ``"pickle"`` (default for objects), ``"joblib"``, ``"cloudpickle"`` or
                ``"skops"``; with bytes, the format they are in.
            training_set: A DataFrame saved as the extra data ``training_set`` (its own
                dataset version, ``<key>-training_set``).
            label_column: Name of the label column, stored as the label ``label_column``.
            labels: Labels of the version, added to the context's labels.
            tag: A tag to move onto the version.
            description: Free text stored with the version.
            project: Project of the key (default: the context's).
            publish: Publish Prefect artifacts (default: the ``MLART_PUBLISH`` setting).
            **options: Further model kind options. MLRun's ``inputs``, ``outputs``,
                ``feature_vector``, ``feature_weights``, ``artifact_path``,
                ``upload``, ``target_path`` and ``db_key`` are ignored with a warning.

        Raises:
            UnsupportedValueError: The model cannot be serialized, or an option is invalid.
        """
        _drop_ignored(options, (*_IGNORED_MLRUN_OPTIONS, *_IGNORED_MODEL_OPTIONS), "log_model")
        value, raw_body = _model_value(body, model_dir, model_file)
        if training_set is not None:
            extra_data = {**(extra_data or {}), "training_set": training_set}
        if label_column is not None:
            labels = {**(labels or {}), "label_column": label_column}
        kind_options = _present(
            body=raw_body, model_file=model_file, metrics=metrics, parameters=parameters,
            extra_data=extra_data, framework=framework, algorithm=algorithm, serializer=serializer,
        )
        return self._log(key, value, kind="model", labels=labels, tag=tag, description=description,
                         project=project, publish=publish, options={**kind_options, **options})

    def _log(
        self,
        key: str | None,
        value: Any,
        *,
        kind: str | None,
        labels: dict[str, Any] | None,
        tag: str | None,
        description: str | None,
        project: str | None,
        publish: bool | None,
        options: dict[str, Any],
    ) -> Manifest:
        from mlart_prefect.errors import InvalidNameError

        if not key:
            raise InvalidNameError("Missing artifact key: give a key, e.g. PlotArtifact('roc', body=fig).")
        store = self.store
        started = datetime.now(timezone.utc)
        manifest = api.save(
            key, value, kind=kind, project=project or self.project,
            labels={**self.labels, **(labels or {})} or None, description=description,
            store=store, inputs=None if self.in_prefect_run else list(self._loaded),
            publish=publish, **options,
        )
        if tag and tag != "latest":
            store.tag(manifest.ref, tag)
        if manifest.created < started:
            # The store returned the key's latest version, whose content is the same.
            lineage.run_logger().info(
                "Reused %s (%s): the value is unchanged since that version",
                manifest.ref, manifest.kind,
            )
        else:
            lineage.run_logger().info("Logged %s (%s)", manifest.ref, manifest.kind)
        return manifest

    # -- reading ---------------------------------------------------------------------------

    def get_artifact(self, reference: str | Reference) -> Manifest:
        """Return the manifest of ``reference`` and record it as an input of later saves.

        Inside a flow run, a reference without version or tag names the version this flow run
        saved, when it saved one, even if another run has saved a newer one since.

        Raises:
            NotFoundError: The reference does not resolve.
        """
        manifest = lineage.resolve(self._reference(reference), self.store)
        self._consumed(manifest)
        return manifest

    def load(self, reference: str | Reference | Manifest) -> Any:
        """Return the value stored at ``reference``, resolved as in ``get_artifact``.

        Raises:
            NotFoundError: The reference does not resolve.
            IntegrityError: A body is missing or corrupt.
        """
        manifest = reference if isinstance(reference, Manifest) else self.get_artifact(reference)
        value = api.load(manifest, store=self.store)
        self._consumed(manifest)
        return value

    def get_dataitem(self, reference: str | Reference) -> DataItem:
        """Return MLRun's data item for a stored version: ``.as_df()``, ``.get()``, ``.local()``.

        Only references to stored versions (``key``, ``project/key:3``, ``mlart://...``,
        ``store://...``) are accepted; arbitrary URLs are not.
        """
        return DataItem(self.get_artifact(reference), self)

    def get_store_resource(self, uri: str) -> Manifest:
        """Return the manifest for MLRun's ``store://<kind>/<project>/<key>[:tag]`` or our reference."""
        return self.get_artifact(uri)

    def _reference(self, reference: str | Reference) -> str | Reference:
        if isinstance(reference, str):
            reference = from_mlrun_uri(reference)
            if "/" not in reference.removeprefix("mlart://") and self.project:
                return Reference.parse(reference, project=self.project)
        return reference

    def _consumed(self, manifest: Manifest) -> None:
        lineage.record_consumed(manifest)
        if manifest.ref not in self._loaded:
            self._loaded.append(manifest.ref)


class DataItem:
    """A stored version seen through MLRun's ``DataItem`` calls."""

    def __init__(self, manifest: Manifest, context: RunContext) -> None:
        self.meta = manifest
        self._context = context

    @property
    def url(self) -> str:
        """URI of the primary body."""
        return self.meta.body().uri

    @property
    def key(self) -> str:
        """The artifact key."""
        return self.meta.key

    def as_df(self) -> Any:
        """Return the dataset as a DataFrame (the value a dataset version loads as)."""
        from mlart_prefect.errors import UnsupportedValueError

        if self.meta.kind != "dataset":
            raise UnsupportedValueError(
                f"{self.meta.ref} is a {self.meta.kind}, not a dataset; use .get() or load()."
            )
        return self._context.load(self.meta)

    def get(self) -> bytes:
        """Return the bytes of the primary body, checked against its sha256."""
        return self._context.store.read_bytes(self.meta)

    def local(self) -> str:
        """Copy the primary body into a new temporary folder and return the file's path."""
        folder = tempfile.mkdtemp(prefix="mlart-item-")
        path = Path(folder) / self.meta.body().name
        with self._context.store.open(self.meta) as source, open(path, "wb") as target:
            shutil.copyfileobj(source, target)
        return str(path)

    def __repr__(self) -> str:
        return f"DataItem({self.meta.ref!r})"


def _model_value(body: Any, model_dir: Any, model_file: str | None) -> tuple[Any, Any]:
    """Split MLRun's ``body``/``model_dir`` into (model object, serialized body)."""
    if isinstance(body, (bytes, bytearray, memoryview, os.PathLike)):
        return None, body
    if body is None and model_dir is not None:
        from mlart_prefect.errors import UnsupportedValueError

        if model_file is None:
            raise UnsupportedValueError(
                f"log_model got model_dir={str(model_dir)!r} without model_file; name the file "
                "inside the folder, e.g. model_file='model.pkl'."
            )
        return None, Path(model_dir) / model_file
    return body, None


def _present(**options: Any) -> dict[str, Any]:
    return {name: value for name, value in options.items() if value is not None}


def _drop_ignored(options: dict[str, Any], names: tuple[str, ...], call: str) -> None:
    for name in names:
        if options.pop(name, None) is not None:
            logger.warning("%s: MLRun option %r is not supported and is ignored.", call, name)
