"""Tests of the ``mlart`` command on a store filled by real Prefect flow runs."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from mlart_prefect import cli
from mlart_prefect.cli import app
from mlart_prefect.store import ArtifactStore
from tests._flow_store import (
    PIPELINE_FLOW,
    PROJECT,
    REPORT_FLOW,
    FlowStoreInfo,
)


@pytest.fixture
def store(store_path: Path) -> ArtifactStore:
    return ArtifactStore(store_path, project=PROJECT)


def mlart(store_path: Path, *args: str, input: str | None = None) -> Result:
    """Run ``mlart --store <store_path> --project iris ARGS`` through Typer's runner."""
    return CliRunner().invoke(
        app, ["--store", str(store_path), "--project", PROJECT, *args], input=input
    )


def assert_one_line_error(result: Result, code: int, *fragments: str) -> None:
    """Check that a command failed with ``code`` and one plain stderr line with ``fragments``."""
    assert result.exit_code == code, result.output
    assert result.stderr.startswith("Error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr


def table_rows(output: str) -> list[list[str]]:
    """Split ``mlart ls`` output into rows of cells (columns are separated by two spaces)."""
    lines = output.strip().splitlines()
    return [[cell.strip() for cell in line.split("  ") if cell.strip()] for line in lines[1:]]


def normalized_lines(output: str) -> set[str]:
    """Return the output's lines with runs of spaces collapsed, to match fields by content."""
    return {" ".join(line.split()) for line in output.splitlines()}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- help ----------------------------------------------------------------------------------------


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"])

    assert result.exit_code == 0
    for command in ("ls", "show", "get", "lineage", "tag", "untag", "rm", "gc", "verify", "ui"):
        assert f" {command} " in result.stdout


@pytest.mark.parametrize(
    ("command", "option_help"),
    [
        ("ls", "Only versions with this label"),
        ("ls", "Only versions created at or after this time"),
        ("show", "Print the manifest and its tags as JSON"),
        ("get", "Overwrite files that exist"),
        ("lineage", "Levels to follow each way"),
        ("rm", "Delete without asking for confirmation"),
        ("gc", "Keep unreferenced bodies younger than this many seconds"),
        ("verify", "Check every project of the store"),
        ("ui", "Let the page add and remove tags"),
    ],
)
def test_command_help_explains_options(command: str, option_help: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})

    assert result.exit_code == 0
    assert option_help in " ".join(result.stdout.split())


# -- ls ------------------------------------------------------------------------------------------


def test_ls_shows_latest_version_of_each_key(store_path: Path) -> None:
    result = mlart(store_path, "ls")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].split()[:3] == ["KEY", "VERSION", "KIND"]
    versions = {row[0]: (row[1], row[2]) for row in table_rows(result.stdout)}
    assert versions == {
        "iris": ("2", "dataset"),
        "iris-model": ("2", "model"),
        "iris-scatter": ("2", "plot"),
        "iris-summary": ("1", "dataset"),
    }


def test_ls_all_lists_every_version(store_path: Path) -> None:
    result = mlart(store_path, "ls", "--all")

    assert result.exit_code == 0, result.output
    refs = sorted(f"{row[0]}:{row[1]}" for row in table_rows(result.stdout))
    assert refs == [
        "iris-model:1",
        "iris-model:2",
        "iris-scatter:1",
        "iris-scatter:2",
        "iris-summary:1",
        "iris:1",
        "iris:2",
    ]


def test_ls_table_shows_producer_and_owner(store_path: Path) -> None:
    result = mlart(store_path, "ls", "--kind", "dataset", "--owner", "alice")

    rows = table_rows(result.stdout)
    assert len(rows) == 1
    assert rows[0][0] == "iris-summary"
    assert rows[0][3] == "stage=report, team=analytics"
    assert rows[0][4].startswith(f"{REPORT_FLOW} / ")
    assert rows[0][5] == "alice"


