"""Built-in rotation for PostgreSQL users, single-user and alternating-users, over PyGreSQL's
DB-API module ``pgdb`` (the client AWS's PostgreSQL templates use).

The secret: ``{"engine": "postgres", "host", "port" (5432), "username", "password",
"dbname" ("postgres"), "ssl", "masterarn" (alternating users)}``. Logins time out after
``CONNECT_TIMEOUT`` seconds and every statement after ``STATEMENT_TIMEOUT`` (libpq's
``connect_timeout`` and the session's ``statement_timeout``); ``ssl`` true means
``sslmode=verify-full`` against ``SSL_CA_FILE``.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import pgdb

try:
    from . import rotation_steps as steps
except ImportError:  # loaded as Lambda loads a handler: a top-level module of the code
    import rotation_steps as steps  # type: ignore[no-redef,import-not-found,unused-ignore]

logger = logging.getLogger("strongroom.rotators")


class PostgreSQL:
    name = "PostgreSQL database"
    engines: tuple[str, ...] = ("postgres", "aurora-postgresql")
    required: tuple[str, ...] = ("host", "username", "password", "engine")
    max_username = 63
    own_password_needs_master = False

    def login(self, secret: steps.Secret) -> Any | None:
        use_ssl, fall_back = steps.ssl_config(secret)
        conn = self._connect(secret, use_ssl)
        if conn is None and use_ssl and fall_back:
            conn = self._connect(secret, False)
        return conn

    def _connect(self, secret: steps.Secret, use_ssl: bool) -> Any | None:
        tls: dict[str, Any] = {"sslmode": "disable"}
        if use_ssl:
            tls = {"sslmode": "verify-full"}
            ca = steps.ca_file()
            if ca:
                tls["sslrootcert"] = ca
        statement_ms = int(steps.statement_timeout() * 1000)
        try:
            return pgdb.connect(
                host=secret["host"],
                port=int(secret.get("port", 5432)),
                user=secret["username"],
                password=secret["password"],
                database=secret.get("dbname") or "postgres",
                connect_timeout=max(1, round(steps.connect_timeout())),
                options=f"-c statement_timeout={statement_ms}",
                **tls,
            )
        except pgdb.Error as problem:
            logger.warning(
                "no %s login as %s on %s: %s",
                "TLS" if use_ssl else "plain",
                secret["username"],
                secret["host"],
                steps.redact(problem, secret["password"]).strip(),
            )
            return None

    def close(self, conn: Any) -> None:
        with contextlib.suppress(pgdb.Error):
            conn.close()

    @staticmethod
    def _quoted(cur: Any, name: str) -> str:
        cur.execute("SELECT quote_ident(%s)", (name,))
        return str(cur.fetchone()[0])

    def set_password(self, conn: Any, username: str, password: str, *, own: bool) -> None:
        with conn.cursor() as cur:
            cur.execute(
                f"ALTER USER {self._quoted(cur, username)} WITH PASSWORD %s",
                (password,),
            )
        conn.commit()

    def make_clone(self, conn: Any, source: str, clone: str, password: str) -> None:
        with conn.cursor() as cur:
            quoted_source, quoted_clone = self._quoted(cur, source), self._quoted(cur, clone)
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (clone,))
            if not cur.fetchall():
                cur.execute(f"CREATE ROLE {quoted_clone} WITH LOGIN PASSWORD %s", (password,))
                cur.execute(f"GRANT {quoted_source} TO {quoted_clone}")
            else:
                cur.execute(f"ALTER USER {quoted_clone} WITH PASSWORD %s", (password,))
        conn.commit()

    def probe(self, conn: Any) -> None:
        with conn.cursor() as cur:
            cur.execute("SELECT NOW()")
        conn.commit()


DATABASE = PostgreSQL()
SINGLE_USER = steps.single_user(DATABASE)
ALTERNATING_USERS = steps.alternating_users(DATABASE)


def single_user(event: dict[str, Any], context: Any) -> None:
    """Lambda handler: PostgreSQL, single user."""
    steps.handle(event, SINGLE_USER)


def alternating_users(event: dict[str, Any], context: Any) -> None:
    """Lambda handler: PostgreSQL, alternating users (``masterarn``)."""
    steps.handle(event, ALTERNATING_USERS)
