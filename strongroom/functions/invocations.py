"""Invocation: Lambda's Invoke, and invoking for a service principal (types.Functions):
the execution role's credentials from STS, the environment, the runtime, the log; and the
asynchronous invocations (``InvocationType=Event``): queued in the store
(:mod:`strongroom.functions.event_queue`), first attempted at once by the worker that
accepted them, retried as Lambda retries them by whichever worker's sweep claims them."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Mapping
from typing import Any

from strongroom.audit.events import build_service_event
from strongroom.clock import now_ms, to_ms
from strongroom.functions import event_queue
from strongroom.functions.base import Output, Params, log, trusts_lambda
from strongroom.functions.common import (
    LOG_GROUP,
    SERVICE_PRINCIPAL,
    invalid_parameter,
    log_stream,
    not_found,
    payload_too_large,
)
from strongroom.functions.event_configs import EventInvokeConfigs
from strongroom.functions.event_queue import EventClaim
from strongroom.functions.permissions import FunctionPermissions
from strongroom.functions.repository import FunctionRecord
from strongroom.functions.runtime import Launch, Outcome
from strongroom.iam.credentials import SessionGrant
from strongroom.iam.sts import role_named
from strongroom.protocol.errors import ServiceError
from strongroom.types import Caller, Invocation

_CLAIMS_PER_SWEEP = 16


class Invocations(FunctionPermissions, EventInvokeConfigs):
    def _role_credentials(self, record: FunctionRecord) -> dict[str, str]:
        """Temporary credentials of the execution role (its trust policy checked again
        each time: it may have changed since CreateFunction). A session STS issues for
        lambda.amazonaws.com is reused by the function's invocations while it outlasts
        the timeout, as a warm Lambda environment keeps its credentials; its policies
        are evaluated at each request, so a changed role policy applies at once."""
        role = role_named(self._identities, record.role)
        if role is None or not trusts_lambda(role.trust_policy, role.arn, record.account_id):
            raise invalid_parameter(
                "The role defined for the function cannot be assumed by Lambda."
            )
        now = now_ms(self._clock)
        kept = self._sessions.get((record.arn, role.arn))
        if kept is not None and kept[1] > now + (record.timeout + 60) * 1000:
            return kept[0]
        account = role.arn.split(":")[4]
        duration = max(900, min(record.timeout + 600, role.max_session_duration))
        grant = SessionGrant(
            account_id=account,
            kind="assumed-role",
            principal_arn=f"arn:aws:sts::{account}:assumed-role/{role.role_name}/{record.name}",
            identity_arn=role.arn,
            duration_seconds=duration,
            role_id=role.role_id,
            session_name=record.name,
        )
        # Recorded as CloudTrail records a service assuming a role for its work: an
        # AssumeRole call whose identity is the service (AWSService, lambda.amazonaws.com);
        # the session commits only once its record is durable.
        with self._store.unit_of_work() as unit:
            with self._store.write() as conn:
                issued = self._credentials.create_session(conn, grant)
            if self._audit is not None:
                self._audit.write(self._assume_role_event(record, role.arn, issued.access_key_id))
            unit.commit()
        credentials = {
            "AWS_ACCESS_KEY_ID": issued.access_key_id,
            "AWS_SECRET_ACCESS_KEY": issued.secret_access_key,
            "AWS_SESSION_TOKEN": issued.session_token,
        }
        self._sessions[(record.arn, role.arn)] = (credentials, to_ms(issued.expiration))
        return credentials

    def _assume_role_event(self, record: FunctionRecord, role_arn: str, key: str) -> dict[str, Any]:
        event = build_service_event(
            time=self._clock.now(),
            event_source="sts.amazonaws.com",
            event_name="AssumeRole",
            account_id=record.account_id,
            region=record.region,
            invoked_by=SERVICE_PRINCIPAL,
            resources=[role_arn, record.arn],
        )
        event.update(
            userIdentity={"type": "AWSService", "invokedBy": SERVICE_PRINCIPAL},
            requestID=str(uuid.uuid4()),
            requestParameters={"roleArn": role_arn, "roleSessionName": record.name},
            responseElements={"credentials": {"accessKeyId": key}},
            eventType="AwsApiCall",
            readOnly=True,
        )
        return event

    # ------------------------------------------------------------------ invocation

    async def invoke_operation(self, caller: Caller, params: Params) -> Output:
        """Lambda's Invoke (a coroutine: the pipeline awaits it outside any transaction)."""
        kind = params.get("InvocationType") or "RequestResponse"
        body: bytes = params.get("Payload") or b""
        # Its bytes against its invocation type's limit first: before the function is
        # looked up or the payload parsed, so before anything is queued or run (the
        # pipeline audits the refusal as any operation's error).
        refused = payload_too_large(kind, len(body))
        if refused is not None:
            raise refused
        payload = body or b"{}"
        if params.get("Qualifier") not in (None, "$LATEST"):
            raise not_found(f"{params['FunctionName']}:{params['Qualifier']}")
        record = self._existing(caller, params["FunctionName"])
        try:
            json.loads(payload)
        except ValueError as bad:
            raise ServiceError(
                "InvalidRequestContentException",
                f"Could not parse request body into json: {bad.__class__.__name__}",
            ) from None
        # FunctionArn is not a member of Invoke's output: it names the audit record's
        # resource (api.function_arns) and is never written to the wire.
        if kind == "DryRun":
            return {"StatusCode": 204, "FunctionArn": record.arn}
        if kind == "Event":
            # Durable before the 202: a restart or another worker retries it from the store.
            claim = await asyncio.to_thread(self._enqueue, record, payload)
            self._in_background(claim)
            return {"StatusCode": 202, "FunctionArn": record.arn}
        outcome = await self._run(record, payload, str(uuid.uuid4()))
        out: Output = {
            "StatusCode": 200,
            "Payload": outcome.payload,
            "ExecutedVersion": "$LATEST",
            "FunctionArn": record.arn,
        }
        if outcome.function_error:
            out["FunctionError"] = outcome.function_error
        if params.get("LogType") == "Tail":
            out["LogResult"] = base64.b64encode(outcome.tail.encode()).decode("ascii")
        return out

    # ------------------------------------------------------------------ asynchronous

    def _enqueue(self, record: FunctionRecord, payload: bytes) -> EventClaim:
        request_id = str(uuid.uuid4())
        sealed_key, sealed = self._vault.seal_event(record.arn, request_id, payload)
        with self._store.write() as conn:
            return event_queue.enqueue(
                conn,
                request_id=request_id,
                function_arn=record.arn,
                data_key=sealed_key,
                payload=sealed,
                now_ms=now_ms(self._clock),
            )

    def _in_background(self, claim: EventClaim) -> None:
        async def run() -> None:
            try:
                await self._attempt(claim)
            except Exception:
                log.exception("event invocation of %s failed", claim.function_arn)

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @property
    def busy(self) -> bool:
        """Whether asynchronous attempts this worker started are still running."""
        return bool(self._background)

    async def start_due_events(self) -> int:
        """Claim the asynchronous events whose next attempt is due and start them in the
        background; how many started."""
        claims = await asyncio.to_thread(self._claim_events)
        for claim in claims:
            self._in_background(claim)
        return len(claims)

    def _claim_events(self) -> list[EventClaim]:
        now = now_ms(self._clock)
        with self._store.read() as conn:  # the common case: nothing due, no write lock
            if not event_queue.any_due(conn, now):
                return []
        kept = []
        with self._store.write() as conn:
            for claim in event_queue.claim_due(conn, now, _CLAIMS_PER_SWEEP):
                # An abandoned claim (its worker died) counts as an attempt made.
                policy = event_queue.policy(conn, claim.function_arn)
                if policy.expired(claim.queued_ms, now) or claim.attempt > policy.retries + 1:
                    event_queue.finish(conn, claim)
                    log.info(
                        "asynchronous event %s for %s dropped before attempt %d: %s",
                        claim.request_id,
                        claim.function_arn,
                        claim.attempt,
                        "older than its maximum age"
                        if policy.expired(claim.queued_ms, now)
                        else "no retry left",
                    )
                else:
                    kept.append(claim)
        return kept

    async def _attempt(self, claim: EventClaim) -> None:
        """One attempt of a queued event; then it is done with, or its retry is queued."""
        record = self._target(claim.function_arn)
        if record is None:  # deleted since (its queued events went with it)
            await asyncio.to_thread(self._settle, claim, None)
            return
        payload = await asyncio.to_thread(  # the root barrier: the keyholder, over a socket
            self._vault.open_event,
            claim.function_arn,
            claim.request_id,
            claim.data_key,
            claim.payload,
        )
        try:
            outcome = await self._run(record, payload, claim.request_id, claim)
            error = outcome.function_error
        except ServiceError as failed:  # the role cannot be assumed: an error, retried
            log.warning("asynchronous invocation of %s: %s", record.arn, failed.code)
            error = failed.code
        await asyncio.to_thread(self._settle, claim, error)

    def _settle(self, claim: EventClaim, error: str | None) -> None:
        now = now_ms(self._clock)
        with self._store.write() as conn:
            due = (
                None
                if error is None
                else event_queue.policy(conn, claim.function_arn).next_due(claim, now)
            )
            done = (
                event_queue.finish(conn, claim)
                if due is None
                else event_queue.retry_at(conn, claim, due)
            )
        if not done:
            log.info("asynchronous event %s: its claim was taken over", claim.request_id)
        elif error is not None:
            if due is None:
                log.info(
                    "asynchronous event %s for %s failed attempt %d; dropped (no retry left, "
                    "or too old by the next)",
                    claim.request_id,
                    claim.function_arn,
                    claim.attempt,
                )
            else:
                log.info(
                    "asynchronous event %s for %s failed attempt %d; retried at %d",
                    claim.request_id,
                    claim.function_arn,
                    claim.attempt,
                    due,
                )

    # ------------------------------------------------------------------ running

    async def _run(
        self,
        record: FunctionRecord,
        payload: bytes,
        request_id: str,
        claim: EventClaim | None = None,
    ) -> Outcome:
        """Run an invocation (an attempt of ``claim``'s, when asynchronous) and keep its log."""
        credentials = await asyncio.to_thread(self._role_credentials, record)
        builtin = record.name in self._builtins
        code = None if builtin else await asyncio.to_thread(self._vault.open_code, record)
        # A built-in's variables are its defaults (password rules, timeouts), declared with it.
        variables = (
            dict(self._builtins[record.name].environment)
            if builtin
            else self._vault.open_variables(record)
        )
        launch = Launch(
            request_id=request_id,
            function_arn=record.arn,
            function_name=record.name,
            handler=record.handler,
            runtime=record.runtime,
            timeout=record.timeout,
            memory_size=record.memory_size,
            payload=payload,
            environment={
                **variables,
                **self._environment(
                    record,
                    credentials,
                    request_id,
                    now_ms(self._clock) if claim is None else claim.queued_ms,
                ),
            },
            code=code,
            code_dir=self._builtin_code if builtin else None,
        )
        outcome = await self._runtime.run(launch)
        attempt = 1 if claim is None else claim.attempt
        await asyncio.to_thread(self._record_log, record, request_id, outcome, attempt)
        return outcome

    def _environment(
        self,
        record: FunctionRecord,
        credentials: Mapping[str, str],
        request_id: str,
        stream_ms: int,
    ) -> dict[str, str]:
        """Everything an invocation's process sees besides the function's own variables
        (which cannot set these: RESERVED_VARIABLES)."""
        return {
            **credentials,
            "AWS_REGION": record.region,
            "AWS_DEFAULT_REGION": record.region,
            "AWS_ENDPOINT_URL": self._endpoint,
            "SECRETS_MANAGER_ENDPOINT": self._endpoint,
            "AWS_LAMBDA_FUNCTION_NAME": record.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(record.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": LOG_GROUP + record.name,
            # Named by the request's first attempt, on the deployment's clock, as the log.
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream(request_id, stream_ms),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{record.runtime}",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PYTHONUNBUFFERED": "1",
        }

    def _record_log(
        self, record: FunctionRecord, request_id: str, outcome: Outcome, attempt: int
    ) -> None:
        self.log_groups.record(
            record.arn, record.account_id, record.region, record.name, request_id, outcome, attempt
        )

    async def invoke(
        self,
        function_arn: str,
        payload: bytes,
        *,
        service_principal: str,
        source_account: str,
        source_arn: str,
    ) -> Invocation:
        """Invoke for a service principal (RequestResponse). A function its policy does
        not open to the principal raises ``AccessDeniedException``; a function that fails
        answers with ``function_error``."""
        allowed = self.may_invoke(
            function_arn,
            service_principal=service_principal,
            source_account=source_account,
            source_arn=source_arn,
        )
        record = self._target(function_arn)
        if not allowed or record is None:
            raise ServiceError(
                "AccessDeniedException",
                f"{service_principal} may not invoke {function_arn}.",
                403,
            )
        try:
            outcome = await self._run(record, payload, str(uuid.uuid4()))
        except ServiceError as failed:  # the role cannot be assumed
            body = json.dumps({"errorMessage": failed.message, "errorType": failed.code})
            return Invocation(200, body.encode(), "Unhandled")
        return Invocation(
            200, outcome.payload, outcome.function_error, outcome.tail, outcome.request_id
        )

    async def drain(self) -> None:
        """Wait for the Event attempts still running (at shutdown)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
