"""The dataset part of the version page: preview table, schema, statistics and histogram bars."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlart_prefect._summary import format_value

if TYPE_CHECKING:
    from mlart_prefect.manifest import Manifest

HISTOGRAM_WIDTH = 160
HISTOGRAM_HEIGHT = 36
_NUMERIC_FACTS = ("mean", "std", "min", "25%", "50%", "75%", "max")


@dataclass
class HistogramBar:
    """One bar of an inline SVG histogram, in pixels, with its tooltip."""

    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass
class ColumnStatistics:
    """The statistics of one column as the page shows them."""

    name: str
    kind: str
    type: str
    facts: list[tuple[str, str]]
    bars: list[HistogramBar] = field(default_factory=list)
    top: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class DatasetView:
    """Preview, schema and statistics of a dataset version."""

    num_rows: int | None
    num_columns: int | None
    preview_columns: list[str]
    preview_rows: list[list[str]]
    index_columns: int
    hidden_columns: int
    schema: list[list[str]]
    statistics: list[ColumnStatistics]


def histogram_bars(histogram: dict[str, Any] | None) -> list[HistogramBar]:
    """Lay out a stored histogram (``edges`` and ``counts``) as SVG bars scaled to the tallest."""
    if not histogram or not histogram.get("counts"):
        return []
    counts = [int(count or 0) for count in histogram["counts"]]
    edges = histogram.get("edges") or []
    tallest = max(counts) or 1
    width = HISTOGRAM_WIDTH / len(counts)

    bars = []
    for position, count in enumerate(counts):
        height = HISTOGRAM_HEIGHT * count / tallest
        if position + 1 < len(edges):
            span = f"{format_value(edges[position])} to {format_value(edges[position + 1])}"
        else:
            span = f"bin {position + 1}"
        bars.append(
            HistogramBar(
                x=round(position * width, 2),
                y=round(HISTOGRAM_HEIGHT - height, 2),
                width=round(max(width - 1, 1), 2),
                height=round(height, 2),
                title=f"{span}: {count}",
            )
        )
    return bars


def _column_statistics(name: str, entry: dict[str, Any]) -> ColumnStatistics:
    facts = [
        ("count", format_value(entry.get("count"))),
        ("missing", format_value(entry.get("nulls"))),
    ]
    if entry.get("nan_count"):
        facts.append(("NaN", format_value(entry["nan_count"])))
    facts += [(fact, format_value(entry[fact])) for fact in _NUMERIC_FACTS if fact in entry]
    if "distinct" in entry:
        facts.append(("distinct", format_value(entry["distinct"])))
    top = [
        (format_value(item.get("value")), format_value(item.get("count")))
        for item in entry.get("top") or []
    ]
    return ColumnStatistics(
        name=name,
        kind=str(entry.get("kind", "")),
        type=str(entry.get("type", "")),
        facts=facts,
        bars=histogram_bars(entry.get("histogram")),
        top=top[:5],
    )


def _statistics_of(spec: dict[str, Any]) -> dict[str, Any]:
    stats = spec.get("statistics") or spec.get("stats")
    return stats if isinstance(stats, dict) else {}


def dataset_view(manifest: Manifest) -> DatasetView:
    """Build the dataset part of the page from the version's spec; absent parts stay empty."""
    spec = manifest.spec
    preview = spec.get("preview") if isinstance(spec.get("preview"), dict) else {}
    statistics = _statistics_of(spec)
    schema = spec.get("schema") if isinstance(spec.get("schema"), list) else []

    num_rows = spec.get("num_rows", preview.get("total_rows", statistics.get("num_rows")))
    num_columns = spec.get("num_columns", preview.get("total_columns", len(schema) or None))
    preview_columns = [str(column) for column in preview.get("columns", [])]
    index_columns = int(preview.get("index_columns", 0) or 0)
    shown_data_columns = len(preview_columns) - index_columns
    hidden = max(0, int(num_columns or 0) - shown_data_columns) if preview_columns else 0

    return DatasetView(
        num_rows=num_rows,
        num_columns=num_columns,
        preview_columns=preview_columns,
        preview_rows=[[_cell(value) for value in row] for row in preview.get("rows", [])],
        index_columns=index_columns,
        hidden_columns=hidden,
        schema=[
            [
                str(entry.get("name", "")),
                str(entry.get("dtype", "")),
                str(entry.get("arrow_type", "")),
            ]
            for entry in schema
            if isinstance(entry, dict)
        ],
        statistics=[
            _column_statistics(name, entry)
            for name, entry in (statistics.get("columns") or {}).items()
            if isinstance(entry, dict)
        ],
    )


def _cell(value: Any) -> str:
    return "" if value is None else format_value(value)
