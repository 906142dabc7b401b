"""The dataset kind: pandas DataFrames and Series and pyarrow Tables stored as Parquet or CSV.

The spec of a dataset version contains (all strict JSON)::

    python_type   "pandas.DataFrame", "pandas.Series" or "pyarrow.Table"
    format        "parquet" or "csv"; body: the body's file name; size: its size in bytes
    num_rows, num_columns   counts of rows and data columns (index levels not counted)
    schema        one entry per data column: name (unique readable name), label (the original
                  label, lists for MultiIndex labels), dtype (pandas), arrow_type, nullable,
                  and encoding="json" / converted="utc" when the column was changed for storage
    index         kind "range" (start, stop, step) or "levels" (names, labels, dtypes,
                  arrow_types, freq); kind "none" for a pyarrow Table
    preview       the first rows, see ``mlart_prefect.kinds._dataset_preview``; None when disabled
    stats         per-column statistics, see ``mlart_prefect.kinds._dataset_stats``; None when
                  skipped, with the reason in ``stats_skipped``
    warnings      what was changed or lost on the way (also in ``Encoded.warnings``)

pandas and pyarrow are imported at the top of this module. The kind registry imports it on first
use, not ``import mlart_prefect``, so the CLI's fast paths stay fast.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from mlart_prefect._threads import HELPERS
from mlart_prefect.errors import UnsupportedValueError
from mlart_prefect.kinds import register_kind
from mlart_prefect.kinds._dataset_csv import (
    csv_details,
    read_frame_csv,
    write_frame_csv,
)
from mlart_prefect.kinds._dataset_frames import (
    PreparedFrame,
    column_schema,
    describe_index,
    frame_to_arrow,
    prepare_frame,
    restore_frame,
)
from mlart_prefect.kinds._dataset_io import (
    PARQUET_MEDIA_TYPE,
    parquet_encoder,
    read_parquet,
    read_table_csv,
    schema_from_text,
    schema_text,
    write_buffer,
    write_parquet,
    write_parquet_beside,
    write_table_csv,
)
from mlart_prefect.kinds._dataset_labels import json_label, unique_names
from mlart_prefect.kinds._dataset_preview import (
    frame_preview,
    preview_markdown,
    preview_records,
    table_preview,
)
from mlart_prefect.kinds._dataset_stats import compute_statistics
from mlart_prefect.kinds.base import (
    BodyPayload,
    BodyReader,
    EncodeContext,
    Encoded,
    KindHandler,
)
from mlart_prefect.manifest import validate_name

if TYPE_CHECKING:
    from mlart_prefect.manifest import Manifest

__all__ = ["DatasetHandler", "preview_markdown", "preview_records"]

logger = logging.getLogger(__name__)

FORMATS = ("parquet", "csv")
_SUFFIX_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
_DATAFRAME = "pandas.DataFrame"
_SERIES = "pandas.Series"
_TABLE = "pyarrow.Table"
_UNNAMED_SERIES_COLUMN = "value"

LARGE_FRAME_CELLS = 100_000
"""Rows x columns from which a dataset is written and summarised as a large one.

