"""The store suite: runs unchanged over a local folder, memory:// and S3 on moto's server."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mlart_prefect.errors import (
    IntegrityError,
    InvalidNameError,
    KindMismatchError,
    ManifestError,
    NotFoundError,
    StoreUnavailableError,
)
from mlart_prefect.manifest import Producer
from mlart_prefect.store import ArtifactStore
from tests._store_workers import blob, save_many, save_then_die

BAD_NAMES = ["../x", "a/b", "*", "[1]", "", "a\x00b", "tab\there", "new\nline", "x" * 201, ".hidden", "a?", "..", "end."]


def _body_files(store: ArtifactStore) -> list[str]:
    return [path for path, _ in store.location.find(f"{store.project}/objects")]


def _corrupt(store: ArtifactStore, relative: str, data: bytes) -> None:
    store.location.write_atomic(relative, data)


# -- saving and reading -----------------------------------------------------------------------


def test_save_and_get_forms(store: ArtifactStore) -> None:
    first = store.save("data", blob(b"one"), kind="blob", labels={"stage": "raw"})
    second = store.save("data", blob(b"two"), kind="blob")
    store.tag("data:1", "production")

    assert (first.version, second.version) == (1, 2)
    assert store.get("data").version == 2
    assert store.get("data:1").version == 1
    assert store.get("data@production").version == 1
    assert store.get("test/data:2").version == 2
    assert store.get("mlart://test/data:1").labels == {"stage": "raw"}
    assert store.get("store://artifacts/test/data:1").version == 1  # MLRun's form
    assert store.get("store://datasets/test/data#0:production@4f2a").version == 1
    assert store.read_bytes(store.get("data:1")) == b"one"
    assert store.read_bytes(store.get("data@latest")) == b"two"


def test_body_is_content_addressed(store: ArtifactStore) -> None:
    first = store.save("a", blob(b"same bytes"), kind="blob")
    second = store.save("b", blob(b"same bytes"), kind="blob")

    assert first.bodies[0].sha256 == second.bodies[0].sha256
    assert first.bodies[0].path == f"objects/{first.bodies[0].sha256[:2]}/{first.bodies[0].sha256}"
    assert len(_body_files(store)) == 1


def test_versions_sort_numerically(store: ArtifactStore) -> None:
    for index in range(11):
        store.save("many", blob(f"body {index}".encode()), kind="blob")

    assert [m.version for m in store.versions("many")] == list(range(11, 0, -1))
    assert store.get("many").version == 11
    assert store.read_bytes(store.get("many:10")) == b"body 9"


def test_identical_save_returns_existing_version(store: ArtifactStore) -> None:
    first = store.save("same", blob(b"payload"), kind="blob", labels={"a": "1"})
    again = store.save("same", blob(b"payload"), kind="blob", labels={"a": "1"})
    relabelled = store.save("same", blob(b"payload"), kind="blob", labels={"a": "2"})

    assert again.version == first.version == 1
    assert relabelled.version == 2
    assert [m.version for m in store.versions("same")] == [2, 1]


def test_saves_see_versions_of_other_writers(store: ArtifactStore) -> None:
    # Two store objects on one location: each keeps the latest manifest it wrote, which must
    # not hide what the other wrote or deleted since.
    other = ArtifactStore(store.url, storage_options=store.location._options, project="test")
    store.save("shared", blob(b"one"), kind="blob")
    second = other.save("shared", blob(b"two"), kind="blob")

    assert store.save("shared", blob(b"two"), kind="blob").version == second.version == 2
    other.delete("shared:2")
    assert store.save("shared", blob(b"two"), kind="blob").version == 3
    assert store.save("shared", blob(b"one"), kind="blob").version == 4
    assert other.save("shared", blob(b"one"), kind="blob").version == 4


def test_unchanged_save_returns_stored_manifest(local_store: ArtifactStore) -> None:
    spec = {"shape": (2, 3), "when": datetime(2024, 5, 1, tzinfo=timezone.utc)}
    first = local_store.save("spec", blob(b"x", spec=spec), kind="blob")
    again = local_store.save("spec", blob(b"x", spec=spec), kind="blob")

    assert first.spec["shape"] == (2, 3)  # as the kind built it
    assert again.version == 1
    assert again.spec == {"shape": [2, 3], "when": "2024-05-01T00:00:00Z"}  # as stored


def test_fsync_flushes_bodies_manifests_and_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlart_prefect.settings import get_settings

    flushed: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(descriptor: int) -> None:
        flushed.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    ArtifactStore(tmp_path / "plain", project="test").save("k", blob(b"a"), kind="blob")
    assert flushed == []

    monkeypatch.setenv("MLART_FSYNC", "true")
    get_settings(reload=True)
    store = ArtifactStore(tmp_path / "durable", project="test")
    manifest = store.save("k", blob(b"a"), kind="blob")
    store.tag("k:1", "production")

    root = tmp_path / "durable" / "test"
    body = root / manifest.bodies[0].path
    versions = root / "artifacts" / "k" / "versions"
    tags = root / "artifacts" / "k" / "tags"
    assert str(body.parent) in flushed
    assert str(versions) in flushed
    assert str(tags) in flushed
    # Files are flushed under their temporary names, before they are linked into place.
    flushed_files = [path for path in flushed if Path(path).parent in (body.parent, versions, tags)]
    assert len(flushed_files) == 3
    assert len(flushed) == 6


def test_inputs_must_exist(store: ArtifactStore) -> None:
    store.save("source", blob(b"s"), kind="blob")

    derived = store.save("made", blob(b"m"), kind="blob", inputs=["source:1", "source"])
    with pytest.raises(NotFoundError, match=r"test/nosuch not found"):
        store.save("made", blob(b"n"), kind="blob", inputs=["nosuch:1"])
    with pytest.raises(NotFoundError, match=r"test/source has no version 7; existing versions: 1"):
        store.save("made", blob(b"n"), kind="blob", inputs=["source:7"])

    assert derived.inputs == ["test/source:1"]
    assert [m.version for m in store.versions("made")] == [1]


def test_kind_is_fixed_per_key(store: ArtifactStore) -> None:
    store.save("fixed", blob(b"x"), kind="dataset")
    with pytest.raises(KindMismatchError, match="contains dataset artifacts; cannot save a plot"):
        store.save("fixed", blob(b"y"), kind="plot")


def test_manifest_records_fields(store: ArtifactStore) -> None:
    producer = Producer(flow_name="train", flow_run_id="f-1", task_run_id="t-1", in_prefect_run=True)
    source = store.save("source", blob(b"in"), kind="blob")
    manifest = store.save(
        "made", blob(b"out", name="out.bin"), kind="blob", owner="ana", description="d",
        producer=producer, inputs=["source"],
    )
    reread = store.get("made:1")

    assert reread.owner == "ana"
    assert reread.description == "d"
    assert reread.producer.flow_run_id == "f-1"
    assert reread.inputs == [source.ref] == ["test/source:1"]
    assert reread.bodies[0].name == "out.bin"
    assert reread.bodies[0].size == 3
    assert reread.schema_version == 1
    assert reread.library_version == manifest.library_version != ""


def test_missing_reference_lists_what_exists(store: ArtifactStore) -> None:
    store.save("present", blob(b"1"), kind="blob")
    store.save("present", blob(b"2"), kind="blob")

    with pytest.raises(NotFoundError, match=r"test/present has no version 7; existing versions: 1, 2"):
        store.get("present:7")
    with pytest.raises(NotFoundError, match=r"test/absent not found .*keys in project 'test': present"):
        store.get("absent")
    with pytest.raises(NotFoundError, match=r"no tag 'prod'; its tags: none"):
        store.get("present@prod")


# -- names and safety -------------------------------------------------------------------------


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_invalid_key_rejected(store: ArtifactStore, name: str) -> None:
    with pytest.raises(InvalidNameError, match=r"Invalid key .*(must start with a letter|empty)"):
        store.save(name, blob(b"x"), kind="blob")
    assert _body_files(store) == []


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_invalid_tag_and_project_rejected(store: ArtifactStore, name: str) -> None:
    store.save("k", blob(b"x"), kind="blob")
    with pytest.raises(InvalidNameError, match="Invalid tag"):
        store.tag("k:1", name)
    with pytest.raises(InvalidNameError, match="Invalid project"):
        store.save("k", blob(b"x"), kind="blob", project=name)


def test_path_like_reference_explained(store: ArtifactStore) -> None:
    with pytest.raises(InvalidNameError) as raised:
        store.get("../data.parquet:1")

    message = str(raised.value)
    assert message.startswith("Invalid project '..'")
    assert "read as project '..' and key 'data.parquet'" in message
    assert "not a file path" in message


def test_invalid_name_message_names_value_and_rule() -> None:
    from mlart_prefect.manifest import validate_name

    with pytest.raises(InvalidNameError) as info:
        validate_name("../x", "key")
    assert "'../x'" in str(info.value)
    assert "only letters, digits, '.', '_' and '-'" in str(info.value)


def test_body_name_cannot_escape(store: ArtifactStore) -> None:
    with pytest.raises(InvalidNameError, match="Invalid body name '../evil'"):
        store.save("k", blob(b"x", name="../evil"), kind="blob")


def test_nothing_written_outside_root(tmp_path: Path) -> None:
    root = tmp_path / "inner" / "store"
    store = ArtifactStore(root, project="test")
    for name in BAD_NAMES:
        with pytest.raises(InvalidNameError):
            store.save(name, blob(b"x"), kind="blob")
        with pytest.raises(InvalidNameError):
            store.save("ok", blob(b"x", name=name or "-"), kind="blob", project=name or "..")
    store.save("ok", blob(b"fine"), kind="blob")

    outside = [p for p in tmp_path.rglob("*") if root not in p.parents and p != root]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in outside) == ["inner"]


def test_reserved_tag_rejected(store: ArtifactStore) -> None:
    store.save("k", blob(b"x"), kind="blob")
    with pytest.raises(InvalidNameError, match="reserved"):
        store.tag("k:1", "latest")


# -- search, tags, delete ---------------------------------------------------------------------


def test_search_filters(store: ArtifactStore) -> None:
    train = Producer(flow_name="train", in_prefect_run=True)
    store.save("raw", blob(b"r"), kind="dataset", labels={"team": "a", "stage": "raw"}, owner="ana", producer=train)
    store.save("clean", blob(b"c"), kind="dataset", labels={"team": "a", "stage": "clean"}, owner="bo")
    store.save("fig", blob(b"f"), kind="plot", labels={"team": "b"}, owner="ana", producer=train)
    store.save("raw", blob(b"r2"), kind="dataset", labels={"team": "a", "stage": "raw"}, owner="ana", producer=train)

    def refs(**filters: object) -> list[str]:
        return sorted(m.ref for m in store.search(**filters))  # type: ignore[arg-type]

    assert refs() == ["test/clean:1", "test/fig:1", "test/raw:2"]
    assert refs(all_versions=True) == ["test/clean:1", "test/fig:1", "test/raw:1", "test/raw:2"]
    assert refs(kind="plot") == ["test/fig:1"]
    assert refs(labels={"team": "a"}) == ["test/clean:1", "test/raw:2"]
    assert refs(labels={"team": "a", "stage": "raw"}) == ["test/raw:2"]
    assert refs(labels={"team": "a", "stage": "none"}) == []
    assert refs(flow_name="train") == ["test/fig:1", "test/raw:2"]
    assert refs(owner="bo") == ["test/clean:1"]
    assert refs(text="CLE") == ["test/clean:1"]
    future = datetime.now(timezone.utc) + timedelta(hours=1)
    assert refs(since=future) == []
    assert refs(until=future) == ["test/clean:1", "test/fig:1", "test/raw:2"]
    created_first = store.get("raw:1").created
    assert "test/raw:1" in refs(all_versions=True, until=created_first)
    assert "test/raw:1" not in refs(all_versions=True, since=created_first + timedelta(microseconds=1))


def test_tags_move_and_untag(store: ArtifactStore) -> None:
    for data in (b"1", b"2", b"3"):
        store.save("k", blob(data), kind="blob")
    store.tag("k:1", "production")
    store.tag("k:3", "production")
    store.tag("k:2", "staging")

    assert store.tags("k") == {"production": 3, "staging": 2}
    store.untag("k", "staging")
    assert store.tags("k") == {"production": 3}
    with pytest.raises(NotFoundError, match="no tag 'staging'; its tags: production"):
        store.untag("k", "staging")


def test_delete_version_keeps_number_taken(store: ArtifactStore) -> None:
    store.save("k", blob(b"1"), kind="blob")
    store.save("k", blob(b"2"), kind="blob")
    store.tag("k:2", "production")

    store.delete("k:2")
    assert [m.version for m in store.versions("k")] == [1]
    assert store.tags("k") == {}
    with pytest.raises(NotFoundError, match="existing versions: 1"):
        store.get("k:2")
    assert store.save("k", blob(b"3"), kind="blob").version == 3
    with pytest.raises(InvalidNameError, match="name a version"):
        store.delete("k")


# -- maintenance ------------------------------------------------------------------------------


def test_gc_removes_unreferenced_bodies(store: ArtifactStore) -> None:
    store.save("k", blob(b"kept"), kind="blob")
    store.save("k", blob(b"dropped"), kind="blob")
    store.delete("k:2")

    dry = store.gc(dry_run=True, min_age_seconds=0)
    assert len(dry.removed_bodies) == 1
    assert len(_body_files(store)) == 2
    young = store.gc(min_age_seconds=3600)
    assert young.removed_bodies == []
    report = store.gc(min_age_seconds=0)
    assert report.removed_bodies == dry.removed_bodies
    assert report.freed_bytes == len(b"dropped")
    assert len(_body_files(store)) == 1
    assert store.read_bytes(store.get("k:1")) == b"kept"


def test_gc_keep_last_spares_tagged(store: ArtifactStore) -> None:
    for index in range(1, 6):
        store.save("k", blob(f"v{index}".encode()), kind="blob")
    store.tag("k:1", "production")

    report = store.gc(keep_last=2, min_age_seconds=0)
    assert sorted(report.removed_versions) == ["test/k:2", "test/k:3"]
    assert [m.version for m in store.versions("k")] == [5, 4, 1]
    assert len(report.removed_bodies) == 2
    assert store.verify().ok


def test_verify_and_read_detect_corruption(store: ArtifactStore) -> None:
    good = store.save("good", blob(b"intact body"), kind="blob")
    bad = store.save("bad", blob(b"original body"), kind="blob")
    gone = store.save("gone", blob(b"soon missing"), kind="blob")
    _corrupt(store, f"test/{bad.bodies[0].path}", b"original bo")  # truncated
    store.location.remove(f"test/{gone.bodies[0].path}")

    report = store.verify()
    assert not report.ok
    assert report.versions_checked == 3
    assert [(ref, name) for ref, name, _ in report.corrupt] == [("test/bad:1", "body.bin")]
    assert [(ref, name) for ref, name, _ in report.missing] == [("test/gone:1", "body.bin")]
    with pytest.raises(IntegrityError, match=r"Body 'body.bin' of test/bad:1 is corrupt"):
        store.read_bytes(bad)
    with pytest.raises(IntegrityError, match=r"test/gone:1 is missing"):
        store.read_bytes(gone)
    with pytest.raises(IntegrityError, match=r"test/bad:1 is corrupt"):
        with store.open(bad) as stream:
            stream.read()
    assert store.read_bytes(good) == b"intact body"


def test_altered_body_same_size_detected(store: ArtifactStore) -> None:
    manifest = store.save("k", blob(b"abcdef"), kind="blob")
    _corrupt(store, f"test/{manifest.bodies[0].path}", b"abcdeX")

    with pytest.raises(IntegrityError, match="test/k:1"):
        store.read_bytes(manifest)
    assert [ref for ref, _, _ in store.verify().corrupt] == ["test/k:1"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"{not json", "not valid JSON"), (json.dumps({"schema_version": 99}).encode(), "unknown schema version 99")],
)
def test_bad_manifest_skipped_and_reported(
    store: ArtifactStore, caplog: pytest.LogCaptureFixture, content: bytes, reason: str
) -> None:
    store.save("k", blob(b"1"), kind="blob")
    store.save("k", blob(b"2"), kind="blob")
    store.save("other", blob(b"o"), kind="blob")
    store.location.write_atomic("test/artifacts/k/versions/3.json", content)

    with caplog.at_level(logging.WARNING, logger="mlart_prefect.store"):
        versions = store.versions("k")
        found = store.search(all_versions=True)
    assert [m.version for m in versions] == [2, 1]
    assert sorted(m.ref for m in found) == ["test/k:1", "test/k:2", "test/other:1"]
    assert reason in caplog.text
    assert store.get("k").version == 2
    report = store.verify()
    assert len(report.bad_manifests) == 1
    assert reason in report.bad_manifests[0][1]
    assert report.bad_manifests[0][0].endswith("test/artifacts/k/versions/3.json")
    assert store.save("k", blob(b"4"), kind="blob").version == 4


def test_damaged_version_skipped_and_deletable(store: ArtifactStore) -> None:
    # What a power loss can leave without MLART_FSYNC: an empty newest manifest.
    store.save("k", blob(b"1"), kind="blob")
    store.save("k", blob(b"2"), kind="blob")
    store.tag("k:2", "production")
    store.location.write_atomic("test/artifacts/k/versions/2.json", b"")

    assert [m.ref for m in store.search()] == ["test/k:1"]
    assert store.delete("k:2") is None
    assert store.tags("k") == {}
    assert store.verify().bad_manifests == []
    assert store.save("k", blob(b"3"), kind="blob").version == 3
    # Named by a tag, a damaged version is refused: it is deleted by its number only.
    store.tag("k:3", "gold")
    store.location.write_atomic("test/artifacts/k/versions/3.json", b"{")
    with pytest.raises(ManifestError):
        store.delete("k@gold")


# -- unusable store URLs ----------------------------------------------------------------------


def test_unknown_protocol_fails_at_first_use() -> None:
    store = ArtifactStore("nosuchproto://bucket/x", project="test")
    with pytest.raises(StoreUnavailableError, match=r"Cannot use store 'nosuchproto://bucket/x': .*protocol"):
        store.keys()


def test_file_where_folder_should_be(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("x")
    with pytest.raises(StoreUnavailableError, match=r"plain-file.*is a file, not a folder"):
        ArtifactStore(tmp_path / "plain-file").keys()
    with pytest.raises(StoreUnavailableError, match=r"a part of the path is a file"):
        ArtifactStore(tmp_path / "plain-file" / "store").save("k", blob(b"x"), kind="blob")


def test_missing_bucket(s3_bucket: tuple[str, dict[str, object]]) -> None:
    _, options = s3_bucket
    store = ArtifactStore("s3://no-such-bucket/store", storage_options=options)
    with pytest.raises(StoreUnavailableError) as raised:
        store.save("k", blob(b"x"), kind="blob")
    assert str(raised.value) == (
        "Cannot use store 's3://no-such-bucket/store': the bucket 'no-such-bucket' does not exist"
    )


def test_unreachable_endpoint() -> None:
    options = {"endpoint_url": "http://127.0.0.1:9", "key": "k", "secret": "s",
               "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1}}
    store = ArtifactStore("s3://bucket/store", storage_options=options)
    with pytest.raises(StoreUnavailableError, match=r"'s3://bucket/store': the bucket 'bucket' cannot be reached"):
        store.keys()


def test_no_permission(tmp_path: Path) -> None:
    root = tmp_path / "readonly"
    root.mkdir()
    root.chmod(0o555)
    # The unprivileged user must reach the folder to meet its permission bits.
    for folder in [tmp_path, *tmp_path.parents]:
        if folder == Path(tempfile.gettempdir()):
            break
        if folder.stat().st_uid == os.getuid():
            folder.chmod(folder.stat().st_mode | 0o005)
    code = (
        "import os, sys\n"
        "import fsspec.core\n"
        "from mlart_prefect.store import ArtifactStore\n"
        "from mlart_prefect.errors import StoreUnavailableError\n"
        "from tests._store_workers import blob\n"
        f"store = ArtifactStore({str(root)!r})\n"
        "fsspec.core.url_to_fs(store.url)\n"
        "if os.getuid() == 0: os.setgid(65534); os.setuid(65534)\n"
        "assert store.keys() == [], 'a read-only folder can be read'\n"
        "try: store.save('k', blob(b'x'), kind='blob')\n"
        "except StoreUnavailableError as exc: print(exc); sys.exit(0)\n"
        "sys.exit(3)\n"
    )
    env = {**os.environ, "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"Cannot use store {str(root)!r}: no permission to write in {root}" in result.stdout


def test_not_found_explains_wrong_store_path(tmp_path: Path) -> None:
    ArtifactStore(tmp_path / "store", project="test").save("k", blob(b"x"), kind="blob")

    with pytest.raises(NotFoundError, match="The store folder does not exist: check the path."):
        ArtifactStore(tmp_path / "stroe", project="test").get("k")
    with pytest.raises(NotFoundError) as raised:
        ArtifactStore(tmp_path / "store" / "test", project="test").get("k")

    assert f"looks like the folder of one project: use its parent, {tmp_path / 'store'}" in str(
        raised.value
    )


def test_reads_create_no_folder(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "typo" / "store", project="test")

    assert store.keys() == []
    assert store.search() == []
    with pytest.raises(NotFoundError):
        store.get("k")
    assert not (tmp_path / "typo").exists()
    assert store.save("k", blob(b"x"), kind="blob").version == 1
    assert (tmp_path / "typo" / "store" / "test" / "artifacts" / "k").is_dir()


# -- concurrency and crashes ------------------------------------------------------------------


def _assert_versions_complete(store: ArtifactStore, key: str, count: int) -> None:
    manifests = store.versions(key)
    assert sorted(m.version for m in manifests) == list(range(1, count + 1))
    assert len({m.bodies[0].sha256 for m in manifests}) == count
    report = store.verify()
    assert report.ok, report
    assert report.bodies_checked == count


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_concurrent_processes(request: pytest.FixtureRequest, backend: str) -> None:
    store: ArtifactStore = request.getfixturevalue(f"{backend}_store")
    options = store.location._options
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        results = pool.starmap(save_many, [(store.url, options, "shared", w, 25) for w in range(4)])

    assert sorted(v for versions in results for v in versions) == list(range(1, 101))
    _assert_versions_complete(store, "shared", 100)


@pytest.mark.parametrize("backend", ["local", "memory", "s3"])
def test_concurrent_threads(request: pytest.FixtureRequest, backend: str) -> None:
    store: ArtifactStore = request.getfixturevalue(f"{backend}_store")
    with ThreadPoolExecutor(4) as pool:
        futures = [
            pool.submit(save_many, store.url, store.location._options, "shared", w, 25) for w in range(4)
        ]
        results = [f.result() for f in futures]

    assert sorted(v for versions in results for v in versions) == list(range(1, 101))
    _assert_versions_complete(store, "shared", 100)


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_killed_writer_leaves_no_version(request: pytest.FixtureRequest, backend: str) -> None:
    store: ArtifactStore = request.getfixturevalue(f"{backend}_store")
    store.save("crash", blob(b"committed"), kind="blob")
    process = multiprocessing.get_context("spawn").Process(
        target=save_then_die, args=(store.url, store.location._options, "crash")
    )
    process.start()
    process.join(120)

    assert process.exitcode == -9
    assert [m.version for m in store.versions("crash")] == [1]
    assert len(_body_files(store)) == 2
    assert store.verify().ok
    report = store.gc(min_age_seconds=0)
    assert len(report.removed_bodies) == 1
    assert len(_body_files(store)) == 1
    assert store.read_bytes(store.get("crash")) == b"committed"
    assert store.save("crash", blob(b"next"), kind="blob").version == 2


def test_error_names_the_url_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from mlart_prefect.settings import get_settings

    (tmp_path / "plain-file").write_text("x")
    monkeypatch.setenv("MLART_STORE_URL", str(tmp_path / "plain-file"))
    get_settings(reload=True)

    with pytest.raises(StoreUnavailableError) as raised:
        ArtifactStore().keys()
    with pytest.raises(StoreUnavailableError) as given:
        ArtifactStore(tmp_path / "plain-file").keys()

    assert f"'{tmp_path / 'plain-file'}' (set by MLART_STORE_URL): " in str(raised.value)
    assert "MLART_STORE_URL" not in str(given.value)


def test_store_from_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from mlart_prefect.settings import get_settings

    monkeypatch.setenv("MLART_STORE_URL", str(tmp_path / "configured"))
    monkeypatch.setenv("MLART_PROJECT", "team")
    get_settings(reload=True)
    store = ArtifactStore.from_settings()
    manifest = store.save("k", blob(b"x"), kind="blob")

    assert manifest.ref == "team/k:1"
    assert (tmp_path / "configured" / "team" / "artifacts" / "k" / "versions" / "1.json").is_file()
    assert time.time() - manifest.created.timestamp() < 600


def test_memory_exclusive_create_from_threads(memory_store: ArtifactStore) -> None:
    """Threads racing to create one file on memory://: exactly one succeeds each round."""
    location = memory_store.location
    winners = []
    contents = []

    def race(round_: int) -> None:
        barrier = threading.Barrier(8)
        created = []

        def create(number: int) -> None:
            barrier.wait()
            try:
                location.create_exclusive(f"race/{round_}.json", str(number).encode())
            except FileExistsError:
                return
            created.append(number)

        threads = [threading.Thread(target=create, args=(number,)) for number in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners.append(len(created))
        contents.append(location.read(f"race/{round_}.json") == str(created[0]).encode())

    # Switching threads every microsecond lets one thread stop between another's check for
    # the file and its write.
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for round_ in range(30):
            race(round_)
    finally:
        sys.setswitchinterval(previous)

    assert winners == [1] * 30
    assert all(contents)
