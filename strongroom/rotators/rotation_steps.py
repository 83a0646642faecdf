"""The four-step rotation protocol the built-in rotators share, as AWS's rotation function
templates run it: createSecret, setSecret, testSecret, finishSecret, each idempotent, each
checking first that the version it is handed is staged AWSPENDING.

This module is loaded two ways: as ``strongroom.rotators.rotation_steps`` (tests, type
checks) and, in the function runtime, as the top-level module ``rotation_steps`` of the
function's code directory, exactly as Lambda loads a handler. It imports nothing of
Strongroom: only the standard library and boto3, which every Lambda Python runtime has.

Two strategies, both AWS's:

- single user: the user changes its own password; the old one stops working at once.
- alternating users: a second user ``<username>_clone`` (and back) is created by the master
  user named by ``masterarn``, with the grants of the first; each rotation changes the
  password of the user that is not current, so AWSCURRENT and AWSPREVIOUS both log in
  until the next rotation.

Nothing here logs or raises a password: errors from a database are passed through
:func:`redact` before they reach a log line or an exception.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from botocore.config import Config

CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"
CLONE_SUFFIX = "_clone"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
# AWS's templates exclude these from generated passwords: they break connection strings.
DEFAULT_EXCLUDE_CHARACTERS = ":/@\"'\\"

logger = logging.getLogger("strongroom.rotators")
logger.setLevel(logging.INFO)
if not logging.getLogger().handlers:
    # Lambda's runtime gives the root logger a handler; where none is set, the step's lines
    # still reach the function's log (its standard output).
    _handler = logging.StreamHandler(sys.stdout)
    _handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    logger.addHandler(_handler)
    logger.propagate = False

Secret = dict[str, Any]  # a secret's JSON value (engine, host, port, username, password, ...)
Client = Any  # a boto3 Secrets Manager client


class RotationError(ValueError):
    """A step cannot go on; the function fails and the rotation stays where it is, as AWS's
    templates leave it (their ValueError)."""


def redact(text: object, *secrets: object) -> str:
    """``text`` with every non-empty secret in it replaced (a driver's error may echo a
    statement or an argument)."""
    out = str(text)
    for secret in secrets:
        if isinstance(secret, str) and secret:
            out = out.replace(secret, "***")
    return out


# --- configuration: the function's environment variables ---------------------------------


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("true", "1", "y", "yes")


def env_seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    try:
        seconds = float(value) if value is not None else default
    except ValueError:
        raise RotationError(f"{name} must be a number of seconds") from None
    if seconds <= 0:
        raise RotationError(f"{name} must be a positive number of seconds")
    return seconds


def connect_timeout() -> float:
    """Seconds a login may take (``CONNECT_TIMEOUT``, default 5)."""
    return env_seconds("CONNECT_TIMEOUT", 5)


def statement_timeout() -> float:
    """Seconds one statement may take (``STATEMENT_TIMEOUT``, default 10)."""
    return env_seconds("STATEMENT_TIMEOUT", 10)


def password_rules() -> dict[str, Any]:
    """GetRandomPassword's parameters from the function's environment, named as AWS's
    templates name them."""
    try:
        length = int(os.environ.get("PASSWORD_LENGTH", "32"))
    except ValueError:
        raise RotationError("PASSWORD_LENGTH must be a whole number") from None
    return {
        "PasswordLength": length,
        "ExcludeCharacters": os.environ.get("EXCLUDE_CHARACTERS", DEFAULT_EXCLUDE_CHARACTERS),
        "ExcludeNumbers": env_bool("EXCLUDE_NUMBERS", False),
        "ExcludePunctuation": env_bool("EXCLUDE_PUNCTUATION", False),
        "ExcludeUppercase": env_bool("EXCLUDE_UPPERCASE", False),
        "ExcludeLowercase": env_bool("EXCLUDE_LOWERCASE", False),
        "RequireEachIncludedType": env_bool("REQUIRE_EACH_INCLUDED_TYPE", True),
    }


def random_password(client: Client) -> str:
    return str(client.get_random_password(**password_rules())["RandomPassword"])


def ssl_config(secret: Mapping[str, Any]) -> tuple[bool, bool]:
    """``(use TLS, fall back to plain on failure)`` from the secret's ``ssl``, as AWS's
    templates read it: absent or unreadable -> try TLS, then plain; a boolean or "true" /
    "false" -> exactly that, no fallback."""
    value = secret.get("ssl")
    if isinstance(value, bool):
        return value, False
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true", False
    return True, True


def ca_file() -> str | None:
    """The CA bundle a TLS connection verifies the server against (``SSL_CA_FILE``; the
    system's bundle otherwise)."""
    configured = os.environ.get("SSL_CA_FILE")
    if configured:
        return configured
    for candidate in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/cert.pem"):
        if os.path.exists(candidate):
            return candidate
    return None


def tls_context() -> ssl.SSLContext:
    """A client's TLS context that verifies the server's certificate and host name against
    :func:`ca_file` (the system's CAs when there is none)."""
    return ssl.create_default_context(cafile=ca_file())


# --- Secrets Manager ---------------------------------------------------------------------


def secretsmanager() -> Client:
    """A client of the Secrets Manager that invoked the function
    (``SECRETS_MANAGER_ENDPOINT``, as AWS's templates use it), with the function role's
    credentials from the environment."""
    return boto3.client(
        "secretsmanager",
        endpoint_url=os.environ.get("SECRETS_MANAGER_ENDPOINT") or None,
        config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3}),
    )


