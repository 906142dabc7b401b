"""Per-column statistics of a dataset over all rows, computed with pyarrow.compute and numpy.

Layout of the result (strict JSON, plain Python types)::

    {"num_rows": 1000, "histogram_bins": 20, "top_values": 10,
     "columns": {"<name>": {...}, ...}}

Each column entry has ``kind``, ``type`` (the Arrow type), ``count`` (values present) and
``nulls`` (missing values), then:

- ``numeric`` and ``boolean`` columns: ``nan_count``, ``posinf_count``, ``neginf_count``,
  ``mean``, ``std`` (ddof=1), ``min``, ``25%``, ``50%``, ``75%``, ``max`` and ``histogram``
  (``{"edges": [21 numbers], "counts": [20 ints]}`` over the finite values, the inner edges
  rounded to ``EDGE_DIGITS`` significant digits of the largest one). NaN is missing: it
  counts in ``nan_count``, not in ``count``, and is skipped everywhere else. Infinities count as
  values, so ``min``/``max``/``mean`` may be ``"inf"``/``"-inf"``; they are left out of the
  histogram and counted in ``posinf_count``/``neginf_count``. Booleans are counted as 0 and 1
  and also get ``top``. The numbers of float32 and float16 columns keep the digits of their
  type, as numpy prints them (0.1, not 0.10000000149011612).
- ``datetime``, ``date`` and ``timedelta`` columns: the same keys with ISO 8601 (or timedelta)
  text for values and histogram edges, and no NaN or infinity counts.
- ``text`` (string), ``categorical`` (pandas categoricals, Arrow dictionaries) and ``other``
  columns (binary, JSON-encoded, nested, all-null): ``distinct`` and ``top``, the
  ``top_values`` most frequent values as ``[{"value": v, "count": n}, ...]``; nested types that
  Arrow cannot count have ``distinct`` and ``top`` set to None.

Missing statistics (no values, a standard deviation of one value) are null.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlart_prefect.jsonsafe import narrow_float, to_json_value
from mlart_prefect.kinds._dataset_distribution import (
    BATCH_MAX_VALUES,
    Distribution,
    describe_distribution,
    describe_distributions,
)

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

logger = logging.getLogger(__name__)

HISTOGRAM_BINS = 20
TOP_VALUES = 10
QUANTILES = (0.25, 0.5, 0.75)
_QUANTILE_KEYS = ("25%", "50%", "75%")


def compute_statistics(
    columns: Sequence[tuple[str, pa.ChunkedArray]], num_rows: int
) -> dict[str, Any]:
    """Compute the statistics of every column, in order.

    Args:
        columns: Pairs of unique column name and Arrow data.
        num_rows: Number of rows of the dataset.
    """
    batched = _batched_numeric_statistics(columns)
    return {
        "num_rows": num_rows,
        "histogram_bins": HISTOGRAM_BINS,
        "top_values": TOP_VALUES,
        "columns": {
            name: batched[position] if position in batched else column_statistics(data)
            for position, (name, data) in enumerate(columns)
        },
    }


FLOAT64_EXACT = 2**53
"""Integers up to this magnitude are exact in float64, so they are summarised as floats."""


@dataclass
class _Member:
    """A column taken by the batch: its position, data and values as one numpy row."""

    position: int
    data: pa.ChunkedArray
    values: np.ndarray
    integer: bool
    base: int = 0
    """Temporal columns: their minimum, subtracted from ``values``."""


def _batched_numeric_statistics(
    columns: Sequence[tuple[str, pa.ChunkedArray]],
) -> dict[int, dict[str, Any]]:
    """Compute the statistics of short numeric and temporal columns together, by position.

    Columns without nulls, NaN or infinities and with at most ``BATCH_MAX_VALUES`` rows go
    through ``describe_distributions`` in groups. Float64 columns, integer columns within
    +-2**53 and temporal columns whose span is within 2**53 units form one float64 group. Other
    types form one group per Arrow type. The result of each is equal to what ``column_statistics``
    gives. Columns left out (other types, single columns of a type, rows the batch declines, or
    all when the batch fails) are computed one by one.
    """
    import numpy as np
    import pyarrow as pa

    results: dict[int, dict[str, Any]] = {}
    try:
        for members in _numeric_groups(columns):
            matrix = np.stack([member.values for member in members])
            distributions = describe_distributions(
                matrix, quantiles=QUANTILES, bins=HISTOGRAM_BINS,
                integer_rows=[member.integer for member in members],
            )
            moments = _row_moments(matrix)
            numeric = [
                index for index, (member, distribution) in enumerate(zip(members, distributions))
                if distribution is not None and not _is_temporal(member.data.type)
            ]
            # The edges of all numeric rows are rounded in one numpy pass.
            edges = iter(_readable_edges([distributions[index] for index in numeric]))
            for index, member in enumerate(members):
                distribution = distributions[index]
                if distribution is None:
                    continue
                type_ = member.data.type
                mean, std = moments[index]
                if _is_temporal(type_):
                    results[member.position] = _temporal_result(
                        type_, _counts(member.data), distribution, member.base, mean, std
                    )
                    continue
                result: dict[str, Any] = {"kind": "numeric", "type": str(type_),
                                          **_counts(member.data), "nan_count": 0,
                                          "posinf_count": 0, "neginf_count": 0}
                results[member.position] = _add_distribution(
                    result, distribution, mean, std, edges=next(edges)
                )
    except (pa.ArrowException, ValueError, TypeError, NotImplementedError) as exc:
        logger.debug("Batched statistics failed, computing them column by column: %s", exc)
        return {}
    return results


def _numeric_groups(columns: Sequence[tuple[str, pa.ChunkedArray]]) -> list[list[_Member]]:
    """Group the columns that ``_batched_numeric_statistics`` takes; groups of one are left out."""
    import numpy as np

    groups: dict[str, list[_Member]] = {}
    for position, (_, data) in enumerate(columns):
        type_ = data.type
        taken = _batch_type(type_)
        if taken is None or data.null_count or not 0 < len(data) <= BATCH_MAX_VALUES:
            continue
        if taken == "temporal":
            integers = _temporal_integers(data)
            base = int(integers.min())
            # The span in Python ints: in int64 it can overflow (years 1700 to 2250 in ns).
            if int(integers.max()) - base > FLOAT64_EXACT:
                continue
            offsets = integers.astype(np.int64, copy=False) - np.int64(base)
            member = _Member(position, data, offsets.astype(np.float64), True, base)
            groups.setdefault("float64", []).append(member)
            continue
        values = _numpy_values(data)
        if values.dtype.kind == "f":
            if not np.isfinite(values).all():
                continue
            group = "float64" if values.dtype == np.float64 else str(type_)
        elif -FLOAT64_EXACT <= values.min() and values.max() <= FLOAT64_EXACT:
            values, group = values.astype(np.float64), "float64"
        else:
            group = str(type_)
        integer = taken == "integer"
        groups.setdefault(group, []).append(_Member(position, data, values, integer))
    return [members for members in groups.values() if len(members) > 1]


@functools.lru_cache(maxsize=256)
def _batch_type(type_: pa.DataType) -> str | None:
    """Return how the batch takes a column of this Arrow type.

    It returns "temporal", "integer", "float", or None for types the batch leaves out. The result
    is cached because frames repeat a few types.
    """
    import pyarrow as pa

    if _is_temporal(type_):
        return "temporal"
    if pa.types.is_integer(type_):
        return "integer"
    if pa.types.is_float32(type_) or pa.types.is_float64(type_):
        return "float"
    return None


def _row_moments(matrix: np.ndarray) -> list[tuple[float | None, float | None]]:
    """Return the mean and the standard deviation (ddof=1) of each row, in float64.

    The steps are those of np.mean and np.std (pairwise sums along the row, then the squared
    deviations summed), so the numbers are theirs. Written out, the mean is computed once.
    """
    import numpy as np

    values = matrix.astype(np.float64, copy=False)
    rows, size = values.shape
    if size == 0:
        return [(None, None)] * rows
    with np.errstate(invalid="ignore", over="ignore"):
        means = values.sum(axis=1, keepdims=True) / size
        if size == 1:
            return [(mean, None) for mean in means[:, 0].tolist()]
        deviations = values - means
        np.multiply(deviations, deviations, out=deviations)
        stds = np.sqrt(deviations.sum(axis=1) / (size - 1))
    return list(zip(means[:, 0].tolist(), stds.tolist()))


def column_statistics(data: pa.ChunkedArray) -> dict[str, Any]:
    """Compute the statistics of one column, choosing numeric, temporal or frequency statistics.

    A column whose type pyarrow cannot compute on gets only its counts and an ``error`` entry,
    so statistics never make a save fail.
    """
    import pyarrow as pa

    try:
        return _typed_statistics(data)
    except (pa.ArrowException, ValueError, TypeError, NotImplementedError, OverflowError) as exc:
        logger.warning("Statistics of a %s column failed: %s", data.type, exc)
        return {"kind": "other", "type": str(data.type), **_counts(data), "error": str(exc)}


def _typed_statistics(data: pa.ChunkedArray) -> dict[str, Any]:
    import pyarrow as pa

    type_ = data.type
    if pa.types.is_dictionary(type_):
        return _frequency_statistics(data, "categorical")
    if pa.types.is_null(type_):
        return _frequency_statistics(data, "other")
    if pa.types.is_boolean(type_):
        result = _numeric_statistics(data.cast(pa.uint8()), "boolean", type_)
        result["top"] = _frequency_statistics(data, "boolean")["top"]
        return result
    if pa.types.is_float16(type_):
        # pyarrow 26 has no mean or stddev kernels for half floats.
        return _numeric_statistics(data.cast(pa.float32()), "numeric", type_)
    if pa.types.is_integer(type_) or pa.types.is_floating(type_):
        return _numeric_statistics(data, "numeric", type_)
    if pa.types.is_decimal(type_):
        return _numeric_statistics(data.cast(pa.float64()), "numeric", type_)
    if pa.types.is_timestamp(type_) or pa.types.is_date(type_) or pa.types.is_duration(type_):
        return _temporal_statistics(data)
    text = pa.types.is_string(type_) or pa.types.is_large_string(type_)
    return _frequency_statistics(data, "text" if text else "other")


def _counts(data: pa.ChunkedArray) -> dict[str, int]:
    return {"count": len(data) - data.null_count, "nulls": data.null_count}


def _numeric_statistics(data: pa.ChunkedArray, kind: str, type_: pa.DataType) -> dict[str, Any]:
    import numpy as np

    result: dict[str, Any] = {"kind": kind, "type": str(type_), **_counts(data)}
    values = _numpy_values(data)
    nan_count = posinf = neginf = 0
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        # Rare case, so the common one costs a single pass: NaN, +inf or -inf are present.
        is_nan = np.isnan(values)
        nan_count = int(np.count_nonzero(is_nan))
        posinf = int(np.count_nonzero(values == math.inf))
        neginf = int(np.count_nonzero(values == -math.inf))
        if nan_count:
            values = values[~is_nan]
    result.update(count=result["count"] - nan_count, nan_count=nan_count, posinf_count=posinf,
                  neginf_count=neginf)

    distribution = describe_distribution(
        values, quantiles=QUANTILES, bins=HISTOGRAM_BINS, infinities=bool(posinf or neginf)
    )
    return _add_distribution(result, distribution, *_moments(values))


def _add_distribution(
    result: dict[str, Any],
    distribution: Distribution,
    mean: float | None,
    std: float | None,
    *,
    edges: list[float] | None = None,
) -> dict[str, Any]:
    """Add the moments, quartiles, extremes and histogram of numbers to their counts.

    ``edges`` are the histogram edges already made readable (``_readable_edges``); by default
    they are computed from the distribution.
    """
    result["mean"] = _json_number(mean)
    result["std"] = _json_number(std)
    result["min"] = _json_number(distribution.minimum)
    for key, value in zip(_QUANTILE_KEYS, distribution.quantiles):
        result[key] = _json_number(value + distribution.base if value is not None else None)
    result["max"] = _json_number(distribution.maximum)
    result["histogram"] = None
    if distribution.offsets is not None:
        if edges is None:
            edges = _readable_edges([distribution])[0]
        result["histogram"] = {"edges": edges, "counts": distribution.counts}
    narrow_type = _narrow_float_types().get(result["type"])
    if narrow_type is not None:
        _narrow_numbers(result, narrow_type)
    return result


@functools.cache
def _narrow_float_types() -> dict[str, type]:
    """Map the Arrow type names of float32 and float16 columns to their numpy types."""
    import numpy as np

    return {"float": np.float32, "halffloat": np.float16}


def _narrow_numbers(result: dict[str, Any], narrow_type: type) -> None:
    """Write the numbers of a float32 or float16 column with the digits its type has.

    Histogram edges are narrowed only where they stay increasing. A range of fewer than 21
    float32 values keeps its computed inner edges, and its outer edges are still the extremes.
    """
    for key in ("mean", "std", "min", *_QUANTILE_KEYS, "max"):
        result[key] = narrow_float(result[key], narrow_type)
    histogram = result["histogram"]
    if histogram is None:
        return
    computed = histogram["edges"]
    edges = [narrow_float(edge, narrow_type) for edge in computed]
    if not _increasing(edges):
        edges = [edges[0], *computed[1:-1], edges[-1]]
    if _increasing(edges):
        histogram["edges"] = edges


def _increasing(values: list[float]) -> bool:
    return all(left < right for left, right in zip(values, values[1:]))


def _json_number(value: Any) -> Any:
    """Return ``to_json_value(value)``, without its type dispatch for plain ints and finite floats."""
    kind = type(value)
    if kind is int or (kind is float and math.isfinite(value)):
        return value
    return to_json_value(value)


EDGE_DIGITS = 15
"""Significant digits kept in histogram edges, relative to the largest edge of the histogram."""


def _readable_edges(distributions: Sequence[Distribution]) -> list[list[float]]:
    """Return the histogram edges (base plus offsets) of each distribution, rounded.

    Each histogram's inner edges keep ``EDGE_DIGITS`` significant digits of its largest edge,
    which drops the noise of computed edges: 0.8500000000000001 becomes 0.85 and an edge of
    1e-17 between -1 and 1 becomes 0.0. The first and last edges are kept exact. Every row is
    rounded by the same arithmetic whether it comes alone or in a batch, so a batch of columns
    and a single column get the same numbers.
    """
    import numpy as np

    if not distributions:
        return []
    edges = np.array([distribution.offsets for distribution in distributions], dtype=np.float64)
    bases = [float(distribution.base) for distribution in distributions]
    if any(bases):
        edges += np.array(bases)[:, None]
    # Edges increase along a row, so the largest magnitude is at one of its ends.
    digits = [_decimals(max(abs(first), abs(last))) for first, last in edges[:, [0, -1]].tolist()]
    if all(0 <= decimals <= _MAX_DECIMALS for decimals in digits):
        # One pass for the usual case; the arithmetic is that of _round_edges.
        scale = np.array([10.0**decimals for decimals in digits])[:, None]
        rounded = np.rint(edges * scale) / scale
    else:
        rounded = np.array([_round_edges(row, decimals) for row, decimals in zip(edges, digits)])
    # The outer edges stay as computed, so the bins still cover every value.
    rounded[:, 0] = edges[:, 0]
    rounded[:, -1] = edges[:, -1]
    return rounded.tolist()


_MAX_DECIMALS = 300
"""Powers of ten beyond this overflow or lose precision: such edges are kept as computed."""


def _decimals(largest: float) -> int:
    """Return the decimals that keep ``EDGE_DIGITS`` significant digits of ``largest``."""
    if not 0 < largest < math.inf:
        return _MAX_DECIMALS + 1
    return EDGE_DIGITS - 1 - math.floor(math.log10(largest))


def _round_edges(edges: np.ndarray, decimals: int) -> np.ndarray:
    """Round to ``decimals`` as np.round does, never multiplying by a power of ten below 1."""
    import numpy as np

    if abs(decimals) > _MAX_DECIMALS:
        return edges
    if decimals >= 0:
        scale = 10.0**decimals
        return np.rint(edges * scale) / scale
    scale = 10.0**-decimals
    return np.rint(edges / scale) * scale


def _moments(values: np.ndarray) -> tuple[float | None, float | None]:
    """Return the mean and the standard deviation (ddof=1) of values without NaN.

    Computed by ``_row_moments``, as for a batch, so batched and single columns get the same
    numbers.
    """
    return _row_moments(values.reshape(1, -1))[0]


def _numpy_values(data: pa.ChunkedArray) -> np.ndarray:
    """Return the non-null values as one numpy array, without a copy when there is one chunk."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if data.null_count:
        data = pc.drop_null(data)
    if data.num_chunks == 0:
        array = pa.array([], type=data.type)
    else:
        array = data.chunk(0) if data.num_chunks == 1 else data.combine_chunks()
    return array.to_numpy(zero_copy_only=False)


