"""Wrapper values that carry a kind and save options with a value: Dataset, Plot, Model."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

logger = logging.getLogger(__name__)

__all__ = ["ArtifactValue", "Dataset", "Model", "Plot", "PlotArtifact"]


class ArtifactValue:
    """A value to store as one artifact, with the options to store it with.

    Return one from an ``artifact_task`` (alone, or inside a dict or tuple) to choose the key,
    labels or kind options from inside the task, or pass one to ``RunContext.log_artifact``.
    The task's caller receives the plain ``value``, never the wrapper.

    Args:
        value: The value to store.
        key: The artifact key (default: the task's key, plus the dict key or tuple position
            when the wrapper is inside a dict or tuple).
        project: Project of the key (default: the task's, else the store's project).
        labels: Labels added to the task's labels; these win on equal names.
        description: Free text stored with the version (default: the task's description).
        tag: A tag to move onto the saved version, e.g. ``"production"`` (default: none).
        publish: Publish Prefect artifacts for the version (default: the task's choice, else
            the ``MLART_PUBLISH`` setting).
        **options: Options of the kind, e.g. ``preview=50`` for a dataset.
    """

    kind: ClassVar[str | None] = None

    def __init__(
        self,
        value: Any,
        *,
        key: str | None = None,
        project: str | None = None,
        labels: dict[str, Any] | None = None,
        description: str | None = None,
        tag: str | None = None,
        publish: bool | None = None,
        **options: Any,
    ) -> None:
        self.value = value
        self.key = key
        self.project = project
        self.labels = dict(labels or {})
        self.description = description
        self.tag = tag
        self.publish = publish
        self.options = options

    @property
    def plain_value(self) -> Any:
        """The value a task's caller receives in place of this wrapper."""
        return self.value

    def __repr__(self) -> str:
        key = f", key={self.key!r}" if self.key else ""
        return f"{type(self).__name__}({type(self.value).__qualname__}{key})"


class Dataset(ArtifactValue):
    """A DataFrame, Series or pyarrow Table to store as a dataset.

    Example:
        ```python
        @artifact_task
        def split(df):
            train, test = df.iloc[:80], df.iloc[80:]
            return {"train": Dataset(train, preview=5), "test": Dataset(test, format="csv")}
        ```
    """

    kind = "dataset"


class Plot(ArtifactValue):
    """A matplotlib Figure (or Axes) to store as a plot.

    Example:
        ```python
        @artifact_task(key="loss-curve")
        def plot_loss(history):
            fig, ax = plt.subplots()
            ax.plot(history)
            return Plot(fig, formats=("png", "svg"), labels={"metric": "loss"})
        ```
    """

    kind = "plot"


class Model(ArtifactValue):
    """A trained model (any picklable object) to store as a model, with metrics and extra data.

    Pass ``body=`` bytes (and ``value=None``) for a model you serialized yourself; the task's
    caller then receives those bytes.

    Example:
        ```python
        @artifact_task(key="churn-model")
        def train(df):
            model = LogisticRegression().fit(df[["x"]], df["y"])
            return Model(model, metrics={"accuracy": 0.91}, parameters={"C": 1.0})
        ```
    """

    kind = "model"

    def __init__(self, value: Any = None, **options: Any) -> None:
        super().__init__(value, **options)

    @property
    def plain_value(self) -> Any:
        """The model object, or the ``body`` bytes when only those were given."""
        if self.value is None and "body" in self.options:
            return self.options["body"]
        return self.value


class PlotArtifact(Plot):
    """MLRun's ``PlotArtifact(key, body=figure)``, for ``RunContext.log_artifact``.

    Args:
        key: The artifact key.
        body: The matplotlib Figure (or Axes).
        title: Stored as the version's description when no ``description`` is given.
        **options: As for ``Plot``; MLRun's ``is_inline`` and ``target_path`` are ignored with
            a warning.

    Example:
        ```python
        ctx = get_run_context()
        ctx.log_artifact(PlotArtifact("confusion-matrix", body=fig),
                         local_path="plots/confusion_matrix.html")
        ```
    """

    def __init__(self, key: str | None = None, body: Any = None, *, title: str | None = None,
                 **options: Any) -> None:
        for ignored in ("is_inline", "target_path"):
            if options.pop(ignored, None) is not None:
                logger.warning("PlotArtifact option %r is not supported and is ignored.", ignored)
        if title is not None and options.get("description") is None:
            options["description"] = title
        super().__init__(body, key=key, **options)
        self.title = title
