"""Benchmark dataset and plot captures against plain pyarrow and matplotlib writes.

Run from the repository root (``-m`` makes the checkout importable without an install)::

    python -m benchmarks.bench_kinds                 # all cases, 7 runs each
    python -m benchmarks.bench_kinds --runs 3 --cases dataset-small plot

Every run of every variant is a fresh subprocess, so peak memory is measured per run: the
process resets its peak RSS (Linux ``/proc/self/clear_refs``) just before the timed operation
and reads ``VmHWM`` after it. Imports and a warm-up operation on tiny data happen before the
reset, so one-time costs (imports, first-call initialisation) are left out of both variants.

Cases and their baselines:

- ``dataset-large``: a 1,000,000-row DataFrame (4 float64, 3 int64, 2 low-cardinality string
  and 1 datetime column, numpy seed 0) saved with ``api.save`` and default options (preview,
  statistics with histograms, sha256, manifest) into a local store, against
  ``pq.write_table(pa.Table.from_pandas(df), path)`` into the same folder.
- ``dataset-small``: the same schema with 1,000 rows, 30 operations per run, each capture into
  a new key (so the store also creates the key's folders, as on a key's first capture).
- ``dataset-small-one-key``: the same, each capture a new version of one key, as when a task
  that runs again and again captures its output. The raw write, as in every case, writes a new
  file into one folder.
- ``plot``: a two-panel 8x4-inch figure (50-bin histogram, 1,000-point scatter) saved with
  ``api.save`` and default options, against ``fig.savefig(buffer, format="png")``; 10
  operations per run, each on a new figure with its own title so no body is deduplicated.

``--stats-scaling`` instead times, in this process and one after the other, the statistics and
the Parquet write of the benchmark schema at several sizes, plus a column of unique strings
(the costliest type to count); it is the measurement behind the ``stats_max_cells`` default.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CASES = ("dataset-large", "dataset-small", "dataset-small-one-key", "plot")
VARIANTS = ("raw", "capture")
TARGETS = {
    "dataset-large": (1.2, 1.3),
    "dataset-small": (2.0, None),
    "dataset-small-one-key": (2.0, None),
    "plot": (1.1, None),
}
"""Maximum capture/raw ratios per case: (median time, median peak RSS); None means no target."""

MEASURES = ("seconds", "cpu_seconds", "peak_mib", "growth_mib")
OPERATIONS_PER_RUN = {"dataset-large": 1, "dataset-small": 30, "dataset-small-one-key": 30, "plot": 10}
LARGE_ROWS = 1_000_000
SMALL_ROWS = 1_000
REPO_ROOT = Path(__file__).resolve().parent.parent


# -- data -------------------------------------------------------------------------------------


def make_frame(rows: int) -> Any:
    """Build the benchmark DataFrame: 4 float64, 3 int64, 2 string and 1 datetime column."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    columns: dict[str, Any] = {f"float_{i}": rng.normal(size=rows) for i in range(4)}
    columns.update({f"int_{i}": rng.integers(0, 1_000_000, size=rows) for i in range(3)})
    columns["color"] = rng.choice(["red", "green", "blue", "yellow"], size=rows)
    columns["city"] = rng.choice([f"city-{i}" for i in range(50)], size=rows)
    columns["time"] = pd.date_range("2020-01-01", periods=rows, freq="min")
    frame = pd.DataFrame(columns)
    frame["color"] = frame["color"].astype("str")
    frame["city"] = frame["city"].astype("str")
    return frame


