"""Tests of the web view's pages, JSON API and body downloads through FastAPI's TestClient."""

from __future__ import annotations

import hashlib
import re
import warnings
from pathlib import Path

import pytest

from mlart_prefect.kinds.base import BodyPayload, Encoded
from mlart_prefect.store import ArtifactStore
from mlart_prefect.web import _bodies
from mlart_prefect.web._bodies import BodyStreamError
from mlart_prefect.web.app import create_app
from tests._flow_store import PIPELINE_FLOW, PROJECT, REPORT_FLOW, FlowStoreInfo
from tests.web.conftest import PREFECT_UI

with warnings.catch_warnings():
    # starlette 1.x warns that its TestClient will move from httpx to httpx2; httpx still works.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def client_for(store: ArtifactStore, **options: object) -> TestClient:
    return TestClient(create_app(store, **options))  # type: ignore[arg-type]


@pytest.fixture
def client(store: ArtifactStore) -> TestClient:
    return client_for(store, prefect_ui_url=PREFECT_UI)


def refs(response_json: dict) -> list[str]:
    return sorted(item["ref"] for item in response_json["items"])


def page_refs(html: str) -> list[str]:
    """Return the data-ref of each row of the list page's table, in page order."""
    return re.findall(r'<tr data-ref="([^"]+)">', html)


# -- JSON list -----------------------------------------------------------------------------------


def test_api_lists_latest_versions(client: TestClient, store: ArtifactStore) -> None:
    response = client.get("/api/artifacts")

    assert response.status_code == 200
    data = response.json()
    assert data["total"] == 4
    assert data["pages"] == 1
    assert refs(data) == [
        "iris/iris-model:2",
        "iris/iris-scatter:2",
        "iris/iris-summary:1",
        "iris/iris:2",
    ]
    model = next(item for item in data["items"] if item["key"] == "iris-model")
    assert model["page"] == "/artifacts/iris/iris-model/2"
    assert model["producer"]["flow_run_id"] == store.get("iris-model").producer.flow_run_id


def test_api_filters(client: TestClient, flow_template: FlowStoreInfo) -> None:
    since = flow_template.first_run_done.isoformat()

    cases = {
        "kind=plot": ["iris/iris-scatter:2"],
        "label=team=ml&label=stage=raw": ["iris/iris:2"],
        "label=team%3Dml,%20stage%3Draw": ["iris/iris:2"],
        "q=summ": ["iris/iris-summary:1"],
        "q=FLOWER": ["iris/iris:2"],
        "owner=alice": ["iris/iris-summary:1"],
        f"flow={REPORT_FLOW}": ["iris/iris-summary:1"],
        f"all_versions=true&until={since.replace('+', '%2B')}": [
            "iris/iris-model:1",
            "iris/iris-scatter:1",
            "iris/iris:1",
        ],
        f"all_versions=true&kind=model&flow={PIPELINE_FLOW}": [
            "iris/iris-model:1",
            "iris/iris-model:2",
        ],
        "since=2999-01-01": [],
    }
    for query, expected in cases.items():
        response = client.get(f"/api/artifacts?{query}")
        assert response.status_code == 200, query
        assert refs(response.json()) == expected, query


def test_api_pages(client: TestClient) -> None:
    first = client.get("/api/artifacts?all_versions=true&per_page=3").json()
    third = client.get("/api/artifacts?all_versions=true&per_page=3&page=3").json()
    beyond = client.get("/api/artifacts?all_versions=true&per_page=3&page=9").json()

    assert first["total"] == 7
    assert first["pages"] == 3
    assert [item["ref"] for item in first["items"]] == [
        "iris/iris-summary:1",
        "iris/iris-scatter:2",
        "iris/iris-model:2",
    ]
    assert len(third["items"]) == 1
    assert beyond["page"] == 3


def test_api_all_projects(client: TestClient, store_path: Path) -> None:
    other = ArtifactStore(store_path, project="other")
    other.save(
        "blob",
        Encoded(bodies=[BodyPayload(name="b.bin", data=b"x")], spec={}, primary="b.bin"),
        kind="blob",
    )

    both = client.get("/api/artifacts?project=*").json()
    only_other = client.get("/api/artifacts?project=other").json()

    assert both["total"] == 5
    assert refs(only_other) == ["other/blob:1"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("label=team", "Invalid label filter 'team'"),
        ("since=yesterday", "Invalid time 'yesterday'"),
        ("until=2024-02-30", "Invalid time '2024-02-30'"),
        ("project=..", "Invalid project '..'"),
    ],
)
def test_api_rejects_bad_filters(client: TestClient, query: str, message: str) -> None:
    response = client.get(f"/api/artifacts?{query}")

    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_api_version_detail(client: TestClient, store: ArtifactStore) -> None:
    manifest = store.get("iris:2")

    response = client.get("/api/artifacts/iris/iris/2")

    data = response.json()
    assert data["ref"] == "iris/iris:2"
    assert data["manifest"]["spec"]["num_rows"] == 120
    assert data["tags"] == ["staging"]
    assert data["made_from"] == []
    assert sorted(data["used_by"]) == [
        "iris/iris-model:2",
        "iris/iris-scatter:2",
        "iris/iris-summary:1",
    ]
    assert data["bodies"] == {"data.parquet": "/artifacts/iris/iris/2/bodies/data.parquet"}
    assert data["flow_run_url"] == f"{PREFECT_UI}/runs/flow-run/{manifest.producer.flow_run_id}"


