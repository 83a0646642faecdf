"""Invocation: Lambda's Invoke, and invoking for a service principal (types.Functions):
the execution role's credentials from STS, the environment, the runtime, the log."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

from strongroom.audit.events import build_service_event
from strongroom.clock import now_ms, to_ms
from strongroom.functions.base import Output, Params, log, trusts_lambda
from strongroom.functions.common import (
    LOG_GROUP,
    SERVICE_PRINCIPAL,
    invalid_parameter,
    log_stream,
    not_found,
)
from strongroom.functions.permissions import FunctionPermissions
from strongroom.functions.repository import FunctionRecord
from strongroom.functions.runtime import Launch, Outcome
from strongroom.iam.credentials import SessionGrant
from strongroom.iam.sts import role_named
from strongroom.protocol.errors import ServiceError
from strongroom.types import Caller, Invocation


class Invocations(FunctionPermissions):
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
        if params.get("Qualifier") not in (None, "$LATEST"):
            raise not_found(f"{params['FunctionName']}:{params['Qualifier']}")
        record = self._existing(caller, params["FunctionName"])
        payload = params.get("Payload") or b"{}"
        try:
            json.loads(payload)
        except ValueError as bad:
            raise ServiceError(
                "InvalidRequestContentException",
                f"Could not parse request body into json: {bad.__class__.__name__}",
            ) from None
        kind = params.get("InvocationType") or "RequestResponse"
        # FunctionArn is not a member of Invoke's output: it names the audit record's
        # resource (api.function_arns) and is never written to the wire.
        if kind == "DryRun":
            return {"StatusCode": 204, "FunctionArn": record.arn}
        if kind == "Event":
            self._in_background(record, payload)
            return {"StatusCode": 202, "FunctionArn": record.arn}
        outcome = await self._run(record, payload)
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

    def _in_background(self, record: FunctionRecord, payload: bytes) -> None:
        async def run() -> None:
            try:
                await self._run(record, payload)
            except Exception:
                log.exception("event invocation of %s failed", record.arn)

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _run(self, record: FunctionRecord, payload: bytes) -> Outcome:
        request_id = str(uuid.uuid4())
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
            environment={**variables, **self._environment(record, credentials, request_id)},
            code=code,
            code_dir=self._builtin_code if builtin else None,
        )
        outcome = await self._runtime.run(launch)
        await asyncio.to_thread(self._record_log, record, request_id, outcome)
        return outcome

    def _environment(
        self, record: FunctionRecord, credentials: Mapping[str, str], request_id: str
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
            # The runtime's start is the log's first event: the same day but at midnight.
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream(request_id, int(time.time() * 1000)),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{record.runtime}",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PYTHONUNBUFFERED": "1",
        }

    def _record_log(self, record: FunctionRecord, request_id: str, outcome: Outcome) -> None:
        self.log_groups.record(
            record.arn, record.account_id, record.region, record.name, request_id, outcome
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
            outcome = await self._run(record, payload)
        except ServiceError as failed:  # the role cannot be assumed
            body = json.dumps({"errorMessage": failed.message, "errorType": failed.code})
            return Invocation(200, body.encode(), "Unhandled")
        return Invocation(
            200, outcome.payload, outcome.function_error, outcome.tail, outcome.request_id
        )

    async def drain(self) -> None:
        """Wait for the Event invocations still running (at shutdown)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
