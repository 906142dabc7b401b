"""The ``artifact_task`` decorator: a Prefect task whose return value is stored as artifacts."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from mlart_prefect import api, lineage
from mlart_prefect.errors import InvalidNameError, UnsupportedValueError
from mlart_prefect.kinds import accepted_options, get_handler, handler_for_value, has_kind
from mlart_prefect.manifest import Manifest, validate_name
from mlart_prefect.run_context import RunContext, get_run_context
from mlart_prefect.wrappers import ArtifactValue, Dataset, Model, Plot, PlotArtifact

if TYPE_CHECKING:
    from prefect import Task

    from mlart_prefect.store import ArtifactStore

__all__ = [
    "Dataset",
    "Model",
    "Plot",
    "PlotArtifact",
    "RunContext",
    "artifact_task",
    "capture_return_value",
    "get_run_context",
]

logger = logging.getLogger(__name__)

CAPTURE_OPTIONS = frozenset({"key", "project", "labels", "description", "kind", "tag", "publish", "store"})
"""Options of ``artifact_task`` that control capture; ``description`` also goes to Prefect."""


@dataclass(frozen=True)
class CaptureSpec:
    """Capture options of a decorated task, built once at decoration."""

    task_name: str
    key: str
    project: str | None = None
    labels: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    kind: str | None = None
    tag: str | None = None
    publish: bool | None = None
    store: ArtifactStore | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Capture:
    """One artifact to save from a return value."""

    key: str
    value: Any
    kind: str
    labels: dict[str, Any]
    options: dict[str, Any]
    project: str | None = None
    description: str | None = None
    tag: str | None = None
    publish: bool | None = None


def artifact_task(__fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Turn a function into a Prefect task whose return value is stored as versioned artifacts.

    Use it like ``@task``, with or without parentheses. Every ``prefect.task`` option is passed
    through (``retries``, ``cache_policy``, ``tags``...). The capture options are:

    Args:
        key: Artifact key (default: the task name). It may be a template formatted with the
            task's bound parameters, e.g. ``"scores-{split}"``.
        project: Project of the key (default: the store's project).
        labels: Labels of every version saved (default: none).
        description: Description of every version, also given to Prefect as the task's
            description (default: none).
        kind: Force the kind of every plain value captured (default: each value's kind follows
            its type).
        tag: A tag moved onto each saved version, e.g. ``"candidate"`` (default: none).
        publish: Publish Prefect artifacts (markdown card, preview table) for each version
            (default: the ``MLART_PUBLISH`` setting, true unless set).
        store: The ``ArtifactStore`` to save into (default: the one from ``MLART_*`` settings).
        **options: Any other option is a kind option (``preview=``, ``stats=``, ``format=``,
            ``formats=``, ``serializer=``, ``model_file=``, ``metrics=``, ``parameters=``,
            ``extra_data=``, ``close=``...). Each value gets the options its kind accepts;
            an option no captured value accepts is ignored with a warning.

    What is captured:

    - a plain value is stored under the key as the kind its type maps to (DataFrame: dataset,
      Figure: plot, scikit-learn estimator: model); a value of no registered kind fails the
      task with ``UnsupportedValueError`` unless ``kind=`` is given;
    - a wrapper (``Dataset``, ``Plot``, ``Model``) is stored with its own key and options;
    - a dict or tuple stores each element under ``f"{key}-{dict_key}"`` or
      ``f"{key}-{position}"`` (a named tuple's field names), unless a wrapper names its key.
      Elements of no registered kind are skipped with a warning;
    - None stores nothing.

    The caller receives the return value with wrappers replaced by their plain values. The
    capture runs inside the task run, so each version's producer names the task run, and its
    inputs list the versions saved by upstream captured tasks and those loaded in the task. A
    retried attempt that returns the same value finds the existing version instead of adding
    one. A cached task run does not call the function, so it saves nothing.

    Raises:
        InvalidNameError: The key (without template fields) is not a valid key.
        UnsupportedValueError: The decorated object is a Prefect task or a generator function.

    Example:
        ```python
        from prefect import flow
        from mlart_prefect import artifact_task

        @artifact_task(key="clean-data", labels={"stage": "clean"}, retries=2)
        def clean(df):
            return df.dropna()

        @flow
        def pipeline(df):
            return clean(df)
        ```
    """
    if __fn is None:
        return functools.partial(_build_task, options=options)
    return _build_task(__fn, options=options)


