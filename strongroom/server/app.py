"""The ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any

from anyio import to_thread
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from strongroom.audit.forward import start_forwarders, stop_forwarders
from strongroom.clock import FileClock, now_ms
from strongroom.console.app import create_console
from strongroom.ids import unique_id
from strongroom.keys.channel import WorkerChannel
from strongroom.models import service_model
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.rest_routes import RestRoutes
from strongroom.protocol.wire import JsonWire
from strongroom.server import jobs as background
from strongroom.server.bodies import read_body
from strongroom.server.config import Settings
from strongroom.server.console_backend import ServerBackend
from strongroom.server.deployment import Deployment, open_deployment
from strongroom.server.http import configure as configure_connections
from strongroom.server.sealing import SealGate, http_request

log = logging.getLogger("strongroom.server")

SETTINGS_ENV = "STRONGROOM_RUNTIME_SETTINGS"
TEST_CLOCK_ENV = "STRONGROOM_TEST_CLOCK"
_YOUNG_COLLECTION_EVERY = 10_000  # allocations of tracked objects (CPython: 700)


def create_app(deployment: Deployment | SealGate, settings: Settings) -> ASGIApp:
    """The app over a deployment that is always open, or over a :class:`SealGate` whose
    deployment exists only while the keyholder has the root key."""
    gate = deployment if isinstance(deployment, SealGate) else SealGate.fixed(deployment)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await gate.start()
        # What is loaded by now (service models, the deployment) lives as long as the
        # worker: frozen, the collector stops walking it on every full collection.
        gc.collect()
        gc.freeze()
        # A young collection walks every live young object, and with dozens of requests in
        # flight that is their state, whatever the threshold: collecting every 700
        # allocations (the default) walked it about once a request, 2.4% of a worker's
        # CPU under load (perf); every 10,000 takes 0.2%.
        gc.set_threshold(_YOUNG_COLLECTION_EVERY, *gc.get_threshold()[1:])
        sweeper = asyncio.create_task(_purge_loop(gate, settings.purge_interval))
        rotator = asyncio.create_task(_rotation_loop(gate, settings.rotation_interval))
        # Audit forwarding reads only the log files, so it runs while sealed too.
        data_dir = settings.data_dir or (gate.deployment.data_dir if gate.deployment else None)
        forwarders = (
            start_forwarders(data_dir / "audit", settings.audit_destinations())
            if data_dir is not None
            else []
        )
        try:
            yield
        finally:
            sweeper.cancel()
            rotator.cancel()
            await to_thread.run_sync(stop_forwarders, forwarders)
            await gate.stop()

    console = create_console(ServerBackend(gate, dev=settings.dev))
    operator = Starlette(
        routes=[*gate.routes(), Mount("/console", app=console)],
        lifespan=lifespan,
        exception_handlers={404: _not_served, 405: _not_served},
    )
    return AwsEndpoint(gate, operator)


async def _not_served(request: Request, _exc: Exception) -> Response:
    """A path or method nothing serves, answered in AWS's JSON error shape (SDKs and the
    CLI parse it) rather than Starlette's plain text."""
    error = ServiceError(
        "UnknownOperationException",
        f"Strongroom serves no {request.method} {request.url.path}: AWS requests go to "
        "POST / (or GET / for the Query services).",
        status=404,
    )
    status, headers, body = JsonWire().error(error, unique_id())
    return Response(body, status_code=status, headers=headers)


