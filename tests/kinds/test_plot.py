"""Tests of the plot kind: bodies, sizes, pixel budget, empty figures and pyplot cleanup."""

from __future__ import annotations

import base64
import gc
import json
import re
import warnings
import weakref
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mlart_prefect import api  # noqa: E402
from mlart_prefect.errors import NotFoundError, UnsupportedValueError  # noqa: E402
from mlart_prefect.kinds import EncodeContext, get_handler, handler_for_value  # noqa: E402
from mlart_prefect.kinds.plot import DEFAULT_MAX_PIXELS, PlotHandler, PlotImage  # noqa: E402
from mlart_prefect.store import ArtifactStore  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def two_panel_figure(*, figsize: tuple[float, float] = (8, 4), dpi: float = 100) -> Figure:
    figure, (left, right) = plt.subplots(1, 2, figsize=figsize, dpi=dpi)
    left.plot([0, 1, 2], [2, 0, 1])
    left.set_title("left panel")
    right.scatter([0, 1, 2], [1, 2, 0])
    return figure


def png_size(png: bytes) -> tuple[int, int]:
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def encode(figure, tmp_path: Path, **options):
    ctx = EncodeContext(store=None, project="test", key="chart", workdir=tmp_path)  # type: ignore[arg-type]
    return PlotHandler().encode(figure, ctx, **options)


def test_figure_and_axes_map_to_plot_kind():
    figure = two_panel_figure()

    assert handler_for_value(figure).kind == "plot"
    assert handler_for_value(figure.axes[0]).kind == "plot"
    assert get_handler("plot").kind == "plot"


def test_default_capture_stores_png_and_html(local_store: ArtifactStore):
    figure = two_panel_figure()

    manifest = api.save("chart", figure, store=local_store)

    assert sorted(b.name for b in manifest.bodies) == ["chart.html", "chart.png"]
    assert manifest.primary == "chart.png"
    assert manifest.kind == "plot"
    png = local_store.read_bytes(manifest, "chart.png")
    assert png.startswith(PNG_SIGNATURE)
    assert png_size(png) == (800, 400)
    assert manifest.spec["width"] == 800
    assert manifest.spec["height"] == 400
    assert manifest.spec["dpi"] == 100.0
    assert manifest.spec["figsize"] == [8.0, 4.0]
    assert manifest.spec["formats"] == ["png", "html"]
    assert manifest.spec["axes"] == 2
    assert manifest.spec["title"] == "left panel"
    assert manifest.body("chart.png").media_type == "image/png"


def test_round_trip_on_every_backend(store: ArtifactStore):
    manifest = api.save("chart", two_panel_figure(), store=store, formats=("png", "svg"))

    image = api.load(manifest.ref, store=store)

    assert image.png == store.read_bytes(manifest, "chart.png")
    assert image.png.startswith(PNG_SIGNATURE)
    assert "<svg" in image.svg


def test_all_formats_have_their_signatures(local_store: ArtifactStore):
    figure = two_panel_figure()

    manifest = api.save("chart", figure, store=local_store, formats=("png", "svg", "pdf"))

    png = local_store.read_bytes(manifest, "chart.png")
    svg = local_store.read_bytes(manifest, "chart.svg").decode("utf-8")
    pdf = local_store.read_bytes(manifest, "chart.pdf")
    page = local_store.read_bytes(manifest, "chart.html").decode("utf-8")
    assert png.startswith(PNG_SIGNATURE)
    assert "<svg" in svg
    assert pdf.startswith(b"%PDF")
    assert "data:image/png;base64," in page
    assert manifest.spec["formats"] == ["png", "svg", "pdf", "html"]


def test_html_embeds_the_stored_png(local_store: ArtifactStore):
    manifest = api.save("chart", two_panel_figure(), store=local_store)

    page = local_store.read_bytes(manifest, "chart.html").decode("utf-8")
    encoded = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)

    assert encoded is not None
    assert base64.b64decode(encoded.group(1)) == local_store.read_bytes(manifest, "chart.png")
    assert "<title>left panel</title>" in page


def test_svg_only_html_embeds_svg(tmp_path: Path):
    encoded = encode(two_panel_figure(), tmp_path, formats="svg")

    names = [body.name for body in encoded.bodies]
    page = encoded.bodies[-1].data.decode("utf-8")
    assert names == ["chart.svg", "chart.html"]
    assert "data:image/svg+xml;base64," in page
    assert encoded.primary == "chart.html"


@pytest.mark.parametrize(
    ("figsize", "dpi", "expected"),
    [((8, 4), 100, (800, 400)), ((3, 2), 150, (450, 300)), ((6.4, 4.8), 50, (320, 240))],
)
def test_pixel_size_is_figsize_times_dpi(tmp_path: Path, figsize, dpi, expected):
    encoded = encode(two_panel_figure(figsize=figsize, dpi=dpi), tmp_path)

    png = encoded.bodies[0].data
    assert png_size(png) == expected
    assert (encoded.spec["width"], encoded.spec["height"]) == expected
    assert encoded.spec["dpi"] == float(dpi)


