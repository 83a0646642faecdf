"""Built-in rotation for Redis ACL users (``ACL SETUSER``), single-user and
alternating-users, over redis-py.

The secret: ``{"engine": "redis", "host", "port" (6379), "username", "password", "ssl",
"masterarn"}``. Redis has no command for a user to change its own password: the single-user
scheme changes it with the master user of ``masterarn`` when the secret names one (after
the user's own credentials proved themselves), else as the user itself (which then needs
the ``ACL`` command); the new password replaces every old one, so the old one stops working
at once. The alternating-users scheme copies the source user's ACL rules (commands, keys,
channels, selectors) to ``name_clone`` with ``ACL SETUSER``. Where Redis keeps its users in
an ACL file, the change is saved with ``ACL SAVE``.
"""

from __future__ import annotations

import contextlib
import logging
import re
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

try:
    from . import rotation_steps as steps
except ImportError:  # loaded as Lambda loads a handler: a top-level module of the code
    import rotation_steps as steps  # type: ignore[no-redef,import-not-found,unused-ignore]

logger = logging.getLogger("strongroom.rotators")

# One rule of an ACL LIST line: a selector in parentheses (it may hold spaces) or a word.
_RULE = re.compile(r"\([^)]*\)|\S+")
# Rules about passwords are not copied: the clone gets its own.
_PASSWORD_RULE = re.compile(r"^(#|>|<|!)|^(nopass|resetpass)$")


class Redis:
    name = "Redis server"
    engines: tuple[str, ...] = ("redis",)
    required: tuple[str, ...] = ("host", "username", "password", "engine")
    max_username = 128
    own_password_needs_master = True

    def login(self, secret: steps.Secret) -> Any | None:
        use_ssl, fall_back = steps.ssl_config(secret)
        if "ssl" not in secret:
            # Redis's TLS port is not its plain one: no secret-less guess at TLS here.
            use_ssl, fall_back = False, False
        conn = self._connect(secret, use_ssl)
        if conn is None and use_ssl and fall_back:
            conn = self._connect(secret, False)
        return conn

    def _connect(self, secret: steps.Secret, use_ssl: bool) -> Any | None:
        tls: dict[str, Any] = {}
        if use_ssl:
            tls = {
                "ssl": True,
                "ssl_cert_reqs": "required",
                "ssl_ca_certs": steps.ca_file(),
                "ssl_check_hostname": True,  # redis-py 5's default is not to
            }
        conn = redis.Redis(
            host=secret["host"],
            port=int(secret.get("port", 6379)),
            username=secret["username"],
            password=secret["password"],
            socket_connect_timeout=steps.connect_timeout(),
            socket_timeout=steps.statement_timeout(),
            retry=Retry(NoBackoff(), 0),  # one try: a step fails rather than waits
            **tls,
        )
        try:
            conn.ping()
        except redis.RedisError as problem:
            conn.close()
            logger.warning(
                "no %s login as %s on %s: %s",
                "TLS" if use_ssl else "plain",
                secret["username"],
                secret["host"],
                steps.redact(problem, secret["password"]),
            )
            return None
        return conn

    def close(self, conn: Any) -> None:
        conn.close()

    def set_password(self, conn: Any, username: str, password: str, *, own: bool) -> None:
        conn.execute_command("ACL", "SETUSER", username, "resetpass", f">{password}")
        _save(conn)

    def make_clone(self, conn: Any, source: str, clone: str, password: str) -> None:
        rules = _rules_of(conn, source)
        conn.execute_command("ACL", "SETUSER", clone, "reset", *rules, "resetpass", f">{password}")
        _save(conn)

    def probe(self, conn: Any) -> None:
        conn.execute_command("ACL", "WHOAMI")


def _rules_of(conn: Any, username: str) -> list[str]:
    """``username``'s ACL rules as ``ACL LIST`` prints them, without its passwords."""
    for line in conn.execute_command("ACL", "LIST"):
        text = line.decode() if isinstance(line, bytes) else str(line)
        words = _RULE.findall(text)
        if len(words) >= 2 and words[0] == "user" and words[1] == username:
            return [rule for rule in words[2:] if not _PASSWORD_RULE.match(rule)]
    raise steps.RotationError(f"the Redis user {username} does not exist")


def _save(conn: Any) -> None:
    # No ACL file: the users live in the server's configuration only.
    with contextlib.suppress(redis.ResponseError):
        conn.execute_command("ACL", "SAVE")


DATABASE = Redis()
SINGLE_USER = steps.single_user(DATABASE)
ALTERNATING_USERS = steps.alternating_users(DATABASE)


def single_user(event: dict[str, Any], context: Any) -> None:
    """Lambda handler: a Redis ACL user, single user."""
    steps.handle(event, SINGLE_USER)


def alternating_users(event: dict[str, Any], context: Any) -> None:
    """Lambda handler: Redis ACL users, alternating users (``masterarn``)."""
    steps.handle(event, ALTERNATING_USERS)
