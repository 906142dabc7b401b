"""Tests of the dataset kind: round trips, spec, preview, statistics and hard inputs."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlart_prefect import api
from mlart_prefect.errors import NotFoundError, UnsupportedValueError
from mlart_prefect.kinds import EncodeContext, get_handler, handler_for_value
from mlart_prefect.kinds.dataset import (
    DatasetHandler,
    preview_markdown,
    preview_records,
)
from mlart_prefect.manifest import Manifest
from mlart_prefect.settings import get_settings
from mlart_prefect.store import ArtifactStore


def strict_json(value: Any) -> str:
    """Serialize as strict JSON; fails on NaN, Infinity and non-plain types."""
    return json.dumps(value, allow_nan=False)


def save(store: ArtifactStore, value: Any, key: str = "data", **options: Any) -> Manifest:
    manifest = api.save(key, value, store=store, **options)
    strict_json(manifest.spec)
    return manifest


def round_trip(store: ArtifactStore, value: Any, **options: Any) -> tuple[Manifest, Any]:
    manifest = save(store, value, **options)
    return manifest, api.load(manifest.ref, store=store)


def stored_files(store: ArtifactStore) -> list[Path]:
    return [path for path in Path(store.url).rglob("*") if path.is_file()]


def encode(value: Any, tmp_path: Path, **options: Any):
    """Encode into a fresh work folder under tmp_path, as api.save does in its staging folder."""
    workdir = tmp_path / f"work-{uuid.uuid4().hex}"
    workdir.mkdir()
    ctx = EncodeContext(store=None, project="test", key="data", workdir=workdir)  # type: ignore[arg-type]
    return DatasetHandler().encode(value, ctx, **options)


def column_stats(manifest: Manifest, name: str) -> dict[str, Any]:
    return manifest.spec["stats"]["columns"][name]


# -- registration and the spec ----------------------------------------------------------------


def test_dataframe_series_table_map_to_dataset():
    assert handler_for_value(pd.DataFrame({"a": [1]})).kind == "dataset"
    assert handler_for_value(pd.Series([1])).kind == "dataset"
    assert handler_for_value(pa.table({"a": [1]})).kind == "dataset"
    assert get_handler("dataset").kind == "dataset"


def test_dataframe_spec_describes_frame(local_store):
    frame = pd.DataFrame(
        {"price": [1.5, 2.5, None], "count": np.array([1, 2, 3], dtype="int64"),
         "name": ["a", "b", None]},
        index=pd.Index([10, 20, 30], name="id"),
    )

    manifest, loaded = round_trip(local_store, frame)

    pd.testing.assert_frame_equal(loaded, frame)
    spec = manifest.spec
    assert spec["python_type"] == "pandas.DataFrame"
    assert spec["format"] == "parquet"
    assert spec["body"] == "data.parquet"
    assert manifest.primary == "data.parquet"
    assert spec["size"] == manifest.body().size
    assert spec["num_rows"] == 3
    assert spec["num_columns"] == 3
    assert [entry["name"] for entry in spec["schema"]] == ["price", "count", "name"]
    assert [entry["dtype"] for entry in spec["schema"]] == ["float64", "int64", "str"]
    assert spec["schema"][0]["arrow_type"] == "double"
    assert spec["schema"][1]["arrow_type"] == "int64"
    assert [entry["nullable"] for entry in spec["schema"]] == [True, False, True]
    assert spec["index"]["kind"] == "levels"
    assert spec["index"]["names"] == ["id"]
    assert spec["index"]["dtypes"] == ["int64"]
    assert spec["warnings"] == []


def test_body_sha256_and_size_given_to_store(tmp_path):
    frame = pd.DataFrame({"a": range(1000)})

    encoded = encode(frame, tmp_path)
    body = encoded.bodies[0]

    import hashlib

    data = body.path.read_bytes()
    assert body.sha256 == hashlib.sha256(data).hexdigest()
    assert body.size == len(data)
    assert body.media_type == "application/vnd.apache.parquet"



def test_parquet_dictionary_skips_continuous_types(tmp_path):
    import pyarrow.parquet as pq

    frame = pd.DataFrame(
        {
            "x": np.linspace(0, 1, 200),
            "when": pd.date_range("2024-01-01", periods=200, freq="s"),
            "n": np.arange(200) % 7,
            "label": ["a", "b"] * 100,
            "day": pd.date_range("2024-01-01", periods=200, freq="D").date,
        }
    )
    nested = pa.table({"x": np.linspace(0, 1, 4), "s": [{"k": 1}, {"k": 2}, None, {"k": 1}]})

    metadata = pq.read_metadata(encode(frame, tmp_path).bodies[0].path)
    nested_metadata = pq.read_metadata(encode(nested, tmp_path).bodies[0].path)

    encodings = {
        metadata.schema.column(i).name: metadata.row_group(0).column(i).encodings
        for i in range(metadata.num_columns)
    }
    assert "RLE_DICTIONARY" not in encodings["x"]
    assert "RLE_DICTIONARY" not in encodings["when"]
    for name in ("n", "label", "day"):
        assert "RLE_DICTIONARY" in encodings[name], name
    # With a nested column every column keeps pyarrow's default, dictionary encoding.
    assert "RLE_DICTIONARY" in nested_metadata.row_group(0).column(0).encodings


@pytest.mark.parametrize("value_type", ["frame", "table"])
def test_large_parquet_hashed_while_written(tmp_path, value_type):
    """From LARGE_FRAME_CELLS the Parquet body is hashed as it is written."""
    import hashlib

    import pyarrow.parquet as pq

    from mlart_prefect.kinds._dataset_stats import compute_statistics
    from mlart_prefect.kinds.dataset import LARGE_FRAME_CELLS

    rows = LARGE_FRAME_CELLS // 2 + 1
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"x": rng.normal(size=rows), "n": rng.integers(0, 50, size=rows)})
    table = pa.Table.from_pandas(frame, preserve_index=False)

    encoded = encode(frame if value_type == "frame" else table, tmp_path)
    body = encoded.bodies[0]

    data = body.path.read_bytes()
    assert body.sha256 == hashlib.sha256(data).hexdigest()
    assert body.size == len(data)
    assert pq.read_table(body.path).column("n").to_pylist() == frame["n"].tolist()
    expected = compute_statistics([("x", table.column("x")), ("n", table.column("n"))], rows)
    assert encoded.spec["stats"] == expected


@pytest.mark.parametrize("stats", [True, False], ids=["stats", "no-stats"])
def test_small_body_equals_streamed_parquet(tmp_path, stats):
    """A small body, encoded in memory on the helper thread, has the streamed writer's bytes."""
    import hashlib

    from mlart_prefect.kinds._dataset_io import write_parquet

    frame = pd.DataFrame({"x": np.linspace(0, 1, 500), "n": np.arange(500) % 7,
                          "label": ["a", "b"] * 250})

    encoded = encode(frame, tmp_path, stats=stats)
    body = encoded.bodies[0]
    streamed = write_parquet(pa.Table.from_pandas(frame), tmp_path / "streamed.parquet", "x")

    data = body.path.read_bytes()
    assert data == streamed.path.read_bytes()
    assert (body.sha256, body.size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert (encoded.spec["stats"] is not None) is stats


@pytest.mark.parametrize(("rows", "released"), [(1_000, False), (60_000, True)])
def test_large_save_releases_arrow_memory(tmp_path, monkeypatch, rows, released):
    from mlart_prefect.kinds import dataset

    calls: list[bool] = []
    real = dataset._release_arrow_memory
    monkeypatch.setattr(dataset, "_release_arrow_memory", lambda: calls.append(real() is None))
    frame = pd.DataFrame({"x": np.arange(rows, dtype=float), "n": np.arange(rows)})

    encode(frame, tmp_path)
    encode(pa.Table.from_pandas(frame), tmp_path)

    assert calls == ([True, True] if released else [])


def test_same_frame_saved_twice_keeps_one_version(local_store):
    frame = pd.DataFrame({"a": [3.0, 1.0, 2.0] * 50, "b": ["x", "y", "z"] * 50})

    first = save(local_store, frame)
    second = save(local_store, frame.copy())

    assert second.version == first.version == 1


# -- hard input: object columns mixing Python types ------------------------------------------


@pytest.mark.parametrize(
    ("values", "types"),
    [
        ([101, "A-7", 103], ["int", "str"]),
        ([dt.date(2024, 1, 5), "unknown", dt.date(2024, 2, 1)], ["datetime.date", "str"]),
        ([pd.Timestamp("2024-01-05"), "unknown"], ["pandas.Timestamp", "str"]),
        ([1.5, "n/a", 2.25], ["float", "str"]),
        ([True, 1], ["bool", "int"]),
        ([b"\x00", "text"], ["bytes", "str"]),
        ([{"a": 1}, 5], ["dict", "int"]),
    ],
)
def test_mixed_object_column_rejected_and_nothing_stored(local_store, values, types):
    frame = pd.DataFrame({"ok": range(len(values)), "code": pd.Series(values, dtype=object)})

    with pytest.raises(UnsupportedValueError, match="column 'code'") as raised:
        api.save("mixed", frame, store=local_store)

    message = str(raised.value)
    for type_name in types:
        assert f"{type_name} (e.g." in message
    assert stored_files(local_store) == []
    with pytest.raises(NotFoundError):
        local_store.get("mixed")


def test_mixed_object_index_level_rejected(local_store):
    frame = pd.DataFrame({"a": [1, 2]}, index=pd.Index([1, "b"], dtype=object, name="key"))

    with pytest.raises(UnsupportedValueError, match="index level 'key'.*int.*str"):
        api.save("mixed-index", frame, store=local_store)
    assert stored_files(local_store) == []


def test_object_column_of_custom_type_rejected(local_store):
    class Point:
        pass

    frame = pd.DataFrame({"p": [Point(), Point()]})

    with pytest.raises(UnsupportedValueError, match="column 'p'.*Point"):
        api.save("points", frame, store=local_store)
    assert stored_files(local_store) == []


def test_dicts_json_cannot_keep_rejected(local_store):
    frame = pd.DataFrame({"d": [{1: "int key"}, {"a": 1}], "t": [[(1, 2)], [1]]})

    with pytest.raises(UnsupportedValueError, match="column 'd'.*dict key of type int"):
        api.save("dicts", frame, store=local_store)
    with pytest.raises(UnsupportedValueError, match="column 't'.*type tuple"):
        api.save("tuples", frame[["t"]], store=local_store)
    assert stored_files(local_store) == []


def test_conversion_error_names_column(tmp_path):
    too_big = pd.DataFrame({"big": pd.Series([2**70, 1], dtype=object)})

    with pytest.raises(UnsupportedValueError, match="column 'big'"):
        encode(too_big, tmp_path)


# -- hard input: duplicate and MultiIndex column labels --------------------------------------


def test_duplicate_labels_renamed_and_restored(local_store):
    left = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})
    right = pd.DataFrame({"a": [3, 4], "c": ["x", "y"]})
    frame = pd.concat([left, right], axis=1)

    manifest, loaded = round_trip(local_store, frame)

    pd.testing.assert_frame_equal(loaded, frame)
    spec = manifest.spec
    assert [entry["name"] for entry in spec["schema"]] == ["a", "b", "a.1", "c"]
    assert spec["renamed_columns"]["stored_as"] == ["a", "b", "a.1", "c"]
    assert any("Duplicate column labels ['a']" in warning for warning in spec["warnings"])
    assert spec["preview"]["columns"] == ["index", "a", "b", "a.1", "c"]
    assert spec["preview"]["rows"][0] == [0, 1, 0.5, 3, "x"]
    assert set(spec["stats"]["columns"]) == {"a", "b", "a.1", "c"}
    assert column_stats(manifest, "a.1")["max"] == 4
    assert len(preview_records(spec["preview"])[0]) == 5


