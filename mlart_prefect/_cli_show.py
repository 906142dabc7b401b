"""The ``mlart show`` page: one version's manifest laid out for a person to read."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlart_prefect._cli_render import (
    format_labels,
    format_size,
    format_time,
    print_fields,
    print_table,
)
from mlart_prefect._summary import format_value, summarize

if TYPE_CHECKING:
    from rich.console import Console

    from mlart_prefect.manifest import Manifest


def flow_run_url(prefect_ui_url: str | None, flow_run_id: str | None) -> str | None:
    """Return the Prefect UI page of a flow run, or None without a UI URL or run id."""
    if not prefect_ui_url or not flow_run_id:
        return None
    return f"{prefect_ui_url.rstrip('/')}/runs/flow-run/{flow_run_id}"


def print_manifest(
    manifest: Manifest,
    *,
    tags: list[str],
    locations: dict[str, str] | None = None,
    prefect_ui_url: str | None = None,
    console: Console | None = None,
) -> None:
    """Print a version's identity, bodies, producer, inputs and kind summary.

    Args:
        manifest: The version.
        tags: Tags pointing at this version.
        locations: Where the store reads each body, by body name (default: where each body
            was written, as the manifest records it).
        prefect_ui_url: Base URL of the Prefect UI; when set, the flow run's page is printed.
        console: Where to print (default: a rich console on stdout).
    """
    from rich.console import Console

    console = console or Console(soft_wrap=True)
    primary = manifest.body() if manifest.bodies else None

    print_fields(
        console,
        manifest.ref,
        [
            ("Kind", manifest.kind),
            ("Created", f"{format_time(manifest.created)} UTC"),
            ("Owner", manifest.owner or ""),
            ("Labels", format_labels(manifest.labels)),
            ("Tags", ", ".join(tags)),
            ("Description", manifest.description or ""),
            ("Size", _size_text(manifest)),
            ("sha256", f"{primary.sha256} ({primary.name})" if primary else ""),
        ],
    )
    _print_bodies(console, manifest, locations or {})
    _print_producer(console, manifest, prefect_ui_url)
    if manifest.inputs:
        print_fields(console, "Inputs", [(str(n), ref) for n, ref in enumerate(manifest.inputs, 1)])

    summary = summarize(manifest)
    print_fields(console, f"{manifest.kind.capitalize()} summary", summary.facts)
    for table in summary.tables:
        print_table(console, table.title, table.columns, table.rows)


def _print_bodies(console: Console, manifest: Manifest, locations: dict[str, str]) -> None:
    from rich.markup import escape

    if not manifest.bodies:
        return
    console.print("\n[bold]Bodies[/bold]")
    for body in manifest.bodies:
        role = " (primary)" if body.name == manifest.primary else ""
        details = f"{escape(body.media_type)}, {format_size(body.size)}"
        console.print(f"[cyan]{escape(body.name)}[/cyan]{role}  {details}")
        console.print(f"  sha256    {body.sha256}", highlight=False)
        location = locations.get(body.name, body.uri)
        console.print(f"  location  {escape(location)}", highlight=False)


def _print_producer(console: Console, manifest: Manifest, prefect_ui_url: str | None) -> None:
    producer = manifest.producer
    attempt = format_value(producer.attempt) if producer.attempt is not None else ""
    fields = [
        ("Flow", producer.flow_name or ""),
        ("Flow run", _name_and_id(producer.flow_run_name, producer.flow_run_id)),
        ("Flow run page", flow_run_url(prefect_ui_url, producer.flow_run_id) or ""),
        ("Task", producer.task_name or ""),
        ("Task run", _name_and_id(producer.task_run_name, producer.task_run_id)),
        ("Deployment", producer.deployment_id or ""),
        ("Parameters", format_value(producer.parameters) if producer.parameters else ""),
        ("Run tags", ", ".join(producer.tags)),
        ("Started", f"{format_time(producer.start_time)} UTC" if producer.start_time else ""),
        ("Attempt", attempt),
        ("Host", producer.host or ""),
    ]
    if not producer.in_prefect_run:
        fields.insert(0, ("Run", "saved outside a Prefect run"))
    print_fields(console, "Producer", fields)


def _size_text(manifest: Manifest) -> str:
    count = len(manifest.bodies)
    return f"{format_size(manifest.size)} in {count} {'body' if count == 1 else 'bodies'}"


def _name_and_id(name: str | None, run_id: str | None) -> str:
    if name and run_id:
        return f"{name} ({run_id})"
    return name or run_id or ""