def make_figure(title: str) -> Any:
    """Build the two-panel 8x4-inch figure: a 50-bin histogram and a 1,000-point scatter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rng = np.random.default_rng(0)
    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 4))
    left.hist(rng.normal(size=10_000), bins=50)
    left.set_title("histogram")
    right.scatter(rng.normal(size=1_000), rng.normal(size=1_000), s=4)
    right.set_title("scatter")
    figure.suptitle(title)
    return figure


# -- measurement in the child process ---------------------------------------------------------


def _status_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", text).group(1))  # type: ignore[union-attr]


def _measure(operations: list[Callable[[], Any]]) -> dict[str, float]:
    """Time each operation (wall and CPU time of all threads) and record the peak RSS in MiB."""
    gc.collect()
    start_kib = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    durations = []
    cpu_durations = []
    for operation in operations:
        began = time.perf_counter()
        cpu_began = time.process_time()
        operation()
        durations.append(time.perf_counter() - began)
        cpu_durations.append(time.process_time() - cpu_began)
    peak_kib = _status_kib("VmHWM")
    return {
        "seconds": statistics.median(durations),
        "cpu_seconds": statistics.median(cpu_durations),
        "peak_mib": peak_kib / 1024,
        "growth_mib": (peak_kib - start_kib) / 1024,
    }


def _dataset_operations(case: str, variant: str, folder: Path) -> list[Callable[[], Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlart_prefect import api
    from mlart_prefect.store import ArtifactStore

    store = ArtifactStore(folder, project="bench")
    count = OPERATIONS_PER_RUN[case]
    base = make_frame(LARGE_ROWS if case == "dataset-large" else SMALL_ROWS)
    # Each operation gets its own data, so the store never finds an identical body to skip.
    frames = [base] if count == 1 else [base.assign(int_0=base["int_0"] + i) for i in range(count)]

    warm = make_frame(10)
    if variant == "raw":
        pq.write_table(pa.Table.from_pandas(warm), folder / "warm-up.parquet")
        return [
            (lambda frame=frame, i=i: pq.write_table(pa.Table.from_pandas(frame), folder / f"raw-{i}.parquet"))
            for i, frame in enumerate(frames)
        ]
    api.save("warm-up", warm, store=store)
    keys = ["data"] * count if case == "dataset-small-one-key" else [f"data-{i}" for i in range(count)]
    return [(lambda frame=frame, key=key: api.save(key, frame, store=store)) for key, frame in zip(keys, frames)]


def _plot_operations(variant: str, folder: Path) -> list[Callable[[], Any]]:
    import io

    from mlart_prefect import api
    from mlart_prefect.store import ArtifactStore

    store = ArtifactStore(folder, project="bench")
    figures = [make_figure(f"run {i}") for i in range(OPERATIONS_PER_RUN["plot"])]
    warm = make_figure("warm-up")
    if variant == "raw":
        warm.savefig(io.BytesIO(), format="png")
        return [(lambda figure=figure: figure.savefig(io.BytesIO(), format="png")) for figure in figures]
    api.save("warm-up", warm, store=store)
    return [(lambda figure=figure, i=i: api.save(f"plot-{i}", figure, store=store)) for i, figure in enumerate(figures)]


def run_child(case: str, variant: str, folder: Path) -> None:
    """Run one measured variant of a case and print its figures as one JSON line."""
    folder.mkdir(parents=True, exist_ok=True)
    if case == "plot":
        operations = _plot_operations(variant, folder)
    else:
        operations = _dataset_operations(case, variant, folder)
    print(json.dumps(_measure(operations)))


# -- orchestration in the parent process ------------------------------------------------------


def _run_once(case: str, variant: str, folder: Path) -> dict[str, float]:
    command = [sys.executable, "-m", "benchmarks.bench_kinds", "--child", case, variant, str(folder)]
    completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{case}/{variant} failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run_case(case: str, runs: int) -> dict[str, Any]:
    """Run both variants ``runs`` times, alternating which goes first, and return medians."""
    results: dict[str, list[dict[str, float]]] = {variant: [] for variant in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="mlart-bench-") as root:
        for run in range(runs):
            order = VARIANTS if run % 2 == 0 else tuple(reversed(VARIANTS))
            for variant in order:
                folder = Path(root) / f"{variant}-{run}"
                results[variant].append(_run_once(case, variant, folder))
                print(f"  {case} run {run + 1}/{runs} {variant}: {results[variant][-1]}", file=sys.stderr)

    summary: dict[str, Any] = {"case": case, "runs": runs}
    for variant in VARIANTS:
        for measure in MEASURES:
            summary[f"{variant}_{measure}"] = statistics.median(r[measure] for r in results[variant])
        summary[f"{variant}_seconds_all"] = [round(r["seconds"], 4) for r in results[variant]]
    for measure in MEASURES:
        summary[f"ratio_{measure}"] = summary[f"capture_{measure}"] / summary[f"raw_{measure}"]
    return summary


def machine_description() -> str:
    """Describe the CPU, core count, current load and library versions of this machine."""
    import matplotlib
    import numpy
    import pandas
    import pyarrow

    model = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        model = found.group(1).strip() if found else model
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{model}, {os.cpu_count()} cores (load average {load}), Python {platform.python_version()}, "
        f"pandas {pandas.__version__}, pyarrow {pyarrow.__version__}, numpy {numpy.__version__}, "
        f"matplotlib {matplotlib.__version__}"
    )


def _format_row(summary: dict[str, Any]) -> str:
    time_target, memory_target = TARGETS[summary["case"]]
    time_mark = "met" if summary["ratio_seconds"] <= time_target else "missed"
    memory_text = f"{summary['ratio_peak_mib']:.2f}x"
    if memory_target is not None:
        memory_mark = "met" if summary["ratio_peak_mib"] <= memory_target else "missed"
        memory_text += f" (target <= {memory_target}x, {memory_mark})"
    return (
        f"| {summary['case']} | {summary['raw_seconds'] * 1000:.1f} / "
        f"{summary['capture_seconds'] * 1000:.1f} ms | {summary['ratio_seconds']:.2f}x "
        f"(target <= {time_target}x, {time_mark}) | {summary['raw_cpu_seconds'] * 1000:.0f} / "
        f"{summary['capture_cpu_seconds'] * 1000:.0f} ms | {summary['raw_peak_mib']:.0f} / "
        f"{summary['capture_peak_mib']:.0f} MiB | {memory_text} | "
        f"{summary['raw_growth_mib']:.0f} / {summary['capture_growth_mib']:.0f} MiB |"
    )


def stats_scaling(rows_list: list[int], repeats: int = 3) -> None:
    """Print statistics and Parquet write times, and statistics per million cells, by size."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlart_prefect.kinds._dataset_stats import compute_statistics

    print("| data | cells | statistics | Parquet write | statistics per million cells |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="mlart-bench-") as root:
        for rows in rows_list:
            frame = make_frame(rows)
            unique = np.char.add("id-", np.arange(rows).astype(str))
            for label, table in (
                ("benchmark schema", pa.Table.from_pandas(frame, preserve_index=False)),
                ("1 unique-string column", pa.table({"id": unique})),
            ):
                columns = list(zip(table.column_names, table.columns))
                cells = table.num_rows * table.num_columns
                path = Path(root) / "scaling.parquet"
                stats_seconds = _median_seconds(
                    lambda columns=columns, rows=rows: compute_statistics(columns, rows), repeats
                )
                write_seconds = _median_seconds(
                    lambda table=table, path=path: pq.write_table(table, path), repeats
                )
                print(f"| {label}, {rows:,} rows | {cells:,} | {stats_seconds * 1000:.0f} ms | "
                      f"{write_seconds * 1000:.0f} ms | {stats_seconds * 1e9 / cells:.0f} ms |")


def _median_seconds(operation: Callable[[], Any], repeats: int) -> float:
    durations = []
    for _ in range(repeats):
        began = time.perf_counter()
        operation()
        durations.append(time.perf_counter() - began)
    return statistics.median(durations)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the requested cases and print a markdown table of medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="Subprocess runs per variant (default 7).")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--json", type=Path, help="Also write the medians to this JSON file.")
    parser.add_argument("--stats-scaling", nargs="*", type=int, metavar="ROWS",
                        help="Time statistics against the Parquet write at these row counts "
                             "(default 1000000 5000000) instead of running the cases.")
    parser.add_argument("--child", nargs=3, metavar=("CASE", "VARIANT", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        case, variant, folder = args.child
        run_child(case, variant, Path(folder))
        return 0

    if args.stats_scaling is not None:
        print(f"Machine: {machine_description()}\n")
        stats_scaling(args.stats_scaling or [1_000_000, 5_000_000])
        return 0

    print(f"Machine at start: {machine_description()}")
    summaries = [run_case(case, args.runs) for case in args.cases]
    print(f"Machine at end: {machine_description()}")
    print(f"Runs: {args.runs} per variant, each in a fresh subprocess; medians shown.\n")
    print("| case | time raw / capture | time ratio | CPU time raw / capture "
          "| peak RSS raw / capture | peak ratio | RSS growth raw / capture |")
    print("|---|---|---|---|---|---|---|")
    for summary in summaries:
        print(_format_row(summary))
    if args.json:
        args.json.write_text(json.dumps(summaries, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
