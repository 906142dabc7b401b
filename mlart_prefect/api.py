"""Save and load values as versioned artifacts: the functions most users call."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from mlart_prefect.errors import UnsupportedValueError
from mlart_prefect.kinds import EncodeContext, check_options, get_handler, handler_for_value
from mlart_prefect.manifest import Manifest, Producer, Reference
from mlart_prefect.store import ArtifactStore

logger = logging.getLogger(__name__)

_default_store: ArtifactStore | None = None


def get_store() -> ArtifactStore:
    """Return the process-wide store built from the ``MLART_*`` settings."""
    global _default_store
    if _default_store is None:
        _default_store = ArtifactStore.from_settings()
    return _default_store


def set_store(store: ArtifactStore | None) -> None:
    """Replace the process-wide store; None rebuilds it from the settings at next use."""
    global _default_store
    _default_store = store


def save(
    key: str,
    value: Any,
    *,
    kind: str | None = None,
    project: str | None = None,
    labels: dict[str, Any] | None = None,
    description: str | None = None,
    owner: str | None = None,
    store: ArtifactStore | None = None,
    producer: Producer | None = None,
    inputs: Iterable[str | Reference | Manifest] | None = None,
    publish: bool | None = None,
    **options: Any,
) -> Manifest:
    """Store ``value`` as a new version of ``key`` and return its manifest.

    The kind follows the value's type (DataFrame, Series and pyarrow Table: dataset; matplotlib
    Figure and Axes: plot); pass ``kind="model"`` for any other object. Inside a Prefect run the
    producer and the versions loaded so far in the task are recorded.

    Args:
        key: The artifact's name inside the project.
        value: The value to store.
        kind: Force a kind ('dataset', 'plot', 'model' or a registered one). Default: by type.
        project: Project of the key (default: the store's project).
        labels: String labels to search by.
        description: Free text shown with the version.
        owner: Owner name (default: the Prefect run's owner, else the current user).
        store: The store (default: the one from the ``MLART_*`` settings).
        producer: Override the producer taken from the Prefect run context.
        inputs: Versions this one was made from, added to those loaded in the current task.
        publish: Inside a Prefect run, publish Prefect artifacts (markdown card, preview table)
            for the version (default: the ``MLART_PUBLISH`` setting).
        **options: Options of the kind, e.g. ``preview=20``, ``stats=True``, ``format="csv"``
            for datasets, ``formats=("png", "svg")`` for plots, ``serializer="joblib"``,
            ``metrics={...}`` for models.

    Raises:
        UnsupportedValueError: No kind stores this value, or the kind rejects it.
        InvalidNameError: The key, project or a label is invalid.

    Example:
        ```python
        from prefect import flow, task
        import mlart_prefect as mlart

        @task
        def clean(df):
            df = df.dropna()
            mlart.save("clean-data", df, labels={"stage": "clean"})
            return df
        ```
    """
    from mlart_prefect import lineage
    from mlart_prefect.wrappers import ArtifactValue

    if isinstance(value, ArtifactValue):
        wrapper = type(value).__name__
        raise UnsupportedValueError(
            f"save() stores plain values, not a {wrapper} wrapper: pass its value and options, "
            f"e.g. save(key, model, kind='model', metrics={{...}}). {wrapper}(...) is for values "
            "returned by an artifact_task and for RunContext.log_artifact."
        )
    store = store or get_store()
    project = store.project if project is None else project
    handler = get_handler(kind) if kind else handler_for_value(value)
    check_options(handler.kind, options)
    all_inputs = [*lineage.consumed_inputs(store=store, project=project), *(inputs or ())]

    with store.staging_dir() as workdir:
        ctx = EncodeContext(store=store, project=project, key=key, workdir=workdir,
                            labels=dict(labels or {}))
        encoded = handler.encode(value, ctx, **options)
        for message in encoded.warnings:
            logger.warning("%s/%s: %s", project, key, message)
        manifest = store.save(
            key,
            encoded,
            kind=handler.kind,
            project=project,
            labels=labels,
            owner=owner,
            description=description,
            producer=producer or lineage.current_producer(),
            inputs=[*all_inputs, *encoded.inputs],
        )
    lineage.record_produced(manifest, store=store, publish=publish)
    return manifest


def load(reference: str | Reference | Manifest, *, store: ArtifactStore | None = None) -> Any:
    """Return the value stored at ``reference`` (``key``, ``key:3``, ``key@tag``, ...).

    Inside a Prefect task the loaded version is recorded as an input of what the task saves.
    Inside a flow run, a reference without version or tag names the version this flow run
    saved, when it saved one, even if another run has saved a newer one since.

    Raises:
        NotFoundError: The reference does not resolve.
        IntegrityError: A body is missing or corrupt.
    """
    from mlart_prefect import lineage

    store = store or get_store()
    manifest = lineage.resolve(reference, store)
    value = get_handler(manifest.kind).decode(manifest, store.reader(manifest))
    lineage.record_consumed(manifest)
    return value


def get_artifact(reference: str | Reference, *, store: ArtifactStore | None = None) -> Manifest:
    """Return the manifest at ``reference`` and record it as consumed in the current task."""
    from mlart_prefect import lineage

    manifest = lineage.resolve(reference, store or get_store())
    lineage.record_consumed(manifest)
    return manifest