def test_ls_json_has_one_record_per_key(store_path: Path, store: ArtifactStore) -> None:
    result = mlart(store_path, "ls", "--json")

    assert result.exit_code == 0
    records = {record["key"]: record for record in json.loads(result.stdout)}
    assert set(records) == {"iris", "iris-model", "iris-scatter", "iris-summary"}
    model = records["iris-model"]
    manifest = store.get("iris-model")
    assert model["ref"] == "iris/iris-model:2"
    assert model["kind"] == "model"
    assert model["labels"] == {"stage": "train", "team": "ml"}
    assert model["producer"]["flow_name"] == PIPELINE_FLOW
    assert model["producer"]["flow_run_id"] == manifest.producer.flow_run_id
    assert model["inputs"] == ["iris/iris:2"]
    assert model["size"] == manifest.size


def test_ls_filters_by_kind(store_path: Path) -> None:
    result = mlart(store_path, "ls", "--all", "--kind", "model", "--json")

    assert sorted(record["ref"] for record in json.loads(result.stdout)) == [
        "iris/iris-model:1",
        "iris/iris-model:2",
    ]


def test_ls_labels_must_all_match(store_path: Path) -> None:
    both = mlart(store_path, "ls", "--label", "team=ml", "--label", "stage=raw", "--json")
    team = mlart(store_path, "ls", "-l", "team=ml", "--json")

    assert [record["key"] for record in json.loads(both.stdout)] == ["iris"]
    assert sorted(record["key"] for record in json.loads(team.stdout)) == [
        "iris",
        "iris-model",
        "iris-scatter",
    ]


def test_ls_filters_by_flow_and_owner(store_path: Path) -> None:
    by_flow = mlart(store_path, "ls", "--flow", REPORT_FLOW, "--json")
    by_owner = mlart(store_path, "ls", "--all", "--owner", "alice", "--json")
    pipeline = mlart(store_path, "ls", "--all", "--flow", PIPELINE_FLOW, "--json")

    assert [record["key"] for record in json.loads(by_flow.stdout)] == ["iris-summary"]
    assert [record["key"] for record in json.loads(by_owner.stdout)] == ["iris-summary"]
    assert len(json.loads(pipeline.stdout)) == 6


def test_ls_time_range(store_path: Path, flow_template: FlowStoreInfo) -> None:
    boundary = flow_template.first_run_done.isoformat()

    later = mlart(store_path, "ls", "--all", "--since", boundary, "--json")
    earlier = mlart(store_path, "ls", "--all", "--until", boundary, "--json")
    recent = mlart(store_path, "ls", "--since", "1h", "--json")

    assert sorted(record["ref"] for record in json.loads(later.stdout)) == [
        "iris/iris-model:2",
        "iris/iris-scatter:2",
        "iris/iris-summary:1",
        "iris/iris:2",
    ]
    assert sorted(record["ref"] for record in json.loads(earlier.stdout)) == [
        "iris/iris-model:1",
        "iris/iris-scatter:1",
        "iris/iris:1",
    ]
    assert len(json.loads(recent.stdout)) == 4


def test_ls_until_bare_date_includes_that_day(
    store_path: Path, flow_template: FlowStoreInfo
) -> None:
    day = flow_template.first_run_done.date().isoformat()

    result = mlart(store_path, "ls", "--until", day, "--json")

    assert len(json.loads(result.stdout)) == 4


def test_ls_nothing_matches(store_path: Path) -> None:
    result = mlart(store_path, "ls", "--since", "2999-01-01")

    assert result.exit_code == 0
    assert result.stdout == ""
    assert "No artifacts match in project 'iris'" in result.stderr


def test_ls_limit_keeps_newest(store_path: Path) -> None:
    result = mlart(store_path, "ls", "--all", "--limit", "2", "--json")

    assert [record["ref"] for record in json.loads(result.stdout)] == [
        "iris/iris-summary:1",
        "iris/iris-scatter:2",
    ]


def test_ls_all_projects_prefixes_keys(store_path: Path, store: ArtifactStore) -> None:
    from mlart_prefect import api

    api.save("notes", {"a": 1}, kind="model", store=ArtifactStore(store_path, project="other"))

    result = mlart(store_path, "ls", "--all-projects")

    keys = sorted(row[0] for row in table_rows(result.stdout))
    assert keys == [
        "iris/iris",
        "iris/iris-model",
        "iris/iris-scatter",
        "iris/iris-summary",
        "other/notes",
    ]