def test_duplicate_labels_in_csv_restored(local_store):
    frame = pd.concat([pd.DataFrame({"a": [1]}), pd.DataFrame({"a": [2.5]})], axis=1)

    manifest, loaded = round_trip(local_store, frame, format="csv")

    pd.testing.assert_frame_equal(loaded, frame)
    assert manifest.spec["preview"]["columns"] == ["index", "a", "a.1"]


def test_duplicate_labels_that_json_cannot_keep_rejected(tmp_path):
    label = pd.Timestamp("2024-01-01")
    frame = pd.concat([pd.DataFrame({label: [1]}), pd.DataFrame({label: [2]})], axis=1)

    with pytest.raises(UnsupportedValueError, match="duplicate column labels.*2024-01-01"):
        encode(frame, tmp_path)


def pivot_frame() -> pd.DataFrame:
    long = pd.DataFrame(
        {
            "region": ["north", "south", "north", "south", "north"],
            "year": [2023, 2023, 2024, 2024, 2024],
            "sales": [10.0, 20.0, 30.0, 40.0, 50.0],
            "units": [1, 2, 3, 4, 5],
        }
    )
    return long.pivot_table(index="region", columns="year", values=["sales", "units"], aggfunc="sum")


@pytest.mark.parametrize("format_", ["parquet", "csv"])
def test_pivot_multiindex_columns_round_trip(local_store, format_):
    frame = pivot_frame()

    manifest, loaded = round_trip(local_store, frame, format=format_)

    pd.testing.assert_frame_equal(loaded, frame)
    names = ["sales|2023", "sales|2024", "units|2023", "units|2024"]
    assert [entry["name"] for entry in manifest.spec["schema"]] == names
    assert manifest.spec["schema"][0]["label"] == ["sales", 2023]
    assert manifest.spec["preview"]["columns"] == ["region", *names]
    assert manifest.spec["preview"]["rows"][0] == ["north", 10.0, 80.0, 1, 8]
    assert list(manifest.spec["stats"]["columns"]) == names
    assert column_stats(manifest, "units|2024")["max"] == 8


# -- hard input: time -------------------------------------------------------------------------


def test_named_datetime_index_round_trip(local_store):
    index = pd.date_range("2024-01-01", periods=4, freq="D", name="when")
    frame = pd.DataFrame({"value": [1.0, 2.0, 3.0, 4.0]}, index=index)

    manifest, loaded = round_trip(local_store, frame)

    pd.testing.assert_frame_equal(loaded, frame)
    assert loaded.index.name == "when"
    assert loaded.index.dtype == index.dtype
    assert loaded.index.freq == index.freq
    preview = manifest.spec["preview"]
    assert preview["columns"] == ["when", "value"]
    assert preview["index_columns"] == 1
    assert preview["rows"][0] == ["2024-01-01T00:00:00", 1.0]
    assert manifest.spec["index"]["freq"] == "D"


def tz_frame() -> pd.DataFrame:
    # Europe/Berlin leaves summer time on 2024-10-27 at 03:00.
    index = pd.date_range("2024-10-26 12:00", periods=4, freq="12h", tz="Europe/Berlin", name="t")
    return pd.DataFrame(
        {
            "utc": pd.date_range("2024-03-30", periods=4, freq="D", tz="UTC"),
            "kolkata": pd.date_range("2024-03-30", periods=4, freq="D", tz="+05:30"),
            "berlin": pd.date_range("2024-03-30 12:00", periods=4, freq="12h", tz="Europe/Berlin"),
            "ns": pd.Series(pd.to_datetime(["2024-01-01 00:00:00.000000001", None, None, None]).tz_localize("UTC"),
                            dtype="datetime64[ns, UTC]").array,
        },
        index=index,
    )


@pytest.mark.parametrize("format_", ["parquet", "csv"])
def test_tz_aware_columns_and_index_round_trip(local_store, format_):
    frame = tz_frame()

    manifest, loaded = round_trip(local_store, frame, format=format_)

    pd.testing.assert_frame_equal(loaded, frame)
    assert str(loaded.index.tz) == "Europe/Berlin"
    preview = manifest.spec["preview"]
    assert preview["rows"][0][0] == "2024-10-26T12:00:00+02:00"
    assert preview["rows"][1][0] == "2024-10-27T00:00:00+02:00"
    assert preview["rows"][2][0] == "2024-10-27T11:00:00+01:00"
    assert preview["rows"][0][2] == "2024-03-30T00:00:00+05:30"
    assert preview["rows"][0][4] == "2024-01-01T00:00:00.000000001+00:00"


