"""The mount: every function behind one WSGI app, and the errors nobody's route produced."""

from __future__ import annotations

import falcon
import pytest
from falcon import testing

from shared.store.migrations import LATEST_VERSION
from shared.web.webapp import function_app
from tests.databases import ON_POSTGRES
from tests.processes import free_port
from tests.support import AGENT, DASHBOARD, assert_canonical_error, event


def test_the_mount_routes_to_the_events_function(mounted_client):
    posted = mounted_client.simulate_post("/api/events", json=event("todo.updated", {
        "sessionID": "s", "todos": [{"id": "1", "content": "mounted", "status": "pending"}]}), headers=AGENT)
    assert posted.status_code == 202
    todos = mounted_client.simulate_get("/api/todos", headers=DASHBOARD).json["todos"]
    assert [t["content"] for t in todos] == ["mounted"]


@pytest.mark.parametrize("path", ["/api", "/api/nothing-here", "/api/todosx", "/favicon.ico"])
def test_an_unknown_path_is_a_json_404(mounted_client, path):
    error = assert_canonical_error(mounted_client.simulate_get(path), 404, "not_found")
    assert path in error["message"]


def test_a_wrong_method_is_a_json_405(mounted_client):
    assert_canonical_error(mounted_client.simulate_delete("/api/events", headers=AGENT), 405,
                           "method_not_allowed")


def test_errors_are_json_whatever_the_client_accepts(mounted_client):
    response = mounted_client.simulate_get("/api/nope", headers={"Accept": "application/xml"})
    assert_canonical_error(response, 404)


def test_health_is_public_and_reports_the_database(mounted_client):
    response = mounted_client.simulate_get("/api/health")
    assert response.status_code == 200
    body = response.json
    assert body["database"].pop("latency_ms") >= 0
    assert body == {"status": "ok", "database": {"ok": True, "schema_version": LATEST_VERSION},
                    "feed": {"rows": 0, "oldest_id": None, "newest_id": None},
                    "linear": {"configured": False, "webhook": False},
                    "temporal": {"configured": False, "reachable": False}}


def test_health_reports_temporal_unreachable_but_stays_200(tmp_path, settings, db):
    from deploy import mount
    from tests.processes import free_port

    down = settings.with_overrides(temporal_address=f"127.0.0.1:{free_port()}")
    response = testing.TestClient(mount.create_app(down)).simulate_get("/api/health")
    assert response.status_code == 200
    temporal = response.json["temporal"]
    assert (temporal["configured"], temporal["reachable"]) == (True, False)
    assert "unavailable" in temporal["error"]


def test_health_is_503_when_the_schema_is_missing(settings, empty_database_url):
    from deploy import mount

    empty = settings.with_overrides(database_url=empty_database_url)
    response = testing.TestClient(mount.create_app(empty)).simulate_get("/api/health")
    assert response.status_code == 503
    assert response.json["database"]["ok"] is False


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL only: a database server that does not answer")
def test_a_postgresql_server_that_does_not_answer_is_503(settings):
    from deploy import mount

    gone = settings.with_overrides(database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/dashboard")
    client = testing.TestClient(mount.create_app(gone))
    assert_canonical_error(client.simulate_get("/api/todos", headers=DASHBOARD), 503, "database_unavailable")
    assert_canonical_error(client.simulate_post("/api/events", json=event("agent.heartbeat", {"id": "a"}),
                                                headers=AGENT), 503, "database_unavailable")
    health = client.simulate_get("/api/health")
    assert health.status_code == 503 and health.json["database"]["ok"] is False


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL only: its text cannot hold NUL, SQLite's can")
def test_text_with_a_nul_character_is_422_on_postgresql_and_writes_nothing(mounted_client):
    from shared.store.models import InboundEvent

    posted = mounted_client.simulate_post("/api/events", json=event("agent.heartbeat", {"id": "a"}, id="evt\u0000"),
                                          headers=AGENT)
    assert_canonical_error(posted, 422, "unprocessable")
    assert InboundEvent.select().count() == 0
    read = mounted_client.simulate_get("/api/agent/a%00b/tasks", headers=DASHBOARD)
    assert_canonical_error(read, 422, "unprocessable")


class Exploding:
    auth = "public"

    def on_get(self, req, resp):
        raise RuntimeError("token=super-secret-value in a traceback")


def test_an_uncaught_exception_is_a_bare_500_with_nothing_leaked(settings, db, caplog):
    app = function_app(settings)
    app.add_route("/api/explode", Exploding())
    response = testing.TestClient(app).simulate_get("/api/explode")
    assert_canonical_error(response, 500, "internal_error")
    assert "super-secret" not in response.text and "Traceback" not in response.text
    assert "RuntimeError" in caplog.text  # the operator still sees what happened


def test_a_database_that_cannot_be_used_is_503(settings, db):
    class Locked:
        auth = "public"

        def on_get(self, req, resp):
            import peewee
            raise peewee.OperationalError("database is locked")

    app = function_app(settings)
    app.add_route("/api/locked", Locked())
    response = testing.TestClient(app).simulate_get("/api/locked")
    assert_canonical_error(response, 503, "database_unavailable")
    assert response.headers["retry-after"] == "1"


def test_falcon_errors_raised_by_resources_keep_their_status(settings, db):
    class Teapot:
        auth = "public"

        def on_get(self, req, resp):
            raise falcon.HTTPForbidden(description="no tea for you")

    app = function_app(settings)
    app.add_route("/api/tea", Teapot())
    error = assert_canonical_error(testing.TestClient(app).simulate_get("/api/tea"), 403, "forbidden")
    assert error["message"] == "no tea for you"
