"""The model kind: a serialized model object or the caller's model bytes, with metrics."""

from __future__ import annotations

import logging
import math
import numbers
import os
import pickle
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlart_prefect.errors import InvalidNameError, NotFoundError, UnsupportedValueError, cause_text
from mlart_prefect.jsonsafe import NEGATIVE_INFINITY, POSITIVE_INFINITY
from mlart_prefect.kinds import register_kind
from mlart_prefect.kinds._model_extra import (
    plan_extra_data,
    referenced_versions,
    store_extra_data,
)
from mlart_prefect.kinds._serializers import (
    describe_model,
    get_serializer,
    python_version,
    references_main_module,
)
from mlart_prefect.kinds.base import (
    BodyPayload,
    BodyReader,
    EncodeContext,
    Encoded,
    KindHandler,
)
from mlart_prefect.manifest import Manifest, Reference, validate_name

if TYPE_CHECKING:
    from mlart_prefect.store import ArtifactStore

__all__ = ["ModelHandler", "load_extra_data"]

logger = logging.getLogger(__name__)

_RAW_BODY_FILE = "model.bin"

NOT_A_NUMBER = "nan"
"""Text stored in place of a NaN metric or parameter, which ``float()`` reads back."""

_NON_FINITE_NAMES = {math.inf: POSITIVE_INFINITY, -math.inf: NEGATIVE_INFINITY}


class ModelHandler(KindHandler):
    """Store a model object with a named serializer, or bytes that the caller serialized.

    Loading a version returns the model object, deserialized with the serializer recorded in the
    manifest, or the raw bytes of a ``body=`` model saved without a serializer.

    Warning:
        Loading a pickle, joblib or cloudpickle body runs any code that its writer put in it. Load
        models only from stores you trust, or save scikit-learn models with
        ``serializer="skops"``. A skops model loads trusting only the types recorded in its
        manifest (``spec["trusted_types"]``) when it was saved.
    """

    kind = "model"

    def encode(
        self,
        value: Any,
        ctx: EncodeContext,
        *,
        serializer: str | None = None,
        body: bytes | bytearray | memoryview | os.PathLike[str] | None = None,
        model_file: str | None = None,
        metrics: Mapping[str, Any] | None = None,
        parameters: Mapping[str, Any] | None = None,
        extra_data: Mapping[str, Any] | None = None,
        framework: str | None = None,
        algorithm: str | None = None,
    ) -> Encoded:
        """Serialize a model (or take its bytes) and describe it in the spec.

        Args:
            value: The model object; None when ``body`` is given.
            ctx: Where the model is saved; extra data that is itself an artifact is saved there.
            serializer: ``"pickle"`` (default for objects), ``"joblib"``, ``"cloudpickle"`` or
                ``"skops"`` (scikit-learn models; needs the skops package). With ``body``, it
                names the format of the given bytes so that loading deserializes them; without
                it, loading returns the bytes.
            body: Model bytes serialized by the caller, or a path to such a file.
            model_file: Name of the stored model file (default: ``model.pkl`` for pickle and
                cloudpickle, ``model.joblib``, ``model.skops``, the file name of a ``body`` path,
                else ``model.bin``).
            metrics: Names to numbers, strings, booleans or None (lists and dicts of them too).
                Non-finite floats are stored as the strings ``"nan"``, ``"inf"`` and ``"-inf"``
                with a warning, because the manifest is strict JSON; ``float()`` reads them back.
            parameters: Training parameters, with the same rules as ``metrics``.
            extra_data: Data stored with the model, by name. A value may be:

                - bytes, stored as a file named after the entry;
                - a path (``str`` or ``pathlib.Path``) to an existing local file, stored as a
                  copy named after the entry plus the file's suffix;
                - a reference to a stored version: ``"project/key:3"``,
                  ``"mlart://project/key@tag"``, MLRun's ``"store://models/project/key:tag"``
                  or a Manifest, pinned to its version number;
                - any value of a registered kind (a DataFrame, a figure), saved as its own
                  version under the key ``"<key>-<name>"`` and referenced.

                A string that names an existing file is a file, otherwise a reference.
            framework: Framework name to record instead of the detected one.
            algorithm: Algorithm name to record instead of the model's class name.

        Raises:
            UnsupportedValueError: Both or neither of ``value`` and ``body`` are given, the
                object cannot be serialized, an option has an unsupported value, or an
                ``extra_data`` entry is none of the accepted values (a reference that names no
                stored version included).

        Warns:
            UserWarning: The model's class, or a class inside it, is defined in ``__main__``, so
                another process cannot load it; the message is also in ``Encoded.warnings``.
        """
        spec_warnings: list[str] = []
        clean_metrics = _clean_mapping(metrics, "metric", spec_warnings)
        clean_parameters = _clean_mapping(parameters, "parameter", spec_warnings)
        model_name = _model_file_name(value, body, serializer, model_file)
        extra_items = plan_extra_data(extra_data, ctx, model_name)
        # Read before the extra values are saved, which gives those items references too.
        references = referenced_versions(extra_items)

        if body is not None:
            payload, spec = _encode_body(body, serializer, model_name, ctx.workdir)
        else:
            serializer_name = serializer or "pickle"
            payload, spec = _encode_object(value, ctx, serializer_name, model_name, spec_warnings)
        if framework is not None:
            spec["framework"] = str(framework)
        if algorithm is not None:
            spec["algorithm"] = str(algorithm)
        spec["metrics"] = clean_metrics
        spec["parameters"] = clean_parameters

        # Extra values of other kinds become versions of their own, so they are saved last,
        # once every other input has been checked.
        extra_bodies, spec["extra_data"] = store_extra_data(extra_items, ctx)
        spec["warnings"] = spec_warnings
        return Encoded(
            bodies=[payload, *extra_bodies],
            spec=spec,
            primary=payload.name,
            warnings=spec_warnings,
            inputs=references,
        )

    def decode(self, manifest: Manifest, reader: BodyReader) -> Any:
        """Load the model object back, or the raw bytes of a model saved without a serializer.

        The body is copied to a temporary file and its digest checked before it is deserialized.
        """
        name = manifest.spec["model_file"]
        serializer_name = manifest.spec.get("serializer")
        if serializer_name is None:
            return reader.read_bytes(name)

        serializer = get_serializer(serializer_name)
        with tempfile.TemporaryDirectory(prefix="mlart-model-") as folder:
            path = Path(folder) / name
            with reader.open(name) as source, open(path, "wb") as target:
                shutil.copyfileobj(source, target)
            return serializer.load(path, manifest.spec)


