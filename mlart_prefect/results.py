"""Prefect result persistence through the store: a result serializer that writes references."""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from prefect.serializers import Serializer
from pydantic import Field

from mlart_prefect.errors import IntegrityError, NotFoundError, UnsupportedValueError
from mlart_prefect.kinds import has_kind

if TYPE_CHECKING:
    from prefect.client.schemas.objects import TaskRun
    from prefect.states import State
    from prefect.tasks import Task

    from mlart_prefect.manifest import Manifest
    from mlart_prefect.store import ArtifactStore

logger = logging.getLogger(__name__)

POINTER_FORMAT = 1
"""Version of the JSON pointer that ``ArtifactSerializer.dumps`` writes."""

REMEMBERED_MAX = 64
"""Values remembered per process as "already saved"; older entries are forgotten first."""

_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


# -- values the capture has just saved ----------------------------------------------------------


@dataclass
class _Saved:
    value_ref: Callable[[], Any]
    manifest: Manifest
    store_url: str | None


_remembered: OrderedDict[int, _Saved] = OrderedDict()
_remembered_lock = threading.Lock()


def remember_saved(value: Any, manifest: Manifest, *, store: ArtifactStore | None = None) -> None:
    """Note that ``value`` was just stored as ``manifest``, so its result reuses that version.

    The capture calls this after saving a task's return value. When Prefect then persists the
    same object with ``ArtifactSerializer``, the serializer writes a reference to ``manifest``
    instead of encoding and saving the value again. The match is by object identity, so call
    this only when the value cannot change before Prefect persists it (the capture saves after
    the task function has returned). Values that accept weak references are not kept alive by
    this; others are held until ``REMEMBERED_MAX`` newer values push them out. None, booleans,
    numbers and strings are ignored, because Python shares such objects between unrelated
    values.
    """
    if value is None or isinstance(value, (bool, int, float, complex, str)):
        return
    try:
        value_ref: Callable[[], Any] = weakref.ref(value)
    except TypeError:  # ints, bytes, tuples and dicts accept no weak reference
        value_ref = _StrongRef(value)

    entry = _Saved(value_ref, manifest, store.url if store is not None else None)
    with _remembered_lock:
        _remembered[id(value)] = entry
        _remembered.move_to_end(id(value))
        while len(_remembered) > REMEMBERED_MAX:
            _remembered.popitem(last=False)


class _StrongRef:
    def __init__(self, value: Any) -> None:
        self._value = value

    def __call__(self) -> Any:
        return self._value


def remembered_version(value: Any) -> _Saved | None:
    """Return the version ``remember_saved`` noted for this very object, or None."""
    with _remembered_lock:
        entry = _remembered.get(id(value))
    if entry is None or entry.value_ref() is not value:
        return None  # never saved, or another object that got a freed object's id
    return entry


def forget_saved() -> None:
    """Forget every value noted by ``remember_saved`` in this process."""
    with _remembered_lock:
        _remembered.clear()


# -- the serializer -----------------------------------------------------------------------------


