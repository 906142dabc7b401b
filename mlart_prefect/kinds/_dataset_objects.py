"""Checks of pandas object columns before Parquet conversion, and the JSON encoding of containers.

pyarrow guesses one Arrow type for an object column from its values. That guess fails with an
obscure message on mixed types, silently turns dicts into structs holding the union of all keys,
loads lists back as numpy arrays and drops the time zone of aware datetimes mixed with naive ones.
Each object column is therefore inspected first and either stored as it is, stored JSON-encoded
(dicts and lists), converted to UTC (datetimes in several time zones) or rejected with a message
that names the column and the Python types found.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlart_prefect.errors import UnsupportedValueError

if TYPE_CHECKING:
    import numpy as np

JSON_ENCODING = "json"
"""Value of a schema entry's ``encoding`` for a column stored as JSON text, one document a row."""

UTC_CONVERSION = "utc"
"""Value of a schema entry's ``converted`` for a column of mixed time zones stored in UTC."""

# Python type families pyarrow stores and loads back as the same values. UUIDs use the
# arrow.uuid extension type, which is why the project requires pyarrow 18 or later.
_NATIVE_FAMILIES = frozenset(
    {"bool", "int", "float", "str", "bytes", "date", "time", "timedelta", "decimal", "uuid",
     "array"}
)
_JSON_TYPES = (dict, list)
_JSON_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class ObjectPlan:
    """Storage decision for one object column: ``action`` is None (store as is), "json" or "utc"."""

    action: str | None
    warning: str | None = None


def type_name(type_: type) -> str:
    """Return a short name for a type: ``int``, ``datetime.date``, ``pandas.Timestamp``."""
    module = type_.__module__
    if module == "builtins":
        return type_.__qualname__
    return f"{module.split('.')[0]}.{type_.__qualname__}"


def _family(type_: type) -> str:
    import numpy as np

    # Order matters: bool subclasses int, np.timedelta64 subclasses np.signedinteger and
    # datetime subclasses date.
    checks: tuple[tuple[type | tuple[type, ...], str], ...] = (
        ((bool, np.bool_), "bool"),
        ((dt.timedelta, np.timedelta64), "timedelta"),
        ((dt.datetime, np.datetime64), "datetime"),
        ((int, np.integer), "int"),
        ((float, np.floating), "float"),
        (str, "str"),
        ((bytes, bytearray), "bytes"),
        (dt.date, "date"),
        (dt.time, "time"),
        (decimal.Decimal, "decimal"),
        (uuid.UUID, "uuid"),
        (np.ndarray, "array"),
    )
    for types, family in checks:
        if issubclass(type_, types):
            return family
    if type_ in _JSON_TYPES:
        return "json"
    return "other"


def plan_object_column(values: np.ndarray, where: str) -> ObjectPlan:
    """Decide how an object column is stored, or reject it.

    Args:
        values: The column's values (an object ndarray).
        where: How messages name the column, e.g. ``"column 'price'"``.

    Raises:
        UnsupportedValueError: The column mixes Python types, contains types a Dataset cannot
            store or dicts and lists that JSON cannot keep exactly, or mixes naive and aware
            datetimes.
    """
    import pandas as pd

    present = values[~pd.isna(values)] if len(values) else values
    examples: dict[type, Any] = {}
    for value in present:
        examples.setdefault(type(value), value)
    if not examples:
        return ObjectPlan(None)

    families: dict[str, list[type]] = {}
    for type_ in examples:
        families.setdefault(_family(type_), []).append(type_)
    if len(families) > 1:
        raise _mixed_types_error(where, examples)

    family = next(iter(families))
    if family in _NATIVE_FAMILIES:
        return ObjectPlan(None)
    if family == "json":
        _check_json_exact(present, where)
        return ObjectPlan(JSON_ENCODING)
    if family == "datetime":
        return _plan_datetimes(present, where)
    raise _unsupported_type_error(where, list(examples))


