"""What the console is handed by the server: a way to run AWS operations through the
request pipeline as a signed-in principal, and the sign-in primitives (password check,
sessions, the sign-in audit record, the failed sign-ins every worker counts). The console
never reads the store itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from strongroom.types import Principal

Output = dict[str, Any]


class ApiError(Exception):
    """An AWS operation's error as a client sees it: code and message (never a secret)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class PasswordCheck:
    """The outcome of checking a user's console password. ``principal`` is the user's
    (for the audit record) whenever the user exists, even when the password is wrong."""

    ok: bool
    principal: Principal | None
    reset_required: bool = False
    max_session_seconds: int | None = None


@dataclass(frozen=True)
class IssuedConsoleSession:
    cookie: str  # the opaque value of the session cookie (a bearer credential)
    expires: datetime


SignInEvent = Literal["ConsoleLogin", "ConsoleSignOut"]


@dataclass(frozen=True)
class SignInAttempt:
    """A sign-in attempt the throttle let through. It counts as a failure of each of its
    keys from the moment it was let through (so attempts made at once, on any worker, are
    counted together) until it is released as not a failure."""

    failures: tuple[int, ...]  # the failure records it added (opaque to the console)


class SignInFailures(Protocol):
    """Failed sign-ins per throttle key, shared by every worker and node and kept across
    restarts (:mod:`strongroom.server.sign_in_failures`)."""

    async def begin_sign_in(
        self, limits: Mapping[str, int], now: datetime, window: timedelta
    ) -> SignInAttempt | None:
        """In one step for every worker: forget failures older than ``window``; None if a
        key of ``limits`` has as many failures within ``window`` as its limit; else count
        the attempt as a failure of each key, at ``now``, and return it."""
        ...

    async def end_sign_in(self, attempt: SignInAttempt, clear: str | None) -> None:
        """``attempt`` was not a failure: it no longer counts; and forget every failure of
        the key ``clear`` (a signed-in user's), if given."""
        ...


class Backend(SignInFailures, Protocol):
    """Served by :mod:`strongroom.server.console_backend`."""

    dev: bool  # the server runs with --dev: the dev credentials sign in too

    @property
    def default_account(self) -> str:
        """The account the sign-in form proposes."""
        ...

    region: str  # the region console requests are made in

    async def call(
        self,
        principal: Principal,
        service: str,
        operation: str,
        params: Mapping[str, Any],
        source_ip: str,
    ) -> Output:
        """Run ``operation`` through the request pipeline as ``principal`` (authorized by
        its policies, audited with its identity); its output, or :class:`ApiError`."""
        ...

    async def check_password(self, account: str, user: str, password: str) -> PasswordCheck: ...

    async def check_access_key(self, access_key_id: str, secret: str) -> Principal | None:
        """The dev sign-in: the long-term key's user, if the secret matches."""
        ...

    async def start_session(self, principal: Principal, seconds: int) -> IssuedConsoleSession: ...

    async def session(self, cookie: str) -> Principal | None:
        """The principal of a live session cookie, or None."""
        ...

    async def end_session(self, cookie: str) -> None: ...

    async def record_sign_in(
        self,
        event: SignInEvent,
        *,
        principal: Principal | None,
        account: str,
        error: str | None,
        source_ip: str,
        user_agent: str,
    ) -> None:
        """Write the sign-in (or sign-out) audit record; raises if it cannot be written."""
        ...

    def now(self) -> datetime: ...