def for_rotation(client: Client, arn: str, rotation_token: str | None) -> Client:
    """``client``, its every PutSecretValue of secret ``arn`` carrying the rotation's
    ``RotationToken`` (the step's event has it), as the rotation's own request: Secrets
    Manager then checks that the rotation still holds (refusing the value of one that was
    cancelled or taken over), and the request never abandons it. (botocore's
    ``provide-client-params`` event: the parameters before they are validated.) Without a
    token, the client is left as it is."""
    if not rotation_token:
        return client

    def add_token(params: dict[str, Any], **_kwargs: Any) -> None:
        if params.get("SecretId") == arn:
            params.setdefault("RotationToken", rotation_token)

    service_id = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"provide-client-params.{service_id}.PutSecretValue", add_token)
    return client


def get_secret(
    client: Client,
    arn: str,
    stage: str,
    token: str | None = None,
    *,
    required: tuple[str, ...] = (),
    engines: tuple[str, ...] = (),
) -> Secret:
    """The JSON value of ``arn`` at ``stage`` (and version ``token``), checked to hold the
    ``required`` keys and, when ``engines`` is given, one of those engines."""
    if token:
        answer = client.get_secret_value(SecretId=arn, VersionId=token, VersionStage=stage)
    else:
        answer = client.get_secret_value(SecretId=arn, VersionStage=stage)
    try:
        value = json.loads(answer["SecretString"])
    except (KeyError, ValueError):
        # The value itself stays out of the message: it may be a password.
        raise RotationError(f"the {stage} value of secret {arn} is not a JSON object") from None
    if not isinstance(value, dict):
        raise RotationError(f"the {stage} value of secret {arn} is not a JSON object")
    for key in required:
        if key not in value:
            raise KeyError(f"{key} key is missing from secret JSON")
    if engines and value.get("engine") not in engines:
        raise KeyError(
            f"Database engine must be set to one of {', '.join(engines)} "
            "in order to use this rotation function"
        )
    return value


def pending_exists(client: Client, arn: str, token: str) -> bool:
    """Whether version ``token`` already has its AWSPENDING value (createSecret ran)."""
    try:
        client.get_secret_value(SecretId=arn, VersionId=token, VersionStage=PENDING)
    except client.exceptions.ResourceNotFoundException:
        return False
    return True


def put_pending(client: Client, arn: str, token: str, value: Mapping[str, Any] | str) -> None:
    text = value if isinstance(value, str) else json.dumps(value)
    client.put_secret_value(
        SecretId=arn, ClientRequestToken=token, SecretString=text, VersionStages=[PENDING]
    )
    logger.info("createSecret: put the AWSPENDING value of %s, version %s", arn, token)


def finish_secret(client: Client, arn: str, token: str) -> None:
    """Move AWSCURRENT to version ``token`` (Secrets Manager moves AWSPREVIOUS along).

    The version must still be AWSPENDING in the same DescribeSecret that names the
    AWSCURRENT version passed as RemoveFromVersionId. A manual change that abandons the
    rotation takes AWSPENDING off ``token`` and moves AWSCURRENT to its new value: before
    this read, it is seen here; after it, RemoveFromVersionId no longer names AWSCURRENT's
    version and Secrets Manager refuses the move. So a manual change is never overwritten
    by this rotation. (AWS's templates read the labels again here without the AWSPENDING
    check: a change between the handler's check and that read is overwritten.)"""
    metadata = client.describe_secret(SecretId=arn)
    versions = metadata["VersionIdsToStages"]
    if CURRENT in versions.get(token, []):
        logger.info("finishSecret: version %s of %s is already AWSCURRENT", token, arn)
        return
    if PENDING not in versions.get(token, []):
        raise RotationError(
            f"Secret version {token} is no longer AWSPENDING for rotation of secret {arn}: "
            "the rotation was abandoned"
        )
    current_version = next((v for v, stages in versions.items() if CURRENT in stages), None)
    client.update_secret_version_stage(
        SecretId=arn,
        VersionStage=CURRENT,
        MoveToVersionId=token,
        RemoveFromVersionId=current_version,
    )
    logger.info("finishSecret: version %s of %s is now AWSCURRENT", token, arn)


