"""The built-in rotators against real databases: a private PostgreSQL, the MariaDB and a
private Redis, each rotated 20 times in a row per strategy, with login checks after every
rotation; the failure paths (database down, wrong master credentials, a password the
database rejects, a database that hangs); and TLS, on a private server of each engine with a
self-signed certificate (users it accepts over TLS only, a CA that did not sign it).

The rotators run as a rotation function runs (tests/rotators.py): a separate process in
the built-ins' code directory with a role's temporary credentials, talking to a real
server.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.databases import (
    MariaDB,
    PostgresInstance,
    RedisInstance,
    mariadb,
    mariadb_tls,
    new_password,
    postgres,
    redis_server,
    redis_tls_server,
    self_signed_certificate,
)
from tests.rotators import FunctionProcess, StepFailed, function_process, stages, value
from tests.server import ServerProcess

# fixtures used by name
__all__ = ["mariadb", "mariadb_tls", "postgres", "redis_server", "redis_tls_server"]

ROTATIONS = 20


@dataclass
class Target:
    """One database as the tests use it."""

    engine: str  # the `strongroom rotation enable` flag: postgresql | mysql | redis
    new_user: Callable[[], tuple[str, str]]
    master: tuple[str, str]
    secret: Callable[..., dict[str, Any]]
    can_login: Callable[[str, str], bool]
    can_use: Callable[[str, str, str], bool]  # (user, password, owner of the grants)

    def function(self, alternating: bool) -> str:
        strategy = "alternating-users" if alternating else "single-user"
        return f"strongroom-{self.engine}-{strategy}"


def _postgres_target(pg: PostgresInstance, *, tls: bool = False) -> Target:
    """The private PostgreSQL, or with ``tls`` its users that log in over TLS only."""

    def can_use(user: str, password: str, owner: str) -> bool:
        import pgdb

        try:
            conn = pg.connect(user, password, tls=tls)
        except pgdb.Error:
            return False
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT count(*) FROM {owner}_data")
            return True
        except pgdb.Error:
            return False
        finally:
            conn.close()

    return Target(
        "postgresql",
        pg.new_tls_user if tls else pg.new_user,
        (pg.master_user, pg.master_password),
        pg.secret,
        partial(pg.can_login, tls=tls),
        can_use,
    )


def _mariadb_target(db: MariaDB, *, tls: bool = False) -> Target:
    """The shared MariaDB, or with ``tls`` a private one whose users log in over TLS only."""

    def can_use(user: str, password: str, owner: str) -> bool:
        import pymysql

        try:
            conn = db.connect(user, password, tls=tls)
        except pymysql.MySQLError:
            return False
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM mysql.db")
            return True
        except pymysql.MySQLError:
            return False
        finally:
            conn.close()

    return Target(
        "mysql",
        db.new_tls_user if tls else db.new_user,
        db.new_user(master=True),
        db.secret,
        partial(db.can_login, tls=tls),
        can_use,
    )


def _redis_target(rd: RedisInstance) -> Target:
    def can_use(user: str, password: str, owner: str) -> bool:
        import redis

        conn = rd.connect(user, password)
        try:
            conn.set(f"{owner}:key", "v")  # its keys: allowed
        except redis.RedisError:
            return False
        try:
            conn.set("elsewhere:key", "v")  # anyone else's: refused, as for its source
            return False
        except redis.RedisError:
            return True
        finally:
            conn.close()

    return Target(
        "redis",
        rd.new_user,
        (rd.master_user, rd.master_password),
        rd.secret,
        rd.can_login,
        can_use,
    )


@pytest.fixture(params=["postgresql", "mysql", "redis"])
def target(request: pytest.FixtureRequest) -> Target:
    if request.param == "postgresql":
        return _postgres_target(request.getfixturevalue("postgres"))
    if request.param == "mysql":
        return _mariadb_target(request.getfixturevalue("mariadb"))
    return _redis_target(request.getfixturevalue("redis_server"))


@pytest.fixture
def start_function(
    server: ServerProcess, tmp_path: Path
) -> Iterator[Callable[..., FunctionProcess]]:
    started: list[Iterator[FunctionProcess]] = []

    def start(name: str, **kwargs: Any) -> FunctionProcess:
        generator = function_process(
            server, name, tmp_path / f"function-{len(started)}.log", **kwargs
        )
        started.append(generator)
        return next(generator)

    yield start
    for generator in started:
        next(generator, None)


def _create(sm: Any, value_: dict[str, Any] | str) -> str:
    text = value_ if isinstance(value_, str) else json.dumps(value_)
    return str(sm.create_secret(Name=f"builtin/{uuid.uuid4().hex[:12]}", SecretString=text)["ARN"])


def _secret_for(
    sm: Any, target: Target, alternating: bool, **extra: Any
) -> tuple[str, str | None, str, str]:
    """A database user and its secret (with a master secret when the strategy needs one;
    ``extra`` members in the user's secret): (secret ARN, master ARN, user, password)."""
    user, password = target.new_user()
    master_arn = None
    if alternating or target.engine == "redis":
        master_arn = _create(sm, target.secret(*target.master))
        extra["masterarn"] = master_arn
    return _create(sm, target.secret(user, password, **extra)), master_arn, user, password


def _assert_no_password_in(text: str, passwords: list[str]) -> None:
    for password in passwords:
        assert password not in text, "a password reached a log"


# --- 20 rotations in a row, per engine and strategy --------------------------------------------


@pytest.mark.parametrize("alternating", [False, True], ids=["single-user", "alternating-users"])
def test_twenty_rotations_in_a_row(
    target: Target,
    alternating: bool,
    sm: Any,
    server: ServerProcess,
    start_function: Callable[..., FunctionProcess],
) -> None:
    arn, master_arn, user, password = _secret_for(sm, target, alternating)
    function = start_function(
        target.function(alternating), master_arns=[master_arn] if master_arn else None
    )
    passwords = [password]
    history = [value(sm, arn)]
    for _ in range(ROTATIONS):
        function.rotate(sm, arn)
        current, previous = value(sm, arn), value(sm, arn, "AWSPREVIOUS")
        assert previous == history[-1]
        assert current["password"] != previous["password"]
        passwords.append(current["password"])
        assert target.can_login(current["username"], current["password"])
        assert target.can_use(current["username"], current["password"], user)
        if alternating:
            # Each rotation changes the other user: both log in until the next rotation,
            # and the password that user had two rotations ago no longer works.
            assert {current["username"], previous["username"]} == {user, user + "_clone"}
            assert target.can_login(previous["username"], previous["password"])
            if len(history) >= 2:
                assert not target.can_login(history[-2]["username"], history[-2]["password"])
        else:
            assert current["username"] == previous["username"] == user
            assert not target.can_login(previous["username"], previous["password"])
        # Only the password (and for alternating users the name) changed.
        kept = {k: v for k, v in current.items() if k not in ("username", "password")}
        assert kept == {k: v for k, v in previous.items() if k not in ("username", "password")}
        history.append(current)
    labels = sorted(label for names in stages(sm, arn).values() for label in names)
    assert labels == ["AWSCURRENT", "AWSPREVIOUS"]
    _assert_no_password_in(function.log() + server.log(), passwords)


def test_random_value_rotator_keeps_the_other_members(
    sm: Any, start_function: Callable[..., FunctionProcess]
) -> None:
    arn = _create(sm, {"client_id": "abc", "password": "first-key"})
    plain = _create(sm, "first-token")
    function = start_function(
        "strongroom-random-value", environment={"PASSWORD_LENGTH": "40", "EXCLUDE_PUNCTUATION": "1"}
    )
    seen = {"first-key"}
    for _ in range(ROTATIONS):
        function.rotate(sm, arn)
        current = value(sm, arn)
        assert current["client_id"] == "abc"
        assert len(current["password"]) == 40 and current["password"].isalnum()
        assert current["password"] not in seen
        seen.add(current["password"])
    function.rotate(sm, plain)
    token = sm.get_secret_value(SecretId=plain)["SecretString"]
    assert token != "first-token" and len(token) == 40
    assert sm.get_secret_value(SecretId=plain, VersionStage="AWSPREVIOUS")["SecretString"] == (
        "first-token"
    )


# --- failure paths: AWSCURRENT keeps working, AWSPENDING stays for the retry ------------------


def _assert_failed_and_resumable(
    sm: Any, arn: str, before: dict[str, Any], failure: StepFailed
) -> None:
    """After a failed setSecret: AWSCURRENT is the value it was and AWSPENDING is left on
    the rotation's version (with its value), as AWS's templates leave it."""
    assert failure.step == "setSecret"
    assert value(sm, arn) == before
    assert stages(sm, arn)[failure.token] == ["AWSPENDING"]
    pending = json.loads(
        sm.get_secret_value(SecretId=arn, VersionId=failure.token, VersionStage="AWSPENDING")[
            "SecretString"
        ]
    )
    assert pending["password"] != before["password"]
    assert pending["password"] not in failure.message


def test_database_down_fails_the_step_and_the_rotation_resumes(
    postgres: PostgresInstance, sm: Any, start_function: Callable[..., FunctionProcess]
) -> None:
    target = _postgres_target(postgres)
    arn, _, user, password = _secret_for(sm, target, alternating=False)
    function = start_function("strongroom-postgresql-single-user")
    before = value(sm, arn)
    postgres.stop()
    try:
        with pytest.raises(StepFailed) as failed:
            function.rotate(sm, arn)
    finally:
        postgres.start()
    assert "Unable to log into database" in failed.value.message
    _assert_failed_and_resumable(sm, arn, before, failed.value)
    assert target.can_login(user, password)  # AWSCURRENT still works
    pending = sm.get_secret_value(SecretId=arn, VersionId=failed.value.token)["SecretString"]

    # The next attempt resumes the same version: its AWSPENDING value becomes current.
    assert function.rotate(sm, arn) == failed.value.token
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == pending
    assert target.can_login(user, json.loads(pending)["password"])
    assert not target.can_login(user, password)


def test_wrong_master_credentials_leave_current_working(
    target: Target, sm: Any, start_function: Callable[..., FunctionProcess]
) -> None:
    user, password = target.new_user()
    master_user, _ = target.master
    master_arn = _create(sm, target.secret(master_user, new_password()))  # not its password
    arn = _create(sm, target.secret(user, password, masterarn=master_arn))
    function = start_function(target.function(alternating=True), master_arns=[master_arn])
    before = value(sm, arn)
    with pytest.raises(StepFailed) as failed:
        function.rotate(sm, arn)
    assert failed.value.message.startswith(
        "Unable to log into database using credentials in master secret"
    )
    _assert_failed_and_resumable(sm, arn, before, failed.value)
    assert target.can_login(user, password)
    assert not target.can_login(user + "_clone", _pending_password(sm, arn, failed.value.token))

    # With the master secret corrected, the retry finishes the same rotation.
    sm.put_secret_value(SecretId=master_arn, SecretString=json.dumps(target.secret(*target.master)))
    assert function.rotate(sm, arn) == failed.value.token
    current = value(sm, arn)
    assert current["username"] == user + "_clone"
    assert target.can_login(current["username"], current["password"])
    assert target.can_login(user, password)


def _pending_password(sm: Any, arn: str, token: str) -> str:
    text = sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
    return str(json.loads(text["SecretString"])["password"])


def test_a_password_the_database_rejects_fails_without_revealing_it(
    postgres: PostgresInstance, sm: Any, start_function: Callable[..., FunctionProcess]
) -> None:
    target = _postgres_target(postgres)
    arn, _, user, password = _secret_for(sm, target, alternating=False)
    # passwordcheck (loaded by the private server) refuses passwords under 8 characters.
    function = start_function(
        "strongroom-postgresql-single-user", environment={"PASSWORD_LENGTH": "6"}
    )
    before = value(sm, arn)
    with pytest.raises(StepFailed) as failed:
        function.rotate(sm, arn)
    assert failed.value.error_type == "RotationError"
    assert "refused" in failed.value.message and "password is too short" in failed.value.message
    _assert_failed_and_resumable(sm, arn, before, failed.value)
    assert target.can_login(user, password)
    pending = _pending_password(sm, arn, failed.value.token)
    assert not target.can_login(user, pending)
    _assert_no_password_in(function.log(), [pending, password])


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers (a database that hangs)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.mark.parametrize(
    "function_name,engine",
    [
        ("strongroom-postgresql-single-user", "postgres"),
        ("strongroom-mysql-single-user", "mysql"),
        ("strongroom-redis-single-user", "redis"),
    ],
)
def test_a_database_that_hangs_fails_the_step_instead_of_hanging(
    function_name: str,
    engine: str,
    silent_server: int,
    sm: Any,
    start_function: Callable[..., FunctionProcess],
) -> None:
    secret = {
        "engine": engine,
        "host": "127.0.0.1",
        "port": silent_server,
        "username": "app",
        "password": new_password(),
        "ssl": False,
    }
    arn = _create(sm, secret)
    # A login is bounded by CONNECT_TIMEOUT (the connection) and STATEMENT_TIMEOUT (each
    # read and write, the handshake's included).
    function = start_function(
        function_name, environment={"CONNECT_TIMEOUT": "1", "STATEMENT_TIMEOUT": "1"}
    )
    with pytest.raises(StepFailed) as failed:
        function.rotate(sm, arn)
    assert failed.value.step == "setSecret"
    assert value(sm, arn) == secret
    assert stages(sm, arn)[failed.value.token] == ["AWSPENDING"]


# --- TLS when the secret says so -----------------------------------------------------------------


@pytest.mark.parametrize("alternating", [False, True], ids=["single-user", "alternating-users"])
def test_tls_when_the_secret_says_so(
    postgres: PostgresInstance,
    alternating: bool,
    sm: Any,
    start_function: Callable[..., FunctionProcess],
) -> None:
    """A user the server accepts over TLS only: ``"ssl": true`` rotates it, verifying the
    server's certificate against SSL_CA_FILE; ``"ssl": false`` cannot log in and fails."""
    user, password = postgres.new_tls_user()
    assert not postgres.can_login(user, password) and postgres.can_login(user, password, tls=True)
    extra: dict[str, Any] = {"ssl": True}
    masters: list[str] | None = None
    if alternating:
        extra["masterarn"] = _create(sm, postgres.master_secret())
        masters = [extra["masterarn"]]
    arn = _create(sm, postgres.secret(user, password, **extra))
    plain = _create(sm, postgres.secret(user, password, ssl=False))
    name = f"strongroom-postgresql-{'alternating-users' if alternating else 'single-user'}"
    function = start_function(
        name, master_arns=masters, environment={"SSL_CA_FILE": str(postgres.ca_file)}
    )
    for _ in range(2):
        function.rotate(sm, arn)
        current = value(sm, arn)
        assert postgres.can_login(current["username"], current["password"], tls=True)
        assert not postgres.can_login(current["username"], current["password"])

    before = value(sm, plain)
    with pytest.raises(StepFailed) as failed:
        function.rotate(sm, plain)
    assert failed.value.step == "setSecret"
    assert value(sm, plain) == before


def test_tls_verifies_the_server_certificate(
    postgres: PostgresInstance, sm: Any, start_function: Callable[..., FunctionProcess]
) -> None:
    """Without the CA that signed the server's certificate, ``"ssl": true`` refuses the
    server (no fallback to plain text)."""
    user, password = postgres.new_user()
    arn = _create(sm, postgres.secret(user, password, ssl=True))
    function = start_function("strongroom-postgresql-single-user")  # the system's CAs
    with pytest.raises(StepFailed) as failed:
        function.rotate(sm, arn)
    assert failed.value.step == "setSecret"
    assert postgres.can_login(user, password)


# --- TLS for every engine: private servers with a self-signed certificate ------------------


@dataclass
class TlsTarget:
    """A private server with TLS: ``target`` logs in over TLS (verifying the server against
    ``ca_file``) and its ``new_user`` is accepted over TLS only (MariaDB: ``REQUIRE SSL``;
    Redis: the server has no plain-text port)."""

    target: Target
    ca_file: Path
    can_login_plain: Callable[[str, str], bool]
    ssl_type: Callable[[str], str] | None = None  # MariaDB: mysql.user.ssl_type of a user


@pytest.fixture(params=["postgresql", "mysql", "redis"])
def tls_target(request: pytest.FixtureRequest) -> TlsTarget:
    if request.param == "postgresql":
        pg: PostgresInstance = request.getfixturevalue("postgres")
        return TlsTarget(
            _postgres_target(pg, tls=True), pg.ca_file, partial(pg.can_login, tls=False)
        )
    if request.param == "mysql":
        db: MariaDB = request.getfixturevalue("mariadb_tls")
        assert db.ca_file is not None
        return TlsTarget(
            _mariadb_target(db, tls=True),
            db.ca_file,
            partial(db.can_login, tls=False),
            db.ssl_type,
        )
    rd: RedisInstance = request.getfixturevalue("redis_tls_server")
    return TlsTarget(_redis_target(rd), rd.ca_file, partial(rd.can_login, tls=False))


def _start_tls_function(
    start: Callable[..., FunctionProcess],
    target: Target,
    alternating: bool,
    master_arn: str | None,
    ca_file: Path,
) -> FunctionProcess:
    return start(
        target.function(alternating),
        master_arns=[master_arn] if master_arn else None,
        environment={"SSL_CA_FILE": str(ca_file)},
    )


@pytest.mark.parametrize("alternating", [False, True], ids=["single-user", "alternating-users"])
def test_tls_only_user_rotates_over_verified_tls(
    tls_target: TlsTarget,
    alternating: bool,
    sm: Any,
    server: ServerProcess,
    start_function: Callable[..., FunctionProcess],
) -> None:
    """``"ssl": true`` rotates a user the server accepts over TLS only, verifying the
    server's certificate against SSL_CA_FILE; each new password works over TLS only, the
    replaced one no longer works, and the labels move as for any rotation."""
    target = tls_target.target
    arn, master_arn, user, password = _secret_for(sm, target, alternating, ssl=True)
    assert target.can_login(user, password)
    assert not tls_target.can_login_plain(user, password)
    function = _start_tls_function(
        start_function, target, alternating, master_arn, tls_target.ca_file
    )
    history, versions = [value(sm, arn)], []
    for _ in range(2):  # alternating users: the clone, then the user again
        versions.append(function.rotate(sm, arn))
        current, previous = value(sm, arn), value(sm, arn, "AWSPREVIOUS")
        assert previous == history[-1] and current["password"] != previous["password"]
        assert current["ssl"] is True
        assert target.can_login(current["username"], current["password"])
        assert not tls_target.can_login_plain(current["username"], current["password"])
        assert target.can_use(current["username"], current["password"], user)
        if not alternating:
            assert not target.can_login(previous["username"], previous["password"])
        history.append(current)
    assert not target.can_login(user, password)  # replaced, by either strategy
    labels = stages(sm, arn)
    assert labels[versions[-1]] == ["AWSCURRENT"] and labels[versions[-2]] == ["AWSPREVIOUS"]
    assert sorted(label for names in labels.values() for label in names) == [
        "AWSCURRENT",
        "AWSPREVIOUS",
    ]
    if alternating:
        assert {history[1]["username"], history[2]["username"]} == {user, user + "_clone"}
        if tls_target.ssl_type is not None:
            # The clone inherits the source's REQUIRE SSL (mysql.user.ssl_type).
            assert tls_target.ssl_type(user + "_clone") == tls_target.ssl_type(user) == "ANY"
    passwords = [password] + [h["password"] for h in history[1:]]
    _assert_no_password_in(function.log() + server.log(), passwords)


def _assert_tls_failure_changed_nothing(
    sm: Any,
    target: Target,
    arn: str,
    user: str,
    password: str,
    before: tuple[dict[str, Any], dict[str, list[str]]],
    failure: StepFailed,
) -> None:
    """The step failed before the database changed: AWSCURRENT is the value and version it
    was (AWSPENDING left for a retry), the password still works, the pending one does not."""
    assert "Unable to log into database" in failure.message
    _assert_failed_and_resumable(sm, arn, before[0], failure)
    labels = stages(sm, arn)
    del labels[failure.token]
    assert labels == before[1]
    assert target.can_login(user, password)
    assert not target.can_login(user, _pending_password(sm, arn, failure.token))


def test_tls_only_user_with_ssl_false_fails_and_changes_nothing(
    tls_target: TlsTarget, sm: Any, start_function: Callable[..., FunctionProcess]
) -> None:
    """``"ssl": false`` connects in plain text, never TLS (PyMySQL 1.2 would use TLS when
    the server offers it): the server refuses the user, the rotation fails at setSecret and
    neither the secret nor the database changes."""
    target = tls_target.target
    arn, master_arn, user, password = _secret_for(sm, target, False, ssl=False)
    function = _start_tls_function(start_function, target, False, master_arn, tls_target.ca_file)
    before = (value(sm, arn), stages(sm, arn))
    with pytest.raises(StepFailed) as failed:
        function.rotate(sm, arn)
    _assert_tls_failure_changed_nothing(sm, target, arn, user, password, before, failed.value)


def test_tls_refuses_a_server_certificate_ssl_ca_file_did_not_sign(
    tls_target: TlsTarget,
    sm: Any,
    tmp_path: Path,
    start_function: Callable[..., FunctionProcess],
) -> None:
    """``"ssl": true`` verifies the server's certificate, not only encrypts: against a CA
    that did not sign it, the login fails (no fallback to plain text) and nothing changes."""
    other_ca = tmp_path / "other-ca.crt"
    other_ca.write_bytes(self_signed_certificate("not the server's CA").pem)
    target = tls_target.target
    arn, master_arn, user, password = _secret_for(sm, target, False, ssl=True)
    function = _start_tls_function(start_function, target, False, master_arn, other_ca)
    before = (value(sm, arn), stages(sm, arn))
    with pytest.raises(StepFailed) as failed:
        function.rotate(sm, arn)
    _assert_tls_failure_changed_nothing(sm, target, arn, user, password, before, failed.value)
    assert "certificate verify failed" in function.log().lower()


def test_tls_checks_the_server_name(
    tls_target: TlsTarget, sm: Any, start_function: Callable[..., FunctionProcess]
) -> None:
    """The server's certificate is for 127.0.0.1: a secret that names the same server
    ``localhost`` fails (the host name is checked, not only the signature)."""
    target = tls_target.target
    arn, master_arn, user, password = _secret_for(sm, target, False, ssl=True, host="localhost")
    function = _start_tls_function(start_function, target, False, master_arn, tls_target.ca_file)
    before = (value(sm, arn), stages(sm, arn))
    with pytest.raises(StepFailed) as failed:
        function.rotate(sm, arn)
    _assert_tls_failure_changed_nothing(sm, target, arn, user, password, before, failed.value)
    log = function.log().lower()  # Python's ssl module, or libpq (PostgreSQL)
    assert "hostname mismatch" in log or 'does not match host name "localhost"' in log