@pytest.mark.parametrize("label", ["team", "=ml", ""])
def test_ls_bad_label_is_usage_error(store_path: Path, label: str) -> None:
    result = mlart(store_path, "ls", "--label", label)

    assert_one_line_error(result, 2, f"Invalid label filter {label!r}", "NAME=VALUE")


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01", "7 days"])
def test_ls_bad_time_is_usage_error(store_path: Path, value: str) -> None:
    result = mlart(store_path, "ls", "--since", value)

    assert_one_line_error(result, 2, f"Invalid time {value!r}", "7d")


def test_unusable_store_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")

    result = CliRunner().invoke(app, ["--store", str(blocker), "ls"])

    assert_one_line_error(result, 1, "Cannot use store", "is a file, not a folder")


def test_invalid_setting_is_one_line(store_path: Path) -> None:
    from mlart_prefect import settings

    settings._cached_settings.cache_clear()  # read the environment given to the runner

    result = CliRunner().invoke(
        app, ["--store", str(store_path), "ls"], env={"MLART_PREVIEW_ROWS": "-3"}
    )
    settings._cached_settings.cache_clear()
    options = CliRunner().invoke(
        app, ["--store", str(store_path), "ls"], env={"MLART_STORAGE_OPTIONS": "{bad"}
    )

    assert_one_line_error(
        result, 2, "Invalid setting MLART_PREVIEW_ROWS='-3': Input should be greater than or equal to 0."
    )
    assert_one_line_error(options, 2, "Invalid setting MLART_STORAGE_OPTIONS='{bad': expected a JSON object")
    assert "pydantic" not in result.stderr + options.stderr


def test_invalid_project_is_usage_error(store_path: Path) -> None:
    result = CliRunner().invoke(app, ["--store", str(store_path), "--project", "../x", "ls"])

    assert_one_line_error(result, 2, "Invalid project '../x'")


# -- show ----------------------------------------------------------------------------------------


def test_show_model_lists_producer_metrics_and_inputs(
    store_path: Path, store: ArtifactStore
) -> None:
    manifest = store.get("iris-model:1")
    producer = manifest.producer
    body = manifest.body()

    result = mlart(store_path, "show", "iris-model@production")

    assert result.exit_code == 0, result.output
    assert result.stdout.lstrip().startswith("iris/iris-model:1\n")
    lines = normalized_lines(result.stdout)
    assert "Kind model" in lines
    assert "Tags production" in lines
    assert "Labels stage=train, team=ml" in lines
    assert f"Flow {PIPELINE_FLOW}" in lines
    assert f"Flow run {producer.flow_run_name} ({producer.flow_run_id})" in lines
    assert f"Task run {producer.task_run_name} ({producer.task_run_id})" in lines
    assert "Task train" in lines
    assert "1 iris/iris:1" in lines  # the input
    assert "Algorithm LogisticRegression" in lines
    assert f"accuracy {manifest.spec['metrics']['accuracy']:.6g}" in lines
    assert "max_iter 500" in lines
    assert f"sha256 {body.sha256}" in lines
    assert f"location {store_path / PROJECT / body.path}" in lines
    assert f"{body.name} (primary) application/octet-stream, {body.size} B" in lines


