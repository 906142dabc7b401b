"""Text rendering for the ``mlart`` command: listings, manifests and lineage trees."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.tree import Tree

    from mlart_prefect._lineage_graph import LineageNode
    from mlart_prefect.manifest import Manifest, Producer

LISTING_COLUMNS = ("KEY", "VERSION", "KIND", "LABELS", "PRODUCER", "OWNER", "CREATED (UTC)", "SIZE")
_COLUMN_WIDTH_LIMIT = {"KEY": 48, "LABELS": 40, "PRODUCER": 40, "OWNER": 20}


def format_size(size: int) -> str:
    """Return a byte count in binary units: ``512 B``, ``1.5 KiB``, ``12.0 MiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_time(moment: datetime | None) -> str:
    """Return a time in UTC as ``2024-05-01 12:30:05``; naive times are taken as UTC."""
    if moment is None:
        return "-"
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def format_labels(labels: dict[str, str]) -> str:
    """Return labels as ``name=value`` pairs separated by commas."""
    return ", ".join(f"{name}={value}" for name, value in sorted(labels.items()))


def producer_text(producer: Producer) -> str:
    """Return ``flow / flow-run-name`` for a version made in a Prefect run, else ``-``."""
    parts = [part for part in (producer.flow_name, producer.flow_run_name) if part]
    if not parts and producer.task_name:
        parts = [producer.task_name]
    return " / ".join(parts) or "-"


def listing_record(manifest: Manifest) -> dict[str, Any]:
    """Return the fields ``mlart ls --json`` prints for one version (the spec is left out)."""
    producer = manifest.producer
    return {
        "ref": manifest.ref,
        "project": manifest.project,
        "key": manifest.key,
        "version": manifest.version,
        "kind": manifest.kind,
        "labels": manifest.labels,
        "owner": manifest.owner,
        "created": manifest.created.isoformat(),
        "size": manifest.size,
        "primary": manifest.primary,
        "description": manifest.description,
        "producer": {
            "flow_name": producer.flow_name,
            "flow_run_id": producer.flow_run_id,
            "flow_run_name": producer.flow_run_name,
            "task_name": producer.task_name,
            "task_run_id": producer.task_run_id,
        },
        "inputs": manifest.inputs,
    }


def listing_rows(manifests: Sequence[Manifest], *, with_project: bool) -> list[list[str]]:
    """Return one table row per version, in the order of ``LISTING_COLUMNS``."""
    rows = []
    for manifest in manifests:
        key = f"{manifest.project}/{manifest.key}" if with_project else manifest.key
        rows.append(
            [
                key,
                str(manifest.version),
                manifest.kind,
                format_labels(manifest.labels) or "-",
                producer_text(manifest.producer),
                manifest.owner or "-",
                format_time(manifest.created),
                format_size(manifest.size),
            ]
        )
    return rows


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return rows as left-aligned text columns separated by two spaces.

    Plain string formatting instead of a rich table, because rich needs seconds to lay out the
    ten thousand rows of a large ``ls --all``. Long cells of the columns named in
    ``_COLUMN_WIDTH_LIMIT`` are cut with an ellipsis.
    """
    limits = [_COLUMN_WIDTH_LIMIT.get(header) for header in headers]
    clipped = [
        [_clip(cell, limit) if limit else cell for cell, limit in zip(row, limits)] for row in rows
    ]
    widths = [len(header) for header in headers]
    for row in clipped:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()

    return "\n".join([line(headers), *(line(row) for row in clipped)])


def to_json(data: Any) -> str:
    """Return data as indented JSON; values JSON does not know are written as text."""
    return json.dumps(data, indent=2, default=str, ensure_ascii=False)


def lineage_tree(manifest: Manifest, up: list[LineageNode], down: list[LineageNode]) -> Tree:
    """Build a rich tree with the version at the root and its inputs and consumers below."""
    from rich.markup import escape
    from rich.tree import Tree

    root = Tree(f"[bold]{escape(manifest.ref)}[/bold] ({manifest.kind})")
    made_from = root.add(
        "[cyan]made from[/cyan]" if up else "[cyan]made from[/cyan]: nothing recorded"
    )
    for node in up:
        _add_lineage_node(made_from, node)
    used_by = root.add("[cyan]used by[/cyan]" if down else "[cyan]used by[/cyan]: no version")
    for node in down:
        _add_lineage_node(used_by, node)
    return root


def _add_lineage_node(parent: Tree, node: LineageNode) -> None:
    from rich.markup import escape

    if node.manifest is None:
        label = f"{escape(node.ref)} [red](unavailable: {escape(node.error or 'not found')})[/red]"
    else:
        producer = producer_text(node.manifest.producer)
        label = f"{escape(node.ref)} ({node.manifest.kind}, {format_time(node.manifest.created)}"
        label += f", {escape(producer)})" if producer != "-" else ")"
    if node.repeated:
        label += " [dim](shown above)[/dim]"
    if node.cut:
        label += f" [dim](+{node.cut} more beyond --depth)[/dim]"
    branch = parent.add(label)
    for child in node.children:
        _add_lineage_node(branch, child)


def print_fields(console: Console, title: str, fields: Sequence[tuple[str, str]]) -> None:
    """Print a section title and its non-empty name/value pairs, the values aligned."""
    from rich.markup import escape

    filled = [(name, value) for name, value in fields if value]
    if not filled:
        return
    console.print(f"\n[bold]{escape(title)}[/bold]")
    width = max(len(name) for name, _ in filled)
    for name, value in filled:
        console.print(f"[cyan]{escape(name.ljust(width))}[/cyan]  {escape(value)}", highlight=False)


def print_table(
    console: Console, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]
) -> None:
    """Print a section title and a plain text table without the columns empty in every row."""
    from rich.markup import escape

    if not rows:
        return
    non_empty = [index for index in range(len(columns)) if any(row[index] for row in rows)]
    headers = [columns[index] for index in non_empty]
    cells = [[row[index] for index in non_empty] for row in rows]
    console.print(f"\n[bold]{escape(title)}[/bold]")
    console.print(escape(plain_table(headers, cells)), highlight=False, soft_wrap=True)