From this size a CSV body is written while a helper thread computes the statistics, and a
Parquet body is streamed to its file and hashed as it grows (``write_parquet_beside``); below
it a Parquet body is encoded in memory. Writing CSV is Python work, like most of the
statistics of small frames. Measured by encoding the benchmark schema (10 columns) on 2 shared
cores, a statistics thread beside a CSV write cost time at 1,000 rows (6.5 against 6.0 ms per
encode) and saved time from 10,000 rows on (58 against 80 ms at 100,000 rows).
"""


@dataclass(frozen=True)
class DatasetOptions:
    """Checked options of one dataset save."""

    format: str
    body_name: str
    preview_rows: int
    stats: bool | None


class DatasetHandler(KindHandler):
    """Store pandas DataFrames and Series and pyarrow Tables as Parquet (default) or CSV.

    Loading a Parquet body gives back the same type with the same index, column labels, dtypes
    and values. The exceptions are the changes listed in the spec's ``warnings`` (mixed time
    zones converted to UTC) and missing values of object columns, which load as None. What a CSV
    body keeps is listed in ``mlart_prefect.kinds._dataset_csv``. The spec records the schema,
    counts, a preview of the first rows and statistics over all rows (see the module docstring
    for the layout).

    Example:
        ```python
        import pandas as pd
        from prefect import flow, task

        import mlart_prefect as mlart

        @task
        def prepare(df):
            mlart.save("iris", df, preview=10, local_path="data/iris.csv")

        @flow
        def pipeline(path: str):
            prepare(pd.read_csv(path))
        ```
    """

    kind = "dataset"

    def encode(
        self,
        value: Any,
        ctx: EncodeContext,
        *,
        format: str | None = None,
        preview: int | None = None,
        stats: bool | None = None,
        local_path: str | os.PathLike[str] | None = None,
    ) -> Encoded:
        """Write a DataFrame, Series or Table into ``ctx.workdir`` and describe it.

        Args:
            value: A pandas DataFrame or Series, or a pyarrow Table.
            ctx: Where the value is being saved; the body is written into ``ctx.workdir``.
            format: "parquet" or "csv" (default: from ``local_path``'s suffix, else parquet).
            preview: Rows kept in the preview (default: setting ``preview_rows``, 20); 0 keeps
                no preview.
            stats: True computes statistics, False skips them; None (default) computes them
                when rows x columns is at most the setting ``stats_max_cells``.
            local_path: File name of the body, e.g. "data/iris.csv" stores body "iris.csv";
                a ".csv" suffix selects CSV and ".parquet" Parquet. Default: "data.parquet" or
                "data.csv".

        Raises:
            UnsupportedValueError: The value is not a DataFrame, Series or Table, an option is
                invalid, or a column cannot be stored (the message names it). Nothing is
                written to the store then.
        """
        options = _check_options(format=format, preview=preview, stats=stats, local_path=local_path)
        if _cells(value) >= LARGE_FRAME_CELLS:
            _release_arrow_memory()
        if isinstance(value, pa.Table):
            return _encode_table(value, ctx, options)
        if isinstance(value, pd.Series):
            return _encode_series(value, ctx, options)
        if isinstance(value, pd.DataFrame):
            return _encode_frame(value, ctx, options, python_type=_DATAFRAME)
        raise UnsupportedValueError(
            f"Cannot store a {type(value).__module__}.{type(value).__qualname__} as a dataset: "
            "expected a pandas DataFrame or Series or a pyarrow Table."
        )

    def decode(self, manifest: Manifest, reader: BodyReader) -> Any:
        """Load a stored dataset back as the type it was saved from."""
        spec = manifest.spec
        data = reader.read_bytes(spec.get("body") or manifest.primary)
        python_type = spec["python_type"]
        if python_type == _TABLE:
            if spec["format"] == "csv":
                return read_table_csv(data, schema_from_text(spec["arrow_schema"]))
            return read_parquet(data)

        if spec["format"] == "csv":
            frame = read_frame_csv(data, spec)
        else:
            frame = restore_frame(read_parquet(data), spec)
        if python_type == _SERIES:
            series = frame.iloc[:, 0]
            if spec["series"]["name_is_none"]:
                series.name = None
            return series
        return frame


def _cells(value: Any) -> int:
    if isinstance(value, pa.Table):
        return value.num_rows * value.num_columns
    if isinstance(value, (pd.DataFrame, pd.Series)):
        return value.size
    return 0


def _release_arrow_memory() -> None:
    """Ask pyarrow's default memory pool to return its unused memory to the system.

    The pool (mimalloc in pyarrow's wheels) keeps pages from earlier allocations, and after
    many small writes it serves a large one partly from new pages. Measured after 200 saves of
    a 1,000-row frame (three runs each), the save of a 1,000,000-row frame raised the process's
    peak by 95 to 104 MiB without this call and by 62 to 70 MiB with it. That is about as much
    as after a single small save. Plain ``pq.write_table`` shows it too: after 200 writes of
    the small frame, a large write raised the peak by 64 MiB instead of 32. The call took
    0.17 ms.
    """
    pa.default_memory_pool().release_unused()


def _check_options(
    *,
    format: str | None,
    preview: int | None,
    stats: bool | None,
    local_path: str | os.PathLike[str] | None,
) -> DatasetOptions:
    from mlart_prefect.settings import get_settings

    if format is not None and format not in FORMATS:
        raise UnsupportedValueError(
            f"Invalid dataset format {format!r}: expected one of {', '.join(FORMATS)}."
        )
    body_name = None
    if local_path is not None:
        body_name, path_format = _body_name(local_path)
        if format is not None and format != path_format:
            raise UnsupportedValueError(
                f"local_path {os.fspath(local_path)!r} names a {path_format} file but "
                f"format={format!r} was given; make them agree or leave one out."
            )
        format = path_format
    format = format or "parquet"

    if preview is None:
        preview = get_settings().preview_rows
    if isinstance(preview, bool) or not isinstance(preview, int) or preview < 0:
        raise UnsupportedValueError(
            f"Invalid preview {preview!r}: expected a number of rows >= 0 (0 disables it)."
        )
    if stats is not None and not isinstance(stats, bool):
        raise UnsupportedValueError(f"Invalid stats {stats!r}: expected True, False or None.")
    return DatasetOptions(format, body_name or f"data.{format}", preview, stats)


def _body_name(local_path: str | os.PathLike[str]) -> tuple[str, str]:
    name = PurePath(os.fspath(local_path)).name
    suffix = PurePath(name).suffix.lower()
    if suffix not in _SUFFIX_FORMATS:
        raise UnsupportedValueError(
            f"Invalid local_path {os.fspath(local_path)!r}: a dataset body must end in .parquet, "
            ".pq or .csv."
        )
    return validate_name(name, "body name"), _SUFFIX_FORMATS[suffix]


def _wants_stats(
    options: DatasetOptions, num_rows: int, num_columns: int
) -> tuple[bool, str | None]:
    from mlart_prefect.settings import get_settings

    if options.stats is not None:
        return options.stats, None if options.stats else "disabled by stats=False"
    limit = get_settings().stats_max_cells
    cells = num_rows * num_columns
    if cells <= limit:
        return True, None
    return False, (
        f"{num_rows:,} rows x {num_columns:,} columns = {cells:,} cells exceed stats_max_cells "
        f"({limit:,}); pass stats=True to compute them anyway"
    )


def _write_csv_with_stats(
    write: Callable[[], BodyPayload],
    columns: list[tuple[str, pa.ChunkedArray]],
    num_rows: int,
    stats_enabled: bool,
) -> tuple[BodyPayload, dict[str, Any] | None]:
    """Write a CSV body and compute statistics, beside each other for large frames.

    Writing CSV is Python work, like most of the statistics of small frames, so below
    ``LARGE_FRAME_CELLS`` one follows the other.
    """
    if not stats_enabled:
        return write(), None
    if num_rows * len(columns) < LARGE_FRAME_CELLS:
        return write(), compute_statistics(columns, num_rows)
    found: list[dict[str, Any]] = []
    wait = HELPERS.start(lambda: found.append(compute_statistics(columns, num_rows)))
    try:
        body = write()
    except BaseException:
        with contextlib.suppress(Exception):
            wait()  # the write's error is the one to report
        raise
    wait()
    return body, found[0]


def _write_parquet_with_stats(
    table: pa.Table,
    path: Path,
    name: str,
    columns: list[tuple[str, pa.ChunkedArray]],
    stats_enabled: bool,
) -> tuple[BodyPayload, dict[str, Any] | None]:
    """Write a Parquet body and compute statistics, the native encoding beside the statistics.

    Below ``LARGE_FRAME_CELLS`` the body is encoded in memory on a kept helper thread while
    this thread computes the statistics, then hashed and written in one call. From that size
    it is written to the file on this thread and the helper computes the statistics, then
    hashes the file as it grows (``write_parquet_beside``).

    Raises:
        Exception: The encoding's error, else the statistics' error; both have ended then.
    """
    num_rows = table.num_rows
    if num_rows * len(columns) >= LARGE_FRAME_CELLS:
        if not stats_enabled:
            return write_parquet(table, path, name), None
        return write_parquet_beside(
            table, path, name, lambda: compute_statistics(columns, num_rows)
        )
    encode = parquet_encoder(table)
    if not stats_enabled:
        return write_buffer(encode(), path, name, PARQUET_MEDIA_TYPE), None
    encoded: list[pa.Buffer] = []
    wait = HELPERS.start(lambda: encoded.append(encode()))
    try:
        statistics = compute_statistics(columns, num_rows)
    except BaseException:
        wait()  # an error of the encoding is the one to report
        raise
    wait()
    return write_buffer(encoded[0], path, name, PARQUET_MEDIA_TYPE), statistics


def _encode_series(series: pd.Series, ctx: EncodeContext, options: DatasetOptions) -> Encoded:
    name_is_none = series.name is None
    frame = series.to_frame(_UNNAMED_SERIES_COLUMN if name_is_none else series.name)
    encoded = _encode_frame(frame, ctx, options, python_type=_SERIES)
    encoded.spec["series"] = {"name": json_label(series.name), "name_is_none": name_is_none}
    return encoded


def _encode_frame(
    frame: pd.DataFrame, ctx: EncodeContext, options: DatasetOptions, *, python_type: str
) -> Encoded:
    prepared = prepare_frame(frame)
    table = frame_to_arrow(prepared)
    warnings = list(prepared.warnings)
    extra: dict[str, Any] = {}
    if options.format == "csv":
        extra, csv_warnings = csv_details(prepared)
        warnings.extend(csv_warnings)

    num_rows, num_columns = frame.shape
    stats_enabled, skipped = _wants_stats(options, num_rows, num_columns)
    columns = [(name, table.column(i)) for i, name in enumerate(prepared.names)]
    path = ctx.workdir / options.body_name
    logger.debug("Writing dataset %s/%s as %s to %s", ctx.project, ctx.key, options.format, path)
    if options.format == "csv":
        body, statistics = _write_csv_with_stats(
            lambda: write_frame_csv(prepared, path, options.body_name), columns, num_rows,
            stats_enabled,
        )
    else:
        body, statistics = _write_parquet_with_stats(
            table, path, options.body_name, columns, stats_enabled
        )

    spec = _base_spec(python_type, options, body, num_rows, num_columns)
    spec["schema"] = column_schema(prepared, table, text_categories=options.format == "csv")
    spec["index"] = describe_index(frame.index, prepared.index_names, table)
    if prepared.renamed is not None:
        spec["renamed_columns"] = prepared.renamed
    spec.update(extra)
    spec["preview"] = _frame_preview(prepared, options.preview_rows, table)
    _add_stats(spec, statistics, skipped)
    spec["warnings"] = warnings
    return Encoded(bodies=[body], spec=spec, primary=body.name, warnings=warnings)


def _frame_preview(
    prepared: PreparedFrame, rows: int, table: pa.Table | None
) -> dict[str, Any] | None:
    return frame_preview(prepared, rows, table) if rows else None


def _encode_table(table: pa.Table, ctx: EncodeContext, options: DatasetOptions) -> Encoded:
    names = unique_names(table.column_names)
    stats_enabled, skipped = _wants_stats(options, table.num_rows, table.num_columns)
    columns = [(name, table.column(i)) for i, name in enumerate(names)]
    path = ctx.workdir / options.body_name
    if options.format == "csv":
        body, statistics = _write_csv_with_stats(
            lambda: write_table_csv(table, path, options.body_name), columns, table.num_rows,
            stats_enabled,
        )
    else:
        body, statistics = _write_parquet_with_stats(
            table, path, options.body_name, columns, stats_enabled
        )

    spec = _base_spec(_TABLE, options, body, table.num_rows, table.num_columns)
    spec["schema"] = _table_schema(table, names)
    spec["index"] = {"kind": "none"}
    if options.format == "csv":
        spec["arrow_schema"] = schema_text(table.schema)
    spec["preview"] = None
    if options.preview_rows:
        spec["preview"] = table_preview(table, names, options.preview_rows)
    _add_stats(spec, statistics, skipped)
    spec["warnings"] = []
    return Encoded(bodies=[body], spec=spec, primary=body.name)


def _table_schema(table: pa.Table, names: list[str]) -> list[dict[str, Any]]:
    try:
        dtypes = [str(dtype) for dtype in table.schema.empty_table().to_pandas().dtypes]
    except (pa.ArrowException, ValueError, TypeError, NotImplementedError):
        dtypes = [None] * table.num_columns
    return [
        {"name": name, "label": field.name, "dtype": dtype, "arrow_type": str(field.type),
         "nullable": field.nullable}
        for name, field, dtype in zip(names, table.schema, dtypes)
    ]


def _base_spec(
    python_type: str, options: DatasetOptions, body: BodyPayload, num_rows: int, num_columns: int
) -> dict[str, Any]:
    return {
        "python_type": python_type,
        "format": options.format,
        "body": body.name,
        "size": body.size,
        "num_rows": num_rows,
        "num_columns": num_columns,
    }


def _add_stats(
    spec: dict[str, Any], statistics: dict[str, Any] | None, skipped: str | None
) -> None:
    spec["stats"] = statistics
    if skipped is not None:
        spec["stats_skipped"] = skipped


_HANDLER = DatasetHandler()
# pandas 3 reports its classes as pandas.DataFrame / pandas.Series; pandas 2 as
# pandas.core.frame.DataFrame / pandas.core.series.Series. Both names are registered.
for _type_name in (
    "pandas.DataFrame",
    "pandas.core.frame.DataFrame",
    "pandas.Series",
    "pandas.core.series.Series",
    "pyarrow.lib.Table",
):
    register_kind(_type_name, _HANDLER, first=False)
