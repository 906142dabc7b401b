"""Model serializers (pickle, joblib, cloudpickle, skops) and detection of a model's framework."""

from __future__ import annotations

import importlib.metadata
import io
import json
import mmap
import pickle
import platform
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path, PurePath
from typing import Any

from mlart_prefect.errors import UnsupportedValueError

PICKLE_PROTOCOL = 5
"""Pickle protocol written by the pickle serializer; Python 3.8 and later can read it."""

# Frameworks recognised anywhere in a model's class hierarchy, by top-level module, with the
# distribution that gives their version. So a user's torch.nn.Module subclass is a torch model.
KNOWN_FRAMEWORKS = {
    "sklearn": "scikit-learn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "catboost": "catboost",
    "torch": "torch",
    "tensorflow": "tensorflow",
    "keras": "keras",
    "statsmodels": "statsmodels",
    "transformers": "transformers",
    "onnx": "onnx",
}

# pickle protocols 4 and 5 write a class's module name as a short unicode string followed by a
# MEMOIZE opcode, so this byte string in a pickle stream means some class is looked up in __main__.
# NOTE: the same bytes also appear when the model contains the plain string "__main__". The check
# then warns without need, which is harmless.
_MAIN_MODULE_MARKER = b"\x8c\x08__main__\x94"


_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
_SKOPS_PROTOCOLS = frozenset({2})  # skops schema protocols whose ids are renumbered (skops 0.16)


@dataclass(frozen=True)
class Serializer:
    """A named way to write a model to a file and read it back.

    ``dump`` writes the object and returns extra entries for the manifest's spec. ``load`` gets
    the spec back, so a serializer can read what it recorded when saving.
    """

    name: str
    file_name: str
    distribution: str | None
    dump: Callable[[Any, Path], dict[str, Any]]
    load: Callable[[Path, dict[str, Any]], Any]
    scans_for_main: bool = True

    def version(self) -> str | None:
        """Return the serializer's version: the pickle protocol, else its package version."""
        if self.distribution is None:
            return f"protocol {PICKLE_PROTOCOL}"
        return distribution_version(self.distribution)


def _dump_pickle(value: Any, path: Path) -> dict[str, Any]:
    with open(path, "wb") as file:
        pickle.dump(value, file, protocol=PICKLE_PROTOCOL)
    return {}


def _load_pickle(path: Path, spec: dict[str, Any]) -> Any:
    with open(path, "rb") as file:
        return pickle.load(file)


def _dump_joblib(value: Any, path: Path) -> dict[str, Any]:
    import joblib

    joblib.dump(value, path)
    return {}


def _load_joblib(path: Path, spec: dict[str, Any]) -> Any:
    import joblib

    return joblib.load(path)


def _dump_cloudpickle(value: Any, path: Path) -> dict[str, Any]:
    import cloudpickle

    with open(path, "wb") as file:
        cloudpickle.dump(value, file, protocol=PICKLE_PROTOCOL)
    return {}


def _dump_skops(value: Any, path: Path) -> dict[str, Any]:
    import skops.io

    path.write_bytes(_stable_skops_archive(skops.io.dumps(value)))
    return {"trusted_types": sorted(skops.io.get_untrusted_types(file=path))}