def test_show_links_flow_run_when_ui_url_set(
    store_path: Path, store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlart_prefect.settings import get_settings

    monkeypatch.setenv("MLART_PREFECT_UI_URL", "http://127.0.0.1:4200/")
    get_settings(reload=True)
    run_id = store.get("iris").producer.flow_run_id

    result = mlart(store_path, "show", "iris")

    assert f"Flow run page http://127.0.0.1:4200/runs/flow-run/{run_id}" in normalized_lines(
        result.stdout
    )


def test_show_dataset_schema_and_statistics(store_path: Path, store: ArtifactStore) -> None:
    manifest = store.get("iris:2")
    stats = manifest.spec["stats"]["columns"]["petal width (cm)"]

    result = mlart(store_path, "show", "iris:2")

    lines = normalized_lines(result.stdout)
    assert "Rows 120" in lines
    assert "Columns 5" in lines
    assert "Type pandas.DataFrame" in lines
    assert "Description Iris flower measurements with the species code" in lines
    assert "sepal length (cm) float64 double true" in lines
    assert "target int64 int64 false" in lines
    expected = [stats[name] for name in ("count", "nulls", "mean", "std", "min", "50%", "max")]
    assert "petal width (cm) " + " ".join(f"{value:.6g}" for value in expected) in lines


def test_show_plot_size(store_path: Path) -> None:
    result = mlart(store_path, "show", "iris-scatter")

    lines = normalized_lines(result.stdout)
    assert "Size 320 x 240 px at 80 dpi" in lines
    assert "Title Sepal vs petal length" in lines
    assert "Formats png, html" in lines


def test_show_json_is_the_manifest(store_path: Path, store: ArtifactStore) -> None:
    result = mlart(store_path, "show", "iris-model", "--json")

    data = json.loads(result.stdout)
    manifest = store.get("iris-model")
    assert data["ref"] == "iris/iris-model:2"
    assert data["tags"] == []
    assert data["spec"]["metrics"] == manifest.spec["metrics"]
    assert data["bodies"][0]["sha256"] == manifest.bodies[0].sha256
    assert data["producer"]["task_name"] == "train"


def test_show_unknown_key_lists_keys(store_path: Path) -> None:
    result = mlart(store_path, "show", "nope")

    assert_one_line_error(result, 1, "iris/nope not found", "iris-model", "iris-scatter")


def test_show_unknown_version_lists_versions(store_path: Path) -> None:
    result = mlart(store_path, "show", "iris:9")

    assert_one_line_error(result, 1, "iris/iris has no version 9", "existing versions: 1, 2")


def test_show_unknown_tag_lists_tags(store_path: Path) -> None:
    result = mlart(store_path, "show", "iris@gold")

    assert_one_line_error(result, 1, "has no tag 'gold'", "staging")


def test_show_malformed_reference(store_path: Path) -> None:
    result = mlart(store_path, "show", "iris:x")

    assert_one_line_error(result, 2, "Invalid reference 'iris:x'")


# -- get -----------------------------------------------------------------------------------------


def test_get_primary_body_matches_sha256(
    store_path: Path, store: ArtifactStore, tmp_path: Path
) -> None:
    target = tmp_path / "out" / "model.bin"
    manifest = store.get("iris-model")

    result = mlart(store_path, "get", "iris-model", "-o", str(target))

    assert result.exit_code == 0, result.output
    assert sha256(target) == manifest.body().sha256
    assert "sha256 verified" in result.stdout


def test_get_into_folder_uses_body_name(
    store_path: Path, store: ArtifactStore, tmp_path: Path
) -> None:
    manifest = store.get("iris:1")

    result = mlart(store_path, "get", "iris:1", "-o", str(tmp_path))

    assert result.exit_code == 0, result.output
    assert sha256(tmp_path / manifest.body().name) == manifest.body().sha256


def test_get_all_bodies(store_path: Path, store: ArtifactStore, tmp_path: Path) -> None:
    manifest = store.get("iris-scatter")
    folder = tmp_path / "plot"

    result = mlart(store_path, "get", "iris-scatter", "--all", "-o", str(folder))

    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        body.name for body in manifest.bodies
    )
    for body in manifest.bodies:
        assert sha256(folder / body.name) == body.sha256


def test_get_named_body(store_path: Path, store: ArtifactStore, tmp_path: Path) -> None:
    manifest = store.get("iris-scatter")
    page = next(body for body in manifest.bodies if body.name.endswith(".html"))

    result = mlart(
        store_path, "get", "iris-scatter", "--name", page.name, "-o", str(tmp_path / "page.html")
    )

    assert result.exit_code == 0
    assert sha256(tmp_path / "page.html") == page.sha256


def test_get_refuses_to_overwrite(store_path: Path, tmp_path: Path) -> None:
    target = tmp_path / "data.parquet"
    target.write_bytes(b"keep me")

    without_force = mlart(store_path, "get", "iris", "-o", str(target))
    with_force = mlart(store_path, "get", "iris", "-o", str(target), "--force")

    assert_one_line_error(without_force, 1, "Not overwriting", "--force")
    assert with_force.exit_code == 0
    assert target.read_bytes() != b"keep me"


