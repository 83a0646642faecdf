"""Sign-in (IAM user and console password; the dev credentials under ``--dev``), the
change-password page PasswordResetRequired leads to, and sign-out. Every attempt is
audited as CloudTrail's sign-in events; attempts are throttled per user and per address."""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from strongroom.console.backend import ApiError, Backend
from strongroom.console.web import (
    SESSION_COOKIE,
    Form,
    Refused,
    backend_of,
    clear_cookie,
    client_ip,
    principal_of,
    read_form,
    redirect,
    refused_page,
    render,
    set_cookie,
)
from strongroom.types import Principal

FAILED_AUTHENTICATION = "Failed authentication"  # CloudTrail's errorMessage for ConsoleLogin
MAX_FAILURES = 5  # per user (or access key) within THROTTLE_WINDOW
MAX_ADDRESS_FAILURES = 100  # per source address: a spray over many user names
THROTTLE_WINDOW = timedelta(minutes=15)
DEFAULT_SESSION_SECONDS = 12 * 3600


class Throttle:
    """Failed sign-ins remembered per key (the user, the source address): past
    MAX_FAILURES within THROTTLE_WINDOW, further attempts are refused unchecked."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        failures = self._failures.setdefault(key, deque())
        while failures and now - failures[0] > THROTTLE_WINDOW:
            failures.popleft()
        return failures

    def blocked(self, keys: list[str], now: datetime) -> bool:
        with self._lock:
            return any(
                len(self._recent(key, now))
                >= (MAX_ADDRESS_FAILURES if key.startswith("ip:") else MAX_FAILURES)
                for key in keys
            )

    def failed(self, keys: list[str], now: datetime) -> None:
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)
            if len(self._failures) > 100_000:  # bounded memory under a spray of names
                self._failures.clear()

    def succeeded(self, user_key: str) -> None:
        with self._lock:
            self._failures.pop(user_key, None)


def _throttle(request: Request) -> Throttle:
    throttle: Throttle = request.app.state.throttle
    return throttle


async def sign_in_page(request: Request) -> Response:
    if await principal_of(request) is not None:
        return redirect("/")
    backend = backend_of(request)
    return render(
        request,
        "signin.html",
        account=request.query_params.get("account") or backend.default_account,
        dev=backend.dev,
        next=_safe_next(request.query_params.get("next", "")),
    )


def _safe_next(target: str) -> str:
    """Only a console path: never an absolute URL (no open redirect)."""
    if target.startswith("/console") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console"


async def sign_in(request: Request) -> Response:
    try:
        form = await read_form(request)
    except Refused as refused:
        return refused_page(request, refused)
    backend = backend_of(request)
    mode = form.get("mode", "password")
    if mode == "keys" and backend.dev:
        return await _sign_in_with_keys(request, backend, form)
    account = form.get("account").strip()
    user = form.get("user").strip()
    password = form.get("password")
    now = backend.now()
    keys = [f"user:{account}:{user.lower()}", f"ip:{client_ip(request)}"]

    def again(error: str) -> Response:
        return render(
            request,
            "signin.html",
            401,
            account=account,
            user=user,
            dev=backend.dev,
            error=error,
            next=_safe_next(form.get("next")),
        )

    if _throttle(request).blocked(keys, now):
        await _record(request, None, account, "Too many failed sign-in attempts")
        return again("Too many failed sign-in attempts. Wait a few minutes and try again.")
    check = await backend.check_password(account, user, password)
    if not check.ok or check.principal is None:
        _throttle(request).failed(keys, now)
        await _record(request, check.principal, account, FAILED_AUTHENTICATION)
        return again("Your authentication information is incorrect. Please try again.")
    _throttle(request).succeeded(keys[0])
    await _record(request, check.principal, account, None)
    if check.reset_required:
        # No session yet: the user must choose a new password first.
        return render(
            request, "change_password.html", account=account, user=user, reset_required=True
        )
    return await _start(request, backend, check.principal, check.max_session_seconds, form)


async def _sign_in_with_keys(request: Request, backend: Backend, form: Form) -> Response:
    now = backend.now()
    access_key_id = form.get("access_key_id").strip()
    keys = [f"key:{access_key_id}", f"ip:{client_ip(request)}"]
    account = backend.default_account
    principal = None
    if not _throttle(request).blocked(keys, now):
        principal = await backend.check_access_key(access_key_id, form.get("secret_access_key"))
    if principal is None:
        _throttle(request).failed(keys, now)
        await _record(request, None, account, FAILED_AUTHENTICATION)
        return render(
            request,
            "signin.html",
            401,
            account=account,
            dev=True,
            error="Your authentication information is incorrect. Please try again.",
            next="/console",
        )
    await _record(request, principal, principal.account_id, None)
    return await _start(request, backend, principal, None, form)


async def _start(
    request: Request, backend: Backend, principal: Principal, seconds: int | None, form: Form
) -> Response:
    issued = await backend.start_session(principal, seconds or DEFAULT_SESSION_SECONDS)
    response = redirect(_safe_next(form.get("next")).removeprefix("/console") or "/")
    lifetime = int((issued.expires - backend.now()).total_seconds())
    set_cookie(response, SESSION_COOKIE, issued.cookie, max_age=max(lifetime, 0))
    return response


async def _record(
    request: Request, principal: Principal | None, account: str, error: str | None
) -> None:
    await backend_of(request).record_sign_in(
        "ConsoleLogin",
        principal=principal,
        account=account,
        error=error,
        source_ip=client_ip(request),
        user_agent=request.headers.get("user-agent", ""),
    )


async def change_password(request: Request) -> Response:
    """The new password, for a user whose PasswordResetRequired is set (no session yet:
    the current password signs the ChangePassword call) or a signed-in user."""
    try:
        form = await read_form(request)
    except Refused as refused:
        return refused_page(request, refused)
    backend = backend_of(request)
    account, user = form.get("account").strip(), form.get("user").strip()
    old, new = form.get("old_password"), form.get("new_password")

    def again(error: str, field: str) -> Response:
        return render(
            request,
            "change_password.html",
            400,
            account=account,
            user=user,
            reset_required=form.get("reset_required") == "1",
            errors={field: error},
        )

    if new != form.get("confirm_password"):
        return again("The passwords do not match.", "confirm_password")
    now = backend.now()
    keys = [f"user:{account}:{user.lower()}", f"ip:{client_ip(request)}"]
    if _throttle(request).blocked(keys, now):
        return again("Too many failed sign-in attempts. Wait a few minutes.", "old_password")
    check = await backend.check_password(account, user, old)
    if not check.ok or check.principal is None:
        _throttle(request).failed(keys, now)
        await _record(request, check.principal, account, FAILED_AUTHENTICATION)
        return again("Your authentication information is incorrect.", "old_password")
    try:
        await backend.call(
            check.principal,
            "iam",
            "ChangePassword",
            {"OldPassword": old, "NewPassword": new},
            client_ip(request),
        )
    except ApiError as error:
        return again(f"{error.code}: {error.message}", "new_password")
    return await _start(request, backend, check.principal, check.max_session_seconds, form)


async def sign_out(request: Request) -> Response:
    try:
        await read_form(request)
    except Refused as refused:
        return refused_page(request, refused)
    backend = backend_of(request)
    cookie = request.cookies.get(SESSION_COOKIE, "")
    principal = await principal_of(request)
    if principal is not None:
        await backend.end_session(cookie)
        await backend.record_sign_in(
            "ConsoleSignOut",
            principal=principal,
            account=principal.account_id,
            error=None,
            source_ip=client_ip(request),
            user_agent=request.headers.get("user-agent", ""),
        )
    response = redirect("/signin")
    clear_cookie(response, SESSION_COOKIE)
    return response