class ArtifactSerializer(Serializer):
    """Persist Prefect results as artifact versions and keep only a reference in Prefect.

    ``dumps`` stores the value in the store (or reuses the version the capture has just written
    for the same object) and returns a small JSON pointer such as
    ``{"mlart_result": 1, "store": "s3://bucket/store", "value": {"artifact": "default/clean:3",
    "sha256": "..."}}``. Prefect keeps that pointer in its result record, and ``loads`` follows
    it and loads the version from the store. A cached task, a retried task and a task that reads
    its upstream result in another process therefore all get the stored artifact, and Prefect
    keeps no second pickled copy of it. The value comes back as ``mlart_prefect.load`` returns
    it, so a plot loads as a ``PlotImage``, not as a matplotlib figure.

    Values without a kind (numbers, strings, None, custom objects) are embedded in the pointer
    with cloudpickle, as Prefect's default serializer would store them, unless
    ``fallback="error"``. A dict, list or tuple whose items are artifacts is stored item by
    item: dict items under ``f"{key}-{dict_key}"``, sequence items under ``f"{key}-{index}"``.

    Every process that reads these results must import ``mlart_prefect.results`` first, because
    that registers the serializer type ``"mlart"`` with Prefect. Defining or unpickling a task
    that uses this serializer imports it.

    Args:
        key: Key of the stored result, formatted with the task's parameters
            (``"scores-{split}"``). Default: the task name, or the flow name for a flow's result,
            with characters a key cannot hold replaced by ``-``.
        project: Project of the key (default: the store's project).
        kind: Force a kind ('dataset', 'plot', 'model'); default: by the value's type.
        labels: Labels of versions saved by the serializer.
        store_url: The store to use (default: ``MLART_STORE_URL``). Storage options always come
            from ``MLART_STORAGE_OPTIONS``, so no credential is written into Prefect's result
            records.
        kind_options: Options of the kind passed to ``save`` (``{"preview": 10}``); they must be
            JSON values because Prefect stores the serializer's fields with each result.
        fallback: What to do with a value no kind stores: ``"pickle"`` (default) embeds it,
            ``"error"`` raises ``UnsupportedValueError``.

    Example:
        ```python
        from prefect import flow, task
        from prefect.cache_policies import INPUTS
        from mlart_prefect.results import ArtifactSerializer

        @task(cache_policy=INPUTS, result_serializer=ArtifactSerializer(key="features"))
        def features(path: str):
            return build_features(path)      # a DataFrame, stored as a dataset version
        ```
    """

    type: Literal["mlart"] = Field(default="mlart", frozen=True)

    key: str | None = None
    project: str | None = None
    kind: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    store_url: str | None = None
    kind_options: dict[str, Any] = Field(default_factory=dict)
    fallback: Literal["pickle", "error"] = "pickle"

    def dumps(self, obj: Any) -> bytes:
        """Store ``obj`` (or find the version holding it) and return a JSON pointer to it.

        Raises:
            UnsupportedValueError: No kind stores the value and ``fallback="error"``.
        """
        store = self._store()
        node = self._encode(obj, self._result_key(), store, top_level=True)
        pointer = {"mlart_result": POINTER_FORMAT, "store": store.url, "value": node}
        return json.dumps(pointer, separators=(",", ":")).encode()

    def loads(self, blob: bytes) -> Any:
        """Load the value a pointer written by ``dumps`` refers to.

        Raises:
            ValueError: The blob is not a pointer written by this serializer.
            NotFoundError: A referenced version is not in the store.
            IntegrityError: A version's primary body differs from the one the pointer recorded.
        """
        try:
            pointer = json.loads(blob)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"Result {blob[:60]!r} is not an mlart result pointer: {exc}") from exc
        if not isinstance(pointer, dict) or pointer.get("mlart_result") != POINTER_FORMAT:
            raise ValueError(
                f"Result {blob[:60]!r} is not an mlart result pointer of format "
                f"{POINTER_FORMAT}; it was written by another serializer or library version."
            )
        return self._decode(pointer["value"], self._store(), pointer.get("store"))

    # -- encoding --------------------------------------------------------------------------

    def _store(self) -> ArtifactStore:
        from mlart_prefect import api

        if self.store_url is None:
            return api.get_store()
        return _store_for_url(self.store_url)

    def _result_key(self) -> str:
        from prefect.context import FlowRunContext, TaskRunContext

        task_ctx = TaskRunContext.get()
        parameters = dict(task_ctx.parameters or {}) if task_ctx is not None else {}
        if self.key is not None:
            try:
                return self.key.format(**parameters)
            except (KeyError, IndexError) as exc:
                raise ValueError(
                    f"Result key template {self.key!r} names a parameter the task does not "
                    f"have ({exc}); the task's parameters are {sorted(parameters)}."
                ) from exc
        if task_ctx is not None:
            return _safe_key(task_ctx.task.name)
        flow_ctx = FlowRunContext.get()
        if flow_ctx is not None and flow_ctx.flow is not None:
            return _safe_key(flow_ctx.flow.name)
        return "result"

    def _encode(self, value: Any, key: str, store: ArtifactStore, *, top_level: bool) -> dict[str, Any]:
        saved = remembered_version(value)
        if saved is not None:
            logger.debug("Result is %s, stored by the capture", saved.manifest.ref)
            node = _artifact_node(saved.manifest)
            if saved.store_url is not None and saved.store_url != store.url:
                # The capture wrote to a store of its own (artifact_task(store=...)).
                node["store"] = saved.store_url
            return node

        if top_level and _is_artifact_container(value):
            return self._encode_container(value, key, store)

        from mlart_prefect.kinds import get_handler, handler_for_value

        try:
            handler = get_handler(self.kind) if self.kind else handler_for_value(value)
        except UnsupportedValueError:
            return self._fallback(value)
        return _artifact_node(self._save(key, value, handler.kind, store))

    def _encode_container(self, value: Any, key: str, store: ArtifactStore) -> dict[str, Any]:
        if isinstance(value, dict):
            items = {name: self._encode(item, f"{key}-{name}", store, top_level=False)
                     for name, item in value.items()}
            return {"dict": items}
        nodes = [self._encode(item, f"{key}-{index}", store, top_level=False)
                 for index, item in enumerate(value)]
        return {"tuple" if isinstance(value, tuple) else "list": nodes}

    def _save(self, key: str, value: Any, kind: str, store: ArtifactStore) -> Manifest:
        from mlart_prefect import api

        manifest = api.save(
            key,
            value,
            kind=kind,
            project=self.project,
            labels=self.labels or None,
            store=store,
            **self.kind_options,
        )
        logger.info("Stored the result as %s", manifest.ref)
        return manifest

    def _fallback(self, value: Any) -> dict[str, Any]:
        if self.fallback == "error":
            raise UnsupportedValueError(
                f"Cannot store a result of type {type(value).__qualname__} as an artifact: no "
                "kind is registered for it. Pass kind='model' to the serializer, register a "
                "kind, or use fallback='pickle' to embed it in Prefect's result record."
            )
        import cloudpickle

        return {"pickle": base64.b64encode(cloudpickle.dumps(value)).decode("ascii")}

    # -- decoding --------------------------------------------------------------------------

    def _decode(self, node: dict[str, Any], store: ArtifactStore, written_to: str | None) -> Any:
        if "artifact" in node:
            if "store" in node:
                return _load_artifact(node, _store_for_url(node["store"]), node["store"])
            return _load_artifact(node, store, written_to)
        if "pickle" in node:
            import cloudpickle

            # NOTE: unpickling runs code chosen by the writer of the result record, exactly as
            # Prefect's default pickle serializer does.
            return cloudpickle.loads(base64.b64decode(node["pickle"]))
        if "dict" in node:
            return {name: self._decode(item, store, written_to) for name, item in node["dict"].items()}
        if "list" in node:
            return [self._decode(item, store, written_to) for item in node["list"]]
        if "tuple" in node:
            return tuple(self._decode(item, store, written_to) for item in node["tuple"])
        raise ValueError(
            f"Unknown node {sorted(node)} in an mlart result pointer; expected 'artifact', "
            "'pickle', 'dict', 'list' or 'tuple'. Upgrade mlart-prefect to read it."
        )


