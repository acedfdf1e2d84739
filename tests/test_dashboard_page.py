"""The dashboard function: the page and its assets, their types and caching, and nothing else."""

from __future__ import annotations

import re

import pytest
from falcon import testing

import functions.dashboard
from functions.dashboard.bundle import Bundle
from tests.support import assert_canonical_error


@pytest.fixture
def page_client(settings):
    return testing.TestClient(functions.dashboard.create_app(settings))


def asset_paths(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/assets/[^"]+)"', html)


def test_the_page_is_served_at_the_root_and_revalidated_on_each_visit(page_client):
    response = page_client.simulate_get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert "<title>OpenCode Dashboard</title>" in response.text
    assert "{{ASSET_BASE}}" not in response.text
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"


def test_the_page_names_only_assets_it_serves_under_this_versions_path(page_client):
    html = page_client.simulate_get("/").text
    version = Bundle.load(functions.dashboard.PAGE_DIRECTORY).version
    paths = asset_paths(html)
    assert {f"/assets/{version}/app.js", f"/assets/{version}/styles.css"} <= set(paths)
    for path in paths:
        response = page_client.simulate_get(path)
        assert response.status_code == 200, path
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_no_asset_comes_from_another_origin(page_client):
    html = page_client.simulate_get("/").text
    assert not re.search(r'(?:href|src)="(?:https?:)?//', html)
    for path in asset_paths(html):
        assert "//cdn" not in page_client.simulate_get(path).text


@pytest.mark.parametrize(("name", "content_type"), [
    ("app.js", "text/javascript; charset=utf-8"),
    ("styles.css", "text/css; charset=utf-8"),
    ("icon.svg", "image/svg+xml"),
])
def test_each_asset_has_its_content_type(page_client, name, content_type):
    response = page_client.simulate_get(f"/assets/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["cache-control"] == "no-cache"  # no version in the URL: revalidate


def modules_reached(page_client, version: str, entries: tuple[str, ...]) -> set[str]:
    """The modules the entries import, directly or not, each fetched as the browser would."""
    seen, queue = set(), list(entries)
    while queue:
        name = queue.pop()
        seen.add(name)
        response = page_client.simulate_get(f"/assets/{version}/{name}")
        assert response.status_code == 200, name
        for imported in re.findall(r'from "\./([^"]+)"', response.text):
            if imported not in seen:
                queue.append(imported)
    return seen


def test_every_module_the_page_imports_is_served(page_client):
    """The modules import each other by relative path: each one must resolve under the same base."""
    version = Bundle.load(functions.dashboard.PAGE_DIRECTORY).version
    seen = modules_reached(page_client, version, ("app.js",))
    assert {"api.js", "live.js", "state.js", "board.js", "tasks.js", "agents.js"} <= seen


def test_the_page_preloads_every_module_it_imports_at_once(page_client):
    """No waterfall: the page names every module its two entry modules reach, early.js's first."""
    html = page_client.simulate_get("/").text
    version = Bundle.load(functions.dashboard.PAGE_DIRECTORY).version
    preloaded = re.findall(rf'<link rel="modulepreload" href="/assets/{version}/([^"]+)">', html)
    entries = re.findall(rf'<script type="module"[^>]* src="/assets/{version}/([^"]+)">', html)
    assert entries == ["early.js", "app.js"]
    assert len(preloaded) == len(set(preloaded))
    assert set(preloaded) == modules_reached(page_client, version, ("early.js", "app.js")) - {"early.js", "app.js"}
    early = modules_reached(page_client, version, ("early.js",)) - {"early.js"}
    assert set(preloaded[:len(early)]) == early


def test_an_unchanged_asset_answers_304(page_client):
    first = page_client.simulate_get("/assets/app.js")
    etag = first.headers["etag"]
    again = page_client.simulate_get("/assets/app.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.text == ""
    page = page_client.simulate_get("/")
    assert page_client.simulate_get("/", headers={"If-None-Match": f'W/{page.headers["etag"]}'}).status_code == 304
    assert page_client.simulate_get("/assets/app.js", headers={"If-None-Match": '"other"'}).status_code == 200


def test_a_module_of_another_release_is_not_served(page_client):
    """A page that loaded just before a restart would run a mix of two releases' modules: it gets a 404
    for the other release's instead (a reload brings this one's page, which names this one's)."""
    version = Bundle.load(functions.dashboard.PAGE_DIRECTORY).version
    assert page_client.simulate_get(f"/assets/{version}/app.js").status_code == 200
    other = "0123456789ab" if version != "0123456789ab" else "ba9876543210"
    response = page_client.simulate_get(f"/assets/{other}/app.js")
    assert_canonical_error(response, 404, "not_found")


def test_text_is_sent_gzip_compressed_to_a_browser_that_takes_it(page_client):
    import gzip

    version = Bundle.load(functions.dashboard.PAGE_DIRECTORY).version
    for path in ("/", f"/assets/{version}/app.js", f"/assets/{version}/styles.css"):
        plain = page_client.simulate_get(path)
        packed = page_client.simulate_get(path, headers={"Accept-Encoding": "br, gzip, deflate"})
        assert "content-encoding" not in plain.headers
        assert packed.headers["content-encoding"] == "gzip"
        assert gzip.decompress(packed.content) == plain.content
        assert len(packed.content) < len(plain.content) * 0.5, path
        assert plain.headers["vary"] == packed.headers["vary"] == "Accept-Encoding"
        assert packed.headers["content-type"] == plain.headers["content-type"]
        assert packed.headers["cache-control"] == plain.headers["cache-control"]
        # Each representation has its own validator, and a 304 for the one the client holds.
        assert packed.headers["etag"] != plain.headers["etag"]
        again = page_client.simulate_get(path, headers={"Accept-Encoding": "gzip",
                                                        "If-None-Match": packed.headers["etag"]})
        assert again.status_code == 304 and again.headers["etag"] == packed.headers["etag"]
        assert "content-encoding" not in again.headers
        refused = page_client.simulate_get(path, headers={"Accept-Encoding": "gzip;q=0, identity"})
        assert "content-encoding" not in refused.headers and refused.content == plain.content


def test_what_compresses_badly_is_sent_as_it_is(tmp_path):
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "tiny.js").write_text("x;")
    (tmp_path / "assets" / "icon.png").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "index.html").write_text("{{ASSET_BASE}}")
    bundle = Bundle.load(tmp_path)
    assert bundle.assets["tiny.js"].gzipped is None  # bigger compressed
    assert bundle.assets["icon.png"].gzipped is None  # not text


def test_head_answers_like_get_without_a_body(page_client):
    response = page_client.simulate_head("/assets/styles.css")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/css; charset=utf-8"
    assert response.text == ""


def test_a_deep_link_to_an_agent_serves_the_page(page_client):
    response = page_client.simulate_get("/agents/openclaw-main", query_string="task=t1")
    assert response.status_code == 200
    assert "<title>OpenCode Dashboard</title>" in response.text


@pytest.mark.parametrize("path", [
    "/assets/../__init__.py", "/assets/%2e%2e/__init__.py", "/assets/..%2f__init__.py", "/assets/../../README.md",
    "/assets//etc/passwd", "/assets/%2fetc%2fpasswd", "/assets/nothing.js", "/assets/", "/assets",
    "/assets/app.js/x", "/assets/..", "/index.html", "/agents/a/b",
])
def test_nothing_outside_the_assets_is_served(page_client, path):
    assert_canonical_error(page_client.simulate_get(path), 404)


def test_only_page_files_are_served_from_the_folder(tmp_path):
    (tmp_path / "assets" / ".git").mkdir(parents=True)
    (tmp_path / "index.html").write_text('<script src="{{ASSET_BASE}}/app.js"></script>')
    (tmp_path / "assets" / "app.js").write_text("export {};")
    (tmp_path / "assets" / "notes.txt").write_text("private")
    (tmp_path / "assets" / ".git" / "config.js").write_text("private")
    (tmp_path / "assets" / ".env.js").write_text("private")
    bundle = Bundle.load(tmp_path)
    assert set(bundle.assets) == {"app.js"}
    assert f"/assets/{bundle.version}/app.js" in bundle.index.body.decode()


def test_the_version_changes_when_an_asset_does(tmp_path):
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("{{ASSET_BASE}}")
    (tmp_path / "assets" / "app.js").write_text("export const a = 1;")
    before = Bundle.load(tmp_path).version
    (tmp_path / "assets" / "app.js").write_text("export const a = 2;")
    assert Bundle.load(tmp_path).version != before


def test_the_mount_serves_the_page_and_keeps_the_json_404_for_unknown_paths(mounted_client):
    assert mounted_client.simulate_get("/").headers["content-type"] == "text/html; charset=utf-8"
    assert mounted_client.simulate_get("/assets/app.js").status_code == 200
    for path in ("/api/nothing-here", "/api", "/favicon.ico", "/dashboard", "//api/agents", "/assetsx"):
        assert_canonical_error(mounted_client.simulate_get(path), 404, "not_found")


def test_api_routes_still_need_their_credentials_behind_the_page(mounted_client):
    assert_canonical_error(mounted_client.simulate_get("/api/agents"), 401, "unauthorized")
