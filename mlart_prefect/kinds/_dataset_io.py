"""Writing dataset bodies to local files with their sha256, and reading Parquet and Arrow CSV."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mlart_prefect._storage import HASH_CHUNK, sha256_file
from mlart_prefect._threads import HELPERS
from mlart_prefect.errors import UnsupportedValueError, cause_text
from mlart_prefect.kinds.base import BodyPayload

if TYPE_CHECKING:
    import pyarrow as pa

_T = TypeVar("_T")

PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"



class HashingWriter(io.RawIOBase):
    """A write-only binary file that updates a sha256 digest and a size with every write.

    Used for text bodies written from Python (CSV), so that the file is not read a second time.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._file = open(path, "xb")  # noqa: SIM115 - closed in close()
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.digest.update(view)
        written = self._file.write(view)
        self.size += written
        return written

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        super().close()


@contextmanager
def hashed_body(
    path: Path, name: str, media_type: str
) -> Iterator[tuple[HashingWriter, list[BodyPayload]]]:
    """Open ``path`` for writing and, once the block ends, put its BodyPayload in the list.

    Usage: ``with hashed_body(path, "data.parquet", media) as (file, result): write(file)``;
    ``result[0]`` is then the payload with the sha256 and size computed while writing.
    """
    result: list[BodyPayload] = []
    writer = HashingWriter(path)
    try:
        yield writer, result
    finally:
        writer.close()
    result.append(
        BodyPayload(name=name, media_type=media_type, path=path,
                    sha256=writer.digest.hexdigest(), size=writer.size)
    )


def write_parquet(table: pa.Table, path: Path, name: str) -> BodyPayload:
    """Write a table as Parquet: snappy compression, Arrow schema kept, dictionary encoding
    where it pays (``dictionary_columns``).

    The file is written by a native pyarrow stream and hashed right after, from the page cache.
    On 2 shared cores, with statistics running on a second thread, this took 315 ms for the
    1,000,000-row benchmark against 330 ms for hashing in a Python file wrapper during the write
    and 349 ms for a third thread hashing the file as it grows (medians of 9 saves in one warm
    process; the plain write took 256 ms).

    Raises:
        UnsupportedValueError: Parquet cannot store a column (for example a struct without
            fields); nothing is kept.
    """
    _write_parquet_checked(table, path)
    sha256, size = sha256_file(path)
    return BodyPayload(
        name=name, media_type=PARQUET_MEDIA_TYPE, path=path, sha256=sha256, size=size
    )


def parquet_encoder(table: pa.Table) -> Callable[[], pa.Buffer]:
    """Build a Parquet writer of ``table`` into memory and return the call that encodes it.

    The returned call gives the same bytes as ``write_parquet`` writes. Building the writer is
    Python work and happens here. The call itself is native pyarrow code that needs the GIL
    only to start and to return, so a helper thread can run it while this thread computes the
    statistics. A helper running ``write_parquet`` contends for the GIL more often: the
    writer's setup, the file's opening and the hash are Python steps between native ones.

    Raises:
        UnsupportedValueError: As ``write_parquet``, here or from the returned call.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    with _parquet_errors():
        writer = pq.ParquetWriter(
            sink, table.schema, use_dictionary=dictionary_columns(table.schema)
        )

    def encode() -> pa.Buffer:
        with _parquet_errors(), writer:
            writer.write_table(table)
        return sink.getvalue()

    return encode


def write_buffer(data: pa.Buffer, path: Path, name: str, media_type: str) -> BodyPayload:
    """Hash a body held in memory and write it to ``path`` in one call."""
    sha256 = hashlib.sha256(data).hexdigest()
    with open(path, "wb") as file:
        file.write(data)
    return BodyPayload(name=name, media_type=media_type, path=path, sha256=sha256, size=data.size)


def write_parquet_beside(
    table: pa.Table, path: Path, name: str, work: Callable[[], _T]
) -> tuple[BodyPayload, _T]:
    """Write a table as Parquet on this thread while a helper thread runs ``work``, then hashes.

    The file is the same as ``write_parquet`` writes. Once ``work`` is done, the helper
    hashes the part of the file already written and follows the writer to the end, so the
    sha256 overlaps the rest of the write instead of following it.

    Raises:
        UnsupportedValueError: As ``write_parquet``; both threads have ended when this raises.
        Exception: Whatever ``work`` raised.
    """
    finished = threading.Event()
    outcome: dict[str, Any] = {}

    def run_work() -> None:
        outcome["result"] = work()
        outcome["hash"] = _sha256_growing_file(path, finished)

    wait = HELPERS.start(run_work)
    try:
        _write_parquet_checked(table, path)
    except BaseException:
        finished.set()
        with contextlib.suppress(Exception):
            wait()  # the write's error is the one to report
        raise
    finished.set()
    wait()
    sha256, size = outcome["hash"]
    body = BodyPayload(
        name=name, media_type=PARQUET_MEDIA_TYPE, path=path, sha256=sha256, size=size
    )
    return body, outcome["result"]


_GROWING_POLL_SECONDS = 0.002


def _sha256_growing_file(path: Path, finished: threading.Event) -> tuple[str, int]:
    """Hash a file that another thread is appending to, until that thread has finished.

    The writer only appends, so bytes below the file's current size are final. Returns a
    meaningless digest when the writer failed, and the caller then raises its error instead.

    NOTE: this relies on a local file system that grows the size only after copying the bytes
    it covers, as Linux page-cache writes do. The work folder is always local.
    """
    digest = hashlib.sha256()
    size = 0
    while not finished.is_set() and not os.path.exists(path):
        time.sleep(_GROWING_POLL_SECONDS)
    if not os.path.exists(path):
        return digest.hexdigest(), size
    with open(path, "rb", buffering=0) as file:
        while True:
            done = finished.is_set()
            while chunk := file.read(HASH_CHUNK):
                digest.update(chunk)
                size += len(chunk)
            if done:
                return digest.hexdigest(), size
            finished.wait(_GROWING_POLL_SECONDS)


def _write_parquet_checked(table: pa.Table, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # A native output stream: the writing thread never needs the GIL for it.
    with _parquet_errors(), pa.OSFile(str(path), mode="wb") as sink:
        pq.write_table(table, sink, use_dictionary=dictionary_columns(table.schema))


@contextmanager
def _parquet_errors() -> Iterator[None]:
    """Raise pyarrow's rejection of a column (an empty struct, say) as UnsupportedValueError."""
    try:
        yield
    except NotImplementedError as exc:  # ArrowNotImplementedError
        raise UnsupportedValueError(
            f"Cannot write the dataset as Parquet: {cause_text(exc)}. Convert the column it "
            "names to a supported type first."
        ) from exc


