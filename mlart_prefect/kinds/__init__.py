"""The registry that maps a Python type to the kind that stores it."""

from __future__ import annotations

import functools
import importlib
import inspect
import threading
from typing import Any

from mlart_prefect.errors import UnsupportedValueError
from mlart_prefect.kinds.base import (
    BodyPayload,
    BodyReader,
    EncodeContext,
    Encoded,
    KindHandler,
)

__all__ = [
    "accepted_options",
    "BodyPayload",
    "BodyReader",
    "EncodeContext",
    "Encoded",
    "KindHandler",
    "get_handler",
    "handler_for_value",
    "has_kind",
    "register_kind",
]

_HANDLERS: dict[str, KindHandler] = {}
_TYPES: list[tuple[type | str, str]] = []
_BUILTINS_LOADED = False
_LOADING = threading.RLock()

# Built-in kinds register by dotted type name, so pandas, pyarrow and matplotlib are imported only
# when a value of theirs is saved. This keeps `import mlart_prefect` and the CLI fast.
_BUILTIN_MODULES = ("mlart_prefect.kinds.dataset", "mlart_prefect.kinds.plot", "mlart_prefect.kinds.model")


def register_kind(type_: type | str, handler: KindHandler, *, first: bool = True) -> None:
    """Store values of ``type_`` (and its subclasses) with ``handler``.

    Args:
        type_: A class, or its dotted name ``"package.module.Class"`` to avoid importing it.
        handler: The kind handler; it is also registered under ``handler.kind``.
        first: Check this type before those registered earlier (default True), so a user's
            registration overrides a built-in one.
    """
    _HANDLERS[handler.kind] = handler
    entry = (type_, handler.kind)
    if first:
        _TYPES.insert(0, entry)
    else:
        _TYPES.append(entry)


def _load_builtins() -> None:
    """Import the built-in kinds once. Other threads wait until all of them are registered."""
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    with _LOADING:
        if not _BUILTINS_LOADED:
            for module in _BUILTIN_MODULES:
                importlib.import_module(module)
            _BUILTINS_LOADED = True


def get_handler(kind: str) -> KindHandler:
    """Return the handler registered for a kind name ('dataset', 'plot', 'model', ...).

    Raises:
        UnsupportedValueError: No handler has that name.
    """
    _load_builtins()
    try:
        return _HANDLERS[kind]
    except KeyError:
        known = ", ".join(sorted(_HANDLERS))
        raise UnsupportedValueError(f"Unknown kind {kind!r}; registered kinds: {known}.") from None


def _type_names(value: Any) -> set[str]:
    return {f"{cls.__module__}.{cls.__qualname__}" for cls in type(value).__mro__}


def handler_for_value(value: Any, *, default: str | None = None) -> KindHandler:
    """Return the handler for ``value``'s type, or the ``default`` kind's handler.

    Raises:
        UnsupportedValueError: No registered type matches and no default is given.
    """
    _load_builtins()
    names: set[str] | None = None
    for type_, kind in _TYPES:
        if isinstance(type_, str):
            names = names if names is not None else _type_names(value)
            if type_ in names:
                return _HANDLERS[kind]
        elif isinstance(value, type_):
            return _HANDLERS[kind]
    if default is not None:
        return get_handler(default)
    raise UnsupportedValueError(
        f"No kind is registered for values of type {type(value).__module__}."
        f"{type(value).__qualname__}; register one with register_kind(type, handler) or "
        "pass kind='model' to store it as a serialized object."
    )


def has_kind(value: Any) -> bool:
    """Return True when a registered kind stores values of ``value``'s type."""
    try:
        handler_for_value(value)
    except UnsupportedValueError:
        return False
    return True


@functools.cache
def accepted_options(kind: str) -> frozenset[str] | None:
    """Return the option names a kind's encoder accepts, or None when it accepts any."""
    parameters = inspect.signature(get_handler(kind).encode).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return frozenset(p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY)


def check_options(kind: str, options: dict[str, Any]) -> None:
    """Raise UnsupportedValueError naming each option the kind does not accept."""
    accepted = accepted_options(kind)
    unknown = sorted(name for name in options if accepted is not None and name not in accepted)
    if unknown:
        raise UnsupportedValueError(
            f"Invalid option(s) {', '.join(map(repr, unknown))} for a {kind} artifact; "
            f"{kind} artifacts accept: {', '.join(sorted(accepted or ())) or 'no options'}."
        )
