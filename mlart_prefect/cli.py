"""The ``mlart`` command: list, show, download, tag and maintain the artifacts of a store."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from mlart_prefect import _cli_render as render
from mlart_prefect._filters import TIME_FORMS, parse_labels, parse_time
from mlart_prefect.errors import ManifestError, MlartError

if TYPE_CHECKING:
    from mlart_prefect.manifest import BodyRef, Manifest
    from mlart_prefect.store import ArtifactStore

BUILTIN_KINDS = ("dataset", "model", "plot")
"""Kinds stored by the library itself (a program may register more). They are named here so that
checking a kind does not import them, and with them pandas and matplotlib."""

PROGRESS_MIN_BYTES = 8 * 1024 * 1024
"""Bodies at least this large are downloaded with a progress bar on stderr."""

USAGE_EXIT_CODE = 2
"""Exit code of malformed input (reference, name, filter), as for Click's usage errors."""

app = typer.Typer(
    name="mlart",
    help="Browse and maintain the versioned artifacts of an mlart store.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain Click output: usage errors end in one "Error: ..." line instead of a drawn box,
    # and help reads the same in a terminal, a pipe and a log.
    rich_markup_mode=None,
)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class _GlobalOptions:
    store_url: str | None
    project: str | None


def _fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as one line on stderr and return the Exit to raise."""
    typer.echo(f"Error: {' '.join(message.split())}", err=True)
    return typer.Exit(code)


def _cli_errors(command: F) -> F:
    """Turn library and file errors raised by a command into one line on stderr and an exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except MlartError as exc:
            # Invalid names, references and filters are ValueErrors: usage errors.
            raise _fail(str(exc), USAGE_EXIT_CODE if isinstance(exc, ValueError) else 1) from None
        except OSError as exc:
            raise _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None

    return wrapper  # type: ignore[return-value]


def _store(ctx: typer.Context, project: str | None = None) -> ArtifactStore:
    from mlart_prefect.store import ArtifactStore

    options: _GlobalOptions = ctx.obj
    return ArtifactStore(options.store_url, project=project or options.project)


def _print_json(data: Any) -> None:
    typer.echo(render.to_json(data))


@app.callback()
def main(
    ctx: typer.Context,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            metavar="URL",
            help="Store URL or local folder (default: MLART_STORE_URL, else ~/.mlart/store).",
        ),
    ] = None,
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            "-p",
            help="Project of references that name none (default: MLART_PROJECT, else 'default').",
        ),
    ] = None,
) -> None:
    """Browse and maintain the versioned artifacts of an mlart store.

    References have the forms KEY (latest version), KEY:3, KEY@TAG and PROJECT/KEY:3.
    """
    ctx.obj = _GlobalOptions(store_url=store, project=project)


# -- listing -------------------------------------------------------------------------------------


@app.command("ls")
@_cli_errors
def list_artifacts(
    ctx: typer.Context,
    all_versions: Annotated[
        bool,
        typer.Option("--all", "-a", help="List every version, not only the latest of each key."),
    ] = False,
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind", "-k", help="Only this kind: dataset, plot, model or a registered one."
        ),
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            "-l",
            metavar="NAME=VALUE",
            help="Only versions with this label; repeat it, all must match.",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help=f"Only versions created at or after this time: {TIME_FORMS}. "
            "UTC unless an offset is given."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            help="Only versions created at or before this time (same forms; a bare date "
            "includes that whole day)."
        ),
    ] = None,
    flow: Annotated[
        str | None, typer.Option(help="Only versions produced by this Prefect flow (flow name).")
    ] = None,
    owner: Annotated[str | None, typer.Option(help="Only versions of this owner.")] = None,
    match: Annotated[
        str | None,
        typer.Option(
            "--match",
            "-m",
            help="Only keys or descriptions containing this text (case-insensitive).",
        ),
    ] = None,
    project: Annotated[
        str | None,
        typer.Option("--project", "-p", help="Project to list (default: the global --project)."),
    ] = None,
    all_projects: Annotated[
        bool, typer.Option("--all-projects", help="List every project of the store.")
    ] = False,
    limit: Annotated[
        int | None,
        typer.Option(min=1, help="Print at most this many versions, newest first (default: all)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list instead of a table.")
    ] = False,
) -> None:
    """List the latest version of each key (every version with --all), newest first."""
    labels = parse_labels(label)
    since_time = parse_time(since)
    until_time = parse_time(until, end_of_day=True)
    store = _store(ctx, project)

    found = store.search(
        kind=kind,
        labels=labels or None,
        since=since_time,
        until=until_time,
        flow_name=flow,
        owner=owner,
        all_projects=all_projects,
        all_versions=all_versions,
        text=match,
    )
    if limit is not None:
        found = found[:limit]

    if as_json:
        _print_json([render.listing_record(manifest) for manifest in found])
        return
    if not found:
        where = "the store" if all_projects else f"project {store.project!r}"
        notes = []
        if store.location.local_root_missing():
            notes.append("The folder does not exist: check the path, or save a first artifact.")
        if kind is not None and kind not in BUILTIN_KINDS:
            notes.append(f"The built-in kinds are {', '.join(BUILTIN_KINDS)}; is {kind!r} a typo?")
        filtered = any(
            value for value in (kind, label, since, until, flow, owner, match)
        )
        if filtered and not all_versions:
            notes.append("Filters look at the latest version of each key; add --all for every "
                         "version.")
        typer.echo(" ".join([f"No artifacts match in {where} of {store.url}.", *notes]), err=True)
        return
    rows = render.listing_rows(found, with_project=all_projects)
    typer.echo(render.plain_table(render.LISTING_COLUMNS, rows))