def dictionary_columns(schema: pa.Schema) -> bool | list[str]:
    """Name the columns worth dictionary encoding: all but floats, timestamps and durations.

    Values of those types seldom repeat, so pyarrow builds a dictionary only to drop it for
    plain encoding. Leaving them out made the Parquet body of the frame that
    ``python -m benchmarks.bench_kinds`` uses faster to write and smaller. At 1,000 rows it took
    0.39 against 0.51 ms and 64 against 71 kB, at 1,000,000 rows 220 against 257 ms and 54.6
    against 55.9 MB (one process). Integers, text, dates, booleans and categoricals keep it.

    Returns True (every column, pyarrow's default) for a schema with nested columns or a name
    containing ".", because pyarrow matches these names against the paths of leaf columns.
    """
    import pyarrow as pa

    if any(pa.types.is_nested(field.type) or "." in field.name for field in schema):
        return True
    continuous = (pa.types.is_floating, pa.types.is_timestamp, pa.types.is_duration)
    return [
        field.name for field in schema
        if not any(is_type(field.type) for is_type in continuous)
    ]


def read_parquet(data: bytes) -> pa.Table:
    """Read a Parquet body into an Arrow table with the Arrow types it was written with."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet_file = pq.ParquetFile(pa.BufferReader(data))
    table = parquet_file.read()
    stored = _stored_arrow_schema(parquet_file.metadata.metadata or {})
    if stored is not None and len(stored) == table.num_columns:
        table = _restore_types(table, stored)
    return table


def _stored_arrow_schema(metadata: dict[bytes, bytes]) -> pa.Schema | None:
    """Return the Arrow schema pyarrow keeps in a Parquet file's metadata, if any."""
    import pyarrow as pa

    text = metadata.get(b"ARROW:schema")
    if text is None:
        return None
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def _restore_types(table: pa.Table, stored: pa.Schema) -> pa.Table:
    """Give columns back the Arrow types they were written with, where Parquet changed them.

    pyarrow (26) reads back only string and binary dictionary columns as dictionaries; others,
    such as pandas categoricals of integers, come back as plain values and are encoded again,
    with values in order of first appearance and without unused ones. Parquet also has no
    date64, which loads as date32 and is cast back.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    for position, field in enumerate(stored):
        current = table.schema.field(position)
        if current.type.equals(field.type):
            continue
        column = table.column(position)
        if pa.types.is_dictionary(field.type) and not pa.types.is_dictionary(current.type):
            column = pc.dictionary_encode(column)
        try:
            column = column.cast(field.type)
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
            continue
        table = table.set_column(position, current.with_type(field.type), column)
    return table


def schema_text(schema: pa.Schema) -> str:
    """Serialize an Arrow schema (types, nullability, metadata) as base64 text for the spec."""
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def schema_from_text(text: str) -> pa.Schema:
    """Read back a schema written by ``schema_text``."""
    import pyarrow as pa

    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def write_table_csv(table: pa.Table, path: Path, name: str) -> BodyPayload:
    """Write a pyarrow Table as CSV with a header row.

    Raises:
        UnsupportedValueError: A column has a type CSV cannot hold (lists, structs, maps...).
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    with hashed_body(path, name, CSV_MEDIA_TYPE) as (file, result):
        try:
            pcsv.write_csv(table, file)
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise UnsupportedValueError(
                f"Cannot write this table as CSV: {cause_text(exc)}. Store it as Parquet (the "
                "default format) or convert nested columns to text first."
            ) from exc
    return result[0]


def read_table_csv(data: bytes, schema: pa.Schema) -> pa.Table:
    """Read a CSV body written by ``write_table_csv`` back with its stored schema.

    Empty fields load as nulls, so empty strings do not survive a CSV round trip.
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    if not data:
        return schema.empty_table()
    options = pcsv.ConvertOptions(column_types=schema, strings_can_be_null=True)
    read = pcsv.read_csv(pa.BufferReader(data), convert_options=options)
    return read.cast(schema)