def _is_temporal(type_: pa.DataType) -> bool:
    import pyarrow as pa

    return pa.types.is_timestamp(type_) or pa.types.is_date(type_) or pa.types.is_duration(type_)


def _temporal_integers(data: pa.ChunkedArray) -> np.ndarray:
    """Return the non-null values of a temporal column as the integers it stores (days for
    dates), as int64.

    numpy's datetime64 and timedelta64 values are read as integers without a copy, where an
    Arrow cast to int64 would make one.
    """
    import numpy as np

    return _numpy_values(data).view(np.int64)


def _temporal_statistics(data: pa.ChunkedArray) -> dict[str, Any]:
    """Statistics of timestamps, dates and durations, computed on their integer values."""
    import numpy as np

    integers = _temporal_integers(data)
    # Everything is computed on the distances from the minimum, which float64 represents
    # exactly where it cannot represent the values themselves (nanosecond timestamps).
    base = int(integers.min()) if integers.size else 0
    if integers.size and int(integers.max()) - base > np.iinfo(np.int64).max:
        # The span overflows int64 (years 1700 to 2250 in ns): float64 distances, which are
        # rounded to about a microsecond there.
        offsets = integers.astype(np.float64) - float(base)
    else:
        offsets = integers.astype(np.int64, copy=False) - np.int64(base)
    distribution = describe_distribution(
        offsets, quantiles=QUANTILES, bins=HISTOGRAM_BINS, shift=True
    )
    return _temporal_result(data.type, _counts(data), distribution, base, *_moments(offsets))


