"""A worker's view of the seal: the deployment exists only while the root key does.

The :class:`SealGate` holds the current :class:`Deployment` (or ``None``: sealed). In a
server process it follows the keyholder (:mod:`strongroom.keys.keyholder`): the
deployment (barrier, services, pipeline) is built when the key arrives and dropped when
it is sealed. It also serves the operator endpoints::

    GET  /_strongroom/health   200 {"status": "ok", "sealed": false} | 503 {"sealed": true}
                               | 503 {"status": "not ready", "reason": ...} (audit failing)
    GET  /_strongroom/status   {"sealed", "provider", "progress", "threshold", ...}
    POST /_strongroom/unseal   {"share": "..."} -> {"sealed", "progress", "threshold"}
    POST /_strongroom/seal     SigV4-signed (service "strongroom") by an account admin

Unseal is unauthenticated, as Vault's is: the shares are the credential.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Scope

from strongroom.audit.events import RequestFacts, build_event, user_identity
from strongroom.iam.credentials import Principal
from strongroom.ids import unique_id
from strongroom.keys.keyholder import KeyholderError, KeyholderLink, socket_path
from strongroom.policy.checks import Check
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.sigv4 import HttpRequest
from strongroom.protocol.wire import JsonWire, QueryWire, looks_like_query
from strongroom.server.deployment import Deployment

log = logging.getLogger("strongroom.server")

SIGNING_NAME = "strongroom"  # the SigV4 service name operator requests are signed for
SEALED_MESSAGE = "Strongroom is sealed. Unseal it with `strongroom unseal`."
_MAX_BODY = 16 * 1024
_OPEN_ATTEMPTS = 3


def sealed_error() -> ServiceError:
    return ServiceError(
        "ServiceUnavailableException", SEALED_MESSAGE, status=503, sender_fault=False
    )


def http_request(scope: Scope, body: bytes) -> HttpRequest:
    """The framework-independent request SigV4 verification reads (raw path and query)."""
    return HttpRequest(
        method=scope["method"],
        path=scope.get("raw_path", scope["path"].encode()).decode("latin-1").split("?")[0],
        query=scope.get("query_string", b"").decode("latin-1"),
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
        body=body,
    )


class SealGate:
    """The current deployment of a worker, following the keyholder's seal state."""

    def __init__(
        self,
        *,
        data_dir: Path | None = None,
        opener: Callable[[bytes], Deployment] | None = None,
        deployment: Deployment | None = None,
    ) -> None:
        self._data_dir = data_dir
        self._opener = opener
        self._deployment = deployment
        self._link: KeyholderLink | None = None

    @classmethod
    def fixed(cls, deployment: Deployment) -> SealGate:
        """Always unsealed, no keyholder (an app embedded in a test or another program)."""
        return cls(deployment=deployment)

    @classmethod
    def following_keyholder(cls, data_dir: Path, opener: Callable[[bytes], Deployment]) -> SealGate:
        return cls(data_dir=data_dir, opener=opener)

    def __repr__(self) -> str:
        return f"SealGate(sealed={self.sealed})"

    @property
    def deployment(self) -> Deployment | None:
        return self._deployment

    @property
    def sealed(self) -> bool:
        return self._deployment is None

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._data_dir is None:
            return
        self._link = KeyholderLink(
            socket_path(self._data_dir), self._unsealed, self._sealed, self._lost
        )
        await self._link.start()

    async def stop(self) -> None:
        if self._link is not None:
            await self._link.close()
        await self._sealed()

    async def _unsealed(self, key: bytes) -> None:
        if self._deployment is not None or self._opener is None:
            return
        opener = self._opener
        for attempt in range(1, _OPEN_ATTEMPTS + 1):
            try:
                self._deployment = await to_thread.run_sync(lambda: opener(key))
                break
            except Exception:
                if attempt == _OPEN_ATTEMPTS:
                    raise  # the keyholder hears this worker did not apply the key
                log.warning(
                    "could not open the deployment (attempt %d); retrying", attempt, exc_info=True
                )
                await asyncio.sleep(0.5 * attempt)
        log.info("unsealed: serving")

    async def _sealed(self) -> None:
        old, self._deployment = self._deployment, None
        if old is not None:
            log.info("sealed: the root key was dropped")
            await to_thread.run_sync(old.close)

    async def _lost(self) -> None:
        # The keyholder (the parent process) is gone: drop the key, and stop serving.
        log.error("lost the connection to the keyholder; sealing and shutting down")
        await self._sealed()
        os.kill(os.getpid(), signal.SIGTERM)

    # --- endpoints ----------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            Route("/_strongroom/health", self.health, methods=["GET"]),
            Route("/_strongroom/status", self.status, methods=["GET"]),
            Route("/_strongroom/unseal", self.unseal, methods=["POST"]),
            Route("/_strongroom/seal", self.seal, methods=["POST"]),
        ]

    def sealed_response(self, request: Request) -> Response:
        """503 ServiceUnavailableException in the error shape of the request's protocol."""
        request_id = unique_id()
        seen = http_request(request.scope, b"")
        headers = {name.lower(): value for name, value in seen.headers}
        wire: JsonWire | QueryWire = (
            QueryWire(None)
            if "x-amz-target" not in headers and looks_like_query(seen, headers)
            else JsonWire()
        )
        status, error_headers, body = wire.error(sealed_error(), request_id)
        return Response(
            body, status_code=status, headers={"x-amzn-RequestId": request_id, **error_headers}
        )

    async def health(self, _request: Request) -> Response:
        deployment = self._deployment
        if deployment is None:
            return JSONResponse({"sealed": True}, status_code=503)
        # Every request is audited or refused: a log that cannot be written means every
        # request fails, so the server is not ready (a load balancer should look elsewhere).
        problem = deployment.audit.problem()
        if problem is not None:
            return JSONResponse(
                {"status": "not ready", "sealed": False, "reason": problem}, status_code=503
            )
        return JSONResponse({"status": "ok", "sealed": False})

    async def status(self, _request: Request) -> Response:
        return await self._ask({"op": "status"})

    async def unseal(self, request: Request) -> Response:
        body = await request.body()
        if len(body) > _MAX_BODY:
            return _error(413, "RequestEntityTooLarge", "the request body is too large")
        try:
            document = orjson.loads(body) if body.strip() else {}
        except orjson.JSONDecodeError:
            document = None
        if not isinstance(document, dict):
            return _error(400, "SerializationException", "the body must be a JSON object")
        message: dict[str, Any] = {"op": "unseal"}
        for name, kind in (("share", str), ("passphrase", str), ("reset", bool)):
            if name in document:
                if not isinstance(document[name], kind):
                    return _error(400, "ValidationException", f"'{name}' must be a {kind.__name__}")
                message[name] = document[name]
        return await self._ask(message)

    async def seal(self, request: Request) -> Response:
        deployment = self._deployment
        if deployment is None:
            return await self._ask({"op": "status"})  # sealed already: nothing to protect
        body = await request.body()
        signed = http_request(request.scope, body)
        source_ip = request.client.host if request.client else "unknown"
        facts = RequestFacts(
            unique_id(),
            deployment.clock.now(),
            source_ip,
            request.headers.get("user-agent", ""),
            "",
        )
        try:
            principal, region = await to_thread.run_sync(
                deployment.pipeline.authenticate, signed, SIGNING_NAME
            )
            # Sealing stops every account's service: only a principal whose policies allow
            # strongroom:Seal (AdministratorAccess does) may do it.
            await to_thread.run_sync(
                deployment.pipeline.authorize,
                principal,
                Check("strongroom:Seal"),
                source_ip,
                region,
            )
        except ServiceError as refused:
            self._audit(deployment, facts, None, refused)
            return _error(refused.status, refused.code, refused.message)
        facts = RequestFacts(
            facts.request_id, facts.time, facts.source_ip, facts.user_agent, region
        )
        self._audit(deployment, facts, principal, None)
        log.info("seal requested by %s", principal.arn)
        return await self._ask({"op": "seal"})

    def _audit(
        self,
        deployment: Deployment,
        facts: RequestFacts,
        principal: Principal | None,
        error: ServiceError | None,
    ) -> None:
        identity = user_identity(principal) if principal is not None else None
        event = build_event(
            facts=facts,
            event_source="strongroom",
            operation=None,
            operation_name="Seal",
            identity=identity,
            params=None,
            output=None,
            error_code=error.code if error else None,
            error_message=error.message if error else None,
        )
        try:
            deployment.pipeline.record_event(event)
        except Exception:
            # Sealing protects; a lost audit line must not keep the key in memory.
            log.exception("audit write failed for a seal request")

    async def _ask(self, message: dict[str, Any]) -> Response:
        if self._link is None:
            return _error(
                400,
                "InvalidRequestException",
                "this server has no keyholder: it cannot be sealed or unsealed",
            )
        try:
            reply = await self._link.request(message)
        except KeyholderError as problem:
            return _error(503, "ServiceUnavailableException", str(problem))
        ok = reply.pop("ok", False)
        code = reply.pop("code", None)
        text = reply.pop("message", None)
        if not ok:
            return JSONResponse({"__type": code, "Message": text, **reply}, status_code=400)
        # The keyholder answers an unseal or seal once every worker applied it.
        return JSONResponse(reply)


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"__type": code, "Message": message}, status_code=status)