def _stable_skops_archive(data: bytes) -> bytes:
    """Rewrite a skops archive so that saving the same model twice gives the same bytes.

    skops names array files and marks shared objects with ``id()`` values and stamps each zip
    entry with the current time, so a retried task would add a version instead of finding its
    own. The ids are renumbered in the order they appear in ``schema.json`` (equal ids stay
    equal, so shared objects stay shared) and every entry gets the same time. Archives of a
    schema protocol not checked here are returned unchanged.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        schema = json.loads(source.read("schema.json"))
        if schema.get("protocol") not in _SKOPS_PROTOCOLS:
            return data
        file_names: dict[str, str] = {}
        schema = _renumber_skops_ids(schema, file_names, {})
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as target:
            renamed = [(file_names.get(e.filename, e.filename), e) for e in source.infolist()]
            for name, entry in sorted(renamed, key=lambda pair: pair[0]):
                content = source.read(entry)
                if name == "schema.json":
                    content = json.dumps(schema, indent=2).encode("utf-8")
                stable = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
                stable.compress_type = entry.compress_type
                target.writestr(stable, content)
    return buffer.getvalue()


def _renumber_skops_ids(node: Any, file_names: dict[str, str], ids: dict[int, int]) -> Any:
    if isinstance(node, list):
        return [_renumber_skops_ids(item, file_names, ids) for item in node]
    if not isinstance(node, dict):
        return node
    # Only schema nodes (dicts with a "__loader__") carry ids and file names. The keys of a
    # plain dict's "content" are attribute names, which may be "file" too.
    is_node = "__loader__" in node
    result = {}
    for key, value in node.items():
        if is_node and key == "__id__" and isinstance(value, int):
            result[key] = ids.setdefault(value, len(ids) + 1)
        elif is_node and key == "file" and isinstance(value, str):
            suffix = PurePath(value).suffix
            result[key] = file_names.setdefault(value, f"{len(file_names) + 1}{suffix}")
        else:
            result[key] = _renumber_skops_ids(value, file_names, ids)
    return result


def _load_skops(path: Path, spec: dict[str, Any]) -> Any:
    """Load a skops file, trusting only the types recorded in the manifest when it was saved.

    skops trusts most scikit-learn, numpy and scipy types by default. The other types that the
    file needed when it was saved are listed in ``spec["trusted_types"]``. A file that needs any
    type beyond that list is rejected before any object is built.
    """
    import skops.io

    recorded = list(spec.get("trusted_types", []))
    needed = skops.io.get_untrusted_types(file=path)
    unexpected = sorted(set(needed) - set(recorded))
    if unexpected:
        raise UnsupportedValueError(
            f"Cannot load {path.name!r} with skops: it needs the types {unexpected!r}, which "
            f"were not recorded as trusted when it was saved (recorded: {recorded!r}). Check the "
            "file's origin, then load it with skops.io.load(path, trusted=[...]) yourself."
        )
    return skops.io.load(path, trusted=recorded)


SERIALIZERS: dict[str, Serializer] = {
    "pickle": Serializer("pickle", "model.pkl", None, _dump_pickle, _load_pickle),
    "joblib": Serializer("joblib", "model.joblib", "joblib", _dump_joblib, _load_joblib),
    "cloudpickle": Serializer(
        "cloudpickle", "model.pkl", "cloudpickle", _dump_cloudpickle, _load_pickle,
        scans_for_main=False,
    ),
    "skops": Serializer(
        "skops", "model.skops", "skops", _dump_skops, _load_skops, scans_for_main=False
    ),
}
"""Serializers by name. Loading pickle, joblib and cloudpickle bodies runs code from the store."""


def get_serializer(name: str) -> Serializer:
    """Return the serializer called ``name`` after checking that its package is installed.

    Raises:
        UnsupportedValueError: The name is unknown or its package is not installed.
    """
    serializer = SERIALIZERS.get(name) if isinstance(name, str) else None
    if serializer is None:
        raise UnsupportedValueError(
            f"Unknown serializer {name!r}: expected one of {sorted(SERIALIZERS)!r}."
        )
    package = serializer.distribution
    if package is not None and distribution_version(package) is None:
        raise UnsupportedValueError(
            f"The {name!r} serializer needs the {serializer.distribution!r} package, which is not "
            f"installed: run `pip install {serializer.distribution}` or use serializer='pickle'."
        )
    return serializer


@cache
def distribution_version(distribution: str) -> str | None:
    """Return an installed distribution's version, or None when it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def _import_to_distributions() -> dict[str, list[str]]:
    # Scanning every installed distribution takes tens of milliseconds, hence the cache.
    return dict(importlib.metadata.packages_distributions())


def module_root_version(root: str) -> str | None:
    """Return the version of the distribution that provides the top-level module ``root``."""
    distribution = KNOWN_FRAMEWORKS.get(root)
    if distribution is None:
        candidates = _import_to_distributions().get(root, [])
        distribution = candidates[0] if candidates else None
    return distribution_version(distribution) if distribution else None


def describe_model(value: Any) -> dict[str, Any]:
    """Return the framework, its version, the algorithm and the class name of a model object.

    The framework is the first known framework (see ``KNOWN_FRAMEWORKS``) whose module defines a
    class of the model's class hierarchy, else the top-level module of the model's own class.
    The algorithm is the class name, e.g. ``RandomForestClassifier``.
    """
    cls = type(value)
    roots = [base.__module__.split(".")[0] for base in cls.__mro__]
    framework = next((root for root in roots if root in KNOWN_FRAMEWORKS), roots[0])
    return {
        "framework": framework,
        "framework_version": module_root_version(framework),
        "algorithm": cls.__name__,
        "model_class": f"{cls.__module__}.{cls.__qualname__}",
    }


def python_version() -> str:
    """Return the running Python's version, e.g. ``3.11.7``."""
    return platform.python_version()


def references_main_module(path: Path) -> bool:
    """Tell whether a pickle or joblib file looks up a class in the ``__main__`` module."""
    if path.stat().st_size == 0:
        return False
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return data.find(_MAIN_MODULE_MARKER) != -1