@app.command("show")
@_cli_errors
def show(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(metavar="REF", help="Reference: KEY, KEY:3, KEY@TAG or PROJECT/KEY:3.")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the manifest and its tags as JSON.")
    ] = False,
) -> None:
    """Show one version: bodies, kind, labels, producer, inputs, tags and the kind's summary."""
    store = _store(ctx)
    manifest = store.get(ref)
    tags = _tags_of(store, manifest)

    if as_json:
        _print_json({**manifest.model_dump(mode="json"), "ref": manifest.ref, "tags": tags})
        return
    from mlart_prefect._cli_show import print_manifest
    from mlart_prefect.settings import get_settings

    locations = {body.name: store.body_uri(manifest, body.name) for body in manifest.bodies}
    print_manifest(manifest, tags=tags, locations=locations,
                   prefect_ui_url=get_settings().prefect_ui_url)


def _tags_of(store: ArtifactStore, manifest: Manifest) -> list[str]:
    tags = store.tags(manifest.key, project=manifest.project)
    return sorted(name for name, version in tags.items() if version == manifest.version)


# -- downloading ---------------------------------------------------------------------------------


@app.command("get")
@_cli_errors
def get(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(metavar="REF", help="Reference: KEY, KEY:3, KEY@TAG or PROJECT/KEY:3.")
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="File to write (an existing folder receives the body under its own name). With "
            "--all: the folder to fill. Default: the body's name, or KEY-vN/ with --all, in the "
            "current folder.",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", "-n", help="Body to download (default: the primary body)."),
    ] = None,
    all_bodies: Annotated[
        bool, typer.Option("--all", help="Download every body of the version into a folder.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Overwrite files that exist.")
    ] = False,
) -> None:
    """Download a version's body, checking its sha256; a corrupt body leaves no file behind."""
    store = _store(ctx)
    manifest = store.get(ref)

    if all_bodies:
        if name is not None:
            raise _fail(
                "Options --all and --name exclude each other: use one of them.", USAGE_EXIT_CODE
            )
        folder = output or Path(f"{manifest.key}-v{manifest.version}")
        targets = [(body, folder / body.name) for body in manifest.bodies]
    else:
        body = manifest.body(name)
        target = output or Path(body.name)
        targets = [(body, target / body.name if target.is_dir() else target)]

    existing = [str(path) for _, path in targets if path.exists()]
    if existing and not force:
        raise _fail(f"Not overwriting {', '.join(existing)}: pass --force to replace.")
    for body, path in targets:
        _download(store, manifest, body, path)
        typer.echo(
            f"{manifest.ref} {body.name} -> {path} "
            f"({render.format_size(body.size)}, sha256 verified)"
        )


def _download(store: ArtifactStore, manifest: Manifest, body: BodyRef, path: Path) -> None:
    if body.size < PROGRESS_MIN_BYTES:
        store.download(manifest, path, body.name)
        return

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(body.name, total=body.size)
        store.download(
            manifest, path, body.name, progress=lambda count: progress.advance(task, count)
        )


# -- lineage -------------------------------------------------------------------------------------


