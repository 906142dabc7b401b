"""The plot kind: a matplotlib figure stored as PNG (SVG and PDF on request) and an HTML page."""

from __future__ import annotations

import base64
import gc
import html
import io
import logging
import math
import numbers
import sys
import threading
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from mlart_prefect.errors import UnsupportedValueError
from mlart_prefect.kinds import register_kind
from mlart_prefect.kinds.base import (
    BodyPayload,
    BodyReader,
    EncodeContext,
    Encoded,
    KindHandler,
)
from mlart_prefect.manifest import validate_name

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mlart_prefect.manifest import Manifest

__all__ = ["DEFAULT_MAX_PIXELS", "RELEASE_THRESHOLD_BYTES", "PlotHandler", "PlotImage"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 50_000_000
"""Largest PNG, in pixels (width x height), rendered by default.

Agg keeps an RGBA buffer of 4 bytes per pixel, so the default budget needs about 200 MB for the
buffer alone, before PNG compression.
"""

FORMATS = ("png", "svg", "pdf")
"""Image formats a plot can be stored in; the HTML page is always stored as well."""

RELEASE_THRESHOLD_BYTES = 64 * 2**20
"""Estimated memory of closed but uncollected figures that triggers a full ``gc.collect()``."""

# Estimated rasterizer memory per rendered vertex. A dense line of 50,000 random points kept about
# 43 MB (measured with matplotlib 3.11 and Agg). Smooth lines need far less, so this overestimates.
_BYTES_PER_VERTEX = 1024
_unreleased_bytes = 0
_release_lock = threading.Lock()

_MEDIA_TYPES = {
    "png": "image/png",
    "svg": "image/svg+xml",
    "pdf": "application/pdf",
    "html": "text/html; charset=utf-8",
}

# The default metadata of SVG and PDF output contains the current date, and SVG ids are salted
# with a random UUID unless svg.hashsalt is set. Fixing both makes rendering the same figure twice
# give the same bytes, so a retried task finds its earlier version instead of adding one.
_STABLE_METADATA = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}
_SVG_HASH_SALT = "mlart-prefect"


@dataclass(frozen=True)
class PlotImage:
    """A stored plot as loaded back: the rendered images and the figure's size.

    A matplotlib Figure cannot be rebuilt from its images, so loading a plot returns this object.
    Jupyter displays it through ``_repr_png_`` (or ``_repr_svg_`` when only SVG was stored).

    Attributes:
        png: PNG bytes, or None when the plot was stored without PNG.
        svg: SVG document text, or None unless SVG was stored.
        pdf: PDF bytes, or None unless PDF was stored.
        html: The self-contained HTML page with the image embedded.
        width: Width in pixels at ``dpi``.
        height: Height in pixels at ``dpi``.
        dpi: Resolution the PNG was rendered at, in dots per inch.
        title: The figure's suptitle, else its first axes title, else None.
    """

    png: bytes | None
    svg: str | None
    pdf: bytes | None
    html: str
    width: int
    height: int
    dpi: float
    title: str | None = None

    def _repr_png_(self) -> bytes | None:
        return self.png

    def _repr_svg_(self) -> str | None:
        return self.svg if self.png is None else None


