"""The web view in headless Chromium: filters, version pages, plot image and a verified download.

The page is served by uvicorn on 127.0.0.1 (a free port) in a thread and driven with
Playwright's sync API through Debian's chromium. Set ``MLART_SCREENSHOT_DIR`` to also save the
version page screenshot there (the docs use ``docs/images``).
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from mlart_prefect.store import ArtifactStore
from tests._flow_store import PROJECT, FlowStoreInfo, copy_store
from tests.web.conftest import PREFECT_UI

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)",
    ),
]


@pytest.fixture(scope="module")
def browser_store(
    flow_template: FlowStoreInfo, tmp_path_factory: pytest.TempPathFactory
) -> ArtifactStore:
    """A copy of the flow-filled store shared by this module's tests."""
    path = copy_store(flow_template, tmp_path_factory.mktemp("browser") / "store")
    return ArtifactStore(path, project=PROJECT)


@pytest.fixture(scope="module")
def base_url(browser_store: ArtifactStore) -> Iterator[str]:
    """Serve the web view (tags editable) with uvicorn on 127.0.0.1 in a thread."""
    import uvicorn

    from mlart_prefect.web.app import create_app

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    app = create_app(browser_store, read_only=False, prefect_ui_url=PREFECT_UI)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped before it started serving"
        assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=15)
    listener.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    context = browser.new_context(
        base_url=base_url, accept_downloads=True, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()


def row_refs(page: Page) -> list[str]:
    """Return the data-ref of every row of the artifacts table."""
    rows = page.locator("#artifacts tbody tr")
    return [rows.nth(index).get_attribute("data-ref") for index in range(rows.count())]


def apply_filters(page: Page, **fields: str) -> None:
    """Fill the filter form's text fields and submit it."""
    for name, value in fields.items():
        page.fill(f"#filters input[name={name}]", value)
    with page.expect_navigation():
        page.click("#apply")


def open_key(page: Page, key: str) -> None:
    """Open the list page and click a key's link."""
    page.goto("/artifacts")
    with page.expect_navigation():
        page.click(f"#artifacts td.key a:text-is('{key}')")


def test_filter_by_label(page: Page) -> None:
    page.goto("/artifacts")
    assert len(row_refs(page)) == 4

    apply_filters(page, label="team=analytics")

    assert row_refs(page) == ["iris/iris-summary:1"]
    assert "label=team%3Danalytics" in page.url
    assert page.input_value("#filters input[name=label]") == "team=analytics"


def test_filter_by_time_range(page: Page, flow_template: FlowStoreInfo) -> None:
    boundary = flow_template.first_run_done.isoformat()
    page.goto("/artifacts")
    page.check("#filters input[name=all_versions]")

    apply_filters(page, since=boundary)
    after = sorted(row_refs(page))
    apply_filters(page, since="", until=boundary)
    before = sorted(row_refs(page))

    assert after == [
        "iris/iris-model:2",
        "iris/iris-scatter:2",
        "iris/iris-summary:1",
        "iris/iris:2",
    ]
    assert before == ["iris/iris-model:1", "iris/iris-scatter:1", "iris/iris:1"]
    assert page.text_content("#result-count").strip() == "1–3 of 3 versions"


def test_bad_time_filter_shows_error(page: Page) -> None:
    page.goto("/artifacts")

    apply_filters(page, since="last tuesday")

    assert "Invalid time 'last tuesday'" in page.text_content("#filter-error")


def test_open_dataset_version(page: Page, browser_store: ArtifactStore, tmp_path: Path) -> None:
    manifest = browser_store.get("iris:2")

    open_key(page, "iris")

    assert page.url.endswith("/artifacts/iris/iris/2")
    assert page.locator("#preview tbody tr").count() == len(manifest.spec["preview"]["rows"])
    assert page.locator("#statistics svg.histogram").count() == 5
    assert page.locator("#statistics svg.histogram rect").count() == 5 * 20
    first_cell = page.text_content("#preview tbody tr:first-child td:first-child")
    assert float(first_cell) == manifest.spec["preview"]["rows"][0][0]

    screenshot = tmp_path / "web-version.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    if os.environ.get("MLART_SCREENSHOT_DIR"):
        target = Path(os.environ["MLART_SCREENSHOT_DIR"]) / "web-version.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(screenshot.read_bytes())

    with page.expect_navigation():
        page.click("#versions a:text-is('version 1')")
    assert page.url.endswith("/artifacts/iris/iris/1")
    assert "version 1" in page.text_content("h1")


def test_open_plot_version(page: Page, browser_store: ArtifactStore) -> None:
    manifest = browser_store.get("iris-scatter")

    open_key(page, "iris-scatter")
    page.wait_for_function("document.getElementById('plot-image').complete")
    size = page.evaluate(
        "() => { const img = document.getElementById('plot-image');"
        " return [img.naturalWidth, img.naturalHeight]; }"
    )

    assert size == [manifest.spec["width"], manifest.spec["height"]]
    assert "Sepal vs petal length" in page.text_content("#kind-facts")


def test_open_model_version_and_follow_lineage(page: Page, browser_store: ArtifactStore) -> None:
    manifest = browser_store.get("iris-model")

    open_key(page, "iris-model")

    metrics = page.text_content("#metrics")
    assert "accuracy" in metrics
    assert f"{manifest.spec['metrics']['accuracy']:.6g}" in metrics
    link = page.get_attribute("#flow-run-link", "href")
    assert link == f"{PREFECT_UI}/runs/flow-run/{manifest.producer.flow_run_id}"
    assert "iris/iris-summary:1" in page.text_content("#used-by")

    with page.expect_navigation():
        page.click("#made-from a:text-is('iris/iris:2')")
    assert page.url.endswith("/artifacts/iris/iris/2")


def test_download_matches_manifest_sha256(
    page: Page, browser_store: ArtifactStore, tmp_path: Path
) -> None:
    body = browser_store.get("iris:2").body()
    page.goto("/artifacts/iris/iris/2")

    with page.expect_download() as pending:
        page.click(f"#bodies tr[data-body='{body.name}'] a.download")
    download = pending.value
    saved = tmp_path / "downloaded.parquet"
    download.save_as(saved)

    assert download.suggested_filename == body.name
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == body.sha256


def test_tag_and_untag_from_page(page: Page, browser_store: ArtifactStore) -> None:
    page.goto("/artifacts/iris/iris-scatter/1")

    page.fill(".tag-form input[name=tag]", "reviewed")
    with page.expect_navigation():
        page.click(".tag-form button")
    tags_after_add = browser_store.tags("iris-scatter")
    heading = page.text_content("h1")
    with page.expect_navigation():
        page.click(".untag-form button:text-is('remove @reviewed')")

    assert tags_after_add == {"reviewed": 1}
    assert "@reviewed" in heading
    assert browser_store.tags("iris-scatter") == {}
    assert "@reviewed" not in page.text_content("h1")
