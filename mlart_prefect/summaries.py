"""Prefect artifacts that summarise a saved version: a markdown card and a dataset preview table.

Each version saved inside a Prefect run is published on that task run (or flow run) as:

- a markdown artifact, the card: reference, version, labels, producer, body URI, size and
  sha256, then the kind's summary (dataset schema, statistics and preview; model metrics,
  parameters and extra data; the plot image itself when its PNG is at most
  ``IMAGE_MAX_BYTES``);
- for a dataset with a preview, a table artifact holding the preview rows as row dicts.

Prefect artifact keys accept only lowercase letters, digits and ``-``, so a version of
``project/key`` is published under ``prefect_artifact_key(project, key)``: lowercased, every
other character replaced by ``-`` and runs of ``-`` collapsed (``churn/Training_Data`` becomes
``churn-training-data``); the table adds ``-preview``. Prefect keeps every artifact created
under a key and shows the newest, so the key's history in Prefect follows our versions.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from uuid import UUID

from mlart_prefect._cli_render import format_size
from mlart_prefect.jsonsafe import to_json_value
from mlart_prefect.manifest import Manifest

if TYPE_CHECKING:
    from prefect.client.schemas.actions import ArtifactCreate

    from mlart_prefect.store import ArtifactStore

__all__ = [
    "IMAGE_MAX_BYTES",
    "apublish",
    "deferred_publishing",
    "markdown_card",
    "prefect_artifact_key",
    "preview_table",
    "publish",
]

logger = logging.getLogger(__name__)

IMAGE_MAX_BYTES = 300_000
"""Largest PNG embedded in a plot's card; a larger plot gets a note and its body URI instead."""

ARTIFACT_KEY_MAX_LENGTH = 200
"""Maximum length of a Prefect artifact key made here; longer keys are cut."""

_NO_CUT = 1_000_000_000

_pending: contextvars.ContextVar[list[tuple[Manifest, ArtifactStore | None]] | None] = (
    contextvars.ContextVar("mlart_pending_publications", default=None)
)


def prefect_artifact_key(project: str, key: str) -> str:
    """Return the Prefect artifact key for a project's key, e.g. ``"churn-training-data"``."""
    slug = re.sub(r"[^a-z0-9-]+", "-", f"{project}-{key}".lower())
    slug = re.sub(r"-{2,}", "-", slug).strip("-")
    return slug[:ARTIFACT_KEY_MAX_LENGTH].rstrip("-") or "mlart"


# -- when to publish ---------------------------------------------------------------------------


def publish_saved(manifest: Manifest, *, store: ArtifactStore | None = None, enabled: bool | None = None) -> None:
    """Publish a just-saved version when publishing is on and a Prefect run is active.

    Called after every save. Failures are logged as warnings; the version stays saved.

    Args:
        manifest: The saved version.
        store: Its store, read for a plot's PNG (default: the default store).
        enabled: On or off for this version (default: the ``MLART_PUBLISH`` setting).
    """
    from mlart_prefect import lineage
    from mlart_prefect.settings import get_settings

    if enabled is None:
        enabled = get_settings().publish
    if not enabled or not any(lineage.current_run_ids()):
        return
    pending = _pending.get()
    if pending is not None:
        pending.append((manifest, store))
        return
    try:
        publish(manifest, store=store)
    except Exception as exc:  # noqa: BLE001 - publishing must never lose a saved version
        _warn_failed(manifest, exc)


@contextmanager
def deferred_publishing() -> Iterator[list[tuple[Manifest, ArtifactStore | None]]]:
    """Collect the versions saved inside the block instead of publishing them at once.

    An async task saves synchronously inside this block, then awaits ``apublish_pending``
    so that Prefect artifacts are sent with the asynchronous client.
    """
    pending: list[tuple[Manifest, ArtifactStore | None]] = []
    token = _pending.set(pending)
    try:
        yield pending
    finally:
        _pending.reset(token)


async def apublish_pending(pending: list[tuple[Manifest, ArtifactStore | None]]) -> None:
    """Publish versions collected by ``deferred_publishing``; failures become warnings."""
    for manifest, store in pending:
        try:
            await apublish(manifest, store=store)
        except Exception as exc:  # noqa: BLE001 - publishing must never lose a saved version
            _warn_failed(manifest, exc)