@pytest.mark.parametrize("format_", ["parquet", "csv"])
def test_object_column_mixing_time_zones_converted_to_utc(local_store, tmp_path, format_):
    values = [
        pd.Timestamp("2024-01-01 12:00", tz="Europe/Berlin"),
        pd.Timestamp("2024-01-01 12:00", tz="UTC"),
        None,
        dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
    ]
    frame = pd.DataFrame({"seen": pd.Series(values, dtype=object)})

    encoded = encode(frame, tmp_path, format=format_)
    manifest, loaded = round_trip(local_store, frame, format=format_)

    assert any("mixes time zones" in warning and "UTC" in warning for warning in encoded.warnings)
    assert encoded.warnings == manifest.spec["warnings"]
    assert manifest.spec["schema"][0]["converted"] == "utc"
    assert str(loaded["seen"].dtype).endswith("UTC]")
    expected = pd.Series(pd.to_datetime(values, utc=True), name="seen")
    pd.testing.assert_series_equal(loaded["seen"], expected, check_dtype=False)
    assert loaded["seen"][0] == pd.Timestamp("2024-01-01 11:00", tz="UTC")
    assert manifest.spec["preview"]["rows"][0][1] == "2024-01-01T12:00:00+01:00"


def test_object_column_with_one_time_zone_kept(local_store):
    values = [pd.Timestamp("2024-01-01", tz="Asia/Tokyo"), None]
    frame = pd.DataFrame({"seen": pd.Series(values, dtype=object)})

    manifest, loaded = round_trip(local_store, frame)

    pd.testing.assert_frame_equal(loaded, frame)
    assert manifest.spec["warnings"] == []


def test_object_column_mixing_naive_and_aware_rejected(local_store):
    values = [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-01", tz="UTC")]
    frame = pd.DataFrame({"seen": pd.Series(values, dtype=object)})

    with pytest.raises(UnsupportedValueError, match="column 'seen'.*naive"):
        api.save("naive", frame, store=local_store)
    assert stored_files(local_store) == []


@pytest.mark.parametrize("format_", ["parquet", "csv"])
def test_timedelta_and_period_round_trip(local_store, format_):
    frame = pd.DataFrame(
        {
            "wait": pd.to_timedelta(["1 days 02:00:00", None, "00:00:00.000003"]),
            "month": pd.PeriodIndex(["2024-01", None, "2024-03"], freq="M"),
            "day": pd.PeriodIndex(["2024-01-05", "2024-01-06", None], freq="D"),
        }
    )

    manifest, loaded = round_trip(local_store, frame, format=format_)

    pd.testing.assert_frame_equal(loaded, frame)
    rows = manifest.spec["preview"]["rows"]
    assert rows[0][1:] == ["1 days 02:00:00", "2024-01", "2024-01-05"]
    assert rows[1][1:] == [None, None, "2024-01-06"]
    assert rows[2][1] == "0 days 00:00:00.000003"
    wait = column_stats(manifest, "wait")
    assert wait["kind"] == "timedelta"
    assert wait["count"] == 2
    assert wait["nulls"] == 1
    assert wait["max"] == "1 days 02:00:00"


# -- hard input: nullable dtypes --------------------------------------------------------------


@pytest.mark.parametrize("format_", ["parquet", "csv"])
def test_nullable_dtypes_round_trip_with_statistics(local_store, format_):
    frame = pd.DataFrame(
        {
            "count": pd.array([1, None, 3, 4], dtype="Int64"),
            "flag": pd.array([True, None, False, True], dtype="boolean"),
            "label": pd.array(["x", None, "z", "x"], dtype="string"),
            "ratio": pd.array([0.5, None, 1.5, 2.5], dtype="Float64"),
        }
    )

    manifest, loaded = round_trip(local_store, frame, format=format_)

    pd.testing.assert_frame_equal(loaded, frame)
    count = column_stats(manifest, "count")
    assert (count["kind"], count["count"], count["nulls"]) == ("numeric", 3, 1)
    assert count["mean"] == pytest.approx(8 / 3)
    assert (count["min"], count["50%"], count["max"]) == (1, 3.0, 4)
    assert sum(count["histogram"]["counts"]) == 3
    flag = column_stats(manifest, "flag")
    assert (flag["kind"], flag["count"], flag["nulls"]) == ("boolean", 3, 1)
    assert flag["mean"] == pytest.approx(2 / 3)
    assert flag["top"] == [{"value": True, "count": 2}, {"value": False, "count": 1}]
    label = column_stats(manifest, "label")
    assert (label["count"], label["nulls"], label["distinct"]) == (3, 1, 2)
    assert manifest.spec["preview"]["rows"][1] == [1, None, None, None, None]


# -- hard input: dicts and lists --------------------------------------------------------------


@pytest.mark.parametrize("format_", ["parquet", "csv"])
def test_dict_and_list_columns_keep_python_values(local_store, format_):
    frame = pd.DataFrame(
        {
            "empty": [{}, {}, {}],
            "mixed_keys": [{"a": 1}, {"b": "x", "c": [1, 2]}, None],
            "lists": [[1, 2], [], None],
            "nested": [[{"k": [1.5, None]}], [True], ["s"]],
        }
    )

    manifest, loaded = round_trip(local_store, frame, format=format_)

    for name in frame.columns:
        assert loaded[name].tolist() == frame[name].tolist()
        assert loaded[name].dtype == object
    assert type(loaded["lists"][0]) is list
    assert type(loaded["mixed_keys"][1]) is dict
    assert loaded["mixed_keys"][2] is None
    assert [entry.get("encoding") for entry in manifest.spec["schema"]] == ["json"] * 4
    assert manifest.spec["preview"]["rows"][1][2] == {"b": "x", "c": [1, 2]}
    assert manifest.spec["preview"]["rows"][1][3] == []


def test_series_of_dicts_round_trip(local_store):
    series = pd.Series([{"a": 1}, {"b": 2}], name="payload")

    _, loaded = round_trip(local_store, series)

    assert loaded.tolist() == series.tolist()
    assert loaded.name == "payload"


# -- hard input: empty frames -----------------------------------------------------------------


@pytest.mark.parametrize("format_", ["parquet", "csv"])
@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame(),
        pd.DataFrame(index=pd.Index([1, 2, 3], name="key")),
        pd.DataFrame(
            {
                "a": pd.Series([], dtype="int64"),
                "b": pd.Series([], dtype="str"),
                "c": pd.Series([], dtype="datetime64[ns, UTC]"),
                "d": pd.Series([], dtype="Int64"),
            }
        ),
    ],
    ids=["0x0", "index-only", "typed-0-rows"],
)
def test_empty_frames_round_trip(local_store, frame, format_):
    manifest, loaded = round_trip(local_store, frame, format=format_)

    pd.testing.assert_frame_equal(loaded, frame)
    preview = manifest.spec["preview"]
    assert preview["columns"][1:] == list(frame.columns)
    if len(frame) == 0:
        assert preview["rows"] == []
        table = preview_markdown(preview)
        assert table.count("\n") == 1
    for stats in manifest.spec["stats"]["columns"].values():
        assert stats["count"] == 0
        assert stats.get("histogram") is None
        assert stats.get("top") in (None, [])
    assert len(manifest.spec["stats"]["columns"]) == frame.shape[1]


# -- preview ----------------------------------------------------------------------------------


def test_preview_missing_values_are_null(local_store):
    frame = pd.DataFrame({"x": [1.0, np.nan, 3.0], "s": pd.Series(["a", None, "c|d"], dtype=object)})

    manifest = save(local_store, frame)

    preview = manifest.spec["preview"]
    assert preview["rows"][1] == [1, None, None]
    assert preview_records(preview)[1] == {"index": 1, "x": None, "s": None}
    lines = preview_markdown(preview).splitlines()
    assert lines[0] == "| index | x | s |"
    assert lines[1] == "| --- | --- | --- |"
    assert lines[3] == "| 1 |  |  |"
    assert lines[4] == "| 2 | 3.0 | c\\|d |"


def test_preview_markdown_notes_hidden_rows_and_columns(local_store):
    frame = pd.DataFrame(np.zeros((30, 120)), columns=[f"c{i}" for i in range(120)])

    manifest = save(local_store, frame, preview=5, stats=False)

    preview = manifest.spec["preview"]
    assert len(preview["rows"]) == 5
    assert len(preview["columns"]) == 101
    assert preview["total_columns"] == 120
    assert preview["total_rows"] == 30
    assert preview_markdown(preview).endswith("_5 of 30 rows and 100 of 120 columns shown._")


