"""The servers under test, each started on loopback with its own seeded store.

Strongroom serves a copy of a data directory prepared once (seeded through its API, or
grown in bulk for the store-size runs), on disk so its WAL and audit log are durable as in
production; moto's server and OpenBao's dev server are seeded through their APIs each
time they start; the bare ASGI app needs no seeding.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import seeding
from bench.rawhttp import KvRequests, RequestFactory, SecretsManagerRequests
from bench.servers import HOST, ServerProcess, free_port

PYTHON = sys.executable
REPO = Path(__file__).resolve().parent.parent
OPENBAO_TOKEN = "root"  # noqa: S105 - the dev server's root token, on loopback only


class Target(ABC):
    key: str  # "strongroom-w1", "openbao", ...
    label: str
    peer: str  # "strongroom" | "openbao" | "moto" | "bare"
    workloads: tuple[str, ...] = ("get", "describe", "put", "mixed")
    # A write run starts from the seeded state (Strongroom caps a secret at 100 versions
    # younger than a day, as AWS does, so writes must not pile up across runs).
    fresh_state_for_writes = False

    def __init__(self, workdir: Path, names: Sequence[str]) -> None:
        self.workdir = workdir
        self.names = list(names)
        self.server: ServerProcess | None = None
        self.port: int | None = None  # kept across restarts: signed requests name the host
        self.seed_seconds: float | None = None  # the first seeding through the API
        self.wrote = False  # written to since it was (re)started

    @abstractmethod
    def _server(self, port: int) -> ServerProcess: ...

    @abstractmethod
    def requests(self) -> RequestFactory: ...

    def _seed(self) -> float | None:
        return None

    @property
    def host(self) -> str:
        assert self.server is not None
        return f"{HOST}:{self.server.port}"

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    @property
    def pid(self) -> int:
        assert self.server is not None
        return self.server.pid

    def start(self) -> None:
        self.port = self.port or free_port()
        self.server = self._server(self.port)
        self.server.start()
        self.wrote = False
        seconds = self._seed()
        if self.seed_seconds is None:
            self.seed_seconds = seconds

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def reset(self) -> None:
        """Back to the freshly seeded state."""
        self.stop()
        self.start()

    def _log(self) -> Path:
        return self.workdir / "logs" / f"{self.key}.log"


class Strongroom(Target):
    peer = "strongroom"
    fresh_state_for_writes = True

    def __init__(
        self,
        workdir: Path,
        names: Sequence[str],
        store: Path,
        workers: int,
        *,
        copy: bool = True,
        checkout: Checkout | None = None,
    ) -> None:
        """Serve ``store`` (a stopped data directory): a fresh copy of it at every start,
        or (``copy=False``) the directory itself, for stores too big to copy; by the code
        of ``checkout`` (default: this one)."""
        super().__init__(workdir, names)
        self.store = store
        self.workers = workers
        self.copy = copy
        self.checkout = checkout or THIS_CHECKOUT
        suffix = f"@{self.checkout.name}" if checkout else ""
        self.key = f"strongroom-w{workers}{suffix}"
        self.label = f"Strongroom ({workers} worker{'s' if workers > 1 else ''}){suffix}"

    @property
    def data_dir(self) -> Path:
        return self.workdir / f"{self.key}-data" if self.copy else self.store

    def _server(self, port: int) -> ServerProcess:
        if self.copy:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            shutil.copytree(self.store, self.data_dir)
        return strongroom_server(self.data_dir, port, self.workers, self._log(), self.checkout)

    def requests(self) -> RequestFactory:
        return SecretsManagerRequests(self.host)


@dataclass(frozen=True)
class Checkout:
    """A Strongroom source tree and the Python that runs it (its own venv's, where it has
    one: another commit may pin other dependencies)."""

    name: str
    root: Path
    python: str

    @classmethod
    def at(cls, root: Path, name: str | None = None) -> Checkout:
        root = root.resolve()
        venv = root / ".venv" / "bin" / "python"
        python = str(venv) if venv.exists() else PYTHON
        return cls(name or _short_commit(root) or root.name, root, python)


def _short_commit(root: Path) -> str | None:
    done = subprocess.run(  # noqa: S603 - a fixed command
        ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or None


THIS_CHECKOUT = Checkout("this checkout", REPO, PYTHON)


def strongroom_server(
    data_dir: Path, port: int, workers: int, log: Path, checkout: Checkout = THIS_CHECKOUT
) -> ServerProcess:
    # The checkout's own code, whatever the Python it runs with has installed.
    env = {} if checkout is THIS_CHECKOUT else {"PYTHONPATH": str(checkout.root)}
    return ServerProcess(
        name="strongroom",
        command=[
            checkout.python,
            "-m",
            "strongroom.cli.main",
            "server",
            "--dev",
            "--data-dir",
            str(data_dir),
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        port=port,
        health_path="/_strongroom/health",
        log_path=log,
        env=env,
        cwd=checkout.root,
    )


def prepare_strongroom_store(
    store: Path, names: Sequence[str], log: Path, checkout: Checkout = THIS_CHECKOUT
) -> dict[str, float]:
    """Create a data directory holding ``names``, seeded through the API (CreateSecret,
    then one GetSecretValue each) by ``checkout``'s server; returns the seconds each step
    took."""
    server = strongroom_server(store, free_port(), 1, log, checkout)
    started = time.perf_counter()
    server.start()
    try:
        ready = time.perf_counter() - started
        created = seeding.seed_secrets_manager(server.url, names)
        read = seeding.read_each(server.url, names)
    finally:
        server.stop()
    return {"start_s": ready, "create_s": created, "first_read_s": read}


class Moto(Target):
    key = "moto"
    label = "moto server"
    peer = "moto"

    def _server(self, port: int) -> ServerProcess:
        return ServerProcess(
            name="moto",
            command=[PYTHON, "-m", "moto.server", "-H", HOST, "-p", str(port)],
            port=port,
            health_path="/moto-api/",
            log_path=self._log(),
        )

    def _seed(self) -> float:
        return seeding.seed_secrets_manager(self.url, self.names)

    def requests(self) -> RequestFactory:
        return SecretsManagerRequests(self.host)


class OpenBao(Target):
    key = "openbao"
    label = "OpenBao dev (KV v2)"
    peer = "openbao"

    def _server(self, port: int) -> ServerProcess:
        home = self.workdir / "openbao-home"  # the dev server stores its token under $HOME
        home.mkdir(parents=True, exist_ok=True)
        return ServerProcess(
            name="openbao",
            command=[
                str(Path(PYTHON).with_name("bao")),
                "server",
                "-dev",
                f"-dev-root-token-id={OPENBAO_TOKEN}",
                f"-dev-listen-address={HOST}:{port}",
            ],
            port=port,
            health_path="/v1/sys/health",
            log_path=self._log(),
            env={"HOME": str(home), "BAO_ADDR": f"http://{HOST}:{port}"},
        )

    def _seed(self) -> float:
        return seeding.seed_kv(self.url, OPENBAO_TOKEN, self.names)

    def requests(self) -> RequestFactory:
        return KvRequests(self.host, OPENBAO_TOKEN)


class BareAsgi(Target):
    peer = "bare"
    workloads = ("get",)  # it answers every request alike: one run is its ceiling

    def __init__(self, workdir: Path, names: Sequence[str], workers: int) -> None:
        super().__init__(workdir, names)
        self.workers = workers
        self.key = f"bare-w{workers}"
        self.label = f"bare ASGI ({workers} worker{'s' if workers > 1 else ''})"

    def _server(self, port: int) -> ServerProcess:
        return ServerProcess(
            name="bare-asgi",
            command=[
                PYTHON,
                "-m",
                "uvicorn",
                "bench.bare_app:app",
                "--host",
                HOST,
                "--port",
                str(port),
                "--workers",
                str(self.workers),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            port=port,
            health_path="/",
            log_path=self._log(),
            env={"PYTHONPATH": str(REPO)},
            cwd=REPO,
        )

    def requests(self) -> RequestFactory:
        # The very bytes Strongroom gets: a signed GetSecretValue, read and answered.
        return SecretsManagerRequests(self.host)
