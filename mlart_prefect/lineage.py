"""Producer, inputs and run-scoped references of versions, taken from the Prefect run context."""

from __future__ import annotations

import logging
import socket
import sys
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from mlart_prefect.errors import NotFoundError
from mlart_prefect.manifest import Manifest, Producer, Reference, login_name

if TYPE_CHECKING:
    from mlart_prefect.store import ArtifactStore

logger = logging.getLogger(__name__)

MAX_TRACKED_RUNS = 10_000
"""Maximum number of entries (task runs, flow-run keys, scans) kept by each process-local index."""

PARAMETER_TEXT_LENGTH = 120
"""Maximum length of a text parameter in a producer; longer text is cut and marked."""

PARAMETER_ITEMS = 20
"""Maximum number of items kept from a list or dict parameter."""

# Task-run inputs that carry no data: the parent task of a nested task, and wait_for ordering.
_NON_DATA_INPUTS = frozenset({"__parents__", "wait_for"})


class _BoundedIndex:
    """A thread-safe mapping that drops its oldest entries beyond ``MAX_TRACKED_RUNS``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, list[str]] = OrderedDict()

    def add(self, name: Hashable, ref: str, *, replace: bool = False) -> None:
        with self._lock:
            refs = [] if replace else self._items.pop(name, [])
            if ref not in refs:
                refs.append(ref)
            self._items[name] = refs
            while len(self._items) > MAX_TRACKED_RUNS:
                self._items.popitem(last=False)

    def discard(self, name: Hashable, refs: Iterable[str]) -> None:
        with self._lock:
            if name in self._items:
                unwanted = set(refs)
                self._items[name] = [ref for ref in self._items[name] if ref not in unwanted]

    def get(self, name: Hashable) -> list[str] | None:
        with self._lock:
            refs = self._items.get(name)
            return list(refs) if refs is not None else None

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


# Versions read by each task run (or flow body), listed as inputs of what that run saves.
_consumed = _BoundedIndex()
# Versions saved (or found unchanged) by each (store URL, task run id) of this process.
_produced_by_task_run = _BoundedIndex()
# The latest version of each (store URL, flow run id, project, key) saved by this process.
_produced_in_flow_run = _BoundedIndex()


# Store scans made to find upstream versions saved by other processes:
# (store URL, project, flow run id) -> (time the scan started, task run id -> references).
_scans_lock = threading.Lock()
_scans: OrderedDict[tuple[str, str, str | None], tuple[datetime, dict[str, list[str]]]] = OrderedDict()


def _default_store() -> ArtifactStore:
    from mlart_prefect import api  # imported here: api imports this module

    return api.get_store()


def clear_indexes() -> None:
    """Forget every version this process recorded as read or saved, as a new process would."""
    for index in (_consumed, _produced_by_task_run, _produced_in_flow_run):
        index.clear()
    with _scans_lock:
        _scans.clear()


# -- the Prefect run context -------------------------------------------------------------------


def _task_run_context() -> Any:
    from prefect.context import TaskRunContext

    return TaskRunContext.get()


def _flow_run_context() -> Any:
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return context if context is not None and context.flow_run is not None else None


def current_run_ids() -> tuple[str | None, str | None]:
    """Return the ids of the current task run and flow run; None where there is none."""
    task_ctx = _task_run_context()
    flow_ctx = _flow_run_context()
    task_run_id = str(task_ctx.task_run.id) if task_ctx is not None else None
    flow_run_id = None
    if task_ctx is not None and task_ctx.task_run.flow_run_id is not None:
        flow_run_id = str(task_ctx.task_run.flow_run_id)
    elif flow_ctx is not None:
        flow_run_id = str(flow_ctx.flow_run.id)
    return task_run_id, flow_run_id


def run_logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """Return Prefect's run logger inside a run, else this module's logger."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return logger


def _run_key() -> str | None:
    """Return the scope that collects loaded versions: the task run, else the flow run."""
    task_run_id, flow_run_id = current_run_ids()
    if task_run_id is not None:
        return f"task:{task_run_id}"
    if flow_run_id is not None:
        return f"flow:{flow_run_id}"
    return None


# -- consumed and produced versions ------------------------------------------------------------


def record_consumed(manifest: Manifest) -> None:
    """Remember that the current task run (or flow body) read ``manifest``.

    Later saves in the same run list it as an input. Outside a Prefect run nothing is recorded;
    pass ``inputs=`` to ``save`` there, or use a run context, which keeps its own list.
    """
    scope = _run_key()
    if scope is not None:
        _consumed.add(scope, manifest.ref)