def _temporal_result(
    type_: pa.DataType,
    counts: dict[str, int],
    distribution: Distribution,
    base: int,
    mean: float | None,
    std: float | None,
) -> dict[str, Any]:
    """Build a temporal column's statistics from a distribution of distances from ``base``.

    The distribution's minimum and maximum, and the mean, are measured from ``base``; its
    quantiles and edges from ``base`` plus its own base.
    """
    import pyarrow as pa

    if pa.types.is_date(type_):
        kind = "date"
    else:
        kind = "timedelta" if pa.types.is_duration(type_) else "datetime"
    result: dict[str, Any] = {"kind": kind, "type": str(type_), **counts}
    shift = base + (distribution.base or 0)
    extremes = [_offset(distribution.minimum, base), _offset(distribution.maximum, base)]
    quartiles = _shifted(distribution.quantiles, shift)
    edges = _shifted(distribution.offsets or [], shift)
    if edges and extremes[0] != extremes[1]:
        # float64 distances can miss the extremes by a few units, so the outer edges are set
        # to the extremes.
        edges[0], edges[-1] = extremes
    # One conversion for the points and the histogram edges: each costs a few Arrow calls.
    texts = _as_temporal([_offset(mean, base), extremes[0], *quartiles, extremes[1], *edges], type_)
    result["mean"] = texts[0]
    result["std"] = _duration(std, type_) if std is not None and math.isfinite(std) else None
    points = len(quartiles) + 2
    result.update(zip(("min", *_QUANTILE_KEYS, "max"), texts[1 : points + 1]))

    result["histogram"] = None
    if distribution.offsets is not None:
        result["histogram"] = {"edges": texts[points + 1 :], "counts": distribution.counts}
    return result


