"""Conversion of single Python, numpy, pandas and pyarrow values into strict-JSON values."""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import math
import uuid
from collections.abc import Mapping
from typing import Any, TypeAlias

__all__ = [
    "BYTES_SHOWN",
    "MAX_DEPTH",
    "MAX_ITEMS",
    "MAX_STRING_LENGTH",
    "NEGATIVE_INFINITY",
    "POSITIVE_INFINITY",
    "JsonValue",
    "is_missing",
    "narrow_float",
    "to_json_value",
]

JsonValue: TypeAlias = "None | bool | int | float | str | list[JsonValue] | dict[str, JsonValue]"

MAX_STRING_LENGTH = 200
"""Maximum length of a string kept whole; longer strings are cut and marked ``… (+N chars)``."""

MAX_ITEMS = 100
"""Maximum number of items kept from a list or dict; one ``… (+N items)`` mark replaces the rest."""

MAX_DEPTH = 8
"""Maximum nesting of lists and dicts converted item by item; deeper values become text."""

BYTES_SHOWN = 16
"""Leading bytes shown in hexadecimal in the summary of a bytes value."""

POSITIVE_INFINITY = "inf"
"""JSON form of +infinity, so it stays distinct from null (missing) under strict JSON."""

NEGATIVE_INFINITY = "-inf"
"""JSON form of -infinity."""

_MISSING_TYPE_NAMES = frozenset({"NAType", "NaTType"})


