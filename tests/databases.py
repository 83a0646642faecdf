"""Real databases for the built-in rotator tests: a private PostgreSQL (the shared one on
5432 trusts every login, so passwords would prove nothing), users on the shared MariaDB
(it checks every password but root's), and a private Redis with ACL users. For TLS, each
engine has a private server with a self-signed certificate (:func:`self_signed_certificate`):
the PostgreSQL, a Redis on a TLS port only, and a MariaDB of our own (the shared one is not
ours to reconfigure).

Each is skipped with its reason on a developer machine that lacks it, and fails under
``CI=true``, where ``.ci/run`` provides them.
"""

from __future__ import annotations

import glob
import ipaddress
import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.server import free_port

HOST = "127.0.0.1"


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: CI must run the built-in rotator tests (.ci/run starts it)")
    pytest.skip(reason)


def new_password() -> str:
    """A password every server here accepts (passwordcheck wants a letter and a non-letter)."""
    return secrets.token_urlsafe(18) + "a1"


def short_name(prefix: str) -> str:
    """A user name no other test uses, short enough for MySQL with ``_clone`` (32)."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


# --- PostgreSQL: a private instance with scram-sha-256 -------------------------------------


def _as_postgres(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """Run a PostgreSQL server program as the ``postgres`` user when we are root (initdb
    and postgres refuse root)."""
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(args, check=True, capture_output=True, **kwargs)


@dataclass
class PostgresInstance:
    directory: Path
    port: int
    bin_dir: Path
    master_user: str = "sr_master"
    master_password: str = field(default_factory=new_password, repr=False)

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def ca_file(self) -> Path:
        """The server certificate (self-signed for 127.0.0.1): the CA a client verifies."""
        return self.directory / "server.crt"

    def new_tls_user(self) -> tuple[str, str]:
        """A user that may log in over TLS only (a member of ``tls_only``)."""
        user, password = self.new_user()
        self.execute(f"GRANT tls_only TO {user}")
        return user, password

    def start(self) -> None:
        _as_postgres(
            [
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.directory / "server.log"),
                "-o",
                # passwordcheck: the server refuses passwords shorter than 8 characters (a
                # password the database rejects, for the failure-path tests).
                f"-p {self.port} -k {self.directory} -c listen_addresses={HOST} "
                "-c shared_preload_libraries=passwordcheck -c ssl=on",
                "-w",
                "-t",
                "60",
                "start",
            ]
        )

    def stop(self) -> None:
        _as_postgres([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"])

    def connect(self, user: str, password: str, *, tls: bool = False) -> Any:
        import pgdb

        mode = (
            {"sslmode": "verify-full", "sslrootcert": str(self.ca_file)}
            if tls
            else {"sslmode": "disable"}
        )
        return pgdb.connect(
            host=HOST,
            port=self.port,
            user=user,
            password=password,
            database="postgres",
            connect_timeout=5,
            **mode,
        )

    def can_login(self, user: str, password: str, *, tls: bool = False) -> bool:
        import pgdb

        try:
            self.connect(user, password, tls=tls).close()
        except pgdb.Error:
            return False
        return True

    def execute(self, *statements: str) -> None:
        conn = self.connect(self.master_user, self.master_password)
        try:
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
            conn.commit()
        finally:
            conn.close()

    def secret(self, user: str, password: str, **extra: Any) -> dict[str, Any]:
        return {
            "engine": "postgres",
            "host": HOST,
            "port": self.port,
            "username": user,
            "password": password,
            "dbname": "postgres",
            "ssl": False,
            **extra,
        }

    def master_secret(self) -> dict[str, Any]:
        return self.secret(self.master_user, self.master_password)

    def new_user(self) -> tuple[str, str]:
        """A login role with a password and a table of its own."""
        user, password = short_name("app"), new_password()
        self.execute(
            f"CREATE ROLE {user} WITH LOGIN PASSWORD '{password}'",
            f"CREATE TABLE {user}_data (n int)",
            f"ALTER TABLE {user}_data OWNER TO {user}",
        )
        return user, password


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresInstance]:
    bin_dir = _postgres_bin()
    if bin_dir is None:
        unavailable("PostgreSQL's initdb is not installed (apt-get install postgresql)")
    assert bin_dir is not None
    directory = Path(tempfile.mkdtemp(prefix="strongroom-pg-"))
    instance = PostgresInstance(directory, free_port(), bin_dir)
    (directory / "pwfile").write_text(instance.master_password + "\n")
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
        shutil.chown(directory / "pwfile", "postgres", "postgres")
    try:
        _as_postgres(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(instance.data),
                "-U",
                instance.master_user,
                f"--pwfile={directory / 'pwfile'}",
                "--auth=scram-sha-256",
                "--no-sync",
            ]
        )
        _enable_tls(instance)
        instance.start()
        instance.execute("CREATE ROLE tls_only NOLOGIN")
    except (subprocess.CalledProcessError, OSError) as problem:
        shutil.rmtree(directory, ignore_errors=True)
        detail = getattr(problem, "stderr", b"") or b""
        unavailable(f"cannot start a private PostgreSQL: {problem} {detail.decode()[-500:]}")
    yield instance
    try:
        instance.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _enable_tls(instance: PostgresInstance) -> None:
    """A self-signed certificate for 127.0.0.1, and members of ``tls_only`` refused any
    connection without TLS (pg_hba.conf is read first match first)."""
    certificate = self_signed_certificate()
    certificate.install(instance.data, owner="postgres")
    instance.ca_file.write_bytes(certificate.pem)
    hba = instance.data / "pg_hba.conf"
    hba.write_text(f"hostnossl all +tls_only {HOST}/32 reject\n" + hba.read_text())


# --- TLS: self-signed certificates for the private servers ------------------------------------


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate (its own CA) and its private key, both PEM."""

    pem: bytes
    key: bytes = field(repr=False)

    def install(self, directory: Path, owner: str | None = None) -> tuple[Path, Path]:
        """``server.crt`` and ``server.key`` in ``directory``, readable by their owner only
        (``owner``, the server's user, when we are root): (certificate, key)."""
        paths = (directory / "server.crt", directory / "server.key")
        for path, data in zip(paths, (self.pem, self.key), strict=True):
            path.write_bytes(data)
            path.chmod(0o600)
            if owner is not None and os.geteuid() == 0:
                shutil.chown(path, owner, owner)
        return paths