def _artifact_node(manifest: Manifest) -> dict[str, Any]:
    node: dict[str, Any] = {"artifact": manifest.ref, "kind": manifest.kind}
    if manifest.bodies:
        node["sha256"] = manifest.body().sha256
    return node


def _is_artifact_container(value: Any) -> bool:
    """Return True for a dict with string keys, list or tuple holding at least one artifact value."""
    if isinstance(value, dict):
        if not value or not all(isinstance(name, str) for name in value):
            return False
        items = list(value.values())
    elif isinstance(value, (list, tuple)) and value:
        items = list(value)
    else:
        return False
    return any(remembered_version(item) is not None or has_kind(item) for item in items)


def _load_artifact(node: dict[str, Any], store: ArtifactStore, written_to: str | None) -> Any:
    from mlart_prefect import api

    reference = node["artifact"]
    try:
        manifest = store.get(reference)
    except NotFoundError as exc:
        if written_to and written_to != store.url:
            raise NotFoundError(
                f"Result {reference} was stored in {written_to} but is not in {store.url}; "
                "set MLART_STORE_URL (and MLART_STORAGE_OPTIONS) to the store the task wrote to."
            ) from exc
        raise

    expected = node.get("sha256")
    if expected is not None and manifest.bodies and manifest.body().sha256 != expected:
        raise IntegrityError(
            f"Result {reference} in {store.url} has primary body sha256 "
            f"{manifest.body().sha256}, but the result was written with {expected}; the store "
            "holds a different artifact under this reference."
        )
    return api.load(manifest, store=store)


