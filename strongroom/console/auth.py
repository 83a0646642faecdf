"""Sign-in (IAM user and console password; the dev credentials under ``--dev``), the
change-password page PasswordResetRequired leads to, and sign-out. Every attempt is
audited as CloudTrail's sign-in events; attempts are throttled per user and per address."""

from __future__ import annotations

from datetime import datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from strongroom.console.backend import ApiError, Backend, SignInAttempt, SignInFailures
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
    """Failed sign-ins counted per key (the user or access key, the source address) by
    every worker and node together (the backend's :class:`SignInFailures`, in the store):
    once a key has MAX_FAILURES (an address MAX_ADDRESS_FAILURES) within THROTTLE_WINDOW,
    further attempts are refused unchecked. An attempt counts as a failure from the moment
    it is let through until it succeeds, so attempts made at once are counted too."""

    def __init__(self, failures: SignInFailures) -> None:
        self._failures = failures

    @staticmethod
    def limit(key: str) -> int:
        return MAX_ADDRESS_FAILURES if key.startswith("ip:") else MAX_FAILURES

    async def attempt(self, keys: list[str], now: datetime) -> SignInAttempt | None:
        """The attempt, counted as a failure of each key; None if a key is throttled."""
        limits = {key: self.limit(key) for key in keys}
        return await self._failures.begin_sign_in(limits, now, THROTTLE_WINDOW)

    async def succeeded(self, attempt: SignInAttempt, clear: str | None = None) -> None:
        """``attempt`` was no failure; ``clear``: a key whose failures are forgotten too
        (the user's, once signed in)."""
        await self._failures.end_sign_in(attempt, clear)


def _throttle(request: Request) -> Throttle:
    return Throttle(backend_of(request))


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

    throttle = _throttle(request)
    attempt = await throttle.attempt(keys, now)
    if attempt is None:
        await _record(request, None, account, "Too many failed sign-in attempts")
        return again("Too many failed sign-in attempts. Wait a few minutes and try again.")
    check = await backend.check_password(account, user, password)
    if not check.ok or check.principal is None:  # the attempt stays counted as a failure
        await _record(request, check.principal, account, FAILED_AUTHENTICATION)
        return again("Your authentication information is incorrect. Please try again.")
    await throttle.succeeded(attempt, clear=keys[0])
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
    throttle = _throttle(request)
    attempt = await throttle.attempt(keys, now)
    if attempt is not None:
        principal = await backend.check_access_key(access_key_id, form.get("secret_access_key"))
    if attempt is None or principal is None:  # a failed attempt stays counted
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
    await throttle.succeeded(attempt)
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
    throttle = _throttle(request)
    attempt = await throttle.attempt(keys, now)
    if attempt is None:
        return again("Too many failed sign-in attempts. Wait a few minutes.", "old_password")
    check = await backend.check_password(account, user, old)
    if not check.ok or check.principal is None:  # the attempt stays counted as a failure
        await _record(request, check.principal, account, FAILED_AUTHENTICATION)
        return again("Your authentication information is incorrect.", "old_password")
    await throttle.succeeded(attempt)
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