def _offset(value: Any, base: int) -> int | None:
    """Add ``base`` back to a value measured from it, rounded to whole units."""
    return None if value is None else base + round(value)


def _shifted(offsets: list[Any], base: int) -> list[int | None]:
    """Add ``base`` back to offsets exactly, rounding them to whole units first."""
    return [None if offset is None else base + round(offset) for offset in offsets]


def _duration(value: float, type_: pa.DataType) -> Any:
    """Turn a spread measured in a temporal type's integer unit into timedelta text."""
    import datetime as dt

    import pyarrow as pa

    if pa.types.is_date32(type_):
        return to_json_value(dt.timedelta(days=value))
    if pa.types.is_date64(type_):
        return to_json_value(dt.timedelta(milliseconds=value))
    return duration_text(round(value), type_.unit)


_UNIT_NANOSECONDS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


def duration_text(value: int, unit: str) -> str:
    """Return pandas' text of a duration, ``str(pd.Timedelta(value, unit=unit))``.

    Non-negative durations are formatted here: pandas takes longer to build a Timedelta than
    this takes to write its text, "D days HH:MM:SS" with 6 or 9 decimals when the seconds
    have a fraction. Negative ones are left to pandas.
    """
    if value < 0:
        import pandas as pd

        return str(pd.Timedelta(value, unit=unit))
    seconds, fraction = divmod(value * _UNIT_NANOSECONDS[unit], 10**9)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    text = f"{days} days {hours:02}:{minutes:02}:{seconds:02}"
    if fraction % 1000:
        return f"{text}.{fraction:09}"
    if fraction:
        return f"{text}.{fraction // 1000:06}"
    return text