def _model_file_name(value: Any, body: Any, serializer: str | None, model_file: str | None) -> str:
    """Check that exactly one of value and body is given and return the model file's name."""
    if value is not None and body is not None:
        raise UnsupportedValueError(
            f"Both a model object ({type(value).__qualname__}) and body= were given: pass the "
            "object to serialize it, or body= with bytes serialized already, not both."
        )
    if value is None and body is None:
        raise UnsupportedValueError(
            "No model to store: pass the model object, or body= with bytes you serialized."
        )
    if body is not None and not isinstance(body, (bytes, bytearray, memoryview, os.PathLike)):
        raise UnsupportedValueError(
            f"Invalid body of type {type(body).__qualname__}: expected bytes or a pathlib.Path to "
            "a model file."
        )

    if model_file is not None:
        default = model_file
    elif body is None:
        default = get_serializer(serializer or "pickle").file_name
    elif isinstance(body, os.PathLike):
        default = Path(body).name
    else:
        default = _RAW_BODY_FILE
    return _check_file_name(default, "model_file")


def _encode_body(
    body: Any, serializer: str | None, name: str, workdir: Path
) -> tuple[BodyPayload, dict[str, Any]]:
    if serializer is not None:
        get_serializer(serializer)
    if isinstance(body, os.PathLike):
        path = Path(body)
        if not path.is_file():
            raise UnsupportedValueError(f"Invalid body {body!r}: no such file.")
        # The store moves the files it is given into place, so it gets a copy of the caller's.
        copy = workdir / name
        shutil.copyfile(path, copy)
        payload = BodyPayload(name=name, path=copy)
    else:
        payload = BodyPayload(name=name, data=bytes(body))

    spec = {
        "model_file": name,
        "serializer": serializer,
        "serializer_version": None,
        "framework": None,
        "framework_version": None,
        "algorithm": None,
        "model_class": None,
        "python_version": python_version(),
    }
    return payload, spec


def _encode_object(
    value: Any, ctx: EncodeContext, serializer_name: str, name: str, spec_warnings: list[str]
) -> tuple[BodyPayload, dict[str, Any]]:
    serializer = get_serializer(serializer_name)
    main_class = serializer_name != "cloudpickle" and type(value).__module__ == "__main__"
    if main_class:
        _warn_main_module(f"The model class {type(value).__qualname__!r} is", spec_warnings)

    path = ctx.workdir / name
    try:
        extra_spec = serializer.dump(value, path)
    # pickle raises PicklingError, AttributeError (local objects) or TypeError (locks, sockets).
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise UnsupportedValueError(
            f"Cannot serialize {type(value).__module__}.{type(value).__qualname__} with "
            f"{serializer_name}: {cause_text(exc)}. Lambdas and classes defined inside "
            "functions need serializer='cloudpickle'; or serialize the model yourself and pass "
            "body=."
        ) from exc
    if serializer.scans_for_main and not main_class and references_main_module(path):
        _warn_main_module("A class used by the model is", spec_warnings)

    spec = {
        "model_file": name,
        "serializer": serializer_name,
        "serializer_version": serializer.version(),
        **describe_model(value),
        "python_version": python_version(),
        **extra_spec,
    }
    return BodyPayload(name=name, path=path), spec


