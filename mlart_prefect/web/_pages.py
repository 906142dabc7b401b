"""Content of the version page: versions, tags, lineage links and the kind's summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlart_prefect._cli_show import flow_run_url
from mlart_prefect._lineage_graph import (
    LineageNode,
    consumers_index,
    downstream,
    upstream,
)
from mlart_prefect._summary import KindSummary, summarize
from mlart_prefect.web._dataset_view import DatasetView, dataset_view

if TYPE_CHECKING:
    from mlart_prefect.manifest import BodyRef, Manifest
    from mlart_prefect.store import ArtifactStore


def version_path(project: str, key: str, version: int) -> str:
    """Return the path of a version page, ``/artifacts/<project>/<key>/<version>``."""
    return f"/artifacts/{project}/{key}/{version}"


def body_path(manifest: Manifest, body: BodyRef, *, download: bool = False) -> str:
    """Return the path that serves one body of a version, as an attachment when ``download``."""
    path = f"{version_path(manifest.project, manifest.key, manifest.version)}/bodies/{body.name}"
    return f"{path}?download=1" if download else path


@dataclass
class VersionLink:
    """A link to another version in the lineage or version list."""

    ref: str
    path: str | None
    kind: str = ""
    note: str = ""


@dataclass
class VersionPage:
    """Everything the version template needs, computed from the store."""

    manifest: Manifest
    tags: list[str]
    key_tags: dict[str, int]
    versions: list[Manifest]
    made_from: list[VersionLink]
    used_by: list[VersionLink]
    summary: KindSummary
    flow_run_url: str | None
    image: BodyRef | None = None
    dataset: DatasetView | None = None
    locations: dict[str, str] = field(default_factory=dict)
    """The location each body is read from in this store, by body name."""


def _links(nodes: list[LineageNode]) -> list[VersionLink]:
    links = []
    for node in nodes:
        found = node.manifest
        if found is None:
            links.append(VersionLink(ref=node.ref, path=None, note=node.error or "not found"))
        else:
            path = version_path(found.project, found.key, found.version)
            links.append(VersionLink(ref=node.ref, path=path, kind=found.kind))
    return links


def _image_body(manifest: Manifest) -> BodyRef | None:
    """Return the body a browser can draw for a plot: PNG first, then SVG."""
    if manifest.kind != "plot":
        return None
    for media_type in ("image/png", "image/svg+xml"):
        for body in manifest.bodies:
            if body.media_type == media_type:
                return body
    return None


def version_page(
    store: ArtifactStore,
    manifest: Manifest,
    *,
    prefect_ui_url: str | None,
    consumers: dict[str, list[Manifest]] | None = None,
) -> VersionPage:
    """Collect the version page of ``manifest``: its key's versions and tags, direct lineage links.

    Args:
        store: The store.
        manifest: The version shown.
        prefect_ui_url: Base URL of the Prefect UI for the flow run link (None: no link).
        consumers: A ``consumers_index`` of the store, when the caller keeps one.
    """
    key_tags = store.tags(manifest.key, project=manifest.project)
    consumers = consumers_index(store) if consumers is None else consumers
    return VersionPage(
        manifest=manifest,
        tags=sorted(name for name, version in key_tags.items() if version == manifest.version),
        key_tags=key_tags,
        versions=store.versions(manifest.key, project=manifest.project),
        made_from=_links(upstream(store, manifest, max_depth=1)),
        used_by=_links(downstream(store, manifest, max_depth=1, index=consumers)),
        summary=summarize(manifest),
        flow_run_url=flow_run_url(prefect_ui_url, manifest.producer.flow_run_id),
        image=_image_body(manifest),
        dataset=dataset_view(manifest) if manifest.kind == "dataset" else None,
        locations={body.name: store.body_uri(manifest, body.name) for body in manifest.bodies},
    )
