"""Conversion of pandas frames to Arrow tables for storage, and the fix-ups that restore them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlart_prefect.errors import UnsupportedValueError, cause_text
from mlart_prefect.kinds._dataset_labels import (
    index_level_names,
    json_label,
    label_text,
    labels_record,
    restore_labels,
    unique_names,
)
from mlart_prefect.kinds._dataset_objects import (
    JSON_ENCODING,
    UTC_CONVERSION,
    json_decode_values,
    json_encode_values,
    plan_object_column,
    utc_values,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


MAX_RECORDED_CATEGORIES = 10_000
"""Maximum number of categories written into the spec for a column whose body loses them."""


@dataclass
class PreparedFrame:
    """A DataFrame made ready for storage, with the names and notes that describe it.

    Attributes:
        original: The frame as given; previews are taken from it.
        stored: The frame that is written: duplicate labels renamed, dicts and lists as JSON
            text, mixed time zones in UTC. Columns are never copied unless changed.
        names: Unique readable names of the data columns (preview and statistics use them).
        dtypes: The dtypes of the original frame's columns, read once (``frame.dtypes`` builds
            a new Series on every access).
        index_names: Readable names of the index levels, unique against ``names``.
        encodings: Schema additions per data column position (``encoding``, ``converted``).
        renamed: Record of the original labels when duplicates were renamed, else None.
        warnings: What was changed on the way, for ``Encoded.warnings`` and the spec.
    """

    original: pd.DataFrame
    stored: pd.DataFrame
    names: list[str]
    index_names: list[str]
    dtypes: list[Any]
    encodings: dict[int, dict[str, str]] = field(default_factory=dict)
    renamed: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)


def prepare_frame(frame: pd.DataFrame) -> PreparedFrame:
    """Check a DataFrame and build the frame that is written, without copying unchanged data.

    Raises:
        UnsupportedValueError: A column or index level cannot be stored (mixed Python types,
            unsupported objects), or duplicate column labels cannot be recorded as JSON.
    """
    names = unique_names(label_text(label) for label in frame.columns)
    prepared = PreparedFrame(
        original=frame,
        stored=frame,
        names=names,
        index_names=index_level_names(frame.index, taken=names),
        dtypes=frame.dtypes.tolist(),
    )
    if not frame.columns.is_unique:
        _rename_duplicates(prepared)
    _plan_object_columns(prepared)
    _check_object_index(frame.index, prepared.index_names)
    return prepared


def _rename_duplicates(prepared: PreparedFrame) -> None:
    import pandas as pd

    columns = prepared.original.columns
    repeated = sorted({label_text(label) for label in columns[columns.duplicated(keep=False)]})
    record = labels_record(columns)
    if record is None:
        raise UnsupportedValueError(
            f"Cannot store duplicate column labels {repeated}: they are renamed for storage and "
            "restored on load, which needs labels made of str, int, float, bool or None. "
            "Rename the columns first, for example df.columns = [...]."
        )
    prepared.stored = prepared.stored.set_axis(pd.Index(prepared.names, dtype=object), axis=1)
    prepared.renamed = {"stored_as": prepared.names, **record}
    prepared.warnings.append(
        f"Duplicate column labels {repeated} are stored as {prepared.names}; loading restores "
        "the original labels."
    )


def _plan_object_columns(prepared: PreparedFrame) -> None:
    frame = prepared.stored
    # One look at the dtypes: taking each column out of the frame costs more than checking it.
    objects = [position for position, dtype in enumerate(prepared.dtypes) if dtype == object]
    for position in objects:
        values = frame.iloc[:, position].to_numpy()
        plan = plan_object_column(values, f"column {prepared.names[position]!r}")
        if plan.action is None:
            continue
        if frame is prepared.stored:
            # A shallow copy: the original frame stays untouched and unchanged columns are shared.
            frame = frame.copy(deep=False)
        if plan.action == JSON_ENCODING:
            frame.isetitem(position, json_encode_values(values))
            prepared.encodings[position] = {"encoding": JSON_ENCODING}
        else:
            frame.isetitem(position, utc_values(values))
            prepared.encodings[position] = {"converted": UTC_CONVERSION}
        if plan.warning:
            prepared.warnings.append(plan.warning)
    prepared.stored = frame


def _check_object_index(index: pd.Index, names: list[str]) -> None:
    for level in range(index.nlevels):
        values = index.get_level_values(level)
        if values.dtype != object:
            continue
        where = f"index level {names[level]!r}"
        plan = plan_object_column(values.to_numpy(), where)
        if plan.action == UTC_CONVERSION:
            raise UnsupportedValueError(
                f"Cannot store {where}: it mixes time zones. Convert it to one zone first, for "
                "example with pd.to_datetime(..., utc=True)."
            )
        if plan.action is not None:
            raise UnsupportedValueError(
                f"Cannot store {where}: it contains dicts or lists. Move it to a column with "
                "reset_index() or convert it to text."
            )


# pyarrow's errors derive from these (ArrowInvalid from ValueError, ArrowTypeError from
# TypeError...); an int beyond int64 raises a plain OverflowError.
_CONVERSION_ERRORS = (ValueError, TypeError, NotImplementedError, OverflowError)


def frame_to_arrow(prepared: PreparedFrame) -> pa.Table:
    """Convert the prepared frame to an Arrow table with pandas metadata (index included).

    Raises:
        UnsupportedValueError: pyarrow cannot convert a column; the message names it.
    """
    import pyarrow as pa

    try:
        return pa.Table.from_pandas(prepared.stored, preserve_index=None)
    except _CONVERSION_ERRORS as exc:
        raise _conversion_error(prepared, exc) from exc


def _conversion_error(prepared: PreparedFrame, exc: Exception) -> UnsupportedValueError:
    import pyarrow as pa

    frame = prepared.stored
    where = "the index"
    for position in range(frame.shape[1]):
        try:
            pa.Table.from_pandas(frame.iloc[:, [position]], preserve_index=False)
        except _CONVERSION_ERRORS:
            dtype = frame.dtypes.iloc[position]
            where = f"column {prepared.names[position]!r} (dtype {dtype})"
            break
    return UnsupportedValueError(
        f"Cannot convert {where} to Arrow for storage: {cause_text(exc)}. Convert the values "
        "to a plain type first (for example with .astype(str)), or save the value with "
        "kind='model'."
    )


def column_schema(
    prepared: PreparedFrame, table: pa.Table, *, text_categories: bool = False
) -> list[dict[str, Any]]:
    """Describe each data column: name, label, pandas dtype, Arrow type, nullable, encoding.

    Categorical columns also get ``ordered`` and, where the body format loses them,
    ``categories`` (see ``categories_record``; ``text_categories`` is True for CSV).
    """
    frame = prepared.original
    # table.schema builds new objects on every access: read it once.
    dtypes = prepared.dtypes
    labels = frame.columns.tolist()
    arrow_types = table.schema.types
    entries = []
    for position, name in enumerate(prepared.names):
        dtype = dtypes[position]
        entry: dict[str, Any] = {
            "name": name,
            "label": _label_json(labels[position]),
            "dtype": dtype_text(dtype),
            "arrow_type": str(arrow_types[position]),
            "nullable": dtype_is_nullable(dtype),
        }
        entry.update(prepared.encodings.get(position, {}))
        if entry["dtype"] == "category":
            entry["ordered"] = bool(dtype.ordered)
            entry["categories"] = categories_record(dtype, text_too=text_categories)
        entries.append(entry)
    return entries


def _label_json(label: Any) -> Any:
    value = json_label(label)
    return value if value is not None or label is None else label_text(label)


_NUMPY_DTYPE_TEXTS: dict[Any, str] = {}
_MAX_CACHED_DTYPES = 1_000


def dtype_text(dtype: Any) -> str:
    """Return ``str(dtype)``, cached for numpy dtypes, whose ``str()`` runs Python code."""
    import numpy as np

    if not isinstance(dtype, np.dtype):
        return str(dtype)
    text = _NUMPY_DTYPE_TEXTS.get(dtype)
    if text is None:
        text = str(dtype)
        if len(_NUMPY_DTYPE_TEXTS) < _MAX_CACHED_DTYPES:
            _NUMPY_DTYPE_TEXTS[dtype] = text
    return text


def dtype_is_nullable(dtype: Any) -> bool:
    """Return whether a pandas dtype can hold missing values (numpy bool and integers cannot)."""
    import numpy as np

    return not (isinstance(dtype, np.dtype) and dtype.kind in "biu")


def describe_index(index: pd.Index, names: list[str], table: pa.Table | None) -> dict[str, Any]:
    """Describe an index: a RangeIndex by start, stop and step, other indexes level by level."""
    import pandas as pd

    labels = [_label_json(name) for name in index.names]
    if isinstance(index, pd.RangeIndex):
        return {"kind": "range", "names": names, "labels": labels, "start": index.start,
                "stop": index.stop, "step": index.step}
    levels = [index.get_level_values(i) for i in range(index.nlevels)]
    description: dict[str, Any] = {
        "kind": "levels",
        "names": names,
        "labels": labels,
        "dtypes": [str(level.dtype) for level in levels],
        "freq": getattr(index, "freqstr", None),
    }
    if table is not None:
        fields = table.schema.names[-index.nlevels:] if index.nlevels else []
        description["arrow_types"] = [str(table.schema.field(name).type) for name in fields]
    return description


def restore_frame(table: pa.Table, spec: dict[str, Any]) -> pd.DataFrame:
    """Rebuild the stored DataFrame from its Arrow table and the spec written with it."""
    # integer_object_nulls keeps Python ints (not floats) in object columns that had None;
    # nullable Int64 columns are rebuilt from the pandas metadata and are not affected.
    frame = table.to_pandas(integer_object_nulls=True)
    return restore_details(frame, spec)


def restore_details(frame: pd.DataFrame, spec: dict[str, Any]) -> pd.DataFrame:
    """Undo storage changes: JSON text, object and unit dtypes, index freq, renamed labels."""
    for position, entry in enumerate(spec["schema"]):
        column = frame.iloc[:, position]
        restored = _restore_column(column, entry)
        if restored is not column:
            frame.isetitem(position, restored)
    frame.index = restore_index(frame.index, spec["index"])
    renamed = spec.get("renamed_columns")
    if renamed is not None:
        frame.columns = restore_labels(renamed)
    return frame


def _restore_column(column: pd.Series, entry: dict[str, Any]) -> Any:
    if entry.get("encoding") == JSON_ENCODING:
        return json_decode_values(column.to_numpy(dtype=object))
    if entry.get("converted"):
        return column
    if entry["dtype"] == "category":
        return restore_categorical(column, entry)
    return as_stored_dtype(column, entry["dtype"])


def as_stored_dtype(values: Any, dtype: str) -> Any:
    """Cast to a stored dtype where storage changed it: object, datetime and timedelta units.

    Missing values of object columns load back as None, whatever marker they had (None, NaN,
    NaT), because the stored data keeps only that a value is missing.
    """
    import pandas as pd

    if str(values.dtype) == dtype:
        return values
    if dtype == "object":
        objects = values.to_numpy(dtype=object, na_value=None)
        if isinstance(values, pd.Index):
            return pd.Index(objects, dtype=object, name=values.name)
        return pd.Series(objects, dtype=object, index=values.index, name=values.name)
    if dtype.startswith(("datetime64", "timedelta64")):
        try:
            return values.astype(dtype)
        except (TypeError, ValueError):
            return values
    return values


def categories_record(dtype: Any, *, text_too: bool) -> dict[str, Any] | None:
    """Describe a categorical dtype's categories for the spec, or None when not needed.

    Parquet keeps text categories (order and unused ones included) but not numeric or other
    categories, and CSV keeps none. Categories a format loses are recorded when JSON can hold
    them and there are at most ``MAX_RECORDED_CATEGORIES``.
    """
    categories = dtype.categories
    if (_is_text(categories.dtype) and not text_too) or len(categories) > MAX_RECORDED_CATEGORIES:
        return None
    return labels_record(categories)


def restore_categorical(values: Any, entry: dict[str, Any]) -> Any:
    """Give a categorical column back its recorded categories and order."""
    import pandas as pd

    ordered = entry["ordered"]
    record = entry.get("categories")
    if record is None:
        if not isinstance(values.dtype, pd.CategoricalDtype):
            return values.astype(pd.CategoricalDtype(ordered=ordered))
        return values.cat.as_ordered() if ordered else values.cat.as_unordered()

    categories = restore_labels(record)
    dtype = pd.CategoricalDtype(categories, ordered=ordered)
    if _is_text(values.dtype) and not _is_text(categories.dtype):
        # Object values are matched to categories by value, and CSV text such as "3" to the
        # category 3 by its text.
        lookup: dict[Any, Any] = {str(category): category for category in categories}
        lookup.update((category, category) for category in categories)
        values = values.astype(object).map(lookup)
    if isinstance(values.dtype, pd.CategoricalDtype):
        # astype would keep the current order: unordered dtypes with the same categories are
        # equal in pandas.
        return values.cat.set_categories(categories, ordered=ordered)
    return values.astype(dtype)


def _is_text(dtype: Any) -> bool:
    return dtype == object or str(dtype) in ("str", "string")


def restore_index(index: pd.Index, description: dict[str, Any]) -> pd.Index:
    """Give a loaded index back its stored dtype (object, datetime unit) and freq."""
    import pandas as pd

    if description["kind"] == "range":
        return index
    if isinstance(index, pd.MultiIndex):
        levels = [as_stored_dtype(index.levels[position], dtype)
                  for position, dtype in enumerate(description["dtypes"])]
        return index.set_levels(levels)
    restored = as_stored_dtype(index, description["dtypes"][0])
    freq = description.get("freq")
    if freq and isinstance(restored, (pd.DatetimeIndex, pd.TimedeltaIndex)):
        try:
            restored = type(restored)(restored, freq=freq)
        except ValueError:
            pass
    return restored
