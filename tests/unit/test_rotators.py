"""The built-in rotators' pure parts: names, configuration, TLS choice, redaction, Redis ACL
rules, the registry, and the CLI shortcut's schedule parsing."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import click
import pytest

from strongroom.cli.rotation import rotation_policy, schedule, window
from strongroom.rotators import BUILTINS, BY_ENGINE, CODE_DIRECTORY, redis_rotation
from strongroom.rotators import rotation_steps as steps
from strongroom.rotators.redis_rotation import _PASSWORD_RULE, _RULE


def test_alternate_username_swaps_and_refuses_too_long() -> None:
    assert steps.alternate_username("app", 63) == "app_clone"
    assert steps.alternate_username("app_clone", 63) == "app"
    assert steps.alternate_username("x" * 26, 32) == "x" * 26 + "_clone"
    with pytest.raises(steps.RotationError, match="exceed 32 characters"):
        steps.alternate_username("x" * 27, 32)


@pytest.mark.parametrize(
    "secret,expected",
    [
        ({}, (True, True)),
        ({"ssl": True}, (True, False)),
        ({"ssl": False}, (False, False)),
        ({"ssl": "TRUE"}, (True, False)),
        ({"ssl": "false"}, (False, False)),
        ({"ssl": "maybe"}, (True, True)),
        ({"ssl": 1}, (True, True)),
    ],
)
def test_ssl_config_reads_the_secret_as_aws_templates_do(
    secret: dict[str, object], expected: tuple[bool, bool]
) -> None:
    assert steps.ssl_config(secret) == expected


def test_password_rules_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PASSWORD_LENGTH", "EXCLUDE_CHARACTERS", "EXCLUDE_NUMBERS"):
        monkeypatch.delenv(name, raising=False)
    assert steps.password_rules() == {
        "PasswordLength": 32,
        "ExcludeCharacters": ":/@\"'\\",
        "ExcludeNumbers": False,
        "ExcludePunctuation": False,
        "ExcludeUppercase": False,
        "ExcludeLowercase": False,
        "RequireEachIncludedType": True,
    }
    monkeypatch.setenv("PASSWORD_LENGTH", "20")
    monkeypatch.setenv("EXCLUDE_CHARACTERS", "xyz")
    monkeypatch.setenv("EXCLUDE_NUMBERS", "yes")
    rules = steps.password_rules()
    assert rules["PasswordLength"] == 20
    assert rules["ExcludeCharacters"] == "xyz"
    assert rules["ExcludeNumbers"] is True
    monkeypatch.setenv("PASSWORD_LENGTH", "twenty")
    with pytest.raises(steps.RotationError):
        steps.password_rules()


def test_timeouts_must_be_positive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONNECT_TIMEOUT", raising=False)
    assert steps.connect_timeout() == 5
    monkeypatch.setenv("STATEMENT_TIMEOUT", "0")
    with pytest.raises(steps.RotationError):
        steps.statement_timeout()
    monkeypatch.setenv("STATEMENT_TIMEOUT", "2.5")
    assert steps.statement_timeout() == 2.5


def test_redact_removes_every_password() -> None:
    message = "ERR Error in ACL SETUSER modifier '>s3cret': bad; old s3cret, new n3w"
    assert steps.redact(message, "s3cret", "n3w", "") == (
        "ERR Error in ACL SETUSER modifier '>***': bad; old ***, new ***"
    )


def test_redis_rules_keep_selectors_and_drop_passwords() -> None:
    line = "user app on sanitize-payload #5e88489 >x ~app:* resetchannels &news +@read (~k +get)"
    words = _RULE.findall(line)
    kept = [rule for rule in words[2:] if not _PASSWORD_RULE.match(rule)]
    assert kept == [
        "on",
        "sanitize-payload",
        "~app:*",
        "resetchannels",
        "&news",
        "+@read",
        "(~k +get)",
    ]


def test_redis_tls_verifies_the_certificate_and_the_host_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever redis-py's defaults (5.x does not check the host name), ``"ssl": true``
    asks for both checks."""
    asked: dict[str, Any] = {}

    class Refused:
        def __init__(self, **options: Any) -> None:
            asked.update(options)

        def ping(self) -> None:
            raise redis_rotation.redis.ConnectionError("refused")

        def close(self) -> None:
            pass

    monkeypatch.setattr(redis_rotation.redis, "Redis", Refused)
    monkeypatch.setenv("SSL_CA_FILE", "/etc/strongroom/ca.pem")
    secret = {"engine": "redis", "host": "cache", "username": "u", "password": "p", "ssl": True}
    assert redis_rotation.DATABASE.login(secret) is None
    assert asked["ssl"] is True and asked["ssl_cert_reqs"] == "required"
    assert asked["ssl_ca_certs"] == "/etc/strongroom/ca.pem"
    assert asked["ssl_check_hostname"] is True