Step = Callable[[Client, str, str], None]


@dataclass(frozen=True)
class Steps:
    """The four steps of one rotator."""

    create: Step
    set: Step
    test: Step
    finish: Step = finish_secret

    def by_name(self, step: str) -> Step | None:
        return dict(zip(STEPS, (self.create, self.set, self.test, self.finish), strict=True)).get(
            step
        )


def handle(event: Mapping[str, Any], steps: Steps) -> None:
    """Run one step of ``event``, after the checks every AWS template makes: rotation not
    turned off, version ``ClientRequestToken`` staged AWSPENDING (nothing to do when it is
    already AWSCURRENT). The step's PutSecretValue carries the event's ``RotationToken``
    (:func:`for_rotation`)."""
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    client = for_rotation(secretsmanager(), arn, event.get("RotationToken"))
    metadata = client.describe_secret(SecretId=arn)
    if metadata.get("RotationEnabled") is False:
        raise RotationError(f"Secret {arn} is not enabled for rotation")
    versions = metadata.get("VersionIdsToStages", {})
    if token not in versions:
        raise RotationError(f"Secret version {token} has no stage for rotation of secret {arn}.")
    if CURRENT in versions[token]:
        logger.info("Secret version %s already set as AWSCURRENT for secret %s.", token, arn)
        return
    if PENDING not in versions[token]:
        raise RotationError(
            f"Secret version {token} not set as AWSPENDING for rotation of secret {arn}."
        )
    run = steps.by_name(step)
    if run is None:
        raise RotationError(f"Invalid step parameter {step} for secret {arn}")
    run(client, arn, token)


# --- the database strategies ---------------------------------------------------------------


class Database(Protocol):
    """What a strategy needs of one kind of database. ``login`` answers None when the
    credentials do not log in (refused, unreachable, timed out), never raising for that."""

    name: str
    engines: tuple[str, ...]
    required: tuple[str, ...]
    max_username: int
    own_password_needs_master: bool  # True: the user cannot change its own password

    def login(self, secret: Secret) -> Any | None: ...

    def close(self, conn: Any) -> None: ...

    def set_password(self, conn: Any, username: str, password: str, *, own: bool) -> None:
        """Set ``username``'s password over ``conn`` (the user itself when ``own``)."""
        ...

    def make_clone(self, conn: Any, source: str, clone: str, password: str) -> None:
        """Over the master's ``conn``: create ``clone`` (or keep it) with ``source``'s
        grants, and set its password."""
        ...

    def probe(self, conn: Any) -> None:
        """Run a statement as the logged-in user (testSecret)."""
        ...


def alternate_username(username: str, limit: int) -> str:
    """``name`` <-> ``name_clone``, as AWS's alternating-users templates name them."""
    if username.endswith(CLONE_SUFFIX):
        return username[: -len(CLONE_SUFFIX)]
    alternate = username + CLONE_SUFFIX
    if len(alternate) > limit:
        raise RotationError(
            f"Unable to clone user, username length with {CLONE_SUFFIX} appended "
            f"would exceed {limit} characters"
        )
    return alternate


def _secret(db: Database, client: Client, arn: str, stage: str, token: str | None = None) -> Secret:
    return get_secret(client, arn, stage, token, required=db.required, engines=db.engines)


def _try_login(db: Database, secret: Secret) -> bool:
    conn = db.login(secret)
    if conn is None:
        return False
    db.close(conn)
    return True


def _master(db: Database, client: Client, current: Secret) -> tuple[str, Secret]:
    master_arn = current.get("masterarn")
    if not master_arn:
        raise RotationError("the secret names no masterarn: the master secret is needed")
    master = _secret(db, client, master_arn, CURRENT)
    if "dbname" in current:
        master["dbname"] = current["dbname"]
    if master["host"] != current["host"]:
        raise RotationError(
            f"Current database host {current['host']} is not the same host as master "
            f"{master['host']}"
        )
    return master_arn, master


def _apply(db: Database, conn: Any, action: Callable[[], None], *secrets: str) -> None:
    """Run ``action`` over ``conn`` and close it; a database error becomes a
    :class:`RotationError` whose message carries no password."""
    try:
        action()
    except RotationError:
        raise
    except Exception as problem:
        message = redact(problem, *secrets)
        logger.error("the %s refused: %s", db.name, message)
        raise RotationError(f"the {db.name} refused: {message}") from None
    finally:
        db.close(conn)