def test_preview_of_special_values_is_readable_json(local_store):
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    frame = pd.DataFrame(
        {
            "stamp": [pd.Timestamp("2024-05-01 08:30:15.5"), pd.NaT],
            "day": [dt.date(2024, 5, 1), None],
            "id": [ident, None],
            "raw": [b"\xff\xfe\x00ab", None],
            "price": [decimal.Decimal("19.90"), None],
            "text": ["x" * 250, "short"],
            "ratio": [math.inf, -math.inf],
        }
    )

    manifest, loaded = round_trip(local_store, frame)

    pd.testing.assert_frame_equal(loaded, frame)
    rows = manifest.spec["preview"]["rows"]
    assert rows[0][1:6] == [
        "2024-05-01T08:30:15.500000",
        "2024-05-01",
        "12345678-1234-5678-1234-567812345678",
        "<5 bytes: 0xfffe006162>",
        "19.90",
    ]
    assert rows[0][6] == "x" * 200 + "… (+50 chars)"
    assert rows[0][7] == "inf"
    assert rows[1][1:8] == [None, None, None, None, None, "short", "-inf"]


def test_preview_arrow_cells_equal_pandas_cells():
    from mlart_prefect.kinds._dataset_frames import frame_to_arrow, prepare_frame
    from mlart_prefect.kinds._dataset_preview import frame_preview

    berlin = pd.date_range("2024-03-31 00:30", periods=6, freq="37min", tz="Europe/Berlin")
    frame = pd.DataFrame(
        {
            "int": np.arange(6, dtype=np.int16),
            "uint": np.arange(6, dtype=np.uint64) * 2**61,
            "flag": [True, False] * 3,
            "float": [0.5, np.nan, np.inf, -np.inf, 1e300, -0.0],
            "float32": np.array([0.1, 2.5, np.nan, 4, 5, 6], dtype=np.float32),
            "text": pd.array(["a", None, "x" * 250, "é", "", "b"], dtype="str"),
            "string": pd.array(["a", pd.NA, "b", "c", "d", "e"], dtype="string"),
            "naive_ns": pd.date_range("2024-01-01", periods=6, freq="h").as_unit("ns")
            + pd.Timedelta(nanoseconds=7),
            "naive_s": pd.date_range("2024-01-01", periods=6, freq="D").as_unit("s"),
            # Fractions of 0, 3 and 6 digits, and nanoseconds that are whole microseconds.
            "naive_ms": pd.to_datetime(
                ["2024-01-01 00:00:00.001", "2024-01-01", "2024-01-01", "1999-12-31 23:59:59.5",
                 "0001-01-01", "9999-12-31"], format="ISO8601",
            ).as_unit("ms"),
            "naive_us": pd.to_datetime(
                ["2024-01-01 00:00:00.000001", "2024-01-01 00:00:00.12", "2024-01-01",
                 "2024-01-01 00:00:01", "1970-01-01", "1960-01-01 00:00:00.000003"],
                format="ISO8601",
            ).as_unit("us"),
            "naive_whole_us_ns": pd.date_range("2024-01-01", periods=6, freq="1us").as_unit("ns"),
            "berlin": berlin,
            "berlin_ns": berlin.as_unit("ns"),
            "offset": pd.date_range("2024-01-01", periods=6, freq="h", tz="+05:30"),
            "nullable": pd.array([1, None, 3, 4, 5, 6], dtype="Int64"),
            "objects": [{"a": 1}, {"b": [1]}, None, {}, {"c": "x"}, {"d": 2}],
        },
        index=pd.Index(list("uvwxyz"), name="key"),
    )
    frame.loc["w", ["naive_ns", "berlin", "naive_s", "naive_us"]] = pd.NaT

    prepared = prepare_frame(frame)
    table = frame_to_arrow(prepared)

    assert frame_preview(prepared, 4, table) == frame_preview(prepared, 4)
    assert frame_preview(prepared, 20, table) == frame_preview(prepared, 20)
    cells = frame_preview(prepared, 20, table)["rows"]
    assert cells[1][6:8] == [None, None]
    assert cells[2][4] == "inf"
    assert cells[2][13] is None  # NaT in a tz-aware column
    assert cells[0][8] == "2024-01-01T00:00:00.000000007"
    assert [row[10] for row in cells] == [
        "2024-01-01T00:00:00.001000", "2024-01-01T00:00:00", "2024-01-01T00:00:00",
        "1999-12-31T23:59:59.500000", "0001-01-01T00:00:00", "9999-12-31T00:00:00",
    ]
    assert [row[11] for row in cells][:3] == [
        "2024-01-01T00:00:00.000001", "2024-01-01T00:00:00.120000", None,
    ]
    assert cells[1][12] == "2024-01-01T00:00:00.000001"


def test_dates_beyond_year_9999_stored(local_store):
    # numpy and pandas hold such dates in second units; Python's datetime cannot.
    stamps = np.array(["2020-01-01", "12000-05-01", "-500-01-01", "NaT"], dtype="datetime64[s]")
    frame = pd.DataFrame({"t": stamps})
    frame["utc"] = frame["t"].dt.tz_localize("UTC")

    manifest, loaded = round_trip(local_store, frame)

    pd.testing.assert_frame_equal(loaded, frame)
    stats = column_stats(manifest, "t")
    assert (stats["count"], stats["nulls"]) == (3, 1)
    assert (stats["min"], stats["50%"], stats["max"]) == (
        "-500-01-01T00:00:00", "2020-01-01T00:00:00", "12000-05-01T00:00:00"
    )
    assert column_stats(manifest, "utc")["max"] == "12000-05-01T00:00:00Z"
    assert column_stats(manifest, "utc")["50%"] == "2020-01-01T00:00:00Z"
    assert manifest.spec["preview"]["rows"][1][1:] == [
        "12000-05-01T00:00:00", "12000-05-01T00:00:00+00:00"
    ]


def test_timestamps_spanning_the_int64_range(local_store):
    # From 1700 to 2250 in nanoseconds the distance between values overflows int64.
    stamps = pd.to_datetime(["1700-01-01", "2250-01-01", "2000-01-01", "1990-06-01"]).as_unit("ns")
    frame = pd.DataFrame({"t": stamps, "again": stamps})

    manifest, loaded = round_trip(local_store, frame)

    pd.testing.assert_frame_equal(loaded, frame)
    for name in ("t", "again"):  # the batch declines them; one by one they are exact enough
        stats = column_stats(manifest, name)
        assert (stats["min"], stats["max"]) == ("1700-01-01T00:00:00", "2250-01-01T00:00:00")
        assert stats["50%"] == "1995-03-17T12:00:00"
        assert stats["histogram"]["counts"] == [1] + [0] * 9 + [2] + [0] * 8 + [1]
        assert "error" not in stats


def test_preview_rows_option(local_store, monkeypatch):
    frame = pd.DataFrame({"a": range(50)})

    assert save(local_store, frame, key="none", preview=0).spec["preview"] is None
    assert len(save(local_store, frame, key="default").spec["preview"]["rows"]) == 20
    monkeypatch.setenv("MLART_PREVIEW_ROWS", "7")
    get_settings(reload=True)
    assert len(save(local_store, frame, key="setting").spec["preview"]["rows"]) == 7


# -- statistics -------------------------------------------------------------------------------


def test_numeric_statistics_match_pandas(local_store):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(10, 2, size=5000), "n": rng.integers(0, 100, size=5000)})

    manifest = save(local_store, frame)

    for name in ("x", "n"):
        stats = column_stats(manifest, name)
        described = frame[name].describe()
        assert stats["count"] == 5000
        assert stats["nulls"] == 0
        assert stats["mean"] == pytest.approx(described["mean"])
        assert stats["std"] == pytest.approx(described["std"])
        for key in ("min", "25%", "50%", "75%", "max"):
            assert stats[key] == pytest.approx(described[key])
        counts, edges = np.histogram(frame[name], bins=20)
        assert stats["histogram"]["counts"] == counts.tolist()
        assert stats["histogram"]["edges"] == pytest.approx(edges.tolist())


def test_text_statistics_count_distinct_and_top_values(local_store):
    values = ["red"] * 5 + ["blue"] * 3 + ["green"] * 2 + [None] + [f"v{i}" for i in range(12)]
    frame = pd.DataFrame({"color": values, "cat": pd.Categorical(values)})

    manifest = save(local_store, frame)

    for name, kind in (("color", "text"), ("cat", "categorical")):
        stats = column_stats(manifest, name)
        assert stats["kind"] == kind
        assert (stats["count"], stats["nulls"], stats["distinct"]) == (22, 1, 15)
        assert len(stats["top"]) == 10
        assert stats["top"][:3] == [
            {"value": "red", "count": 5},
            {"value": "blue", "count": 3},
            {"value": "green", "count": 2},
        ]