def self_signed_certificate(common_name: str = HOST) -> Certificate:
    """A self-signed CA certificate valid for the address 127.0.0.1: the server's
    certificate, and the CA a client verifies it with. Another call makes a CA that did
    not sign the first one's certificate."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Certificate(
        pem=certificate.public_bytes(serialization.Encoding.PEM),
        key=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


# --- MariaDB / MySQL: users on the shared server, or on a private one with TLS ---------------


@dataclass
class MariaDB:
    """A MariaDB server as the tests use it: the shared one on 3306 (root, no password,
    no TLS), or a private one with TLS (:func:`mariadb_tls`), administered by its own
    user; ``ca_file`` is then the CA that signed its certificate."""

    port: int = 3306
    admin_user: str = "root"
    admin_password: str = field(default="", repr=False)
    ca_file: Path | None = None
    created: list[str] = field(default_factory=list)

    def connect(
        self, user: str | None = None, password: str | None = None, *, tls: bool = False
    ) -> Any:
        """A connection as ``user`` (the admin by default): over TLS, verifying the
        server's certificate and address against ``ca_file``, when ``tls``; else in plain
        text, never TLS (PyMySQL would otherwise use TLS when the server offers it)."""
        import pymysql

        options: dict[str, Any] = {"ssl_disabled": True}
        if tls:
            assert self.ca_file is not None, "this server speaks no TLS"
            options = {"ssl": ssl.create_default_context(cafile=str(self.ca_file))}
        return pymysql.connect(
            host=HOST,
            port=self.port,
            user=self.admin_user if user is None else user,
            password=self.admin_password if password is None else password,
            connect_timeout=5,
            **options,
        )

    def can_login(self, user: str, password: str, *, tls: bool = False) -> bool:
        import pymysql

        try:
            self.connect(user, password, tls=tls).close()
        except pymysql.MySQLError:
            return False
        return True

    def execute(self, *statements: str) -> None:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
            conn.commit()
        finally:
            conn.close()

    def query(self, statement: str, *args: Any) -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(statement, args)
                return list(cur.fetchall())
        finally:
            conn.close()

    def secret(self, user: str, password: str, **extra: Any) -> dict[str, Any]:
        return {
            "engine": "mariadb",
            "host": HOST,
            "port": self.port,
            "username": user,
            "password": password,
            "ssl": self.ca_file is not None,
            **extra,
        }

    def master_secret(self) -> dict[str, Any]:
        return self.secret(self.admin_user, self.admin_password)

    def new_user(self, *, master: bool = False, require_ssl: bool = False) -> tuple[str, str]:
        """A user with a password ('name'@'%'); a master may create users and grant; with
        ``require_ssl``, a user the server accepts over TLS only."""
        user, password = short_name("srm" if master else "app"), new_password()
        self.created += [user, user + "_clone"]
        grants = (
            f"GRANT ALL PRIVILEGES ON *.* TO '{user}'@'%' WITH GRANT OPTION"
            if master
            else f"GRANT SELECT ON mysql.db TO '{user}'@'%'"
        )
        require = " REQUIRE SSL" if require_ssl else ""
        self.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'{require}", grants)
        return user, password

    def new_tls_user(self) -> tuple[str, str]:
        return self.new_user(require_ssl=True)

    def ssl_type(self, user: str) -> str:
        """``mysql.user.ssl_type`` of 'user'@'%': '' (none), 'ANY' (REQUIRE SSL), ..."""
        rows = self.query("SELECT ssl_type FROM mysql.user WHERE User = %s", user)
        value = rows[0][0] if rows else ""
        return value.decode() if isinstance(value, bytes) else str(value)

    def drop_users(self) -> None:
        for user in self.created:
            self.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        self.created.clear()


@pytest.fixture
def mariadb() -> Iterator[MariaDB]:
    server = MariaDB()
    try:
        server.connect().close()
    except Exception as problem:
        unavailable(f"no MariaDB on {HOST}:3306 as root ({problem})")
    yield server
    server.drop_users()


def _mariadb_program(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")


@dataclass
class _PrivateMariaDB:
    """A mariadbd of our own: its data directory, socket, pid file and port, TLS with a
    self-signed certificate; as the ``mysql`` user when we are root (mariadbd refuses
    root), its only TCP login the admin user the init file creates."""

    directory: Path
    port: int
    server: MariaDB
    process: subprocess.Popen[bytes] | None = None

    def _user(self) -> list[str]:
        return ["--user=mysql"] if os.geteuid() == 0 else []

    def _own(self, *paths: Path) -> None:
        if os.geteuid() == 0:
            for path in paths:
                shutil.chown(path, "mysql", "mysql")

    def start(self, install_db: str, mariadbd: str) -> None:
        tls = self.directory / "tls"
        tls.mkdir()
        certificate = self_signed_certificate()
        crt, key = certificate.install(tls, owner="mysql")
        assert self.server.ca_file is not None
        self.server.ca_file.write_bytes(certificate.pem)
        init = self.directory / "init.sql"
        init.write_text(
            f"CREATE USER '{self.server.admin_user}'@'%' "
            f"IDENTIFIED BY '{self.server.admin_password}';\n"
            f"GRANT ALL PRIVILEGES ON *.* TO '{self.server.admin_user}'@'%' WITH GRANT OPTION;\n"
        )
        init.chmod(0o600)
        self._own(self.directory, tls, init)
        data = self.directory / "data"
        # root@localhost authenticates by its socket's peer (unix_socket): no TCP login
        # but the admin's.
        subprocess.run(
            [install_db, "--no-defaults", f"--datadir={data}", "--skip-test-db",
             "--auth-root-authentication-method=socket", *self._user()],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        self.process = subprocess.Popen(
            [
                mariadbd, "--no-defaults", f"--datadir={data}", f"--port={self.port}",
                f"--bind-address={HOST}", f"--socket={self.directory / 'mysqld.sock'}",
                f"--pid-file={self.directory / 'mysqld.pid'}",
                f"--log-error={self.directory / 'error.log'}", f"--init-file={init}",
                f"--ssl-cert={crt}", f"--ssl-key={key}", f"--ssl-ca={crt}",
                "--skip-name-resolve", "--skip-log-bin", "--performance-schema=OFF",
                "--innodb-buffer-pool-size=32M", *self._user(),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mariadbd exited: {self.log_tail()}")
            if self._ready():
                init.unlink()
                return
            time.sleep(0.1)
        raise RuntimeError(f"mariadbd did not start in 30 s: {self.log_tail()}")

    def _ready(self) -> bool:
        try:
            self.server.connect().close()
        except Exception:
            return False
        return True

    def log_tail(self) -> str:
        log = self.directory / "error.log"
        return log.read_text(errors="replace")[-500:] if log.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="session")
def mariadb_tls() -> Iterator[MariaDB]:
    """A private MariaDB with TLS (the shared one on 3306 is not ours to reconfigure)."""
    install_db, mariadbd = _mariadb_program("mariadb-install-db"), _mariadb_program("mariadbd")
    if install_db is None or mariadbd is None:
        unavailable(
            "mariadbd or mariadb-install-db is not installed (apt-get install mariadb-server)"
        )
    assert install_db is not None and mariadbd is not None
    try:
        import pymysql  # noqa: F401
    except ImportError:
        unavailable("PyMySQL is not installed (the rotators extra)")
    directory = Path(tempfile.mkdtemp(prefix="strongroom-mariadb-"))
    server = MariaDB(
        port=free_port(),
        admin_user="sr_admin",
        admin_password=new_password(),
        ca_file=directory / "ca.crt",
    )
    instance = _PrivateMariaDB(directory, server.port, server)
    try:
        instance.start(install_db, mariadbd)
    except (
        subprocess.CalledProcessError,
        subprocess.TimeoutExpired,
        RuntimeError,
        OSError,
        KeyError,
    ) as problem:
        instance.stop()
        detail = (getattr(problem, "stderr", b"") or b"").decode(errors="replace")[-500:]
        shutil.rmtree(directory, ignore_errors=True)
        unavailable(f"cannot start a private MariaDB: {problem} {detail}")
    yield server
    try:
        instance.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# --- Redis: a private server with ACL users -------------------------------------------------


@dataclass
class RedisInstance:
    """A private redis-server; with ``tls``, it listens on a TLS port only (``--port 0``),
    with a self-signed certificate for 127.0.0.1 (``ca_file``)."""

    directory: Path
    port: int
    tls: bool = False
    master_user: str = "sr_master"
    master_password: str = field(default_factory=new_password, repr=False)
    process: subprocess.Popen[bytes] | None = None

    @property
    def ca_file(self) -> Path:
        """The server certificate (self-signed for 127.0.0.1): the CA a client verifies."""
        return self.directory / "server.crt"

    def _listen(self) -> list[str]:
        if not self.tls:
            return ["--port", str(self.port)]
        crt, key = self_signed_certificate().install(self.directory)
        return [
            "--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(crt),
            "--tls-key-file", str(key), "--tls-ca-cert-file", str(crt),
            "--tls-auth-clients", "no",
        ]  # fmt: skip

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                str(shutil.which("redis-server")),
                *self._listen(),
                "--bind",
                HOST,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited ({self.process.returncode})")
            try:
                admin = self.connect("default", "")
                admin.ping()
                admin.execute_command(
                    "ACL",
                    "SETUSER",
                    self.master_user,
                    "on",
                    f">{self.master_password}",
                    "~*",
                    "&*",
                    "+@all",
                )
                # Nobody but the named users from now on.
                admin.execute_command("ACL", "SETUSER", "default", "off")
                return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)

    def connect(self, user: str, password: str, *, tls: bool | None = None) -> Any:
        """A client; over TLS (verifying the server's certificate and address) when
        ``tls``, by default when the server speaks TLS. One try: redis-py's default
        retries with backoff would spend seconds on every refused login."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        options: dict[str, Any] = {}
        if self.tls if tls is None else tls:
            options = {
                "ssl": True,
                "ssl_cert_reqs": "required",
                "ssl_ca_certs": str(self.ca_file),
                "ssl_check_hostname": True,
            }
        return redis.Redis(
            host=HOST,
            port=self.port,
            username=user,
            password=password,
            socket_timeout=5,
            socket_connect_timeout=5,
            retry=Retry(NoBackoff(), 0),
            **options,
        )

    def can_login(self, user: str, password: str, *, tls: bool | None = None) -> bool:
        import redis

        conn = self.connect(user, password, tls=tls)
        try:
            conn.ping()
        except redis.RedisError:
            return False
        finally:
            conn.close()
        return True

    def admin(self) -> Any:
        return self.connect(self.master_user, self.master_password)

    def secret(self, user: str, password: str, **extra: Any) -> dict[str, Any]:
        return {
            "engine": "redis",
            "host": HOST,
            "port": self.port,
            "username": user,
            "password": password,
            "ssl": self.tls,
            **extra,
        }

    def master_secret(self) -> dict[str, Any]:
        return self.secret(self.master_user, self.master_password)

    def new_user(self) -> tuple[str, str]:
        """An ACL user that may read and write keys ``<user>:*`` only."""
        user, password = short_name("app"), new_password()
        admin = self.admin()
        admin.execute_command(
            "ACL", "SETUSER", user, "on", f">{password}", f"~{user}:*", "+@read", "+@write",
            "+ping", "+acl|whoami",
        )  # fmt: skip
        admin.close()
        return user, password


def _redis(*, tls: bool) -> Iterator[RedisInstance]:
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed (apt-get install redis-server)")
    try:
        import redis  # noqa: F401
    except ImportError:
        unavailable("redis-py is not installed (the rotators extra)")
    directory = Path(tempfile.mkdtemp(prefix="strongroom-redis-"))
    instance = RedisInstance(directory, free_port(), tls=tls)
    try:
        instance.start()
    except (RuntimeError, OSError) as problem:
        instance.stop()
        shutil.rmtree(directory, ignore_errors=True)
        # Debian's redis-server is built with TLS (BUILD_TLS=yes); a build without it
        # refuses --tls-port and exits at once.
        what = "a private Redis over TLS" if tls else "a private Redis"
        unavailable(f"cannot start {what}: {problem}")
    yield instance
    instance.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisInstance]:
    yield from _redis(tls=False)


@pytest.fixture(scope="session")
def redis_tls_server() -> Iterator[RedisInstance]:
    """A private Redis that speaks TLS only."""
    yield from _redis(tls=True)
