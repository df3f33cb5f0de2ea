"""Every route of the kiosk refuses anonymous callers (except the page, log-in and health)."""

from __future__ import annotations

from fastapi.routing import APIRoute
from starlette.routing import Mount

# The only routes an anonymous caller may use.
PUBLIC = {("GET", "/"), ("GET", "/api/health"), ("POST", "/api/session/login")}


def all_routes(routes) -> list[tuple[str, str]]:
    """(method, path) of every endpoint, descending into included routers."""
    found: list[tuple[str, str]] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            found += all_routes(inner.routes)
        elif isinstance(route, APIRoute):
            found += [(m, route.path) for m in sorted(route.methods)]
        elif isinstance(route, Mount):
            found.append(("GET", route.path + "/kiosk.js"))
    return found


def concrete(path: str) -> str:
    return path.replace("{lane}", "A")


def test_route_list_matches_the_openapi_schema(kiosk):
    app = kiosk.client.app
    routes = {(m, p) for m, p in all_routes(app.routes) if not p.startswith("/static")}
    schema = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}
    assert schema <= routes
    assert routes - schema == {("GET", "/")}  # the page itself is not an API operation
    assert len(routes) >= 14


def test_every_route_refuses_an_anonymous_caller(kiosk):
    app = kiosk.client.app
    checked = 0
    for method, path in all_routes(app.routes):
        if (method, path) in PUBLIC or path.startswith("/static"):
            continue
        r = kiosk.client.request(method, concrete(path), json={})
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.json()["error"] == "not_logged_in"
        checked += 1
    assert checked >= 11


def test_every_mutating_route_requires_a_role_and_csrf(kiosk):
    """A logged-in caller without the CSRF header is refused on every non-GET route."""
    kiosk.login("sup1")
    token = kiosk.client.headers.pop("X-CSRF-Token")
    app = kiosk.client.app
    mutating = [(m, p) for m, p in all_routes(app.routes)
                if m not in ("GET", "HEAD") and (m, p) not in PUBLIC]
    assert len(mutating) >= 7
    for method, path in mutating:
        r = kiosk.client.request(method, concrete(path), json={})
        assert r.status_code == 403 and r.json()["error"] == "csrf", (method, path)
    kiosk.client.headers["X-CSRF-Token"] = token