def test_histogram_edges_are_rounded_to_15_significant_digits(local_store):
    # 0.0 to 1.7 in 20 bins: linspace gives 0.8500000000000001 for the middle edge.
    frame = pd.DataFrame(
        {
            "tenths": np.linspace(0.0, 1.7, 50),
            "tenths_again": np.linspace(1.7, 0.0, 50),  # two float columns share the batch
            "around_zero": np.linspace(-1.0, 1.0, 50) * 0.3,
            "huge": np.linspace(0.0, 3e20, 50),
            "tiny": np.linspace(0.0, 1e-310, 50),  # subnormal: edges kept as computed
        }
    )
    # A row of NaN takes every column out of the batch, onto the single-column path.
    single = pd.concat([frame, pd.DataFrame({name: [np.nan] for name in frame})])

    for manifest in (save(local_store, frame), save(local_store, single, key="single")):
        tenths = column_stats(manifest, "tenths")["histogram"]["edges"]
        assert tenths == [round(value, 14) for value in np.linspace(0.0, 1.7, 21).tolist()]
        assert tenths[10] == 0.85
        assert column_stats(manifest, "tenths_again")["histogram"]["edges"][10] == 0.85
        around_zero = column_stats(manifest, "around_zero")["histogram"]["edges"]
        assert (around_zero[0], around_zero[10]) == (-0.3, 0.0)
        assert column_stats(manifest, "huge")["histogram"]["edges"][1] == 1.5e19
        tiny = column_stats(manifest, "tiny")["histogram"]["edges"]
        assert tiny == np.linspace(0.0, 1e-310, 21).tolist()


def test_histogram_outer_edges_are_the_extremes(local_store):
    stamps = pd.to_datetime(["1999-12-31 00:00:00.000001", "2010-05-05", "2024-06-30 23:59:59.5"],
                            format="ISO8601")
    frame = pd.DataFrame(
        {
            "wide_int": np.array([-5, 2**62, 7]),
            "wide_float": [-5.0, 4.6e18, 1.0],
            "nanoseconds": stamps.as_unit("ns"),
        }
    )
    single = pd.concat([frame, pd.DataFrame({"wide_float": [np.nan]})])  # no batch for floats

    for manifest in (save(local_store, frame), save(local_store, single, key="single")):
        for name in ("wide_int", "wide_float", "nanoseconds"):
            stats = column_stats(manifest, name)
            edges = stats["histogram"]["edges"]
            assert (edges[0], edges[-1]) == (stats["min"], stats["max"]), name


def test_float32_numbers_keep_float32_digits(local_store):
    values = np.linspace(0.1, 0.9, 9, dtype="float32")  # 0.1 is 0.10000000149011612 in float64
    frame = pd.DataFrame(
        {
            "a": values,
            "b": values[::-1].copy(),  # two float32 columns share the batch
            "with_nan": np.append(values[:-1], np.nan).astype("float32"),  # single column
            "half": values.astype("float16"),
            "nullable": pd.array(values, dtype="Float32"),
        },
        index=pd.Index(values, name="ix"),
    )

    manifest = save(local_store, frame)

    assert manifest.spec["preview"]["rows"][0] == [0.1, 0.1, 0.9, 0.1, 0.1, 0.1]
    medians = {"a": 0.5, "b": 0.5, "with_nan": 0.45, "half": 0.5, "nullable": 0.5}
    for name, median in medians.items():
        stats = column_stats(manifest, name)
        assert stats["min"] == 0.1, name
        assert stats["50%"] == median, name
        assert len(repr(stats["mean"])) <= 10
        assert stats["mean"] == pytest.approx(median, rel=1e-6)
        edges = stats["histogram"]["edges"]
        assert edges[0] == stats["min"], name
        assert edges[-1] == stats["max"], name
        assert max(len(repr(edge)) for edge in edges) <= 10, edges
    table_preview = save(local_store, pa.table({"f": values}), key="table").spec["preview"]
    assert table_preview["rows"][0] == [0.1]


def test_narrow_float32_range_keeps_increasing_edges(local_store):
    values = np.float32(1.0) + np.arange(9, dtype="float32") * np.float32(1.2e-7)

    stats = column_stats(save(local_store, pd.DataFrame({"tight": values})), "tight")

    edges = stats["histogram"]["edges"]
    assert (stats["min"], stats["max"]) == (1.0, 1.000001)
    assert (edges[0], edges[-1]) == (1.0, 1.000001)
    assert all(left < right for left, right in zip(edges, edges[1:]))
    assert sum(stats["histogram"]["counts"]) == 9


def test_infinities_and_all_nan_column_statistics(local_store):
    frame = pd.DataFrame(
        {
            "x": [1.0, np.inf, -np.inf, np.nan, 3.0],
            "empty": [np.nan] * 5,
        }
    )

    manifest = save(local_store, frame)

    x = column_stats(manifest, "x")
    assert (x["count"], x["nulls"]) == (4, 1)
    assert (x["posinf_count"], x["neginf_count"]) == (1, 1)
    assert (x["min"], x["max"]) == ("-inf", "inf")
    assert x["histogram"]["edges"][0] == 1.0
    assert x["histogram"]["edges"][-1] == 3.0
    assert sum(x["histogram"]["counts"]) == 2
    empty = column_stats(manifest, "empty")
    assert (empty["count"], empty["nulls"]) == (0, 5)
    assert empty["mean"] is None
    assert empty["min"] is None
    assert empty["histogram"] is None
    assert manifest.spec["preview"]["rows"][1][1] == "inf"
    assert manifest.spec["preview"]["rows"][3][1] is None


def test_table_nan_counted_apart_from_nulls(local_store):
    table = pa.table({"x": pa.array([1.0, float("nan"), None, 2.0, float("inf")])})

    manifest = save(local_store, table)

    x = column_stats(manifest, "x")
    assert (x["count"], x["nulls"], x["nan_count"], x["posinf_count"]) == (3, 1, 1, 1)
    assert x["mean"] == "inf"
    assert x["min"] == 1.0
    assert sum(x["histogram"]["counts"]) == 2


def test_datetime_statistics_are_iso_text(local_store):
    frame = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=5, freq="D", tz="UTC")})

    manifest = save(local_store, frame)

    stats = column_stats(manifest, "t")
    assert stats["kind"] == "datetime"
    assert stats["min"] == "2024-01-01T00:00:00+00:00"
    assert stats["50%"] == "2024-01-03T00:00:00+00:00"
    assert stats["max"] == "2024-01-05T00:00:00+00:00"
    expected_std = frame["t"].std()
    assert abs(pd.Timedelta(stats["std"]) - expected_std) < pd.Timedelta(microseconds=1)
    assert stats["histogram"]["edges"][0] == "2024-01-01T00:00:00+00:00"
    assert sum(stats["histogram"]["counts"]) == 5


def test_stats_options(local_store, monkeypatch):
    frame = pd.DataFrame({"a": range(10), "b": range(10)})

    assert save(local_store, frame, key="off", stats=False).spec["stats"] is None
    monkeypatch.setenv("MLART_STATS_MAX_CELLS", "19")
    get_settings(reload=True)
    skipped = save(local_store, frame, key="big")
    assert skipped.spec["stats"] is None
    assert "20 cells exceed stats_max_cells (19)" in skipped.spec["stats_skipped"]
    forced = save(local_store, frame, key="forced", stats=True)
    assert column_stats(forced, "a")["max"] == 9


# -- types and formats ------------------------------------------------------------------------


def test_series_round_trip_keeps_name(local_store):
    named = pd.Series([1.5, None, 3.0], name="price", index=pd.Index(["a", "b", "c"], name="k"))
    unnamed = pd.Series([1, 2, 3])
    number_named = pd.Series(["x", "y"], name=7)

    for key, series in (("named", named), ("unnamed", unnamed), ("number", number_named)):
        manifest, loaded = round_trip(local_store, series, key=key)
        pd.testing.assert_series_equal(loaded, series)
        assert manifest.spec["python_type"] == "pandas.Series"
    assert api.load("unnamed", store=local_store).name is None