class PlotHandler(KindHandler):
    """Store matplotlib figures as images plus an HTML page. An Axes is stored as its figure.

    Every requested format is rendered once, straight from the figure. The HTML page embeds the
    PNG bytes already rendered, or the SVG when no PNG was requested. The spec records the size
    in pixels, the DPI, the formats, the title and the number of axes.
    """

    kind = "plot"

    def encode(
        self,
        value: Any,
        ctx: EncodeContext,
        *,
        formats: str | tuple[str, ...] | list[str] = ("png",),
        dpi: float | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        close: bool = True,
        local_path: str | None = None,
    ) -> Encoded:
        """Render a figure into PNG/SVG/PDF bodies and a self-contained HTML page.

        Args:
            value: A ``matplotlib.figure.Figure``, or an ``Axes`` whose figure is stored.
            ctx: Where the plot is saved; ``ctx.key`` names the bodies by default.
            formats: Image formats to store, any of ``"png"``, ``"svg"`` and ``"pdf"``
                (default ``("png",)``: PNG only, which is the fastest).
            dpi: Resolution of the PNG in dots per inch (default: the figure's ``dpi``,
                without the device pixel ratio of a HiDPI screen). ``savefig.dpi`` in
                rcParams is not used.
            max_pixels: Largest PNG accepted, in pixels (default ``DEFAULT_MAX_PIXELS``, 50
                million). The size is computed from the figure size and DPI before rendering.
            close: Close a figure managed by pyplot after a successful capture (default True), so
                that a loop capturing many figures keeps memory flat and stays under pyplot's
                limit of open figures. Closed figures are garbage-collected once their
                estimated memory reaches ``RELEASE_THRESHOLD_BYTES``. Figures created without
                pyplot, and figures whose capture failed, are never closed.
            local_path: File name of the HTML page, as MLRun's ``local_path``; only its last
                part is used, so ``"plots/confusion.html"`` stores ``confusion.html`` beside
                ``confusion.png`` (default: ``"<key>.html"``).

        Raises:
            UnsupportedValueError: The value is not a figure or Axes, an option is invalid, or
                the PNG would exceed ``max_pixels``; nothing is rendered then.
        """
        figure = _figure_of(value)
        render_formats = _check_formats(formats)
        stem, html_name = _body_names(local_path, ctx.key)
        dpi = _check_dpi(_figure_dpi(figure) if dpi is None else dpi)
        width, height = _pixel_size(figure, dpi)
        if "png" in render_formats:
            _check_pixel_budget(width, height, dpi, max_pixels)

        logger.debug(
            "Rendering plot %s (%dx%d pixels) as %s", ctx.key, width, height, render_formats
        )
        rendered = {fmt: _render(figure, fmt, dpi) for fmt in render_formats}
        if "png" in rendered:
            width, height = _png_size(rendered["png"])
        warnings = [] if _has_content(figure) else [_empty_warning(ctx.key)]
        title = _title_of(figure)

        bodies = [
            BodyPayload(name=f"{stem}.{fmt}", media_type=_MEDIA_TYPES[fmt], data=data)
            for fmt, data in rendered.items()
        ]
        page = _html_page(rendered, title or ctx.key, width, height)
        bodies.append(BodyPayload(name=html_name, media_type=_MEDIA_TYPES["html"], data=page))
        files = {fmt: f"{stem}.{fmt}" for fmt in rendered} | {"html": html_name}
        spec = {
            "width": width,
            "height": height,
            "dpi": dpi,
            "figsize": [float(size) for size in figure.get_size_inches()],
            "formats": [*rendered, "html"],
            "files": files,
            "title": title,
            "axes": len(figure.axes),
            "warnings": warnings,
        }

        if close and _close_if_pyplot(figure):
            _release_later(figure, rendered)
        primary = files["png"] if "png" in files else html_name
        return Encoded(bodies=bodies, spec=spec, primary=primary, warnings=warnings)

    def decode(self, manifest: Manifest, reader: BodyReader) -> PlotImage:
        """Read a stored plot back as a ``PlotImage`` with every stored format."""
        files: dict[str, str] = manifest.spec["files"]
        images = {fmt: reader.read_bytes(name) for fmt, name in files.items()}
        svg = images.get("svg")
        return PlotImage(
            png=images.get("png"),
            svg=svg.decode("utf-8") if svg is not None else None,
            pdf=images.get("pdf"),
            html=images["html"].decode("utf-8"),
            width=int(manifest.spec["width"]),
            height=int(manifest.spec["height"]),
            dpi=float(manifest.spec["dpi"]),
            title=manifest.spec.get("title"),
        )


