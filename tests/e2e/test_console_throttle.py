"""The console's sign-in throttle across workers and restarts: a real server with two
workers, the sign-in form posted by a plain HTTP client on connections each worker serves
in turn (tests/server.py ``socket_owner`` says which). Failed sign-ins are counted in the
store, so the failures spread over both workers add up: the sixth attempt, with the right
password, is refused; a restart forgets none of them; and the window is measured on the
server's clock (the test moves it: STRONGROOM_TEST_CLOCK)."""

from __future__ import annotations

import http.client
import json
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from strongroom.clock import to_ms
from strongroom.console.auth import MAX_FAILURES, THROTTLE_WINDOW
from tests.e2e.test_connection_balance import wait_until_both_accept
from tests.e2e.test_key_lifecycle import worker_pids
from tests.server import ServerProcess, socket_owner

PASSWORD = "Corr3ct-Horse-Battery!"
CSRF = "t" * 43  # the console's CSRF check is a double submit: cookie and field agree
THROTTLED = "Too many failed sign-in attempts"
INCORRECT = "Your authentication information is incorrect"
SESSION_COOKIE = "__Host-strongroom-console"


def set_clock(path: Path, moment: datetime) -> None:
    scratch = path.with_name(path.name + ".new")
    scratch.write_text(str(to_ms(moment)))
    os.replace(scratch, path)  # a worker never reads half a time


def connection_to(server: ServerProcess, worker: int | None, workers: list[int]) -> Any:
    """A keep-alive connection served by ``worker`` (any when None): connections are
    opened (and each answered once, so it was accepted) until that worker holds one."""
    deadline = time.monotonic() + 60
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.request("GET", "/_strongroom/health")
        assert conn.getresponse().read() is not None
        owner = socket_owner(server.port, conn.sock.getsockname()[1], workers)
        if worker is None or owner == worker:
            return conn
        conn.close()
        assert time.monotonic() < deadline, f"worker {worker} took no connection"


def sign_in(conn: Any, account: str, user: str, password: str) -> tuple[int, str, str]:
    """Post the sign-in form: the status, the page and the Set-Cookie headers."""
    body = urlencode(
        {
            "csrf": CSRF,
            "next": "/console",
            "mode": "password",
            "account": account,
            "user": user,
            "password": password,
        }
    )
    conn.request(
        "POST",
        "/console/signin",
        body=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"__Host-strongroom-csrf={CSRF}",
            "User-Agent": "throttle-test",
        },
    )
    answer = conn.getresponse()
    page = answer.read().decode()
    return answer.status, page, " ".join(answer.headers.get_all("Set-Cookie") or [])


def console_logins(server: ServerProcess) -> list[dict[str, Any]]:
    found = server.client("cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "ConsoleLogin"}],
        StartTime=datetime(2000, 1, 1, tzinfo=UTC),
        EndTime=datetime(2100, 1, 1, tzinfo=UTC),
        MaxResults=50,
    )["Events"]
    return [json.loads(event["CloudTrailEvent"]) for event in found]


def test_failures_on_both_workers_add_up_and_survive_a_restart(
    new_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    clock = tmp_path / "clock"
    start = datetime.now(UTC).replace(microsecond=0)
    set_clock(clock, start)
    server = new_server(
        "--dev",
        "--data-dir",
        str(tmp_path / "data"),
        "--workers",
        "2",
        env={"STRONGROOM_TEST_CLOCK": str(clock)},
    )
    assert server.process is not None
    workers = worker_pids(server.process.pid)
    assert len(workers) == 2
    wait_until_both_accept(server.port, workers)
    iam = server.client("iam")
    account = server.client("sts").get_caller_identity()["Account"]
    user = f"u{uuid.uuid4().hex[:10]}"
    iam.create_user(UserName=user)
    iam.create_login_profile(UserName=user, Password=PASSWORD, PasswordResetRequired=False)

    # Five wrong passwords, taking turns between the two workers (3 on one, 2 on the other:
    # each worker alone saw fewer than the limit).
    served_by = []
    for attempt in range(MAX_FAILURES):
        worker = workers[attempt % 2]
        conn = connection_to(server, worker, workers)
        status, page, cookies = sign_in(conn, account, user, "wrong-" + PASSWORD)
        served_by.append(socket_owner(server.port, conn.sock.getsockname()[1], workers))
        conn.close()
        assert status == 401 and INCORRECT in page, page
        assert SESSION_COOKIE not in cookies
    assert served_by == [workers[i % 2] for i in range(MAX_FAILURES)]

    # The sixth, with the right password, on either worker: refused unchecked.
    for worker in workers:
        conn = connection_to(server, worker, workers)
        status, page, cookies = sign_in(conn, account, user, PASSWORD)
        conn.close()
        assert status == 401 and THROTTLED in page, page
        assert SESSION_COOKIE not in cookies
    assert iam.get_user(UserName=user)["User"].get("PasswordLastUsed") is None

    # Audited as before: the failures under the user, each refusal as a failed ConsoleLogin
    # whose user name is hidden, with the throttle's message.
    logins = console_logins(server)
    failed = [e for e in logins if e.get("errorMessage") == "Failed authentication"]
    refused = [e for e in logins if e.get("errorMessage") == THROTTLED]
    assert len(failed) == MAX_FAILURES
    assert all(e["userIdentity"]["arn"].endswith(f":user/{user}") for e in failed)
    assert len(refused) == 2
    for event in refused:
        assert event["eventSource"] == "signin.amazonaws.com"
        assert event["eventType"] == "AwsConsoleSignIn"
        assert event["responseElements"] == {"ConsoleLogin": "Failure"}
        assert event["userIdentity"]["accountId"] == account
        assert event["userIdentity"]["userName"] == "HIDDEN_DUE_TO_SECURITY_REASONS"
        assert event["sourceIPAddress"] == "127.0.0.1"
        assert event["userAgent"] == "throttle-test"

    # A restart forgets none of them.
    server.stop()
    server.start()
    conn = connection_to(server, None, worker_pids(server.process.pid))
    status, page, cookies = sign_in(conn, account, user, PASSWORD)
    conn.close()
    assert status == 401 and THROTTLED in page, page
    assert SESSION_COOKIE not in cookies
    assert len([e for e in console_logins(server) if e.get("errorMessage") == THROTTLED]) == 3

    # Once the server's clock has passed the window, the right password signs in.
    set_clock(clock, start + THROTTLE_WINDOW + timedelta(milliseconds=1))
    conn = connection_to(server, None, worker_pids(server.process.pid))
    status, page, cookies = sign_in(conn, account, user, PASSWORD)
    conn.close()
    assert status in (302, 303), page
    assert SESSION_COOKIE in cookies
    assert iam.get_user(UserName=user)["User"].get("PasswordLastUsed") is not None