def test_series_csv_round_trip(local_store):
    series = pd.Series([1.5, None, 3.0], name="price")

    _, loaded = round_trip(local_store, series, format="csv")

    pd.testing.assert_series_equal(loaded, series)


@pytest.mark.parametrize("format_", ["parquet", "csv"])
def test_pyarrow_table_round_trip_keeps_schema(local_store, format_):
    schema = pa.schema(
        [
            pa.field("id", pa.int32(), nullable=False),
            pa.field("name", pa.string()),
            pa.field("at", pa.timestamp("ms", tz="Europe/Berlin")),
            pa.field("day", pa.date32()),
            pa.field("amount", pa.decimal128(10, 2)),
        ],
        metadata={"source": "unit test"},
    )
    table = pa.table(
        {
            "id": [1, 2, 3],
            "name": ["a", None, "c"],
            "at": [0, None, 86_400_000],
            "day": [19000, 19001, None],
            "amount": [decimal.Decimal("1.50"), None, decimal.Decimal("-2.25")],
        },
        schema=schema,
    )

    manifest, loaded = round_trip(local_store, table, format=format_)

    assert isinstance(loaded, pa.Table)
    assert loaded.schema.equals(table.schema, check_metadata=True)
    assert loaded.equals(table)
    assert manifest.spec["python_type"] == "pyarrow.Table"
    assert manifest.spec["index"] == {"kind": "none"}
    assert manifest.spec["preview"]["columns"] == ["id", "name", "at", "day", "amount"]
    assert manifest.spec["preview"]["rows"][2] == [3, "c", "1970-01-02T01:00:00+01:00", None, "-2.25"]
    assert manifest.spec["schema"][0]["nullable"] is False
    assert column_stats(manifest, "amount")["min"] == -2.25


def test_table_with_nested_types_round_trip(local_store):
    table = pa.table({"tags": [["a"], [], None], "point": [{"x": 1}, {"x": 2}, None]})

    manifest, loaded = round_trip(local_store, table)

    assert loaded.equals(table)
    assert manifest.spec["preview"]["rows"][0] == [["a"], {"x": 1}]
    assert column_stats(manifest, "tags")["distinct"] is None


def test_csv_round_trip_of_mixed_dtypes(local_store):
    frame = pd.DataFrame(
        {
            "f": [0.1, np.nan, np.inf, 1e-300],
            "i": np.array([1, 2, 3, 4], dtype="int32"),
            "b": [True, False, True, False],
            "s": ["a,b", 'quote"d', "line\nbreak", None],
            "t": pd.date_range("2024-01-01", periods=4, freq="h"),
            "c": pd.Categorical(["x", "y", None, "x"], categories=["y", "x", "unused"], ordered=True),
        },
        index=pd.Index(["r1", "r2", "r3", "r4"], name="row"),
    )

    manifest, loaded = round_trip(local_store, frame, local_path="data/iris.csv")

    pd.testing.assert_frame_equal(loaded, frame)
    assert manifest.spec["format"] == "csv"
    assert manifest.primary == "iris.csv"
    assert manifest.body().media_type.startswith("text/csv")
    text = local_store.read_bytes(manifest).decode()
    assert text.splitlines()[0] == "row,f,i,b,s,t,c"


def test_csv_warns_about_columns_kept_as_text(local_store):
    frame = pd.DataFrame({"price": [decimal.Decimal("1.10"), None], "n": [1, 2]})

    manifest, loaded = round_trip(local_store, frame, format="csv")

    assert any("['price']" in warning and "as text" in warning for warning in manifest.spec["warnings"])
    assert loaded["price"].tolist()[0] == "1.10"
    assert loaded["n"].tolist() == [1, 2]


def test_local_path_selects_format_and_body_name(tmp_path):
    frame = pd.DataFrame({"a": [1]})

    assert encode(frame, tmp_path, local_path="out/table.parquet").primary == "table.parquet"
    assert encode(frame, tmp_path, local_path="t.PQ").spec["format"] == "parquet"
    assert encode(frame, tmp_path, format="csv").primary == "data.csv"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"format": "xlsx"}, "Invalid dataset format 'xlsx'"),
        ({"local_path": "data/table.txt"}, "must end in .parquet, .pq or .csv"),
        ({"local_path": "data/t.csv", "format": "parquet"}, "names a csv file but format='parquet'"),
        ({"preview": -1}, "Invalid preview -1"),
        ({"preview": True}, "Invalid preview True"),
        ({"stats": "yes"}, "Invalid stats 'yes'"),
    ],
)
def test_invalid_options_rejected(tmp_path, options, message):
    with pytest.raises(UnsupportedValueError, match=message):
        encode(pd.DataFrame({"a": [1]}), tmp_path, **options)


def test_non_dataset_value_rejected(tmp_path):
    with pytest.raises(UnsupportedValueError, match="expected a pandas DataFrame or Series"):
        encode([1, 2, 3], tmp_path)


@pytest.mark.parametrize("format_", ["parquet", "csv"])
def test_categorical_round_trip(local_store, format_):
    frame = pd.DataFrame(
        {
            "size": pd.Categorical(["m", "s", None, "l"], categories=["s", "m", "l", "xl"], ordered=True),
            "code": pd.Categorical([3, 1, 3, 2]),
            "ranked": pd.Categorical([3, 1, None, 2], categories=[3, 2, 1, 9], ordered=True),
        }
    )

    manifest, loaded = round_trip(local_store, frame, format=format_)

    pd.testing.assert_frame_equal(loaded, frame)
    assert list(loaded["size"].cat.categories) == ["s", "m", "l", "xl"]
    assert list(loaded["ranked"].cat.categories) == [3, 2, 1, 9]
    assert manifest.spec["preview"]["rows"][2] == [2, None, 3, None]
    ranked = manifest.spec["schema"][2]
    assert (ranked["dtype"], ranked["ordered"], ranked["categories"]["labels"]) == (
        "category", True, [3, 2, 1, 9])
    assert column_stats(manifest, "ranked")["top"][0] == {"value": 3, "count": 1}


@pytest.mark.parametrize("format_", ["parquet", "csv"])
@pytest.mark.parametrize(
    "index",
    [
        pd.RangeIndex(3),
        pd.RangeIndex(5, 11, 2, name="step"),
        pd.Index([30, 10, 20], name="id"),
        pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)], names=["group", None]),
        pd.MultiIndex.from_arrays(
            [pd.Index(["x", "y", "x"], dtype=object),
             pd.to_datetime(["2024-01-01", "2024-01-02", None]).as_unit("s")],
            names=["key", "day"],
        ),
    ],
    ids=["default-range", "range-with-step", "integer", "multiindex", "multiindex-object-seconds"],
)
def test_index_kinds_round_trip(local_store, index, format_):
    frame = pd.DataFrame({"v": [1.0, 2.0, 3.0]}, index=index)

    manifest, loaded = round_trip(local_store, frame, format=format_)

    pd.testing.assert_frame_equal(loaded, frame, check_index_type=True)
    assert type(loaded.index) is type(index)
    expected = "range" if isinstance(index, pd.RangeIndex) else "levels"
    assert manifest.spec["index"]["kind"] == expected
    assert manifest.spec["preview"]["index_columns"] == index.nlevels


def test_multiindex_preview_names_unnamed_levels(local_store):
    index = pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["group", None])
    frame = pd.DataFrame({"v": [1, 2]}, index=index)

    manifest = save(local_store, frame)

    assert manifest.spec["preview"]["columns"] == ["group", "level_1", "v"]
    assert manifest.spec["preview"]["rows"][1] == ["b", 2, 2]


def test_index_name_equal_to_column_name_stays_distinct(local_store):
    frame = pd.DataFrame({"a": [1, 2]}, index=pd.Index([5, 6], name="a"))

    manifest, loaded = round_trip(local_store, frame)

    pd.testing.assert_frame_equal(loaded, frame)
    assert manifest.spec["preview"]["columns"] == ["a.1", "a"]


# -- internals: exact quartiles from histogram bins -------------------------------------------


def on_bin_edges() -> np.ndarray:
    """Return values on and one ulp beside the 20 bin edges of their range.

    Computing their bins in float64 puts some in the bin below or above the right one, which
    np.histogram corrects by comparing with the edges.
    """
    first, last = -0.013210486329130189, 0.01257302210933933
    edges = np.linspace(first, last, 21)
    values = np.concatenate([edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)])
    return values[(values >= first) & (values <= last)]


