"""Versioned Dataset, Plot and Model artifacts for Prefect 3 flows."""

from __future__ import annotations

__version__ = "0.1.0"

from mlart_prefect.api import get_artifact, get_store, load, save, set_store
from mlart_prefect.capture import (
    Dataset,
    Model,
    Plot,
    PlotArtifact,
    RunContext,
    artifact_task,
    get_run_context,
)
from mlart_prefect.errors import (
    IntegrityError,
    InvalidNameError,
    InvalidReferenceError,
    KindMismatchError,
    ManifestError,
    MlartError,
    NotFoundError,
    StoreUnavailableError,
    UnsupportedValueError,
)
from mlart_prefect.kinds import register_kind
from mlart_prefect.manifest import Manifest, Producer, Reference
from mlart_prefect.store import ArtifactStore

__all__ = [
    "ArtifactStore",
    "Dataset",
    "Model",
    "Plot",
    "PlotArtifact",
    "RunContext",
    "artifact_task",
    "get_artifact",
    "get_run_context",
    "get_store",
    "set_store",
    "IntegrityError",
    "InvalidNameError",
    "InvalidReferenceError",
    "KindMismatchError",
    "Manifest",
    "ManifestError",
    "MlartError",
    "NotFoundError",
    "Producer",
    "Reference",
    "StoreUnavailableError",
    "UnsupportedValueError",
    "__version__",
    "load",
    "register_kind",
    "save",
]