@app.command("lineage")
@_cli_errors
def lineage(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(metavar="REF", help="Reference: KEY, KEY:3, KEY@TAG or PROJECT/KEY:3.")
    ],
    depth: Annotated[
        int | None,
        typer.Option(
            min=1, help="Levels to follow each way (default: all); 1 shows direct links only."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print both trees as JSON.")] = False,
) -> None:
    """Show the versions a version was made from and the versions made from it, as trees.

    Versions made from it are found by reading every manifest of every project of the store.
    """
    from mlart_prefect._lineage_graph import downstream, upstream

    store = _store(ctx)
    manifest = store.get(ref)
    up = upstream(store, manifest, max_depth=depth)
    down = downstream(store, manifest, max_depth=depth)

    if as_json:
        _print_json(
            {
                "ref": manifest.ref,
                "kind": manifest.kind,
                "upstream": [node.to_dict() for node in up],
                "downstream": [node.to_dict() for node in down],
            }
        )
        return
    from rich.console import Console

    console = Console(soft_wrap=True)
    if not console.is_terminal:
        console.width = 1000  # a tree is not soft-wrapped, so a pipe would cut its lines at 80
    console.print(render.lineage_tree(manifest, up, down))


# -- changing the store --------------------------------------------------------------------------


@app.command("tag")
@_cli_errors
def tag(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(
            metavar="REF", help="Version to tag: KEY:3, KEY@OTHER-TAG, or KEY for the latest."
        ),
    ],
    tag_name: Annotated[
        str,
        typer.Argument(metavar="TAG", help="Tag name, e.g. production; an existing tag is moved."),
    ],
) -> None:
    """Point a tag at a version, moving the tag if the key already has it."""
    store = _store(ctx)
    target = store.get(ref)
    previous = store.tags(target.key, project=target.project).get(tag_name)
    manifest = store.tag(target.reference, tag_name)
    moved = f" (moved from version {previous})" if previous not in (None, manifest.version) else ""
    typer.echo(f"Tagged {manifest.ref} as {tag_name!r}{moved}.")


@app.command("untag")
@_cli_errors
def untag(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(
            metavar="REF", help="The key (a version or tag in the reference is ignored)."
        ),
    ],
    tag_name: Annotated[str, typer.Argument(metavar="TAG", help="Tag to remove.")],
) -> None:
    """Remove a tag from a key; the version it pointed at stays."""
    from mlart_prefect.manifest import Reference

    store = _store(ctx)
    reference = Reference.parse(ref, project=store.project)
    store.untag(reference, tag_name)
    typer.echo(f"Removed tag {tag_name!r} from {reference.project}/{reference.key}.")


@app.command("rm")
@_cli_errors
def remove(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(
            metavar="REF", help="Version to delete: KEY:3 or KEY@TAG (a bare KEY is rejected)."
        ),
    ],
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Delete without asking for confirmation.")
    ] = False,
) -> None:
    """Delete one version and the tags pointing at it; its bodies stay until `mlart gc`.

    Without --yes the command prompts for confirmation on stdin and deletes nothing unless the
    reply is yes. A closed stdin (as in CI) counts as no.
    """
    from mlart_prefect.manifest import Reference

    store = _store(ctx)
    reference = Reference.parse(ref, project=store.project)
    if reference.version is None and reference.tag is None:
        raise _fail(
            f"Refusing to delete {reference}: name one version (for example "
            f"'{reference}:{store.get(reference).version}') or a tag.",
            USAGE_EXIT_CODE,
        )
    try:
        manifest = store.get(reference)
        target, details = manifest.ref, (
            f"{manifest.kind}, created {render.format_time(manifest.created)} UTC"
        )
    except ManifestError as exc:
        if reference.version is None:
            raise
        # A damaged version (an empty manifest after a power loss) is deleted by its number.
        manifest, target, details = None, str(reference), f"its manifest cannot be read: {exc}"

    version = manifest.version if manifest is not None else reference.version
    tags = sorted(name for name, tagged in store.tags(reference.key, project=reference.project).items()
                  if tagged == version)
    with_tags = f" and its tags {', '.join(tags)}" if tags else ""
    if not yes:
        question = f"Delete {target}{with_tags} ({details})?"
        try:
            confirmed = typer.confirm(question, default=False, err=True)
        except typer.Abort:
            typer.echo(err=True)  # end the prompt's line
            raise _fail(
                f"Did not delete {target}: no reply on stdin. "
                "Pass --yes to delete without a prompt."
            ) from None
        if not confirmed:
            raise _fail(f"Did not delete {target}.")
    store.delete(manifest.reference if manifest is not None else reference)
    typer.echo(f"Deleted {target}{with_tags}.")


