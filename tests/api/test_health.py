"""Health, readiness, metrics and the API documents."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from matcher import create_app
from matcher.extensions import state


def test_healthz_and_readyz(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["status"] == "ready"


def test_readyz_is_503_when_the_schema_is_not_migrated(tmp_path: Path) -> None:
    app = create_app({"env": "testing", "database_url": f"sqlite:///{tmp_path / 'empty.db'}"})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert "matcher db upgrade" in response.get_json()["detail"]
    state(app).engine.dispose()


def test_readyz_is_503_when_the_database_is_unreachable() -> None:
    app = create_app({"env": "testing", "database_url": "postgresql://nobody@127.0.0.1:1/none"})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"


def test_metrics_count_requests(client: FlaskClient) -> None:
    client.get("/healthz")
    body = client.get("/metrics").get_data(as_text=True)
    assert 'matcher_http_requests_total{endpoint="/healthz",method="GET",status="200"}' in body


def test_openapi_documents_every_endpoint_and_the_problem_schema(
    app: Flask, client: FlaskClient
) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    paths = spec["paths"]
    assert "/api/v1/units/{unit_id}/craftsmen/bulk" in paths
    assert "/api/v1/units/{unit_id}/apprentices/{external_id}" in paths
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert set(spec["components"]["schemas"]["Problem"]["properties"]) >= {
        "type",
        "title",
        "status",
        "detail",
        "errors",
    }
    routes = {r.rule for r in app.url_map.iter_rules() if r.rule.startswith("/api/v1/")} - {
        "/api/v1/openapi.json"
    }
    assert len(paths) == len(routes)


def test_docs_page_is_served_offline(client: FlaskClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and b"/api/v1/openapi.json" in page.data
    with client.get("/docs/static/swagger-ui-bundle.js") as asset:
        assert asset.status_code == 200 and asset.mimetype == "text/javascript"