def test_api_key_versions(client: TestClient) -> None:
    data = client.get("/api/artifacts/iris/iris-model").json()

    assert [item["version"] for item in data["versions"]] == [2, 1]
    assert data["tags"] == {"production": 1}


def test_api_unknown_version_is_404_with_versions(client: TestClient) -> None:
    response = client.get("/api/artifacts/iris/iris/5")

    assert response.status_code == 404
    assert response.json()["detail"] == "iris/iris has no version 5; existing versions: 1, 2."


def test_api_invalid_key_is_400(client: TestClient) -> None:
    response = client.get("/api/artifacts/iris/a*b/1")

    assert response.status_code == 400
    assert "Invalid key 'a*b'" in response.json()["detail"]


# -- pages ---------------------------------------------------------------------------------------


def test_list_page_rows_and_columns(client: TestClient, store: ArtifactStore) -> None:
    response = client.get("/artifacts")

    assert response.status_code == 200
    html = response.text
    assert page_refs(html) == [
        "iris/iris-summary:1",
        "iris/iris-scatter:2",
        "iris/iris-model:2",
        "iris/iris:2",
    ]
    assert (
        "<th>Key</th><th>Kind</th><th>Version</th><th>Labels</th><th>Producer</th>"
        "<th>Owner</th><th>Updated (UTC)</th>" in html
    )
    summary = store.get("iris-summary")
    producer = summary.producer
    run_url = f"{PREFECT_UI}/runs/flow-run/{producer.flow_run_id}"
    run_link = f'<a href="{run_url}">{REPORT_FLOW} / {producer.flow_run_name}</a>'
    assert run_link in html
    assert '<span class="label">team=analytics</span>' in html
    assert "1–4 of 4 keys" in html


def test_list_page_filters_by_label_and_time(
    client: TestClient, flow_template: FlowStoreInfo
) -> None:
    since = flow_template.first_run_done.isoformat()

    labelled = client.get("/artifacts", params={"label": "stage=report"}).text
    recent = client.get("/artifacts", params={"since": since, "all_versions": "true"}).text

    assert page_refs(labelled) == ["iris/iris-summary:1", "iris/iris-scatter:2"]
    assert sorted(page_refs(recent)) == [
        "iris/iris-model:2",
        "iris/iris-scatter:2",
        "iris/iris-summary:1",
        "iris/iris:2",
    ]
    assert f'name="since" value="{since}"' in recent


def test_list_page_shows_filter_error(client: TestClient) -> None:
    response = client.get("/artifacts", params={"until": "soon"})

    assert response.status_code == 400
    assert 'id="filter-error"' in response.text
    assert "Invalid time &#39;soon&#39;" in response.text


def test_list_page_paginates_by_50(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "big", project="p")
    for number in range(60):
        payload = Encoded(
            bodies=[BodyPayload(name="b.bin", data=str(number).encode())], spec={}, primary="b.bin"
        )
        store.save(
            f"key-{number:02d}", payload, kind="blob", labels={"even": str(number % 2 == 0).lower()}
        )
    client = client_for(store)

    first = client.get("/artifacts").text
    second = client.get("/artifacts?page=2").text
    even = client.get("/artifacts?label=even=true&page=1").text

    assert len(page_refs(first)) == 50
    assert "1–50 of 60 keys" in first
    assert 'rel="next" href="?project=p&amp;page=2"' in first
    assert len(page_refs(second)) == 10
    assert set(page_refs(first)).isdisjoint(page_refs(second))
    assert 'rel="prev"' in second
    assert len(page_refs(even)) == 30
    assert 'id="pager"' not in even


def test_dataset_page_preview_and_histograms(client: TestClient, store: ArtifactStore) -> None:
    manifest = store.get("iris:2")
    preview = manifest.spec["preview"]

    html = client.get("/artifacts/iris/iris/2").text

    assert "<h1>iris <span" in html
    table = html[html.index('id="preview"') : html.index("</table>", html.index('id="preview"'))]
    assert table.count("<tr>") == len(preview["rows"]) + 1
    assert "<th>sepal length (cm)</th>" in table
    stats = html[html.index('id="statistics"') :]
    assert stats.count('<svg class="histogram"') == 5
    histogram = manifest.spec["stats"]["columns"]["target"]["histogram"]
    assert (
        f"<title>{histogram['edges'][0]:.6g} to {histogram['edges'][1]:.6g}: "
        f"{histogram['counts'][0]}</title>" in stats
    )
    assert 'height="36.0"><title>' in stats
    assert '<span class="tag">@staging</span>' in html


