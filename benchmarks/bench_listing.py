"""Time `mlart ls` and the web view's list page over a store of 10,000 versions.

Usage::

    python benchmarks/bench_listing.py [--keys 500] [--versions 20] [--repeat 5] [--store DIR]

The store is built in a temporary folder (or DIR, reused when it already contains the store) with
``ArtifactStore.save`` and tiny bodies. Each figure is the median of ``--repeat`` runs. Baselines
measured in the same run: walking the store folder with ``os.walk``, ``ls -R``, and reading every
manifest file with ``json.load``. Results print as a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

PROJECT = "bench"
KINDS = ("dataset", "model", "plot")


def build_store(path: Path, keys: int, versions: int) -> float:
    """Save ``keys`` x ``versions`` small versions into a local store; return the seconds taken."""
    from mlart_prefect.kinds.base import BodyPayload, Encoded
    from mlart_prefect.manifest import Producer
    from mlart_prefect.store import ArtifactStore

    store = ArtifactStore(path, project=PROJECT)

    def fill_key(number: int) -> None:
        key = f"key-{number:04d}"
        kind = KINDS[number % len(KINDS)]
        for version in range(1, versions + 1):
            payload = f"{key} version {version}".encode()
            encoded = Encoded(
                bodies=[BodyPayload(name="body.bin", data=payload)],
                spec={"num_rows": version, "note": "benchmark"},
                primary="body.bin",
            )
            producer = Producer(
                flow_name=f"flow-{number % 7}", flow_run_name=f"run-{version}", in_prefect_run=True
            )
            store.save(
                key,
                encoded,
                kind=kind,
                labels={"team": f"team-{number % 5}", "stage": "bench"},
                owner=f"user-{number % 3}",
                producer=producer,
            )

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(fill_key, range(keys)))
    return time.perf_counter() - started


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    """Run ``action`` ``repeat`` times and return the median wall-clock time in seconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run_quiet(command: list[str], *, expect_lines: int | None = None) -> None:
    """Run a command, discard its output, and fail loudly when it fails or prints too little."""
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} failed with exit code {result.returncode}: {result.stderr}"
        )
    if expect_lines is not None and result.stdout.count("\n") < expect_lines:
        raise SystemExit(
            f"{' '.join(command)} printed {result.stdout.count(chr(10))} lines, "
            f"expected {expect_lines}"
        )


def read_all_manifests(path: Path) -> int:
    """Baseline: open and json.load every manifest file under the store; return how many."""
    import json

    count = 0
    for folder, _, files in os.walk(path):
        if folder.endswith("versions"):
            for name in files:
                with open(os.path.join(folder, name), "rb") as file:
                    json.load(file)
                count += 1
    return count


def walk(path: Path) -> int:
    """Baseline: list every file under the store with os.walk; return how many."""
    return sum(len(files) for _, _, files in os.walk(path))


def list_page_timer(path: Path, query: str) -> Callable[[], object]:
    """Return a callable that fetches the web view's list page through FastAPI's TestClient."""
    from fastapi.testclient import TestClient

    from mlart_prefect.store import ArtifactStore
    from mlart_prefect.web.app import create_app

    client = TestClient(create_app(ArtifactStore(path, project=PROJECT)))

    def fetch() -> None:
        response = client.get(f"/artifacts{query}")
        response.raise_for_status()
        if "data-ref=" not in response.text:
            raise SystemExit(f"/artifacts{query} shows no artifact")

    return fetch


def machine() -> str:
    """Describe the CPU, core count and Python version."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=500)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--store", type=Path, default=None, help="Folder for the store (default: a temporary one)."
    )
    args = parser.parse_args()

    owned = args.store is None
    path = Path(tempfile.mkdtemp(prefix="mlart-bench-")) / "store" if owned else args.store
    try:
        total = args.keys * args.versions
        if not (path / PROJECT / "artifacts").exists():
            seconds = build_store(path, args.keys, args.versions)
            print(
                f"Built {total} versions ({args.keys} keys x {args.versions}) "
                f"in {seconds:.1f} s at {path}",
                file=sys.stderr,
            )
        script = Path(sys.executable).parent / "mlart"
        command = [str(script)] if script.exists() else [sys.executable, "-m", "mlart_prefect.cli"]
        mlart = [*command, "--store", str(path), "--project", PROJECT]

        figures = {
            f"`mlart ls` (subprocess, {args.keys} rows)": median_seconds(
                lambda: run_quiet([*mlart, "ls"], expect_lines=args.keys), args.repeat
            ),
            f"`mlart ls --all` (subprocess, {total} rows)": median_seconds(
                lambda: run_quiet([*mlart, "ls", "--all"], expect_lines=total), args.repeat
            ),
            "`mlart --help` (subprocess)": median_seconds(
                lambda: run_quiet([*mlart, "--help"]), args.repeat
            ),
            "list page `/artifacts` (TestClient, 50 rows)": median_seconds(
                list_page_timer(path, ""), args.repeat
            ),
            "list page `/artifacts?all_versions=true`": median_seconds(
                list_page_timer(path, "?all_versions=true"), args.repeat
            ),
            "baseline: `python -c pass` (subprocess)": median_seconds(
                lambda: run_quiet([sys.executable, "-c", "pass"]), args.repeat
            ),
            "baseline: `ls -R` (subprocess)": median_seconds(
                lambda: run_quiet(["ls", "-R", str(path)]), args.repeat
            ),
            "baseline: `os.walk` over the store": median_seconds(lambda: walk(path), args.repeat),
            "baseline: `json.load` of every manifest": median_seconds(
                lambda: read_all_manifests(path), args.repeat
            ),
        }
    finally:
        if owned:
            shutil.rmtree(path.parent, ignore_errors=True)

    reading = figures["baseline: `json.load` of every manifest"]
    print(
        f"\nMeasured {datetime.now(UTC):%Y-%m-%d} on {machine()}; "
        f"{total} versions, median of {args.repeat}.\n"
    )
    print("| what | median (s) | / json.load baseline |")
    print("|---|---:|---:|")
    for name, seconds in figures.items():
        print(f"| {name} | {seconds:.3f} | {seconds / reading:.1f}x |")


if __name__ == "__main__":
    main()