@functools.cache
def _prefect_task_options() -> frozenset[str]:
    from prefect import Task

    names = set(inspect.signature(Task.__init__).parameters) - {"self", "fn"}
    return frozenset(names)


def _build_task(fn: Callable[..., Any], *, options: dict[str, Any]) -> Task[Any, Any]:
    from prefect import Task, task

    if isinstance(fn, Task):
        raise UnsupportedValueError(
            f"artifact_task received the Prefect task {fn.name!r}; decorate the plain function "
            "with artifact_task alone and pass task options to it, e.g. "
            "@artifact_task(retries=2)."
        )
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise UnsupportedValueError(
            f"Cannot capture generator function {fn.__qualname__!r}: artifact_task stores a "
            "return value. Return the collected values instead, or save each one with "
            "get_run_context().log_artifact()."
        )

    task_options = {name: value for name, value in options.items() if name in _prefect_task_options()}
    spec = _capture_spec(fn, options, task_options)
    signature = inspect.signature(fn)

    if inspect.iscoroutinefunction(fn):
        wrapper = _async_wrapper(fn, spec, signature)
    else:
        wrapper = _sync_wrapper(fn, spec, signature)
    # Prefect derives the task key and cache keys from this attribute when it is the wrapped
    # function, so they follow the user's function, not this wrapper.
    wrapper.__prefect_task_source__ = fn  # type: ignore[attr-defined]
    return task(wrapper, **task_options)


def _capture_spec(fn: Callable[..., Any], options: dict[str, Any], task_options: dict[str, Any]) -> CaptureSpec:
    task_name = task_options.get("name") or fn.__name__
    key = options.get("key") or task_name
    if "{" not in key:
        try:
            validate_name(key, "key")
        except InvalidNameError as exc:
            raise InvalidNameError(
                f"{exc} It comes from task {task_name!r}; pass a valid key=, e.g. "
                f"@artifact_task(key='my-data')."
            ) from None
    kind_options = {
        name: value
        for name, value in options.items()
        if name not in CAPTURE_OPTIONS and name not in _prefect_task_options()
    }
    return CaptureSpec(
        task_name=task_name,
        key=key,
        project=options.get("project"),
        labels=dict(options.get("labels") or {}),
        description=options.get("description"),
        kind=options.get("kind"),
        tag=options.get("tag"),
        publish=options.get("publish"),
        store=options.get("store"),
        options=kind_options,
    )