def test_version_page_lineage_both_ways(client: TestClient) -> None:
    html = client.get("/artifacts/iris/iris-model/2").text

    made_from = html[html.index('id="made-from"') : html.index('id="used-by"')]
    used_by = html[html.index('id="used-by"') :]
    assert '<a href="/artifacts/iris/iris/2">iris/iris:2</a>' in made_from
    assert '<a href="/artifacts/iris/iris-summary/1">iris/iris-summary:1</a>' in used_by


def test_version_page_versions_and_downloads(client: TestClient, store: ArtifactStore) -> None:
    manifest = store.get("iris-scatter:1")

    html = client.get("/artifacts/iris/iris-scatter/1").text

    assert (
        '<li class="current">\n        <a href="/artifacts/iris/iris-scatter/1">version 1</a>'
        in html
    )
    assert '<a href="/artifacts/iris/iris-scatter/2">version 2</a>' in html
    for body in manifest.bodies:
        assert f'href="/artifacts/iris/iris-scatter/1/bodies/{body.name}?download=1"' in html
        assert f'title="{store.body_uri(manifest, body.name)}">{body.sha256}' in html
    assert (
        '<img id="plot-image" src="/artifacts/iris/iris-scatter/1/bodies/iris-scatter.png"' in html
    )


def test_model_page_metrics_and_flow_run_link(client: TestClient, store: ArtifactStore) -> None:
    manifest = store.get("iris-model:1")

    html = client.get("/artifacts/iris/iris-model/1").text

    assert f"<td>accuracy</td><td>{manifest.spec['metrics']['accuracy']:.6g}</td>" in html
    assert "<td>max_iter</td><td>500</td>" in html
    assert (
        f'<a id="flow-run-link" href="{PREFECT_UI}/runs/flow-run/{manifest.producer.flow_run_id}">'
        in html
    )
    assert "<dt>Algorithm</dt><dd>LogisticRegression</dd>" in html


def test_version_page_without_prefect_ui_has_no_link(store: ArtifactStore) -> None:
    html = client_for(store).get("/artifacts/iris/iris-model/1").text

    assert 'id="flow-run-link"' not in html
    assert store.get("iris-model:1").producer.flow_run_id in html


def test_key_page_redirects_to_latest(client: TestClient) -> None:
    response = client.get("/artifacts/iris/iris-model", follow_redirects=False)

    assert response.status_code == 307
    assert response.headers["location"] == "/artifacts/iris/iris-model/2"


def test_unknown_version_page_is_404(client: TestClient) -> None:
    response = client.get("/artifacts/iris/nope/1")

    assert response.status_code == 404
    assert "Artifact iris/nope not found" in response.text


def test_page_escapes_stored_text(store_path: Path) -> None:
    store = ArtifactStore(store_path, project=PROJECT)
    payload = Encoded(bodies=[BodyPayload(name="b.bin", data=b"x")], spec={}, primary="b.bin")
    store.save(
        "xss", payload, kind="blob", description="<script>alert(1)</script>", labels={"a": "<b>"}
    )

    html = client_for(store).get("/artifacts/iris/xss/1").text

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "a=&lt;b&gt;" in html


# -- bodies --------------------------------------------------------------------------------------


def test_body_served_with_media_type_and_digest(client: TestClient, store: ArtifactStore) -> None:
    body = store.get("iris-scatter:2").body("iris-scatter.png")

    inline = client.get("/artifacts/iris/iris-scatter/2/bodies/iris-scatter.png")
    download = client.get("/artifacts/iris/iris-scatter/2/bodies/iris-scatter.png?download=1")

    assert inline.status_code == 200
    assert inline.headers["content-type"] == "image/png"
    assert hashlib.sha256(inline.content).hexdigest() == body.sha256
    assert inline.headers["content-disposition"].startswith('inline; filename="iris-scatter.png"')
    assert download.headers["content-disposition"].startswith(
        'attachment; filename="iris-scatter.png"'
    )
    assert inline.headers["content-security-policy"] == "sandbox"
    assert inline.headers["x-content-type-options"] == "nosniff"
    assert inline.headers["etag"] == f'"{body.sha256}"'


def test_html_body_is_sandboxed(client: TestClient) -> None:
    response = client.get("/artifacts/iris/iris-scatter/2/bodies/iris-scatter.html")

    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == "sandbox"