def _as_temporal(values: list[float | int | None], type_: pa.DataType) -> list[Any]:
    """Turn integers (or interpolated floats) of a temporal type back into readable text."""
    import pyarrow as pa

    integers = [None if value is None else round(value) for value in values]
    texts = _iso_texts(integers, type_)
    if texts is not None:
        return texts
    storage = pa.int32() if pa.types.is_date32(type_) else pa.int64()
    array = pa.array(integers, storage).cast(type_)
    try:
        return [to_json_value(value) for value in array.to_pylist()]
    except OverflowError:  # a date beyond the years 1 to 9999, which Python cannot hold
        return _numpy_iso_texts(array)


def _numpy_iso_texts(array: pa.Array) -> list[Any]:
    """Return the ISO text of timestamps or dates, made by numpy, which has no year limit.

    The text looks like "12000-05-01T00:00:00", in UTC with a "Z" for tz-aware timestamps.
    Durations get pandas' text.
    """
    import numpy as np
    import pyarrow as pa

    type_ = array.type
    values = array.to_numpy(zero_copy_only=False)
    if pa.types.is_duration(type_):
        return [to_json_value(value) for value in values]
    timezone = "UTC" if pa.types.is_timestamp(type_) and type_.tz is not None else "naive"
    texts = np.datetime_as_string(values, timezone=timezone).tolist()
    return [None if text == "NaT" else text for text in texts]