DISTRIBUTIONS = {
    "normal": np.random.default_rng(1).normal(size=20_001),
    "integer-ties": np.random.default_rng(2).integers(0, 5, size=5_000),
    "constant": np.full(7, 3.5),
    "single": np.array([2.0]),
    "two": np.array([5, 1]),
    "huge-integers": np.random.default_rng(3).integers(2**62, 2**62 + 1000, size=1000),
    "narrow-range-floats": 1e16 + np.random.default_rng(4).integers(0, 3, size=100).astype(float),
    "booleans": np.random.default_rng(5).integers(0, 2, size=101).astype(np.uint8),
    "heavy-tail": np.random.default_rng(6).exponential(size=10_000) ** 4,
    "on-bin-edges": on_bin_edges(),
}


@pytest.mark.parametrize("selection", ["direct", "by-bin"])
@pytest.mark.parametrize("shift", [False, True])
@pytest.mark.parametrize("name", list(DISTRIBUTIONS))
def test_distribution_matches_numpy(name, shift, selection, monkeypatch):
    from mlart_prefect.kinds import _dataset_distribution
    from mlart_prefect.kinds._dataset_distribution import describe_distribution

    if selection == "by-bin":
        monkeypatch.setattr(_dataset_distribution, "DIRECT_SELECTION_MAX_VALUES", 0)
    values = DISTRIBUTIONS[name]
    original = values.copy()

    found = describe_distribution(values, quantiles=(0.1, 0.25, 0.5, 0.75, 1.0), bins=20, shift=shift)

    expected = np.quantile(values, [0.1, 0.25, 0.5, 0.75, 1.0])
    assert [found.base + value for value in found.quantiles] == pytest.approx(expected.tolist(), rel=1e-12)
    assert (found.minimum, found.maximum) == (values.min(), values.max())
    assert sum(found.counts) == len(values)
    if not shift and name not in ("huge-integers", "narrow-range-floats"):
        counts, edges = np.histogram(values, bins=20)
        assert found.counts == counts.tolist()
        assert found.offsets == pytest.approx(edges.tolist())
    np.testing.assert_array_equal(values, original)


def test_distribution_ranks_infinities():
    from mlart_prefect.kinds._dataset_distribution import describe_distribution

    values = np.array([1.0, np.inf, -2.0, -np.inf, 3.0, np.inf])
    only_infinite = np.array([np.inf, -np.inf])

    found = describe_distribution(values, quantiles=(0.0, 0.25, 0.5, 0.75, 1.0), bins=20, infinities=True)
    infinite = describe_distribution(only_infinite, quantiles=(0.0, 1.0), bins=20, infinities=True)

    assert found.quantiles[0] == -math.inf
    assert found.quantiles[1:4] == [-1.25, 2.0, math.inf]
    # Between -inf and a number: -inf, not the NaN that -inf + inf * fraction gives.
    low_quartile = describe_distribution(np.array([1.0, np.inf, -np.inf, 2.0]), quantiles=(0.25,),
                                         bins=20, infinities=True)
    assert low_quartile.quantiles == [-math.inf]
    assert found.quantiles[4] == math.inf
    assert (found.minimum, found.maximum) == (-math.inf, math.inf)
    assert sum(found.counts) == 3
    assert infinite.quantiles == [-math.inf, math.inf]
    assert infinite.counts is None


def test_distribution_falls_back_when_bins_disagree(monkeypatch):
    from mlart_prefect.kinds import _dataset_distribution
    from mlart_prefect.kinds._dataset_distribution import _Ranks

    monkeypatch.setattr(_dataset_distribution, "DIRECT_SELECTION_MAX_VALUES", 0)
    values = np.array([0.0, 1.0, 2.0, 3.0])
    # Counts that do not match the edges, as a rounding difference would make them.
    ranks = _Ranks(values, np.array([1, 3]), np.array([0.0, 2.0, 3.0]), below=0, above=0)

    assert ranks.quantiles([0.0, 0.5, 1.0]) == [0.0, 1.5, 3.0]


@pytest.mark.parametrize("name", list(DISTRIBUTIONS))
def test_batched_histograms_equal_numpy(name):
    from mlart_prefect.kinds._dataset_distribution import describe_distributions

    values = DISTRIBUTIONS[name][:10_000]
    for data in (values, values.astype(np.float32)):
        first, last = float(data.min()), float(data.max())
        if first == last:
            first, last = first - 0.5, last + 0.5
        try:
            counts, edges = np.histogram(data, bins=20, range=(first, last))
        except ValueError:  # too narrow for 20 float bins: the batch declines it
            assert describe_distributions(np.stack([data, data]), quantiles=(0.5,), bins=20) == [None, None]
            continue

        found = describe_distributions(np.stack([data, data[::-1]]), quantiles=(0.5,), bins=20)

        for row in found:
            assert row is not None
            assert row.counts == counts.tolist()
            assert row.offsets == edges.tolist()


def batch_rows() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(8)
    return {
        "float64": np.stack([
            rng.normal(size=1000), rng.exponential(size=1000) ** 4, np.full(1000, 3.5),
            1e16 + rng.integers(0, 3, size=1000).astype(float), np.round(rng.normal(size=1000), 1),
        ]),
        "float32": np.stack([rng.normal(size=300), np.full(300, 1.6e7), rng.integers(0, 3, 300)])
        .astype(np.float32),
        "int64": np.stack([
            rng.integers(0, 1_000_000, size=50), np.full(50, 7), rng.integers(-5, 5, size=50),
            rng.integers(2**62, 2**62 + 1000, size=50), rng.integers(0, 2, size=50),
        ]),
        "float64-on-bin-edges": np.stack([on_bin_edges(), on_bin_edges()[::-1] * 3]),
        "uint64": np.stack([rng.integers(0, 2**64 - 1, size=9, dtype=np.uint64),
                            np.arange(9, dtype=np.uint64)]),
        "int8": np.stack([rng.integers(-128, 127, size=2), np.array([3, 3])]).astype(np.int8),
    }


@pytest.mark.parametrize("dtype", list(batch_rows()))
def test_batched_distributions_equal_one_by_one(dtype):
    from mlart_prefect.kinds._dataset_distribution import (
        describe_distribution,
        describe_distributions,
    )

    matrix = batch_rows()[dtype]

    batched = describe_distributions(matrix, quantiles=(0.1, 0.25, 0.5, 0.75, 1.0), bins=20)

    assert len(batched) == len(matrix)
    assert any(found is not None for found in batched)
    for row, found in zip(matrix, batched):
        if found is None:
            continue
        expected = describe_distribution(row.copy(), quantiles=(0.1, 0.25, 0.5, 0.75, 1.0), bins=20)
        assert (type(found.minimum), found.minimum) == (type(expected.minimum), expected.minimum)
        assert (type(found.maximum), found.maximum) == (type(expected.maximum), expected.maximum)
        assert [type(value) for value in found.quantiles] == [type(value) for value in expected.quantiles]
        assert found.quantiles == expected.quantiles
        assert found.base == expected.base
        assert found.offsets == expected.offsets
        assert found.counts == expected.counts


def test_batched_distributions_decline_narrow_rows():
    from mlart_prefect.kinds._dataset_distribution import describe_distributions

    narrow = 1e16 + np.array([0.0, 2.0, 2.0, 0.0])  # float64 cannot split it into 20 bins
    beyond_float = np.array([2**62 + 1, 2**62 + 3, 2**62 + 7, 2**62 + 1])  # minimum rounds up

    floats = describe_distributions(np.stack([narrow, np.arange(4.0)]), quantiles=(0.5,), bins=20)
    integers = describe_distributions(np.stack([beyond_float, np.arange(4)]), quantiles=(0.5,), bins=20)

    assert floats[0] is None
    assert floats[1] is not None
    assert integers[0] is None
    assert integers[1] is not None