class AwsEndpoint:
    """``/``, where every AWS SDK request arrives, served as plain ASGI; everything else
    (the operator endpoints, the lifespan) goes to the Starlette app. Routing, Request and
    Response objects cost about as much as a cached read does, on every request."""

    def __init__(self, gate: SealGate, other: ASGIApp) -> None:
        self._gate = gate
        self._other = other

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # One coroutine, not a wrapper around another: each suspension of a request (for its
        # body, for its audit record) passes through every coroutine frame of the chain.
        try:
            # POST / (every JSON-protocol request) is AWS's and never a browser visit: known
            # from two lookups, before the general checks.
            if not (scope["type"] == "http" and scope["path"] == "/" and scope["method"] == "POST"):
                if scope["type"] != "http" or not self._for_aws(scope):
                    await self._other(scope, receive, send)
                    return
                if _is_browser_visit(scope):
                    await RedirectResponse("/console/", status_code=302)(scope, receive, send)
                    return
            current = self._gate.deployment
            if current is None:
                await self._gate.sealed_response(Request(scope))(scope, receive, send)
                return
            pipeline = current.pipeline
            try:
                body = await read_body(scope, receive, pipeline.body_limits)
            except ServiceError as refused:
                result = pipeline.refuse_unread(http_request(scope, b""), refused)
            else:
                client = scope.get("client")
                result = await pipeline.handle_async(
                    http_request(scope, body), client[0] if client else "unknown"
                )
            headers = [
                (k.encode("latin-1"), v.encode("latin-1")) for k, v in result.headers.items()
            ]
            headers.append((b"content-length", b"%d" % len(result.body)))
            await send({"type": "http.response.start", "status": result.status, "headers": headers})
            await send({"type": "http.response.body", "body": result.body})
        except ClientDisconnect:
            # The client went away mid-request, or a read timeout dropped it: the HTTP
            # protocol (server/http.py) logged that one line; no traceback here.
            return

    def _for_aws(self, scope: Scope) -> bool:
        """``POST /`` or ``GET /`` (JSON and Query services), or a path of a REST service
        (Lambda's ``/2015-03-31/...``), by any method."""
        path = scope["path"]
        if path == "/":
            return scope["method"] in _METHODS
        return path.startswith(_REST_PREFIXES) and scope["method"] in _REST_METHODS


_METHODS = frozenset(("POST", "GET"))
_REST_METHODS = frozenset(("POST", "GET", "PUT", "DELETE", "PATCH", "HEAD"))
# The first path segment of every REST-JSON operation served (Lambda's API versions);
# known without an open deployment, so a sealed server answers them with its 503.
_REST_PREFIXES = tuple(
    prefix + "/" for prefix in sorted(RestRoutes(service_model("lambda")).prefixes)
)


def _is_browser_visit(scope: Scope) -> bool:
    """``GET /`` with no query and no credentials: a person opening the server's address,
    sent to the console. Every AWS request names its action (Query: ``?Action=``, or a
    signed POST body) or carries a signature, so none is taken for a visit."""
    if scope["path"] != "/" or scope["method"] != "GET" or scope.get("query_string"):
        return False
    return not any(name.lower() == b"authorization" for name, _ in scope["headers"])


