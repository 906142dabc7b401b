"""The artifacts web view: a FastAPI application over one store, with HTML pages and a JSON API."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlart_prefect import _cli_render as render
from mlart_prefect._lineage_graph import consumers_index
from mlart_prefect.errors import IntegrityError, MlartError, NotFoundError
from mlart_prefect.manifest import Reference, validate_name
from mlart_prefect.web._bodies import body_response
from mlart_prefect.web._listing import (
    ALL_PROJECTS,
    MAX_PER_PAGE,
    PER_PAGE,
    ListFilters,
    search_page,
)
from mlart_prefect.web._pages import body_path, version_page, version_path

if TYPE_CHECKING:
    from jinja2 import Environment

    from mlart_prefect.manifest import Manifest
    from mlart_prefect.store import ArtifactStore

logger = logging.getLogger(__name__)

_HERE = Path(__file__).parent


def _templates() -> Environment:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        size=render.format_size,
        time=render.format_time,
        producer=render.producer_text,
    )
    env.globals.update(version_path=version_path, body_path=body_path, ALL_PROJECTS=ALL_PROJECTS)
    return env


CONSUMERS_TTL_SECONDS = 10.0
"""How long the "used by" index, built by reading every manifest, is reused between pages."""


class _WebView:
    """State shared by the routes: the store, the templates and the write switch."""

    def __init__(
        self, store: ArtifactStore, *, read_only: bool, prefect_ui_url: str | None
    ) -> None:
        self.store = store
        self.read_only = read_only
        self.prefect_ui_url = prefect_ui_url.rstrip("/") if prefect_ui_url else None
        self.templates = _templates()
        self._consumers: tuple[float, dict[str, list[Manifest]]] | None = None
        self._consumers_lock = threading.Lock()

    def consumers(self) -> dict[str, list[Manifest]]:
        """Return the store's consumers index, rebuilt when older than ``CONSUMERS_TTL_SECONDS``.

        Reading every manifest of a 10,000-version local store takes about a second, so pages
        visited in a row share one index. A version saved meanwhile shows under "used by" once
        the TTL has passed.
        """
        with self._consumers_lock:
            now = time.monotonic()
            if self._consumers is None or now - self._consumers[0] > CONSUMERS_TTL_SECONDS:
                self._consumers = (now, consumers_index(self.store))
            return self._consumers[1]

    def page(
        self, request: Request, template: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        html = self.templates.get_template(template).render(
            request=request,
            root=request.scope.get("root_path", ""),
            store=self.store,
            read_only=self.read_only,
            prefect_ui_url=self.prefect_ui_url,
            **context,
        )
        return HTMLResponse(html, status_code=status_code)

    def manifest(self, project: str, key: str, version: int) -> Manifest:
        return self.store.get(_reference(project, key, version))

    def check_writable(self, request: Request) -> None:
        """Reject a write when the view is read-only or the request comes from another site."""
        if self.read_only:
            raise HTTPException(
                403, "This view is read-only; start it with `mlart ui --allow-writes` to edit tags."
            )
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
            raise HTTPException(403, f"Cross-site request from {origin!r} rejected.")


def _reference(project: str, key: str, version: int | None = None) -> Reference:
    """Build a reference from URL parts, checking the names (InvalidNameError otherwise)."""
    return Reference(
        project=validate_name(project, "project"), key=validate_name(key, "key"), version=version
    )


def create_app(
    store: ArtifactStore,
    *,
    read_only: bool = True,
    prefect_ui_url: str | None = None,
) -> FastAPI:
    """Create the web view of ``store``.

    Pages: ``/artifacts`` (filtered, paginated list) and
    ``/artifacts/<project>/<key>/<version>`` (one version). JSON: ``/api/artifacts`` and
    ``/api/artifacts/<project>/<key>/<version>``. Bodies are served by reference and body name
    only, with their sha256 checked.

    Args:
        store: The store to show.
        read_only: Hide and reject tag changes (default True).
        prefect_ui_url: Base URL of the Prefect UI; flow runs link to
            ``<url>/runs/flow-run/<id>`` when it is set (default None: no links).

    Example:
        ```python
        import uvicorn
        from mlart_prefect import ArtifactStore
        from mlart_prefect.web.app import create_app

        uvicorn.run(create_app(ArtifactStore("s3://team/artifacts")), host="127.0.0.1", port=8765)
        ```
    """
    view = _WebView(store, read_only=read_only, prefect_ui_url=prefect_ui_url)
    app = FastAPI(
        title="mlart artifacts",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.view = view
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")
    _add_error_handlers(app, view)
    _add_pages(app, view)
    _add_api(app, view)
    return app


def _error_status(exc: MlartError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, IntegrityError):
        return 500
    return 400 if isinstance(exc, ValueError) else 500


def _add_error_handlers(app: FastAPI, view: _WebView) -> None:
    @app.exception_handler(MlartError)
    async def mlart_error(request: Request, exc: MlartError) -> Response:
        status = _error_status(exc)
        if status == 500:
            logger.error("%s %s failed: %s", request.method, request.url.path, exc)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": str(exc)}, status_code=status)
        return view.page(request, "error.html", status_code=status, message=str(exc), status=status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/") or request.url.path.startswith("/static/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        return view.page(
            request,
            "error.html",
            status_code=exc.status_code,
            message=str(exc.detail),
            status=exc.status_code,
        )


# Query parameters shared by the list page and /api/artifacts.
Project = Annotated[
    str, Query(description="Project to list; '*' for every project (default: the store's).")
]
Kind = Annotated[str, Query(description="Only this kind: dataset, plot, model...")]
Labels = Annotated[
    list[str] | None,
    Query(description="NAME=VALUE pairs, repeated or separated by commas; all must match."),
]
Text = Annotated[str, Query(description="Only keys or descriptions containing this text.")]
Since = Annotated[
    str,
    Query(
        description="Created at or after: ISO date/time (UTC unless an offset is given) "
        "or an age like 7d."
    ),
]
Until = Annotated[
    str, Query(description="Created at or before: same forms; a bare date includes that day.")
]
Page = Annotated[int, Query(ge=1, description="Page number, from 1.")]


def list_filters(
    project: Project = "",
    kind: Kind = "",
    label: Labels = None,
    q: Text = "",
    since: Since = "",
    until: Until = "",
    flow: Annotated[str, Query(description="Only versions produced by this Prefect flow.")] = "",
    owner: Annotated[str, Query(description="Only versions with this owner.")] = "",
    all_versions: Annotated[
        bool, Query(description="List every version, not only the latest of each key.")
    ] = False,
    page: Page = 1,
    per_page: Annotated[
        int, Query(ge=1, le=MAX_PER_PAGE, description="Versions per page.")
    ] = PER_PAGE,
) -> ListFilters:
    """Read the filters of the list page and of ``/api/artifacts`` from the query string."""
    return ListFilters(
        project=project,
        kind=kind,
        label=label or [],
        text=q,
        since=since,
        until=until,
        flow=flow,
        owner=owner,
        all_versions=all_versions,
        page=page,
        per_page=per_page,
    )


Filters = Annotated[ListFilters, Depends(list_filters)]


def _add_pages(app: FastAPI, view: _WebView) -> None:
    @app.get("/", include_in_schema=False)
    def home(request: Request) -> RedirectResponse:
        return RedirectResponse(f"{request.scope.get('root_path', '')}/artifacts", status_code=307)

    @app.get("/artifacts", response_class=HTMLResponse, include_in_schema=False)
    def artifacts_page(request: Request, filters: Filters) -> HTMLResponse:
        # The form shows the store's project selected when the query names none.
        filters = replace(filters, project=filters.project or view.store.project)
        try:
            listing = search_page(view.store, filters)
        except MlartError as exc:
            return view.page(
                request,
                "list.html",
                status_code=400,
                filters=filters,
                listing=None,
                error=str(exc),
                projects=_projects(view.store),
            )
        return view.page(
            request,
            "list.html",
            filters=filters,
            listing=listing,
            error=None,
            projects=_projects(view.store),
        )

    @app.get("/artifacts/{project}/{key}", include_in_schema=False)
    def latest_page(request: Request, project: str, key: str) -> RedirectResponse:
        manifest = view.store.get(_reference(project, key))
        root = request.scope.get("root_path", "")
        return RedirectResponse(
            root + version_path(project, key, manifest.version), status_code=307
        )

    @app.get(
        "/artifacts/{project}/{key}/{version}", response_class=HTMLResponse, include_in_schema=False
    )
    def version_view(request: Request, project: str, key: str, version: int) -> HTMLResponse:
        manifest = view.manifest(project, key, version)
        context = version_page(
            view.store, manifest, prefect_ui_url=view.prefect_ui_url, consumers=view.consumers()
        )
        return view.page(request, "version.html", page=context, m=manifest)

    @app.get("/artifacts/{project}/{key}/{version}/bodies/{name}", include_in_schema=False)
    def body(project: str, key: str, version: int, name: str, download: bool = False) -> Response:
        return body_response(
            view.store, view.manifest(project, key, version), name, download=download
        )

    @app.post("/artifacts/{project}/{key}/{version}/tags", include_in_schema=False)
    async def add_tag_form(
        request: Request, project: str, key: str, version: int
    ) -> RedirectResponse:
        view.check_writable(request)
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        tag = (form.get("tag") or [""])[0].strip()
        view.store.tag(_reference(project, key, version), tag)
        root = request.scope.get("root_path", "")
        return RedirectResponse(root + version_path(project, key, version), status_code=303)

    @app.post("/artifacts/{project}/{key}/{version}/tags/{tag}/delete", include_in_schema=False)
    def remove_tag_form(
        request: Request, project: str, key: str, version: int, tag: str
    ) -> RedirectResponse:
        view.check_writable(request)
        view.store.untag(_reference(project, key), tag)
        root = request.scope.get("root_path", "")
        return RedirectResponse(root + version_path(project, key, version), status_code=303)


def _projects(store: ArtifactStore) -> list[str]:
    projects = store.projects()
    return projects if store.project in projects else sorted([*projects, store.project])


def _version_record(view: _WebView, manifest: Manifest) -> dict[str, Any]:
    record = render.listing_record(manifest)
    record["page"] = version_path(manifest.project, manifest.key, manifest.version)
    return record


def _add_api(app: FastAPI, view: _WebView) -> None:
    @app.get("/api/artifacts")
    def list_artifacts(filters: Filters) -> dict[str, Any]:
        """List matching versions, newest first, one page at a time."""
        listing = search_page(view.store, filters)
        return {
            "items": [_version_record(view, manifest) for manifest in listing.items],
            "total": listing.total,
            "page": listing.page,
            "per_page": listing.per_page,
            "pages": listing.pages,
        }

    @app.get("/api/artifacts/{project}/{key}")
    def key_versions(project: str, key: str) -> dict[str, Any]:
        """List every version of a key, newest first, and its tags."""
        versions = view.store.versions(key, project=project)
        return {
            "project": project,
            "key": key,
            "tags": view.store.tags(key, project=project),
            "versions": [_version_record(view, manifest) for manifest in versions],
        }

    @app.get("/api/artifacts/{project}/{key}/{version}")
    def version_detail(project: str, key: str, version: int) -> dict[str, Any]:
        """Return one version: its manifest, tags, direct lineage and the paths of its bodies."""
        manifest = view.manifest(project, key, version)
        context = version_page(
            view.store, manifest, prefect_ui_url=view.prefect_ui_url, consumers=view.consumers()
        )
        return {
            "ref": manifest.ref,
            "manifest": manifest.model_dump(mode="json"),
            "tags": context.tags,
            "made_from": [link.ref for link in context.made_from],
            "used_by": [link.ref for link in context.used_by],
            "page": version_path(project, key, version),
            "bodies": {body.name: body_path(manifest, body) for body in manifest.bodies},
            "flow_run_url": context.flow_run_url,
        }

    @app.post("/api/artifacts/{project}/{key}/{version}/tags")
    def add_tag(
        request: Request, project: str, key: str, version: int, payload: dict[str, str]
    ) -> dict[str, Any]:
        """Point a tag at this version (rejected with 403 when the view is read-only)."""
        view.check_writable(request)
        tag = payload.get("tag", "")
        manifest = view.store.tag(_reference(project, key, version), tag)
        return {"ref": manifest.ref, "tag": tag}

    @app.delete("/api/artifacts/{project}/{key}/tags/{tag}")
    def remove_tag(request: Request, project: str, key: str, tag: str) -> dict[str, Any]:
        """Remove a tag from a key (rejected with 403 when the view is read-only)."""
        view.check_writable(request)
        view.store.untag(_reference(project, key), tag)
        return {"project": project, "key": key, "removed": tag}