def test_get_unknown_body_lists_bodies(store_path: Path, tmp_path: Path) -> None:
    result = mlart(
        store_path, "get", "iris-scatter", "--name", "nope.png", "-o", str(tmp_path / "x")
    )

    assert_one_line_error(result, 1, "no body named 'nope.png'", "iris-scatter.png")


def test_get_corrupt_body_leaves_no_file(
    store_path: Path, store: ArtifactStore, tmp_path: Path
) -> None:
    manifest = store.get("iris")
    body = manifest.body()
    object_path = store_path / PROJECT / body.path
    object_path.write_bytes(object_path.read_bytes()[:-10] + b"0123456789")
    target = tmp_path / "data.parquet"

    result = mlart(store_path, "get", "iris", "-o", str(target))

    assert_one_line_error(result, 1, "is corrupt", body.sha256)
    assert not target.exists()
    assert list(tmp_path.glob("*.partial")) == []


def test_get_large_body_with_progress(
    store_path: Path, store: ArtifactStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "PROGRESS_MIN_BYTES", 1)
    manifest = store.get("iris-model")

    result = mlart(store_path, "get", "iris-model", "-o", str(tmp_path / "model"))

    assert result.exit_code == 0, result.output
    assert sha256(tmp_path / "model") == manifest.body().sha256


# -- lineage -------------------------------------------------------------------------------------


def test_lineage_json_walks_both_ways(store_path: Path) -> None:
    result = mlart(store_path, "lineage", "iris:2", "--json")

    data = json.loads(result.stdout)
    assert data["ref"] == "iris/iris:2"
    assert data["upstream"] == []
    children = {node["ref"]: node for node in data["downstream"]}
    assert sorted(children) == ["iris/iris-model:2", "iris/iris-scatter:2", "iris/iris-summary:1"]
    assert [node["ref"] for node in children["iris/iris-model:2"]["children"]] == [
        "iris/iris-summary:1"
    ]
    assert children["iris/iris-model:2"]["kind"] == "model"
    assert children["iris/iris-model:2"]["flow_name"] == PIPELINE_FLOW


def test_lineage_upstream_is_recursive(store_path: Path) -> None:
    result = mlart(store_path, "lineage", "iris-summary", "--json")

    data = json.loads(result.stdout)
    parents = {node["ref"]: node for node in data["upstream"]}
    assert sorted(parents) == ["iris/iris-model:2", "iris/iris:2"]
    assert [node["ref"] for node in parents["iris/iris-model:2"]["children"]] == ["iris/iris:2"]
    assert data["downstream"] == []


def test_lineage_depth_one(store_path: Path) -> None:
    result = mlart(store_path, "lineage", "iris-summary", "--depth", "1", "--json")
    full = mlart(store_path, "lineage", "iris-summary", "--json")
    text = mlart(store_path, "lineage", "iris-summary", "--depth", "1")

    data = json.loads(result.stdout)
    assert all(node["children"] == [] for node in data["upstream"])
    # Each node reports how many children the limit left out: as many as the full walk lists.
    expected = {node["ref"]: len(node["children"]) for node in json.loads(full.stdout)["upstream"]}
    assert {node["ref"]: node.get("cut", 0) for node in data["upstream"]} == expected
    assert any(count for count in expected.values())
    assert "more beyond --depth)" in text.stdout


def test_lineage_tree_text(store_path: Path) -> None:
    result = mlart(store_path, "lineage", "iris-model:1")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "iris/iris-model:1 (model)"
    assert any("made from" in line for line in lines)
    assert any("iris/iris:1 (dataset" in line for line in lines)
    assert "used by: no version" in result.stdout


def test_lineage_marks_missing_input(store_path: Path, store: ArtifactStore) -> None:
    store.delete("iris:1")

    result = mlart(store_path, "lineage", "iris-model:1", "--json")

    tree = mlart(store_path, "lineage", "iris-model:1")

    [node] = json.loads(result.stdout)["upstream"]
    assert node["ref"] == "iris/iris:1"
    assert node["error"] == "not in the store (deleted?)"
    assert "iris/iris:1 (unavailable: not in the store (deleted?))" in tree.stdout


# -- tag, untag, rm ------------------------------------------------------------------------------