@pytest.mark.parametrize("name", ["objects", "data.parquet%00", "1.json", "...."])
def test_body_route_takes_names_not_paths(client: TestClient, name: str) -> None:
    response = client.get(f"/artifacts/iris/iris/2/bodies/{name}")

    assert response.status_code == 404
    assert "has no body named" in response.text
    assert "its bodies: data.parquet" in response.text


@pytest.mark.parametrize(
    "name", ["..%2F..%2Fartifacts%2Firis%2Fversions%2F1.json", "%2Fetc%2Fpasswd"]
)
def test_body_route_rejects_paths(client: TestClient, name: str) -> None:
    response = client.get(f"/artifacts/iris/iris/2/bodies/{name}")

    assert response.status_code == 404
    assert "schema_version" not in response.text
    assert "root:" not in response.text


def test_corrupt_body_is_not_served(
    client: TestClient, store: ArtifactStore, store_path: Path
) -> None:
    body = store.get("iris:2").body()
    (store_path / PROJECT / body.path).write_bytes(b"not parquet")

    response = client.get("/artifacts/iris/iris/2/bodies/data.parquet")

    assert response.status_code == 500
    assert "is corrupt" in response.text


def test_large_body_streams_verified(
    client: TestClient, store: ArtifactStore, store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_bodies, "BUFFERED_MAX_BYTES", 0)
    monkeypatch.setattr(_bodies, "STREAM_CHUNK", 1000)
    body = store.get("iris:2").body()

    good = client.get("/artifacts/iris/iris/2/bodies/data.parquet")
    (store_path / PROJECT / body.path).write_bytes(b"x" * body.size)

    assert hashlib.sha256(good.content).hexdigest() == body.sha256
    assert good.headers["content-length"] == str(body.size)
    with pytest.raises(BodyStreamError, match="is corrupt"):
        client.get("/artifacts/iris/iris/2/bodies/data.parquet")


# -- tags ----------------------------------------------------------------------------------------


def test_read_only_rejects_tag_changes(client: TestClient, store: ArtifactStore) -> None:
    form = client.post("/artifacts/iris/iris/1/tags", data={"tag": "gold"})
    api = client.post("/api/artifacts/iris/iris/1/tags", json={"tag": "gold"})
    delete = client.delete("/api/artifacts/iris/iris/tags/staging")

    assert form.status_code == 403
    assert api.status_code == 403
    assert "read-only" in api.json()["detail"]
    assert delete.status_code == 403
    assert store.tags("iris") == {"staging": 2}
    assert "Tag this version" not in client.get("/artifacts/iris/iris/1").text


def test_writable_view_edits_tags(store: ArtifactStore) -> None:
    client = client_for(store, read_only=False)

    added = client.post("/artifacts/iris/iris/1/tags", data={"tag": "gold"}, follow_redirects=False)
    tags_after_add = store.tags("iris")
    removed = client.post("/artifacts/iris/iris/1/tags/gold/delete", follow_redirects=False)
    api_added = client.post("/api/artifacts/iris/iris-model/2/tags", json={"tag": "production"})
    api_removed = client.delete("/api/artifacts/iris/iris/tags/staging")

    assert added.status_code == 303
    assert added.headers["location"] == "/artifacts/iris/iris/1"
    assert tags_after_add == {"gold": 1, "staging": 2}
    assert removed.status_code == 303
    assert api_added.json() == {"ref": "iris/iris-model:2", "tag": "production"}
    assert api_removed.status_code == 200
    assert store.tags("iris") == {}
    assert store.tags("iris-model") == {"production": 2}


def test_writable_view_rejects_bad_tag_and_other_sites(store: ArtifactStore) -> None:
    client = client_for(store, read_only=False)

    invalid = client.post("/api/artifacts/iris/iris/1/tags", json={"tag": "latest"})
    cross_site = client.post(
        "/artifacts/iris/iris/1/tags",
        data={"tag": "gold"},
        headers={"origin": "http://evil.example"},
    )

    assert invalid.status_code == 400
    assert "reserved" in invalid.json()["detail"]
    assert cross_site.status_code == 403
    assert store.tags("iris") == {"staging": 2}


@pytest.mark.s3
def test_view_over_s3_store(s3_store: ArtifactStore) -> None:
    payload = Encoded(bodies=[BodyPayload(name="b.bin", data=b"on s3")], spec={}, primary="b.bin")
    manifest = s3_store.save("blob", payload, kind="blob")
    client = client_for(s3_store)

    listed = client.get("/api/artifacts").json()
    page = client.get("/artifacts/test/blob/1")
    body = client.get("/artifacts/test/blob/1/bodies/b.bin?download=1")

    assert refs(listed) == ["test/blob:1"]
    assert page.status_code == 200
    assert manifest.body().uri in page.text
    assert body.content == b"on s3"
