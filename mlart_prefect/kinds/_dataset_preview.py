"""The first rows of a dataset as strict JSON, and their rendering as a markdown table.

Layout of a preview::

    {"columns": ["when", "price", "sales|2023"],   # unique names, index columns first
     "dtypes": ["datetime64[us]", "float64", "Int64"],
     "rows": [["2024-01-01T00:00:00", 1.5, null], ...],
     "index_columns": 1,        # how many leading columns are index levels
     "total_columns": 250,      # data columns of the dataset (index levels not counted)
     "total_rows": 1000000}

At most ``MAX_PREVIEW_COLUMNS`` data columns are shown; ``total_columns`` keeps the real count.
Cells are converted by ``mlart_prefect.jsonsafe.to_json_value``: missing values are null,
infinities the strings ``"inf"``/``"-inf"``, times ISO 8601 text, bytes a short summary, long
strings cut at 200 characters. Numbers of float32 and float16 columns keep the digits of their
type (0.1, not 0.10000000149011612). Column names are unique, so renderers that key cells by
column name (row dicts) never drop one.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlart_prefect.jsonsafe import MAX_STRING_LENGTH, narrow_float, to_json_value

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from mlart_prefect.kinds._dataset_frames import PreparedFrame

__all__ = ["MAX_PREVIEW_COLUMNS", "preview_markdown", "preview_records"]

MAX_PREVIEW_COLUMNS = 100
"""Most data columns shown in a preview (index columns are always shown)."""


def frame_preview(
    prepared: PreparedFrame, rows: int, table: pa.Table | None = None
) -> dict[str, Any]:
    """Build the preview of a DataFrame's first ``rows`` rows, index levels first.

    ``table`` is the frame converted for storage (``frame_to_arrow``). When given, cells of
    numpy number and boolean columns and of pandas ``str`` columns are read from it, which
    costs less than taking each column out of the frame and gives the same cells.
    """
    import numpy as np
    import pandas as pd

    from mlart_prefect.kinds._dataset_frames import dtype_text

    original = prepared.original
    rows = min(rows, len(original))
    shown = min(original.shape[1], MAX_PREVIEW_COLUMNS)
    dtypes_of_columns = prepared.dtypes[:shown]
    from_table = table.slice(0, rows) if table is not None else None
    head: pd.DataFrame | None = None

    columns: list[list[Any]] = []
    dtypes: list[str] = []
    index = original.index
    if isinstance(index, pd.RangeIndex):
        # The usual index, read without slicing it.
        columns.append(list(range(index.start, index.start + index.step * rows, index.step)))
        dtypes.append(dtype_text(index.dtype))
    else:
        index = index[:rows]
        for level in range(index.nlevels):
            values = index.get_level_values(level)
            columns.append(_narrowed(_column_cells(values), values.dtype))
            dtypes.append(dtype_text(values.dtype))
    for position, dtype in enumerate(dtypes_of_columns):
        cells = None
        if from_table is not None and position not in prepared.encodings and _same_in_arrow(dtype):
            column = from_table.column(position)
            if isinstance(dtype, np.dtype) and dtype.kind == "M":
                cells = naive_datetime_texts(column.to_numpy())
            if cells is None:
                try:
                    cells = _arrow_cells(column.to_pylist(), dtype)
                except OverflowError:  # a date beyond the year 9999: pandas can show it
                    cells = None
        if cells is None:
            if head is None:
                head = original.iloc[:rows]
            cells = _column_cells(head.iloc[:, position])
        columns.append(_narrowed(cells, dtype))
        dtypes.append(dtype_text(dtype))

    return _layout(
        names=[*prepared.index_names, *prepared.names[:shown]],
        dtypes=dtypes,
        columns=columns,
        num_rows=rows,
        index_columns=index.nlevels,
        total_columns=original.shape[1],
        total_rows=len(original),
    )


def naive_datetime_texts(values: np.ndarray) -> list[str | None] | None:
    """Return the ISO text of naive datetime64 values as their Python objects write it.

    The text equals ``isoformat()`` of the datetime (seconds to microseconds) or pandas
    Timestamp (nanoseconds) that pyarrow gives for each value: a fraction of 6 digits when the
    microseconds are not 0 and of 9 when the nanoseconds are not 0. NaT becomes None. numpy
    writes the text of all values in one call, which costs less than building a Python object
    per value. Returns None for other units and for values beyond the years 1 to 9999, which
    Python's datetime cannot hold.
    """
    import numpy as np

    unit, _ = np.datetime_data(values.dtype)
    if unit not in ("s", "ms", "us", "ns"):
        return None
    present = values[~np.isnat(values)]
    first, after_last = _python_years()
    if present.size and (present.min() < first or present.max() >= after_last):
        return None
    texts = np.datetime_as_string(values, unit="ns" if unit == "ns" else "us").tolist()
    return [None if text == "NaT" else _trimmed_fraction(text) for text in texts]


def _trimmed_fraction(text: str) -> str:
    """Drop trailing groups of three zeros from a 6 or 9 digit fraction, as isoformat does."""
    if text.endswith("000") and len(text) - text.rindex(".") == 10:
        text = text[:-3]
    return text[:-7] if text.endswith(".000000") else text


@functools.cache
def _python_years() -> tuple[Any, Any]:
    """Return the first day Python's datetime can represent and the day after its last."""
    import numpy as np

    return np.datetime64("0001-01-01"), np.datetime64("10000-01-01")


