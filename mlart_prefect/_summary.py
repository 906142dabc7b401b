"""Kind-specific summaries of a version (dataset schema, model metrics, plot size) as plain text."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlart_prefect.manifest import Manifest


@dataclass
class SummaryTable:
    """A titled table of text cells."""

    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclass
class KindSummary:
    """Facts and tables about a version's content, beyond its manifest fields."""

    facts: list[tuple[str, str]] = field(default_factory=list)
    tables: list[SummaryTable] = field(default_factory=list)


def format_value(value: Any) -> str:
    """Return a spec value as short text: floats with up to 6 significant digits, JSON otherwise."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.6g}"
    if isinstance(value, (int, str)):
        return str(value)
    return json.dumps(value, default=str, ensure_ascii=False)


def summarize(manifest: Manifest) -> KindSummary:
    """Return the summary of a version by kind; other kinds list their scalar spec fields."""
    if manifest.kind == "dataset":
        return _dataset_summary(manifest.spec)
    if manifest.kind == "model":
        return _model_summary(manifest.spec)
    if manifest.kind == "plot":
        return _plot_summary(manifest.spec)
    facts = [
        (name, format_value(value))
        for name, value in manifest.spec.items()
        if value is None or isinstance(value, (str, int, float, bool))
    ]
    return KindSummary(facts=facts)


def _plot_summary(spec: dict[str, Any]) -> KindSummary:
    size = ""
    if spec.get("width") and spec.get("height"):
        size = f"{spec['width']} x {spec['height']} px"
        if spec.get("dpi"):
            size += f" at {format_value(spec['dpi'])} dpi"
    facts = [
        ("Title", spec.get("title") or ""),
        ("Size", size),
        ("Formats", ", ".join(spec.get("formats") or [])),
        ("Axes", format_value(spec["axes"]) if "axes" in spec else ""),
        ("Warnings", _warnings_text(spec)),
    ]
    return KindSummary(facts=facts)


def _warnings_text(spec: dict[str, Any]) -> str:
    return "; ".join(str(warning) for warning in spec.get("warnings") or [])


def _with_version(name: Any, version: Any) -> str:
    if not name:
        return ""
    return f"{name} {version}" if version else str(name)


def _model_summary(spec: dict[str, Any]) -> KindSummary:
    facts = [
        ("Framework", _with_version(spec.get("framework"), spec.get("framework_version"))),
        ("Algorithm", spec.get("algorithm") or ""),
        ("Model class", spec.get("model_class") or ""),
        ("Model file", spec.get("model_file") or ""),
        ("Serializer", _with_version(spec.get("serializer"), spec.get("serializer_version"))),
        ("Python", spec.get("python_version") or ""),
        ("Warnings", _warnings_text(spec)),
    ]
    tables = []
    metrics = spec.get("metrics") or {}
    if metrics:
        rows = [[name, format_value(value)] for name, value in metrics.items()]
        tables.append(SummaryTable("Metrics", ["metric", "value"], rows))
    parameters = spec.get("parameters") or {}
    if parameters:
        rows = [[name, format_value(value)] for name, value in parameters.items()]
        tables.append(SummaryTable("Parameters", ["parameter", "value"], rows))
    extra = spec.get("extra_data") or {}
    if extra:
        rows = [
            [name, entry.get("ref") or entry.get("body") or "", entry.get("type", "")]
            for name, entry in extra.items()
        ]
        tables.append(SummaryTable("Extra data", ["name", "stored as", "type"], rows))
    return KindSummary(facts=facts, tables=tables)


_STATISTICS_COLUMNS = ("count", "nulls", "mean", "std", "min", "50%", "max", "distinct")


def _dataset_summary(spec: dict[str, Any]) -> KindSummary:
    """Summarize the dataset spec: type, format, shape, schema and per-column statistics."""
    facts = [
        ("Type", spec.get("python_type") or ""),
        ("Format", spec.get("format") or ""),
        ("Rows", format_value(spec["num_rows"]) if "num_rows" in spec else ""),
        ("Columns", format_value(spec["num_columns"]) if "num_columns" in spec else ""),
        ("Statistics", f"skipped: {spec['stats_skipped']}" if spec.get("stats_skipped") else ""),
        ("Warnings", _warnings_text(spec)),
    ]
    tables = []
    schema = [entry for entry in spec.get("schema") or [] if isinstance(entry, dict)]
    if schema:
        rows = [
            [
                str(entry.get("name", "")),
                str(entry.get("dtype", "")),
                str(entry.get("arrow_type", "")),
                format_value(entry.get("nullable")),
            ]
            for entry in schema
        ]
        tables.append(SummaryTable("Schema", ["column", "dtype", "arrow type", "nullable"], rows))
    columns = (
        ((spec.get("stats") or {}).get("columns") or {})
        if isinstance(spec.get("stats"), dict)
        else {}
    )
    if columns:
        rows = [
            [
                name,
                *(
                    format_value(entry[field]) if field in entry else ""
                    for field in _STATISTICS_COLUMNS
                ),
            ]
            for name, entry in columns.items()
            if isinstance(entry, dict)
        ]
        tables.append(SummaryTable("Statistics", ["column", *_STATISTICS_COLUMNS], rows))
    return KindSummary(facts=facts, tables=tables)