async def _purge_loop(gate: SealGate, interval: float) -> None:
    """Background work: purge secrets and KMS keys whose deletion window has passed,
    rotate KMS keys that are due and drop long-expired STS sessions. Every worker runs it;
    each job is one idempotent transaction, so running it twice is harmless."""
    while True:
        deployment = gate.deployment  # None while sealed: nothing can be read or written
        # Each is audited: it commits only with its service events durable (server/jobs.py).
        jobs: dict[str, Callable[[], int]] = (
            {
                "secret(s) purged after their recovery window": partial(
                    background.purge_secrets, deployment
                ),
                "KMS key(s) deleted after their waiting period": partial(
                    background.purge_keys, deployment
                ),
                "KMS key(s) rotated on schedule": partial(background.rotate_keys, deployment),
                "function log(s) purged after their retention": partial(
                    background.purge_function_logs, deployment
                ),
                # Housekeeping, no AWS event: the sessions are already refused as expired.
                "expired STS session(s) purged": deployment.credentials.purge_expired_sessions,
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


async def _rotation_loop(gate: SealGate, interval: float) -> None:
    """Start the secret rotations that are due and run them (strongroom/rotation), and the
    asynchronous function invocations whose next attempt is due (strongroom/functions).
    Every worker sweeps; each is claimed once, in the transaction that starts it."""
    while True:
        deployment = gate.deployment
        if deployment is not None:
            seen = now_ms(deployment.clock)  # the sweep sees at least this time
            try:
                started = await deployment.rotations.start_due()
                if started:
                    log.info("%d secret rotation(s) started", started)
            except Exception:
                log.exception("rotation sweep failed; will retry")
            functions = deployment.functions
            try:
                if functions is not None:
                    retried = await functions.start_due_events()
                    if retried:
                        log.info("%d asynchronous invocation attempt(s) started", retried)
            except Exception:
                log.exception("asynchronous invocation sweep failed; will retry")
            if not deployment.rotations.busy and not (functions is not None and functions.busy):
                _mark_swept(deployment, seen)
        await asyncio.sleep(interval)


def _mark_swept(deployment: Deployment, seen: int) -> None:
    """Under a test clock, say which time this worker's last sweep saw, once the rotations
    and asynchronous invocation attempts it started are done: tests wait for every
    worker's mark before they look at what a time step caused."""
    clock = deployment.clock
    if isinstance(clock, FileClock):
        mark = clock.path.with_name(f"{clock.path.name}.swept.{os.getpid()}")
        mark.write_text(str(seen))


def clock_for_tests(settings: Settings) -> FileClock | None:
    """The test clock ``STRONGROOM_TEST_CLOCK`` names (a file holding Unix milliseconds), for
    a ``--dev`` server only: any other server refuses to start with it set."""
    path = os.environ.get(TEST_CLOCK_ENV)
    if not path:
        return None
    if not settings.dev:
        raise RuntimeError(f"{TEST_CLOCK_ENV} is honoured only by a --dev server")
    return FileClock(Path(path))


class WorkerFactory:
    """uvicorn's app factory for the worker processes, which reach the keyholder over a
    channel each inherits (keys/channel.py).

    uvicorn's supervisor pickles its configuration, this factory included, into every
    worker it spawns (at start, on a restart, on a replacement): pickling asks the
    keyholder for a new channel (``new_channel``) and passes the worker's end to the
    child as multiprocessing passes sockets to spawned processes (the descriptor is
    inherited, ``spawnv_passfds``). So each worker, and only it, holds its own channel."""

    def __init__(
        self,
        new_channel: Callable[[], socket.socket] | None = None,
        channel: socket.socket | None = None,
    ) -> None:
        self._new_channel = new_channel
        self._channel = channel

    def __repr__(self) -> str:
        return f"WorkerFactory(channel={self._channel is not None})"

    def __reduce__(self) -> tuple[Any, ...]:
        if self._new_channel is None:
            raise TypeError("a worker's factory is not passed on")
        return (WorkerFactory, (None, self._new_channel()))

    def __call__(self) -> ASGIApp:
        if self._channel is None:
            raise RuntimeError("no keyholder channel: workers are started by `strongroom server`")
        # Passed to this process inheritable: no program it runs (a function) inherits it.
        os.set_inheritable(self._channel.fileno(), False)
        return app_from_environment(WorkerChannel(self._channel))


def app_from_environment(channel: WorkerChannel) -> ASGIApp:
    """A worker's app: settings arrive through the environment, the keyholder is reached
    over ``channel``."""
    raw = json.loads(os.environ[SETTINGS_ENV])
    settings = Settings(**{**raw, "data_dir": Path(raw["data_dir"])})
    configure_connections(settings.connection_limits())
    data_dir = settings.data_dir
    assert data_dir is not None
    clock = clock_for_tests(settings)
    # The root key stays in the keyholder (the `strongroom server` process): this worker
    # seals and opens through it, over the barrier the gate gives.
    gate = SealGate.following_keyholder(
        channel.connect,
        lambda barrier: open_deployment(
            data_dir,
            barrier=barrier,
            audit=settings.audit_options(),
            cache_entries=settings.cache_entries,
            clock=clock,
            endpoint=settings.endpoint(),
        ),
    )
    return create_app(gate, settings)
