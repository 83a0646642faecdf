"""The ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

from anyio import to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from strongroom.server.config import Settings
from strongroom.server.deployment import Deployment, open_deployment
from strongroom.server.sealing import SealGate, http_request

log = logging.getLogger("strongroom.server")

SETTINGS_ENV = "STRONGROOM_RUNTIME_SETTINGS"


def create_app(deployment: Deployment | SealGate, settings: Settings) -> Starlette:
    """The app over a deployment that is always open, or over a :class:`SealGate` whose
    deployment exists only while the keyholder has the root key."""
    gate = deployment if isinstance(deployment, SealGate) else SealGate.fixed(deployment)

    async def aws(request: Request) -> Response:
        current = gate.deployment
        if current is None:
            return gate.sealed_response(request)
        body = await request.body()
        source_ip = request.client.host if request.client else "unknown"
        result = await to_thread.run_sync(
            current.pipeline.handle, http_request(request, body), source_ip
        )
        return Response(result.body, status_code=result.status, headers=result.headers)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await gate.start()
        sweeper = asyncio.create_task(_purge_loop(gate, settings.purge_interval))
        try:
            yield
        finally:
            sweeper.cancel()
            await gate.stop()

    return Starlette(
        routes=[*gate.routes(), Route("/", aws, methods=["POST", "GET"])],
        lifespan=lifespan,
    )


async def _purge_loop(gate: SealGate, interval: float) -> None:
    """Background work: purge secrets and KMS keys whose deletion window has passed and
    rotate KMS keys that are due. Every worker runs it; each job is one idempotent
    transaction, so running it twice is harmless."""
    while True:
        deployment = gate.deployment  # None while sealed: nothing can be read or written
        jobs = (
            {
                "secret(s) purged after their recovery window": deployment.secrets.purge_expired,
                "KMS key(s) deleted after their waiting period": deployment.keys.purge_expired_keys,
                "KMS key(s) rotated on schedule": deployment.keys.run_due_rotations,
            }
            if deployment is not None
            else {}
        )
        for what, job in jobs.items():
            try:
                done = await to_thread.run_sync(job)
                if done:
                    log.info("%d %s", done, what)
            except Exception:
                log.exception("background job failed (%s); will retry", what)
        await asyncio.sleep(interval)


def app_from_environment() -> Starlette:
    """uvicorn's factory for worker processes: settings arrive through the environment."""
    raw = json.loads(os.environ[SETTINGS_ENV])
    settings = Settings(
        host=raw["host"],
        port=raw["port"],
        workers=raw["workers"],
        data_dir=Path(raw["data_dir"]),
        dev=raw["dev"],
        log_level=raw["log_level"],
        purge_interval=raw["purge_interval"],
        audit_rotate_bytes=raw["audit_rotate_bytes"],
        audit_rotate_seconds=raw["audit_rotate_seconds"],
        audit_digest_interval=raw["audit_digest_interval"],
        audit_retention_days=raw["audit_retention_days"],
    )
    data_dir = settings.data_dir
    assert data_dir is not None
    # The root key comes from the keyholder (the `strongroom server` parent process).
    gate = SealGate.following_keyholder(
        data_dir,
        lambda key: open_deployment(data_dir, root_key=key, audit=settings.audit_options()),
    )
    return create_app(gate, settings)