@app.command("gc")
@_cli_errors
def collect_garbage(
    ctx: typer.Context,
    keep_last: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Also delete all but the newest N versions of each key; tagged versions are "
            "kept (default: keep every version).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only report what would be removed.")
    ] = False,
    min_age: Annotated[
        float,
        typer.Option(
            min=0,
            metavar="SECONDS",
            help="Keep unreferenced bodies younger than this many seconds, since a save in "
            "progress writes bodies before its manifest.",
        ),
    ] = 3600.0,
    all_projects: Annotated[
        bool, typer.Option("--all-projects", help="Collect every project of the store.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Remove bodies that no version references and, with --keep-last, old versions."""
    report = _store(ctx).gc(
        keep_last=keep_last, dry_run=dry_run, min_age_seconds=min_age, all_projects=all_projects
    )
    if as_json:
        _print_json(report.to_dict())
        return
    verb = "Would remove" if dry_run else "Removed"
    for ref in report.removed_versions:
        typer.echo(f"{verb} version {ref}")
    for uri in report.removed_bodies:
        typer.echo(f"{verb} body {uri}")
    typer.echo(
        f"{verb} {len(report.removed_versions)} versions and {len(report.removed_bodies)} bodies "
        f"({render.format_size(report.freed_bytes)})."
    )


@app.command("verify")
@_cli_errors
def verify(
    ctx: typer.Context,
    all_projects: Annotated[
        bool, typer.Option("--all-projects", help="Check every project of the store.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check every body against the size and sha256 in its manifest; exit 1 when any is wrong."""
    report = _store(ctx).verify(all_projects=all_projects)
    if as_json:
        _print_json(report.to_dict())
    else:
        for ref, body, message in report.missing:
            typer.echo(f"MISSING  {ref} {body}: {message}")
        for ref, body, message in report.corrupt:
            typer.echo(f"CORRUPT  {ref} {body}: {message}")
        for uri, message in report.bad_manifests:
            typer.echo(f"BAD MANIFEST  {uri}: {' '.join(message.split())}")
        problems = len(report.missing) + len(report.corrupt) + len(report.bad_manifests)
        status = "OK" if report.ok else _count(problems, "problem")
        typer.echo(
            f"Checked {_count(report.bodies_checked, 'body', 'bodies')} of "
            f"{_count(report.versions_checked, 'version')}: {status}."
        )
    if not report.ok:
        raise typer.Exit(1)


def _count(number: int, singular: str, plural: str | None = None) -> str:
    """Return "1 body" or "3 bodies"."""
    return f"{number:,} {singular if number == 1 else plural or singular + 's'}"


# -- web view ------------------------------------------------------------------------------------


@app.command("ui")
@_cli_errors
def serve_ui(
    ctx: typer.Context,
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on; keep the loopback default unless others must reach it."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port to listen on.")] = 8765,
    allow_writes: Annotated[
        bool,
        typer.Option(
            "--allow-writes", help="Let the page add and remove tags (read-only by default)."
        ),
    ] = False,
    prefect_ui_url: Annotated[
        str | None,
        typer.Option(
            help="Base URL of the Prefect UI for links to flow runs "
            "(default: MLART_PREFECT_UI_URL)."
        ),
    ] = None,
) -> None:
    """Serve the artifacts web view until interrupted with Ctrl+C."""
    import uvicorn

    from mlart_prefect.settings import get_settings
    from mlart_prefect.web.app import create_app

    store = _store(ctx)
    web_app = create_app(
        store,
        read_only=not allow_writes,
        prefect_ui_url=prefect_ui_url or get_settings().prefect_ui_url,
    )
    mode = "tags editable" if allow_writes else "read-only"
    typer.echo(
        f"Serving {store.url} ({mode}) on http://{host}:{port}/ - press Ctrl+C to stop.", err=True
    )
    # uvicorn's info level logs each request (tag changes included) and the shutdown.
    uvicorn.run(web_app, host=host, port=port, log_level="info")


if __name__ == "__main__":  # pragma: no cover
    app(prog_name="mlart")