def test_every_builtin_names_a_handler_that_exists() -> None:
    for function in BUILTINS.values():
        module, name = function.handler.rsplit(".", 1)
        source = (CODE_DIRECTORY / f"{module}.py").read_text()
        defined = {
            node.name for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)
        }
        assert name in defined, function
    for strategies in BY_ENGINE.values():
        assert set(strategies.values()) <= set(BUILTINS)


def test_rotators_import_nothing_of_strongroom() -> None:
    """They run as top-level modules of the function's code directory."""
    for path in Path(CODE_DIRECTORY).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("strongroom"), path
            if isinstance(node, ast.Import):
                assert not any(alias.name.startswith("strongroom") for alias in node.names)


def test_schedule_and_window_parsing() -> None:
    assert schedule("30d") == "rate(30 days)"
    assert schedule("1d") == "rate(1 day)"
    assert schedule("4h") == "rate(4 hours)"
    assert window("4h") == "4h"
    for bad in ("30", "d", "3w", "-1d"):
        with pytest.raises(click.BadParameter):
            schedule(bad)
    with pytest.raises(click.BadParameter):
        window("1d")


def test_the_builtins_role_policy_is_scoped_to_builtin_rotated_secrets() -> None:
    policy = rotation_policy("111122223333")
    rotate = policy["Statement"][0]
    assert rotate["Resource"] == "arn:aws:secretsmanager:*:111122223333:secret:*"
    # Exactly the built-ins (not any function a user names strongroom-something).
    assert rotate["Condition"] == {
        "StringLike": {
            "secretsmanager:resource/AllowRotationLambdaArn": [
                f"arn:aws:lambda:*:111122223333:function:{name}" for name in sorted(BUILTINS)
            ]
        }
    }
    assert policy["Statement"][1]["Action"] == "secretsmanager:GetRandomPassword"


class _Cursor:
    def __init__(self, cipher: str) -> None:
        self.cipher = cipher
        self.statements: list[str] = []

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def execute(self, statement: str) -> None:
        self.statements.append(statement)

    def fetchone(self) -> tuple[str, str]:
        return ("Ssl_cipher", self.cipher)


class _Connection:
    def __init__(self, cipher: str) -> None:
        self.cursor_ = _Cursor(cipher)
        self.closed = False

    def cursor(self) -> _Cursor:
        return self.cursor_

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("cipher", ["", "TLS_AES_256_GCM_SHA384"])
def test_a_mysql_tls_login_that_the_server_did_not_encrypt_is_refused(
    monkeypatch: pytest.MonkeyPatch, cipher: str
) -> None:
    """Whatever PyMySQL does when the server offers no TLS, a login asked over TLS is kept
    only if the server says the session is encrypted (its Ssl_cipher)."""
    from strongroom.rotators import mysql_rotation

    made: list[_Connection] = []

    def connect(**kwargs: Any) -> _Connection:
        assert "ssl" in kwargs and "ssl_disabled" not in kwargs
        made.append(_Connection(cipher))
        return made[-1]

    monkeypatch.setattr(mysql_rotation.pymysql, "connect", connect)
    secret = {"engine": "mysql", "host": "db", "username": "app", "password": "pw", "ssl": True}
    conn = mysql_rotation.MySQL().login(secret)
    (only,) = made  # "ssl": true: no plain-text fallback
    assert only.cursor_.statements == ["SHOW SESSION STATUS LIKE 'Ssl_cipher'"]
    if cipher:
        assert conn is only and not only.closed
    else:
        assert conn is None and only.closed
