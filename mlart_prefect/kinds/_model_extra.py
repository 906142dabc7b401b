"""A model's extra_data: files stored beside it and references to other versions."""

from __future__ import annotations

import logging
import mimetypes
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from mlart_prefect.errors import InvalidNameError, NotFoundError, UnsupportedValueError
from mlart_prefect.kinds import handler_for_value
from mlart_prefect.kinds.base import BodyPayload, EncodeContext
from mlart_prefect.manifest import NAME_RULE, Manifest, Reference, from_mlrun_uri, validate_name

logger = logging.getLogger(__name__)


@dataclass
class ExtraItem:
    """One checked extra_data entry: a body to store, a pinned reference, or a value to save."""

    name: str
    entry: dict[str, Any] | None = None
    payload: BodyPayload | None = None
    value: Any = None


def plan_extra_data(
    extra_data: Mapping[str, Any] | None, ctx: EncodeContext, model_file: str
) -> list[ExtraItem]:
    """Check every extra_data entry and that no two files share a name, before saving anything."""
    if extra_data is None:
        return []
    if not isinstance(extra_data, Mapping):
        raise UnsupportedValueError(
            f"Invalid extra_data {extra_data!r}: expected a dict of names to values."
        )

    items = [_plan_extra_item(name, value, ctx) for name, value in extra_data.items()]
    used_names = {model_file}
    for item in items:
        if item.payload is None:
            continue
        if item.payload.name in used_names:
            raise UnsupportedValueError(
                f"Invalid extra_data name {item.name!r}: its file {item.payload.name!r} clashes "
                "with the model file or another extra file. Rename the extra_data entry."
            )
        used_names.add(item.payload.name)
    return items


def _plan_extra_item(name: Any, value: Any, ctx: EncodeContext) -> ExtraItem:
    try:
        validate_name(name, "extra_data name")
    except InvalidNameError as exc:
        expected = f"names must {NAME_RULE}" if isinstance(name, str) else "expected a string"
        raise UnsupportedValueError(f"Invalid extra_data name {name!r}: {expected}.") from exc

    if isinstance(value, (bytes, bytearray, memoryview)):
        payload = BodyPayload(name=name, data=bytes(value))
        return ExtraItem(name, {"type": "body", "body": name}, payload)
    if isinstance(value, Path) or (isinstance(value, str) and os.path.isfile(value)):
        payload, entry = _extra_file(name, Path(value), ctx.workdir)
        return ExtraItem(name, entry, payload)
    if isinstance(value, Manifest):
        return ExtraItem(name, {"type": "artifact", "ref": value.ref})
    if isinstance(value, (str, Reference)):
        reference = _resolve_reference(name, value, ctx)
        return ExtraItem(name, {"type": "artifact", "ref": reference})

    try:
        handler_for_value(value)
    except UnsupportedValueError as exc:
        raise UnsupportedValueError(
            f"Invalid extra_data {name!r}: values of type {type(value).__qualname__} are not "
            "supported. Pass bytes, a file path, a reference to a stored version, or a value of "
            f"a registered kind (DataFrame, figure). ({exc})"
        ) from exc
    try:
        validate_name(f"{ctx.key}-{name}", "key")
    except InvalidNameError as exc:
        raise UnsupportedValueError(
            f"Invalid extra_data {name!r}: it is saved under the key '<key>-<name>', and {exc}"
        ) from exc
    return ExtraItem(name, value=value)


def referenced_versions(items: list[ExtraItem]) -> list[str]:
    """Return the versions that extra_data names by reference: inputs of the model.

    Values saved as versions of their own are parts of the model instead (see
    ``mlart_prefect.lineage.parts_of``), so they are not listed.
    """
    return [
        item.entry["ref"] for item in items
        if item.entry is not None and item.entry.get("type") == "artifact"
    ]


def store_extra_data(
    items: list[ExtraItem], ctx: EncodeContext
) -> tuple[list[BodyPayload], dict[str, dict[str, Any]]]:
    """Save the extra values that become versions of their own; return bodies and spec entries."""
    entries: dict[str, dict[str, Any]] = {}
    for item in items:
        if item.entry is None:
            reference = _save_extra_artifact(item.name, item.value, ctx)
            item.entry = {"type": "artifact", "ref": reference}
        entries[item.name] = item.entry
    bodies = [item.payload for item in items if item.payload is not None]
    return bodies, entries


def _extra_file(name: str, path: Path, workdir: Path) -> tuple[BodyPayload, dict[str, Any]]:
    """Copy a local file into the work folder, because the store moves the files it is given."""
    if not path.is_file():
        raise UnsupportedValueError(
            f"Invalid extra_data {name!r}: {str(path)!r} is not an existing file."
        )
    body_name = name if PurePath(name).suffix else f"{name}{path.suffix}"
    try:
        validate_name(body_name, "file name")
    except InvalidNameError as exc:
        raise UnsupportedValueError(f"Invalid extra_data {name!r}: {exc}") from exc
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    copy = workdir / body_name
    shutil.copyfile(path, copy)
    payload = BodyPayload(name=body_name, media_type=media_type, path=copy)
    return payload, {"type": "body", "body": body_name, "file_name": path.name}


def _resolve_reference(name: str, value: str | Reference, ctx: EncodeContext) -> str:
    """Return the pinned ``project/key:n`` reference of an extra item that names a version."""
    text = from_mlrun_uri(value) if isinstance(value, str) else value
    try:
        reference = Reference.parse(text, project=ctx.project)
        return ctx.store.get(reference).ref
    except (NotFoundError, ValueError) as exc:
        raise UnsupportedValueError(
            f"Invalid extra_data {name!r}: {value!r} is neither an existing local file nor a "
            f"stored version ({exc}). Pass bytes, a file path, a reference such as "
            "'project/key:3', or a value to save as its own artifact."
        ) from exc


def _save_extra_artifact(name: str, value: Any, ctx: EncodeContext) -> str:
    from mlart_prefect import api  # imported here: api imports the kinds registry

    key = f"{ctx.key}-{name}"
    manifest = api.save(key, value, store=ctx.store, project=ctx.project, labels=ctx.labels or None)
    logger.info("Stored extra_data %r of %s as %s", name, ctx.key, manifest.ref)
    return manifest.ref
