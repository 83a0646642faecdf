"""The console's request plumbing: templates, security headers, cookies, CSRF tokens, form
parsing, the signed-in user and its calls through the pipeline."""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from strongroom.console.backend import ApiError, Backend, Output
from strongroom.types import Principal

PREFIX = "/console"
SESSION_COOKIE = "__Host-strongroom-console"
CSRF_COOKIE = "__Host-strongroom-csrf"
CSRF_FIELD = "csrf"
MAX_FORM_BYTES = 256 * 1024  # a secret value is at most 64 KiB; a policy 20 KiB

_HERE = Path(__file__).parent
templates = Environment(
    loader=FileSystemLoader(_HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)

# No inline script or style anywhere: everything is served from /console/static.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    "cache-control": "no-store",
}


class SecurityHeaders:
    """Adds the security headers to every console response (pages and assets)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.decode("latin-1").lower() not in SECURITY_HEADERS
                ]
                headers.extend((k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items())
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, send_with_headers)


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return "—" if value in (None, "") else str(value)


def _day(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d")
    return "—" if value in (None, "") else str(value)


def _pretty_json(value: Any) -> str:
    if isinstance(value, str):
        if value.startswith("%7B"):  # IAM's Query answers carry policies URL-encoded
            value = unquote(value)
        try:
            value = json.loads(value)
        except ValueError:
            return str(value)
    return json.dumps(value, indent=2, sort_keys=True, default=str)


templates.filters["when"] = _when
templates.filters["day"] = _day
templates.filters["pretty_json"] = _pretty_json
templates.filters["q"] = lambda value: quote(str(value), safe="")
templates.globals["PREFIX"] = PREFIX


def url(path: str, **query: Any) -> str:
    """A console URL; ``query`` members that are None are left out."""
    kept = {k: v for k, v in query.items() if v not in (None, "")}
    return f"{PREFIX}{path}" + (f"?{urlencode(kept)}" if kept else "")


def client_ip(request: Request) -> str:
    # The socket's peer: forwarding headers are never trusted (DESIGN.md).
    return request.client.host if request.client else "unknown"


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
    # __Host- cookies: Secure, Path=/, no Domain. Browsers keep Secure cookies of
    # http://localhost and 127.0.0.1 too, so a loopback server works without TLS.
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="strict"
    )


def clear_cookie(response: Response, name: str) -> None:
    response.delete_cookie(name, path="/", secure=True, httponly=True, samesite="strict")


@dataclass
class Form:
    """A submitted urlencoded form (repeated fields kept in order)."""

    pairs: list[tuple[str, str]] = field(default_factory=list)

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.pairs:
            if key == name:
                return value
        return default

    def getlist(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]

    def as_dict(self) -> dict[str, str]:
        return {key: value for key, value in self.pairs}


class Refused(Exception):
    """A console request refused before anything ran (bad CSRF token, oversized form)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_form(request: Request) -> Form:
    """The posted form, after checking its CSRF token against the cookie."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise Refused(413, "The form is too large.")
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type != "application/x-www-form-urlencoded":
        raise Refused(415, "Forms are posted as application/x-www-form-urlencoded.")
    form = Form(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = form.get(CSRF_FIELD)
    if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise Refused(403, "The form's security token is missing or wrong; reload the page.")
    return form


def csrf_token(request: Request) -> str:
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not token:
        token = secrets.token_urlsafe(32)
        request.state.new_csrf = token
    return str(token)


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    body = templates.get_template(template).render(
        request=request, csrf=csrf_token(request), url=url, **context
    )
    response = HTMLResponse(body, status_code=status)
    new = getattr(request.state, "new_csrf", None)
    if new:
        set_cookie(response, CSRF_COOKIE, new)
    return response


def redirect(path: str, **query: Any) -> RedirectResponse:
    return RedirectResponse(url(path, **query), status_code=303)


@dataclass
class Console:
    """One signed-in request: who, and how to call AWS operations as them."""

    request: Request
    backend: Backend
    principal: Principal

    @property
    def user_name(self) -> str:
        return self.principal.arn.rsplit("/", 1)[-1]

    async def call(self, service: str, operation: str, **params: Any) -> Output:
        kept = {k: v for k, v in params.items() if v is not None}
        return await self.backend.call(
            self.principal, service, operation, kept, client_ip(self.request)
        )

    async def attempt(self, service: str, operation: str, **params: Any) -> Output | ApiError:
        """The call's output, or its error (to show on the page) instead of raising."""
        try:
            return await self.call(service, operation, **params)
        except ApiError as error:
            return error

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return render(
            self.request,
            template,
            status,
            principal=self.principal,
            user_name=self.user_name,
            account=self.principal.account_id,
            region=self.backend.region,
            **context,
        )


Page = Callable[[Console], Awaitable[Response]]
Action = Callable[[Console, Form], Awaitable[Response]]


def backend_of(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


async def principal_of(request: Request) -> Principal | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    return await backend_of(request).session(cookie)


def refused_page(request: Request, refused: Refused) -> HTMLResponse:
    return render(request, "refused.html", refused.status, message=refused.message)


def page(handler: Page) -> Callable[[Request], Awaitable[Response]]:
    """A GET page for a signed-in user; others go to the sign-in page."""

    async def endpoint(request: Request) -> Response:
        principal = await principal_of(request)
        if principal is None:
            return redirect("/signin", next=request.url.path)
        return await handler(Console(request, backend_of(request), principal))

    return endpoint


def action(handler: Action) -> Callable[[Request], Awaitable[Response]]:
    """A form POST for a signed-in user: CSRF-checked before anything runs."""

    async def endpoint(request: Request) -> Response:
        try:
            form = await read_form(request)
        except Refused as refused:
            return refused_page(request, refused)
        principal = await principal_of(request)
        if principal is None:
            return redirect("/signin")
        return await handler(Console(request, backend_of(request), principal), form)

    return endpoint


def tags_from(form: Form) -> list[dict[str, str]]:
    """The Key/Value rows of a tag editor (tag_key / tag_value fields), blanks dropped."""
    keys, values = form.getlist("tag_key"), form.getlist("tag_value")
    return [
        {"Key": k.strip(), "Value": v}
        for k, v in zip(keys, values + [""] * (len(keys) - len(values)), strict=False)
        if k.strip()
    ]


def pairs_from(form: Form, key: str, value: str) -> list[tuple[str, str]]:
    keys, values = form.getlist(key), form.getlist(value)
    return [(k, v) for k, v in zip(keys, values, strict=False) if k.strip()]


def query_params(request: Request) -> Mapping[str, str]:
    return request.query_params
