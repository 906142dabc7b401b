"""CSV bodies of pandas datasets: writing readable CSV and restoring dtypes from the spec.

What a CSV round trip keeps, given the pandas dtypes recorded in the spec:

- restored exactly: numbers (float64 through its shortest round-trip text, with inf and -inf),
  numpy int and bool, nullable Int*/UInt*/Float*/boolean, str and string, datetime64 naive or
  tz-aware (unit and zone), timedelta64, period, categorical (categories and order, when they are
  plain str/int/float/bool values), dicts and lists (written as JSON text), column labels made
  of str/int/float/bool/None (MultiIndex included, written as one header row joined with
  ``|``), index levels of the dtypes above and RangeIndex;
- kept as text: object columns of other types (Decimal, UUID, bytes, dates), intervals, and any
  dtype not listed above; a warning lists them when the dataset is saved;
- lost: the difference between an empty string and a missing value (both load as missing),
  the storage of ``string`` columns (they load with pandas' default storage), and the freq of
  a DatetimeIndex that pandas cannot infer again.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlart_prefect.kinds._dataset_frames import (
    as_stored_dtype,
    categories_record,
    restore_categorical,
    restore_index,
)
from mlart_prefect.kinds._dataset_io import CSV_MEDIA_TYPE, hashed_body
from mlart_prefect.kinds._dataset_labels import labels_record, restore_labels
from mlart_prefect.kinds._dataset_objects import JSON_ENCODING, json_decode_values
from mlart_prefect.kinds.base import BodyPayload

if TYPE_CHECKING:
    import pandas as pd

    from mlart_prefect.kinds._dataset_frames import PreparedFrame

# Dtypes that pandas.read_csv parses directly from the text pandas.to_csv writes.
_READ_DIRECTLY = re.compile(r"(u?int|U?Int|float|Float)(8|16|32|64)|bool|boolean|str|string")


def csv_details(prepared: PreparedFrame) -> tuple[dict[str, Any], list[str]]:
    """Return what the spec needs to restore a CSV body, and warnings on what CSV loses."""
    frame = prepared.original
    details: dict[str, Any] = {"column_labels": labels_record(frame.columns)}
    warnings = []
    if details["column_labels"] is None:
        warnings.append("CSV keeps the column labels as text: some are not str, int, float, "
                        "bool or None.")
    text_columns = []
    for position, dtype in enumerate(frame.dtypes):
        entry = prepared.encodings.get(position, {})
        if str(dtype) == "category":
            if categories_record(dtype, text_too=True) is None:
                text_columns.append(prepared.names[position])
        elif _restorer(str(dtype), entry) is None:
            text_columns.append(prepared.names[position])
    if text_columns:
        warnings.append(f"CSV keeps columns {text_columns} as text (or categories inferred from "
                        "the values); use format='parquet' to keep their types.")
    return details, warnings


def write_frame_csv(prepared: PreparedFrame, path: Path, name: str) -> BodyPayload:
    """Write the prepared frame as CSV: one header row of readable names, index first."""
    import pandas as pd

    stored = prepared.stored.set_axis(prepared.names, axis=1)
    write_index = not isinstance(stored.index, pd.RangeIndex)
    with hashed_body(path, name, CSV_MEDIA_TYPE) as (file, result):
        if stored.shape[1] or write_index:
            text = io.TextIOWrapper(file, encoding="utf-8", newline="")
            stored.to_csv(text, index=write_index, index_label=prepared.index_names)
            text.flush()
            text.detach()
    return result[0]


def read_frame_csv(data: bytes, spec: dict[str, Any]) -> pd.DataFrame:
    """Read a CSV body written by ``write_frame_csv`` and restore dtypes, labels and index."""
    import pandas as pd

    index = spec["index"]
    schema = spec["schema"]
    levels = 0 if index["kind"] == "range" else len(index["names"])
    if not data:
        frame = pd.DataFrame(index=pd.RangeIndex(index["start"], index["stop"], index["step"]))
    else:
        dtypes = {name: _read_dtype(entry_dtype) for name, entry_dtype in
                  zip(index["names"][:levels], index.get("dtypes", []))}
        dtypes.update({entry["name"]: _read_dtype(entry["dtype"], entry) for entry in schema})
        frame = pd.read_csv(io.BytesIO(data), dtype=dtypes, keep_default_na=False,
                            na_values=[""], skip_blank_lines=False)

    for position, entry in enumerate(schema, start=levels):
        frame.isetitem(position, _restore_values(frame.iloc[:, position], entry))
    if levels:
        frame = _restore_index_levels(frame, index, levels)
    elif data:
        frame.index = pd.RangeIndex(index["start"], index["stop"], index["step"])
    frame.index.names = [_label(label) for label in index["labels"]]

    labels = spec.get("column_labels")
    if labels is not None:
        frame.columns = restore_labels(labels)
    return frame


def _label(label: Any) -> Any:
    return tuple(label) if isinstance(label, list) else label


def _read_dtype(dtype: str, entry: dict[str, Any] | None = None) -> str:
    if entry and (entry.get("encoding") or entry.get("converted")):
        return "object"
    return dtype if _READ_DIRECTLY.fullmatch(dtype) else "object"


def _restorer(dtype: str, entry: dict[str, Any]) -> Any:
    """Return a function turning CSV text into ``dtype``, or None when CSV keeps text."""
    import pandas as pd

    if entry.get("encoding") == JSON_ENCODING:
        return lambda values: json_decode_values(values.to_numpy(dtype=object))
    if entry.get("converted"):
        return lambda values: pd.to_datetime(values, format="ISO8601", utc=True)
    if dtype.startswith("datetime64"):
        return lambda values: _datetimes(values, dtype)
    if dtype.startswith("timedelta64"):
        return lambda values: pd.to_timedelta(values).astype(dtype)
    if dtype.startswith("period"):
        return lambda values: values.astype(dtype)
    if _READ_DIRECTLY.fullmatch(dtype):
        return lambda values: values
    return None


def _datetimes(values: pd.Series, dtype: str) -> Any:
    import pandas as pd

    if "," not in dtype:
        return pd.to_datetime(values, format="ISO8601").astype(dtype)
    # Values carry their own UTC offsets (they change across DST), so parse them in UTC.
    parsed = pd.to_datetime(values, format="ISO8601", utc=True)
    return parsed.dt.tz_convert(pd.DatetimeTZDtype.construct_from_string(dtype).tz).astype(dtype)


def _restore_values(values: pd.Series, entry: dict[str, Any]) -> Any:
    dtype = entry["dtype"]
    if dtype == "category":
        return restore_categorical(values, entry)
    restorer = _restorer(dtype, entry)
    if restorer is not None:
        values = restorer(values)
    if dtype == "object" and not (entry.get("encoding") or entry.get("converted")):
        return as_stored_dtype(values, "object")
    return values


def _restore_index_levels(frame: pd.DataFrame, index: dict[str, Any], levels: int) -> pd.DataFrame:
    for level in range(levels):
        dtype = index["dtypes"][level]
        restorer = _restorer(dtype, {})
        if restorer is not None:
            frame.isetitem(level, restorer(frame.iloc[:, level]))
        elif dtype == "object":
            frame.isetitem(level, as_stored_dtype(frame.iloc[:, level], "object"))
    frame = frame.set_index(list(frame.columns[:levels]))
    frame.index = restore_index(frame.index, index)
    return frame