def _figure_of(value: Any) -> Figure:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    if isinstance(value, Figure):
        return value
    if isinstance(value, Axes):
        # Since matplotlib 3.10 an Axes inside a SubFigure returns the SubFigure unless root=True.
        try:
            figure = value.get_figure(root=True)
        except TypeError:
            figure = value.figure
        if isinstance(figure, Figure):
            return figure
    raise UnsupportedValueError(
        f"Cannot store {type(value).__module__}.{type(value).__qualname__} as a plot: expected a "
        "matplotlib Figure or an Axes that belongs to one."
    )


def _check_formats(formats: str | tuple[str, ...] | list[str]) -> list[str]:
    requested = [formats] if isinstance(formats, str) else list(formats)
    chosen: list[str] = []
    for fmt in requested:
        name = fmt.lower().lstrip(".") if isinstance(fmt, str) else fmt
        if name not in FORMATS:
            raise UnsupportedValueError(
                f"Invalid plot format {fmt!r}: formats must be taken from {FORMATS!r}."
            )
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise UnsupportedValueError(
            f"Invalid formats {formats!r}: name at least one of {FORMATS!r}."
        )
    return chosen


def _body_names(local_path: str | None, key: str) -> tuple[str, str]:
    """Return the stem of the image bodies and the HTML body's name."""
    if local_path is None:
        return key, f"{key}.html"
    file_name = PurePath(str(local_path)).name
    path = PurePath(file_name)
    html_name = file_name if path.suffix.lower() in (".html", ".htm") else f"{path.stem}.html"
    try:
        validate_name(html_name, "plot file name")
    except ValueError as exc:
        raise UnsupportedValueError(f"Invalid local_path {local_path!r}: {exc}") from exc
    return PurePath(html_name).stem, html_name


def _pixel_size(figure: Figure, dpi: float) -> tuple[int, int]:
    width_inches, height_inches = figure.get_size_inches()
    return round(width_inches * dpi), round(height_inches * dpi)


def _figure_dpi(figure: Figure) -> float:
    # On a HiDPI screen an interactive backend multiplies figure.dpi by the device pixel ratio;
    # dividing it out gives the same image size on every screen.
    ratio = getattr(figure.canvas, "device_pixel_ratio", 1) or 1
    return float(figure.dpi) / ratio


def _check_dpi(dpi: Any) -> float:
    if isinstance(dpi, bool) or not isinstance(dpi, numbers.Real) or not 0 < dpi < math.inf:
        raise UnsupportedValueError(
            f"Invalid dpi {dpi!r}: expected a positive number of dots per inch."
        )
    return float(dpi)


def _check_pixel_budget(width: int, height: int, dpi: float, max_pixels: int) -> None:
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise UnsupportedValueError(
            f"Invalid max_pixels {max_pixels!r}: expected a positive integer number of pixels."
        )
    if width * height <= max_pixels:
        return
    raise UnsupportedValueError(
        f"Cannot render a {width}x{height} pixel PNG ({width * height:,} pixels at {dpi:g} "
        f"dpi) because it exceeds max_pixels={max_pixels:,}. Lower the figure size or dpi, "
        "pass a larger max_pixels=, or store vector images only with formats=('svg',)."
    )


def _render(figure: Figure, fmt: str, dpi: float) -> bytes:
    import matplotlib

    buffer = io.BytesIO()
    if fmt == "png":
        figure.savefig(buffer, format="png", dpi=dpi)
        return buffer.getvalue()

    salt = matplotlib.rcParams["svg.hashsalt"] or _SVG_HASH_SALT
    with matplotlib.rc_context({"svg.hashsalt": salt}):
        figure.savefig(buffer, format=fmt, dpi=dpi, metadata=_STABLE_METADATA[fmt])
    return buffer.getvalue()


def _png_size(png: bytes) -> tuple[int, int]:
    # Width and height are the first two big-endian 32-bit fields of the IHDR chunk.
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def _has_content(figure: Figure) -> bool:
    """Tell whether anything would be drawn besides empty axes frames and titles."""
    own_artists = (figure.texts, figure.images, figure.lines, figure.patches, figure.artists)
    if any(own_artists) or figure.legends:
        return True
    return any(ax.has_data() or ax.texts or ax.artists or ax.tables for ax in figure.axes)


