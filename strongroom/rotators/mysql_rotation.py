"""Built-in rotation for MySQL and MariaDB users, single-user and alternating-users, over
PyMySQL (the client AWS's MySQL and MariaDB templates use).

The secret: ``{"engine": "mysql" | "mariadb", "host", "port" (3306), "username",
"password", "dbname", "ssl", "masterarn" (alternating users)}``. Logins time out after
``CONNECT_TIMEOUT`` seconds, reads and writes on the connection after
``STATEMENT_TIMEOUT``; ``ssl`` true verifies the server against ``SSL_CA_FILE``, false
never uses TLS. Users are ``'name'@'%'``, as AWS's templates create and alter them.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import pymysql

try:
    from . import rotation_steps as steps
except ImportError:  # loaded as Lambda loads a handler: a top-level module of the code
    import rotation_steps as steps  # type: ignore[no-redef,import-not-found,unused-ignore]

logger = logging.getLogger("strongroom.rotators")


class MySQL:
    name = "MySQL database"
    engines: tuple[str, ...] = ("mysql", "mariadb", "aurora-mysql")
    required: tuple[str, ...] = ("host", "username", "password", "engine")
    max_username = 32  # MySQL's limit (MariaDB allows 80): a clone must fit both
    own_password_needs_master = False

    def login(self, secret: steps.Secret) -> Any | None:
        use_ssl, fall_back = steps.ssl_config(secret)
        conn = self._connect(secret, use_ssl)
        if conn is None and use_ssl and fall_back:
            conn = self._connect(secret, False)
        return conn

    def _connect(self, secret: steps.Secret, use_ssl: bool) -> Any | None:
        # TLS verified against SSL_CA_FILE, or none at all: PyMySQL given neither uses TLS,
        # unverified, whenever the server offers it (1.2), so "ssl": false would log in a
        # user the server accepts over TLS only.
        tls: dict[str, Any] = {"ssl": steps.tls_context()} if use_ssl else {"ssl_disabled": True}
        timeout = steps.statement_timeout()
        try:
            conn = pymysql.connect(
                host=secret["host"],
                port=int(secret.get("port", 3306)),
                user=secret["username"],
                password=secret["password"],
                database=secret.get("dbname") or None,
                connect_timeout=steps.connect_timeout(),
                read_timeout=timeout,
                write_timeout=timeout,
                **tls,
            )
            # A TLS login must be encrypted whatever the library version does when the
            # server offers no TLS (PyMySQL before 1.2 carries on in plain text then).
            if use_ssl and not _encrypted(conn):
                self.close(conn)
                raise pymysql.OperationalError(2026, "the server did not use TLS")
            return conn
        except pymysql.MySQLError as problem:
            logger.warning(
                "no %s login as %s on %s: %s",
                "TLS" if use_ssl else "plain",
                secret["username"],
                secret["host"],
                steps.redact(problem, secret["password"]),
            )
            return None

    def close(self, conn: Any) -> None:
        with contextlib.suppress(pymysql.MySQLError):
            conn.close()

    def set_password(self, conn: Any, username: str, password: str, *, own: bool) -> None:
        with conn.cursor() as cur:
            if own:
                # A user may set its own password without privileges: MariaDB with SET
                # PASSWORD, MySQL (which dropped PASSWORD()) with ALTER USER USER().
                cur.execute("SELECT VERSION()")
                row = cur.fetchone()
                if row and "mariadb" in _text(row[0]).lower():
                    cur.execute("SET PASSWORD = PASSWORD(%s)", (password,))
                else:
                    cur.execute("ALTER USER USER() IDENTIFIED BY %s", (password,))
            else:
                cur.execute("ALTER USER %s IDENTIFIED BY %s", (username, password))
        conn.commit()

    def make_clone(self, conn: Any, source: str, clone: str, password: str) -> None:
        with conn.cursor() as cur:
            cur.execute("SELECT User FROM mysql.user WHERE User = %s", (clone,))
            if cur.rowcount == 0:
                cur.execute("CREATE USER %s IDENTIFIED BY %s", (clone, password))
            # The clone gets every grant of the source (the part before " TO ").
            cur.execute("SHOW GRANTS FOR %s", (source,))
            for (grant,) in cur.fetchall():
                privileges = grant.split(" TO ")[0].replace("%", "%%")
                cur.execute(privileges + " TO %s", (clone,))
            # And its TLS requirement.
            cur.execute(
                "SELECT ssl_type, ssl_cipher, x509_issuer, x509_subject FROM mysql.user "
                "WHERE User = %s",
                (source,),
            )
            row = cur.fetchone()
            ssl_type = (row[0] if row else "") or ""
            ssl_type = ssl_type.decode() if isinstance(ssl_type, bytes) else ssl_type
            if ssl_type == "ANY":
                cur.execute("ALTER USER %s REQUIRE SSL", (clone,))
            elif ssl_type == "X509":
                cur.execute("ALTER USER %s REQUIRE X509", (clone,))
            elif ssl_type == "SPECIFIED" and row is not None:
                cur.execute(
                    "ALTER USER %s REQUIRE CIPHER %s AND ISSUER %s AND SUBJECT %s",
                    (clone, *(_text(v) for v in row[1:4])),
                )
            else:
                cur.execute("ALTER USER %s REQUIRE NONE", (clone,))
            cur.execute("ALTER USER %s IDENTIFIED BY %s", (clone, password))
        conn.commit()

    def probe(self, conn: Any) -> None:
        with conn.cursor() as cur:
            cur.execute("SELECT NOW()")
        conn.commit()


def _encrypted(conn: Any) -> bool:
    """Whether the session ``conn`` is encrypted, as the server sees it."""
    with conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        row = cur.fetchone()
    return bool(row and _text(row[1]))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


DATABASE = MySQL()
SINGLE_USER = steps.single_user(DATABASE)
ALTERNATING_USERS = steps.alternating_users(DATABASE)


def single_user(event: dict[str, Any], context: Any) -> None:
    """Lambda handler: MySQL/MariaDB, single user."""
    steps.handle(event, SINGLE_USER)


def alternating_users(event: dict[str, Any], context: Any) -> None:
    """Lambda handler: MySQL/MariaDB, alternating users (``masterarn``)."""
    steps.handle(event, ALTERNATING_USERS)
