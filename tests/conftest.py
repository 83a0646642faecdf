from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from strongroom.audit.log import AuditLogOptions
from strongroom.clock import ManualClock
from strongroom.server.deployment import Deployment, initialize, open_deployment
from tests.aws import new_key
from tests.server import ServerProcess

# No timing thresholds in tests: Hypothesis's per-example deadline fails a property on a
# loaded machine (two pytest workers and their servers on two cores), not on a bug.
settings.register_profile("strongroom", deadline=None)
settings.load_profile("strongroom")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One in-memory dev server shared by the tests of a worker; tests use unique names."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    process = ServerProcess(["--dev"], log).start()
    yield process
    process.stop()


@pytest.fixture
def sm(server: ServerProcess) -> Any:
    return server.client()


@pytest.fixture
def raw(server: ServerProcess, sm: Any) -> Any:
    """A client in ``sm``'s region that sends what it is given (no boto3 parameter
    validation): the server does the validating."""
    return server.client(region=sm.meta.region_name, validate=False)


@pytest.fixture
def kms(server: ServerProcess) -> Any:
    return server.client("kms")


@pytest.fixture
def key(kms: Any) -> dict[str, str]:
    """A fresh customer managed KMS key with an alias (see ``tests.aws.new_key``)."""
    return new_key(kms)


@pytest.fixture
def name() -> str:
    """A secret name no other test uses."""
    return f"test/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def new_server(tmp_path: Path) -> Iterator[Any]:
    """Start dedicated servers (for restarts, workers, data directories)."""
    started: list[ServerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
        process = ServerProcess(
            list(args), tmp_path / f"server-{len(started)}.log", env=env or {}
        ).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


# Domain level: the services over a real data directory, without a server process ----------


JUMPING_CLOCK = AuditLogOptions(digest_interval=400 * 86400.0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def deployment(tmp_path: Path, clock: ManualClock) -> Iterator[Deployment]:
    """A fresh dev deployment in ``tmp_path / "data"`` whose time is ``clock``."""
    data_dir = tmp_path / "data"
    initialize(data_dir, dev=True, clock=clock)
    # Tests move ``clock`` by days at once; digests are periodic on it, and a jump past a
    # period is a gap `audit verify` reports (tests/unit/test_audit_writers.py tests that).
    opened = open_deployment(data_dir, clock=clock, audit=JUMPING_CLOCK)
    yield opened
    opened.close()