def consumed_inputs(*, store: ArtifactStore | None = None, project: str | None = None) -> list[str]:
    """Return the references the current run consumed, in the order found.

    Inside a task run these are the versions it loaded, followed by the versions saved by the
    upstream task runs whose results were passed to it as arguments (Prefect records them in
    ``task_run.task_inputs``). In a flow body they are the versions loaded there.

    Args:
        store: Store of the upstream versions (default: the default store).
        project: Project searched with ``store`` (default: the store's project).
    """
    scope = _run_key()
    if scope is None:
        return []
    refs = _consumed.get(scope) or []
    for ref in upstream_versions(store=store, project=project):
        if ref not in refs:
            refs.append(ref)
    return refs


def upstream_task_run_ids() -> list[str]:
    """Return the ids of the task runs whose results the current task run received."""
    return list(_upstream_arguments())


def _upstream_arguments() -> dict[str, list[Any]]:
    """Return each upstream task run's id with the argument values that came from it.

    Prefect records these per parameter in ``task_run.task_inputs``; the order is as found.
    """
    task_ctx = _task_run_context()
    if task_ctx is None:
        return {}
    parameters = task_ctx.parameters or {}
    arguments: dict[str, list[Any]] = {}
    for name, inputs in (task_ctx.task_run.task_inputs or {}).items():
        if name in _NON_DATA_INPUTS:
            continue
        for item in inputs:
            if getattr(item, "input_type", None) == "task_run":
                values = arguments.setdefault(str(item.id), [])
                if name in parameters:
                    values.append(parameters[name])
    return arguments


def _passed_versions(values: list[Any], produced: list[str], store_url: str) -> list[str] | None:
    """Return the versions among ``produced`` that are the argument ``values`` themselves.

    The capture remembers each saved value by identity, so an argument that is the very object
    an upstream task saved names its version. An argument that is a dict, list or tuple is
    matched by its items. Returns None when some argument matches none of ``produced`` (it was
    derived or is not a saved value), and the caller then takes every version of that task run.
    """
    from mlart_prefect import results  # imported here: results imports Prefect, which is slow

    matched: list[str] = []
    for value in values:
        items = list(value.values()) if isinstance(value, dict) else (
            list(value) if isinstance(value, (list, tuple)) else [value]
        )
        refs = [
            entry.manifest.ref for entry in map(results.remembered_version, items)
            if entry is not None and entry.store_url in (None, store_url)
            and entry.manifest.ref in produced
        ]
        if not refs:
            return None
        matched.extend(ref for ref in refs if ref not in matched)
    return matched or None


def upstream_versions(*, store: ArtifactStore | None = None, project: str | None = None) -> list[str]:
    """Return the versions saved by the upstream task runs of the current task run.

    Task runs of this process are found in a process-local index. When the flow run's task
    runner may run tasks in other processes (anything but ``ThreadPoolTaskRunner``), the
    remaining upstream task runs are looked up in ``store`` among the versions created since
    the flow run started.

    Args:
        store: The store the versions are in (default: the default store).
        project: Project searched in ``store`` (default: the store's project).
    """
    store = store or _default_store()
    refs: list[str] = []
    missing: list[str] = []
    for task_run_id, values in _upstream_arguments().items():
        found = _produced_by_task_run.get((store.url, task_run_id))
        if found is None:
            missing.append(task_run_id)
            continue
        # Only the versions of the values passed, when they are known: a task that saved a
        # train and a test set passes on only the test set to a task that receives it.
        for ref in _passed_versions(values, found, store.url) or found:
            if ref not in refs:
                refs.append(ref)
    if missing and not _tasks_run_in_this_process():
        refs.extend(ref for ref in _search_produced(store, project, missing) if ref not in refs)
    return refs


def _tasks_run_in_this_process() -> bool:
    from prefect.task_runners import ThreadPoolTaskRunner

    flow_ctx = _flow_run_context()
    return flow_ctx is not None and isinstance(flow_ctx.task_runner, ThreadPoolTaskRunner)


def _search_produced(store: ArtifactStore, project: str | None, task_run_ids: list[str]) -> list[str]:
    """Return the versions in ``store`` whose producer is one of ``task_run_ids``."""
    project = project or store.project
    flow_ctx = _flow_run_context()
    task_ctx = _task_run_context()
    started = None
    if task_ctx is not None:
        started = task_ctx.task_run.start_time or task_ctx.task_run.expected_start_time
    name = (store.url, project, str(flow_ctx.flow_run.id) if flow_ctx is not None else None)

    with _scans_lock:
        cached = _scans.get(name)
    # A scan made after this task run started saw every upstream version, because upstream task
    # runs finish before their results are passed on. An older scan may have missed some.
    if cached is None or started is None or cached[0] < started:
        cached = _scan_produced(store, project, flow_ctx)
        with _scans_lock:
            _scans[name] = cached
            while len(_scans) > MAX_TRACKED_RUNS:
                _scans.popitem(last=False)

    refs = [ref for task_run_id in task_run_ids for ref in cached[1].get(task_run_id, [])]
    logger.debug("Found %d upstream versions of task runs %s in %s", len(refs), task_run_ids, store)
    return refs


