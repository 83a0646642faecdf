"""What the server hands the web console (:class:`strongroom.console.backend.Backend`):
AWS operations run through the request pipeline as the signed-in principal, and the
sign-in primitives. A console request is built by botocore's own serializer for the
service's protocol and its answer read by botocore's parser, exactly as an SDK would;
only SigV4 is skipped (the principal comes from the console session instead)."""

from __future__ import annotations

import dataclasses
import hmac
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from anyio import to_thread
from botocore import parsers, serialize

from strongroom.audit.events import RequestFacts, sign_in_event, user_identity
from strongroom.console.backend import (
    ApiError,
    IssuedConsoleSession,
    Output,
    PasswordCheck,
    SignInAttempt,
    SignInEvent,
)
from strongroom.iam.credentials import SessionGrant
from strongroom.ids import unique_id
from strongroom.models import service_model
from strongroom.protocol.sigv4 import HttpRequest
from strongroom.server.deployment import Deployment
from strongroom.server.sealing import SealGate
from strongroom.server.sign_in_failures import SignInFailures
from strongroom.server.stages import SignedIn
from strongroom.types import Principal

USER_AGENT = "strongroom-console"
DEFAULT_SESSION_SECONDS = 12 * 3600  # AWS's console session for an IAM user
_SEPARATOR = "."


def _with_tokens(params: Mapping[str, Any], operation: Any) -> dict[str, Any]:
    """``params`` with each idempotency token the caller left out filled in with a new
    UUID, as every AWS SDK does (ClientRequestToken of CreateSecret, RotateSecret, ...)."""
    filled = dict(params)
    shape = operation.input_shape
    for name, member in shape.members.items() if shape is not None else ():
        if member.metadata.get("idempotencyToken") and name not in filled:
            filled[name] = str(uuid.uuid4())
    return filled


class Sealed(ApiError):
    def __init__(self) -> None:
        super().__init__("ServiceUnavailable", "Strongroom is sealed.", 503)