_EPOCH = dt.datetime(1970, 1, 1)
_EPOCH_DAY = dt.date(1970, 1, 1)
_UNIT_STEPS = {
    "s": dt.timedelta(seconds=1),
    "ms": dt.timedelta(milliseconds=1),
    "us": dt.timedelta(microseconds=1),
}


def _iso_texts(integers: list[int | None], type_: pa.DataType) -> list[Any] | None:
    """Return the ISO text of date32 days, or of naive or UTC timestamps in s, ms or us.

    The text equals what the Arrow conversion gives, but the standard library makes it faster
    for the about 26 values a column's statistics convert. Returns None for other types and
    for values beyond the years 1 to 9999.
    """
    import pyarrow as pa

    try:
        if pa.types.is_date32(type_):
            return [None if v is None else (_EPOCH_DAY + dt.timedelta(days=v)).isoformat()
                    for v in integers]
        if not pa.types.is_timestamp(type_) or type_.unit not in _UNIT_STEPS:
            return None
        if type_.tz is None:
            epoch = _EPOCH
        elif type_.tz == "UTC":
            epoch = _EPOCH.replace(tzinfo=dt.timezone.utc)
        else:
            return None
        step = _UNIT_STEPS[type_.unit]
        return [None if v is None else (epoch + v * step).isoformat() for v in integers]
    except OverflowError:  # beyond the years 1 to 9999: the caller's Arrow path handles them
        return None


def _frequency_statistics(data: pa.ChunkedArray, kind: str) -> dict[str, Any]:
    """Count distinct values and list the most frequent ones with their counts."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    result: dict[str, Any] = {"kind": kind, "type": str(data.type), **_counts(data)}
    if len(data) == data.null_count:
        result.update(distinct=0, top=[])
        return result
    try:
        counted = pc.value_counts(data)
    except pa.ArrowNotImplementedError:
        result.update(distinct=None, top=None)
        return result

    if counted.field("values").null_count:
        counted = counted.filter(pc.is_valid(counted.field("values")))
    result["distinct"] = len(counted)
    # A stable sort keeps ties in order of first appearance, so the same data gives the same
    # spec (an unchanged retry must find its earlier version). numpy's costs less than
    # pyarrow's for the few distinct values most columns have.
    counts = counted.field("counts").to_numpy()
    order = np.argsort(-counts, kind="stable")[:TOP_VALUES]
    # Reading the few top values one by one costs less than an Arrow take. A dictionary
    # scalar reads as its decoded value.
    values = counted.field("values")
    result["top"] = [
        {"value": to_json_value(values[position].as_py()), "count": count}
        for position, count in zip(order.tolist(), counts[order].tolist())
    ]
    return result
