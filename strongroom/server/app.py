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
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from strongroom.protocol.sigv4 import HttpRequest
from strongroom.server.config import Settings
from strongroom.server.deployment import Deployment, open_deployment

log = logging.getLogger("strongroom.server")

SETTINGS_ENV = "STRONGROOM_RUNTIME_SETTINGS"


def create_app(deployment: Deployment, settings: Settings) -> Starlette:
    async def aws(request: Request) -> Response:
        body = await request.body()
        scope = request.scope
        http_request = HttpRequest(
            method=request.method,
            path=scope.get("raw_path", scope["path"].encode()).decode("latin-1").split("?")[0],
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
            body=body,
        )
        source_ip = request.client.host if request.client else "unknown"
        result = await to_thread.run_sync(deployment.pipeline.handle, http_request, source_ip)
        return Response(result.body, status_code=result.status, headers=result.headers)

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(_purge_loop(deployment, settings.purge_interval))
        try:
            yield
        finally:
            sweeper.cancel()
            deployment.close()

    return Starlette(
        routes=[
            Route("/_strongroom/health", health, methods=["GET"]),
            Route("/", aws, methods=["POST", "GET"]),
        ],
        lifespan=lifespan,
    )


async def _purge_loop(deployment: Deployment, interval: float) -> None:
    """Background work: purge secrets and KMS keys whose deletion window has passed and
    rotate KMS keys that are due. Every worker runs it; each job is one idempotent
    transaction, so running it twice is harmless."""
    jobs = {
        "secret(s) purged after their recovery window": deployment.secrets.purge_expired,
        "KMS key(s) deleted after their waiting period": deployment.keys.purge_expired_keys,
        "KMS key(s) rotated on schedule": deployment.keys.run_due_rotations,
    }
    while True:
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
    )
    assert settings.data_dir is not None
    return create_app(open_deployment(settings.data_dir), settings)