def _scan_produced(store: ArtifactStore, project: str, flow_ctx: Any) -> tuple[datetime, dict[str, list[str]]]:
    # NOTE: store.search reads every manifest of the project before filtering by time, so one
    # scan costs one read per version. Later task runs of the flow run reuse the scan.
    scanned_at = datetime.now(timezone.utc)
    since = _flow_run_start(flow_ctx.flow_run) if flow_ctx is not None else None
    produced: dict[str, list[str]] = {}
    parts: dict[str, set[str]] = {}
    for manifest in reversed(store.search(project=project, all_versions=True, since=since)):
        task_run_id = manifest.producer.task_run_id
        if task_run_id is not None:
            produced.setdefault(task_run_id, []).append(manifest.ref)
            parts.setdefault(task_run_id, set()).update(parts_of(manifest))
    for task_run_id, refs in produced.items():
        refs[:] = [ref for ref in refs if ref not in parts[task_run_id]]
    return scanned_at, produced


def parts_of(manifest: Manifest) -> list[str]:
    """Return the versions saved as parts of ``manifest``.

    These are a model's extra data saved as versions of their own. They are not among the
    outputs its task passes on: a task that receives the model lists the model as its input,
    not these parts.
    """
    extra = manifest.spec.get("extra_data") if manifest.kind == "model" else None
    if not isinstance(extra, dict):
        return []
    return [
        entry["ref"] for entry in extra.values()
        if isinstance(entry, dict) and entry.get("type") == "artifact" and "ref" in entry
    ]


def record_produced(
    manifest: Manifest,
    *,
    store: ArtifactStore | None = None,
    publish: bool | None = None,
) -> None:
    """Index a version saved by the current run and publish its Prefect summaries.

    The version is indexed under the current task run and flow run, which differ from the
    manifest's producer when the store returned an unchanged earlier version.

    Args:
        manifest: The saved (or unchanged) version.
        store: The store it is in; summaries read a plot's PNG from it (default: the default
            store).
        publish: Publish Prefect artifacts for it (default: the ``MLART_PUBLISH`` setting).
    """
    store = store or _default_store()
    task_run_id, flow_run_id = current_run_ids()
    task_run_id = task_run_id or manifest.producer.task_run_id
    flow_run_id = flow_run_id or manifest.producer.flow_run_id
    if task_run_id is not None:
        _produced_by_task_run.add((store.url, task_run_id), manifest.ref)
        _produced_by_task_run.discard((store.url, task_run_id), parts_of(manifest))
    if flow_run_id is not None:
        run_key = (store.url, flow_run_id, manifest.project, manifest.key)
        _produced_in_flow_run.add(run_key, manifest.ref, replace=True)

    from mlart_prefect import summaries

    summaries.publish_saved(manifest, store=store, enabled=publish)


# -- run-scoped references ---------------------------------------------------------------------


def resolve(reference: str | Reference | Manifest, store: ArtifactStore) -> Manifest:
    """Return the manifest ``reference`` names, preferring versions of the current flow run.

    A reference with a version or tag resolves as usual. Inside a flow run that saved the key, a
    reference to "the latest version" resolves to the version this flow run saved, even when
    another run has saved a newer one since. Elsewhere it resolves to the latest version.

    Raises:
        NotFoundError: The reference does not resolve.
        InvalidReferenceError, InvalidNameError: The reference is malformed.
    """
    if isinstance(reference, Manifest):
        return reference
    parsed = Reference.parse(reference, project=store.project)
    if parsed.version is not None or parsed.tag is not None:
        return store.get(parsed)

    flow_ctx = _flow_run_context()
    if flow_ctx is None:
        return store.get(parsed)
    _, flow_run_id = current_run_ids()
    indexed = _produced_in_flow_run.get((store.url, flow_run_id, parsed.project, parsed.key))
    if indexed:
        return store.get(indexed[-1])
    return _latest_of_flow_run(store, parsed, str(flow_run_id), _flow_run_start(flow_ctx.flow_run))


def _latest_of_flow_run(
    store: ArtifactStore, reference: Reference, flow_run_id: str, since: datetime | None
) -> Manifest:
    """Return the newest version of the key saved by ``flow_run_id``, else the latest version.

    Versions are read newest first and the walk stops at the first one created before the flow
    run started, so a key untouched by the run costs one read.
    """
    latest = store.get(reference)
    candidate = latest
    while True:
        if candidate.producer.flow_run_id == flow_run_id:
            return candidate
        if since is None or candidate.created < since or candidate.version <= 1:
            return latest
        candidate = _previous_version(store, reference, candidate.version)
        if candidate is None:
            return latest