def _warn_failed(manifest: Manifest, exc: BaseException) -> None:
    logger.warning(
        "Could not publish Prefect artifacts for %s (the version is saved): %s: %s",
        manifest.ref, type(exc).__name__, exc,
    )


# -- sending -----------------------------------------------------------------------------------


def publish(manifest: Manifest, *, store: ArtifactStore | None = None) -> list[UUID]:
    """Create the Prefect artifacts of ``manifest`` on the current run and return their ids.

    Outside a Prefect run the artifacts are created without a run link.

    Raises:
        Exception: Whatever the Prefect client raises (server unreachable, rejected request).
    """
    from prefect.client.orchestration import get_client

    requests = build_artifacts(manifest, store=store)
    with get_client(sync_client=True) as client:
        return [client.create_artifact(artifact=request).id for request in requests]


async def apublish(manifest: Manifest, *, store: ArtifactStore | None = None) -> list[UUID]:
    """Create the Prefect artifacts of ``manifest`` with the asynchronous client.

    Raises:
        Exception: Whatever the Prefect client raises.
    """
    from prefect.client.orchestration import get_client

    # Reading a plot's PNG is file or network I/O, so it runs in a worker thread.
    requests = await asyncio.to_thread(build_artifacts, manifest, store=store)
    async with get_client() as client:
        return [(await client.create_artifact(artifact=request)).id for request in requests]


def build_artifacts(manifest: Manifest, *, store: ArtifactStore | None = None) -> list[ArtifactCreate]:
    """Return the Prefect artifact requests of a version, linked to the current run."""
    from prefect.client.schemas.actions import ArtifactCreate

    from mlart_prefect import lineage

    task_run_id, flow_run_id = lineage.current_run_ids()
    base_key = prefect_artifact_key(manifest.project, manifest.key)
    metadata = {"mlart_ref": manifest.ref, "kind": manifest.kind, "version": str(manifest.version)}
    common = {
        "task_run_id": UUID(task_run_id) if task_run_id else None,
        "flow_run_id": UUID(flow_run_id) if flow_run_id else None,
        "metadata_": metadata,
    }
    requests = [
        ArtifactCreate(
            key=base_key,
            type="markdown",
            description=f"{manifest.kind.capitalize()} {manifest.ref}",
            data=markdown_card(manifest, store=store),
            **common,
        )
    ]
    rows = preview_table(manifest)
    if rows:
        requests.append(
            ArtifactCreate(
                key=f"{base_key}-preview",
                type="table",
                description=f"First {len(rows)} rows of {manifest.ref}",
                data=json.dumps(rows, ensure_ascii=False, allow_nan=False),
                **common,
            )
        )
    return requests


def preview_table(manifest: Manifest) -> list[dict[str, Any]]:
    """Return a dataset's preview rows as dicts of strict-JSON cells (empty for other kinds)."""
    preview = manifest.spec.get("preview") if manifest.kind == "dataset" else None
    if not isinstance(preview, dict) or not preview.get("columns"):
        return []
    names = [str(name) for name in preview["columns"]]
    # The dataset kind already converted and cut the cells. Converting again guards against a
    # preview written by other code, and must not cut the texts a second time.
    return [
        {name: to_json_value(cell, max_string_length=_NO_CUT) for name, cell in zip(names, row)}
        for row in preview.get("rows", [])
    ]


# -- the markdown card -------------------------------------------------------------------------


def markdown_card(manifest: Manifest, *, store: ArtifactStore | None = None) -> str:
    """Return the markdown card of a version: its fields, then the kind's summary."""
    from mlart_prefect.settings import get_settings

    lines = [f"### {manifest.kind.capitalize()} `{manifest.ref}`", ""]
    lines += _table(["Field", "Value"], _field_rows(manifest))
    ui_url = get_settings().ui_url
    if ui_url:
        url = f"{ui_url.rstrip('/')}/artifacts/{manifest.project}/{manifest.key}/{manifest.version}"
        lines += ["", f"[Open {manifest.ref} in the artifacts web view]({url})"]
    lines += _kind_sections(manifest, store)
    return "\n".join(lines).rstrip() + "\n"


