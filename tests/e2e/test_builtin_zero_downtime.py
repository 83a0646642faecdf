"""Zero downtime, measured: an application that reads its credentials through
``aws-secretsmanager-caching`` (refreshing them when a login fails) and opens a new
database connection every 50 ms while the secret is rotated 20 times.

- Alternating users: 0 failed logins. The user being changed is never the one AWSCURRENT
  names, and the one the cache may still hold (now AWSPREVIOUS) keeps working until the
  next rotation, which comes after the cache's refresh interval (here 1 s; the test waits
  until the application has logged in with the new AWSCURRENT before rotating again, as a
  schedule of hours or days does for a cache of an hour).
- Single user: logins can fail, and only in one window: from setSecret (the database now
  has the AWSPENDING password) until the application holds the new AWSCURRENT value, that
  is, after finishSecret moved the label and the application's refresh that follows its
  next failure. The test counts them and checks every failure falls in that window.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aws_secretsmanager_caching import SecretCache, SecretCacheConfig

from tests.databases import mariadb, postgres, redis_server
from tests.e2e.test_builtin_rotators import (
    Target,
    _secret_for,
    start_function,
    target,
)
from tests.rotators import STEPS, FunctionProcess
from tests.server import ServerProcess

__all__ = ["mariadb", "postgres", "redis_server", "start_function", "target"]

ROTATIONS = 20
PERIOD = 0.05  # a new connection every 50 ms


class Application(threading.Thread):
    """Logs in every 50 ms with the credentials its cache holds; on a failure it counts it
    and refreshes the cache (the documented pattern for rotated database credentials)."""

    def __init__(self, cache: SecretCache, secret_id: str, target: Target) -> None:
        super().__init__(daemon=True)
        self.cache, self.secret_id, self.target = cache, secret_id, target
        self.stopping = threading.Event()
        self.logins = 0
        self.failures: list[tuple[int, str]] = []  # (rotation in progress, password tried)
        self.rotation = 0  # set by the test: the rotation running (0: none yet)
        self.holding = threading.Condition()
        self.password = ""  # the password of the last login that worked

    def run(self) -> None:
        while not self.stopping.is_set():
            secret = json.loads(self.cache.get_secret_string(self.secret_id))
            self.logins += 1
            if self.target.can_login(secret["username"], secret["password"]):
                with self.holding:
                    self.password = secret["password"]
                    self.holding.notify_all()
            else:
                self.failures.append((self.rotation, secret["password"]))
                self.cache.refresh_secret_now(self.secret_id)
            self.stopping.wait(PERIOD)

    def wait_for(self, password: str) -> None:
        """Until the application logged in with ``password`` (its cache's periodic refresh
        picked it up): the next rotation comes after the cache's refresh interval, as
        rotation schedules (hours at least) and caches (an hour by default) have it."""
        with self.holding:
            if not self.holding.wait_for(lambda: self.password == password, timeout=300):
                raise AssertionError("the application never logged in with AWSCURRENT")


def _measure(
    target: Target,
    alternating: bool,
    sm: Any,
    server: ServerProcess,
    start_function: Callable[..., FunctionProcess],
) -> tuple[Application, list[dict[str, str]]]:
    arn, master_arn, _, _ = _secret_for(sm, target, alternating)
    function = start_function(
        target.function(alternating), master_arns=[master_arn] if master_arn else None
    )
    # The cache refreshes every second, and at once after a failed login.
    cache = SecretCache(SecretCacheConfig(secret_refresh_interval=1), client=server.client())
    app = Application(cache, arn, target)
    windows: list[dict[str, str]] = []  # per rotation: the password replaced and its successor
    app.start()
    try:
        for rotation in range(1, ROTATIONS + 1):
            old = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])["password"]
            app.rotation = rotation
            token = str(uuid.uuid4())
            for step in STEPS:
                function.step(step, arn, token)
            sm.update_secret_version_stage(
                SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=token
            )
            new = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])["password"]
            windows.append({"old": old, "new": new})
            app.wait_for(new)
    finally:
        app.stopping.set()
        app.join()
    return app, windows


@pytest.mark.parametrize("target", ["postgresql", "mysql", "redis"], indirect=True)
def test_alternating_users_rotations_fail_no_login(
    target: Target,
    sm: Any,
    server: ServerProcess,
    start_function: Callable[..., FunctionProcess],
    record_property: Callable[[str, object], None],
) -> None:
    app, _ = _measure(target, True, sm, server, start_function)
    record_property("logins", app.logins)
    record_property("failed_logins", len(app.failures))
    print(f"\n{target.engine} alternating users: {app.logins} logins, {len(app.failures)} failed")
    assert app.logins > ROTATIONS
    assert app.failures == []


@pytest.mark.parametrize("target", ["postgresql"], indirect=True)
def test_single_user_rotations_fail_logins_only_in_the_window(
    target: Target,
    sm: Any,
    server: ServerProcess,
    start_function: Callable[..., FunctionProcess],
    record_property: Callable[[str, object], None],
) -> None:
    app, windows = _measure(target, False, sm, server, start_function)
    record_property("logins", app.logins)
    record_property("failed_logins", len(app.failures))
    print(f"\n{target.engine} single user: {app.logins} logins, {len(app.failures)} failed")
    assert app.logins > ROTATIONS
    # Every failure is a login with the password a rotation in progress was replacing (the
    # database already had its successor), never with a current one after the refresh.
    for rotation, password in app.failures:
        assert rotation >= 1
        assert password == windows[rotation - 1]["old"]
