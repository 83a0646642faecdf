"""The web console's ASGI app, mounted by the server at ``/console``: server-rendered
pages (Jinja2) over a :class:`~strongroom.console.backend.Backend`, assets served from
``static/`` (nothing from a CDN), every response with the security headers."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from strongroom.console import audit_pages, auth, iam_pages, kms_pages, secret_pages, wizard
from strongroom.console.backend import ApiError, Backend
from strongroom.console.web import SecurityHeaders, render

_STATIC = Path(__file__).parent / "static"


def _post(path: str, endpoint: object) -> Route:
    return Route(path, endpoint, methods=["POST"])  # type: ignore[arg-type]


def _get(path: str, endpoint: object) -> Route:
    return Route(path, endpoint, methods=["GET"])  # type: ignore[arg-type]


async def _not_found(request: Request, _exc: Exception) -> Response:
    return render(request, "refused.html", 404, message="There is no such console page.")


async def _unavailable(request: Request, exc: Exception) -> Response:
    """An AWS error no page handles (the server is sealed, say): its code and message."""
    assert isinstance(exc, ApiError)
    return render(request, "refused.html", exc.status, message=f"{exc.code}: {exc.message}")


def create_console(backend: Backend) -> ASGIApp:
    s = secret_pages
    routes = [
        _get("/", s.secrets_list),
        _get("/signin", auth.sign_in_page),
        _post("/signin", auth.sign_in),
        _post("/signout", auth.sign_out),
        _post("/password", auth.change_password),
        _get("/secrets/new", wizard.new_secret),
        _post("/secrets/new", wizard.new_secret_step),
        _get("/secret", s.secret_detail),
        _post("/secret/retrieve", s.retrieve),
        _post("/secret/policy", s.put_policy),
        _post("/secret/{name}", s.secret_action),
        _get("/keys", kms_pages.keys_list),
        _post("/keys", kms_pages.create_key),
        _get("/key", kms_pages.key_detail),
        _post("/key/enable", kms_pages.enable_key),
        _post("/key/disable", kms_pages.disable_key),
        _post("/key/schedule-deletion", kms_pages.schedule_deletion),
        _post("/key/cancel-deletion", kms_pages.cancel_deletion),
        _post("/key/alias", kms_pages.add_alias),
        _post("/key/delete-alias", kms_pages.delete_alias),
        _get("/iam", iam_pages.iam_home),
        _post("/iam", iam_pages.iam_create),
        _get("/iam/user", iam_pages.iam_user),
        _get("/iam/group", iam_pages.iam_group),
        _get("/iam/role", iam_pages.iam_role),
        _get("/iam/policy", iam_pages.iam_policy),
        _post("/iam/act", iam_pages.iam_act),
        _get("/events", audit_pages.events),
        _get("/functions", audit_pages.functions),
        Mount("/static", StaticFiles(directory=_STATIC)),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={404: _not_found, 405: _not_found, ApiError: _unavailable},
    )
    app.state.backend = backend
    return SecurityHeaders(app)
