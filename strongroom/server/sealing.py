"""A worker's view of the seal: the deployment exists only while the root key does.

The :class:`SealGate` holds the current :class:`Deployment` (or ``None``: sealed). In a
server process it follows the keyholder (:mod:`strongroom.keys.keyholder`): the
deployment (barrier, services, pipeline) is built when the key arrives and dropped when
it is sealed; its barrier asks the keyholder, which keeps the root key to itself. It
also serves the operator endpoints::

    GET  /_strongroom/health   200 {"status": "ok", "sealed": false} | 503 {"sealed": true}
                               | 503 {"status": "not ready", "reason": ...} (audit failing)
    GET  /_strongroom/status   {"sealed", "provider", "progress", "threshold", ...}
    POST /_strongroom/unseal   {"share": "..."} -> {"sealed", "progress", "threshold"}
    POST /_strongroom/seal     SigV4-signed (service "strongroom")

Seal, and unseal of a file or PKCS#11 deployment, are authorized as every AWS request is
(server/pipeline.py ``authorize_operator``): signed by a principal of the deployment's
management account whose policies allow ``strongroom:Seal`` (``strongroom:Unseal``) on
``arn:aws:strongroom::<management account>:deployment``, and audited, allowed or not.
A Shamir or passphrase unseal stays share-based, as Vault's is: the shares are the
credential; the unseal they complete is audited.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from typing import Any

import orjson
from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Scope

from strongroom.ids import unique_id
from strongroom.keys.channel import Connect
from strongroom.keys.envelope import Barrier
from strongroom.keys.keyholder import KEY_PROVIDERS, KeyholderError, KeyholderLink, make_undumpable
from strongroom.keys.remote_barrier import KeyholderBarrier, VerificationRefused
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.sigv4 import HttpRequest, received
from strongroom.protocol.wire import JsonWire, QueryWire, looks_like_query
from strongroom.server.bodies import read_limited
from strongroom.server.deployment import Deployment
from strongroom.server.operator_actions import SEAL, UNSEAL, OperatorAction
from strongroom.server.stages import Response as PipelineResponse
from strongroom.types import Principal

log = logging.getLogger("strongroom.server")

SEALED_MESSAGE = "Strongroom is sealed. Unseal it with `strongroom unseal`."
_MAX_BODY = 16 * 1024
_OPEN_ATTEMPTS = 3


def sealed_error() -> ServiceError:
    return ServiceError(
        "ServiceUnavailableException", SEALED_MESSAGE, status=503, sender_fault=False
    )


def http_request(scope: Scope, body: bytes) -> HttpRequest:
    """The framework-independent request SigV4 verification reads (raw path and query)."""
    raw_path = scope.get("raw_path")
    if raw_path is None:
        raw_path = scope["path"].encode()
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
    return received(
        scope["method"],
        raw_path.decode("latin-1").partition("?")[0],
        scope.get("query_string", b"").decode("latin-1"),
        headers,
        body,
    )


class SealGate:
    """The current deployment of a worker, following the keyholder's seal state."""

    def __init__(
        self,
        *,
        connect: Connect | None = None,
        opener: Callable[[Barrier], Deployment] | None = None,
        deployment: Deployment | None = None,
    ) -> None:
        self._connect = connect
        self._opener = opener
        self._deployment = deployment
        self._link: KeyholderLink | None = None
        self._verifying = asyncio.Lock()

    @classmethod
    def fixed(cls, deployment: Deployment) -> SealGate:
        """Always unsealed, no keyholder (an app embedded in a test or another program)."""
        return cls(deployment=deployment)

    @classmethod
    def following_keyholder(
        cls, connect: Connect, opener: Callable[[Barrier], Deployment]
    ) -> SealGate:
        """``connect`` opens a connection to the keyholder (over the worker's inherited
        channel); ``opener`` opens the deployment over the barrier it is given: one that
        asks the keyholder (the root key never enters a worker)."""
        return cls(connect=connect, opener=opener)

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
        if self._connect is None:
            return
        # A worker holds KMS material and secret values while it serves: no core files of
        # it, and no ptrace or /proc/<pid>/mem by other processes of the user.
        if not make_undumpable():
            log.warning("could not make this worker non-dumpable (PR_SET_DUMPABLE)")
        self._link = KeyholderLink(self._connect, self._unsealed, self._sealed, self._lost)
        await self._link.start()

    async def stop(self) -> None:
        if self._link is not None:
            await self._link.close()
        await self._sealed()

    async def _unsealed(self) -> None:
        if self._deployment is not None or self._opener is None or self._connect is None:
            return
        opener, connect = self._opener, self._connect
        for attempt in range(1, _OPEN_ATTEMPTS + 1):
            try:
                self._deployment = await to_thread.run_sync(
                    lambda: opener(KeyholderBarrier(connect))
                )
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
        read = await _read(request)
        if isinstance(read, Response):
            return read
        signed, source_ip = read
        try:
            document = orjson.loads(signed.body) if signed.body.strip() else {}
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
        state = await self._request({"op": "status"})
        if isinstance(state, Response):
            return state
        if not state.get("sealed"):
            state.pop("ok", None)
            return JSONResponse(state)  # nothing to do, nothing to protect
        if state.get("provider") in KEY_PROVIDERS:
            # The key is at hand without anyone's input: the operator's credentials and
            # permission are what stand between a caller and an unsealed deployment.
            verdict = await self._authorize_while_sealed(signed, source_ip, UNSEAL)
            if isinstance(verdict, Response):
                return verdict
            log.info("unseal requested by %s", verdict.arn)
            return await self._ask({"op": "unseal"})
        # Shamir and passphrase: the shares (the passphrase) are the credential.
        answer = await self._ask(message)
        deployment = self._deployment
        if answer.status_code == 200 and deployment is not None:
            # The share that completed the key: audited now that there is a log to write
            # (earlier shares are in the operator's log: there is no key to audit with).
            await to_thread.run_sync(
                deployment.pipeline.record_operator_event, signed, source_ip, UNSEAL
            )
        return answer

    async def seal(self, request: Request) -> Response:
        read = await _read(request)
        if isinstance(read, Response):
            return read
        signed, source_ip = read
        deployment = self._deployment
        if deployment is None:
            # Sealed already. The caller still gets an answer about their credentials
            # where the key can be had, and never a "sealed" it did not earn.
            verdict = await self._authorize_while_sealed(signed, source_ip, SEAL)
            if isinstance(verdict, Response):
                return verdict
            state = await self._request({"op": "status"})
            if isinstance(state, Response):
                return state
            state.pop("ok", None)
            return JSONResponse({**state, "already_sealed": True})
        # Sealing stops every account's service: only the management account's principals
        # whose policies allow strongroom:Seal on the deployment may (server/pipeline.py).
        outcome = await to_thread.run_sync(
            deployment.pipeline.authorize_operator, signed, source_ip, SEAL
        )
        if isinstance(outcome, PipelineResponse):
            return _starlette(outcome)
        log.info("seal requested by %s", outcome.arn)
        return await self._ask({"op": "seal"})

    async def _authorize_while_sealed(
        self, signed: HttpRequest, source_ip: str, action: OperatorAction
    ) -> Principal | Response:
        """Authorize an operator request on a sealed deployment: over a *verify* connection,
        on which the keyholder uses the key of a file or PKCS#11 deployment for as long as
        the connection lasts (never sending it), open the deployment just long enough to
        run the request through the pipeline's stages, audit included, then drop both."""
        opener, connect = self._opener, self._connect
        if opener is None or connect is None or self._link is None:
            return _error(
                400,
                "InvalidRequestException",
                "this server has no keyholder: it cannot be sealed or unsealed",
            )
        state = await self._request({"op": "status"})
        if isinstance(state, Response):
            return state
        if state.get("provider") not in KEY_PROVIDERS:
            return _cannot_check(state)
        if self._verifying.locked():
            # Each check opens the deployment: one at a time, and no queue for a flood of
            # unauthenticated callers to grow.
            return _error(
                503, "ThrottlingException", "another operator request is being checked; retry"
            )
        async with self._verifying:
            try:
                barrier = await to_thread.run_sync(KeyholderBarrier.verifying, connect)
            except VerificationRefused as refused:
                if refused.reply.get("code") == "ServiceUnavailableException":
                    return _error(503, "ServiceUnavailableException", str(refused))
                return _cannot_check(refused.reply)
            except KeyholderError as problem:
                return _error(503, "ServiceUnavailableException", str(problem))
            try:
                opened = await to_thread.run_sync(opener, barrier)
            except Exception:
                barrier.close()
                log.exception("could not open the deployment to check an operator request")
                return _error(
                    503, "ServiceUnavailableException", "the deployment could not be opened"
                )
            try:
                outcome = await to_thread.run_sync(
                    opened.pipeline.authorize_operator, signed, source_ip, action
                )
            finally:
                await to_thread.run_sync(opened.close)
        return _starlette(outcome) if isinstance(outcome, PipelineResponse) else outcome

    async def _request(self, message: dict[str, Any]) -> dict[str, Any] | Response:
        """The keyholder's reply, or the error response when there is none."""
        if self._link is None:
            return _error(
                400,
                "InvalidRequestException",
                "this server has no keyholder: it cannot be sealed or unsealed",
            )
        try:
            return await self._link.request(message)
        except KeyholderError as problem:
            return _error(503, "ServiceUnavailableException", str(problem))

    async def _ask(self, message: dict[str, Any]) -> Response:
        reply = await self._request(message)
        if isinstance(reply, Response):
            return reply
        ok = reply.pop("ok", False)
        code = reply.pop("code", None)
        text = reply.pop("message", None)
        if not ok:
            return JSONResponse({"__type": code, "Message": text, **reply}, status_code=400)
        # The keyholder answers an unseal or seal once every worker applied it.
        return JSONResponse(reply)


async def _read(request: Request) -> tuple[HttpRequest, str] | Response:
    """The request as SigV4 reads it (its body within the operator endpoints' limit),
    and the client's address."""
    try:
        body = await read_limited(request.receive, _MAX_BODY)
    except ServiceError as refused:
        return _error(refused.status, refused.code, refused.message)
    source_ip = request.client.host if request.client else "unknown"
    return http_request(request.scope, body), source_ip


def _cannot_check(state: dict[str, Any]) -> Response:
    return _error(
        409,
        "InvalidRequestException",
        f"Strongroom is sealed ({state.get('provider')}): credentials cannot be "
        "checked until it is unsealed, and there is nothing to seal.",
    )


def _starlette(response: PipelineResponse) -> Response:
    return Response(response.body, status_code=response.status, headers=response.headers)


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"__type": code, "Message": message}, status_code=status)