def _same_in_arrow(dtype: Any) -> bool:
    """Return whether the Arrow column's Python values give the same cells as the pandas one's.

    True for numpy integers, booleans, floats (NaN becomes null in Arrow, and both give null
    cells) and datetimes, and for pandas ``str`` and tz-aware datetime columns (pyarrow gives
    pandas Timestamps for nanoseconds, so the ISO text is the same).
    """
    import numpy as np
    import pandas as pd

    if isinstance(dtype, np.dtype):
        return dtype.kind in "biufM"
    return isinstance(dtype, (pd.StringDtype, pd.DatetimeTZDtype))


def _arrow_cells(values: list[Any], dtype: Any) -> list[Any]:
    import numpy as np
    import pandas as pd

    if isinstance(dtype, np.dtype) and dtype.kind in "biu":
        return values  # Python bools and ints
    if isinstance(dtype, np.dtype) and dtype.kind == "f" and all(
        value is not None and math.isfinite(value) for value in values
    ):
        return values
    if isinstance(dtype, pd.StringDtype):
        # Arrow text is valid UTF-8, so only long strings need converting.
        return [
            value if value is None or len(value) <= MAX_STRING_LENGTH else to_json_value(value)
            for value in values
        ]
    return _cells(values)


def table_preview(table: pa.Table, names: Sequence[str], rows: int) -> dict[str, Any]:
    """Build the preview of a pyarrow Table's first ``rows`` rows (a Table has no index)."""
    head = table.slice(0, rows)
    shown = min(head.num_columns, MAX_PREVIEW_COLUMNS)
    # table.schema builds new objects on every access: read the types once.
    types = head.schema.types[:shown]
    columns = [
        _narrowed(_cells(head.column(position).to_pylist()), types[position])
        for position in range(shown)
    ]
    return _layout(
        names=list(names[:shown]),
        dtypes=[str(type_) for type_ in types],
        columns=columns,
        num_rows=head.num_rows,
        index_columns=0,
        total_columns=table.num_columns,
        total_rows=table.num_rows,
    )


def _narrowed(cells: list[Any], dtype: Any) -> list[Any]:
    """Write the cells of a float32 or float16 column with the digits its type has (0.1)."""
    narrow_type = _narrow_float_type(dtype)
    if narrow_type is None:
        return cells
    return [narrow_float(cell, narrow_type) for cell in cells]


def _narrow_float_type(dtype: Any) -> type | None:
    """Return np.float32 or np.float16 for a numpy, pandas or Arrow type of such floats."""
    import numpy as np

    if isinstance(dtype, np.dtype):
        return dtype.type if dtype.kind == "f" and dtype.itemsize < 8 else None

    import pandas as pd
    import pyarrow as pa

    if isinstance(dtype, pd.Float32Dtype):
        return np.float32
    if isinstance(dtype, pd.ArrowDtype):
        dtype = dtype.pyarrow_dtype
    if isinstance(dtype, pa.DataType) and pa.types.is_float32(dtype):
        return np.float32
    if isinstance(dtype, pa.DataType) and pa.types.is_float16(dtype):
        return np.float16
    return None


def _cells(values: list[Any]) -> list[Any]:
    return [to_json_value(value) for value in values]


def _column_cells(column: pd.Series | pd.Index) -> list[Any]:
    """Convert a column's values to cells, except numpy ints, bools and finite floats.

    ``Series.tolist`` turns those into Python numbers, which are valid JSON already.
    """
    import numpy as np

    values = column.tolist()
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biu":
        return values  # Python bools and ints
    if isinstance(dtype, np.dtype) and dtype.kind == "f" and all(map(math.isfinite, values)):
        return values
    return _cells(values)


def _layout(
    *,
    names: list[str],
    dtypes: list[str],
    columns: list[list[Any]],
    num_rows: int,
    index_columns: int,
    total_columns: int,
    total_rows: int,
) -> dict[str, Any]:
    rows = [list(row) for row in zip(*columns)] if columns else [[] for _ in range(num_rows)]
    return {
        "columns": names,
        "dtypes": dtypes,
        "rows": rows,
        "index_columns": index_columns,
        "total_columns": total_columns,
        "total_rows": total_rows,
    }


def preview_records(preview: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the preview rows as dicts keyed by column name (the form Prefect tables draw)."""
    names = preview["columns"]
    return [dict(zip(names, row)) for row in preview["rows"]]


def preview_markdown(preview: dict[str, Any]) -> str:
    """Render a preview as a markdown table; null cells are empty.

    Text has ``|`` escaped and line breaks replaced by spaces; lists and dicts are written as
    compact JSON. When columns or rows were left out, a last line states how many are shown, e.g.
    ``_20 of 1,000,000 rows and 100 of 250 columns shown._``. A preview without columns renders
    as an empty string.
    """
    names = preview["columns"]
    if not names:
        return ""
    lines = [
        _markdown_row(names),
        "|" + "|".join(" --- " for _ in names) + "|",
        *(_markdown_row([_markdown_cell(cell) for cell in row]) for row in preview["rows"]),
    ]
    note = _shown_note(preview)
    if note:
        lines.extend(["", note])
    return "\n".join(lines)


def _markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_escape(cell) for cell in cells) + " |"


def _markdown_cell(cell: Any) -> str:
    if cell is None:
        return ""
    if isinstance(cell, str):
        return cell
    return json.dumps(cell, ensure_ascii=False, allow_nan=False)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r\n", " ").replace("\n", " ")


def _shown_note(preview: dict[str, Any]) -> str:
    shown_rows = len(preview["rows"])
    shown_columns = len(preview["columns"]) - preview["index_columns"]
    parts = []
    if shown_rows < preview["total_rows"]:
        parts.append(f"{shown_rows:,} of {preview['total_rows']:,} rows")
    if shown_columns < preview["total_columns"]:
        parts.append(f"{shown_columns:,} of {preview['total_columns']:,} columns")
    return f"_{' and '.join(parts)} shown._" if parts else ""