def _field_rows(manifest: Manifest) -> list[list[str]]:
    producer = manifest.producer
    rows = [
        ["Kind", manifest.kind],
        ["Reference", _code(manifest.ref)],
        ["Version", str(manifest.version)],
        ["Labels", ", ".join(_code(f"{k}={v}") for k, v in manifest.labels.items()) or "none"],
    ]
    if manifest.description:
        rows.append(["Description", manifest.description])
    if producer.flow_name or producer.flow_run_id:
        rows.append(["Flow run", f"{producer.flow_name} / {producer.flow_run_name} ({_code(producer.flow_run_id)})"])
    if producer.task_name or producer.task_run_id:
        rows.append(["Task run", f"{producer.task_run_name or producer.task_name} ({_code(producer.task_run_id)})"])
    rows.append(["Owner", producer.owner or manifest.owner or ""])
    rows.append(["Created", manifest.created.isoformat(timespec="seconds")])
    if manifest.bodies:
        body = manifest.body()
        rows.append(["Body", _code(body.uri)])
        rows.append(["SHA-256", _code(body.sha256)])
    rows.append(["Size", _size_text(manifest.size)])
    if manifest.inputs:
        rows.append(["Inputs", ", ".join(_code(ref) for ref in manifest.inputs)])
    return rows


def _kind_sections(manifest: Manifest, store: ArtifactStore | None) -> list[str]:
    from mlart_prefect._summary import summarize

    summary = summarize(manifest)
    lines: list[str] = []
    facts = [[name, value] for name, value in summary.facts if value not in ("", None)]
    if facts:
        lines += ["", f"#### {manifest.kind.capitalize()}", ""] + _table(["Field", "Value"], facts)
    for table in summary.tables:
        lines += ["", f"#### {table.title}", ""] + _table(table.columns, table.rows)
    if manifest.kind == "dataset":
        lines += _dataset_sections(manifest)
    elif manifest.kind == "plot":
        lines += _plot_image(manifest, store)
    elif manifest.kind == "model":
        lines += _extra_data_links(manifest)
    return lines


def _dataset_sections(manifest: Manifest) -> list[str]:
    preview = manifest.spec.get("preview")
    if not isinstance(preview, dict) or not preview.get("columns"):
        return []
    from mlart_prefect.kinds._dataset_preview import preview_markdown

    return ["", "#### Preview", "", preview_markdown(preview)]


def _plot_image(manifest: Manifest, store: ArtifactStore | None) -> list[str]:
    files = manifest.spec.get("files") or {}
    png_name = files.get("png")
    if not png_name:
        return ["", "_No PNG was stored for this plot; open its HTML page from the store._"]
    body = manifest.body(png_name)
    if body.size > IMAGE_MAX_BYTES:
        return [
            "",
            f"_The PNG is {_size_text(body.size)}, over the {_size_text(IMAGE_MAX_BYTES)} shown "
            f"here; it is stored at_ {_code(body.uri)}",
        ]
    from mlart_prefect import api

    png = (store or api.get_store()).read_bytes(manifest, png_name)
    title = _escape(str(manifest.spec.get("title") or manifest.key)).replace("]", "")
    return ["", f"![{title}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"]


def _extra_data_links(manifest: Manifest) -> list[str]:
    from mlart_prefect.settings import get_settings

    ui_url = get_settings().ui_url
    entries = manifest.spec.get("extra_data") or {}
    links = []
    for name, entry in entries.items():
        ref = entry.get("ref") if isinstance(entry, dict) else None
        if not ref or not ui_url:
            continue
        project, _, rest = ref.partition("/")
        key, _, version = rest.rpartition(":")
        links.append(f"- {name}: [{ref}]({ui_url.rstrip('/')}/artifacts/{project}/{key}/{version})")
    return ["", "#### Extra data links", "", *links] if links else []


# -- markdown helpers --------------------------------------------------------------------------


def _table(columns: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(_escape(c) for c in columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(_escape(str(cell)) for cell in row) + " |" for row in rows]
    return lines


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _code(text: Any) -> str:
    value = str(text).replace("`", "'")
    return f"`{value}`"


def _size_text(size: int) -> str:
    """Return a size in the binary units of the CLI and the web view, with the exact bytes."""
    return f"{size:,} bytes" if size < 1024 else f"{format_size(size)} ({size:,} bytes)"
