"""/_strongroom/health is a readiness check: not ready while the audit log cannot be
written, since every request then fails (fail closed)."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from starlette.requests import Request

from strongroom.audit.log import Disk
from strongroom.server.deployment import Deployment
from strongroom.server.sealing import SealGate
from tests.inprocess import client, signing_at


class FullDisk(Disk):
    """A disk that has no room left once ``full`` is set."""

    def __init__(self) -> None:
        self.full = False

    def write(self, fd: int, data: memoryview) -> int:
        if self.full:
            raise OSError(28, "No space left on device (simulated)")
        return super().write(fd, data)


def health(deployment: Deployment) -> tuple[int, dict[str, Any]]:
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    response = asyncio.run(SealGate.fixed(deployment).health(request))
    return response.status_code, json.loads(bytes(response.body))


def test_health_is_not_ready_while_the_audit_log_cannot_be_written(
    deployment: Deployment,
) -> None:
    disk = FullDisk()
    deployment.audit._disk = disk
    sm = client(deployment, "secretsmanager")
    assert health(deployment) == (200, {"status": "ok", "sealed": False})
    disk.full = True
    with signing_at(deployment.clock):
        error = sm.exceptions.ClientError
        try:
            sm.list_secrets()
        except error as failed:
            assert failed.response["Error"]["Code"] == "InternalServiceError"
        else:
            raise AssertionError("a request was served without its audit record")
    status, document = health(deployment)
    assert status == 503
    assert document["status"] == "not ready"
    assert "No space left on device" in document["reason"]
    disk.full = False
    with signing_at(deployment.clock):
        sm.list_secrets()  # the log recovers with the disk
    assert health(deployment)[0] == 200


def test_health_is_not_ready_when_the_audit_directory_is_not_writable(
    deployment: Deployment, monkeypatch: Any
) -> None:
    real_access = os.access

    def access(path: Any, mode: int) -> bool:
        if path == deployment.audit.directory and mode == os.W_OK:
            return False  # the tests run as root, which chmod cannot stop
        return real_access(path, mode)

    monkeypatch.setattr(os, "access", access)
    status, document = health(deployment)
    assert status == 503
    assert "is not writable" in document["reason"]