def _previous_version(store: ArtifactStore, reference: Reference, version: int) -> Manifest | None:
    for number in range(version - 1, 0, -1):
        try:
            return store.get(Reference(project=reference.project, key=reference.key, version=number))
        except NotFoundError:
            continue
    return None


def _flow_run_start(flow_run: Any) -> datetime | None:
    return flow_run.start_time or flow_run.expected_start_time


# -- the producer ------------------------------------------------------------------------------


def summarize_parameter(value: Any) -> Any:
    """Return a small strict-JSON form of a run parameter for ``Producer.parameters``.

    Arrays, data frames, series, tensors and other values with a ``shape`` become
    ``"<DataFrame shape=(100, 3)>"``. Text is cut at ``PARAMETER_TEXT_LENGTH`` characters and
    containers at ``PARAMETER_ITEMS`` items. Other values follow ``jsonsafe.to_json_value``.
    """
    from mlart_prefect.jsonsafe import to_json_value

    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and shape:
        dims = ", ".join(str(dim) for dim in shape)
        if len(shape) == 1:
            dims += ","
        return f"<{type(value).__qualname__} shape=({dims})>"
    if isinstance(value, dict):
        items = list(value.items())[:PARAMETER_ITEMS]
        summary = {str(k): summarize_parameter(v) for k, v in items}
        if len(value) > PARAMETER_ITEMS:
            summary["…"] = f"+{len(value) - PARAMETER_ITEMS} keys"
        return summary
    if isinstance(value, (list, tuple)):
        summary_items = [summarize_parameter(item) for item in value[:PARAMETER_ITEMS]]
        if len(value) > PARAMETER_ITEMS:
            summary_items.append(f"… (+{len(value) - PARAMETER_ITEMS} items)")
        return summary_items
    converted = to_json_value(
        value, max_string_length=PARAMETER_TEXT_LENGTH, max_items=PARAMETER_ITEMS
    )
    if isinstance(value, str) or not isinstance(converted, str):
        return converted
    # An object became its text. One line reads better than the layout of a multi-line text
    # such as a scikit-learn pipeline's, so the spaces are collapsed before the text is cut.
    whole = str(to_json_value(value, max_string_length=sys.maxsize))
    return to_json_value(" ".join(whole.split()), max_string_length=PARAMETER_TEXT_LENGTH)


def summarize_parameters(parameters: dict[str, Any] | None) -> dict[str, Any]:
    """Apply ``summarize_parameter`` to each value of a parameter mapping."""
    return {str(name): summarize_parameter(value) for name, value in (parameters or {}).items()}


def current_producer() -> Producer:
    """Describe the current Prefect task run and flow run, or a producer outside any run."""
    fields: dict[str, Any] = {"owner": login_name(), "host": socket.gethostname()}
    flow_ctx = _flow_run_context()
    if flow_ctx is not None:
        fields.update(_flow_run_fields(flow_ctx))
    task_ctx = _task_run_context()
    if task_ctx is not None:
        fields.update(_task_run_fields(task_ctx, fields))
    return Producer(**fields)


def _flow_run_fields(flow_ctx: Any) -> dict[str, Any]:
    flow_run = flow_ctx.flow_run
    return {
        "in_prefect_run": True,
        "flow_name": flow_ctx.flow.name if flow_ctx.flow else None,
        "flow_run_id": str(flow_run.id),
        "flow_run_name": flow_run.name,
        "flow_version": flow_run.flow_version,
        "deployment_id": str(flow_run.deployment_id) if flow_run.deployment_id else None,
        "parameters": summarize_parameters(flow_run.parameters),
        "tags": list(flow_run.tags or []),
        "attempt": flow_run.run_count,
        "start_time": _flow_run_start(flow_run),
    }


def _task_run_fields(task_ctx: Any, flow_fields: dict[str, Any]) -> dict[str, Any]:
    task_run = task_ctx.task_run
    flow_run_id = str(task_run.flow_run_id) if task_run.flow_run_id else flow_fields.get("flow_run_id")
    tags: Iterable[str] = {*flow_fields.get("tags", []), *(task_run.tags or [])}
    return {
        "in_prefect_run": True,
        "task_name": task_ctx.task.name,
        "task_run_id": str(task_run.id),
        "task_run_name": task_run.name,
        "flow_run_id": flow_run_id,
        "parameters": summarize_parameters(task_ctx.parameters),
        "tags": sorted(tags),
        "attempt": task_run.run_count,
        "start_time": task_run.start_time or task_run.expected_start_time,
    }