def _sync_wrapper(fn: Callable[..., Any], spec: CaptureSpec, signature: inspect.Signature) -> Callable[..., Any]:
    @functools.wraps(fn)
    def capture_wrapper(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        return capture_return_value(result, spec, parameters=_bind(signature, args, kwargs))

    return capture_wrapper


def _async_wrapper(fn: Callable[..., Any], spec: CaptureSpec, signature: inspect.Signature) -> Callable[..., Any]:
    from mlart_prefect import summaries

    @functools.wraps(fn)
    async def capture_wrapper(*args: Any, **kwargs: Any) -> Any:
        result = await fn(*args, **kwargs)
        # The store is synchronous, so saving blocks the event loop like any file write;
        # Prefect artifacts are sent afterwards with the asynchronous client.
        pending: list[Any] = []
        try:
            with summaries.deferred_publishing() as pending:
                plain = capture_return_value(result, spec, parameters=_bind(signature, args, kwargs))
        finally:
            # Versions saved before a failing capture are published too.
            await summaries.apublish_pending(pending)
        return plain

    return capture_wrapper


def _bind(signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return dict(kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


# -- capturing a return value ------------------------------------------------------------------


def capture_return_value(result: Any, spec: CaptureSpec, *, parameters: dict[str, Any] | None = None) -> Any:
    """Save ``result`` as ``spec`` describes and return it with wrappers replaced by plain values.

    Args:
        result: What the task's function returned.
        spec: The capture options of the task.
        parameters: The task's bound parameters, used to format a key template.

    Returns:
        The value the task's caller receives.

    Raises:
        UnsupportedValueError: A plain return value has no registered kind, or an option of a
            wrapper is not an option of its kind.
        InvalidNameError: A key, label or project is invalid, or the key template names an
            unknown parameter.
    """
    captures = _plan_captures(result, spec, parameters=parameters or {})
    for capture in captures:
        _save(capture, spec)
    return unwrap(result)


def _plan_captures(result: Any, spec: CaptureSpec, *, parameters: dict[str, Any]) -> list[_Capture]:
    """Return the artifacts to save from ``result``, without saving them."""
    base_key = format_key(spec, parameters)
    if result is None:
        logger.debug("Task %r returned None; nothing to capture.", spec.task_name)
        return []

    if isinstance(result, ArtifactValue):
        captures = [_from_wrapper(result, spec, result.key or base_key)]
    elif (entries := _container_entries(result)) is not None:
        captures = _plan_container(result, entries, spec, base_key)
    else:
        captures = [_from_plain(result, spec, base_key)]
    _warn_unused_options(spec, captures)
    return captures


def _plan_container(result: Any, entries: list[tuple[str, Any]], spec: CaptureSpec, base_key: str) -> list[_Capture]:
    captures: list[_Capture] = []
    skipped: list[str] = []
    for suffix, value in entries:
        key = f"{base_key}-{suffix}"
        if isinstance(value, ArtifactValue):
            captures.append(_from_wrapper(value, spec, value.key or key))
        elif value is not None and (spec.kind is not None or has_kind(value)):
            captures.append(_from_plain(value, spec, key))
        else:
            skipped.append(suffix)
    if skipped:
        logger.warning(
            "Task %r: not capturing %s of its %s return value: no kind stores them. Wrap them "
            "in Dataset/Plot/Model or pass kind= to capture them.",
            spec.task_name, ", ".join(repr(name) for name in skipped), type(result).__name__,
        )
    return captures


def format_key(spec: CaptureSpec, parameters: dict[str, Any]) -> str:
    """Return the task's key with template fields filled from its bound parameters.

    Raises:
        InvalidNameError: The template names a field that is not a parameter.
    """
    if "{" not in spec.key:
        return spec.key
    try:
        return spec.key.format(**parameters)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        names = ", ".join(sorted(parameters)) or "none"
        raise InvalidNameError(
            f"Invalid key template {spec.key!r} of task {spec.task_name!r}: {exc!r} cannot be "
            f"filled; the template may name the task's parameters ({names})."
        ) from exc


def _container_entries(result: Any) -> list[tuple[str, Any]] | None:
    """Return (suffix, value) pairs of a dict or tuple return value, else None."""
    if isinstance(result, dict):
        return [(str(name), value) for name, value in result.items()]
    if isinstance(result, tuple):
        fields = getattr(result, "_fields", None)
        names = list(fields) if fields else [str(index) for index in range(len(result))]
        return list(zip(names, result))
    return None


def _from_wrapper(wrapper: ArtifactValue, spec: CaptureSpec, key: str) -> _Capture:
    kind = wrapper.kind or spec.kind
    if kind is None:
        kind = handler_for_value(wrapper.value).kind
    accepted = accepted_options(kind)
    unknown = [name for name in wrapper.options if accepted is not None and name not in accepted]
    if unknown:
        raise UnsupportedValueError(
            f"Invalid option(s) {', '.join(map(repr, unknown))} for {type(wrapper).__name__} "
            f"{key!r}: {kind} artifacts accept {', '.join(sorted(accepted or ())) or 'no options'}."
        )
    options = {**_options_for(kind, spec.options), **wrapper.options}
    return _Capture(
        key=key,
        value=wrapper.value,
        kind=kind,
        labels={**spec.labels, **wrapper.labels},
        options=options,
        project=wrapper.project or spec.project,
        description=wrapper.description if wrapper.description is not None else spec.description,
        tag=wrapper.tag or spec.tag,
        publish=wrapper.publish if wrapper.publish is not None else spec.publish,
    )


def _from_plain(value: Any, spec: CaptureSpec, key: str) -> _Capture:
    if spec.kind is not None:
        kind = get_handler(spec.kind).kind
    else:
        try:
            kind = handler_for_value(value).kind
        except UnsupportedValueError:
            raise UnsupportedValueError(
                f"Task {spec.task_name!r} returned a {type(value).__module__}."
                f"{type(value).__qualname__}, which no kind stores. Return a DataFrame, figure "
                "or model, wrap the value (Model(value)), or pass kind='model' to "
                "artifact_task to store it as a serialized object."
            ) from None
    return _Capture(
        key=key,
        value=value,
        kind=kind,
        labels=dict(spec.labels),
        options=_options_for(kind, spec.options),
        project=spec.project,
        description=spec.description,
        tag=spec.tag,
        publish=spec.publish,
    )


def _options_for(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    accepted = accepted_options(kind)
    if accepted is None:
        return dict(options)
    return {name: value for name, value in options.items() if name in accepted}


def _warn_unused_options(spec: CaptureSpec, captures: list[_Capture]) -> None:
    used = {name for capture in captures for name in capture.options}
    unused = [name for name in spec.options if name not in used]
    if unused and captures:
        kinds = sorted({capture.kind for capture in captures})
        accepted = "; ".join(
            f"{kind}: {', '.join(sorted(accepted_options(kind) or ())) or 'none'}" for kind in kinds
        )
        logger.warning(
            "Task %r: option(s) %s apply to none of its captured kinds (%s) and are ignored. "
            "Options by kind: %s.",
            spec.task_name, ", ".join(map(repr, unused)), ", ".join(kinds), accepted,
        )


def _save(capture: _Capture, spec: CaptureSpec) -> Manifest:
    started = datetime.now(timezone.utc)
    manifest = api.save(
        capture.key,
        capture.value,
        kind=capture.kind,
        project=capture.project,
        labels=capture.labels or None,
        description=capture.description,
        store=spec.store,
        publish=capture.publish,
        **capture.options,
    )
    if capture.tag:
        manifest_store = spec.store or api.get_store()
        manifest_store.tag(manifest.ref, capture.tag)
    if manifest.created < started:
        # The store returned the key's latest version, whose content is the same.
        lineage.run_logger().info(
            "Reused %s (%s) for task %r: the value is unchanged since that version",
            manifest.ref, manifest.kind, spec.task_name,
        )
    else:
        lineage.run_logger().info(
            "Captured %s (%s) from task %r", manifest.ref, manifest.kind, spec.task_name
        )

    # A result serializer of this task then points at this version instead of saving it again.
    from mlart_prefect import results

    results.remember_saved(capture.value, manifest, store=spec.store)
    return manifest


def unwrap(result: Any) -> Any:
    """Return ``result`` with wrapper values (also inside a dict or tuple) replaced by plain ones.

    A return value without wrappers is returned as the same object, so Prefect keeps tracking it
    as this task's result.
    """
    if isinstance(result, ArtifactValue):
        return result.plain_value
    if isinstance(result, dict) and any(isinstance(v, ArtifactValue) for v in result.values()):
        items = {name: unwrap_one(value) for name, value in result.items()}
        return items if type(result) is dict else _rebuild(result, items)
    if isinstance(result, tuple) and any(isinstance(v, ArtifactValue) for v in result):
        values = [unwrap_one(value) for value in result]
        if hasattr(result, "_fields"):
            return type(result)(*values)
        return tuple(values) if type(result) is tuple else _rebuild(result, values)
    return result


def unwrap_one(value: Any) -> Any:
    """Return a wrapper's plain value, or ``value`` itself."""
    return value.plain_value if isinstance(value, ArtifactValue) else value


def _rebuild(original: Any, items: Any) -> Any:
    try:
        return type(original)(items)
    except TypeError:
        return items