_stores: dict[str, ArtifactStore] = {}
_stores_lock = threading.Lock()


def _store_for_url(url: str) -> ArtifactStore:
    """Return a store for ``url``, with storage options from ``MLART_STORAGE_OPTIONS``."""
    from mlart_prefect.store import ArtifactStore

    with _stores_lock:
        if url not in _stores:
            _stores[url] = ArtifactStore(url)
        return _stores[url]


def _safe_key(name: str) -> str:
    return _KEY_UNSAFE.sub("-", name).strip("-.")[:200] or "result"


# -- task options -------------------------------------------------------------------------------


def keep_reference_only(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> None:
    """Drop the in-memory value from a completed state whose result the store holds.

    Use it as an ``on_completion`` hook. The state then carries only Prefect's result metadata,
    which points at the small result record. A downstream task in another process, such as a
    Dask worker, therefore loads the value from the store instead of receiving a pickled copy
    through the task runner. States whose result was not persisted with ``ArtifactSerializer`` are left
    unchanged.
    """
    from prefect.results import ResultRecord

    data = state.data
    if (
        isinstance(data, ResultRecord)
        and data.is_persisted
        and isinstance(data.metadata.serializer, ArtifactSerializer)
    ):
        state.data = data.metadata


def artifact_result_options(
    *,
    key: str | None = None,
    project: str | None = None,
    kind: str | None = None,
    labels: dict[str, str] | None = None,
    store_url: str | None = None,
    pass_by_reference: bool = False,
    **kind_options: Any,
) -> dict[str, Any]:
    """Return task options that persist the task's result through the store.

    Pass them to ``@task`` or ``@artifact_task`` (``@task(cache_policy=INPUTS,
    **artifact_result_options())``). They set ``persist_result=True``, an
    ``ArtifactSerializer`` with the given arguments, and ``cache_result_in_memory=False`` so
    Prefect does not keep a second in-memory copy of large values.

    Args:
        key, project, kind, labels, store_url, **kind_options: Passed to ``ArtifactSerializer``.
            With ``artifact_task`` leave ``key`` unset: the serializer reuses the version the
            capture wrote, whatever its key.
        pass_by_reference: Also add the ``keep_reference_only`` completion hook, so downstream
            tasks load the value from the store instead of receiving it in memory (default
            False). Useful with a Dask task runner; with threads it only adds a load.
            If you pass your own ``on_completion`` hooks, add ``keep_reference_only`` to them.
    """
    serializer = ArtifactSerializer(
        key=key,
        project=project,
        kind=kind,
        labels=dict(labels or {}),
        store_url=store_url,
        kind_options=kind_options,
    )
    options: dict[str, Any] = {
        "persist_result": True,
        "result_serializer": serializer,
        "cache_result_in_memory": False,
    }
    if pass_by_reference:
        options["on_completion"] = [keep_reference_only]
    return options