def is_missing(value: Any) -> bool:
    """Return True for None, NaN, ``pd.NA``, ``pd.NaT`` and numpy's NaT (pandas not imported)."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    type_ = type(value)
    if type_.__name__ in _MISSING_TYPE_NAMES and type_.__module__.startswith("pandas"):
        return True
    if type_.__module__ == "numpy":
        import numpy as np

        if isinstance(value, (np.datetime64, np.timedelta64)):
            return bool(np.isnat(value))
        if isinstance(value, np.floating):
            return bool(np.isnan(value))
    return False


def to_json_value(
    value: Any,
    *,
    max_string_length: int = MAX_STRING_LENGTH,
    max_items: int = MAX_ITEMS,
) -> JsonValue:
    """Convert one value into plain JSON types that ``json.dumps(..., allow_nan=False)`` accepts.

    The result is meant for display (previews, statistics, cards), so some values are summarised:

    - missing values (None, NaN, ``pd.NA``, ``pd.NaT``, numpy NaT, ``Decimal('NaN')``): ``None``;
    - +inf and -inf: the strings ``"inf"`` and ``"-inf"``, so they stay distinct from missing;
    - numpy and Decimal numbers: ``int``, ``float`` or, for Decimal, its exact text (``"1.10"``);
    - datetimes, pandas Timestamps, dates and times: ISO 8601 text, with the UTC offset when the
      value is tz-aware and nanoseconds when present (``"2024-03-31T02:30:00+02:00"``);
    - timedeltas: pandas' text form (``"1 days 02:00:00"``); Periods and Intervals: their text;
    - UUIDs: the canonical text; enums: their value;
    - bytes: ``"<12 bytes: 0x48656c6c…>"`` with the first ``BYTES_SHOWN`` bytes in hexadecimal;
    - strings longer than ``max_string_length``: cut, followed by ``"… (+N chars)"``;
    - dicts, lists, tuples, sets and numpy arrays: JSON objects and arrays of converted items,
      at most ``max_items`` each (a last item ``"… (+N items)"`` or key ``"…"`` marks the rest),
      nested at most ``MAX_DEPTH`` levels; dict keys become text;
    - any other object: its ``str()``, cut like a string.

    Args:
        value: Any Python, numpy, pandas or pyarrow scalar or container.
        max_string_length: Longest string kept whole (default ``MAX_STRING_LENGTH`` = 200).
        max_items: Most items kept from each container (default ``MAX_ITEMS`` = 100).
    """
    return _convert(value, max_string_length, max_items, 0)


def _convert(value: Any, max_string: int, max_items: int, depth: int) -> JsonValue:
    exact = _EXACT_TYPE_CONVERTERS.get(type(value))
    if exact is not None:
        return exact(value, max_string)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _float(float(value))
    if isinstance(value, str):
        return _cut(str(value), max_string)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _bytes_summary(bytes(value))
    if is_missing(value):
        return None

    converted = _convert_temporal(value)
    if converted is not _NOT_HANDLED:
        return converted
    converted = _convert_library_scalar(value, max_string, max_items, depth)
    if converted is not _NOT_HANDLED:
        return converted
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        return _convert_container(value, max_string, max_items, depth)
    return _cut(_text(value), max_string)


_NOT_HANDLED: Any = object()


def _isoformat(value: Any, max_string: int) -> str:
    return value.isoformat()


# Converters for values of exactly these types, which are the most common cells and statistics.
# Each gives what the checks in ``_convert`` give, without walking through them; subclasses
# (numpy.float64, pandas.Timestamp, enums) still take the full path.
_EXACT_TYPE_CONVERTERS: dict[type, Any] = {
    type(None): lambda value, max_string: None,
    bool: lambda value, max_string: value,
    int: lambda value, max_string: value,
    float: lambda value, max_string: _float(value),
    str: lambda value, max_string: _cut(value, max_string),
    dt.datetime: _isoformat,
    dt.date: _isoformat,
    dt.time: _isoformat,
}


def narrow_float(value: Any, narrow_type: type) -> Any:
    """Return a float as the shortest decimal that reads back as the same ``narrow_type`` value.

    ``narrow_type`` is ``np.float32`` or ``np.float16``. A value from a float32 column then
    reads 0.1 instead of 0.10000000149011612, as numpy prints it. Values that are not finite
    floats, or that ``narrow_type`` cannot hold, are returned unchanged.
    """
    if type(value) is not float or not abs(value) <= _largest(narrow_type):
        return value
    return float(str(narrow_type(value)))


@functools.cache
def _largest(narrow_type: type) -> float:
    import numpy as np

    return float(np.finfo(narrow_type).max)


def _float(value: float) -> float | str | None:
    if math.isnan(value):
        return None
    if math.isinf(value):
        return POSITIVE_INFINITY if value > 0 else NEGATIVE_INFINITY
    return value


def _cut(text: str, max_string: int) -> str:
    if len(text) > max_string:
        text = f"{text[:max_string]}… (+{len(text) - max_string} chars)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (from surrogateescape decoding) cannot be written as UTF-8 JSON.
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _bytes_summary(data: bytes) -> str:
    shown = data[:BYTES_SHOWN].hex()
    more = "…" if len(data) > BYTES_SHOWN else ""
    unit = "byte" if len(data) == 1 else "bytes"
    if not data:
        return "<0 bytes>"
    return f"<{len(data)} {unit}: 0x{shown}{more}>"


def _convert_temporal(value: Any) -> JsonValue:
    """Convert datetimes, dates, times and timedeltas (standard library and pandas)."""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        # pandas.Timestamp subclasses datetime and its isoformat() keeps nanoseconds.
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return _timedelta_text(value)
    return _NOT_HANDLED


def _timedelta_text(value: Any) -> str:
    # pandas is a dependency of the package; it is imported here, not at module import, so that
    # converting plain values stays cheap for the CLI.
    import pandas as pd

    return str(pd.Timedelta(value))


def _convert_library_scalar(value: Any, max_string: int, max_items: int, depth: int) -> JsonValue:
    """Convert numpy, pyarrow, Decimal, UUID and enum values; others are not handled."""
    if isinstance(value, decimal.Decimal):
        if value.is_nan():
            return None
        if value.is_infinite():
            return POSITIVE_INFINITY if value > 0 else NEGATIVE_INFINITY
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)

    import enum

    if isinstance(value, enum.Enum):
        return _convert(value.value, max_string, max_items, depth + 1)

    module = type(value).__module__
    if module == "numpy":
        return _convert_numpy(value, max_string, max_items, depth)
    if module.startswith("pyarrow") and hasattr(value, "as_py"):
        return _convert(value.as_py(), max_string, max_items, depth)
    return _NOT_HANDLED


def _convert_numpy(value: Any, max_string: int, max_items: int, depth: int) -> JsonValue:
    import numpy as np

    if isinstance(value, np.bool_):
        return bool(value)
    # timedelta64 subclasses np.signedinteger, so it is checked before integers.
    if isinstance(value, np.timedelta64):
        return _timedelta_text(value)
    if isinstance(value, np.datetime64):
        return str(np.datetime_as_string(value))
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        # str() gives the shortest text that reads back as the same float32/float16 value,
        # so 0.1 stays 0.1 instead of 0.10000000149011612.
        return _float(float(str(value)))
    if isinstance(value, np.ndarray):
        return _convert_container(value.tolist(), max_string, max_items, depth)
    if isinstance(value, np.generic):
        return _convert(value.item(), max_string, max_items, depth)
    return _NOT_HANDLED


def _convert_container(value: Any, max_string: int, max_items: int, depth: int) -> JsonValue:
    if depth >= MAX_DEPTH:
        return _cut(_text(value), max_string)
    if isinstance(value, Mapping):
        result: dict[str, JsonValue] = {}
        for index, (key, item) in enumerate(value.items()):
            if index == max_items:
                result["…"] = f"+{len(value) - max_items} keys"
                break
            if isinstance(key, str):
                name = key
            else:
                name = str(_convert(key, max_string, max_items, depth + 1))
            result[name] = _convert(item, max_string, max_items, depth + 1)
        return result

    items = list(value)
    converted = [_convert(item, max_string, max_items, depth + 1) for item in items[:max_items]]
    if len(items) > max_items:
        converted.append(f"… (+{len(items) - max_items} items)")
    return converted


def _text(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break a preview
        return f"<unprintable {type(value).__qualname__}>"
