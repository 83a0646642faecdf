from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server import ServerProcess


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
def name() -> str:
    """A secret name no other test uses."""
    return f"test/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def new_server(tmp_path: Path) -> Iterator[Any]:
    """Start dedicated servers (for restarts, workers, data directories)."""
    started: list[ServerProcess] = []

    def start(*args: str) -> ServerProcess:
        process = ServerProcess(list(args), tmp_path / f"server-{len(started)}.log").start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