def test_tag_and_untag(store_path: Path, store: ArtifactStore) -> None:
    tagged = mlart(store_path, "tag", "iris:1", "gold")
    tag_shown = mlart(store_path, "show", "iris@gold", "--json")
    untagged = mlart(store_path, "untag", "iris", "gold")
    after_untag = mlart(store_path, "show", "iris@gold")

    assert tagged.exit_code == 0
    assert tagged.stdout.strip() == "Tagged iris/iris:1 as 'gold'."
    assert json.loads(tag_shown.stdout)["version"] == 1
    assert untagged.stdout.strip() == "Removed tag 'gold' from iris/iris."
    assert_one_line_error(after_untag, 1, "has no tag 'gold'")
    assert store.tags("iris") == {"staging": 2}


def test_tag_moves_existing_tag(store_path: Path, store: ArtifactStore) -> None:
    result = mlart(store_path, "tag", "iris-model", "production")

    assert result.exit_code == 0
    assert result.stdout.strip() == (
        "Tagged iris/iris-model:2 as 'production' (moved from version 1)."
    )
    assert store.tags("iris-model") == {"production": 2}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ls", "--limit", "0"], "Error: Invalid value for '--limit'"),
        (["show"], "Error: Missing argument 'REF'."),
    ],
)
def test_usage_error_ends_in_one_error_line(
    store_path: Path, args: list[str], message: str
) -> None:
    result = mlart(store_path, *args)

    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].startswith(message)
    assert "─" not in result.stderr  # no drawn box
    assert "│" not in result.stderr


def test_tag_reserved_or_invalid(store_path: Path) -> None:
    reserved = mlart(store_path, "tag", "iris", "latest")
    invalid = mlart(store_path, "tag", "iris", "a/b")

    assert_one_line_error(reserved, 2, "Invalid tag 'latest'")
    assert_one_line_error(invalid, 2, "Invalid tag 'a/b'")


def test_untag_unknown_tag(store_path: Path) -> None:
    result = mlart(store_path, "untag", "iris", "gold")

    assert_one_line_error(result, 1, "has no tag 'gold'", "its tags: staging")


def test_rm_without_yes_and_no_stdin_is_refused(store_path: Path, store: ArtifactStore) -> None:
    result = mlart(store_path, "rm", "iris:1")

    assert result.exit_code == 1
    assert "Did not delete iris/iris:1: no reply on stdin" in result.stderr
    assert "--yes" in result.stderr
    assert [m.version for m in store.versions("iris")] == [2, 1]


def test_rm_answer_no_keeps_version(store_path: Path, store: ArtifactStore) -> None:
    result = mlart(store_path, "rm", "iris:1", input="n\n")

    assert result.exit_code == 1
    assert "Did not delete iris/iris:1." in result.stderr
    assert [m.version for m in store.versions("iris")] == [2, 1]


def test_rm_confirmed_on_stdin(store_path: Path, store: ArtifactStore) -> None:
    result = mlart(store_path, "rm", "iris:1", input="y\n")

    assert result.exit_code == 0, result.output
    assert "Delete iris/iris:1 (dataset" in result.stderr
    # The runner echoes the typed input to stdout, as a terminal would.
    assert result.stdout.splitlines()[-1] == "Deleted iris/iris:1."
    assert [m.version for m in store.versions("iris")] == [2]


def test_ls_of_missing_folder_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "typo"

    result = mlart(missing, "ls")

    assert result.exit_code == 0, result.output
    assert "No artifacts match" in result.stderr
    assert "The folder does not exist: check the path" in result.stderr
    assert not missing.exists()


def test_ls_without_match_suggests_fixes(store_path: Path) -> None:
    typo = mlart(store_path, "ls", "--kind", "plots")
    older = mlart(store_path, "ls", "--label", "no-such=label")
    everything = mlart(store_path, "ls", "--all", "--label", "no-such=label")

    assert typo.exit_code == 0, typo.output
    assert "The built-in kinds are dataset, model, plot; is 'plots' a typo?" in typo.stderr
    assert "add --all for every version" in older.stderr
    assert "No artifacts match" in everything.stderr
    assert "--all" not in everything.stderr


