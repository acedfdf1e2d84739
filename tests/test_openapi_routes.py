"""The OpenAPI document and the routes agree: every route+method the mount really serves is documented,
in the part of the document that belongs to the function serving it, and nothing else is.

Routes are read from each mounted Falcon app's own router (`falcon.inspect`), so a route added with
`app.add_route` shows up here whether or not anyone remembered the document.
"""

from __future__ import annotations

import re
from collections import defaultdict

import falcon.inspect
import jsonschema_rs
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_31

from deploy import mount, openapi
from tests.support import assert_canonical_error

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Falcon's `{name:int}` converters are routing detail; the document names the parameter only.
CONVERTER = re.compile(r"\{(\w+):[^}]*\}")
TEMPLATE_FIELD = re.compile(r"\{(\w+)\}")


def template(path: str) -> str:
    return CONVERTER.sub(r"{\1}", path)


def sample(path: str) -> str:
    """A concrete path the template matches, to ask the mount which app it reaches."""
    return TEMPLATE_FIELD.sub("x", path)


def served_operations(settings) -> tuple[dict[tuple[str, str], str], list[str]]:
    """{(METHOD, path): the file that must document it}, and the routes the mount can never reach."""
    served: dict[tuple[str, str], str] = {}
    unreachable: list[str] = []
    apps = mount.mounted_apps(settings)
    mounted = mount.prefix_mount(apps)
    for module, app, prefixes in apps:
        source = openapi.part_of(module).source
        info = falcon.inspect.inspect_app(app)
        routes = [(template(route.path), route) for route in info.routes]
        routes += [(static.prefix.rstrip("/") + "/{path}", None) for static in info.static_routes]
        for path, route in routes:
            if mounted.app_for(sample(path)) is not app:
                unreachable.append(f"{path} (in {module.__name__}, whose ROUTE_PREFIXES are {prefixes})")
                continue
            # Falcon's own responders (405 for other methods, OPTIONS with Allow) are not routes anyone wrote.
            methods = ["GET"] if route is None else [m.method for m in route.methods if not m.internal]
            for method in methods:
                served[(method, path)] = source
    return served, unreachable


def documented_operations(settings) -> dict[tuple[str, str], str]:
    documented: dict[tuple[str, str], str] = {}
    for module, _, _ in mount.mounted_apps(settings):
        part = openapi.part_of(module)
        for path, item in part.paths.items():
            for method in item:
                if method in HTTP_METHODS:
                    documented[(method.upper(), path)] = part.source
    return documented


def test_every_served_route_is_documented_and_nothing_else(settings, db):
    served, unreachable = served_operations(settings)
    documented = documented_operations(settings)
    problems = [f"{route} is added to an app but the mount never sends it there: add its prefix to that "
                f"function's ROUTE_PREFIXES" for route in unreachable]
    for (method, path), source in sorted(served.items(), key=lambda item: item[0][::-1]):
        if (method, path) not in documented:
            problems.append(f"{method} {path} is served but not in the OpenAPI document: add \"{path}\": "
                            f"{{\"{method.lower()}\": operation(...)}} to PATHS in {source}")
        elif documented[(method, path)] != source:
            problems.append(f"{method} {path} is served by the app of {source} but documented in "
                            f"{documented[(method, path)]}: move it to PATHS in {source}")
    for (method, path), source in sorted(documented.items(), key=lambda item: item[0][::-1]):
        if (method, path) not in served:
            problems.append(f"{method} {path} is in the OpenAPI document ({source}) but nothing serves it: "
                            f"remove it from PATHS in {source}, or add the route")
    assert not problems, "The OpenAPI document and the routes disagree:\n  " + "\n  ".join(problems)


def test_every_path_parameter_is_documented_with_the_routes_name(settings, db):
    problems = []
    document = openapi.compose(openapi.part_of(module) for module, _, _ in mount.mounted_apps(settings))
    for path, item in document["paths"].items():
        for method, operation in item.items():
            named = {p["name"] for p in [*item.get("parameters", []), *operation.get("parameters", [])]
                     if p.get("in") == "path"}
            if named != set(TEMPLATE_FIELD.findall(path)):
                problems.append(f"{method.upper()} {path} documents path parameters {sorted(named)}")
    assert not problems, "\n".join(problems)


def test_the_document_is_served_publicly_and_is_valid_openapi_3_1(mounted_client):
    response = mounted_client.simulate_get("/api/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json
    assert document["openapi"] == "3.1.0"
    errors = [f"{error.instance_path}: {error.message}"
              for error in jsonschema_rs.Draft202012Validator(OPENAPI_31).iter_errors(document)]
    assert not errors, "\n".join(errors[:20])


def test_every_ref_in_the_document_resolves(mounted_client):
    document = mounted_client.simulate_get("/api/openapi.json").json
    refs: dict[str, int] = defaultdict(int)

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs[node["$ref"]] += 1
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    missing = []
    for target in refs:
        node = document
        for key in target.removeprefix("#/").split("/"):
            node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            missing.append(target)
    assert not missing, missing


def test_the_document_errors_keep_the_one_shape(mounted_client):
    assert_canonical_error(mounted_client.simulate_post("/api/openapi.json"), 405, "method_not_allowed")


def test_two_parts_may_not_claim_one_path():
    part = openapi.Part("functions/a/openapi.py", {"/api/x": {}}, {})
    other = openapi.Part("functions/b/openapi.py", {"/api/x": {}}, {})
    with pytest.raises(ValueError, match="/api/x is documented twice"):
        openapi.compose([part, other])