def test_dpi_option_overrides_figure_dpi(tmp_path: Path):
    encoded = encode(two_panel_figure(figsize=(4, 2), dpi=100), tmp_path, dpi=30)

    assert png_size(encoded.bodies[0].data) == (120, 60)
    assert encoded.spec["dpi"] == 30.0


def test_local_path_names_the_bodies(local_store: ArtifactStore):
    manifest = api.save(
        "confusion-matrix",
        two_panel_figure(),
        store=local_store,
        local_path="plots/confusion_matrix.html",
    )

    names = sorted(b.name for b in manifest.bodies)
    assert names == ["confusion_matrix.html", "confusion_matrix.png"]
    assert manifest.spec["files"] == {
        "png": "confusion_matrix.png",
        "html": "confusion_matrix.html",
    }


def test_local_path_with_image_suffix(tmp_path: Path):
    encoded = encode(two_panel_figure(), tmp_path, local_path="out/roc.png")

    assert [body.name for body in encoded.bodies] == ["roc.png", "roc.html"]


def test_invalid_local_path_rejected(tmp_path: Path):
    with pytest.raises(UnsupportedValueError, match="local_path"):
        encode(two_panel_figure(), tmp_path, local_path="plots/my chart.html")


def test_axes_input_stores_its_figure(local_store: ArtifactStore):
    figure = two_panel_figure()
    figure.suptitle("two panels")

    manifest = api.save("chart", figure.axes[1], store=local_store)

    assert manifest.spec["axes"] == 2
    assert manifest.spec["title"] == "two panels"
    assert png_size(local_store.read_bytes(manifest, "chart.png")) == (800, 400)


def test_axes_of_subfigure_stores_root_figure(tmp_path: Path):
    figure = plt.figure(figsize=(4, 2), dpi=50)
    left, right = figure.subfigures(1, 2)
    left.subplots().plot([1, 2])
    right.subplots().plot([2, 1])

    encoded = encode(right.axes[0], tmp_path)

    assert png_size(encoded.bodies[0].data) == (200, 100)


def test_non_figure_rejected(tmp_path: Path):
    with pytest.raises(UnsupportedValueError, match="expected a matplotlib Figure"):
        encode(np.zeros((3, 3)), tmp_path)


@pytest.mark.parametrize("formats", [("png", "jpeg"), (), ("gif",)])
def test_invalid_formats_rejected(tmp_path: Path, formats):
    with pytest.raises(UnsupportedValueError, match="format"):
        encode(two_panel_figure(), tmp_path, formats=formats)


@pytest.mark.parametrize("dpi", [0, -5, float("nan"), "high"])
def test_invalid_dpi_rejected(tmp_path: Path, dpi):
    with pytest.raises(UnsupportedValueError, match="Invalid dpi"):
        encode(two_panel_figure(), tmp_path, dpi=dpi)


def test_over_budget_figure_rejected_before_rendering(local_store: ArtifactStore):
    # 100 x 100 inches at 100 dpi is 10,000 x 10,000 = 100 million pixels.
    figure = plt.figure(figsize=(100, 100), dpi=100)
    figure.add_subplot().plot([0, 1])

    expected = r"10000x10000 pixel PNG .* max_pixels=50,000,000"
    with pytest.raises(UnsupportedValueError, match=expected):
        api.save("huge", figure, store=local_store)

    with pytest.raises(NotFoundError):
        local_store.get("huge")
    assert plt.fignum_exists(figure.number)
    assert DEFAULT_MAX_PIXELS == 50_000_000


def test_max_pixels_option_lowers_budget(tmp_path: Path):
    figure = two_panel_figure(figsize=(4, 2), dpi=100)

    with pytest.raises(UnsupportedValueError, match="max_pixels=10,000"):
        encode(figure, tmp_path, max_pixels=10_000)
    encoded = encode(figure, tmp_path, max_pixels=80_000)

    assert png_size(encoded.bodies[0].data) == (400, 200)


def test_over_budget_figure_stored_as_svg_only(tmp_path: Path):
    figure = plt.figure(figsize=(100, 100), dpi=100)
    figure.add_subplot().plot([0, 1])

    encoded = encode(figure, tmp_path, formats=("svg",))

    assert [body.name for body in encoded.bodies] == ["chart.svg", "chart.html"]
    assert b"<svg" in encoded.bodies[0].data
    assert (encoded.spec["width"], encoded.spec["height"]) == (10_000, 10_000)


def test_empty_figure_stored_with_warning(local_store: ArtifactStore, tmp_path: Path, caplog):
    no_axes = plt.figure(figsize=(2, 2))
    blank_figure, _ = plt.subplots(figsize=(2, 2))

    encoded_no_axes = encode(no_axes, tmp_path)
    encoded_blank = encode(blank_figure, tmp_path)
    with caplog.at_level("WARNING"):
        manifest = api.save("empty", plt.figure(figsize=(2, 2)), store=local_store)

    assert len(encoded_no_axes.warnings) == 1
    assert "is empty" in encoded_no_axes.warnings[0]
    assert len(encoded_blank.warnings) == 1
    assert manifest.spec["axes"] == 0
    assert len(manifest.spec["warnings"]) == 1  # kept with the version, for show and the web view
    assert "is empty" in manifest.spec["warnings"][0]
    assert local_store.read_bytes(manifest, "empty.png").startswith(PNG_SIGNATURE)
    assert "is empty" in caplog.text