def _warn_main_module(subject: str, spec_warnings: list[str]) -> None:
    message = (
        f"{subject} defined in __main__. pickle stores a class by reference to its module, so "
        "loading this model in another process fails unless that process defines the same class "
        "in its own __main__. Move the class into an importable module, or save with "
        "serializer='cloudpickle', which stores such classes by value."
    )
    # stacklevel 5 points at the caller of api.save (through encode and _encode_object).
    warnings.warn(message, UserWarning, stacklevel=5)
    spec_warnings.append(message)


def _check_file_name(name: Any, option: str) -> str:
    try:
        return validate_name(name, "file name")
    except InvalidNameError as exc:
        raise UnsupportedValueError(f"Invalid {option} {name!r}: {exc}") from exc


def _clean_mapping(
    values: Mapping[str, Any] | None, what: str, spec_warnings: list[str]
) -> dict[str, Any]:
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise UnsupportedValueError(
            f"Invalid {what}s {values!r}: expected a dict of names to values."
        )
    cleaned = {}
    for name, value in values.items():
        if not isinstance(name, str):
            raise UnsupportedValueError(f"Invalid {what} name {name!r}: expected a string.")
        cleaned[name] = _clean_value(value, f"{what} {name!r}", spec_warnings)
    return cleaned


def _clean_value(value: Any, where: str, spec_warnings: list[str]) -> Any:
    """Convert a metric or parameter value to strict JSON (numpy scalars become Python ones)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_"):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isfinite(number):
            return number
        text = NOT_A_NUMBER if math.isnan(number) else _NON_FINITE_NAMES[number]
        spec_warnings.append(
            f"The {where} is {number!r}, which strict JSON cannot hold; it is stored as the "
            f"string {text!r}."
        )
        return text
    if isinstance(value, (list, tuple)):
        return [_clean_value(item, where, spec_warnings) for item in value]
    if isinstance(value, Mapping):
        return {str(k): _clean_value(v, where, spec_warnings) for k, v in value.items()}
    raise UnsupportedValueError(
        f"Invalid {where}: {value!r} of type {type(value).__qualname__}. Metrics and parameters "
        "accept numbers, strings, booleans, None, and lists or dicts of them; convert the value "
        "with str() or float() first."
    )


def load_extra_data(
    manifest: Manifest | str | Reference, name: str, *, store: ArtifactStore | None = None
) -> Any:
    """Load one ``extra_data`` item of a stored model.

    Args:
        manifest: The model version, or a reference to it (``"project/key:3"``).
        name: The extra_data name given when the model was saved.
        store: Store holding the model (default: ``api.get_store()``, from the ``MLART_*``
            settings).

    Returns:
        The bytes of an item stored as a file (bytes or a local path when saved), or the loaded
        value of an item that refers to another artifact (a DataFrame, a ``PlotImage``...).

    Raises:
        NotFoundError: The version has no extra_data item called ``name``.
        UnsupportedValueError: The version is not a model.
    """
    from mlart_prefect import api  # imported here: api imports the kinds registry

    store = store if store is not None else api.get_store()
    if not isinstance(manifest, Manifest):
        manifest = store.get(manifest)
    if manifest.kind != "model":
        raise UnsupportedValueError(
            f"{manifest.ref} is a {manifest.kind}, not a model, so it has no extra_data."
        )

    entries: dict[str, dict[str, Any]] = manifest.spec.get("extra_data") or {}
    entry = entries.get(name)
    if entry is None:
        known = ", ".join(sorted(entries)) or "none"
        raise NotFoundError(f"{manifest.ref} has no extra_data {name!r}; its extra_data: {known}.")
    if entry["type"] == "body":
        return store.read_bytes(manifest, entry["body"])
    return api.load(entry["ref"], store=store)


_handler = ModelHandler()
# Registered after user types (first=False) so that a user's register_kind call for the same
# types wins; other objects become models only when the caller passes kind="model".
register_kind("sklearn.base.BaseEstimator", _handler, first=False)
register_kind("xgboost.core.Booster", _handler, first=False)
register_kind("lightgbm.basic.Booster", _handler, first=False)