def test_rm_deletes_empty_manifest_version(store_path: Path, store: ArtifactStore) -> None:
    (store_path / PROJECT / "artifacts" / "iris" / "versions" / "2.json").write_bytes(b"")

    listed = mlart(store_path, "ls", "--json")
    unconfirmed = mlart(store_path, "rm", "iris:2")
    result = mlart(store_path, "rm", "iris:2", "--yes")

    assert {row["ref"] for row in json.loads(listed.stdout)} >= {"iris/iris:1"}
    assert "Delete iris/iris:2 and its tags staging (its manifest cannot be read:" in unconfirmed.stderr
    assert "[y/N]:\nError: Did not delete iris/iris:2: no reply on stdin." in unconfirmed.stderr
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Deleted iris/iris:2 and its tags staging."
    assert [m.version for m in store.versions("iris")] == [1]
    assert mlart(store_path, "verify").exit_code == 0


def test_rm_yes_deletes_tagged_version_and_tag(store_path: Path, store: ArtifactStore) -> None:
    result = mlart(store_path, "rm", "iris-model@production", "--yes")
    listed = mlart(store_path, "ls", "--all", "--kind", "model", "--json")

    assert result.exit_code == 0
    assert [record["ref"] for record in json.loads(listed.stdout)] == ["iris/iris-model:2"]
    assert store.tags("iris-model") == {}


def test_rm_bare_key_is_refused(store_path: Path, store: ArtifactStore) -> None:
    result = mlart(store_path, "rm", "iris", "--yes")

    assert_one_line_error(result, 2, "Refusing to delete iris/iris", "for example 'iris/iris:2'")
    assert len(store.versions("iris")) == 2


def test_rm_unknown_version(store_path: Path) -> None:
    result = mlart(store_path, "rm", "iris:7", "--yes")

    assert_one_line_error(result, 1, "has no version 7", "existing versions: 1, 2")


# -- gc and verify -------------------------------------------------------------------------------


def test_gc_dry_run_keep_last_spares_tagged(store_path: Path, store: ArtifactStore) -> None:
    result = mlart(store_path, "gc", "--keep-last", "1", "--dry-run", "--json")

    report = json.loads(result.stdout)
    assert report["dry_run"] is True
    assert sorted(report["removed_versions"]) == ["iris/iris-scatter:1", "iris/iris:1"]
    assert len(store.versions("iris")) == 2


def test_gc_removes_old_versions_and_their_bodies(store_path: Path, store: ArtifactStore) -> None:
    old_bodies = {body.sha256 for body in store.get("iris-scatter:1").bodies}
    kept_bodies = {body.sha256 for body in store.get("iris-scatter:2").bodies}

    result = mlart(store_path, "gc", "--keep-last", "1", "--min-age", "0")

    assert result.exit_code == 0, result.output
    assert "Removed version iris/iris-scatter:1" in result.stdout
    assert "Removed 2 versions and" in result.stdout
    objects = {
        path.name for path in (store_path / PROJECT / "objects").rglob("*") if path.is_file()
    }
    assert not (old_bodies - kept_bodies) & objects
    assert kept_bodies <= objects
    assert mlart(store_path, "verify").exit_code == 0


def test_gc_min_age_keeps_young_orphans(store_path: Path, store: ArtifactStore) -> None:
    orphan = store_path / PROJECT / "objects" / "ab" / ("ab" + "0" * 62)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"left by a crashed save")

    young = mlart(store_path, "gc", "--json")
    old = mlart(store_path, "gc", "--min-age", "0", "--json")

    assert json.loads(young.stdout)["removed_bodies"] == []
    assert json.loads(old.stdout)["removed_bodies"] == [str(orphan)]
    assert not orphan.exists()


def test_gc_rejects_keep_last_zero(store_path: Path) -> None:
    result = mlart(store_path, "gc", "--keep-last", "0")

    assert result.exit_code == 2


def test_verify_clean_store(store_path: Path) -> None:
    result = mlart(store_path, "verify")

    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith(": OK.")
    assert "of 7 versions" in result.stdout