def _empty_warning(key: str) -> str:
    return (
        f"The figure saved as plot {key!r} is empty (no axes or nothing drawn in them); it is "
        "stored as it is. Draw on the figure before saving it, or save the right figure."
    )


def _title_of(figure: Figure) -> str | None:
    suptitle = figure.get_suptitle()
    if suptitle:
        return str(suptitle)
    for ax in figure.axes:
        for loc in ("center", "left", "right"):
            text = ax.get_title(loc=loc)
            if text:
                return str(text)
    return None


def _html_page(rendered: dict[str, bytes], title: str, width: int, height: int) -> bytes:
    if "png" in rendered:
        source = "data:image/png;base64," + base64.b64encode(rendered["png"]).decode("ascii")
    elif "svg" in rendered:
        source = "data:image/svg+xml;base64," + base64.b64encode(rendered["svg"]).decode("ascii")
    else:
        return _pdf_only_page(title)
    escaped = html.escape(title)
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escaped}</title>\n</head>\n<body style=\"margin:0\">\n"
        f'<img src="{source}" width="{width}" height="{height}" alt="{escaped}" '
        'style="max-width:100%;height:auto">\n</body>\n</html>\n'
    )
    return page.encode("utf-8")


def _pdf_only_page(title: str) -> bytes:
    escaped = html.escape(title)
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escaped}</title>\n</head>\n<body>\n<p>{escaped}: stored as PDF only.</p>\n"
        "</body>\n</html>\n"
    )
    return page.encode("utf-8")


def _close_if_pyplot(figure: Figure) -> bool:
    """Close the figure if pyplot manages it, and tell whether it did."""
    # Only pyplot keeps figures alive in a registry. When pyplot was never imported, no figure
    # can be in it.
    if "matplotlib.pyplot" not in sys.modules:
        return False
    from matplotlib import pyplot as plt
    from matplotlib._pylab_helpers import Gcf

    if not any(manager.canvas.figure is figure for manager in Gcf.get_all_fig_managers()):
        return False
    plt.close(figure)
    return True


def _release_later(figure: Figure, rendered: dict[str, bytes]) -> None:
    """Count the memory a closed figure still keeps and collect garbage once it adds up.

    A rendered figure keeps its renderer alive (every Text caches it): the PNG pixel buffer and
    the rasterizer's cell storage, about 40 MB for a dense 50,000-point line. The figure is a
    web of reference cycles, so closing it frees nothing until Python's cyclic garbage collector
    runs, and in a loop of captures dozens of closed figures pile up. A full ``gc.collect()``
    costs tens of milliseconds, so it runs only once the estimate of closed, uncollected figures
    reaches ``RELEASE_THRESHOLD_BYTES``.
    """
    global _unreleased_bytes

    estimate = sum(len(data) for fmt, data in rendered.items() if fmt != "png")
    if "png" in rendered:
        width, height = _png_size(rendered["png"])
        estimate += width * height * 4 + _BYTES_PER_VERTEX * _vertex_count(figure)
    with _release_lock:
        _unreleased_bytes += estimate
        if _unreleased_bytes < RELEASE_THRESHOLD_BYTES:
            return
        _unreleased_bytes = 0
    logger.debug("Collecting garbage to free closed figures")
    gc.collect()


def _vertex_count(figure: Figure) -> int:
    # NOTE: only line vertices and collection offsets are counted. Memory that other artists keep
    # in the renderer is left to Python's own garbage collection.
    count = 0
    for ax in figure.axes:
        count += sum(len(line.get_xydata()) for line in ax.lines)
        count += sum(len(collection.get_offsets()) for collection in ax.collections)
    return count


_handler = PlotHandler()
# Registered after user types (first=False) so that a user's register_kind call for the same
# types wins even when the built-in kinds are loaded later.
register_kind("matplotlib.figure.Figure", _handler, first=False)
register_kind("matplotlib.axes._axes.Axes", _handler, first=False)
