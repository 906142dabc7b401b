"""Lineage walks over a store: the versions a version was made from, and those made from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlart_prefect.errors import MlartError, NotFoundError

if TYPE_CHECKING:
    from mlart_prefect.manifest import Manifest
    from mlart_prefect.store import ArtifactStore


@dataclass
class LineageNode:
    """One version in a lineage tree.

    Attributes:
        ref: The version's reference, ``project/key:n``.
        manifest: Its manifest, or None when it cannot be read any more (deleted or broken).
        children: Inputs (upstream walk) or versions made from it (downstream walk).
        repeated: The version was already expanded elsewhere in the same tree, so its children
            are not listed again.
        cut: The walk's depth limit left out this version's children (how many it has).
        error: Why the manifest could not be read, when it could not.
    """

    ref: str
    manifest: Manifest | None = None
    children: list[LineageNode] = field(default_factory=list)
    repeated: bool = False
    cut: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the node and its children as JSON-ready data."""
        data: dict[str, Any] = {"ref": self.ref}
        if self.manifest is not None:
            data["kind"] = self.manifest.kind
            data["created"] = self.manifest.created.isoformat()
            data["flow_name"] = self.manifest.producer.flow_name
            data["flow_run_name"] = self.manifest.producer.flow_run_name
        if self.error is not None:
            data["error"] = self.error
        if self.repeated:
            data["repeated"] = True
        if self.cut:
            data["cut"] = self.cut
        data["children"] = [child.to_dict() for child in self.children]
        return data


def consumers_index(store: ArtifactStore) -> dict[str, list[Manifest]]:
    """Map each input reference to the versions, in every project, that list it as an input.

    This reads every manifest of the store once.
    """
    index: dict[str, list[Manifest]] = {}
    for manifest in store.search(all_projects=True, all_versions=True):
        for ref in manifest.inputs:
            index.setdefault(ref, []).append(manifest)
    for consumers in index.values():
        consumers.sort(key=lambda m: (m.project, m.key, m.version))
    return index


def upstream(
    store: ArtifactStore, manifest: Manifest, *, max_depth: int | None = None
) -> list[LineageNode]:
    """Return the inputs of ``manifest`` as trees, following inputs of inputs.

    Args:
        store: The store the versions live in.
        manifest: The version to start from (not part of the result).
        max_depth: Levels to follow (default None: all of them); 1 lists only direct inputs.
    """
    expanded: set[str] = {manifest.ref}
    return [_upstream_node(store, ref, 1, max_depth, expanded) for ref in manifest.inputs]


def _upstream_node(
    store: ArtifactStore, ref: str, depth: int, max_depth: int | None, expanded: set[str]
) -> LineageNode:
    try:
        found = store.get(ref)
    except NotFoundError:
        # The store's message lists the other keys or versions, too long for one tree line.
        return LineageNode(ref=ref, error="not in the store (deleted?)")
    except MlartError as exc:
        return LineageNode(ref=ref, error=str(exc))

    node = LineageNode(ref=ref, manifest=found)
    if ref in expanded:
        node.repeated = bool(found.inputs)
        return node
    expanded.add(ref)
    if max_depth is None or depth < max_depth:
        node.children = [
            _upstream_node(store, parent, depth + 1, max_depth, expanded) for parent in found.inputs
        ]
    else:
        node.cut = len(found.inputs)
    return node


def downstream(
    store: ArtifactStore,
    manifest: Manifest,
    *,
    max_depth: int | None = None,
    index: dict[str, list[Manifest]] | None = None,
) -> list[LineageNode]:
    """Return the versions made from ``manifest`` as trees, following their own consumers.

    Args:
        store: The store to search; every project of it is searched.
        manifest: The version to start from (not part of the result).
        max_depth: Levels to follow (default None: all of them); 1 lists only direct consumers.
        index: A ``consumers_index`` already built, to avoid reading the store again.
    """
    index = consumers_index(store) if index is None else index
    expanded: set[str] = {manifest.ref}
    return [
        _downstream_node(child, 1, max_depth, index, expanded)
        for child in index.get(manifest.ref, [])
    ]


def _downstream_node(
    manifest: Manifest,
    depth: int,
    max_depth: int | None,
    index: dict[str, list[Manifest]],
    expanded: set[str],
) -> LineageNode:
    node = LineageNode(ref=manifest.ref, manifest=manifest)
    consumers = index.get(manifest.ref, [])
    if manifest.ref in expanded:
        node.repeated = bool(consumers)
        return node
    expanded.add(manifest.ref)
    if max_depth is None or depth < max_depth:
        node.children = [
            _downstream_node(child, depth + 1, max_depth, index, expanded) for child in consumers
        ]
    else:
        node.cut = len(consumers)
    return node
