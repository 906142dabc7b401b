"""The Prefect UI shows the published card, preview table and plot, checked in headless chromium.

The test starts ``prefect server start`` (the test session's server runs without the UI) and
runs the example flow script against it. Set ``MLART_SCREENSHOT_DIR`` (e.g. ``docs/images``) to
keep the screenshot ``prefect-ui-artifact.png`` there.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

REPOSITORY = Path(__file__).resolve().parents[1]
SCREENSHOT_NAME = "prefect-ui-artifact.png"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_health(url: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prefect server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"prefect server at {url} did not answer /api/health within {timeout} s")


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Start ``prefect server start`` with the UI on a free loopback port and a fresh database."""
    home = tmp_path_factory.mktemp("prefect-ui-home")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_UI_API_URL": f"{url}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    env.pop("PREFECT_API_URL", None)
    log = (home / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_for_health(url, process)
        yield {"url": url, "home": home}
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def example_run(ui_server: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run ``python flows/train_breast_cancer.py`` against the UI server, as a user would."""
    store = tmp_path_factory.mktemp("ui-store")
    env = {
        **os.environ,
        "PREFECT_API_URL": f"{ui_server['url']}/api",
        "PREFECT_HOME": str(ui_server["home"]),
        "MLART_STORE_URL": str(store),
        "MLART_PROJECT": "default",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")])),
        "MPLBACKEND": "Agg",
    }
    completed = subprocess.run(
        [sys.executable, str(REPOSITORY / "flows" / "train_breast_cancer.py")],
        cwd=REPOSITORY, env=env, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    match = re.search(r"/runs/flow-run/([0-9a-f-]{36})", completed.stdout)
    assert match is not None, completed.stdout
    return {"flow_run_id": match.group(1), "stdout": completed.stdout, "store": store}


def read_artifacts(api_url: str, flow_run_id: str) -> dict[str, dict[str, Any]]:
    """Return the flow run's Prefect artifacts by key, read through the REST API."""
    body = json.dumps({"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200}).encode()
    request = urllib.request.Request(
        f"{api_url}/artifacts/filter", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return {item["key"]: item for item in json.load(response)}


def test_script_prints_where_artifacts_are(example_run: dict[str, Any]) -> None:
    printed = example_run["stdout"]

    assert f"Artifacts in {example_run['store']}" in printed
    assert "default/breast-cancer-model:1" in printed
    for command in ("mlart ls", "mlart show default/breast-cancer-model", "mlart ui"):
        assert command in printed


def test_prefect_ui_shows_card_table_and_plot(
    ui_server: dict[str, Any], example_run: dict[str, Any], tmp_path: Path
) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    artifacts = read_artifacts(f"{ui_server['url']}/api", example_run["flow_run_id"])
    card = artifacts["default-breast-cancer-model"]
    table = artifacts["default-feature-importance-preview"]
    plot = artifacts["default-confusion-matrix"]
    panels: list[Path] = []
    folder = Path(os.environ.get("MLART_SCREENSHOT_DIR") or tmp_path)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1150, "height": 2400})

        page.goto(f"{ui_server['url']}/artifacts/artifact/{card['id']}")
        content = page.locator("section.artifact-data-view")
        content.get_by_text("default/breast-cancer-model:1").first.wait_for(timeout=30_000)
        card_text = content.inner_text()
        assert "accuracy" in card_text
        assert "roc_auc" in card_text
        assert "n_estimators" in card_text
        panels.append(screenshot(content, tmp_path / "card.png"))

        page.goto(f"{ui_server['url']}/artifacts/artifact/{table['id']}")
        rows = page.locator("section.artifact-data-view table tbody tr")
        rows.first.wait_for(timeout=30_000)
        assert rows.count() >= 10
        header = page.locator("section.artifact-data-view table thead").inner_text()
        assert all(name in header for name in ("feature", "importance", "rank"))
        assert "worst" in rows.first.inner_text()
        panels.append(screenshot(page.locator("section.artifact-data-view"), tmp_path / "table.png"))

        page.goto(f"{ui_server['url']}/artifacts/artifact/{plot['id']}")
        image = page.locator('section.artifact-data-view img[src^="data:image/png;base64,"]')
        image.wait_for(timeout=30_000)
        size = image.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]")
        assert size == [True, 500, 450]
        panels.append(screenshot(page.locator("section.artifact-data-view"), tmp_path / "plot.png"))
        browser.close()

    target = folder / SCREENSHOT_NAME
    combine_side_by_side(panels, target)
    assert target.stat().st_size > 50_000


def screenshot(locator: Any, path: Path) -> Path:
    locator.screenshot(path=str(path))
    return path


def combine_side_by_side(panels: list[Path], target: Path, *, max_height: int = 1800) -> None:
    """Place the panel images in one row (each cut at ``max_height``) and remove the panels."""
    from PIL import Image

    images = [Image.open(path).convert("RGB") for path in panels]
    images = [image.crop((0, 0, image.width, min(image.height, max_height))) for image in images]
    gap = 24
    width = sum(image.width for image in images) + gap * (len(images) + 1)
    height = max(image.height for image in images) + 2 * gap
    canvas = Image.new("RGB", (width, height), (37, 39, 44))
    left = gap
    for image in images:
        canvas.paste(image, (left, gap))
        left += image.width + gap
    target.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(target, optimize=True)
    for path in panels:
        path.unlink()