def test_verify_finds_corrupt_and_missing_bodies(store_path: Path, store: ArtifactStore) -> None:
    corrupt = store.get("iris-model:2").body()
    missing = store.get("iris-summary").body()
    (store_path / PROJECT / corrupt.path).write_bytes(b"tampered")
    os.remove(store_path / PROJECT / missing.path)

    result = mlart(store_path, "verify")
    as_json = mlart(store_path, "verify", "--json")

    assert result.exit_code == 1
    assert f"CORRUPT  iris/iris-model:2 {corrupt.name}" in result.stdout
    assert f"MISSING  iris/iris-summary:1 {missing.name}" in result.stdout
    assert "2 problems" in result.stdout
    report = json.loads(as_json.stdout)
    assert as_json.exit_code == 1
    assert report["ok"] is False
    assert [entry[0] for entry in report["corrupt"]] == ["iris/iris-model:2"]


def test_copied_store_names_its_own_bodies(store_path: Path, tmp_path: Path) -> None:
    """show and verify name where the copy's bodies are, not where they were written."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(store_path, copy)
    body = ArtifactStore(copy, project=PROJECT).get("iris-model:2").body()
    (copy / PROJECT / body.path).write_bytes(b"tampered")

    show_result = mlart(copy, "show", "iris-model:2")
    verified = mlart(copy, "verify")

    assert f"location {copy / PROJECT / body.path}" in normalized_lines(show_result.stdout)
    assert verified.exit_code == 1
    assert f"at {copy / PROJECT / body.path}." in " ".join(verified.stdout.split())
    assert str(store_path) not in show_result.stdout + verified.stdout


def test_verify_reports_bad_manifest(store_path: Path) -> None:
    manifest_file = store_path / PROJECT / "artifacts" / "iris" / "versions" / "1.json"
    manifest_file.write_text("{not json")

    result = mlart(store_path, "verify")

    assert result.exit_code == 1
    assert "BAD MANIFEST" in result.stdout
    assert "1.json" in result.stdout


# -- ui ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_ui_serves_the_store(store_path: Path) -> None:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "mlart_prefect.cli",
        "--store",
        str(store_path),
        "--project",
        PROJECT,
        "ui",
        "--port",
        str(port),
    ]
    server = subprocess.Popen(
        command, cwd=Path(__file__).parents[1], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        data = None
        for _ in range(200):
            try:
                data = httpx.get(f"http://127.0.0.1:{port}/api/artifacts", timeout=2).json()
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                time.sleep(0.1)
        tag = httpx.post(
            f"http://127.0.0.1:{port}/api/artifacts/iris/iris/1/tags", json={"tag": "x"}, timeout=5
        )
    finally:
        server.terminate()
        server.wait(timeout=20)

    assert data is not None
    assert data["total"] == 4
    assert tag.status_code == 403
    log = server.stderr.read() if server.stderr else ""
    requests = server.stdout.read() if server.stdout else ""  # uvicorn's access log
    assert f"Serving {store_path} (read-only) on http://127.0.0.1:{port}/" in log
    assert "Shutting down" in log
    assert '"GET /api/artifacts HTTP/1.1" 200' in requests
    assert '"POST /api/artifacts/iris/iris/1/tags HTTP/1.1" 403' in requests


# -- S3 ------------------------------------------------------------------------------------------


@pytest.mark.s3
def test_ls_and_get_on_s3(s3_bucket: tuple[str, dict[str, object]], tmp_path: Path) -> None:
    from mlart_prefect import settings
    from mlart_prefect.kinds.base import BodyPayload, Encoded

    url, options = s3_bucket
    store = ArtifactStore(url, storage_options=options, project="team")
    payload = Encoded(bodies=[BodyPayload(name="b.bin", data=b"on s3")], spec={}, primary="b.bin")
    manifest = store.save("blob", payload, kind="blob", labels={"where": "s3"})
    settings._cached_settings.cache_clear()  # read the environment given to the runner
    env = {"MLART_STORAGE_OPTIONS": json.dumps(options), "MLART_PROJECT": "team"}

    listed = CliRunner().invoke(app, ["--store", url, "ls", "--json"], env=env)
    fetched = CliRunner().invoke(
        app, ["--store", url, "get", "blob:1", "-o", str(tmp_path / "b.bin")], env=env
    )

    assert listed.exit_code == 0, listed.output
    assert [record["ref"] for record in json.loads(listed.stdout)] == ["team/blob:1"]
    assert fetched.exit_code == 0, fetched.output
    assert sha256(tmp_path / "b.bin") == manifest.body().sha256