def _mixed_types_error(where: str, examples: dict[type, Any]) -> UnsupportedValueError:
    found = ", ".join(
        f"{type_name(type_)} (e.g. {_short_repr(value)})"
        for type_, value in sorted(examples.items(), key=lambda item: type_name(item[0]))
    )
    return UnsupportedValueError(
        f"Cannot store {where}: it mixes Python types {found}. A dataset column must hold "
        "values of one type. Convert it first, for example with .astype(str) to keep text, or "
        "pd.to_numeric(..., errors='coerce') / pd.to_datetime(..., errors='coerce') to turn "
        "the odd values into missing ones."
    )


def _unsupported_type_error(where: str, types: list[type]) -> UnsupportedValueError:
    names = ", ".join(sorted(type_name(type_) for type_ in types))
    return UnsupportedValueError(
        f"Cannot store {where}: it contains values of type {names}, which Parquet cannot store. "
        "Accepted object values are str, bytes, int, float, bool, Decimal, UUID, datetime, "
        "date, time, timedelta, numpy arrays, and dicts or lists of JSON values. Convert the "
        "column (for example with .astype(str)) or save the value with kind='model'."
    )


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _check_json_exact(values: np.ndarray, where: str) -> None:
    for value in values:
        problem = _json_problem(value)
        if problem is not None:
            raise UnsupportedValueError(
                f"Cannot store {where}: its dicts and lists are stored as JSON, but one of "
                f"them holds {problem}, which JSON would not load back unchanged (value "
                f"{_short_repr(value)}). Use only str keys and str, int, float, bool, None, "
                "list and dict values, or convert the column to text first."
            )


def _json_problem(value: Any) -> str | None:
    """Return a description of the first part of ``value`` JSON cannot keep exactly, or None."""
    stack = [value]
    while stack:
        item = stack.pop()
        item_type = type(item)
        if item_type in _JSON_SCALARS:
            continue
        if item_type is list:
            stack.extend(item)
        elif item_type is dict:
            for key, nested in item.items():
                if type(key) is not str:
                    return f"a dict key of type {type_name(type(key))} ({key!r})"
                stack.append(nested)
        else:
            return f"a value of type {type_name(item_type)}"
    return None


def _plan_datetimes(values: np.ndarray, where: str) -> ObjectPlan:
    zones = {_zone_name(value) for value in values}
    if None in zones and len(zones) > 1:
        aware = ", ".join(sorted(str(zone) for zone in zones if zone is not None))
        raise UnsupportedValueError(
            f"Cannot store {where}: it mixes naive datetimes with tz-aware ones ({aware}), "
            "and storing them together would lose the time zones. Localize the naive values "
            "first, for example with pd.to_datetime(..., utc=True)."
        )
    if len(zones) > 1:
        listed = ", ".join(sorted(str(zone) for zone in zones))
        return ObjectPlan(
            UTC_CONVERSION,
            f"{where} mixes time zones ({listed}); it is stored converted to UTC and loads "
            "back as datetime64 in UTC.",
        )
    return ObjectPlan(None)


def _zone_name(value: Any) -> str | None:
    tzinfo = getattr(value, "tzinfo", None)
    return None if tzinfo is None else str(tzinfo)


def json_encode_values(values: np.ndarray) -> np.ndarray:
    """Return each dict or list as compact JSON text; missing values stay None."""
    import numpy as np
    import pandas as pd

    missing = pd.isna(values)
    encoded = np.empty(len(values), dtype=object)
    for position, value in enumerate(values):
        if not missing[position]:
            encoded[position] = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return encoded


def json_decode_values(values: Any) -> np.ndarray:
    """Parse JSON text values back into Python objects; missing values become None."""
    import numpy as np

    decoded = np.empty(len(values), dtype=object)
    for position, value in enumerate(values):
        if isinstance(value, str):
            decoded[position] = json.loads(value)
    return decoded


def utc_values(values: np.ndarray) -> Any:
    """Convert tz-aware datetimes of any zones to a UTC datetime64 array (missing as NaT)."""
    import pandas as pd

    return pd.to_datetime(values, utc=True).array
