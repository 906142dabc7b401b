"""Measure what capturing a task's DataFrame costs, against plain Prefect tasks and persist_result.

Usage::

    python benchmarks/bench_capture.py                 # 1,000 rows x 30 runs, 1,000,000 rows x 5 runs
    python benchmarks/bench_capture.py --small-runs 10 --large-runs 3 --large-rows 200000

Each case runs its variants round-robin inside one flow and times each task call from the flow
body (``time.perf_counter``), so Prefect's own task overhead is in every figure. The report gives
medians and ratios against the baseline of the same run. Unless ``PREFECT_API_URL`` is set,
Prefect starts a temporary local server, and every run uses a temporary ``PREFECT_HOME``, result
folder and store, removed at the end.

Small case (1,000 rows): a plain task returning the frame, the same task with capture and
publishing off (store time), and with publishing on (store plus the Prefect markdown card and
preview table). Large case (1,000,000 rows): the plain task, Prefect's ``persist_result=True``
(its default pickle serializer into local result storage), and capture with and without
publishing, and capture with the result persisted through the store (``artifact_result_options``).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

WORK_DIR = Path(tempfile.mkdtemp(prefix="mlart-bench-"))
# Prefect reads these when it is imported, so they are set before any Prefect import below.
os.environ.setdefault("PREFECT_HOME", str(WORK_DIR / "prefect"))
os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"] = str(WORK_DIR / "prefect-results")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def make_frame(rows: int, *, seed: int = 0) -> pd.DataFrame:
    """Return a frame of ``rows`` rows: integers, floats, a low-cardinality text column, times."""
    generator = np.random.default_rng(seed)
    return pd.DataFrame({
        "id": np.arange(rows, dtype=np.int64),
        "value": generator.normal(size=rows),
        "score": generator.uniform(size=rows),
        "group": generator.choice(["alpha", "beta", "gamma", "delta"], size=rows),
        "time": pd.date_range("2024-01-01", periods=rows, freq="s"),
    })


def time_variants(
    variants: dict[str, Callable[[pd.DataFrame, int], Any]], frame: pd.DataFrame, runs: int
) -> dict[str, list[float]]:
    """Call every variant ``runs`` times, round-robin, each time on a frame with new content."""
    timings: dict[str, list[float]] = {name: [] for name in variants}
    for run in range(runs):
        for index, (name, call) in enumerate(variants.items()):
            # A value new to every call makes every body new, so each capture really writes
            # (identical bodies are stored once per project, whatever their key).
            data = frame.assign(run=run * len(variants) + index)
            started = time.perf_counter()
            call(data, run)
            timings[name].append(time.perf_counter() - started)
    return timings


def build_tasks() -> dict[str, Any]:
    from prefect import task

    from mlart_prefect.capture import artifact_task
    from mlart_prefect.results import artifact_result_options

    @task
    def plain(frame: pd.DataFrame, run: int) -> pd.DataFrame:
        return frame

    @task(persist_result=True)
    def prefect_persist(frame: pd.DataFrame, run: int) -> pd.DataFrame:
        return frame

    @artifact_task(key="bench-store-only", publish=False)
    def capture_store(frame: pd.DataFrame, run: int) -> pd.DataFrame:
        return frame

    @artifact_task(key="bench-published")
    def capture_publish(frame: pd.DataFrame, run: int) -> pd.DataFrame:
        return frame

    @artifact_task(key="bench-result", publish=False, **artifact_result_options())
    def capture_result(frame: pd.DataFrame, run: int) -> pd.DataFrame:
        return frame

    return {
        "plain": plain, "prefect_persist": prefect_persist, "capture_store": capture_store,
        "capture_publish": capture_publish, "capture_result": capture_result,
    }


def run_cases(small_rows: int, small_runs: int, large_rows: int, large_runs: int) -> dict[str, Any]:
    from prefect import flow

    tasks = build_tasks()

    @flow(name="bench-capture")
    def bench() -> dict[str, Any]:
        small = make_frame(small_rows)
        # One untimed call per task first, so imports and first-use setup are not measured.
        for name in ("plain", "capture_store", "capture_publish"):
            tasks[name](small.assign(run=-1), -1)
        small_times = time_variants(
            {name: tasks[name] for name in ("plain", "capture_store", "capture_publish")},
            small, small_runs,
        )

        large = make_frame(large_rows)
        large_names = ("plain", "prefect_persist", "capture_store", "capture_publish", "capture_result")
        tasks["prefect_persist"](large.head(10).assign(run=-1), -1)
        tasks["capture_result"](large.head(10).assign(run=-1), -1)
        large_times = time_variants({name: tasks[name] for name in large_names}, large, large_runs)
        return {"small": small_times, "large": large_times}

    return bench()


def report(results: dict[str, Any], args: argparse.Namespace, store_root: Path) -> str:
    small = {name: statistics.median(values) for name, values in results["small"].items()}
    large = {name: statistics.median(values) for name, values in results["large"].items()}
    lines = [
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "",
        f"small case: {args.small_rows:,} rows, median of {args.small_runs} runs (ms per task call)",
        f"  plain task                     {small['plain'] * 1e3:8.1f}",
        f"  capture, publishing off        {small['capture_store'] * 1e3:8.1f}"
        f"   store time {1e3 * (small['capture_store'] - small['plain']):.1f} ms",
        f"  capture, publishing on         {small['capture_publish'] * 1e3:8.1f}"
        f"   publishing time {1e3 * (small['capture_publish'] - small['capture_store']):.1f} ms",
        f"  ratio capture (publishing on) / plain: {small['capture_publish'] / small['plain']:.1f}",
        "",
        f"large case: {args.large_rows:,} rows, median of {args.large_runs} runs (s per task call)",
    ]
    labels = {
        "plain": "plain task",
        "prefect_persist": "persist_result=True (pickle)",
        "capture_store": "capture, publishing off",
        "capture_publish": "capture, publishing on",
        "capture_result": "capture + result via store",
    }
    for name, label in labels.items():
        ratio = large[name] / large["prefect_persist"]
        lines.append(f"  {label:<30} {large[name]:8.3f}   x{ratio:.2f} of persist_result")
    record = largest_file(WORK_DIR / "prefect-results")
    body = largest_file(store_root / "bench" / "objects")
    lines += [
        "",
        f"one {args.large_rows:,}-row result on disk: Prefect's pickle record "
        f"{record / 2**20:,.1f} MiB, the store's Parquet body {body / 2**20:,.1f} MiB",
    ]
    return "\n".join(lines)


def largest_file(folder: Path) -> int:
    return max((item.stat().st_size for item in folder.rglob("*") if item.is_file()), default=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-rows", type=int, default=1_000, help="Rows of the small frame.")
    parser.add_argument("--small-runs", type=int, default=30, help="Timed calls per small variant.")
    parser.add_argument("--large-rows", type=int, default=1_000_000, help="Rows of the large frame.")
    parser.add_argument("--large-runs", type=int, default=5, help="Timed calls per large variant.")
    args = parser.parse_args()

    from mlart_prefect import api
    from mlart_prefect.store import ArtifactStore

    store_root = WORK_DIR / "store"
    api.set_store(ArtifactStore(store_root, project="bench"))
    try:
        results = run_cases(args.small_rows, args.small_runs, args.large_rows, args.large_runs)
        print(report(results, args, store_root))
    finally:
        shutil.rmtree(WORK_DIR, ignore_errors=True)


if __name__ == "__main__":
    main()