def test_figure_with_content_has_no_warning(tmp_path: Path):
    text_only = plt.figure(figsize=(2, 2))
    text_only.text(0.5, 0.5, "note")

    assert encode(two_panel_figure(), tmp_path).warnings == []
    assert encode(text_only, tmp_path).warnings == []


def test_pyplot_figure_closed_after_capture(local_store: ArtifactStore):
    figure = two_panel_figure()
    number = figure.number

    api.save("chart", figure, store=local_store)

    assert not plt.fignum_exists(number)


def test_close_false_keeps_figure_open(local_store: ArtifactStore):
    figure = two_panel_figure()

    api.save("chart", figure, store=local_store, close=False)

    assert plt.fignum_exists(figure.number)


def test_figure_without_pyplot_is_stored(tmp_path: Path):
    figure = Figure(figsize=(2, 1), dpi=100)
    figure.add_subplot().plot([0, 1])

    encoded = encode(figure, tmp_path)

    assert png_size(encoded.bodies[0].data) == (200, 100)
    assert plt.get_fignums() == []


def test_load_returns_plot_image(local_store: ArtifactStore):
    manifest = api.save("chart", two_panel_figure(), store=local_store, formats=("png", "svg"))

    image = api.load("chart", store=local_store)

    assert isinstance(image, PlotImage)
    assert image.png == local_store.read_bytes(manifest, "chart.png")
    assert image._repr_png_() == image.png
    assert image._repr_svg_() is None
    assert image.svg is not None and "<svg" in image.svg
    assert image.pdf is None
    assert "data:image/png;base64," in image.html
    assert (image.width, image.height, image.dpi) == (800, 400, 100.0)
    assert image.title == "left panel"


def test_svg_only_image_displays_svg(local_store: ArtifactStore):
    api.save("chart", two_panel_figure(), store=local_store, formats=("svg",))

    image = api.load("chart", store=local_store)

    assert image.png is None
    assert image._repr_svg_() == image.svg


def test_same_figure_twice_keeps_one_version(local_store: ArtifactStore):
    figure = two_panel_figure()

    formats = ("png", "svg", "pdf")
    first = api.save("chart", figure, store=local_store, formats=formats, close=False)
    second = api.save("chart", figure, store=local_store, formats=formats, close=False)

    assert first.version == 1
    assert second.version == 1


def test_spec_is_strict_json(tmp_path: Path):
    encoded = encode(two_panel_figure(), tmp_path, formats=("png", "pdf"))

    text = json.dumps(encoded.spec, allow_nan=False)

    assert json.loads(text) == encoded.spec


def test_thirty_pyplot_captures_keep_memory_flat(local_store: ArtifactStore):
    psutil = pytest.importorskip("psutil")
    process = psutil.Process()
    rng = np.random.default_rng(0)

    def capture(index: int) -> None:
        figure, ax = plt.subplots(figsize=(6, 4))
        ax.plot(rng.standard_normal(50_000))
        api.save(f"points-{index}", figure, store=local_store)

    capture(0)  # imports and font caches are loaded once, before the baseline
    gc.collect()
    baseline = process.memory_info().rss
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for index in range(1, 31):
            capture(index)
    growth = process.memory_info().rss - baseline

    too_many = [w for w in caught if "More than 20 figures" in str(w.message)]
    assert too_many == []
    assert plt.get_fignums() == []
    assert growth < 200 * 1024 * 1024, f"RSS grew by {growth / 2**20:.0f} MB"
    assert len(local_store.keys()) == 31


def test_dpi_changed_after_creation_is_used(tmp_path: Path):
    figure = two_panel_figure(figsize=(2, 1), dpi=100)
    figure.set_dpi(200)

    encoded = encode(figure, tmp_path)

    assert png_size(encoded.bodies[0].data) == (400, 200)
    assert encoded.spec["dpi"] == 200.0


@pytest.mark.parametrize(("threshold", "freed"), [(1, True), (2**62, False)])
def test_closed_figures_collected_at_threshold(tmp_path: Path, monkeypatch, threshold, freed):
    from mlart_prefect.kinds import plot

    monkeypatch.setattr(plot, "RELEASE_THRESHOLD_BYTES", threshold)
    monkeypatch.setattr(plot, "_unreleased_bytes", 0)
    gc.collect()
    gc.disable()  # only the handler's own collection may free the first figure
    try:
        first = two_panel_figure()
        first_ref = weakref.ref(first)
        encode(first, tmp_path)
        del first
        encode(two_panel_figure(), tmp_path)

        assert (first_ref() is None) is freed
    finally:
        gc.enable()
