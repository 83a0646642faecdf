"""Start and stop real Strongroom server processes for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

STRONGROOM = Path(sys.executable).with_name("strongroom")
DEV_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    args: list[str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)  # added to this process's environment

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0, ready_status: int = 200) -> ServerProcess:
        """Start and wait until /_strongroom/health answers ``ready_status`` (503 for a
        server that starts sealed)."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(STRONGROOM), "server", *self.args, "--port", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_strongroom/health", timeout=1) as r:
                    if r.status == ready_status:
                        return self
            except urllib.error.HTTPError as answer:
                if answer.code == ready_status:
                    return self
                time.sleep(0.1)
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server not healthy after {timeout}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def client(
        self,
        service: str = "secretsmanager",
        region: str = "us-east-1",
        *,
        validate: bool = True,
        **credentials: Any,
    ) -> Any:
        """A boto3 client of this server: one attempt a call, the dev credentials unless
        others are given. ``validate=False`` turns boto3's client-side parameter checks
        off, so the server gets (and validates) whatever the test sends."""
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=region,
            config=Config(retries={"max_attempts": 1}, parameter_validation=validate),
            **(credentials or DEV_CREDENTIALS),
        )


def socket_owner(server_port: int, client_port: int, pids: list[int]) -> int | None:
    """Which of ``pids`` holds the accepted socket that is the server end of a connection
    from ``client_port``: the process serving it."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.rsplit(":", 1)[1], 16) == server_port and (
            int(remote.rsplit(":", 1)[1], 16) == client_port
        ):
            inode = fields[9]
    if inode is None:
        return None
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None