def test_batched_statistics_equal_column_statistics():
    from mlart_prefect.kinds._dataset_stats import (
        _batched_numeric_statistics,
        column_statistics,
        compute_statistics,
    )

    rng = np.random.default_rng(9)
    table = pa.table(
        {
            "a": rng.normal(size=400),
            "b": 1e16 + rng.integers(0, 3, size=400).astype(float),
            "c": np.full(400, 2.5),
            "d": rng.integers(0, 1000, size=400),
            "e": rng.integers(2**62, 2**62 + 10, size=400),
            "f": rng.normal(size=400).astype(np.float32),
            "g": rng.normal(size=400).astype(np.float32) * 1e6,
            "with_nan": np.where(rng.random(400) < 0.1, np.nan, rng.normal(size=400)),
            "alone": rng.integers(0, 5, size=400).astype(np.int16),
            "chunked": pa.chunked_array([rng.normal(size=150), rng.normal(size=250)]),
            "time": pa.array(pd.date_range("2024-03-30", periods=400, freq="17min", tz="UTC")),
            # 300 years of nanoseconds: the distances from the minimum exceed 2**53.
            "wide": pa.array(pd.to_datetime(rng.integers(-4 * 10**18, 5 * 10**18, size=400))),
            "day": pa.array(pd.date_range("1960-01-01", periods=400, freq="7D").date),
            "wait": pa.array(pd.to_timedelta(rng.integers(-10**6, 10**6, size=400), unit="s")),
            "day64": pa.array(rng.integers(0, 10**6, size=400) * 86_400_000, pa.date64()),
            "berlin": pa.array(pd.date_range("2024-03-30", periods=400, freq="7min",
                                             tz="Europe/Berlin")),
        }
    )
    columns = list(zip(table.column_names, table.columns))

    computed = compute_statistics(columns, table.num_rows)["columns"]

    batched = [0, 2, 3, 5, 6, 8, 9, 10, 12, 13, 14, 15]
    assert sorted(_batched_numeric_statistics(columns)) == batched
    for name, data in columns:
        expected = column_statistics(data)
        assert list(computed[name]) == list(expected), name
        assert computed[name] == expected, name


@pytest.mark.parametrize("size", [1, 2, 7, 1000, 100_003])
def test_row_moments_equal_numpy_mean_and_std(size):
    from mlart_prefect.kinds._dataset_stats import _row_moments

    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(5, size)) * 10.0 ** rng.integers(-5, 5, size=(5, 1))

    moments = _row_moments(matrix)

    assert [mean for mean, _ in moments] == matrix.mean(axis=1).tolist()
    expected_stds = matrix.std(axis=1, ddof=1).tolist() if size > 1 else [None] * 5
    assert [std for _, std in moments] == expected_stds


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_duration_text_equals_pandas(unit):
    from mlart_prefect.kinds._dataset_stats import duration_text

    values = [0, 1, 59, 999, 1_000, 1_001, 86_399, 86_400, 10**6 + 1, 10**9, 10**9 + 7,
              123_456_789_012, 2**62, -1, -86_401]
    for value in values:
        if abs(value) * {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[unit] >= 2**63:
            continue  # beyond what pandas can represent in nanoseconds
        assert duration_text(value, unit) == str(pd.Timedelta(value, unit=unit)), value


@pytest.mark.parametrize(
    "type_",
    [pa.timestamp("ns", tz="Europe/Berlin"), pa.timestamp("us"), pa.date32(), pa.date64(),
     pa.duration("ms"), pa.float64(), pa.int8(), pa.bool_(), pa.decimal128(5, 2)],
    ids=str,
)
def test_statistics_of_columns_without_values(type_):
    from mlart_prefect.kinds._dataset_stats import column_statistics

    # A table sliced or filtered to nothing can hold columns without any chunk.
    for data in (pa.chunked_array([], type=type_), pa.chunked_array([pa.array([None], type_)])):
        stats = column_statistics(data)

        assert "error" not in stats
        assert (stats["count"], stats["mean"], stats["histogram"]) == (0, None, None)


def test_batch_failure_falls_back_per_column(monkeypatch):
    from mlart_prefect.kinds import _dataset_stats

    def failing(matrix, **options):
        raise ValueError("no batch")

    columns = [("a", pa.chunked_array([[1.0, 2.0, 4.0]])), ("b", pa.chunked_array([[3.0, 5.0, 6.0]]))]
    expected = [_dataset_stats.column_statistics(data) for _, data in columns]
    monkeypatch.setattr(_dataset_stats, "describe_distributions", failing)

    computed = _dataset_stats.compute_statistics(columns, 3)["columns"]

    assert computed["a"] == expected[0]
    assert computed["b"] == expected[1]
    assert computed["b"]["50%"] == 5.0


def test_statistics_of_every_arrow_type_are_strict_json(local_store):
    table = pa.table(
        {
            "half": pa.array([1.5, None, 2.5], pa.float16()),
            "big_decimal": pa.array([decimal.Decimal("1.5"), None, decimal.Decimal(2)], pa.decimal256(40, 2)),
            "clock": pa.array([dt.time(1, 2), None, dt.time(3, 4)], pa.time64("us")),
            "blob": pa.array([b"a", None, b"\xff"], pa.binary()),
            "pair": pa.array([b"ab", None, b"cd"], pa.binary(2)),
            "tags": pa.array([[1], None, []]),
            "point": pa.array([{"a": 1}, None, {"a": 2}]),
            "mapping": pa.array([[("k", 1)], None, []], pa.map_(pa.string(), pa.int64())),
            "codes": pa.array([1, 2, 1]).dictionary_encode(),
            "nothing": pa.array([None, None, None]),
            "wait": pa.array([1, None, 5], pa.duration("s")),
            "day": pa.array([0, None, 86_400_000], pa.date64()),
            "flag": pa.array([True, None, False]),
            "unsigned": pa.array([2**64 - 1, 0, None], pa.uint64()),
        }
    )

    manifest, loaded = round_trip(local_store, table)

    assert loaded.equals(table)
    stats = manifest.spec["stats"]["columns"]
    assert (stats["half"]["kind"], stats["half"]["50%"]) == ("numeric", 2.0)
    assert stats["big_decimal"]["max"] == 2.0
    assert (stats["clock"]["kind"], stats["clock"]["distinct"]) == ("other", 2)
    assert stats["blob"]["top"][0] == {"value": "<1 byte: 0x61>", "count": 1}
    assert stats["tags"]["distinct"] is None
    assert stats["codes"]["top"][0] == {"value": 1, "count": 2}
    assert (stats["nothing"]["count"], stats["nothing"]["nulls"]) == (0, 3)
    assert (stats["wait"]["kind"], stats["wait"]["max"]) == ("timedelta", "0 days 00:00:05")
    assert (stats["day"]["kind"], stats["day"]["max"]) == ("date", "1970-01-02")
    assert stats["unsigned"]["max"] == 2**64 - 1
    for column in stats.values():
        assert "error" not in column


def test_parquet_write_error_raised_after_statistics(local_store):
    table = pa.table({"a": [1, 2], "empty": pa.array([{}, {}], pa.struct([]))})

    expected = "Cannot write the dataset as Parquet.*'empty'"
    with pytest.raises(UnsupportedValueError, match=expected) as raised:
        api.save("empty-struct", table, store=local_store)

    assert ".." not in str(raised.value)  # pyarrow's message ends with a full stop of its own

    assert stored_files(local_store) == []
    with pytest.raises(NotFoundError):
        local_store.get("empty-struct")


@pytest.mark.parametrize("rows", [2, 60_000], ids=["small", "large"])
def test_parquet_write_error_wins_over_statistics_error(local_store, monkeypatch, rows):
    from mlart_prefect.kinds import dataset

    def failing_statistics(columns, num_rows):
        raise RuntimeError("statistics broke")

    monkeypatch.setattr(dataset, "compute_statistics", failing_statistics)
    table = pa.table({"a": np.arange(rows), "b": np.arange(rows),
                      "empty": pa.array([{}] * rows, pa.struct([]))})

    with pytest.raises(UnsupportedValueError, match="Cannot write the dataset as Parquet"):
        api.save("empty-struct", table, store=local_store, stats=True)

    assert stored_files(local_store) == []


def test_statistics_failure_keeps_counts(monkeypatch):
    from mlart_prefect.kinds import _dataset_stats

    def unsupported(data):
        raise pa.ArrowNotImplementedError("no kernel")

    monkeypatch.setattr(_dataset_stats, "_typed_statistics", unsupported)

    stats = _dataset_stats.column_statistics(pa.chunked_array([[1, None]]))

    assert stats == {"kind": "other", "type": "int64", "count": 1, "nulls": 1, "error": "no kernel"}
