"""The artifacts list of the web view: filters from the query string, search and pages."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from mlart_prefect._filters import parse_labels, parse_time
from mlart_prefect.manifest import validate_name

if TYPE_CHECKING:
    from mlart_prefect.manifest import Manifest
    from mlart_prefect.store import ArtifactStore

PER_PAGE = 50
MAX_PER_PAGE = 500
ALL_PROJECTS = "*"
"""Value of the ``project`` filter that searches every project; no project can have this name."""


@dataclass
class ListFilters:
    """The filters of one list request, as typed in the form or the query string."""

    project: str = ""
    kind: str = ""
    label: list[str] = field(default_factory=list)
    text: str = ""
    since: str = ""
    until: str = ""
    flow: str = ""
    owner: str = ""
    all_versions: bool = False
    page: int = 1
    per_page: int = PER_PAGE

    def label_pairs(self) -> dict[str, str]:
        """Return the label filters; one field may hold several pairs separated by commas.

        Raises:
            InvalidFilterError: A pair has no ``=``.
        """
        items = [item.strip() for text in self.label for item in text.split(",") if item.strip()]
        return parse_labels(items)

    def query_string(self, **changes: Any) -> str:
        """Return these filters as a query string, with ``changes`` applied (for page links)."""
        values: dict[str, Any] = {
            "project": self.project,
            "kind": self.kind,
            "label": ", ".join(self.label),
            "q": self.text,
            "since": self.since,
            "until": self.until,
            "flow": self.flow,
            "owner": self.owner,
            "all_versions": "1" if self.all_versions else "",
            "page": str(self.page) if self.page > 1 else "",
        }
        values.update({name: str(value) for name, value in changes.items()})
        return urlencode({name: value for name, value in values.items() if value})


@dataclass
class ListPage:
    """One page of matching versions and the numbers needed to draw the pager."""

    items: list[Manifest]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        """Number of pages, at least 1."""
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def first_index(self) -> int:
        """1-based position of the first item shown, 0 when nothing matches."""
        return (self.page - 1) * self.per_page + 1 if self.items else 0

    @property
    def last_index(self) -> int:
        """1-based position of the last item shown."""
        return (self.page - 1) * self.per_page + len(self.items)


def search_page(store: ArtifactStore, filters: ListFilters) -> ListPage:
    """Search the store with ``filters`` and cut out the requested page (newest first).

    Raises:
        InvalidFilterError: A label or time filter is malformed.
        InvalidNameError: The project name is invalid.
    """
    labels = filters.label_pairs()
    since = parse_time(filters.since)
    until = parse_time(filters.until, end_of_day=True)
    all_projects = filters.project == ALL_PROJECTS
    project = (
        None if all_projects or not filters.project else validate_name(filters.project, "project")
    )

    found = store.search(
        kind=filters.kind or None,
        labels=labels or None,
        since=since,
        until=until,
        flow_name=filters.flow or None,
        owner=filters.owner or None,
        project=project,
        all_projects=all_projects,
        all_versions=filters.all_versions,
        text=filters.text or None,
    )
    per_page = min(max(filters.per_page, 1), MAX_PER_PAGE)
    pages = max(1, math.ceil(len(found) / per_page))
    page = min(max(filters.page, 1), pages)
    start = (page - 1) * per_page
    return ListPage(
        items=found[start : start + per_page], total=len(found), page=page, per_page=per_page
    )
