"""Tests of to_json_value: every kind of value becomes strict JSON with a readable form."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import math
import uuid
from collections import OrderedDict

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlart_prefect.jsonsafe import is_missing, narrow_float, to_json_value


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 2


BERLIN = dt.timezone(dt.timedelta(hours=2))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (float("nan"), None),
        (np.float32("nan"), None),
        (pd.NA, None),
        (pd.NaT, None),
        (np.datetime64("NaT"), None),
        (np.timedelta64("NaT"), None),
        (decimal.Decimal("NaN"), None),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (np.float64("-inf"), "-inf"),
        (decimal.Decimal("Infinity"), "inf"),
        (True, True),
        (np.bool_(False), False),
        (7, 7),
        (np.int64(-3), -3),
        (np.uint8(255), 255),
        (2.5, 2.5),
        (np.float32(0.1), 0.1),
        (np.float16(1.5), 1.5),
        ("text", "text"),
        (np.str_("numpy text"), "numpy text"),
        (decimal.Decimal("19.90"), "19.90"),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (Color.RED, "red"),
        (Level.HIGH, 2),
        (1 + 2j, "(1+2j)"),
    ],
)
def test_scalars_convert(value, expected):
    converted = to_json_value(value)

    assert converted == expected
    assert type(converted) is type(expected)
    json.dumps(converted, allow_nan=False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.datetime(2024, 3, 31, 2, 30), "2024-03-31T02:30:00"),
        (dt.datetime(2024, 3, 31, 2, 30, tzinfo=BERLIN), "2024-03-31T02:30:00+02:00"),
        (pd.Timestamp("2024-01-01 00:00:00.000000001", tz="UTC"), "2024-01-01T00:00:00.000000001+00:00"),
        (np.datetime64("2024-01-02T03:04:05"), "2024-01-02T03:04:05"),
        (np.datetime64("2024-01-02"), "2024-01-02"),
        (dt.date(2024, 2, 29), "2024-02-29"),
        (dt.time(13, 5, 0, 250), "13:05:00.000250"),
        (dt.timedelta(days=1, hours=2), "1 days 02:00:00"),
        (pd.Timedelta("3us"), "0 days 00:00:00.000003"),
        (np.timedelta64(90, "s"), "0 days 00:01:30"),
        (pd.Period("2024-03", freq="M"), "2024-03"),
        (pd.Interval(0, 1), "(0, 1]"),
    ],
)
def test_time_values_are_readable_text(value, expected):
    assert to_json_value(value) == expected


def test_bytes_are_summarised_in_hex():
    assert to_json_value(b"\xff\xfe\x00") == "<3 bytes: 0xfffe00>"
    assert to_json_value(b"") == "<0 bytes>"
    assert to_json_value(b"x") == "<1 byte: 0x78>"
    long = bytes(range(40))
    assert to_json_value(long) == "<40 bytes: 0x000102030405060708090a0b0c0d0e0f…>"
    assert to_json_value(bytearray(b"ab")) == "<2 bytes: 0x6162>"
    assert to_json_value(memoryview(b"ab")) == "<2 bytes: 0x6162>"


def test_long_strings_are_cut_with_a_mark():
    assert to_json_value("a" * 200) == "a" * 200
    assert to_json_value("a" * 205) == "a" * 200 + "… (+5 chars)"
    assert to_json_value("abcdef", max_string_length=3) == "abc… (+3 chars)"


def test_lone_surrogates_become_escaped_text():
    text = b"caf\xe9".decode("utf-8", "surrogateescape")

    converted = to_json_value(text)

    assert converted == "caf\\udce9"
    converted.encode("utf-8")


def test_containers_convert_recursively():
    value = {
        "when": pd.Timestamp("2024-01-01"),
        1: [np.int64(1), float("nan"), (2, 3)],
        "inner": OrderedDict(x={"y": np.array([1.5, np.inf])}),
        "set": {4},
    }

    converted = to_json_value(value)

    assert converted == {
        "when": "2024-01-01T00:00:00",
        "1": [1, None, [2, 3]],
        "inner": {"x": {"y": [1.5, "inf"]}},
        "set": [4],
    }
    json.dumps(converted, allow_nan=False)


def test_large_containers_are_cut_with_a_mark():
    assert to_json_value(list(range(5)), max_items=3) == [0, 1, 2, "… (+2 items)"]
    assert to_json_value({str(i): i for i in range(4)}, max_items=2) == {"0": 0, "1": 1, "…": "+2 keys"}


def test_deep_nesting_becomes_text():
    value: list = []
    for _ in range(12):
        value = [value]

    converted = to_json_value(value)

    depth = 0
    while isinstance(converted, list):
        converted = converted[0]
        depth += 1
    assert depth == 8
    assert converted == "[[[[[]]]]]"


def test_pyarrow_scalars_convert():
    assert to_json_value(pa.scalar(3)) == 3
    assert to_json_value(pa.scalar(None, pa.int64())) is None
    assert to_json_value(pa.scalar([1, 2])) == [1, 2]


def test_unknown_objects_use_str_and_survive_broken_str():
    class Thing:
        def __str__(self) -> str:
            return "thing"

    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no text")

    assert to_json_value(Thing()) == "thing"
    assert to_json_value(Broken()) == "<unprintable test_unknown_objects_use_str_and_survive_broken_str.<locals>.Broken>"


@pytest.mark.parametrize(
    ("value", "missing"),
    [(None, True), (float("nan"), True), (pd.NA, True), (pd.NaT, True), (np.float32("nan"), True),
     (0.0, False), ("", False), (np.datetime64("2024-01-01"), False), ([], False)],
)
def test_is_missing(value, missing):
    assert is_missing(value) is missing


@pytest.mark.parametrize(
    ("value", "narrow_type", "expected"),
    [
        (float(np.float32(0.1)), np.float32, 0.1),
        (float(np.float16(0.1)), np.float16, 0.1),
        (0.30000000000000004, np.float32, 0.3),
        (1e6, np.float16, 1e6),  # beyond float16: unchanged
        (math.inf, np.float32, math.inf),
        (None, np.float32, None),
        ("inf", np.float32, "inf"),
        (3, np.float32, 3),
    ],
)
def test_narrow_float_shortest_text(value, narrow_type, expected):
    assert narrow_float(value, narrow_type) == expected