class ServerBackend:
    def __init__(self, gate: SealGate, *, dev: bool, region: str = "us-east-1") -> None:
        self._gate = gate
        self.dev = dev
        self.region = region
        self._serializers: dict[str, Any] = {}
        self._parsers: dict[str, Any] = {}

    @property
    def default_account(self) -> str:
        deployment = self._gate.deployment
        if deployment is None:
            return ""
        return deployment.credentials.management_account()

    def _deployment(self) -> Deployment:
        deployment = self._gate.deployment
        if deployment is None:
            raise Sealed()
        return deployment

    def now(self) -> datetime:
        return self._deployment().clock.now()

    # AWS operations, through the pipeline ------------------------------------------------

    async def call(
        self,
        principal: Principal,
        service: str,
        operation: str,
        params: Mapping[str, Any],
        source_ip: str,
    ) -> Output:
        deployment = self._deployment()
        model = service_model(service)
        operation_model = model.operation_model(operation)
        protocol = model.metadata["protocol"]
        serializer = self._serializers.get(protocol)
        if serializer is None:
            serializer = self._serializers[protocol] = serialize.create_serializer(
                protocol, include_validation=False
            )
        wire = serializer.serialize_to_request(
            _with_tokens(params, operation_model), operation_model
        )
        body = wire["body"]
        if isinstance(body, dict):
            body = urlencode(body).encode()
        headers = [(str(k), str(v)) for k, v in wire["headers"].items()]
        headers.append(("User-Agent", USER_AGENT))
        if protocol == "query":
            headers.append(("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"))
        query = wire.get("query_string") or ""
        if isinstance(query, dict):
            query = urlencode(query, doseq=True)
        request = HttpRequest(
            str(wire.get("method") or "POST"),
            str(wire.get("url_path") or "/"),
            str(query),
            headers,
            bytes(body),
        )
        signed_in = SignedIn(principal, service, self.region)
        response = await deployment.pipeline.handle_async(request, source_ip, signed_in)
        parser = self._parsers.get(protocol)
        if parser is None:
            parser = self._parsers[protocol] = parsers.create_parser(protocol)
        parsed: dict[str, Any] = parser.parse(
            {"status_code": response.status, "headers": response.headers, "body": response.body},
            operation_model.output_shape,
        )
        if response.status >= 300:
            error = parsed.get("Error", {})
            raise ApiError(
                str(error.get("Code", "InternalFailure")),
                str(error.get("Message", "")),
                response.status,
            )
        parsed.pop("ResponseMetadata", None)
        return parsed

    # Sign-in ---------------------------------------------------------------------------

    async def check_password(self, account: str, user: str, password: str) -> PasswordCheck:
        deployment = self._deployment()
        identities = deployment.identities
        check = await to_thread.run_sync(identities.check_sign_in, account, user, password)
        principal = (
            Principal(account, check.user.arn, "", kind="user", unique_id=check.user.id)
            if check.user is not None
            else None
        )
        return PasswordCheck(check.ok, principal, check.reset_required, check.max_session_seconds)

    async def check_access_key(self, access_key_id: str, secret: str) -> Principal | None:
        key = self._deployment().credentials.lookup(access_key_id)
        matches = hmac.compare_digest(
            (key.secret_access_key if key is not None else "\0").encode(), secret.encode()
        )
        if key is None or not matches or key.status != "Active" or key.temporary:
            return None
        if key.principal.kind != "user":
            return None
        return key.principal

    async def start_session(self, principal: Principal, seconds: int) -> IssuedConsoleSession:
        deployment = self._deployment()
        grant = SessionGrant(
            account_id=principal.account_id,
            kind="user",
            principal_arn=principal.arn,
            identity_arn=principal.identity_arn,
            duration_seconds=seconds,
            user_id=principal.unique_id,  # the signed-in user's AIDA...: its session
            session_name="console",
        )

        def issue() -> IssuedConsoleSession:
            with deployment.store.write() as conn:
                issued = deployment.credentials.create_session(conn, grant)
            cookie = f"{issued.access_key_id}{_SEPARATOR}{issued.session_token}"
            return IssuedConsoleSession(cookie, issued.expiration)

        return await to_thread.run_sync(issue)

    async def session(self, cookie: str) -> Principal | None:
        deployment = self._gate.deployment
        if deployment is None:
            return None
        access_key_id, _, token = cookie.partition(_SEPARATOR)
        if not access_key_id or not token:
            return None
        key = deployment.credentials.lookup(access_key_id)
        if key is None or not key.temporary or not key.accepts_token(token):
            return None
        if key.expired(deployment.clock.now()) or key.principal.kind != "user":
            return None
        # A console session acts as the IAM user itself (its own user resolves, as for the
        # user's long-term keys); the session's issue time stays on the principal.
        return dataclasses.replace(key.principal, session_token=False)

    async def end_session(self, cookie: str) -> None:
        deployment = self._deployment()
        principal = await self.session(cookie)
        if principal is not None:
            access_key_id = cookie.partition(_SEPARATOR)[0]
            await to_thread.run_sync(deployment.credentials.end_session, access_key_id)

    async def begin_sign_in(
        self, limits: Mapping[str, int], now: datetime, window: timedelta
    ) -> SignInAttempt | None:
        return await self._failures().begin_sign_in(limits, now, window)

    async def end_sign_in(self, attempt: SignInAttempt, clear: str | None) -> None:
        await self._failures().end_sign_in(attempt, clear)

    def _failures(self) -> SignInFailures:
        deployment = self._deployment()
        return SignInFailures(deployment.store, deployment.tokens)

    async def record_sign_in(
        self,
        event: SignInEvent,
        *,
        principal: Principal | None,
        account: str,
        error: str | None,
        source_ip: str,
        user_agent: str,
    ) -> None:
        deployment = self._deployment()
        if principal is not None:
            identity = user_identity(principal)
            if not principal.access_key_id:
                identity.pop("accessKeyId", None)
        else:
            # No such user: CloudTrail hides the name typed (it may be a mistyped password).
            identity = {
                "type": "IAMUser",
                "accountId": account,
                "accessKeyId": "",
                "userName": "HIDDEN_DUE_TO_SECURITY_REASONS",
            }
        facts = RequestFacts(
            unique_id(), deployment.clock.now(), source_ip, user_agent, self.region
        )
        record = sign_in_event(
            facts=facts, event_name=event, identity=identity, error_message=error
        )
        await deployment.audit.write_async(record)
