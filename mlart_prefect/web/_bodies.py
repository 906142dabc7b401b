"""HTTP responses for version bodies: the right media type, sha256 checked, never a raw path."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import quote

from starlette.responses import Response, StreamingResponse

from mlart_prefect.errors import IntegrityError

if TYPE_CHECKING:
    from mlart_prefect.manifest import BodyRef, Manifest
    from mlart_prefect.store import ArtifactStore

logger = logging.getLogger(__name__)

BUFFERED_MAX_BYTES = 8 * 1024 * 1024
"""Bodies up to this size are read and checked whole before the first byte is sent."""

STREAM_CHUNK = 1024 * 1024

# Any process that can write to the store chooses body content. The sandbox makes an HTML body
# (a plot's page) run in an opaque origin without scripts, and nosniff stops browsers from
# guessing another type.
_SAFETY_HEADERS = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}


class BodyStreamError(RuntimeError):
    """Raised inside a body stream whose end does not match the sha256; it aborts the connection."""


def content_disposition(name: str, *, download: bool) -> str:
    """Return a Content-Disposition value naming the file, quoted for any character."""
    kind = "attachment" if download else "inline"
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def body_response(
    store: ArtifactStore, manifest: Manifest, name: str, *, download: bool
) -> Response:
    """Return a response with one body of ``manifest``, verified against its sha256.

    Bodies up to ``BUFFERED_MAX_BYTES`` are checked before sending, so a corrupt one gives a
    clean error. Larger bodies are streamed with their Content-Length. A mismatch found at the
    end raises ``BodyStreamError``, which aborts the connection: the client sees an incomplete
    transfer instead of bad data.

    Raises:
        NotFoundError: The version has no body of that name.
        IntegrityError: The body is missing, or (when small) corrupt.
    """
    body = manifest.body(name)
    headers = {
        **_SAFETY_HEADERS,
        "Content-Disposition": content_disposition(body.name, download=download),
        "ETag": f'"{body.sha256}"',
    }
    if body.size <= BUFFERED_MAX_BYTES:
        data = store.read_bytes(manifest, body.name)
        return Response(data, media_type=body.media_type, headers=headers)

    stream = store.open(manifest, body.name)
    headers["Content-Length"] = str(body.size)
    return StreamingResponse(
        _chunks(stream, manifest, body), media_type=body.media_type, headers=headers
    )


def _chunks(stream: BinaryIO, manifest: Manifest, body: BodyRef) -> Iterator[bytes]:
    with stream:
        try:
            while chunk := stream.read(STREAM_CHUNK):
                yield chunk
        except IntegrityError as exc:
            # The status line is already sent, so the only signal left is a broken transfer.
            logger.error("Aborted sending body %r of %s: %s", body.name, manifest.ref, exc)
            raise BodyStreamError(str(exc)) from exc