def single_user(db: Database) -> Steps:
    """AWS's single-user scheme: the user changes its own password."""

    def create(client: Client, arn: str, token: str) -> None:
        current = _secret(db, client, arn, CURRENT)
        if pending_exists(client, arn, token):
            logger.info("createSecret: the AWSPENDING value of %s exists already", arn)
            return
        current["password"] = random_password(client)
        put_pending(client, arn, token, current)

    def set_(client: Client, arn: str, token: str) -> None:
        try:
            previous: Secret | None = _secret(db, client, arn, PREVIOUS)
        except (client.exceptions.ResourceNotFoundException, KeyError, RotationError):
            previous = None
        current = _secret(db, client, arn, CURRENT)
        pending = _secret(db, client, arn, PENDING, token)
        if _try_login(db, pending):
            logger.info("setSecret: the AWSPENDING password of %s is already set", arn)
            return
        if current["username"] != pending["username"]:
            raise RotationError(
                f"Attempting to modify user {pending['username']} other than current user "
                f"{current['username']}"
            )
        if current["host"] != pending["host"]:
            raise RotationError(
                f"Attempting to modify user for host {pending['host']} other than current "
                f"host {current['host']}"
            )
        conn = db.login(current)
        if conn is None and previous is not None:
            previous.pop("ssl", None)
            if "ssl" in current:
                previous["ssl"] = current["ssl"]
            if previous["username"] != pending["username"] or previous["host"] != pending["host"]:
                raise RotationError(
                    f"Attempting to modify user {pending['username']} other than previous "
                    f"valid user {previous['username']}"
                )
            conn = db.login(previous)
        if conn is None:
            raise RotationError(
                "Unable to log into database with previous, current, or pending secret of "
                f"secret arn {arn}"
            )
        username, password = pending["username"], pending["password"]
        if db.own_password_needs_master and current.get("masterarn"):
            db.close(conn)  # the user's own login proved the credentials it rotates
            master_arn, master = _master(db, client, current)
            conn = db.login(master)
            if conn is None:
                raise RotationError(
                    f"Unable to log into database using credentials in master secret {master_arn}"
                )
            _apply(db, conn, lambda: db.set_password(conn, username, password, own=False), password)
        else:
            _apply(db, conn, lambda: db.set_password(conn, username, password, own=True), password)
        logger.info("setSecret: set the password of %s for secret %s", username, arn)

    return Steps(create=create, set=set_, test=_test(db))


def alternating_users(db: Database) -> Steps:
    """AWS's alternating-users scheme: the master user keeps two users, ``name`` and
    ``name_clone``, and each rotation changes the one that is not current."""

    def create(client: Client, arn: str, token: str) -> None:
        current = _secret(db, client, arn, CURRENT)
        if pending_exists(client, arn, token):
            logger.info("createSecret: the AWSPENDING value of %s exists already", arn)
            return
        current["username"] = alternate_username(current["username"], db.max_username)
        current["password"] = random_password(client)
        put_pending(client, arn, token, current)

    def set_(client: Client, arn: str, token: str) -> None:
        current = _secret(db, client, arn, CURRENT)
        pending = _secret(db, client, arn, PENDING, token)
        if _try_login(db, pending):
            logger.info("setSecret: the AWSPENDING password of %s is already set", arn)
            return
        if alternate_username(current["username"], db.max_username) != pending["username"]:
            raise RotationError(
                f"Attempting to modify user {pending['username']} other than current user "
                f"or clone {current['username']}"
            )
        if current["host"] != pending["host"]:
            raise RotationError(
                f"Attempting to modify user for host {pending['host']} other than current "
                f"host {current['host']}"
            )
        # The AWSCURRENT credentials must work before the master acts on them: a secret
        # cannot make the master alter a user its own credentials do not prove.
        if not _try_login(db, current):
            raise RotationError(
                f"Unable to log into database using current credentials for secret {arn}"
            )
        master_arn, master = _master(db, client, current)
        conn = db.login(master)
        if conn is None:
            raise RotationError(
                f"Unable to log into database using credentials in master secret {master_arn}"
            )
        source, clone, password = current["username"], pending["username"], pending["password"]
        _apply(db, conn, lambda: db.make_clone(conn, source, clone, password), password)
        logger.info("setSecret: set the password of %s for secret %s", clone, arn)

    return Steps(create=create, set=set_, test=_test(db))


def _test(db: Database) -> Step:
    def test(client: Client, arn: str, token: str) -> None:
        pending = _secret(db, client, arn, PENDING, token)
        conn = db.login(pending)
        if conn is None:
            raise RotationError(
                f"Unable to log into database with pending secret of secret ARN {arn}"
            )
        _apply(db, conn, lambda: db.probe(conn), pending["password"])
        logger.info("testSecret: logged into the %s with the AWSPENDING secret of %s", db.name, arn)

    return test
